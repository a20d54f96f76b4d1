//! Gateway responses: the answers the gateway makes itself (404, 413, 502, 504, and later 401,
//! 403, 429 ...), typed as AWS API Gateway types them and overridable per API.
//!
//! Source: AWS API Gateway developer guide, "Gateway response types for API Gateway"
//! (ACCESS_DENIED ... WAF_FILTERED) and "Setting up gateway responses to customize error
//! responses". A type without an override falls back to DEFAULT_4XX or DEFAULT_5XX by its
//! status class, then to the built-in AWS-shaped body `{"message":"..."}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// AWS's gateway response types. The data plane produces RESOURCE_NOT_FOUND,
/// REQUEST_TOO_LARGE, INTEGRATION_FAILURE, INTEGRATION_TIMEOUT, API_CONFIGURATION_ERROR and the
/// two defaults today; the others are accepted in the config for the policies that produce them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResponseType {
    AccessDenied,
    ApiConfigurationError,
    AuthorizerConfigurationError,
    AuthorizerFailure,
    BadRequestParameters,
    BadRequestBody,
    Default4xx,
    Default5xx,
    ExpiredToken,
    IntegrationFailure,
    IntegrationTimeout,
    InvalidApiKey,
    InvalidSignature,
    MissingAuthenticationToken,
    QuotaExceeded,
    RequestTooLarge,
    ResourceNotFound,
    Throttled,
    Unauthorized,
    UnsupportedMediaType,
    WafFiltered,
}

impl ResponseType {
    /// Every type, in AWS's (alphabetical) order.
    pub const ALL: [ResponseType; 21] = [
        ResponseType::AccessDenied,
        ResponseType::ApiConfigurationError,
        ResponseType::AuthorizerConfigurationError,
        ResponseType::AuthorizerFailure,
        ResponseType::BadRequestParameters,
        ResponseType::BadRequestBody,
        ResponseType::Default4xx,
        ResponseType::Default5xx,
        ResponseType::ExpiredToken,
        ResponseType::IntegrationFailure,
        ResponseType::IntegrationTimeout,
        ResponseType::InvalidApiKey,
        ResponseType::InvalidSignature,
        ResponseType::MissingAuthenticationToken,
        ResponseType::QuotaExceeded,
        ResponseType::RequestTooLarge,
        ResponseType::ResourceNotFound,
        ResponseType::Throttled,
        ResponseType::Unauthorized,
        ResponseType::UnsupportedMediaType,
        ResponseType::WafFiltered,
    ];

    /// The name as AWS writes it (`RESOURCE_NOT_FOUND`), also `$context.error.responseType`.
    pub fn name(self) -> &'static str {
        match self {
            ResponseType::AccessDenied => "ACCESS_DENIED",
            ResponseType::ApiConfigurationError => "API_CONFIGURATION_ERROR",
            ResponseType::AuthorizerConfigurationError => "AUTHORIZER_CONFIGURATION_ERROR",
            ResponseType::AuthorizerFailure => "AUTHORIZER_FAILURE",
            ResponseType::BadRequestParameters => "BAD_REQUEST_PARAMETERS",
            ResponseType::BadRequestBody => "BAD_REQUEST_BODY",
            ResponseType::Default4xx => "DEFAULT_4XX",
            ResponseType::Default5xx => "DEFAULT_5XX",
            ResponseType::ExpiredToken => "EXPIRED_TOKEN",
            ResponseType::IntegrationFailure => "INTEGRATION_FAILURE",
            ResponseType::IntegrationTimeout => "INTEGRATION_TIMEOUT",
            ResponseType::InvalidApiKey => "INVALID_API_KEY",
            ResponseType::InvalidSignature => "INVALID_SIGNATURE",
            ResponseType::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            ResponseType::QuotaExceeded => "QUOTA_EXCEEDED",
            ResponseType::RequestTooLarge => "REQUEST_TOO_LARGE",
            ResponseType::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ResponseType::Throttled => "THROTTLED",
            ResponseType::Unauthorized => "UNAUTHORIZED",
            ResponseType::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ResponseType::WafFiltered => "WAF_FILTERED",
        }
    }

    /// The type named `name` (exact, upper case as AWS writes it).
    pub fn parse(name: &str) -> Option<ResponseType> {
        ResponseType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Every type's name, comma-separated (for error messages).
    ///
    /// Out of line and a plain loop: `ALL.map(..).join(..)` inlined into the config checker
    /// made LLVM's constraint elimination take minutes over that one function.
    #[cold]
    #[inline(never)]
    pub fn names() -> String {
        let mut out = String::new();
        for t in ResponseType::ALL {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(t.name());
        }
        out
    }

    /// Position in [`ResponseType::ALL`], for tables indexed by type.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The default that stands in for this type when it has no override of its own.
    #[inline]
    pub fn fallback(status: u16) -> ResponseType {
        if status >= 500 {
            ResponseType::Default5xx
        } else {
            ResponseType::Default4xx
        }
    }
}

/// One overridden gateway response: `gateway_responses.<TYPE>` in an API.
///
/// ```yaml
/// gateway_responses:
///   RESOURCE_NOT_FOUND:
///     status: 404
///     headers: { x-owner: shop-team }
///     body: '{"error":$context.error.messageString,"requestId":"$context.requestId"}'
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayResponseFile {
    /// Status code to answer with; default: the status of the error being answered (so a
    /// DEFAULT_4XX override keeps 404 a 404 and 413 a 413), as AWS does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Extra response headers (AWS's `gatewayresponse.header.*` parameters), static values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Body template with `$context` variables (AWS's response template); default: the
    /// built-in `{"message":$context.error.messageString}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Content-Type of the body; default `application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_fallbacks_split_by_class() {
        for t in ResponseType::ALL {
            assert_eq!(ResponseType::parse(t.name()), Some(t));
            assert_eq!(ResponseType::ALL[t.index()], t);
        }
        assert_eq!(ResponseType::parse("resource_not_found"), None);
        assert_eq!(ResponseType::fallback(404), ResponseType::Default4xx);
        assert_eq!(ResponseType::fallback(504), ResponseType::Default5xx);
    }
}
