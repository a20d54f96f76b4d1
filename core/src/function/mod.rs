//! The AWS Lambda proxy integration, sans I/O: the event a function receives for a request
//! (payload formats 2.0 and 1.0) and the reading of what it returns.
//!
//! - [`event`]: `event_v2` / `event_v1` from a request's facts, body and authorizer result;
//!   [`event::is_binary`], the rule for base64 bodies.
//! - [`response`]: `parse_response`, the function's answer checked into a status, headers,
//!   cookies and body.
//!
//! The event shares its request fields with the request-authorizer event
//! ([`crate::auth::request_authorizer`]). Nothing here invokes a function or reads a clock;
//! the proxy crate sends the event and hands back the payload. Building an event allocates
//! (serde_json): a function invocation costs far more than that.

pub mod event;
pub mod response;

#[cfg(test)]
mod tests;

pub use event::{EventAuthorizer, ProxyEvent, event_v1, event_v2, is_binary};
pub use response::{FunctionResponse, ResponseError, parse_response};
