//! One run, from the main thread's side: start the load threads, print a progress line every
//! second, fail fast when nothing can connect, collect and merge what the threads measured.
//!
//! The main thread never touches a socket. It talks to load threads only through [`Control`]:
//! an abort flag and per-thread progress counters, written with relaxed stores by their owning
//! thread and only read here, so the request path takes no lock and shares no cache line.

use std::{
    io::Write,
    sync::{
        Arc, Barrier, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use turnpike_tuning::driver::{DriverChoice, DriverKind};

use crate::{request::RequestSet, stats::Stats, target::Target, tls::TlsClient, worker};

/// Everything a run needs, fixed before it starts.
#[derive(Debug)]
pub struct Plan {
    pub target: Target,
    /// `https://`: how connections speak TLS.
    pub tls: Option<TlsClient>,
    pub requests: RequestSet,
    pub threads: usize,
    pub connections: usize,
    pub pipeline: usize,
    /// Requests per second for the open loop; `None` is the closed loop.
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub new_conn: bool,
    pub driver: DriverChoice,
    /// CPUs to pin load threads to, round-robin; empty: no pinning.
    pub pin: Vec<usize>,
    pub progress: bool,
}

impl Plan {
    /// Connections handled by load thread `t`, and the global index of its first one.
    pub fn thread_share(&self, t: usize) -> (usize, usize) {
        let base = self.connections / self.threads;
        let extra = self.connections % self.threads;
        let count = base + usize::from(t < extra);
        let first = t * base + t.min(extra);
        (count, first)
    }
}

/// Progress of one load thread, on its own cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ThreadProgress {
    pub responses: AtomicU64,
    pub errors: AtomicU64,
    pub connects: AtomicU64,
}

/// What the main thread and the load threads share.
#[derive(Debug)]
pub struct Control {
    pub abort: AtomicBool,
    pub threads: Vec<ThreadProgress>,
    /// The first connect failure, for the fail-fast message.
    pub first_connect_error: OnceLock<String>,
    pub driver: OnceLock<DriverKind>,
}

/// Why a run did not produce results.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot connect to {target} ({addr}): {reason}")]
    Unreachable {
        target: String,
        addr: std::net::SocketAddr,
        reason: String,
    },
    #[error("load thread failed: {0}")]
    Thread(String),
}

/// The merged outcome of a run.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    pub driver: Option<DriverKind>,
}

/// How long the first connection may take before the run is declared hopeless.
const FAIL_FAST_AFTER: Duration = Duration::from_secs(1);

/// Runs the plan to the end and merges every thread's measurements.
/// `plan` is `'static` (leaked by the caller): it lives for the whole process and every thread
/// reads it, so leaking is simpler and cheaper than reference counting on the request path.
pub fn run(plan: &'static Plan) -> Result<Outcome, RunError> {
    let control: &'static Control = Box::leak(Box::new(Control {
        abort: AtomicBool::new(false),
        threads: (0..plan.threads)
            .map(|_| ThreadProgress::default())
            .collect(),
        first_connect_error: OnceLock::new(),
        driver: OnceLock::new(),
    }));
    let ready = Arc::new(Barrier::new(plan.threads + 1));
    let start_cell: &'static OnceLock<Instant> = Box::leak(Box::new(OnceLock::new()));
    let mut handles = Vec::with_capacity(plan.threads);
    for t in 0..plan.threads {
        let ready = ready.clone();
        let h = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || worker::thread_main(plan, control, t, ready, start_cell))
            .map_err(|e| RunError::Thread(e.to_string()))?;
        handles.push(h);
    }
    // Two rendezvous: every runtime is built, then everyone reads the same start instant.
    ready.wait();
    let start = *start_cell.get_or_init(Instant::now);
    ready.wait();

    watch(plan, control, start, &handles)?;

    let mut total = Stats::new();
    for h in handles {
        match h.join() {
            Ok(Ok(stats)) => total.merge(&stats),
            Ok(Err(e)) => return Err(RunError::Thread(e)),
            Err(_) => return Err(RunError::Thread("a load thread panicked".into())),
        }
    }
    Ok(Outcome {
        stats: total,
        driver: control.driver.get().copied(),
    })
}

/// Waits for the threads, printing progress once a second and failing fast when no connection
/// could be made in the first second.
fn watch(
    plan: &Plan,
    control: &Control,
    start: Instant,
    handles: &[std::thread::JoinHandle<Result<Stats, String>>],
) -> Result<(), RunError> {
    let sum = |f: fn(&ThreadProgress) -> u64| control.threads.iter().map(f).sum::<u64>();
    let mut next_tick = Duration::from_secs(1);
    let mut last_responses = 0u64;
    let mut last_errors = 0u64;
    let mut checked_connect = false;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = start.elapsed();
        if !checked_connect && elapsed >= FAIL_FAST_AFTER {
            checked_connect = true;
            if sum(|p| p.connects.load(Ordering::Relaxed)) == 0 {
                control.abort.store(true, Ordering::Relaxed);
                let reason = control
                    .first_connect_error
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "no connection established within 1 s".into());
                return Err(RunError::Unreachable {
                    target: plan.target.url.clone(),
                    addr: plan.target.addr,
                    reason,
                });
            }
        }
        if elapsed >= next_tick {
            let responses = sum(|p| p.responses.load(Ordering::Relaxed));
            let errors = sum(|p| p.errors.load(Ordering::Relaxed));
            if plan.progress {
                let phase = if next_tick <= plan.warmup {
                    "warm-up"
                } else if next_tick <= plan.warmup + plan.duration {
                    "run"
                } else {
                    "drain"
                };
                let _ = writeln!(
                    std::io::stderr(),
                    "[{:>4}s] {:<7} {:>10} req/s  {:>6} errors/s",
                    next_tick.as_secs(),
                    phase,
                    responses - last_responses,
                    errors - last_errors,
                );
            }
            last_responses = responses;
            last_errors = errors;
            next_tick += Duration::from_secs(1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_shared_out_evenly() {
        let target = Target::parse("http://127.0.0.1:1/").expect("target");
        let requests = RequestSet::build(
            "h",
            &[crate::request::RequestTemplate {
                method: "GET".into(),
                path: "/".into(),
                headers: vec![],
                body: vec![],
                weight: 1,
                credentials: false,
            }],
            None,
            false,
            1,
        )
        .expect("requests");
        let plan = Plan {
            target,
            tls: None,
            requests,
            threads: 3,
            connections: 11,
            pipeline: 1,
            rate: None,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            new_conn: false,
            driver: DriverChoice::Auto,
            pin: vec![],
            progress: false,
        };
        let shares: Vec<_> = (0..3).map(|t| plan.thread_share(t)).collect();
        assert_eq!(shares, [(4, 0), (4, 4), (3, 8)]);
    }
}
