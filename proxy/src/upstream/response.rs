//! The response head sent to the client for an upstream's response: status line as received,
//! end-to-end headers, and framing chosen for this client (a chunked or close-delimited body
//! is re-chunked for HTTP/1.1 clients so their connection can stay open).

use crate::h1::{
    HeaderKind, encode,
    response::{ResponseBody, ResponseHead},
};

/// How the body goes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFraming {
    None,
    Length(u64),
    Chunked,
    /// HTTP/1.0 client, unknown length: body until the connection closes.
    UntilClose,
}

pub fn client_framing(head: &ResponseHead, client_minor: u8) -> ClientFraming {
    match head.body {
        ResponseBody::None => ClientFraming::None,
        ResponseBody::Length(n) => ClientFraming::Length(n),
        ResponseBody::Chunked | ResponseBody::UntilClose if client_minor == 1 => {
            ClientFraming::Chunked
        }
        ResponseBody::Chunked | ResponseBody::UntilClose => ClientFraming::UntilClose,
    }
}

/// Writes the status line and end-to-end headers of an upstream response, with the framing
/// header for this client; `crate::respond::finish_head` ends the head. `drop_cors`: the API has
/// a CORS policy, so the integration's own `Access-Control-*` headers are dropped for the
/// gateway's (AWS: API Gateway ignores CORS headers returned from the integration).
pub fn write_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    framing: ClientFraming,
    drop_cors: bool,
) {
    encode::status_line(out, head.status, head.reason.get(buf));
    let nominated = head.connection.has_names();
    let keep_length =
        framing == ClientFraming::None && head.status != 204 && !(100..200).contains(&head.status);
    for h in &head.headers {
        if h.kind == HeaderKind::ContentLength && keep_length {
            // A HEAD or 304 response keeps the length the full response would have.
            encode::header(out, h.name.get(buf), h.value.get(buf));
            continue;
        }
        if h.kind.is_hop_by_hop() {
            continue;
        }
        let name = h.name.get(buf);
        if nominated && head.connection.nominates(buf, name) {
            continue;
        }
        if drop_cors && turnpike_core::cors::CorsPolicy::is_cors_header(name) {
            continue;
        }
        encode::header(out, name, h.value.get(buf));
    }
    match framing {
        ClientFraming::Length(n) => encode::content_length(out, n),
        ClientFraming::Chunked => encode::header(out, b"Transfer-Encoding", b"chunked"),
        ClientFraming::None | ClientFraming::UntilClose => {}
    }
}
