//! The client connection driver: read a request head, route it, answer it (mock, proxy or a
//! refusal), repeat while the connection stays open. Requests on one connection are served in
//! order, so pipelining works by leaving the next request's bytes in the read buffer.
//!
//! Hot path: no locks, no blocking calls, no logging above debug, no allocation per request
//! (buffers come from the worker's pool; header spans reuse the connection's vectors).

use std::{
    net::SocketAddr,
    os::fd::{AsRawFd, RawFd},
    rc::Rc,
    time::Instant,
};

use turnpike_core::config::Api;

use crate::{
    h1::{
        request::{self, BodyKind, HeadScanner, RequestHead},
        response::ResponseHead,
    },
    reject::Reject,
    rt::{self, TcpStream},
    snapshot::{Compiled, MockResponse, Snapshot, SnapshotRef},
    upstream::{self, request::ClientInfo},
    watch::{ConnWatch, Side},
    worker::Worker,
};

/// A new connection's read buffer; grows up to the header limit when a head needs it.
const INITIAL_READ_BUF: usize = 8 * 1024;
/// After answering early (a request body still arriving), how long the connection keeps
/// reading and discarding so the client sees the answer instead of a reset.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// One client connection's state, reused across its requests.
pub struct Client {
    /// Declared before `stream` so it drops first: the registry never holds a closed fd.
    pub watch: ConnWatch,
    pub stream: TcpStream,
    pub fd: RawFd,
    pub info: ClientInfo,
    /// Bytes read from the client; a request's head starts at 0.
    pub rbuf: Vec<u8>,
    pub head: RequestHead,
    pub scanner: HeadScanner,
    /// Reused for upstream response heads.
    pub response: ResponseHead,
    /// How much of `rbuf` the current request used (head and body read so far).
    pub consumed: usize,
    /// The connection closes with request bytes unread: linger before closing.
    pub linger: bool,
}

enum HeadRead {
    Ready,
    Closed,
    Reject(Reject),
}

pub async fn serve(worker: Rc<Worker>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let local_port = stream.local_addr().map_or(0, |a| a.port());
    let fd = stream.as_raw_fd();
    let mut c = Client {
        watch: worker.watchdog.register(fd),
        stream,
        fd,
        info: ClientInfo::new(peer.ip(), local_port),
        rbuf: Vec::with_capacity(INITIAL_READ_BUF),
        head: RequestHead::default(),
        scanner: HeadScanner::default(),
        response: ResponseHead::default(),
        consumed: 0,
        linger: false,
    };
    let mut first = true;
    loop {
        let snap = worker.snapshot();
        let keep = match read_head(&worker, &snap, &mut c, first).await {
            HeadRead::Ready => handle(&worker, &snap, &mut c).await,
            HeadRead::Closed => false,
            HeadRead::Reject(r) => {
                let started = Instant::now();
                respond(&worker, &snap, &mut c, r, true, false).await;
                let micros = started.elapsed().as_micros() as u64;
                snap.unrouted[worker.id].record(r.status(), micros, None);
                false
            }
        };
        first = false;
        if !keep || worker.draining() {
            break;
        }
        if c.consumed >= c.rbuf.len() {
            c.rbuf.clear();
        } else {
            c.rbuf.drain(..c.consumed);
        }
        c.consumed = 0;
    }
    if c.linger {
        linger(&worker, &mut c).await;
    }
}

/// Half-closes and discards what the client still sends, for a bounded time: closing a socket
/// with unread data makes the kernel send a reset, which can destroy the answer just written
/// before the client reads it (nginx's lingering close).
async fn linger(worker: &Worker, c: &mut Client) {
    rt::shutdown_write(c.fd);
    let deadline = c.watch.deadline_in(LINGER);
    let mut buf = worker.bufs.take();
    loop {
        buf.clear();
        let armed = c.watch.arm_at(deadline, c.fd, Side::Read);
        let (res, b) = rt::read_more(&mut c.stream, buf, crate::worker::IO_BUF).await;
        drop(armed);
        buf = b;
        if c.watch.fired() || !matches!(res, Ok(n) if n > 0) {
            break;
        }
    }
    worker.bufs.give(buf);
}

async fn read_head(worker: &Worker, snap: &Snapshot, c: &mut Client, first: bool) -> HeadRead {
    let gw = &snap.config.gateway;
    c.scanner.reset();
    let mut started = !c.rbuf.is_empty();
    let wait = if first || started {
        gw.header_timeout
    } else {
        gw.idle_timeout
    };
    let mut deadline = c.watch.deadline_in(wait);
    let max = snap.limits.max_head_bytes + 4096;
    loop {
        if started {
            match c.scanner.scan(&c.rbuf, &snap.limits) {
                Ok(Some((start, end))) => {
                    return match request::parse(&c.rbuf, start, end, &snap.limits, &mut c.head) {
                        Ok(()) => HeadRead::Ready,
                        Err(e) => HeadRead::Reject(e.into()),
                    };
                }
                Ok(None) => {}
                Err(e) => return HeadRead::Reject(e.into()),
            }
        }
        c.watch.set_idle(!started);
        if !started && worker.draining() {
            return HeadRead::Closed;
        }
        let buf = std::mem::take(&mut c.rbuf);
        let armed = c.watch.arm_at(deadline, c.fd, Side::Read);
        let (res, buf) = rt::read_more(&mut c.stream, buf, max).await;
        drop(armed);
        c.rbuf = buf;
        c.watch.set_idle(false);
        if c.watch.fired() {
            return if started {
                HeadRead::Reject(Reject::RequestTimeout)
            } else {
                HeadRead::Closed
            };
        }
        match res {
            Ok(0) | Err(_) => return HeadRead::Closed,
            Ok(_) => {
                if !started {
                    started = true;
                    deadline = c.watch.deadline_in(gw.header_timeout);
                }
            }
        }
    }
}

/// Serves one parsed request. Returns whether the connection may carry another.
/// How a request ended: for the connection, whether it can carry another; for the metrics,
/// the status sent and how long the integration took.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub keep: bool,
    pub status: u16,
    pub integration_micros: Option<u64>,
}

impl Outcome {
    pub fn answered(keep: bool, status: u16) -> Outcome {
        Outcome {
            keep,
            status,
            integration_micros: None,
        }
    }

    /// The client went away before an answer could be written (counted as 499, as nginx does).
    pub fn client_gone() -> Outcome {
        Outcome::answered(false, 499)
    }
}

/// Serves one parsed request and counts it on this worker. Returns whether the connection may
/// carry another.
async fn handle(worker: &Rc<Worker>, snap: &SnapshotRef, c: &mut Client) -> bool {
    let started = Instant::now();
    let (route, outcome) = route_and_answer(worker, snap, c).await;
    let counters = match route {
        Some((api, stage, route)) => snap.route_counters(api, stage, route),
        None => &snap.unrouted,
    };
    counters[worker.id].record(
        outcome.status,
        started.elapsed().as_micros() as u64,
        outcome.integration_micros,
    );
    outcome.keep
}

/// `(api, stage, route)` indices of the route that served a request.
type RouteId = (usize, usize, usize);

async fn route_and_answer(
    worker: &Rc<Worker>,
    snap: &SnapshotRef,
    c: &mut Client,
) -> (Option<RouteId>, Outcome) {
    c.consumed = c.head.end;
    let head_only = c.head.is_head(&c.rbuf);
    let buf = &c.rbuf;
    let head = &c.head;
    let host = head.host.map_or(&b""[..], |h| h.get(buf));
    let path = if head.path.is_empty() {
        &b"/"[..]
    } else {
        head.path.get(buf)
    };
    let Some(found) = snap.config.resolve(host, head.method.get(buf), path) else {
        return (
            None,
            refuse(worker, snap, c, Reject::NotFound, head_only).await,
        );
    };
    let id = Some((found.api_index, found.stage_index, found.route_index));
    let api: &Api = found.api;
    if let BodyKind::Length(n) = head.body
        && n > api.max_body_bytes
    {
        return (
            id,
            refuse(worker, snap, c, Reject::PayloadTooLarge, head_only).await,
        );
    }
    let outcome = match &snap.integrations[found.api_index][found.route.integration as usize] {
        Compiled::Mock(mock) => {
            let body_read = discard_body(c);
            c.linger |= !body_read;
            let keep = respond_mock(worker, c, mock, body_read, head_only).await;
            Outcome::answered(keep, mock.status)
        }
        Compiled::Proxy(p) => {
            let target = match &p.stages[found.stage_index] {
                Ok(t) => t,
                Err(_) => {
                    return (
                        id,
                        refuse(worker, snap, c, Reject::InternalError, head_only).await,
                    );
                }
            };
            let mut out = worker.bufs.take();
            upstream::request::write_head(
                &mut out,
                buf,
                head,
                found.path,
                &found.params,
                target,
                p.preserve_host,
                &c.info,
            );
            let exchange = upstream::Exchange {
                addr: target.addr,
                timeout: p.timeout,
                body_limit: api.max_body_bytes,
            };
            upstream::forward(worker, snap, c, out, exchange).await
        }
    };
    (id, outcome)
}

/// Marks a body-less request's end, or a body already fully read; `false` if unread body
/// bytes remain, so the connection cannot carry another request.
fn discard_body(c: &mut Client) -> bool {
    match c.head.body {
        BodyKind::None => true,
        BodyKind::Length(n) if (c.rbuf.len() - c.head.end) as u64 >= n => {
            c.consumed = c.head.end + n as usize;
            true
        }
        _ => false,
    }
}

/// Answers with a refusal, keeping the connection if the request was read to its end.
pub async fn refuse(
    worker: &Worker,
    snap: &Snapshot,
    c: &mut Client,
    r: Reject,
    head_only: bool,
) -> Outcome {
    let body_read = discard_body(c);
    c.linger |= !body_read;
    let keep = !r.closes() && body_read && c.head.keep_alive && !worker.draining();
    let sent = respond(worker, snap, c, r, !keep, head_only).await;
    Outcome::answered(sent && keep, r.status())
}

/// Writes a refusal. Returns whether the write went through.
pub async fn respond(
    worker: &Worker,
    snap: &Snapshot,
    c: &mut Client,
    r: Reject,
    close: bool,
    head_only: bool,
) -> bool {
    let mut out = worker.bufs.take();
    r.write(&mut out, &worker.date(), close, head_only);
    send(worker, c, out, snap.config.gateway.idle_timeout).await
}

/// Writes `out` to the client within `idle`, then gives the buffer back to the pool.
pub async fn send(
    worker: &Worker,
    c: &mut Client,
    out: Vec<u8>,
    idle: std::time::Duration,
) -> bool {
    let armed = c.watch.arm(idle, c.fd, Side::Both);
    let (res, out) = rt::write_all(&mut c.stream, out).await;
    drop(armed);
    worker.bufs.give(out);
    res.is_ok()
}

async fn respond_mock(
    worker: &Worker,
    c: &mut Client,
    mock: &MockResponse,
    body_read: bool,
    head_only: bool,
) -> bool {
    let keep = body_read && c.head.keep_alive && !worker.draining();
    let mut out = worker.bufs.take();
    out.extend_from_slice(&mock.head);
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(&worker.date());
    out.extend_from_slice(b"\r\n");
    if !keep {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if c.head.minor_version == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only && mock.status != 204 && mock.status != 304 {
        out.extend_from_slice(&mock.body);
    }
    let idle = worker.snapshot().config.gateway.idle_timeout;
    send(worker, c, out, idle).await && keep
}
