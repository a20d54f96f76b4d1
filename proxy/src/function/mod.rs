//! Function integrations run by the gateway itself: each function in `functions:` is a set of
//! runtime processes (any Lambda runtime interface client, such as AWS's `awslambdaric`)
//! polling the Lambda Runtime API that [`host`] serves on loopback.
//!
//! A worker hands an invocation over a bounded channel (a full queue is 503 at once) and
//! awaits its outcome on a one-shot channel under the function's timeout (504 past it); the
//! host's threads do the rest. Nothing here blocks a worker; the plain HTTP path never touches
//! it. Hosts are kept by function name across reloads and restarted when their spec changes.

pub mod host;
pub mod invoke;
pub mod remote;

use std::{
    sync::{Arc, OnceLock, atomic::AtomicBool},
    time::Instant,
};

use turnpike_core::config::FunctionSpec;

/// One invocation on its way to a runtime.
pub struct Invocation {
    /// The event (JSON).
    pub payload: Vec<u8>,
    /// When it was queued.
    pub queued: Instant,
    /// When it must have reached a runtime (the queue's bound: one timeout); later it is
    /// dropped. The function's own timeout starts when a runtime takes it.
    pub start_by: Instant,
    pub reply: flume::Sender<Outcome>,
}

/// How an invocation ended.
pub enum Outcome {
    /// The function's result (JSON).
    Response(Vec<u8>),
    /// The function failed (`{"errorMessage", "errorType", "stackTrace"}`).
    Error(String),
    /// The runtime process died (why) while holding it.
    Crashed(String),
    /// It waited in the queue past its bound.
    TimedOut,
    /// The runtime held it past the function's timeout and was killed (Lambda's "Task timed
    /// out": a function error).
    Overran,
}

/// A function as route plans hold it: where invocations go.
pub struct FunctionHandle {
    pub name: Arc<str>,
    pub queue: flume::Sender<Invocation>,
    pub timeout: std::time::Duration,
    /// The counters (and, for a function the gateway runs, its processes' state).
    pub shared: Arc<host::HostShared>,
    /// A remote function's endpoint (`invoke_uri`); `None` for one the gateway runs.
    pub remote: Option<remote::RemoteCall>,
}

struct Running {
    spec: FunctionSpec,
    handle: Arc<FunctionHandle>,
    started: bool,
}

// A std Mutex: taken when snapshots are built and functions started, never per request.
#[allow(clippy::disallowed_types)]
type Registry = std::sync::Mutex<Vec<Running>>;

fn registry() -> &'static Registry {
    static HOSTS: OnceLock<Registry> = OnceLock::new();
    HOSTS.get_or_init(Default::default)
}

/// The handle of `spec`'s function (`functions[index]`): the running one when its spec is
/// unchanged, else a new one (started by [`start_all`]). A remote function's endpoint is
/// resolved here; failing that, the error goes to `errors` (the config is refused).
pub fn handle(
    spec: &FunctionSpec,
    index: u32,
    errors: &mut Vec<turnpike_core::config::ConfigError>,
) -> Arc<FunctionHandle> {
    let mut all = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = all.iter().find(|r| r.spec == *spec) {
        return r.handle.clone();
    }
    let remote = spec
        .remote
        .as_ref()
        .map(|r| remote::RemoteCall::new(r, &format!("functions[{index}].invoke_uri"), errors));
    let (tx, rx) = flume::bounded(spec.queue as usize);
    let shared = Arc::new(host::HostShared {
        spec: spec.clone(),
        queue: rx,
        stop: AtomicBool::new(false),
        invocations: Default::default(),
        errors: Default::default(),
        restarts: Default::default(),
        throttles: Default::default(),
        timeouts: Default::default(),
        duration_us: Default::default(),
        queue_wait_us: Default::default(),
        running: Default::default(),
        broken: AtomicBool::new(false),
    });
    let handle = Arc::new(FunctionHandle {
        name: spec.name.as_str().into(),
        queue: tx,
        timeout: spec.timeout,
        shared,
        remote: remote.and_then(Result::ok),
    });
    if spec.remote.is_some() && handle.remote.is_none() {
        // Not kept: the config that names it is refused.
        return handle;
    }
    all.push(Running {
        spec: spec.clone(),
        handle: handle.clone(),
        // A remote function has no processes to start.
        started: spec.remote.is_some(),
    });
    handle
}

/// Starts the processes of every function of `specs` not running yet, and stops those of
/// functions no longer configured (or configured differently): they finish the invocations
/// they hold first. Called once a config is accepted, never by `turnpike check`.
pub fn start_all(specs: &[FunctionSpec]) -> Result<(), String> {
    let mut all = registry().lock().unwrap_or_else(|p| p.into_inner());
    for r in all.iter_mut() {
        if !specs.contains(&r.spec) {
            r.handle
                .shared
                .stop
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }
    all.retain(|r| specs.contains(&r.spec));
    for r in all.iter_mut().filter(|r| !r.started) {
        host::start(r.handle.shared.clone())
            .map_err(|e| format!("function {:?}: {e}", r.spec.name))?;
        r.started = true;
        tracing::info!(function = %r.spec.name, processes = r.spec.concurrency, "function started");
    }
    Ok(())
}

/// Every running function's state and counters.
pub fn readings() -> Vec<turnpike_admin::plane::FunctionReading> {
    use std::sync::atomic::Ordering::Relaxed;
    let all = registry().lock().unwrap_or_else(|p| p.into_inner());
    let mut out: Vec<_> = all
        .iter()
        .map(|r| {
            let s = &r.handle.shared;
            turnpike_admin::plane::FunctionReading {
                name: r.spec.name.clone(),
                invoke_uri: r.spec.remote.as_ref().map(|x| {
                    let t = &x.target;
                    let scheme = if t.tls { "https" } else { "http" };
                    format!("{scheme}://{}{}", t.host_header, x.path)
                }),
                processes: r.spec.concurrency,
                queued: s.queue.len() as u64,
                invocations: s.invocations.load(Relaxed),
                errors: s.errors.load(Relaxed),
                throttles: s.throttles.load(Relaxed),
                timeouts: s.timeouts.load(Relaxed),
                restarts: s.restarts.load(Relaxed),
                duration_us: s.duration_us.load(Relaxed),
                queue_wait_us: s.queue_wait_us.load(Relaxed),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Stops every function (shutdown): runtimes finish what they hold, then get SIGTERM (and
/// SIGKILL after a grace). Returns once every runtime has exited, or after `wait`.
pub fn stop_all(wait: std::time::Duration) {
    use std::sync::atomic::Ordering;
    let shared: Vec<Arc<host::HostShared>> = {
        let all = registry().lock().unwrap_or_else(|p| p.into_inner());
        all.iter().map(|r| r.handle.shared.clone()).collect()
    };
    for s in &shared {
        s.stop.store(true, Ordering::Release);
    }
    let until = Instant::now() + wait;
    while Instant::now() < until && shared.iter().any(|s| s.running.load(Ordering::Acquire) > 0) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Limits the data memory (`memory_mb`) of the process `cmd` starts: `RLIMIT_DATA`, its
/// private writable memory (heap and anonymous mappings). Not the address space: Node's and
/// the JVM's reservations of virtual memory they never touch would not fit in it.
fn limit_memory(cmd: &mut std::process::Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else between fork
    // and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
