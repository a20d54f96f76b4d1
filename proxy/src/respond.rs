//! Every answer the gateway writes, and the one decision of whether a connection stays open.
//!
//! Three kinds of answer leave the gateway: its own (a [`GatewayError`], rendered through the
//! API's gateway responses), a mock integration's, and an upstream's response head. Each ends
//! with the same lines, written by [`finish_head`]: `apigw-requestid`, the CORS headers when
//! the API has CORS and the Origin matches (`Vary: Origin` when it does not), and `Connection`
//! as [`persist`] decides.
//!
//! Hot path: no locks, no allocation beyond the pooled output buffer.

use turnpike_core::{
    config::Api,
    gateway_response::{GatewayResponseFile, ResponseType},
};

use crate::{
    error::GatewayError,
    h1::{encode, request::RequestHead},
    plan::MockResponse,
};

/// What the `Connection` header says to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// HTTP/1.1 default: nothing to say.
    Default,
    Close,
    /// An HTTP/1.0 client asked to keep the connection and may.
    KeepAlive,
}

/// Whether the connection may carry another request after this answer: the request was read
/// to its end, the client wants it kept (RFC 9112 section 9.3), the answer does not close it,
/// and the gateway is not draining. The one place this is decided.
#[inline]
pub fn keep_alive(head: &RequestHead, request_read: bool, closes: bool, draining: bool) -> bool {
    request_read && head.keep_alive && !closes && !draining
}

/// The `Connection` header for a decision: `close`, nothing for HTTP/1.1, `keep-alive` for an
/// HTTP/1.0 client that asked for it.
#[inline]
pub fn persist(keep: bool, minor_version: u8) -> Persist {
    match (keep, minor_version) {
        (false, _) => Persist::Close,
        (true, 0) => Persist::KeepAlive,
        (true, _) => Persist::Default,
    }
}

/// The per-request values every answer carries.
pub struct AnswerLines<'a> {
    /// `$context.requestId`, sent as `apigw-requestid` (as AWS HTTP APIs do).
    pub request_id: &'a [u8],
    /// The API's CORS policy, with the request's Origin when the policy allows it.
    pub cors: Option<(&'a turnpike_core::cors::CorsPolicy, Option<&'a [u8]>)>,
    pub persist: Persist,
    /// `Retry-After` (seconds; RFC 9110 section 10.2.3) of a throttled or over-quota request.
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` (RFC 9110 section 11.6.1) of a 401 from a JWT authorizer:
    /// `Bearer`, with `error="invalid_token"` when a token was sent (RFC 6750 section 3).
    pub challenge: Option<&'static str>,
    /// Header lines (CRLF-ended) the cache step adds: `Cache-Status`, AWS's `Warning`.
    pub extra: &'a [u8],
}

/// Ends a response head: `apigw-requestid`, CORS (for a matching Origin), `Connection`, and
/// the blank line.
#[inline]
pub fn finish_head(out: &mut Vec<u8>, a: &AnswerLines<'_>) {
    encode::header(out, b"apigw-requestid", a.request_id);
    if let Some(secs) = a.retry_after {
        out.extend_from_slice(b"Retry-After: ");
        encode::push_decimal(out, secs);
        out.extend_from_slice(encode::CRLF);
    }
    if let Some(challenge) = a.challenge {
        encode::header(out, b"WWW-Authenticate", challenge.as_bytes());
    }
    out.extend_from_slice(a.extra);
    match a.cors {
        Some((policy, Some(origin))) => {
            policy.write_actual(origin, out);
        }
        // An answer without CORS headers still varies by Origin, or a shared cache could hand
        // it to an allowed origin (Fetch standard, "CORS protocol and HTTP caches").
        Some((policy, None)) => policy.write_vary(out),
        None => {}
    }
    match a.persist {
        Persist::Default => {}
        Persist::Close => encode::header(out, b"Connection", b"close"),
        Persist::KeepAlive => encode::header(out, b"Connection", b"keep-alive"),
    }
    out.extend_from_slice(encode::CRLF);
}

/// An API's policies that shape answers: its gateway responses and its CORS policy.
#[derive(Default)]
pub struct Policies {
    /// Indexed by [`ResponseType::index`]; empty when the API overrides none.
    responses: Box<[Option<CustomResponse>]>,
    pub cors: Option<turnpike_core::cors::CorsPolicy>,
}

/// One overridden gateway response, compiled.
pub struct CustomResponse {
    pub status: Option<u16>,
    /// Header lines, rendered.
    pub headers: Box<[u8]>,
    pub content_type: Box<[u8]>,
    pub body: Option<turnpike_core::context::Template>,
    /// How `$context` values are escaped in the body: as JSON string content for a JSON
    /// content type, as XML text for an XML one, so a value a client controls (a path, a
    /// User-Agent) cannot break the document.
    pub escape: turnpike_core::context::Escape,
}

impl Policies {
    /// Compiles an API's checked policies.
    pub fn for_api(api: &Api) -> Policies {
        let mut responses = Vec::new();
        if !api.gateway_responses.is_empty() {
            responses.resize_with(ResponseType::ALL.len(), || None);
            for (t, r) in &api.gateway_responses {
                responses[t.index()] = Some(CustomResponse::compile(r));
            }
        }
        Policies {
            responses: responses.into(),
            cors: api.cors.clone(),
        }
    }

    /// The override that answers `t`: its own, else its class's default, else none.
    #[inline]
    pub fn response_for(&self, t: ResponseType, status: u16) -> Option<&CustomResponse> {
        if self.responses.is_empty() {
            return None;
        }
        self.responses[t.index()]
            .as_ref()
            .or_else(|| self.responses[ResponseType::fallback(status).index()].as_ref())
    }
}

impl CustomResponse {
    /// From a checked `gateway_responses` entry (the body template was checked to parse).
    pub fn compile(r: &GatewayResponseFile) -> CustomResponse {
        let mut headers = Vec::new();
        for (k, v) in &r.headers {
            encode::header(&mut headers, k.as_bytes(), v.as_bytes());
        }
        let content_type = r.content_type.as_deref().unwrap_or("application/json");
        let media = content_type.to_ascii_lowercase();
        let escape = if media.contains("json") {
            turnpike_core::context::Escape::Json
        } else if media.contains("xml") {
            turnpike_core::context::Escape::Xml
        } else {
            turnpike_core::context::Escape::None
        };
        CustomResponse {
            status: r.status,
            headers: headers.into(),
            escape,
            content_type: content_type.as_bytes().into(),
            body: r
                .body
                .as_deref()
                .and_then(|b| turnpike_core::context::Template::parse(b).ok()),
        }
    }
}

/// Writes the gateway's own answer to `e`: the API's override for its type if any, else the
/// built-in AWS-shaped JSON. `ctx` renders a body template; `scratch` holds the rendered body
/// (reused per worker). Returns the status written.
#[allow(clippy::too_many_arguments)]
pub fn write_error(
    out: &mut Vec<u8>,
    e: GatewayError,
    policies: &Policies,
    ctx: &turnpike_core::context::RequestContext<'_>,
    scratch: &mut Vec<u8>,
    a: &AnswerLines<'_>,
    date: &[u8],
    head_only: bool,
) -> u16 {
    let custom = policies.response_for(e.response_type(), e.status());
    let status = custom.and_then(|c| c.status).unwrap_or(e.status());
    scratch.clear();
    let (content_type, body): (&[u8], &[u8]) = match custom {
        Some(c) => {
            match &c.body {
                Some(t) => t.render(ctx, c.escape, scratch),
                None => builtin_body(ctx.error_message.unwrap_or(e.message()), scratch),
            }
            (&c.content_type, scratch)
        }
        None => {
            builtin_body(ctx.error_message.unwrap_or(e.message()), scratch);
            (b"application/json", scratch)
        }
    };
    encode::status_line(out, status, encode::reason(status).as_bytes());
    encode::header(out, b"Date", date);
    encode::header(out, b"Content-Type", content_type);
    encode::content_length(out, body.len() as u64);
    encode::header(out, b"x-amzn-ErrorType", e.error_type().as_bytes());
    if let Some(c) = custom {
        out.extend_from_slice(&c.headers);
    }
    finish_head(out, a);
    if !head_only {
        out.extend_from_slice(body);
    }
    status
}

/// `{"message":"Not Found"}`.
fn builtin_body(message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"message\":");
    turnpike_core::context::escape::json_string(message, out);
    out.push(b'}');
}

/// Writes a function's response: its status, headers (framing headers are the gateway's), one
/// `Set-Cookie` per cookie, then the body.
pub fn write_function(
    out: &mut Vec<u8>,
    resp: &turnpike_core::function::response::FunctionResponse,
    a: &AnswerLines<'_>,
    date: &[u8],
    head_only: bool,
) {
    encode::status_line(out, resp.status, encode::reason(resp.status).as_bytes());
    encode::header(out, b"Date", date);
    for (k, v) in &resp.headers {
        encode::header(out, k.as_bytes(), v.as_bytes());
    }
    for cookie in &resp.cookies {
        encode::header(out, b"Set-Cookie", cookie.as_bytes());
    }
    let bodyless = resp.status == 204 || resp.status == 304;
    if !bodyless {
        encode::content_length(out, resp.body.len() as u64);
    }
    finish_head(out, a);
    if !head_only && !bodyless {
        out.extend_from_slice(&resp.body);
    }
}

/// Writes a mock integration's response.
pub fn write_mock(
    out: &mut Vec<u8>,
    mock: &MockResponse,
    a: &AnswerLines<'_>,
    date: &[u8],
    head_only: bool,
) {
    out.extend_from_slice(&mock.head);
    encode::header(out, b"Date", date);
    finish_head(out, a);
    if !head_only && mock.status != 204 && mock.status != 304 {
        out.extend_from_slice(&mock.body);
    }
}
