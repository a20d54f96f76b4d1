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
    /// Length of the measured window (`-d`/`-z`); `None` when only `count` ends it.
    pub duration: Option<Duration>,
    /// Measured requests to make (`-n`), over all connections; `None`: as many as the duration
    /// allows. With both, the window ends at whichever comes first.
    pub count: Option<u64>,
    pub timeout: Duration,
    pub new_conn: bool,
    pub driver: DriverChoice,
    /// CPUs to pin load threads to, round-robin; empty: no pinning.
    pub pin: Vec<usize>,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

/// The measured window in ns since the start of the run: requests sent (closed loop) or due
/// (open loop) in `start..end` are measured, those before `start` are the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u64,
    /// `u64::MAX` when only a request count (closed loop) ends the window.
    pub end: u64,
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

    /// Open loop: when request `j` (numbered over all connections, in due order) falls due, in
    /// ns since the start of the run. Connection `i` sends requests `i`, `i + C`, `i + 2C`, ...
    pub fn due_ns(&self, j: u64) -> u64 {
        let rate = self.rate.unwrap_or(1.0);
        (j as f64 * 1e9 / rate) as u64
    }

    /// The measured window. In the open loop with `-n N` it ends where request `N` after the
    /// warm-up would fall due, so exactly `N` requests are due in it.
    pub fn window(&self) -> Window {
        let start = nanos(self.warmup);
        let by_time = self.duration.map(|d| start.saturating_add(nanos(d)));
        let by_count = match (self.rate, self.count) {
            (Some(rate), Some(n)) => {
                // The first request due at or after the warm-up, then N more.
                let mut j0 = (self.warmup.as_secs_f64() * rate).ceil() as u64;
                while j0 > 0 && self.due_ns(j0 - 1) >= start {
                    j0 -= 1;
                }
                while self.due_ns(j0) < start {
                    j0 += 1;
                }
                Some(self.due_ns(j0.saturating_add(n)))
            }
            _ => None,
        };
        let end = match (by_time, by_count) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        Window { start, end }
    }

    /// Closed loop with `-n`: how many measured requests connection `index` makes (the count
    /// shared out as evenly as it goes, as hey does); `u64::MAX` without `-n`.
    pub fn quota(&self, index: usize) -> u64 {
        match self.count {
            None => u64::MAX,
            Some(n) => {
                let c = self.connections as u64;
                n / c + u64::from((index as u64) < n % c)
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Progress of one load thread, on its own cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ThreadProgress {
    /// Requests written, warm-up included.
    pub sent: AtomicU64,
    /// Responses read, warm-up included.
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
    let window = plan.window();
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
            let sent = sum(|p| p.sent.load(Ordering::Relaxed));
            if plan.progress {
                let line = progress_line(
                    plan,
                    window,
                    next_tick,
                    responses - last_responses,
                    errors - last_errors,
                    sent,
                );
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            last_responses = responses;
            last_errors = errors;
            next_tick += Duration::from_secs(1);
        }
    }
    Ok(())
}

/// One progress line: elapsed and total, the phase, the rate due (open loop) against the rate
/// achieved in the last second, and how far sending is behind the schedule.
/// `responses`, `errors`: in the last second; `sent`: so far, warm-up included.
fn progress_line(
    plan: &Plan,
    window: Window,
    elapsed: Duration,
    responses: u64,
    errors: u64,
    sent: u64,
) -> String {
    let now = nanos(elapsed);
    let phase = if now <= window.start && window.start > 0 {
        "warm-up"
    } else if now <= window.end {
        "run"
    } else {
        "drain"
    };
    let total = if window.end == u64::MAX {
        match plan.count {
            Some(n) => format!("{n} req"),
            None => "-".into(),
        }
    } else {
        format!("{:.0}s", window.end as f64 / 1e9)
    };
    let mut line = format!("[{:>4}s/{total:>5}] {phase:<7}", elapsed.as_secs());
    match plan.rate {
        Some(rate) => {
            let due_rate = if now <= window.end { rate } else { 0.0 };
            // Requests due so far over the whole run (warm-up included, as `sent` is).
            let due = (now.min(window.end) as f64 * rate / 1e9).ceil() as u64;
            line.push_str(&format!(
                " due {due_rate:>8.0} req/s  achieved {responses:>8} req/s  behind {:>8}",
                due.saturating_sub(sent)
            ));
        }
        None => line.push_str(&format!(" achieved {responses:>10} req/s")),
    }
    line.push_str(&format!("  {errors:>6} errors/s"));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connections: usize, rate: Option<f64>) -> Plan {
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
        Plan {
            target,
            tls: None,
            requests,
            threads: 1,
            connections,
            pipeline: 1,
            rate,
            warmup: Duration::ZERO,
            duration: Some(Duration::from_secs(1)),
            count: None,
            timeout: Duration::from_secs(1),
            new_conn: false,
            driver: DriverChoice::Auto,
            pin: vec![],
            progress: false,
        }
    }

    #[test]
    fn connections_are_shared_out_evenly() {
        let plan = Plan {
            threads: 3,
            ..plan(11, None)
        };
        let shares: Vec<_> = (0..3).map(|t| plan.thread_share(t)).collect();
        assert_eq!(shares, [(4, 0), (4, 4), (3, 8)]);
    }

    /// Requests due in the window of `plan` (open loop), counted from the schedule the
    /// connections follow.
    fn due_in_window(plan: &Plan) -> u64 {
        let w = plan.window();
        (0..10_000_000u64)
            .map(|j| plan.due_ns(j))
            .take_while(|&d| d < w.end)
            .filter(|&d| d >= w.start)
            .count() as u64
    }

    #[test]
    fn windows_by_time_and_by_count() {
        let mut p = plan(8, Some(1000.0));
        assert_eq!(
            p.window(),
            Window {
                start: 0,
                end: 1_000_000_000
            }
        );
        assert_eq!(due_in_window(&p), 1000);
        // -n at a rate: exactly N fall due after any warm-up, even an uneven one.
        for (rate, warmup_ms, n) in [(1000.0, 0, 250), (333.0, 1234, 77), (7.0, 10, 3)] {
            p.rate = Some(rate);
            p.warmup = Duration::from_millis(warmup_ms);
            p.duration = None;
            p.count = Some(n);
            assert_eq!(due_in_window(&p), n, "rate {rate} warm-up {warmup_ms}ms");
            // A shorter duration ends the window first.
            p.duration = Some(Duration::from_millis(1));
            assert!(due_in_window(&p) < n);
        }
        // The closed loop with -n alone has no end in time.
        let mut p = plan(4, None);
        p.duration = None;
        p.count = Some(10);
        assert_eq!(p.window().end, u64::MAX);
        let quotas: Vec<u64> = (0..4).map(|i| p.quota(i)).collect();
        assert_eq!(quotas, [3, 3, 2, 2]);
        p.count = None;
        assert_eq!(p.quota(0), u64::MAX);
    }

    #[test]
    fn progress_lines() {
        let p = plan(8, Some(1000.0));
        let w = p.window();
        let line = progress_line(&p, w, Duration::from_secs(1), 700, 0, 800);
        assert_eq!(
            line,
            "[   1s/   1s] run     due     1000 req/s  achieved      700 req/s  behind      200       0 errors/s"
        );
        let line = progress_line(&p, w, Duration::from_secs(2), 5, 1, 1000);
        assert!(
            line.contains("drain")
                && line.contains("due        0")
                && line.contains("behind        0")
        );
        let mut p = plan(8, None);
        p.duration = None;
        p.count = Some(500);
        let line = progress_line(&p, p.window(), Duration::from_secs(3), 9000, 0, 0);
        assert_eq!(
            line,
            "[   3s/500 req] run     achieved       9000 req/s       0 errors/s"
        );
    }
}
