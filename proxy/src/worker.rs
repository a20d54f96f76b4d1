//! One worker per core: its own runtime, its own `SO_REUSEPORT` listeners, its own upstream
//! pools and buffers. Nothing here is shared with another worker except the published config
//! snapshot and the server's drain flag.
//!
//! Hot path (per request): no locks, no blocking calls, no logging above debug.

use std::{
    cell::{Cell, RefCell},
    io,
    net::SocketAddr,
    os::fd::{AsRawFd, FromRawFd, RawFd},
    rc::Rc,
    sync::{Arc, atomic::Ordering, mpsc},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use monoio::net::ListenerOpts;
use turnpike_core::context::{RequestId, RequestIds};
use turnpike_tuning::driver::{DriverChoice, DriverKind, build_runtime};

use crate::{
    access_log::LogBuffer,
    conn::{self, RequestState},
    error::GatewayError,
    exchange::StageLog,
    plan::RoutePlan,
    rt::{self, TcpListener},
    server::ServerState,
    snapshot::{LocalSnapshot, SnapshotRef},
    upstream::pool::UpstreamPool,
    watch::{self, Watchdog},
};

/// Size of the buffers used to stream bodies and read upstream responses.
pub const IO_BUF: usize = 64 * 1024;
/// Buffers kept for reuse per worker.
const POOLED_BUFS: usize = 256;
/// Request states kept for reuse per worker (one per connection with a request in hand).
const POOLED_STATES: usize = 1024;
/// Every this many ticks (1 s), pooled buffers and request states unused since the last trim
/// are freed, down to [`POOL_KEEP`] of each.
const TRIM_EVERY_TICKS: u64 = 20;
const POOL_KEEP: usize = 16;
/// A request state whose read buffer grew past this (a large head) is not pooled.
const POOLED_STATE_MAX_BUF: usize = 4 * conn::INITIAL_READ_BUF;
/// At most one integration-failure warning per worker per this many milliseconds.
const WARN_EVERY_MS: u64 = 1000;

/// What a worker reports once it has bound its listeners.
pub type Started = Result<(usize, DriverKind), String>;

/// Everything a worker needs to start.
pub struct WorkerSpec {
    pub id: usize,
    pub cpu: Option<usize>,
    pub driver: DriverChoice,
    pub server: Arc<ServerState>,
    pub started: mpsc::Sender<Started>,
    /// Listening sockets handed over by the process this one replaces, by listen address:
    /// used instead of binding new ones.
    pub inherited: Vec<(String, RawFd)>,
}

/// Per-core state, shared by this worker's tasks through an `Rc`.
pub struct Worker {
    pub id: usize,
    pub snapshot: LocalSnapshot,
    pub server: Arc<ServerState>,
    /// The published API key table.
    pub keys: crate::traffic::LocalKeys,
    /// Verified tokens and authorizer answers, this core's.
    pub auth_cache: crate::auth::cache::AuthCache,
    /// This core's response caches (stage caches).
    pub cache: crate::cache::WorkerCaches,
    pub pool: UpstreamPool,
    pub bufs: BufPool,
    /// Client connections and their deadlines.
    pub watchdog: Rc<Watchdog>,
    draining: Cell<bool>,
    date: Cell<[u8; 29]>,
    date_second: Cell<u64>,
    listeners: RefCell<Vec<RawFd>>,
    /// Cancels the pending accepts when an upgrade hands the sockets over.
    accepts: RefCell<Option<monoio::io::Canceller>>,
    /// Request states not in use (see `conn`: idle connections hold none). Boxed: a
    /// connection holds a pointer, never the state itself.
    states: FreeList<Box<RequestState>>,
    /// A reused buffer for rendering gateway response bodies.
    pub scratch: Cell<Vec<u8>>,
    request_ids: RefCell<RequestIds>,
    /// This worker's staging buffer per access log destination.
    logs: RefCell<Vec<LogBuffer>>,
    last_warn_ms: Cell<u64>,
    warns_suppressed: Cell<u64>,
}

impl Worker {
    #[inline]
    pub fn snapshot(&self) -> SnapshotRef {
        self.snapshot.get()
    }

    #[inline]
    pub fn draining(&self) -> bool {
        self.draining.get()
    }

    /// The current `Date` header value (refreshed every tick).
    #[inline]
    pub fn date(&self) -> [u8; 29] {
        self.date.get()
    }

    /// A request state for a connection that has a request in hand.
    #[inline]
    pub fn take_request_state(&self) -> Box<RequestState> {
        self.states
            .pop()
            .unwrap_or_else(|| Box::new(RequestState::new()))
    }

    /// Gives a request state back once its connection is idle (or closed).
    #[inline]
    pub fn give_request_state(&self, mut st: Box<RequestState>) {
        if st.rbuf.capacity() <= POOLED_STATE_MAX_BUF {
            st.rbuf.clear();
            st.consumed = 0;
            self.states.push(st);
        }
    }

    /// Milliseconds since the Unix epoch (`$context.requestTimeEpoch`).
    #[inline]
    pub fn epoch_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// The next `$context.requestId` (unique across workers and restarts).
    #[inline]
    pub fn next_request_id(&self, epoch_ms: u64) -> RequestId {
        self.request_ids.borrow_mut().next(epoch_ms)
    }

    /// Appends one access log line, rendered by `render`, to this worker's buffer for the
    /// stage log's destination. Never blocks: a full writer queue drops and counts.
    #[inline]
    pub fn log_line(&self, log: &StageLog, render: impl FnOnce(&mut Vec<u8>)) {
        let mut logs = self.logs.borrow_mut();
        let i = match logs.iter().position(|b| Arc::ptr_eq(b.sink(), &log.sink)) {
            Some(i) => i,
            None => {
                logs.push(log.sink.buffer());
                logs.len() - 1
            }
        };
        let buf = &mut logs[i];
        render(buf.line());
        buf.end_line();
    }

    /// Hands staged access log lines to their writers.
    fn flush_logs(&self) {
        for b in self.logs.borrow_mut().iter_mut() {
            b.flush();
        }
    }

    /// A 502 or 504 the gateway made: warned with its reason, at most once a second per
    /// worker (the count of those not shown goes with the next one).
    /// Counts a client TLS handshake: completed (full or resumed) or failed, and why.
    pub fn count_handshake(
        &self,
        outcome: Result<Option<rustls::HandshakeKind>, crate::tls::server::HandshakeFailure>,
    ) {
        let i = match outcome {
            Ok(Some(rustls::HandshakeKind::Resumed)) => 1,
            Ok(_) => 0,
            Err(f) => f.outcome(),
        };
        self.snapshot().gauges[self.id].tls_handshakes[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn warn_integration_failure(&self, plan: &RoutePlan, e: GatewayError, request_id: &str) {
        self.warn_failure(plan, e, request_id, true, "integration failed");
    }

    /// Warns about an answer the gateway made itself for a route (a 5xx: an integration or an
    /// authorizer that failed, a stage that cannot use its integration), at most once per
    /// `WARN_EVERY_MS` per worker; the rest are counted. The line names the request id, the
    /// API, stage, route, the upstream (`host:port`, `function:NAME`) and the cause.
    pub fn warn_failure(
        &self,
        plan: &RoutePlan,
        e: GatewayError,
        request_id: &str,
        integration: bool,
        what: &'static str,
    ) {
        let now = self.watchdog.now_ms();
        if now.saturating_sub(self.last_warn_ms.get()) < WARN_EVERY_MS
            && self.last_warn_ms.get() != 0
        {
            self.warns_suppressed.set(self.warns_suppressed.get() + 1);
            return;
        }
        self.last_warn_ms.set(now.max(1));
        let suppressed = self.warns_suppressed.replace(0);
        // An authorizer's failure (`integration` false) is not the integration's: no
        // upstream named.
        let upstream: std::borrow::Cow<'_, str> = match &plan.integration {
            _ if !integration => "-".into(),
            crate::plan::PlanIntegration::Proxy(p) => {
                String::from_utf8_lossy(&p.target.host_header)
            }
            crate::plan::PlanIntegration::Function(f) => {
                format!("function:{}", f.function.name).into()
            }
            crate::plan::PlanIntegration::Mock(_) => "mock".into(),
            crate::plan::PlanIntegration::Misconfigured(why) => format!("none ({why})").into(),
            crate::plan::PlanIntegration::NoRoute => "none".into(),
        };
        tracing::warn!(
            worker = self.id,
            request_id = %request_id,
            api = %plan.api_name,
            stage = %plan.stage_name,
            route = ?plan.route_key,
            upstream = %upstream,
            status = e.status(),
            reason = e.reason,
            suppressed,
            "{what}"
        );
    }

    /// Reformats the Date header when the second changed.
    fn refresh_date(&self) {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second == self.date_second.get() {
            return;
        }
        self.date_second.set(second);
        let text = httpdate::fmt_http_date(now);
        let mut buf = [b' '; 29];
        let n = text.len().min(29);
        buf[..n].copy_from_slice(&text.as_bytes()[..n]);
        self.date.set(buf);
    }

    /// Publishes this worker's connection count and the config generation it runs (picking up
    /// a new one now, so an idle worker reports it too).
    fn publish_gauges(&self) {
        let snap = self.snapshot();
        let g = &snap.gauges[self.id];
        g.connections
            .store(self.watchdog.active() as u64, Ordering::Relaxed);
        g.config_generation
            .store(snap.generation, Ordering::Relaxed);
    }

    /// Stops accepting and wakes idle connections so they close; busy ones close after their
    /// current request.
    fn start_drain(&self) {
        self.draining.set(true);
        if self.server.handoff.load(Ordering::Acquire) {
            // The sockets live on in the new process: shutting them would stop it too. The
            // accepts are cancelled instead; one that completed first is served.
            if let Some(c) = self.accepts.borrow_mut().take() {
                c.cancel();
            }
        } else {
            for &fd in self.listeners.borrow().iter() {
                rt::shutdown_read(fd);
            }
        }
        self.watchdog.close_idle();
    }
}

/// Reusable I/O buffers of [`IO_BUF`] bytes. Taking and giving back costs a `Vec` push/pop.
pub struct BufPool {
    free: FreeList<Vec<u8>>,
}

impl BufPool {
    fn new() -> BufPool {
        BufPool {
            free: FreeList::new(POOLED_BUFS),
        }
    }

    #[inline]
    pub fn take(&self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(IO_BUF))
    }

    #[inline]
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() >= IO_BUF && buf.capacity() <= 4 * IO_BUF {
            buf.clear();
            self.free.push(buf);
        }
    }
}

/// A per-core free list that returns to the allocator what no request needed for a while: a
/// burst of concurrent requests grows it, and without trimming its buffers would stay resident
/// for good (counted against every idle connection after the burst).
pub struct FreeList<T> {
    free: RefCell<Vec<T>>,
    /// The fewest items the list held since the last trim: that many sat unused all along.
    low: Cell<usize>,
    cap: usize,
}

impl<T> FreeList<T> {
    pub fn new(cap: usize) -> FreeList<T> {
        FreeList {
            free: RefCell::new(Vec::new()),
            low: Cell::new(0),
            cap,
        }
    }

    #[inline]
    pub fn pop(&self) -> Option<T> {
        let mut free = self.free.borrow_mut();
        let item = free.pop();
        if free.len() < self.low.get() {
            self.low.set(free.len());
        }
        item
    }

    /// Keeps `item` unless the list is full (then it is dropped).
    #[inline]
    pub fn push(&self, item: T) {
        let mut free = self.free.borrow_mut();
        if free.len() < self.cap {
            free.push(item);
        }
    }

    /// Frees the items that sat unused since the last trim, beyond `keep`.
    pub fn trim(&self, keep: usize) {
        let mut free = self.free.borrow_mut();
        let unused = self.low.get().min(free.len());
        let release = unused.saturating_sub(keep);
        // The unused ones are at the bottom: pops and pushes work at the top.
        free.drain(..release);
        self.low.set(free.len());
    }

    pub fn len(&self) -> usize {
        self.free.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The worker thread's body: pin, build the runtime, bind, serve until drained.
pub fn run(spec: WorkerSpec) {
    if let Some(cpu) = spec.cpu
        && let Err(e) = turnpike_tuning::cpu::pin_current_thread(cpu)
    {
        tracing::warn!(worker = spec.id, cpu, error = %e, "could not pin worker to its CPU");
    }
    let (mut runtime, driver) = match build_runtime(spec.driver, 4096) {
        Ok(r) => r,
        Err(e) => {
            let _ = spec
                .started
                .send(Err(format!("worker {}: runtime: {e}", spec.id)));
            return;
        }
    };
    runtime.block_on(serve(spec, driver));
}

async fn serve(spec: WorkerSpec, driver: DriverKind) {
    let cell = spec.server.snapshots.clone();
    let snapshot = LocalSnapshot::new(cell);
    let first = snapshot.get();
    let listen = first.config.gateway.listen.clone();
    let mut listeners = Vec::new();
    for addr in &listen {
        let key = addr.to_string();
        let mut handed = spec
            .inherited
            .iter()
            .filter(|(l, _)| *l == key)
            .map(|&(_, fd)| fd)
            .peekable();
        if handed.peek().is_none() {
            match bind(addr.addr) {
                Ok(l) => listeners.push((l, addr.tls, key)),
                Err(e) => {
                    let _ = spec.started.send(Err(format!("listen {addr}: {e}")));
                    return;
                }
            }
            continue;
        }
        for fd in handed {
            // SAFETY: a listening socket handed over at exec, owned by this worker alone.
            let std = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            let _ = std.set_nonblocking(true);
            match TcpListener::from_std(std) {
                Ok(l) => listeners.push((l, addr.tls, key.clone())),
                Err(e) => {
                    let _ = spec
                        .started
                        .send(Err(format!("listen {addr}: handed-over socket {fd}: {e}")));
                    return;
                }
            }
        }
    }
    for (l, _, key) in &listeners {
        spec.server.register_listener(key.clone(), l.as_raw_fd());
    }
    drop(first);
    let canceller = monoio::io::Canceller::new();
    let worker = Rc::new(Worker {
        id: spec.id,
        snapshot,
        keys: crate::traffic::LocalKeys::new(spec.server.usage.clone()),
        auth_cache: crate::auth::cache::AuthCache::new(),
        cache: crate::cache::WorkerCaches::new(spec.id),
        server: spec.server.clone(),
        pool: UpstreamPool::default(),
        bufs: BufPool::new(),
        watchdog: Rc::new(Watchdog::default()),
        draining: Cell::new(false),
        date: Cell::new([b' '; 29]),
        date_second: Cell::new(0),
        listeners: RefCell::new(listeners.iter().map(|(l, ..)| l.as_raw_fd()).collect()),
        accepts: RefCell::new(None),
        states: FreeList::new(POOLED_STATES),
        scratch: Cell::new(Vec::new()),
        request_ids: RefCell::new(RequestIds::new(spec.id as u16, random_seed())),
        logs: RefCell::new(Vec::new()),
        last_warn_ms: Cell::new(0),
        warns_suppressed: Cell::new(0),
    });
    worker.refresh_date();
    for (l, tls, _) in listeners {
        rt::spawn(accept_loop(worker.clone(), l, tls, canceller.handle()));
    }
    *worker.accepts.borrow_mut() = Some(canceller);
    let _ = spec.started.send(Ok((spec.id, driver)));

    let mut drain_deadline: Option<Instant> = None;
    let mut ticks: u64 = 0;
    loop {
        rt::sleep(watch::TICK).await;
        ticks += 1;
        if ticks.is_multiple_of(TRIM_EVERY_TICKS) {
            worker.bufs.free.trim(POOL_KEEP);
            worker.states.trim(POOL_KEEP);
            // mimalloc returns freed pages to the OS only when its thread allocates or frees
            // again after a short delay; an idle worker does neither, so pages freed by a
            // burst (and by the trims above) would stay resident. Once a second, let it.
            // SAFETY: mi_collect has no preconditions; it works on the calling thread's heap.
            unsafe { libmimalloc_sys::mi_collect(false) };
        }
        worker.watchdog.tick();
        worker.refresh_date();
        worker.publish_gauges();
        worker.flush_logs();
        worker.cache.tick();
        worker
            .pool
            .expire(Instant::now(), &worker.snapshot().config.gateway.upstream);
        if drain_deadline.is_none() && worker.server.draining.load(Ordering::Acquire) {
            let timeout = worker.snapshot().config.gateway.drain_timeout;
            drain_deadline = Some(Instant::now() + timeout);
            worker.start_drain();
            tracing::debug!(
                worker = worker.id,
                active = worker.watchdog.active(),
                "draining"
            );
        }
        if let Some(deadline) = drain_deadline {
            let active = worker.watchdog.active();
            if active == 0 {
                worker.flush_logs();
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    worker = worker.id,
                    active,
                    "drain timeout: closing connections"
                );
                worker.flush_logs();
                break;
            }
        }
    }
}

/// A seed that differs per process start, so request ids do not repeat across restarts.
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Time and pid still differ between starts.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return t ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_le_bytes(b)
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(4096);
    TcpListener::bind_with_config(addr, &opts)
}

/// Accepts connections for one listener; `tls`: the listener is `https://`. `cancel` ends
/// it when an upgrade hands the socket over.
async fn accept_loop(
    worker: Rc<Worker>,
    listener: TcpListener,
    tls: bool,
    cancel: monoio::io::CancelHandle,
) {
    loop {
        match listener.cancelable_accept(cancel.clone()).await {
            Ok((stream, peer)) => {
                let handoff = worker.server.handoff.load(Ordering::Acquire);
                if worker.draining() && !handoff {
                    break;
                }
                worker.snapshot().gauges[worker.id]
                    .accepted
                    .fetch_add(1, Ordering::Relaxed);
                // Taken from a socket the new process now serves: answered here (with
                // `Connection: close`) rather than dropped.
                conn::spawn(worker.clone(), stream, peer, tls);
                if worker.draining() {
                    break;
                }
            }
            Err(e) => {
                if worker.draining() {
                    break;
                }
                // Out of file descriptors or similar: back off instead of spinning.
                tracing::warn!(worker = worker.id, error = %e, "accept failed");
                rt::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FreeList;

    #[test]
    fn a_trim_frees_what_sat_unused_since_the_last_one() {
        let list = FreeList::new(100);
        for i in 0..50 {
            list.push(i);
        }
        list.trim(0); // starts the first interval: nothing was measured yet
        assert_eq!(list.len(), 50);
        // A request burst takes 10 and gives them back: 40 sat unused the whole interval.
        let taken: Vec<_> = (0..10).filter_map(|_| list.pop()).collect();
        for t in taken {
            list.push(t);
        }
        list.trim(5);
        assert_eq!(list.len(), 15, "the 10 in use plus 5 kept");
        // With every item in use during an interval, nothing is freed.
        let taken: Vec<_> = (0..15).filter_map(|_| list.pop()).collect();
        for t in taken {
            list.push(t);
        }
        list.trim(0);
        assert_eq!(list.len(), 15);
        for _ in 0..200 {
            list.push(0);
        }
        assert_eq!(list.len(), 100, "capped");
    }
}
