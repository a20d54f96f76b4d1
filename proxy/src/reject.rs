//! Every answer the gateway gives on its own — errors, refusals — in one place, AWS-shaped:
//! `{"message":"Not Found"}` with the matching status.

use crate::h1::{encode, request::HeadError};

/// A response the gateway itself sends instead of (or in place of) an integration's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    UriTooLong,
    ExpectationFailed,
    HeaderFieldsTooLarge,
    InternalError,
    NotImplemented,
    /// The upstream could not be reached or answered with something unusable.
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
}

impl Reject {
    pub fn status(self) -> u16 {
        match self {
            Reject::BadRequest => 400,
            Reject::NotFound => 404,
            Reject::MethodNotAllowed => 405,
            Reject::RequestTimeout => 408,
            Reject::PayloadTooLarge => 413,
            Reject::UriTooLong => 414,
            Reject::ExpectationFailed => 417,
            Reject::HeaderFieldsTooLarge => 431,
            Reject::InternalError => 500,
            Reject::NotImplemented => 501,
            Reject::BadGateway => 502,
            Reject::ServiceUnavailable => 503,
            Reject::GatewayTimeout => 504,
        }
    }

    /// The JSON body, as AWS API Gateway words it.
    pub fn body(self) -> &'static str {
        match self {
            Reject::BadRequest => r#"{"message":"Bad Request"}"#,
            Reject::NotFound => r#"{"message":"Not Found"}"#,
            Reject::MethodNotAllowed => r#"{"message":"Method Not Allowed"}"#,
            Reject::RequestTimeout => r#"{"message":"Request Timeout"}"#,
            Reject::PayloadTooLarge => r#"{"message":"Request Entity Too Large"}"#,
            Reject::UriTooLong => r#"{"message":"Request-URI Too Long"}"#,
            Reject::ExpectationFailed => r#"{"message":"Expectation Failed"}"#,
            Reject::HeaderFieldsTooLarge => r#"{"message":"Request Header Fields Too Large"}"#,
            Reject::InternalError | Reject::BadGateway => r#"{"message":"Internal Server Error"}"#,
            Reject::NotImplemented => r#"{"message":"Not Implemented"}"#,
            Reject::ServiceUnavailable => r#"{"message":"Service Unavailable"}"#,
            Reject::GatewayTimeout => r#"{"message":"Endpoint request timed out"}"#,
        }
    }

    /// Whether the connection must close after this answer (the request could not be read to
    /// its end, so nothing after it on the connection can be trusted).
    pub fn closes(self) -> bool {
        matches!(
            self,
            Reject::BadRequest
                | Reject::RequestTimeout
                | Reject::UriTooLong
                | Reject::HeaderFieldsTooLarge
                | Reject::NotImplemented
                | Reject::MethodNotAllowed
                | Reject::ExpectationFailed
        )
    }

    /// Writes the whole response into `out`.
    pub fn write(self, out: &mut Vec<u8>, date: &[u8], close: bool, head_only: bool) {
        let status = self.status();
        encode::status_line(out, status, encode::reason(status).as_bytes());
        encode::header(out, b"Date", date);
        encode::header(out, b"Content-Type", b"application/json");
        encode::content_length(out, self.body().len() as u64);
        encode::header(out, b"x-amzn-ErrorType", self.error_type().as_bytes());
        if close {
            encode::header(out, b"Connection", b"close");
        }
        out.extend_from_slice(encode::CRLF);
        if !head_only {
            out.extend_from_slice(self.body().as_bytes());
        }
    }

    fn error_type(self) -> &'static str {
        match self {
            Reject::NotFound => "NotFoundException",
            Reject::PayloadTooLarge => "RequestEntityTooLargeException",
            Reject::GatewayTimeout => "IntegrationTimeoutException",
            Reject::BadGateway | Reject::InternalError => "InternalServerErrorException",
            Reject::ServiceUnavailable => "ServiceUnavailableException",
            _ => "BadRequestException",
        }
    }
}

impl From<HeadError> for Reject {
    fn from(e: HeadError) -> Reject {
        match e {
            HeadError::BadRequest(_) => Reject::BadRequest,
            HeadError::UriTooLong => Reject::UriTooLong,
            HeadError::HeaderTooLarge => Reject::HeaderFieldsTooLarge,
            HeadError::MethodNotAllowed => Reject::MethodNotAllowed,
            HeadError::NotImplemented => Reject::NotImplemented,
            HeadError::ExpectationFailed => Reject::ExpectationFailed,
        }
    }
}
