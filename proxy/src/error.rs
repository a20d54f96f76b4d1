//! The data plane's one error type: why the gateway answers a request itself instead of (or in
//! place of) its integration. Each error carries its kind, the side that caused it and a short
//! reason; [`GatewayError::response_type`] maps it to the AWS gateway response that answers it,
//! and `crate::respond` writes that answer.

use turnpike_core::{gateway_response::ResponseType, usage::RefusalKind};

use crate::h1::request::HeadError;

/// What went wrong, which decides the status and the gateway response type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    /// No API key, or one that is unknown, disabled or has no usage plan for the stage.
    InvalidApiKey,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    UriTooLong,
    ExpectationFailed,
    /// A TLS connection's handshake was for a domain whose TLS settings differ from those of
    /// the domain its Host names (RFC 9110 section 15.5.20).
    MisdirectedRequest,
    HeaderFieldsTooLarge,
    /// A throttle's bucket was empty (RFC 6585 section 4).
    Throttled,
    /// The API key's usage plan quota for the period is used up.
    QuotaExceeded,
    /// No or a bad token for a JWT or request authorizer: 401 `UNAUTHORIZED`.
    Unauthorized,
    /// An authorizer or resource policy refused the caller: 403 `ACCESS_DENIED`.
    AccessDenied,
    /// An `aws_iam` route called without a signature: 403 `MISSING_AUTHENTICATION_TOKEN`.
    MissingAuthenticationToken,
    /// A SigV4 signature that does not verify (or an unknown key id): 403 `INVALID_SIGNATURE`.
    InvalidSignature,
    /// A SigV4 signature outside its time window: 403 `EXPIRED_TOKEN`.
    ExpiredToken,
    /// A signed payload that could not be hashed (no length): 411.
    LengthRequired,
    /// A request body that does not conform to the route's model: 400 `BAD_REQUEST_BODY`.
    BadRequestBody,
    /// A required request parameter is missing: 400 `BAD_REQUEST_PARAMETERS` (the names are
    /// in the message).
    BadRequestParameters,
    /// No model for the request body's content type: 415 `UNSUPPORTED_MEDIA_TYPE`.
    UnsupportedMediaType,
    /// The request authorizer failed, timed out or could not be reached: 500
    /// `AUTHORIZER_FAILURE`.
    AuthorizerFailure,
    /// The request authorizer answered something unusable: 500
    /// `AUTHORIZER_CONFIGURATION_ERROR`.
    AuthorizerConfiguration,
    /// A function failed, crashed or answered something malformed: 500
    /// `INTEGRATION_FAILURE` (AWS answers Lambda errors with 500, not 502).
    IntegrationFailure,
    /// The route's integration cannot serve this stage (a stage variable it needs is missing).
    ApiConfiguration,
    NotImplemented,
    /// The upstream could not be reached or answered with something unusable.
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
}

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
    Internal,
}

/// A refusal or failure the gateway answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub side: Side,
    /// Why, in a few words (`upstream connect refused`): logged, and the value of
    /// `$context.integrationErrorMessage` for upstream errors.
    pub reason: &'static str,
}

impl GatewayError {
    pub const fn client(kind: ErrorKind, reason: &'static str) -> GatewayError {
        GatewayError {
            kind,
            side: Side::Client,
            reason,
        }
    }

    pub const fn upstream(kind: ErrorKind, reason: &'static str) -> GatewayError {
        GatewayError {
            kind,
            side: Side::Upstream,
            reason,
        }
    }

    pub const NOT_FOUND: GatewayError = GatewayError::client(ErrorKind::NotFound, "no route");

    pub fn status(self) -> u16 {
        match self.kind {
            ErrorKind::BadRequest | ErrorKind::BadRequestBody | ErrorKind::BadRequestParameters => {
                400
            }
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::InvalidApiKey => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UriTooLong => 414,
            ErrorKind::ExpectationFailed => 417,
            ErrorKind::MisdirectedRequest => 421,
            ErrorKind::HeaderFieldsTooLarge => 431,
            ErrorKind::Throttled | ErrorKind::QuotaExceeded => 429,
            ErrorKind::Unauthorized => 401,
            ErrorKind::AccessDenied
            | ErrorKind::MissingAuthenticationToken
            | ErrorKind::InvalidSignature
            | ErrorKind::ExpiredToken => 403,
            ErrorKind::LengthRequired => 411,
            ErrorKind::AuthorizerFailure
            | ErrorKind::AuthorizerConfiguration
            | ErrorKind::IntegrationFailure => 500,
            ErrorKind::ApiConfiguration => 500,
            ErrorKind::NotImplemented => 501,
            ErrorKind::BadGateway => 502,
            ErrorKind::ServiceUnavailable => 503,
            ErrorKind::GatewayTimeout => 504,
        }
    }

    /// `$context.error.message`, and the built-in body's message, as AWS words it.
    pub fn message(self) -> &'static str {
        match self.kind {
            ErrorKind::BadRequest => "Bad Request",
            ErrorKind::BadRequestBody => "Invalid request body",
            // The names go in the refusal's own message.
            ErrorKind::BadRequestParameters => "Missing required request parameters",
            ErrorKind::UnsupportedMediaType => "Unsupported Media Type",
            ErrorKind::InvalidApiKey => "Forbidden",
            ErrorKind::NotFound => "Not Found",
            ErrorKind::MethodNotAllowed => "Method Not Allowed",
            ErrorKind::RequestTimeout => "Request Timeout",
            ErrorKind::PayloadTooLarge => "Request Entity Too Large",
            ErrorKind::UriTooLong => "Request-URI Too Long",
            ErrorKind::ExpectationFailed => "Expectation Failed",
            ErrorKind::MisdirectedRequest => "Misdirected Request",
            ErrorKind::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            ErrorKind::Throttled => "Too Many Requests",
            ErrorKind::QuotaExceeded => "Limit Exceeded",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::AccessDenied => "Forbidden",
            ErrorKind::MissingAuthenticationToken => "Missing Authentication Token",
            ErrorKind::InvalidSignature => {
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
            }
            ErrorKind::ExpiredToken => "Signature expired",
            ErrorKind::LengthRequired => "Length Required",
            ErrorKind::AuthorizerFailure
            | ErrorKind::AuthorizerConfiguration
            | ErrorKind::IntegrationFailure => "Internal Server Error",
            ErrorKind::ApiConfiguration | ErrorKind::BadGateway => "Internal Server Error",
            ErrorKind::NotImplemented => "Not Implemented",
            ErrorKind::ServiceUnavailable => "Service Unavailable",
            ErrorKind::GatewayTimeout => "Endpoint request timed out",
        }
    }

    /// The gateway response type that answers this error (AWS, "Gateway response types").
    /// Errors AWS has no type for are answered by the default of their class.
    pub fn response_type(self) -> ResponseType {
        match self.kind {
            ErrorKind::NotFound => ResponseType::ResourceNotFound,
            ErrorKind::InvalidApiKey => ResponseType::InvalidApiKey,
            ErrorKind::Throttled => ResponseType::Throttled,
            ErrorKind::QuotaExceeded => ResponseType::QuotaExceeded,
            ErrorKind::Unauthorized => ResponseType::Unauthorized,
            ErrorKind::AccessDenied => ResponseType::AccessDenied,
            ErrorKind::MissingAuthenticationToken => ResponseType::MissingAuthenticationToken,
            ErrorKind::InvalidSignature => ResponseType::InvalidSignature,
            ErrorKind::ExpiredToken => ResponseType::ExpiredToken,
            ErrorKind::AuthorizerFailure => ResponseType::AuthorizerFailure,
            ErrorKind::AuthorizerConfiguration => ResponseType::AuthorizerConfigurationError,
            ErrorKind::PayloadTooLarge => ResponseType::RequestTooLarge,
            ErrorKind::BadRequestBody => ResponseType::BadRequestBody,
            ErrorKind::BadRequestParameters => ResponseType::BadRequestParameters,
            ErrorKind::UnsupportedMediaType => ResponseType::UnsupportedMediaType,
            ErrorKind::ApiConfiguration => ResponseType::ApiConfigurationError,
            ErrorKind::BadGateway | ErrorKind::IntegrationFailure => {
                ResponseType::IntegrationFailure
            }
            ErrorKind::GatewayTimeout => ResponseType::IntegrationTimeout,
            _ => ResponseType::fallback(self.status()),
        }
    }

    /// The `x-amzn-ErrorType` header value.
    pub fn error_type(self) -> &'static str {
        match self.kind {
            ErrorKind::NotFound => "NotFoundException",
            ErrorKind::InvalidApiKey => "ForbiddenException",
            ErrorKind::Throttled => "TooManyRequestsException",
            ErrorKind::QuotaExceeded => "LimitExceededException",
            ErrorKind::Unauthorized => "UnauthorizedException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::ExpiredToken => "InvalidSignatureException",
            ErrorKind::AuthorizerFailure | ErrorKind::AuthorizerConfiguration => {
                "AuthorizerConfigurationException"
            }
            ErrorKind::PayloadTooLarge => "RequestEntityTooLargeException",
            ErrorKind::GatewayTimeout => "IntegrationTimeoutException",
            ErrorKind::BadGateway | ErrorKind::ApiConfiguration | ErrorKind::IntegrationFailure => {
                "InternalServerErrorException"
            }
            ErrorKind::ServiceUnavailable => "ServiceUnavailableException",
            _ => "BadRequestException",
        }
    }

    /// Whether the connection must close after this answer (the request could not be read to
    /// its end, so nothing after it on the connection can be trusted).
    pub fn closes(self) -> bool {
        matches!(
            self.kind,
            ErrorKind::BadRequest
                | ErrorKind::RequestTimeout
                | ErrorKind::UriTooLong
                | ErrorKind::HeaderFieldsTooLarge
                | ErrorKind::NotImplemented
                | ErrorKind::MethodNotAllowed
                | ErrorKind::ExpectationFailed
                | ErrorKind::MisdirectedRequest
        )
    }

    /// Whether the integration failed (a 502 or 504 of the gateway's own), which is logged
    /// with its reason.
    pub fn is_integration_failure(self) -> bool {
        self.side == Side::Upstream
    }

    /// For an `http_proxy` integration's failure: why, as a
    /// [`turnpike_core::metrics::UPSTREAM_CAUSES`] index (connect, timeout, reset,
    /// bad_response), from the kind and the reason the upstream code gives.
    pub fn upstream_cause(self) -> usize {
        if self.kind == ErrorKind::GatewayTimeout {
            return 1;
        }
        let r = self.reason;
        if r.contains("refused the connection") || r.contains("connect failed") || r.contains("TLS")
        {
            0
        } else if r.contains("closed the connection")
            || r.contains("closed mid-response")
            || r.contains("read failed")
        {
            2
        } else {
            3
        }
    }
}

impl From<RefusalKind> for GatewayError {
    fn from(kind: RefusalKind) -> GatewayError {
        match kind {
            RefusalKind::InvalidApiKey => {
                GatewayError::client(ErrorKind::InvalidApiKey, "no valid API key for this stage")
            }
            RefusalKind::Throttled => GatewayError::client(ErrorKind::Throttled, "throttled"),
            RefusalKind::QuotaExceeded => {
                GatewayError::client(ErrorKind::QuotaExceeded, "usage plan quota exceeded")
            }
        }
    }
}

impl From<HeadError> for GatewayError {
    fn from(e: HeadError) -> GatewayError {
        let (kind, reason) = match e {
            HeadError::BadRequest(why) => (ErrorKind::BadRequest, why),
            HeadError::UriTooLong => (ErrorKind::UriTooLong, "request line too long"),
            HeadError::HeaderTooLarge => (ErrorKind::HeaderFieldsTooLarge, "header too large"),
            HeadError::MethodNotAllowed => (ErrorKind::MethodNotAllowed, "method not allowed"),
            HeadError::NotImplemented => (ErrorKind::NotImplemented, "method not implemented"),
            HeadError::ExpectationFailed => (ErrorKind::ExpectationFailed, "unsupported Expect"),
        };
        GatewayError::client(kind, reason)
    }
}

#[cfg(test)]
mod cause_tests {
    use super::*;

    /// Every reason the upstream code gives lands in the cause it means.
    #[test]
    fn upstream_reasons_have_their_cause() {
        let cause = |kind, reason| GatewayError::upstream(kind, reason).upstream_cause();
        use ErrorKind::{BadGateway, GatewayTimeout};
        for (kind, reason, want) in [
            (BadGateway, "upstream refused the connection", 0),
            (BadGateway, "upstream connect failed", 0),
            (
                BadGateway,
                "upstream TLS handshake failed: certificate expired",
                0,
            ),
            (GatewayTimeout, "upstream connect timed out", 1),
            (
                GatewayTimeout,
                "integration timed out waiting for the response head",
                1,
            ),
            (
                BadGateway,
                "upstream closed the connection before a response head",
                2,
            ),
            (
                BadGateway,
                "upstream closed the connection while the request was sent",
                2,
            ),
            (BadGateway, "connection closed mid-response", 2),
            (BadGateway, "upstream read failed", 2),
            (BadGateway, "upstream sent a malformed response head", 3),
            (
                BadGateway,
                "upstream switched protocols on an HTTP route",
                3,
            ),
            (BadGateway, "response body too large", 3),
        ] {
            assert_eq!(cause(kind, reason), want, "{reason}");
        }
    }
}
