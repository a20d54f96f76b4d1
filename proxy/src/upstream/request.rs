//! The request head sent upstream: request line with the integration's path, the client's
//! end-to-end headers, and the gateway's own forwarding headers.
//!
//! Dropped: hop-by-hop headers (Connection and what it names, Keep-Alive, Proxy-*, TE, Trailer,
//! Upgrade, HTTP2-Settings), Expect (the gateway answers 100-continue itself), and the client's
//! X-Forwarded-Proto/-Port (they describe this hop, so the gateway sets them). Appended:
//! X-Forwarded-For and Forwarded (the client's values first, then this hop).

use std::{io::Write, net::IpAddr};

use turnpike_core::route::Params;

use crate::{
    h1::{
        HeaderKind, encode,
        request::{BodyKind, RequestHead},
    },
    plan::ProxyTarget,
};

/// Facts about the client connection that go into forwarding headers, formatted once per
/// connection (formatting an address costs more than the rest of the head).
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub local_port: u16,
    /// The connection came over TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
    ip_text: [u8; 48],
    ip_len: u8,
    port_text: [u8; 5],
    port_len: u8,
}

impl ClientInfo {
    pub fn new(ip: IpAddr, local_port: u16, tls: bool) -> ClientInfo {
        let mut ip_text = [0u8; 48];
        let mut cursor = &mut ip_text[..];
        let _ = write!(cursor, "{ip}");
        let ip_len = (48 - cursor.len()) as u8;
        let mut port = Vec::with_capacity(5);
        encode::push_decimal(&mut port, u64::from(local_port));
        let mut port_text = [0u8; 5];
        port_text[..port.len()].copy_from_slice(&port);
        ClientInfo {
            ip,
            local_port,
            tls,
            ip_text,
            ip_len,
            port_text,
            port_len: port.len() as u8,
        }
    }

    #[inline]
    pub fn ip_text(&self) -> &[u8] {
        &self.ip_text[..self.ip_len as usize]
    }

    #[inline]
    pub fn port_text(&self) -> &[u8] {
        &self.port_text[..self.port_len as usize]
    }
}

/// The prefix of the headers that carry a request authorizer's context to the backend.
pub const AUTHORIZER_PREFIX: &[u8] = b"x-authorizer-";

/// Writes the upstream request head into `out`. `buf` holds the client's head; `route_path`
/// is the path below the stage or base path (empty means `/`).
#[allow(clippy::too_many_arguments)]
pub fn write_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    route_path: &[u8],
    params: &Params<'_, '_>,
    target: &ProxyTarget,
    preserve_host: bool,
    client: &ClientInfo,
) {
    out.extend_from_slice(head.method.get(buf));
    out.push(b' ');
    match &target.path {
        Some(template) => template.render_into(params, out),
        None if route_path.is_empty() => out.push(b'/'),
        None => out.extend_from_slice(route_path),
    }
    let query = head.query.map(|q| q.get(buf)).filter(|q| !q.is_empty());
    match (&target.query, query) {
        (Some(fixed), Some(q)) => {
            out.push(b'?');
            out.extend_from_slice(fixed);
            out.push(b'&');
            out.extend_from_slice(q);
        }
        (Some(fixed), None) => {
            out.push(b'?');
            out.extend_from_slice(fixed);
        }
        (None, Some(q)) => {
            out.push(b'?');
            out.extend_from_slice(q);
        }
        (None, None) => {}
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let client_host = head.host.map(|h| h.get(buf));
    let host = match client_host {
        Some(h) if preserve_host => h,
        _ => &target.host_header,
    };
    encode::header(out, b"Host", host);

    let nominated = head.connection.has_names();
    let mut xff: Option<usize> = None;
    let mut forwarded: Option<usize> = None;
    for h in &head.headers {
        match h.kind {
            HeaderKind::Host
            | HeaderKind::Expect
            | HeaderKind::XForwardedProto
            | HeaderKind::XForwardedPort => continue,
            HeaderKind::XForwardedFor => {
                xff = Some(xff.map_or(0, |n| n + 1));
                continue;
            }
            HeaderKind::Forwarded => {
                forwarded = Some(forwarded.map_or(0, |n| n + 1));
                continue;
            }
            k if k.is_hop_by_hop() => continue,
            _ => {}
        }
        let name = h.name.get(buf);
        if nominated && head.connection.nominates(buf, name) {
            continue;
        }
        // Only the gateway speaks for its authorizers: a client's own `x-authorizer-*`
        // headers never reach a backend, on any route.
        if name.len() > AUTHORIZER_PREFIX.len()
            && name[..AUTHORIZER_PREFIX.len()].eq_ignore_ascii_case(AUTHORIZER_PREFIX)
        {
            continue;
        }
        encode::header(out, name, h.value.get(buf));
    }

    out.extend_from_slice(b"X-Forwarded-For: ");
    if xff.is_some() {
        append_values(out, buf, head, HeaderKind::XForwardedFor);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client.ip_text());
    out.extend_from_slice(if client.tls {
        b"\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: "
    } else {
        b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: "
    });
    out.extend_from_slice(client.port_text());
    out.extend_from_slice(b"\r\nForwarded: ");
    if forwarded.is_some() {
        append_values(out, buf, head, HeaderKind::Forwarded);
        out.extend_from_slice(b", ");
    }
    if client.ip.is_ipv6() {
        out.extend_from_slice(b"for=\"[");
        out.extend_from_slice(client.ip_text());
        out.extend_from_slice(b"]\"");
    } else {
        out.extend_from_slice(b"for=");
        out.extend_from_slice(client.ip_text());
    }
    if let Some(h) = client_host {
        out.extend_from_slice(b";host=\"");
        out.extend_from_slice(h);
        out.push(b'"');
    }
    out.extend_from_slice(if client.tls {
        b";proto=https\r\n"
    } else {
        b";proto=http\r\n"
    });

    match head.body {
        BodyKind::None => {
            // A body-less POST/PUT still says so; other methods send nothing.
            if matches!(head.method.get(buf), b"POST" | b"PUT" | b"PATCH") {
                encode::content_length(out, 0);
            }
        }
        BodyKind::Length(n) => encode::content_length(out, n),
        BodyKind::Chunked => encode::header(out, b"Transfer-Encoding", b"chunked"),
    }
    out.extend_from_slice(encode::CRLF);
}

/// All values of one header kind joined with ", ", in order of appearance.
fn append_values(out: &mut Vec<u8>, buf: &[u8], head: &RequestHead, kind: HeaderKind) {
    let mut first = true;
    for h in head.headers.iter().filter(|h| h.kind == kind) {
        if !first {
            out.extend_from_slice(b", ");
        }
        first = false;
        out.extend_from_slice(h.value.get(buf));
    }
}

/// Rewrites a head written for a chunked body (by [`write_head`]) for the same body decoded
/// to `n` bytes in the read buffer (a step that needed the whole body, such as request
/// validation, decoded it): the gateway's `Transfer-Encoding: chunked` line becomes
/// `Content-Length: n`.
pub fn reframe_as_length(head: &mut Vec<u8>, n: u64) {
    const CHUNKED: &[u8] = b"Transfer-Encoding: chunked\r\n";
    if let Some(at) = memchr::memmem::find(head, CHUNKED) {
        let mut line = Vec::with_capacity(32);
        encode::content_length(&mut line, n);
        head.splice(at..at + CHUNKED.len(), line);
    }
}
