//! One load thread: its own runtime (io_uring or epoll, built on this thread), its share of the
//! connections, one task per connection, and a watchdog that enforces `--timeout` and the end
//! of the run.
//!
//! The watchdog exists so that the request path carries no timer: a connection only publishes
//! "a response is due by T" in a `Cell`, and the watchdog, every few milliseconds, shuts down
//! the socket of any connection past its deadline. The blocked read then returns and the
//! connection sees why in its [`Watch`]. Everything here is thread-local: `Rc`, `Cell`,
//! `RefCell` (never borrowed across an `.await`).

use std::{
    cell::{Cell, RefCell},
    os::fd::RawFd,
    rc::Rc,
    sync::{Arc, Barrier, OnceLock, atomic::Ordering},
    time::{Duration, Instant},
};

use turnpike_tuning::{cpu, driver};

use crate::{
    conn,
    run::{Control, Plan, ThreadProgress},
    stats::{ErrorKind, Stats},
    tls::ThreadTls,
};

/// How often the watchdog looks at deadlines; bounds how late a timeout fires.
const WATCHDOG_TICK: Duration = Duration::from_millis(10);

/// Longest wait for responses still in flight when the run ends.
const MAX_DRAIN: Duration = Duration::from_secs(2);

/// Why the watchdog shut a connection's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    Timeout,
    /// The run is over (or aborted) and this response will not be waited for.
    End,
}

/// What the watchdog knows about one connection.
#[derive(Debug)]
pub struct Watch {
    /// The open socket, or -1. Cleared before the socket is closed so a reused fd number is
    /// never shut by mistake.
    pub fd: Cell<RawFd>,
    /// When the awaited response is due (ns since start); 0 when nothing is awaited.
    pub deadline: Cell<u64>,
    pub killed: Cell<Option<Kill>>,
}

/// Thread-local state shared by the connection tasks of one load thread.
pub struct Worker {
    pub plan: &'static Plan,
    control: &'static Control,
    progress: &'static ThreadProgress,
    start: Instant,
    pub stats: RefCell<Stats>,
    /// `https://`: this thread's TLS client side (its own session cache).
    pub tls: Option<ThreadTls>,
    responses: Cell<u64>,
    sent: Cell<u64>,
    errors: Cell<u64>,
    /// Connection tasks still running.
    live: Cell<usize>,
    /// Phase boundaries in ns since start: the measured window is `warmup_end..end` (`end` is
    /// `u64::MAX` when only `-n` ends it).
    pub warmup_end: u64,
    pub end: u64,
    drain_end: u64,
    pub timeout_ns: u64,
}

impl Worker {
    /// Nanoseconds since the run started.
    #[inline]
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    #[inline]
    pub fn aborted(&self) -> bool {
        self.control.abort.load(Ordering::Relaxed)
    }

    /// Counts `n` requests written, for the progress line.
    #[inline]
    pub fn sent(&self, n: usize) {
        let total = self.sent.get() + n as u64;
        self.sent.set(total);
        self.progress.sent.store(total, Ordering::Relaxed);
    }

    /// Counts one response for the progress line.
    #[inline]
    pub fn responded(&self) {
        let n = self.responses.get() + 1;
        self.responses.set(n);
        self.progress.responses.store(n, Ordering::Relaxed);
    }

    /// Counts an error; `at` decides whether it falls in the measured window.
    pub fn failed(&self, kind: ErrorKind, at: u64) {
        let n = self.errors.get() + 1;
        self.errors.set(n);
        self.progress.errors.store(n, Ordering::Relaxed);
        if at >= self.warmup_end {
            self.stats.borrow_mut().error(kind);
        }
    }

    pub fn connect_failed(&self, err: &std::io::Error) {
        let _ = self.control.first_connect_error.set(err.to_string());
        self.failed(ErrorKind::Connect, self.now());
    }

    /// A TLS handshake failed (not by timeout): counted as a `tls` error, and its reason is kept
    /// for the fail-fast message as a refused connect's is.
    pub fn handshake_failed(&self, err: &std::io::Error) {
        let _ = self
            .control
            .first_connect_error
            .set(format!("TLS handshake failed: {err}"));
        self.failed(ErrorKind::Tls, self.now());
    }

    /// A connection is ready for requests (with TLS: its handshake is done), `took_ns` after
    /// its connect began.
    pub fn connected(&self, took_ns: u64) {
        let mut stats = self.stats.borrow_mut();
        stats.connects += 1;
        stats.connect.saturating_record(took_ns.max(1));
        self.progress.connects.fetch_add(1, Ordering::Relaxed);
    }
}

/// Entry point of a load thread.
pub fn thread_main(
    plan: &'static Plan,
    control: &'static Control,
    t: usize,
    ready: Arc<Barrier>,
    start: &'static OnceLock<Instant>,
) -> Result<Stats, String> {
    let pinned = match plan.pin.get(t % plan.pin.len().max(1)) {
        Some(&c) => cpu::pin_current_thread(c).map_err(|e| format!("cannot pin to CPU {c}: {e}")),
        None => Ok(()),
    };
    let (count, first) = plan.thread_share(t);
    let entries = (count * 4).next_power_of_two().clamp(256, 32_768) as u32;
    let rt = driver::build_runtime(plan.driver, entries);
    // Reach both rendezvous whatever happened, or the main thread would wait for ever.
    ready.wait();
    ready.wait();
    pinned?;
    let (mut rt, kind) = rt.map_err(|e| format!("cannot build the runtime: {e}"))?;
    let _ = control.driver.set(kind);
    let start = *start.get().ok_or("start time missing")?;
    let timeout = plan.timeout;
    let window = plan.window();
    let worker = Rc::new(Worker {
        plan,
        control,
        progress: &control.threads[t],
        start,
        stats: RefCell::new(Stats::new()),
        tls: plan.tls.as_ref().map(|t| t.for_thread()),
        responses: Cell::new(0),
        sent: Cell::new(0),
        errors: Cell::new(0),
        live: Cell::new(count),
        warmup_end: window.start,
        end: window.end,
        drain_end: window
            .end
            .saturating_add(timeout.min(MAX_DRAIN).as_nanos() as u64),
        timeout_ns: timeout.as_nanos() as u64,
    });
    rt.block_on(async {
        let watches: Rc<[Rc<Watch>]> = (0..count)
            .map(|_| {
                Rc::new(Watch {
                    fd: Cell::new(-1),
                    deadline: Cell::new(0),
                    killed: Cell::new(None),
                })
            })
            .collect();
        let tasks: Vec<_> = watches
            .iter()
            .enumerate()
            .map(|(i, watch)| {
                let (worker, watch) = (worker.clone(), watch.clone());
                monoio::spawn(async move {
                    conn::run(&worker, first + i, &watch).await;
                    worker.live.set(worker.live.get() - 1);
                })
            })
            .collect();
        let dog = monoio::spawn(watchdog(worker.clone(), watches));
        for task in tasks {
            task.await;
        }
        dog.await;
    });
    Ok(worker.stats.take())
}

/// Shuts the sockets of connections past their deadline, and of every busy connection once the
/// drain period is over or the run was aborted.
async fn watchdog(worker: Rc<Worker>, watches: Rc<[Rc<Watch>]>) {
    while worker.live.get() > 0 {
        monoio::time::sleep(WATCHDOG_TICK).await;
        let now = worker.now();
        let over = now >= worker.drain_end || worker.aborted();
        for w in watches.iter() {
            let (fd, due) = (w.fd.get(), w.deadline.get());
            if fd < 0 || due == 0 || w.killed.get().is_some() {
                continue;
            }
            let kill = if now >= due {
                Kill::Timeout
            } else if over {
                Kill::End
            } else {
                continue;
            };
            w.killed.set(Some(kill));
            // SAFETY: `fd` is this connection's open socket: the connection clears `fd` before
            // closing it, and both run on this thread, so the number cannot have been reused.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }
}
