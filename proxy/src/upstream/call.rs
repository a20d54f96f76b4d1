//! Calls the gateway makes on its own behalf (a request authorizer's event, a remote
//! function's invocation): a whole request
//! out, a whole response back, bounded in size and time. Same pool, connect, TLS and timeout
//! handling as the `http_proxy` integration; nothing reaches the client.

use std::time::{Duration, Instant};

use turnpike_core::h1::response::ResponseHead;

use super::{Attempt, send_head, up};
use crate::{
    conn::Client,
    error::{ErrorKind, GatewayError},
    h1::{
        body::BodyDecoder,
        chunked::{ChunkedDecoder, Event},
        response::{self as h1response, ResponseBody},
    },
    plan::ProxyTarget,
    watch::Side,
    worker::Worker,
};

/// A called endpoint's answer.
pub struct Called {
    pub status: u16,
    /// The decoded body.
    pub body: Vec<u8>,
    /// The response head as received, and where its headers are in it.
    head_bytes: Vec<u8>,
    head: ResponseHead,
}

impl Called {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.head
            .headers
            .iter()
            .find(|h| h.name.get(&self.head_bytes).eq_ignore_ascii_case(name))
            .map(|h| h.value.get(&self.head_bytes))
    }
}

/// Sends `request` (a complete head and body) to `target` and reads the whole response,
/// within `timeout`. A response body over `max_body` bytes is an error (502). Errors are
/// gateway errors on the upstream side: timeouts (504), refused or broken connections and
/// malformed answers (502).
pub async fn call(
    worker: &Worker,
    c: &Client,
    target: &ProxyTarget,
    mut request: Vec<u8>,
    timeout: Duration,
    max_body: usize,
) -> Result<Called, GatewayError> {
    let snap = worker.snapshot();
    let policy = &snap.config.gateway.upstream;
    let limits = snap.upstream_limits;
    let attempt = Attempt {
        policy,
        target,
        idempotent: true,
        deadline: c.watch.deadline_in(timeout),
        until: Instant::now() + timeout,
    };
    let (mut upstream, _) = send_head(worker, c, &attempt, &mut request, false).await?;
    let mut input = request;
    input.clear();
    let mut head = ResponseHead::default();
    let max_head = limits.max_head_bytes;
    let timed_out = || up(ErrorKind::GatewayTimeout, "the call timed out");
    // The head.
    loop {
        if !input.is_empty() {
            match h1response::parse(&input, max_head, limits.max_headers, false, &mut head) {
                Ok(true) if head.is_interim() => {
                    input.drain(..head.end);
                    continue;
                }
                Ok(true) => break,
                Ok(false) => {}
                Err(_) => return Err(up(ErrorKind::BadGateway, "malformed response head")),
            }
        }
        let armed = c.watch.arm_at(attempt.deadline, upstream.fd(), Side::Read);
        let (res, b) = upstream.read_more(input, max_head + 1).await;
        drop(armed);
        input = b;
        if c.watch.fired() {
            return Err(timed_out());
        }
        if !matches!(res, Ok(n) if n > 0) {
            return Err(up(
                ErrorKind::BadGateway,
                "connection closed before a response head",
            ));
        }
    }
    let status = head.status;
    let head_bytes = input[..head.end].to_vec();
    let mut decoder = match head.body {
        ResponseBody::None => BodyDecoder::Length(0),
        ResponseBody::Length(n) if n > max_body as u64 => {
            return Err(up(ErrorKind::BadGateway, "response body too large"));
        }
        ResponseBody::Length(n) => BodyDecoder::Length(n),
        ResponseBody::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
        ResponseBody::UntilClose => BodyDecoder::UntilClose,
    };
    let mut body = Vec::new();
    let mut at = head.end;
    loop {
        match decoder.decode(&input[at..]) {
            Ok((n, Event::Data(r))) => {
                body.extend_from_slice(&input[at + r.start..at + r.end]);
                at += n;
                if body.len() > max_body {
                    return Err(up(ErrorKind::BadGateway, "response body too large"));
                }
                continue;
            }
            Ok((_, Event::Done)) => break,
            Ok((n, Event::LastChunk | Event::Trailer(_))) => {
                at += n;
                continue;
            }
            Ok((n, Event::NeedMore)) => at += n,
            Err(_) => return Err(up(ErrorKind::BadGateway, "malformed response body")),
        }
        input.drain(..at);
        at = 0;
        let armed = c.watch.arm_at(attempt.deadline, upstream.fd(), Side::Read);
        let (res, b) = upstream.read_more(input, max_body + 64 * 1024).await;
        drop(armed);
        input = b;
        if c.watch.fired() {
            return Err(timed_out());
        }
        match res {
            Ok(n) if n > 0 => {}
            _ if decoder.ends_at_eof() => break,
            _ => return Err(up(ErrorKind::BadGateway, "connection closed mid-response")),
        }
    }
    if head.reusable && at == input.len() {
        worker.pool.checkin(target.pool_key, upstream, policy);
    }
    worker.bufs.give(input);
    Ok(Called {
        status,
        body,
        head_bytes,
        head,
    })
}
