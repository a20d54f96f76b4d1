//! WebSocket upgrades proxied to an `http_proxy` backend of an HTTP API: the handshake goes to
//! the backend with its `Upgrade` and `Connection` fields (hop-by-hop, so dropped from other
//! requests), and when the backend answers `101 Switching Protocols` the gateway relays it and
//! then copies bytes both ways until either side closes: frames pass untouched (the backend
//! speaks WebSocket with the client; the gateway already ran the route's policies on the
//! handshake). Any other answer is relayed as a plain response and the connection closes.
//!
//! The tunnel holds no buffer while both sides are quiet (it waits for readability, then takes
//! one from the worker's pool), and closes after [`TUNNEL_IDLE`] without a byte either way.
//! The upstream connection never goes back to the pool.

use std::{future::Future, pin::pin, task::Poll, time::Duration};

use turnpike_core::{
    h1::{
        encode,
        head::HeaderKind,
        response::{self as h1response, ResponseBody, ResponseHead},
    },
    websocket::handshake,
};

use super::{Attempt, send_head, up};
use crate::{
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    plan::ProxyPlan,
    snapshot::SnapshotRef,
    stream::Stream,
    watch::Side,
    worker::{IO_BUF, Worker},
};

/// A tunnel with no byte either way for this long is closed (API Gateway's WebSocket idle
/// timeout).
pub const TUNNEL_IDLE: Duration = Duration::from_secs(600);
/// The largest non-101 answer body relayed whole; a larger one is cut to nothing.
const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// Whether `st` holds a WebSocket handshake to tunnel.
pub fn wants_tunnel(st: &RequestState) -> bool {
    handshake::wants_websocket(&st.rbuf, &st.head)
}

/// Proxies the WebSocket handshake in `st` (its upstream head, without the upgrade fields, in
/// `out`) and, on 101, the connection. `Err`: nothing reached the client; the exchange answers
/// the error. `Ok(())`: the exchange is over and the connection closes.
#[allow(clippy::too_many_arguments)]
pub async fn proxy(
    worker: &Worker,
    snap: &SnapshotRef,
    c: &mut Client,
    st: &mut RequestState,
    mut out: Vec<u8>,
    p: &ProxyPlan,
    x: &mut RequestCtx,
) -> Result<(), GatewayError> {
    if let Err(e) = handshake::check(&st.rbuf, &st.head) {
        worker.bufs.give(out);
        return Err(GatewayError::client(ErrorKind::BadRequest, e.message()));
    }
    // The upgrade fields, before the head's final CRLF.
    out.truncate(out.len().saturating_sub(2));
    encode::header(&mut out, b"Upgrade", b"websocket");
    encode::header(&mut out, b"Connection", b"Upgrade");
    out.extend_from_slice(encode::CRLF);
    let gw = &snap.config.gateway;
    let started = std::time::Instant::now();
    let attempt = Attempt {
        policy: &gw.upstream,
        target: &p.target,
        idempotent: true,
        deadline: c.watch.deadline_in(p.timeout),
        until: started + p.timeout,
    };
    let sent = send_head(worker, c, &attempt, &mut out, true).await;
    worker.bufs.give(out);
    let (mut upstream, _) = sent?;
    let mut input = worker.bufs.take();
    let mut head = ResponseHead::default();
    let limits = snap.upstream_limits;
    loop {
        if !input.is_empty() {
            match h1response::parse(
                &input,
                limits.max_head_bytes,
                limits.max_headers,
                false,
                &mut head,
            ) {
                Ok(true) if head.is_interim() => {
                    input.drain(..head.end);
                    continue;
                }
                Ok(true) => break,
                Ok(false) => {}
                Err(_) => {
                    worker.bufs.give(input);
                    return Err(up(
                        ErrorKind::BadGateway,
                        "upstream sent a malformed response head",
                    ));
                }
            }
        }
        let armed = c.watch.arm_at(attempt.deadline, upstream.fd(), Side::Read);
        let (res, b) = upstream.read_more(input, limits.max_head_bytes + 1).await;
        drop(armed);
        input = b;
        if c.watch.fired() {
            worker.bufs.give(input);
            return Err(up(
                ErrorKind::GatewayTimeout,
                "integration timed out waiting for the response head",
            ));
        }
        if !matches!(res, Ok(n) if n > 0) {
            worker.bufs.give(input);
            return Err(up(
                ErrorKind::BadGateway,
                "upstream closed the connection before a response head",
            ));
        }
    }
    x.integration_micros = Some(started.elapsed().as_micros() as u64);
    x.integration_status = Some(head.status);
    x.status = head.status;
    let mut answer = worker.bufs.take();
    encode::status_line(&mut answer, head.status, head.reason.get(&input));
    for h in &head.headers {
        if h.kind.is_hop_by_hop() && h.kind != HeaderKind::ContentLength {
            continue;
        }
        encode::header(&mut answer, h.name.get(&input), h.value.get(&input));
    }
    if head.status == 101 {
        encode::header(&mut answer, b"Upgrade", b"websocket");
        encode::header(&mut answer, b"Connection", b"Upgrade");
    } else {
        encode::header(&mut answer, b"Connection", b"close");
    }
    encode::header(&mut answer, b"apigw-requestid", x.request_id.as_bytes());
    answer.extend_from_slice(encode::CRLF);
    let after_head = input[head.end..].to_vec();
    worker.bufs.give(input);
    if head.status != 101 {
        if let ResponseBody::Length(n) = head.body
            && (n as usize) <= MAX_REFUSAL_BODY
        {
            let n = n as usize;
            let mut body = after_head;
            while body.len() < n {
                let armed = c.watch.arm_at(attempt.deadline, upstream.fd(), Side::Read);
                let (res, b) = upstream.read_more(body, n + 1).await;
                drop(armed);
                body = b;
                if c.watch.fired() || !matches!(res, Ok(k) if k > 0) {
                    break;
                }
            }
            body.truncate(n);
            answer.extend_from_slice(&body);
            x.response_length = body.len() as u64;
        }
        let armed = c.watch.arm(gw.idle_timeout, c.fd, Side::Both);
        let (_, answer) = c.stream.write_all(answer).await;
        drop(armed);
        worker.bufs.give(answer);
        return Ok(());
    }
    // 101: the head, what the backend sent after it, then bytes both ways.
    answer.extend_from_slice(&after_head);
    let armed = c.watch.arm(gw.idle_timeout, c.fd, Side::Both);
    let (res, answer) = c.stream.write_all(answer).await;
    drop(armed);
    worker.bufs.give(answer);
    if res.is_err() {
        return Ok(());
    }
    // Frames the client sent before it saw the 101 (after the handshake head).
    let early = st.rbuf.get(st.head.end..).unwrap_or(&[]).to_vec();
    st.consumed = st.rbuf.len();
    if !early.is_empty() {
        let (res, _) = upstream.write_all(early).await;
        if res.is_err() {
            return Ok(());
        }
    }
    Box::pin(splice(worker, c, &mut upstream)).await;
    Ok(())
}

enum Ready {
    Client,
    Upstream,
    Failed,
}

/// What one read without waiting gave.
enum Chunk {
    /// Bytes, in a buffer of the worker's pool.
    Bytes(Vec<u8>),
    /// Nothing yet (a spurious wake-up).
    Nothing,
    /// The side closed (or failed): the tunnel ends, closing the other.
    Closed,
}

/// Reads what `read` finds into a pooled buffer of [`IO_BUF`] room; the buffer goes back to
/// the pool unless bytes came.
fn read_chunk(worker: &Worker, read: impl FnOnce(&mut Vec<u8>) -> std::io::Result<usize>) -> Chunk {
    let mut buf = worker.bufs.take();
    crate::rt::make_room(&mut buf, IO_BUF);
    match read(&mut buf) {
        Ok(n) if n > 0 => Chunk::Bytes(buf),
        other => {
            worker.bufs.give(buf);
            match other {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Chunk::Nothing,
                _ => Chunk::Closed,
            }
        }
    }
}

/// Copies bytes both ways until a side closes or the tunnel idles out.
async fn splice(worker: &Worker, c: &mut Client, upstream: &mut Stream) {
    if let (Stream::Plain(client), Stream::Plain(backend)) = (&c.stream, &*upstream) {
        return relay_plain(worker, &c.watch, client, backend).await;
    }
    loop {
        let ready = if c.stream.has_buffered() {
            Ready::Client
        } else if upstream.has_buffered() {
            Ready::Upstream
        } else {
            c.watch.set_idle(true);
            let armed = c.watch.arm(TUNNEL_IDLE, c.fd, Side::Both);
            let ready = {
                let mut from_client = pin!(c.stream.readable());
                let mut from_upstream = pin!(upstream.readable());
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = from_client.as_mut().poll(cx) {
                        return Poll::Ready(if r.is_ok() {
                            Ready::Client
                        } else {
                            Ready::Failed
                        });
                    }
                    from_upstream.as_mut().poll(cx).map(|r| {
                        if r.is_ok() {
                            Ready::Upstream
                        } else {
                            Ready::Failed
                        }
                    })
                })
                .await
            };
            drop(armed);
            c.watch.set_idle(false);
            if c.watch.fired() || worker.draining() {
                return;
            }
            ready
        };
        let (src, dst) = match ready {
            Ready::Client => (&mut c.stream, &mut *upstream),
            Ready::Upstream => (&mut *upstream, &mut c.stream),
            Ready::Failed => return,
        };
        let buf = match read_chunk(worker, |b| src.read_now(b)) {
            Chunk::Bytes(b) => b,
            Chunk::Nothing => continue,
            Chunk::Closed => return,
        };
        let armed = c.watch.arm(TUNNEL_IDLE, c.fd, Side::Both);
        let (res, buf) = dst.write_all(buf).await;
        drop(armed);
        worker.bufs.give(buf);
        if res.is_err() || c.watch.fired() {
            return;
        }
    }
}

/// [`splice`] for plain TCP on both sides: one loop per direction, each keeping its readiness
/// wait armed while the other moves bytes (no poll is armed and cancelled per message), with
/// `recv(2)` and `send(2)` on the sockets. A drain closes the tunnel (the client side is
/// marked idle throughout), as does [`TUNNEL_IDLE`] without a byte either way.
async fn relay_plain(
    worker: &Worker,
    watch: &crate::watch::ConnWatch,
    client: &monoio::net::TcpStream,
    backend: &monoio::net::TcpStream,
) {
    let last = std::cell::Cell::new(std::time::Instant::now());
    watch.set_idle(true);
    {
        let mut up = pin!(pump_plain(worker, client, backend, &last));
        let mut down = pin!(pump_plain(worker, backend, client, &last));
        let mut idle = pin!(idle_out(&last));
        std::future::poll_fn(|cx| {
            if up.as_mut().poll(cx).is_ready()
                || down.as_mut().poll(cx).is_ready()
                || idle.as_mut().poll(cx).is_ready()
            {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
    watch.set_idle(false);
}

/// Copies from `src` to `dst` until `src` closes or either fails; notes each move in `last`.
async fn pump_plain(
    worker: &Worker,
    src: &monoio::net::TcpStream,
    dst: &monoio::net::TcpStream,
    last: &std::cell::Cell<std::time::Instant>,
) {
    use std::os::fd::AsRawFd;
    loop {
        if src.readable(false).await.is_err() {
            return;
        }
        let buf = match read_chunk(worker, |b| crate::rt::recv_ready(src.as_raw_fd(), b)) {
            Chunk::Bytes(b) => b,
            Chunk::Nothing => continue,
            Chunk::Closed => return,
        };
        let sent = send_all(dst, &buf).await;
        worker.bufs.give(buf);
        if sent.is_err() {
            return;
        }
        last.set(std::time::Instant::now());
    }
}

/// Sends all of `data` on `dst`, waiting for room when its send buffer is full.
async fn send_all(dst: &monoio::net::TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while !data.is_empty() {
        match crate::rt::send_ready(dst.as_raw_fd(), data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => dst.writable(false).await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ends once nothing moved for [`TUNNEL_IDLE`] since `last`.
async fn idle_out(last: &std::cell::Cell<std::time::Instant>) {
    loop {
        let until = last.get() + TUNNEL_IDLE;
        let now = std::time::Instant::now();
        if now >= until {
            return;
        }
        monoio::time::sleep(until - now).await;
    }
}
