//! Starts the workers, waits for a signal, drains.
//!
//! SIGTERM or SIGINT: every worker stops accepting, lets in-flight requests finish (up to the
//! drain timeout), closes idle connections, and the process exits 0. A second signal during
//! the drain exits at once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
};

use signal_hook::{consts::TERM_SIGNALS, iterator::Signals};
use turnpike_core::config::Workers;
use turnpike_tuning::driver::{DriverChoice, DriverKind};

use crate::{
    snapshot::{Snapshot, SnapshotCell},
    worker::{self, WorkerSpec},
};

/// How many workers a `workers` setting means on this host.
pub fn worker_count(workers: Workers) -> usize {
    match workers {
        Workers::Auto => turnpike_tuning::cpu::available_cpus().len().max(1),
        Workers::Count(n) => n,
    }
}

/// What all workers share: the published config and the drain flag.
pub struct ServerState {
    /// API key tables and per-key usage state, published by the admin.
    pub usage: Arc<turnpike_core::usage::UsageState>,
    pub snapshots: Arc<SnapshotCell>,
    pub draining: AtomicBool,
}

/// Start-up choices that are not part of the config document.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub driver: DriverChoice,
    /// The published API key table and the per-key usage slots (empty: no keys).
    pub usage: Arc<turnpike_core::usage::UsageState>,
}

/// A running gateway: its workers and shared state.
pub struct Server {
    pub state: Arc<ServerState>,
    pub driver: DriverKind,
    pub workers: usize,
    threads: Vec<thread::JoinHandle<()>>,
    signals: Signals,
}

impl Server {
    /// Starts one worker per core (or as configured) and waits until all have bound their
    /// listeners.
    pub fn start(first: Snapshot, options: Options) -> Result<Server, String> {
        // Before any worker exists, so a signal during start-up drains instead of killing.
        let signals = Signals::new(TERM_SIGNALS).map_err(|e| format!("signal handlers: {e}"))?;
        let cpus = turnpike_tuning::cpu::available_cpus();
        let count = worker_count(first.config.gateway.workers);
        if let Err(e) = turnpike_tuning::rlimit::raise_nofile() {
            tracing::warn!(error = %e, "could not raise the open-file limit");
        }
        // Each worker binds its own SO_REUSEPORT listener, and the kernel would just as
        // willingly share the port with another process's: a second gateway started on a busy
        // port would take part of the first one's traffic. A plain bind first says whether
        // anything listens there (without listening itself: see `rt::probe_bind`).
        for l in &first.config.gateway.listen {
            crate::rt::probe_bind(l.addr).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    format!("listen {l}: the address is in use (another process listens there)")
                } else {
                    format!("listen {l}: {e}")
                }
            })?;
        }
        // The buckets' clock starts before any request can read it.
        crate::traffic::start_clock();
        crate::auth::jwks::start_fetcher();
        let state = Arc::new(ServerState {
            snapshots: Arc::new(SnapshotCell::new(first)),
            draining: AtomicBool::new(false),
            usage: options.usage,
        });
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(count);
        for id in 0..count {
            let spec = WorkerSpec {
                id,
                cpu: cpus.get(id % cpus.len().max(1)).copied(),
                driver: options.driver,
                server: state.clone(),
                started: tx.clone(),
            };
            let t = thread::Builder::new()
                .name(format!("turnpike-w{id}"))
                .spawn(move || worker::run(spec))
                .map_err(|e| format!("spawning worker {id}: {e}"))?;
            threads.push(t);
        }
        drop(tx);
        let mut driver = None;
        for _ in 0..count {
            match rx.recv() {
                Ok(Ok((_, kind))) => driver = driver.or(Some(kind)),
                Ok(Err(e)) => {
                    state.draining.store(true, Ordering::Release);
                    return Err(e);
                }
                Err(_) => {
                    state.draining.store(true, Ordering::Release);
                    return Err("a worker exited during start-up".into());
                }
            }
        }
        Ok(Server {
            state,
            driver: driver.unwrap_or(DriverKind::Epoll),
            workers: count,
            threads,
            signals,
        })
    }

    /// Blocks until SIGTERM/SIGINT, then drains and returns once every worker has stopped.
    pub fn run_until_signal(self) -> std::io::Result<()> {
        let mut signals = self.signals;
        if let Some(sig) = signals.forever().next() {
            tracing::info!(signal = sig, "draining: finishing in-flight requests");
        }
        self.state.draining.store(true, Ordering::Release);
        let handle = signals.handle();
        let watcher = thread::spawn(move || {
            if signals.forever().next().is_some() {
                tracing::warn!("second signal: exiting without waiting for the drain");
                std::process::exit(1);
            }
        });
        for t in self.threads {
            let _ = t.join();
        }
        handle.close();
        let _ = watcher.join();
        tracing::info!("stopped");
        Ok(())
    }
}
