//! The client connection driver: wait for a request, read its head, hand it to
//! [`crate::exchange`], repeat while the connection stays open. Requests on one connection are
//! served in order, so pipelining works by leaving the next request's bytes in the read buffer.
//!
//! An idle keep-alive connection holds no buffer: it waits for readability, and only then takes
//! a [`RequestState`] (read buffer, parsed heads) from the worker's pool; the state goes back
//! when the connection is idle again. What an idle connection costs is its socket, this small
//! struct, its watchdog entry and its task.
//!
//! Hot path: no locks, no blocking calls, no logging above debug, no allocation per request
//! (buffers and request states come from the worker's pools).

use std::{
    net::SocketAddr,
    os::fd::{AsRawFd, RawFd},
    rc::Rc,
};

use crate::{
    error::GatewayError,
    exchange,
    h1::{
        request::{self, HeadScanner, RequestHead},
        response::ResponseHead,
    },
    rt::{self, TcpStream},
    stream::Stream,
    tls::server::{self as tls_server, HandshakeFailure},
    upstream::request::ClientInfo,
    watch::{ConnWatch, Side},
    worker::Worker,
};

/// A request state's read buffer starts at this size; it grows up to the header limit when a
/// head needs it.
pub const INITIAL_READ_BUF: usize = 8 * 1024;
/// After answering early (a request body still arriving), how long the connection keeps
/// reading and discarding so the client sees the answer instead of a reset.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// One client connection: what lives as long as the connection does. Kept small: every idle
/// keep-alive connection holds one.
pub struct Client {
    /// Declared before `stream` so it drops first: the registry never holds a closed fd.
    pub watch: ConnWatch,
    pub stream: Stream,
    pub fd: RawFd,
    pub info: ClientInfo,
    /// The connection closes with request bytes unread: linger before closing.
    pub linger: bool,
    /// Set when a WebSocket API accepted an upgrade: the driver runs the session next.
    pub upgrade: Option<Box<crate::websocket::Upgraded>>,
}

/// What a request in progress needs, pooled per worker and held only while the connection
/// has a request (or pipelined bytes) in hand.
#[derive(Default)]
pub struct RequestState {
    /// Bytes read from the client; a request's head starts at 0.
    pub rbuf: Vec<u8>,
    pub head: RequestHead,
    pub scanner: HeadScanner,
    /// Reused for upstream response heads.
    pub response: ResponseHead,
    /// How much of `rbuf` the current request used (head and body read so far).
    pub consumed: usize,
}

impl RequestState {
    pub fn new() -> RequestState {
        RequestState {
            rbuf: Vec::with_capacity(INITIAL_READ_BUF),
            ..RequestState::default()
        }
    }

    /// Drops the request just served from the read buffer, keeping what followed it.
    fn advance(&mut self) {
        if self.consumed >= self.rbuf.len() {
            self.rbuf.clear();
        } else {
            self.rbuf.drain(..self.consumed);
        }
        self.consumed = 0;
    }
}

enum HeadRead {
    Ready,
    Closed,
    Refused(GatewayError),
}

/// Spawns the task that serves one client connection; `tls`: it came to an `https://`
/// listener, so a handshake comes first.
///
/// The connection's state is set up here, before the task exists, and handed to it whole,
/// and the task stores it once (see [`serve`]): 392 bytes of task state per idle plain
/// connection (792 when the `Client` was stored twice and the head read was inline, 856
/// when the task also kept the socket and peer address it was spawned with); 520 for TLS.
pub fn spawn(worker: Rc<Worker>, tcp: TcpStream, peer: SocketAddr, tls: bool) {
    let _ = tcp.set_nodelay(true);
    let local_port = tcp.local_addr().map_or(0, |a| a.port());
    let fd = tcp.as_raw_fd();
    let watch = worker.watchdog.register(fd);
    let info = ClientInfo::new(peer.ip(), local_port, tls);
    if tls {
        // What the handshake needs, boxed until it is done: captured whole, the socket, the
        // watch entry and the client's address would stay in the task beside the `Client`
        // made of them.
        let pending = Box::new((watch, tcp, info));
        rt::spawn_guarded(async move {
            let (watch, tcp, info) = *pending;
            // Boxed: a handshake's state is large and gone once it ends.
            let Some(stream) = Box::pin(handshake(&worker, &watch, tcp)).await else {
                return;
            };
            let c = Client {
                watch,
                stream,
                fd,
                info,
                linger: false,
                upgrade: None,
            };
            serve(worker, c).await;
        });
    } else {
        let c = Client {
            watch,
            stream: Stream::Plain(tcp),
            fd,
            info,
            linger: false,
            upgrade: None,
        };
        rt::spawn_guarded(serve(worker, c));
    }
}

/// Serves requests on a connection until it closes.
///
/// Not an `async fn`: one keeps its arguments in the task beside the locals moved out of them
/// (rust-lang/rust#62958), so a `Client` argument would be stored twice for the connection's
/// whole life. An `async move` block that uses its captures in place stores each once.
fn serve(worker: Rc<Worker>, c: Client) -> impl std::future::Future<Output = ()> {
    let mut c = c;
    async move {
        let mut first = true;
        let mut held: Option<Box<RequestState>> = None;
        loop {
            let mut st = match held.take() {
                Some(st) => st,
                None => {
                    if !wait_readable(&worker, &mut c, first).await {
                        break;
                    }
                    let mut st = worker.take_request_state();
                    // The request is there: take it with one recv rather than a driver read.
                    match c.stream.read_now(&mut st.rbuf) {
                        Ok(0) => {
                            worker.give_request_state(st);
                            break;
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => {
                            worker.give_request_state(st);
                            break;
                        }
                    }
                    st
                }
            };
            // The request's future is boxed, head read included: its state (the head read's,
            // the integration's, the body pumps') is several KiB, and an idle connection's task
            // should carry only what waiting for readability needs. One allocation per request
            // from the worker's thread-local heap, against KiBs held per idle connection.
            let keep = Box::pin(request(&worker, &mut c, &mut st)).await;
            first = false;
            if let Some(up) = c.upgrade.take() {
                // A WebSocket now: the request state goes back, the session is boxed (an
                // idle WebSocket's task holds only a pointer to it).
                worker.give_request_state(st);
                Box::pin(crate::websocket::session::run(&worker, &mut c, up)).await;
                break;
            }
            if !keep || worker.draining() {
                worker.give_request_state(st);
                break;
            }
            st.advance();
            if st.rbuf.is_empty() {
                worker.give_request_state(st);
            } else {
                held = Some(st);
            }
        }
        if c.linger {
            Box::pin(linger(&worker, &c.watch, c.fd, &mut c.stream)).await;
        }
    }
}

/// Reads one request's head and serves it; returns whether the connection may carry another.
async fn request(worker: &Rc<Worker>, c: &mut Client, st: &mut RequestState) -> bool {
    match read_head(worker, c, st).await {
        // The newest snapshot, taken once the head is here: a config applied while the
        // connection idled serves this request.
        HeadRead::Ready => exchange::serve(worker, &worker.snapshot(), c, st).await,
        HeadRead::Closed => false,
        HeadRead::Refused(e) => {
            let snap = worker.snapshot();
            exchange::refuse_unparsed(worker, &snap, c, st, e).await;
            false
        }
    }
}

/// Waits, holding no buffer, until the client sends something: up to the header timeout on a
/// new connection, the idle timeout on a kept-alive one. `false`: closed, timed out, or a
/// kept-alive connection while draining.
///
/// A new connection is not idle: a drain waits for its first request and answers it (with
/// `Connection: close`), since its client has sent, or is sending, a request it expects an
/// answer to. Closing it unanswered is what a client sees as a failed request, and in an
/// upgrade those are the connections accepted just before the sockets were handed over.
async fn wait_readable(worker: &Worker, c: &mut Client, first: bool) -> bool {
    if worker.draining() && !first {
        return false;
    }
    // Read out, not borrowed: a reference would keep this snapshot alive for the whole
    // idle wait, and with it every config a reload replaced meanwhile.
    let wait = {
        let snap = worker.snapshot();
        let gw = &snap.config.gateway;
        if first {
            gw.header_timeout
        } else {
            gw.idle_timeout
        }
    };
    c.watch.set_idle(!first);
    let armed = c.watch.arm(wait, c.fd, Side::Read);
    // Not relaxed: on the epoll driver a relaxed wait trusts readiness left over from the
    // last read and returns at once, so the connection would wait in a read, holding a buffer
    // and past the idle timeout. Strict readiness costs a poll(2) there; none on io_uring.
    let res = c.stream.readable().await;
    drop(armed);
    c.watch.set_idle(false);
    res.is_ok() && !c.watch.fired() && (first || !worker.draining())
}

/// Half-closes and discards what the client still sends, for a bounded time: closing a socket
/// with unread data makes the kernel send a reset, which can destroy the answer just written
/// before the client reads it (nginx's lingering close).
async fn linger(worker: &Worker, watch: &ConnWatch, fd: RawFd, stream: &mut Stream) {
    rt::shutdown_write(fd);
    let deadline = watch.deadline_in(LINGER);
    let mut buf = worker.bufs.take();
    loop {
        buf.clear();
        let armed = watch.arm_at(deadline, fd, Side::Read);
        let (res, b) = stream.read_more(buf, crate::worker::IO_BUF).await;
        drop(armed);
        buf = b;
        if watch.fired() || !matches!(res, Ok(n) if n > 0) {
            break;
        }
    }
    worker.bufs.give(buf);
}

/// Reads until `st.rbuf` holds a whole head, and parses it into `st.head`, within the header
/// timeout. The limits are the current snapshot's.
async fn read_head(worker: &Worker, c: &mut Client, st: &mut RequestState) -> HeadRead {
    let snap = worker.snapshot();
    let limits = snap.limits;
    let deadline = c.watch.deadline_in(snap.config.gateway.header_timeout);
    drop(snap);
    st.scanner.reset();
    let max = limits.max_head_bytes + 4096;
    loop {
        if !st.rbuf.is_empty() {
            match st.scanner.scan(&st.rbuf, &limits) {
                Ok(Some((start, end))) => {
                    return match request::parse(&st.rbuf, start, end, &limits, &mut st.head) {
                        Ok(()) => HeadRead::Ready,
                        Err(e) => HeadRead::Refused(e.into()),
                    };
                }
                Ok(None) => {}
                Err(e) => return HeadRead::Refused(e.into()),
            }
        }
        let buf = std::mem::take(&mut st.rbuf);
        let armed = c.watch.arm_at(deadline, c.fd, Side::Read);
        let (res, buf) = c.stream.read_more(buf, max).await;
        drop(armed);
        st.rbuf = buf;
        if c.watch.fired() {
            return if st.rbuf.is_empty() {
                HeadRead::Closed
            } else {
                HeadRead::Refused(GatewayError::client(
                    crate::error::ErrorKind::RequestTimeout,
                    "request head not complete in time",
                ))
            };
        }
        match res {
            Ok(0) | Err(_) => return HeadRead::Closed,
            Ok(_) => {}
        }
    }
}

/// The server side of a TLS handshake, within the header timeout; counted either way. `None`:
/// it failed and the connection is done (a plain HTTP request got its 400 first).
async fn handshake(worker: &Worker, watch: &ConnWatch, mut tcp: TcpStream) -> Option<Stream> {
    let snap = worker.snapshot();
    let timeout = snap.config.gateway.header_timeout;
    let Some(server) = snap.tls.clone() else {
        // A checked config has a certificate for every https:// listener; a listener kept
        // from an earlier config (listeners change on restart) may not.
        worker.count_handshake(Err(HandshakeFailure::UnknownName));
        return None;
    };
    drop(snap);
    let fd = tcp.as_raw_fd();
    let armed = watch.arm(timeout, fd, Side::Both);
    let res = tls_server::accept(tcp, &server).await;
    drop(armed);
    match res {
        Ok(tls) => {
            worker.count_handshake(Ok(tls.connection().handshake_kind()));
            Some(Stream::Tls(Box::new(tls)))
        }
        Err((failure, t)) => {
            let failure = if watch.fired() {
                HandshakeFailure::Closed
            } else {
                failure
            };
            worker.count_handshake(Err(failure));
            if failure == HandshakeFailure::PlainHttp {
                tcp = t;
                let armed = watch.arm(timeout, fd, Side::Both);
                let _ = rt::write_all(&mut tcp, tls_server::PLAIN_HTTP_ANSWER.to_vec()).await;
                drop(armed);
                // The request is unread: linger so the client sees the answer, not a reset.
                linger(worker, watch, fd, &mut Stream::Plain(tcp)).await;
            }
            None
        }
    }
}
