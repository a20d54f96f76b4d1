//! The `http_proxy` integration: send the request upstream over a pooled keep-alive
//! connection, stream the body, relay the response.
//!
//! - [`pool`]: per-core idle connections;
//! - [`request`] / [`response`]: the heads as rewritten for the other side (pure);
//! - this file: the exchange itself, with its timeouts and its single retry (a pooled
//!   connection that fails before any byte of an idempotent request was written).
//!
//! Hot path: no locks, no blocking calls, no logging above debug.

pub mod pool;
pub mod request;
pub mod response;

use std::{net::SocketAddr, os::fd::AsRawFd, rc::Rc, time::Duration, time::Instant};

use turnpike_core::config::UpstreamPolicy;

use self::response::{ClientFraming, Persist};
use crate::{
    conn::{Client, Outcome, respond, send},
    h1::{
        body::BodyDecoder,
        chunked::ChunkedDecoder,
        request::BodyKind,
        response::{self as h1response, ResponseBody, ResponseError},
    },
    pump::{Out, Pump, PumpError},
    reject::Reject,
    rt::{self, TcpStream},
    snapshot::{Snapshot, SnapshotRef},
    watch::Side,
    worker::Worker,
};

/// Request bodies up to this size that already arrived with the head go out in the same write.
const INLINE_BODY: u64 = 16 * 1024;

/// Where and how long: the per-request facts `forward` needs from the route.
pub struct Exchange {
    pub addr: SocketAddr,
    pub timeout: Duration,
    pub body_limit: u64,
}

/// Proxies the request whose head is parsed in `c` and whose upstream head is in `out`.
pub async fn forward(
    worker: &Rc<Worker>,
    snap: &SnapshotRef,
    c: &mut Client,
    mut out: Vec<u8>,
    x: Exchange,
) -> Outcome {
    let gw = &snap.config.gateway;
    let sent_at = Instant::now();
    // The integration timeout covers sending the request and receiving the response head.
    let deadline = c.watch.deadline_in(x.timeout);
    let head_only = c.head.is_head(&c.rbuf);
    let idempotent = c.head.is_idempotent(&c.rbuf);
    let body_start = c.head.end;

    // The request body: small and already here -> along with the head; else streamed.
    let mut body = match c.head.body {
        BodyKind::None => None,
        BodyKind::Length(n) if n <= INLINE_BODY && (c.rbuf.len() - body_start) as u64 >= n => {
            let end = body_start + n as usize;
            out.extend_from_slice(&c.rbuf[body_start..end]);
            c.consumed = end;
            None
        }
        BodyKind::Length(n) => Some(BodyDecoder::Length(n)),
        BodyKind::Chunked => Some(BodyDecoder::Chunked(ChunkedDecoder::new())),
    };

    let mut up = match send_head(
        worker,
        c,
        &gw.upstream,
        x.addr,
        &mut out,
        idempotent,
        deadline,
    )
    .await
    {
        Ok(up) => up,
        Err(r) => {
            worker.bufs.give(out);
            c.linger |= body.is_some();
            let keep = body.is_none() && c.head.keep_alive && !worker.draining();
            let sent = respond(worker, snap, c, r, !keep, head_only).await;
            return Outcome::answered(sent && keep, r.status());
        }
    };

    // Stream the rest of the request body.
    let mut upstream_write_failed = false;
    if let Some(decoder) = body.as_mut() {
        if c.head.expect_continue && c.head.minor_version == 1 {
            out.clear();
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            let armed = c.watch.arm(gw.idle_timeout, c.fd, Side::Both);
            let (res, o) = rt::write_all(&mut c.stream, out).await;
            drop(armed);
            out = o;
            if res.is_err() {
                worker.bufs.give(out);
                return Outcome::client_gone();
            }
        }
        out.clear();
        let mut input = worker.bufs.take();
        input.extend_from_slice(&c.rbuf[body_start..]);
        let framing = if matches!(decoder, BodyDecoder::Chunked(_)) {
            Out::Chunked
        } else {
            Out::Raw
        };
        let pumped = Pump {
            src: &mut c.stream,
            dst: &mut up,
            watch: &c.watch,
            decoder,
            out: framing,
            read_idle: gw.idle_timeout,
            write_idle: x.timeout,
            limit: x.body_limit,
        }
        .run(input, 0, out)
        .await;
        out = pumped.scratch;
        // What followed the body (a pipelined request) becomes the start of the read buffer.
        c.rbuf.clear();
        c.rbuf
            .extend_from_slice(&pumped.input[pumped.rest.min(pumped.input.len())..]);
        c.consumed = 0;
        worker.bufs.give(pumped.input);
        match pumped.result {
            Ok(()) => {}
            Err(PumpError::DstIo) | Err(PumpError::DstTimeout) => upstream_write_failed = true,
            Err(e) => {
                worker.bufs.give(out);
                let r = match e {
                    PumpError::SrcTimeout => Some(Reject::RequestTimeout),
                    PumpError::Malformed => Some(Reject::BadRequest),
                    PumpError::TooLarge => Some(Reject::PayloadTooLarge),
                    _ => None, // the client went away
                };
                return match r {
                    Some(r) => {
                        c.linger = true;
                        respond(worker, snap, c, r, true, head_only).await;
                        Outcome::answered(false, r.status())
                    }
                    None => Outcome::client_gone(),
                };
            }
        }
    }
    let body_complete = !upstream_write_failed;
    c.linger |= upstream_write_failed;

    // The response head (interim 1xx skipped: the gateway answered Expect itself).
    let mut input = worker.bufs.take();
    let head_result = read_response_head(&mut up, &mut input, c, snap, head_only, deadline).await;
    let integration = Some(sent_at.elapsed().as_micros() as u64);
    if let Err(r) = head_result {
        worker.bufs.give(input);
        worker.bufs.give(out);
        let keep = body_complete && c.head.keep_alive && !worker.draining();
        let sent = respond(worker, snap, c, r, !keep, head_only).await;
        return Outcome {
            integration_micros: integration,
            ..Outcome::answered(sent && keep, r.status())
        };
    }
    let status = c.response.status;
    let done = |keep: bool| Outcome {
        keep,
        status,
        integration_micros: integration,
    };

    let framing = response::client_framing(&c.response, c.head.minor_version);
    let keep = body_complete
        && c.head.keep_alive
        && !worker.draining()
        && framing != ClientFraming::UntilClose;
    let persist = match (keep, c.head.minor_version) {
        (false, _) => Persist::Close,
        (true, 0) => Persist::KeepAlive,
        (true, _) => Persist::Default,
    };
    out.clear();
    response::write_head(&mut out, &input, &c.response, framing, persist);

    let reusable = c.response.reusable && body_complete;
    let mut decoder = match c.response.body {
        ResponseBody::None => None,
        ResponseBody::Length(n) => Some(BodyDecoder::Length(n)),
        ResponseBody::Chunked => Some(BodyDecoder::Chunked(ChunkedDecoder::new())),
        ResponseBody::UntilClose => Some(BodyDecoder::UntilClose),
    };
    let head_end = c.response.end;
    let Some(decoder) = decoder.as_mut() else {
        let extra = input.len() > head_end;
        worker.bufs.give(input);
        if reusable && !extra {
            worker.pool.checkin(x.addr, up, &gw.upstream);
        }
        return done(send(worker, c, out, gw.idle_timeout).await && keep);
    };
    let pumped = Pump {
        src: &mut up,
        dst: &mut c.stream,
        watch: &c.watch,
        decoder,
        out: if framing == ClientFraming::Chunked {
            Out::Chunked
        } else {
            Out::Raw
        },
        read_idle: x.timeout,
        write_idle: gw.idle_timeout,
        limit: u64::MAX,
    }
    .run(input, head_end, out)
    .await;
    let clean = pumped.result.is_ok() && pumped.rest == pumped.input.len();
    worker.bufs.give(pumped.input);
    worker.bufs.give(pumped.scratch);
    if reusable && clean {
        worker.pool.checkin(x.addr, up, &gw.upstream);
    }
    done(pumped.result.is_ok() && keep)
}

/// Gets an upstream connection and writes the request head on it. A pooled connection that
/// fails before any byte was written is replaced once by a fresh one, for idempotent requests.
async fn send_head(
    worker: &Worker,
    c: &Client,
    policy: &UpstreamPolicy,
    addr: SocketAddr,
    out: &mut Vec<u8>,
    idempotent: bool,
    deadline: u64,
) -> Result<TcpStream, Reject> {
    let mut pooled = worker.pool.checkout(addr, policy);
    let mut retried = false;
    loop {
        let reused = pooled.is_some();
        let mut up = match pooled.take() {
            Some(up) => up,
            None => connect(addr, policy.connect_timeout).await?,
        };
        let armed = c.watch.arm_at(deadline, up.as_raw_fd(), Side::Both);
        let (res, o) = rt::write_all(&mut up, std::mem::take(out)).await;
        drop(armed);
        *out = o;
        match res {
            Ok(()) => return Ok(up),
            Err(_) if c.watch.fired() => return Err(Reject::GatewayTimeout),
            Err(e) if reused && e.nothing_written && idempotent && !retried => {
                tracing::debug!(%addr, error = %e.error, "pooled upstream connection was closed; retrying on a new one");
                retried = true;
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e.error, "upstream write failed");
                return Err(Reject::BadGateway);
            }
        }
    }
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Reject> {
    match rt::until(Instant::now() + timeout, TcpStream::connect_addr(addr)).await {
        None => {
            tracing::debug!(%addr, "upstream connect timed out");
            Err(Reject::GatewayTimeout)
        }
        Some(Err(e)) => {
            tracing::debug!(%addr, error = %e, "upstream connect failed");
            Err(Reject::BadGateway)
        }
        Some(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// Reads the upstream's final response head into `input` / `c.response`, by `deadline`.
async fn read_response_head(
    up: &mut TcpStream,
    input: &mut Vec<u8>,
    c: &mut Client,
    snap: &Snapshot,
    head_only: bool,
    deadline: u64,
) -> Result<(), Reject> {
    let max = snap.limits.max_head_bytes * 4;
    loop {
        if !input.is_empty() {
            match h1response::parse(
                input,
                max,
                snap.limits.max_headers,
                head_only,
                &mut c.response,
            ) {
                Ok(true) if c.response.is_interim() => {
                    input.drain(..c.response.end);
                    continue;
                }
                Ok(true) if c.response.status == 101 => return Err(Reject::BadGateway),
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(ResponseError::TooLarge) | Err(ResponseError::Malformed(_)) => {
                    return Err(Reject::BadGateway);
                }
            }
        }
        let armed = c.watch.arm_at(deadline, up.as_raw_fd(), Side::Read);
        let (res, b) = rt::read_more(up, std::mem::take(input), max + 1).await;
        drop(armed);
        *input = b;
        if c.watch.fired() {
            return Err(Reject::GatewayTimeout);
        }
        match res {
            Ok(n) if n > 0 => {}
            // Closed or failed before a whole head arrived.
            _ => return Err(Reject::BadGateway),
        }
    }
}
