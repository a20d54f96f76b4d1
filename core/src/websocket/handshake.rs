//! The opening handshake, server side (RFC 6455 section 4.2): which requests ask for an
//! upgrade, what a valid one carries, and the `101 Switching Protocols` answer.
//!
//! Extensions are declined by not naming them in the answer (section 9.1): `permessage-deflate`
//! offered by a client is never negotiated, so its frames must keep RSV1 clear, which the
//! decoder enforces. A subprotocol is chosen only when the `$connect` integration answers one
//! the client offered ([`offers_subprotocol`]).

use base64::Engine;

use crate::h1::request::RequestHead;

/// The GUID every `Sec-WebSocket-Accept` is derived with (RFC 6455 section 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why an upgrade request is refused, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not `GET` over HTTP/1.1 (400).
    NotGet,
    /// No `Upgrade: websocket` or no `Connection: upgrade` (426 Upgrade Required, as AWS
    /// answers a plain HTTP request to a WebSocket API).
    NotUpgrade,
    /// `Sec-WebSocket-Version` missing or not 13 (426 with `Sec-WebSocket-Version: 13`).
    Version,
    /// `Sec-WebSocket-Key` missing or not the base64 of 16 bytes (400).
    Key,
    /// A request body on the handshake (400): the bytes after the head are frames.
    Body,
}

impl HandshakeError {
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::NotUpgrade | HandshakeError::Version => 426,
            _ => 400,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            HandshakeError::NotGet => "a WebSocket handshake is a GET over HTTP/1.1",
            HandshakeError::NotUpgrade => "Upgrade Required",
            HandshakeError::Version => "unsupported Sec-WebSocket-Version (13 is)",
            HandshakeError::Key => "missing or malformed Sec-WebSocket-Key",
            HandshakeError::Body => "a WebSocket handshake has no body",
        }
    }
}

/// Whether the request asks to switch to WebSocket (`Upgrade: websocket` among its upgrade
/// tokens and `upgrade` among its `Connection` options).
pub fn wants_websocket(buf: &[u8], head: &RequestHead) -> bool {
    head.connection.upgrade
        && head
            .find(buf, b"upgrade")
            .is_some_and(|v| has_token(v.get(buf), b"websocket"))
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| crate::h1::head::trim_ows(t).eq_ignore_ascii_case(token))
}

/// Whether the client offered subprotocol `chosen` in its `Sec-WebSocket-Protocol` fields
/// (comma-separated tokens, the field possibly repeated), compared exactly, as browsers
/// compare the server's choice (RFC 6455 section 4.1: a client fails a connection whose
/// server chose a subprotocol it did not offer).
pub fn offers_subprotocol(buf: &[u8], head: &RequestHead, chosen: &[u8]) -> bool {
    !chosen.is_empty()
        && head
            .headers
            .iter()
            .filter(|h| {
                h.name
                    .get(buf)
                    .eq_ignore_ascii_case(b"sec-websocket-protocol")
            })
            .any(|h| {
                h.value
                    .get(buf)
                    .split(|&b| b == b',')
                    .any(|t| crate::h1::head::trim_ows(t) == chosen)
            })
}

/// Checks a handshake request and returns the `Sec-WebSocket-Accept` value it earns.
pub fn check(buf: &[u8], head: &RequestHead) -> Result<[u8; 28], HandshakeError> {
    if head.method(buf) != b"GET" || head.minor_version != 1 {
        return Err(HandshakeError::NotGet);
    }
    if !wants_websocket(buf, head) {
        return Err(HandshakeError::NotUpgrade);
    }
    if !matches!(head.body, crate::h1::request::BodyKind::None)
        && head.body != crate::h1::request::BodyKind::Length(0)
    {
        return Err(HandshakeError::Body);
    }
    let version = head.find(buf, b"sec-websocket-version").map(|v| v.get(buf));
    if version != Some(&b"13"[..]) {
        return Err(HandshakeError::Version);
    }
    let key = head
        .find(buf, b"sec-websocket-key")
        .map(|v| v.get(buf))
        .ok_or(HandshakeError::Key)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| HandshakeError::Key)?;
    if decoded.len() != 16 {
        return Err(HandshakeError::Key);
    }
    Ok(accept_key(key))
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)) (RFC 6455 section 4.2.2).
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    let digest = ctx.finish();
    let mut out = [0u8; 28];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(digest.as_ref(), &mut out)
        .unwrap_or(0);
    debug_assert_eq!(n, 28);
    out
}

/// Appends the `101 Switching Protocols` head's first lines (status, `Upgrade`,
/// `Connection`, `Sec-WebSocket-Accept`); the caller adds its own fields and the final CRLF.
pub fn write_101_start(out: &mut Vec<u8>, accept: &[u8; 28]) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept);
    out.extend_from_slice(b"\r\n");
}
