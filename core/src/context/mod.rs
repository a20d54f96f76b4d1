//! The `$context` of an HTTP API request or a WebSocket API event: its variables ([`Var`]),
//! the values the proxy fills in ([`RequestContext`], with [`WebsocketContext`] for a
//! WebSocket event), templates over them ([`Template`], rendered with an [`Escape`]),
//! request ids ([`RequestIds`]) and the CLF request time ([`RequestTime`]).
//!
//! Used by per-stage access logs (`accessLogSettings.format`, see
//! [`crate::access_log::AccessLogFormat`]) and by custom gateway response bodies
//! (`{"message":$context.error.messageString}`), later by authorizers. Variable meanings
//! follow AWS's "Customize HTTP API access logs", and "Configure logging for WebSocket APIs"
//! for the WebSocket ones.
//!
//! Sans-io: nothing here reads a clock or allocates when rendering; times come in as epoch
//! milliseconds and text goes into the caller's `Vec<u8>`.
//!
//! - `var.rs`: the variables and what each renders;
//! - `template.rs`: parsing and rendering templates;
//! - `escape.rs`: JSON, XML and CSV escaping of values;
//! - `ids.rs`: per-core request id generation;
//! - `time.rs`: the CLF time.

pub mod escape;
mod ids;
mod template;
pub(crate) mod time;
pub(crate) use time::civil_from_days;
mod var;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use escape::Escape;
pub use ids::{RequestId, RequestIds};
pub use template::Template;
pub use time::RequestTime;
pub(crate) use var::Value as VarValue;
pub use var::Var;

/// What the proxy knows about one request, borrowed for the time of a render.
///
/// Fill in what is known and leave the rest at [`Default`]: an empty string, a `None`, a zero
/// `status` or a zero `request_time_epoch_ms` render as `-`, which is what AWS writes for a
/// value it does not have. (`Some("")` renders as an empty string: the client sent an empty
/// header.) Numbers that can truly be zero (`response_length`, `response_latency_ms`,
/// `data_processed`) always render.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestContext<'a> {
    /// `$context.requestId`: the id from [`RequestIds::next`].
    pub request_id: &'a str,
    /// `$context.extendedRequestId`; empty means the same as `request_id` (AWS HTTP APIs
    /// document the two as equivalent).
    pub extended_request_id: &'a str,
    /// `$context.identity.sourceIp`: the peer address of the client's TCP connection.
    pub source_ip: Option<IpAddr>,
    /// `$context.identity.userAgent`: the `User-Agent` header, if sent.
    pub user_agent: Option<&'a str>,
    /// When the request arrived, milliseconds since the Unix epoch. Renders
    /// `$context.requestTime` (CLF, UTC) and `$context.requestTimeEpoch` (whole seconds).
    pub request_time_epoch_ms: u64,
    /// `$context.httpMethod`: `GET`, `POST`, ...
    pub method: &'a str,
    /// `$context.path`: the path as the client sent it (`/prod/users/42`).
    pub path: &'a str,
    /// `$context.protocol`: `HTTP/1.1`.
    pub protocol: &'a str,
    /// `$context.routeKey`: the matched route key (`GET /users/{id}`, `$default`).
    pub route_key: &'a str,
    /// `$context.stage`: the stage name.
    pub stage: &'a str,
    /// `$context.apiId`: the API's id.
    pub api_id: &'a str,
    /// `$context.domainName`: the Host the API was called on.
    pub domain_name: &'a str,
    /// `$context.domainPrefix`; empty means the first label of `domain_name`.
    pub domain_prefix: &'a str,
    /// `$context.customDomain.basePathMatched`: the API mapping's base path, on a custom
    /// domain.
    pub base_path_matched: Option<&'a str>,
    /// `$context.accountId`: the configured account id, if any.
    pub account_id: Option<&'a str>,
    /// `$context.status`: the status sent to the client (0 = not known yet).
    pub status: u16,
    /// `$context.responseLength`: response payload bytes.
    pub response_length: u64,
    /// `$context.responseLatency`: milliseconds from request received to response sent.
    pub response_latency_ms: u64,
    /// `$context.integrationLatency` / `integration.latency`: milliseconds the integration
    /// took; `None` when no integration ran.
    pub integration_latency_ms: Option<u64>,
    /// `$context.integrationStatus` / `integration.status` / `integration.integrationStatus`:
    /// the status the integration answered with.
    pub integration_status: Option<u16>,
    /// `$context.integrationErrorMessage` / `integration.error`: why the integration failed.
    pub integration_error: Option<&'a str>,
    /// `$context.awsEndpointRequestId` / `integration.requestId`: the invocation's request id
    /// (a function integration's `Lambda-Runtime-Aws-Request-Id`).
    pub integration_request_id: Option<&'a str>,
    /// `$context.error.message` (raw) and `error.messageString` (as a JSON string): the
    /// gateway's own error message, such as `Not Found`.
    pub error_message: Option<&'a str>,
    /// `$context.error.responseType`: the gateway response type (`DEFAULT_4XX`).
    pub error_response_type: Option<&'a str>,
    /// `$context.error.validationErrorString`: why request validation refused the request.
    pub validation_error: Option<&'a str>,
    /// `$context.dataProcessed`: request plus response payload bytes.
    pub data_processed: u64,
    /// `$context.identity.clientCert.*`: the client certificate, on a mutual TLS domain.
    pub client_cert: Option<ClientCertInfo<'a>>,
    /// `$context.authorizer.error`: the error an authorizer returned.
    pub authorizer_error: Option<&'a str>,
    /// `$context.authorizer.principalId`: the principal a Lambda authorizer returned.
    pub authorizer_principal_id: Option<&'a str>,
    /// `$context.authorizer.claims.*` (JWT) and `$context.authorizer.*` (a request
    /// authorizer's context).
    pub authorizer: Option<AuthorizerRef<'a>>,
    /// `$context.identity.accessKey`: the SigV4 access key id.
    pub identity_access_key: Option<&'a str>,
    /// `$context.identity.caller` and `.user`: the SigV4 principal.
    pub identity_caller: Option<&'a str>,
    /// `$context.cacheStatus` (turnpike's): `hit`, `miss` or `bypass`; `None` on routes that
    /// do not cache.
    pub cache_status: Option<&'a str>,
    /// The WebSocket event this line is about; `None` for an HTTP request. Its presence also
    /// makes `$context.requestTimeEpoch` render milliseconds, as AWS logs it for WebSocket
    /// APIs.
    pub websocket: Option<WebsocketContext<'a>>,
}

/// The `$context` values of one WebSocket event (AWS "Configure logging for WebSocket APIs
/// in API Gateway", and the event's `requestContext`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebsocketContext<'a> {
    /// `$context.eventType`: `CONNECT`, `MESSAGE` or `DISCONNECT`.
    pub event_type: &'a str,
    /// `$context.connectionId`: the connection's id (`AZrUGE8AAAAAAAE=`); empty for a
    /// handshake refused before it got one.
    pub connection_id: &'a str,
    /// `$context.messageId`: the message's id, on `MESSAGE` events only.
    pub message_id: Option<&'a str>,
    /// `$context.connectedAt`: when the connection was accepted, milliseconds since the Unix
    /// epoch; 0 when it never was.
    pub connected_at_ms: u64,
    /// `$context.disconnectStatusCode` (turnpike's, from the `DISCONNECT` event's
    /// `requestContext`): the close code, 1005 without one, 1006 for a dropped connection.
    pub disconnect_status_code: Option<u16>,
    /// `$context.disconnectReason` (turnpike's, from the `DISCONNECT` event).
    pub disconnect_reason: Option<&'a str>,
}

/// What an authorizer learned about the caller, by name.
pub trait AuthorizerValues {
    /// A JWT claim (`$context.authorizer.claims.{name}`).
    fn claim(&self, name: &str) -> Option<&str>;
    /// A request authorizer's context value (`$context.authorizer.{name}`).
    fn property(&self, name: &str) -> Option<&str>;
}

/// A borrowed [`AuthorizerValues`].
#[derive(Clone, Copy)]
pub struct AuthorizerRef<'a>(pub &'a dyn AuthorizerValues);

impl std::fmt::Debug for AuthorizerRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthorizerRef")
    }
}

/// The client certificate of a mutual TLS connection, as `$context.identity.clientCert.*`
/// shows it (AWS "Configuring mutual TLS authentication for an HTTP API").
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCertInfo<'a> {
    /// `clientCertPem`: the certificate, PEM encoded.
    pub pem: &'a str,
    /// `subjectDN`: the subject's distinguished name.
    pub subject_dn: &'a str,
    /// `issuerDN`: the issuer's distinguished name.
    pub issuer_dn: &'a str,
    /// `serialNumber`: the serial number.
    pub serial_number: &'a str,
    /// `validity.notBefore`: the start of validity, as the TLS layer prints it.
    pub not_before: &'a str,
    /// `validity.notAfter`: the end of validity, as the TLS layer prints it.
    pub not_after: &'a str,
}
