//! One worker per core: its own runtime, its own `SO_REUSEPORT` listeners, its own upstream
//! pools and buffers. Nothing here is shared with another worker except the published config
//! snapshot and the server's drain flag.
//!
//! Hot path (per request): no locks, no blocking calls, no logging above debug.

use std::{
    cell::{Cell, RefCell},
    io,
    net::SocketAddr,
    os::fd::{AsRawFd, RawFd},
    rc::Rc,
    sync::{Arc, atomic::Ordering, mpsc},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use monoio::net::ListenerOpts;
use turnpike_tuning::driver::{DriverChoice, DriverKind, build_runtime};

use crate::{
    conn,
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

/// What a worker reports once it has bound its listeners.
pub type Started = Result<(usize, DriverKind), String>;

/// Everything a worker needs to start.
pub struct WorkerSpec {
    pub id: usize,
    pub cpu: Option<usize>,
    pub driver: DriverChoice,
    pub server: Arc<ServerState>,
    pub started: mpsc::Sender<Started>,
}

/// Per-core state, shared by this worker's tasks through an `Rc`.
pub struct Worker {
    pub id: usize,
    pub snapshot: LocalSnapshot,
    pub server: Arc<ServerState>,
    pub pool: UpstreamPool,
    pub bufs: BufPool,
    /// Client connections and their deadlines.
    pub watchdog: Rc<Watchdog>,
    draining: Cell<bool>,
    date: Cell<[u8; 29]>,
    date_second: Cell<u64>,
    listeners: RefCell<Vec<RawFd>>,
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
        for &fd in self.listeners.borrow().iter() {
            rt::shutdown_read(fd);
        }
        self.watchdog.close_idle();
    }
}

/// Reusable I/O buffers of [`IO_BUF`] bytes. Taking and giving back costs a `Vec` push/pop.
pub struct BufPool {
    free: RefCell<Vec<Vec<u8>>>,
}

impl BufPool {
    fn new() -> BufPool {
        BufPool {
            free: RefCell::new(Vec::new()),
        }
    }

    #[inline]
    pub fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(IO_BUF))
    }

    #[inline]
    pub fn give(&self, mut buf: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        if free.len() < POOLED_BUFS && buf.capacity() >= IO_BUF && buf.capacity() <= 4 * IO_BUF {
            buf.clear();
            free.push(buf);
        }
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
        match bind(*addr) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                let _ = spec.started.send(Err(format!("listen {addr}: {e}")));
                return;
            }
        }
    }
    drop(first);
    let worker = Rc::new(Worker {
        id: spec.id,
        snapshot,
        server: spec.server.clone(),
        pool: UpstreamPool::default(),
        bufs: BufPool::new(),
        watchdog: Rc::new(Watchdog::default()),
        draining: Cell::new(false),
        date: Cell::new([b' '; 29]),
        date_second: Cell::new(0),
        listeners: RefCell::new(listeners.iter().map(|l| l.as_raw_fd()).collect()),
    });
    worker.refresh_date();
    for l in listeners {
        rt::spawn(accept_loop(worker.clone(), l));
    }
    let _ = spec.started.send(Ok((spec.id, driver)));

    let mut drain_deadline: Option<Instant> = None;
    loop {
        rt::sleep(watch::TICK).await;
        worker.watchdog.tick();
        worker.refresh_date();
        worker.publish_gauges();
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
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    worker = worker.id,
                    active,
                    "drain timeout: closing connections"
                );
                break;
            }
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(4096);
    TcpListener::bind_with_config(addr, &opts)
}

async fn accept_loop(worker: Rc<Worker>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if worker.draining() {
                    break;
                }
                rt::spawn(conn::serve(worker.clone(), stream, peer));
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
