//! The `$context` variables of an HTTP API or a WebSocket API event and what each one renders
//! from a [`RequestContext`].
//!
//! Names and meanings follow AWS's "Customize HTTP API access logs" table
//! (`apigateway/latest/developerguide/http-api-logging-variables`) and, for `eventType`,
//! `connectionId`, `messageId` and `connectedAt`, "Configure logging for WebSocket APIs"
//! (`websocket-api-logging`); they render `-` on HTTP requests. Variables AWS documents but
//! turnpike does not produce yet (IAM and Cognito identities, the `x-amz-id-2` id) parse, so an
//! AWS format string works unchanged, and render `-`, as AWS renders any value it lacks.

use super::RequestContext;

macro_rules! vars {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// One `$context` variable of an HTTP API (written without the `$context.` prefix in
        /// [`Var::name`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Var {
            $( $(#[$doc])* $variant, )*
        }

        impl Var {
            /// Every variable, in declaration order (its position is its bit in a template's
            /// `uses` mask).
            pub const ALL: &'static [Var] = &[$( Var::$variant, )*];

            /// The name after `$context.`, spelled as AWS spells it (`identity.sourceIp`).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Var::$variant => $name, )*
                }
            }
        }
    };
}

vars! {
    /// The API owner's account id: the configured value, else `-`.
    AccountId = "accountId",
    /// turnpike's own (not AWS's): how the stage cache served the request: `hit`, `miss`
    /// (cacheable, sent to the integration), `bypass` (an authorized `Cache-Control:
    /// max-age=0`, or a response the cache refreshed); `-` on routes that do not cache.
    CacheStatus = "cacheStatus",
    /// The id of the API (`api_id`).
    ApiId = "apiId",
    /// WebSocket: when the connection was accepted, milliseconds since the Unix epoch.
    ConnectedAt = "connectedAt",
    /// WebSocket: the connection's id.
    ConnectionId = "connectionId",
    /// WebSocket (turnpike's; AWS puts it in the `DISCONNECT` event): the close code of a
    /// disconnection (1005: a close frame without one, 1006: the TCP connection dropped).
    DisconnectStatusCode = "disconnectStatusCode",
    /// WebSocket (turnpike's; AWS puts it in the `DISCONNECT` event): why the connection
    /// ended (`Client closed`, `Going away`, ...).
    DisconnectReason = "disconnectReason",
    /// WebSocket: `CONNECT`, `MESSAGE` or `DISCONNECT`.
    EventType = "eventType",
    /// WebSocket: the message's id, on `MESSAGE` events.
    MessageId = "messageId",
    /// The error message an authorizer returned.
    AuthorizerError = "authorizer.error",
    /// The principal id a Lambda authorizer returned.
    AuthorizerPrincipalId = "authorizer.principalId",
    /// The request id of the function invocation behind the integration (Lambda's
    /// `x-amzn-RequestId`). Same value as `integration.requestId`.
    AwsEndpointRequestId = "awsEndpointRequestId",
    /// AWS's `x-amz-id-2` header: never produced, renders `-`.
    AwsEndpointRequestId2 = "awsEndpointRequestId2",
    /// The API mapping base path the request matched on a custom domain (`v1/orders`).
    CustomDomainBasePathMatched = "customDomain.basePathMatched",
    /// Bytes processed for the request (request plus response payload), decimal.
    DataProcessed = "dataProcessed",
    /// The Host the API was called on.
    DomainName = "domainName",
    /// The first label of the domain name.
    DomainPrefix = "domainPrefix",
    /// The gateway's own error message (`Not Found`), raw.
    ErrorMessage = "error.message",
    /// The error message as a quoted JSON string (`"Not Found"`), for gateway response
    /// bodies such as `{"message":$context.error.messageString}`; `-` when there is no error.
    ErrorMessageString = "error.messageString",
    /// The gateway response type (`DEFAULT_4XX`, `THROTTLED`, ...).
    ErrorResponseType = "error.responseType",
    /// Why request validation refused the request (`Missing required request parameters:
    /// [limit]`, or the body's errors against its model), raw.
    ErrorValidationErrorString = "error.validationErrorString",
    /// For HTTP APIs AWS documents it as equivalent to `requestId`: the extended id when the
    /// proxy sets one, else the request id.
    ExtendedRequestId = "extendedRequestId",
    /// The request method (`GET`).
    HttpMethod = "httpMethod",
    /// IAM: the access key id that signed the request.
    IdentityAccessKey = "identity.accessKey",
    /// IAM only: never produced, renders `-`.
    IdentityAccountId = "identity.accountId",
    /// IAM: the principal that signed the request.
    IdentityCaller = "identity.caller",
    /// mTLS: the client certificate, PEM.
    IdentityClientCertPem = "identity.clientCert.clientCertPem",
    /// mTLS: the certificate's issuer distinguished name.
    IdentityClientCertIssuerDn = "identity.clientCert.issuerDN",
    /// mTLS: the certificate's serial number.
    IdentityClientCertSerialNumber = "identity.clientCert.serialNumber",
    /// mTLS: the certificate's subject distinguished name.
    IdentityClientCertSubjectDn = "identity.clientCert.subjectDN",
    /// mTLS: the date after which the certificate is invalid.
    IdentityClientCertNotAfter = "identity.clientCert.validity.notAfter",
    /// mTLS: the date before which the certificate is invalid.
    IdentityClientCertNotBefore = "identity.clientCert.validity.notBefore",
    /// Cognito only: never produced, renders `-`.
    IdentityCognitoAuthenticationProvider = "identity.cognitoAuthenticationProvider",
    /// Cognito only: never produced, renders `-`.
    IdentityCognitoAuthenticationType = "identity.cognitoAuthenticationType",
    /// Cognito only: never produced, renders `-`.
    IdentityCognitoIdentityId = "identity.cognitoIdentityId",
    /// Cognito only: never produced, renders `-`.
    IdentityCognitoIdentityPoolId = "identity.cognitoIdentityPoolId",
    /// IAM only: never produced, renders `-`.
    IdentityPrincipalOrgId = "identity.principalOrgId",
    /// The source address of the client's TCP connection (never `X-Forwarded-For`).
    IdentitySourceIp = "identity.sourceIp",
    /// IAM: the principal that signed the request (same as `identity.caller`).
    IdentityUser = "identity.user",
    /// The client's `User-Agent` header.
    IdentityUserAgent = "identity.userAgent",
    /// IAM only: never produced, renders `-`.
    IdentityUserArn = "identity.userArn",
    /// The integration's error message. Same value as `integrationErrorMessage`.
    IntegrationError = "integration.error",
    /// The integration service's status. Same value as `integrationStatus`.
    IntegrationIntegrationStatus = "integration.integrationStatus",
    /// Integration latency in milliseconds. Same value as `integrationLatency`.
    IntegrationLatencyDotted = "integration.latency",
    /// The integration's request id. Same value as `awsEndpointRequestId`.
    IntegrationRequestId = "integration.requestId",
    /// The status the integration answered with. Same value as `integrationStatus`.
    IntegrationStatusDotted = "integration.status",
    /// The integration's error message (`-` when it answered).
    IntegrationErrorMessage = "integrationErrorMessage",
    /// Integration latency in milliseconds (`-` when no integration ran).
    IntegrationLatency = "integrationLatency",
    /// The status the integration answered with (`-` when no integration answered).
    IntegrationStatus = "integrationStatus",
    /// The request path as the client sent it, stage prefix included (`/prod/users/42`).
    Path = "path",
    /// The request protocol (`HTTP/1.1`).
    Protocol = "protocol",
    /// The id the gateway gave the request (`JKJaXmhLoAMEJeQ=`).
    RequestId = "requestId",
    /// The request time, CLF style in UTC: `dd/MMM/yyyy:HH:mm:ss +0000`.
    RequestTime = "requestTime",
    /// The request time in whole seconds since the Unix epoch. AWS HTTP APIs log seconds
    /// (`"requestTimeEpoch":"1747602530"` beside `"requestTime":"18/May/2025:21:08:50 +0000"`),
    /// unlike REST APIs and the Lambda event's `timeEpoch`, which carry milliseconds.
    /// WebSocket events log milliseconds, as AWS's WebSocket logs and events do.
    RequestTimeEpoch = "requestTimeEpoch",
    /// From receiving the request to the last response byte, in milliseconds.
    ResponseLatency = "responseLatency",
    /// The response payload length in bytes.
    ResponseLength = "responseLength",
    /// The route key that matched (`GET /users/{id}`, `$default`).
    RouteKey = "routeKey",
    /// The stage name (`prod`, `$default`).
    Stage = "stage",
    /// The status sent to the client.
    Status = "status",
}

impl Var {
    /// The variable named `name` (without `$context.`), exactly as AWS spells it.
    pub fn parse(name: &str) -> Option<Var> {
        Var::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// This variable's bit in a `uses` mask.
    pub(crate) const fn bit(self) -> u128 {
        1u128 << (self as u32)
    }

    /// What this variable holds for `ctx`.
    pub(crate) fn value<'a>(self, ctx: &RequestContext<'a>) -> Value<'a> {
        use Value::{Missing, Num, Quoted, Time};
        let text = |s: &'a str| {
            if s.is_empty() {
                Missing
            } else {
                Value::Text(s)
            }
        };
        let opt = |s: Option<&'a str>| s.map_or(Missing, Value::Text);
        let ws = ctx.websocket;
        let cert = |f: fn(&super::ClientCertInfo<'a>) -> &'a str| {
            ctx.client_cert.as_ref().map_or(Missing, |c| text(f(c)))
        };
        match self {
            Var::AccountId => opt(ctx.account_id),
            Var::ApiId => text(ctx.api_id),
            Var::CacheStatus => opt(ctx.cache_status),
            Var::AuthorizerError => opt(ctx.authorizer_error),
            Var::AuthorizerPrincipalId => opt(ctx.authorizer_principal_id),
            Var::AwsEndpointRequestId | Var::IntegrationRequestId => {
                opt(ctx.integration_request_id)
            }
            Var::CustomDomainBasePathMatched => opt(ctx.base_path_matched),
            Var::DataProcessed => Num(ctx.data_processed),
            Var::DomainName => text(ctx.domain_name),
            Var::DomainPrefix => {
                if ctx.domain_prefix.is_empty() {
                    let host = ctx.domain_name;
                    text(host.split('.').next().unwrap_or(host))
                } else {
                    text(ctx.domain_prefix)
                }
            }
            Var::ErrorMessage => opt(ctx.error_message),
            Var::ErrorMessageString => ctx.error_message.map_or(Missing, Quoted),
            Var::ErrorResponseType => opt(ctx.error_response_type),
            Var::ErrorValidationErrorString => opt(ctx.validation_error),
            Var::ExtendedRequestId => {
                if ctx.extended_request_id.is_empty() {
                    text(ctx.request_id)
                } else {
                    text(ctx.extended_request_id)
                }
            }
            Var::HttpMethod => text(ctx.method),
            Var::IdentityClientCertPem => cert(|c| c.pem),
            Var::IdentityClientCertIssuerDn => cert(|c| c.issuer_dn),
            Var::IdentityClientCertSerialNumber => cert(|c| c.serial_number),
            Var::IdentityClientCertSubjectDn => cert(|c| c.subject_dn),
            Var::IdentityClientCertNotAfter => cert(|c| c.not_after),
            Var::IdentityClientCertNotBefore => cert(|c| c.not_before),
            Var::IdentitySourceIp => ctx.source_ip.map_or(Missing, Value::Ip),
            Var::IdentityUserAgent => opt(ctx.user_agent),
            Var::IdentityAccessKey => opt(ctx.identity_access_key),
            Var::IdentityCaller | Var::IdentityUser => opt(ctx.identity_caller),
            Var::IntegrationError | Var::IntegrationErrorMessage => opt(ctx.integration_error),
            Var::IntegrationIntegrationStatus
            | Var::IntegrationStatusDotted
            | Var::IntegrationStatus => ctx.integration_status.map_or(Missing, |s| Num(s.into())),
            Var::IntegrationLatencyDotted | Var::IntegrationLatency => {
                ctx.integration_latency_ms.map_or(Missing, Num)
            }
            Var::Path => text(ctx.path),
            Var::Protocol => text(ctx.protocol),
            Var::RequestId => text(ctx.request_id),
            Var::RequestTime if ctx.request_time_epoch_ms == 0 => Missing,
            Var::RequestTime => Time(ctx.request_time_epoch_ms),
            Var::RequestTimeEpoch if ctx.request_time_epoch_ms == 0 => Missing,
            Var::RequestTimeEpoch if ctx.websocket.is_some() => Num(ctx.request_time_epoch_ms),
            Var::RequestTimeEpoch => Num(ctx.request_time_epoch_ms / 1000),
            Var::ConnectedAt => ws.map_or(Missing, |w| {
                if w.connected_at_ms == 0 {
                    Missing
                } else {
                    Num(w.connected_at_ms)
                }
            }),
            Var::ConnectionId => ws.map_or(Missing, |w| text(w.connection_id)),
            Var::DisconnectStatusCode => ws
                .and_then(|w| w.disconnect_status_code)
                .map_or(Missing, |c| Num(c.into())),
            Var::DisconnectReason => opt(ws.and_then(|w| w.disconnect_reason)),
            Var::EventType => ws.map_or(Missing, |w| text(w.event_type)),
            Var::MessageId => opt(ws.and_then(|w| w.message_id)),
            Var::ResponseLatency => Num(ctx.response_latency_ms),
            Var::ResponseLength => Num(ctx.response_length),
            Var::RouteKey => text(ctx.route_key),
            Var::Stage => text(ctx.stage),
            Var::Status if ctx.status == 0 => Missing,
            Var::Status => Num(ctx.status.into()),
            Var::AwsEndpointRequestId2
            | Var::IdentityAccountId
            | Var::IdentityCognitoAuthenticationProvider
            | Var::IdentityCognitoAuthenticationType
            | Var::IdentityCognitoIdentityId
            | Var::IdentityCognitoIdentityPoolId
            | Var::IdentityPrincipalOrgId
            | Var::IdentityUserArn => Missing,
        }
    }
}

/// A variable's value before escaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// Not known for this request: rendered `-`.
    Missing,
    /// Text from the request or the config: escaped for the format.
    Text(&'a str),
    /// A decimal number.
    Num(u64),
    /// An address, printed the standard way (`203.0.113.7`, `2001:db8::1`).
    Ip(std::net::IpAddr),
    /// A CLF time from epoch milliseconds.
    Time(u64),
    /// Text rendered as a JSON string literal, quotes included.
    Quoted(&'a str),
}
