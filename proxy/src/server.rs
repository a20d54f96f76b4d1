//! Starts the workers, waits for a signal, drains.
//!
//! SIGTERM or SIGINT: every worker stops accepting, lets in-flight requests finish (up to the
//! drain timeout), closes idle connections, and the process exits 0. A second signal during
//! the drain exits at once.
//!
//! SIGUSR2: a binary upgrade, as nginx's. The process starts its own executable again (the
//! path it was started from, so a replaced file is the new binary) with the same arguments,
//! handing over its listening sockets (`TURNPIKE_LISTEN_FDS`, see [`Inherited`]); once the new
//! process says its config checks (a byte on the `TURNPIKE_UPGRADE_PIPE` pipe), this one stops
//! accepting without closing the sockets, drains as on SIGTERM and exits, releasing the state
//! directory the new one waits for. Connections that arrive meanwhile wait in the sockets'
//! queues: none is refused. If the new process fails first, this one keeps serving.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
};

use std::os::fd::RawFd;

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
    /// The drain is an upgrade's: the listening sockets live on in the new process, so the
    /// workers stop accepting by cancelling their accepts, never by shutting the sockets.
    pub handoff: AtomicBool,
    /// Every worker's listening sockets, by listen address (`127.0.0.1:8080`,
    /// `https://...`): what an upgrade hands over. Written at start-up only.
    listeners: Registry,
    /// The admin API's listening socket, handed over too (-1: none).
    pub admin_fd: std::sync::atomic::AtomicI32,
}

// A std Mutex: taken when workers bind and when an upgrade starts, never per request.
#[allow(clippy::disallowed_types)]
type Registry = std::sync::Mutex<Vec<(String, RawFd)>>;

impl ServerState {
    /// Records a worker's listening socket for `listen`.
    pub fn register_listener(&self, listen: String, fd: RawFd) {
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((listen, fd));
    }
}

/// Listening sockets handed over by the process this one replaces: `TURNPIKE_LISTEN_FDS` is
/// `LISTEN=FD,LISTEN=FD,...` (a listen address as the config spells it, several times when
/// the old process had several workers), `admin=FD` and `gossip=FD` (the cluster's UDP
/// socket).
#[derive(Debug, Clone, Default)]
pub struct Inherited {
    pub listeners: Vec<(String, RawFd)>,
    pub admin: Option<RawFd>,
    pub gossip: Option<RawFd>,
    /// The write end of the old process's pipe: a byte there says the config checks.
    pub ready_pipe: Option<RawFd>,
}

impl Inherited {
    /// From the environment (and removed from it, so that function runtimes and a later
    /// upgrade do not see stale numbers).
    pub fn from_env() -> Inherited {
        let mut out = Inherited::default();
        if let Some(v) = std::env::var_os(LISTEN_FDS_ENV) {
            for item in v.to_string_lossy().split(',').filter(|i| !i.is_empty()) {
                let Some((listen, fd)) = item.rsplit_once('=') else {
                    continue;
                };
                let Ok(fd) = fd.parse::<RawFd>() else {
                    continue;
                };
                match listen {
                    "admin" => out.admin = Some(fd),
                    "gossip" => out.gossip = Some(fd),
                    _ => out.listeners.push((listen.to_owned(), fd)),
                }
            }
        }
        out.ready_pipe = std::env::var(UPGRADE_PIPE_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        // SAFETY: called at start-up, before any other thread reads the environment.
        unsafe {
            std::env::remove_var(LISTEN_FDS_ENV);
            std::env::remove_var(UPGRADE_PIPE_ENV);
        }
        out
    }

    pub fn is_upgrade(&self) -> bool {
        !self.listeners.is_empty() || self.ready_pipe.is_some()
    }

    /// Tells the old process that this one's config checks: it stops accepting and drains.
    pub fn signal_ready(&mut self) {
        if let Some(fd) = self.ready_pipe.take() {
            // SAFETY: a pipe's write end this process inherited and owns; written once, then
            // closed.
            unsafe {
                libc::write(fd, b"1".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
    }
}

const LISTEN_FDS_ENV: &str = "TURNPIKE_LISTEN_FDS";
const UPGRADE_PIPE_ENV: &str = "TURNPIKE_UPGRADE_PIPE";

/// Start-up choices that are not part of the config document.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub driver: DriverChoice,
    /// The published API key table and the per-key usage slots (empty: no keys).
    pub usage: Arc<turnpike_core::usage::UsageState>,
    /// Sockets handed over by the process this one replaces.
    pub inherited: Inherited,
    /// This executable as it was started (what SIGUSR2 starts again).
    pub exe: Option<std::path::PathBuf>,
}

/// A running gateway: its workers and shared state.
pub struct Server {
    pub state: Arc<ServerState>,
    pub driver: DriverKind,
    pub workers: usize,
    threads: Vec<thread::JoinHandle<()>>,
    signals: Signals,
    exe: Option<std::path::PathBuf>,
}

impl Server {
    /// Starts one worker per core (or as configured) and waits until all have bound their
    /// listeners.
    pub fn start(first: Snapshot, options: Options) -> Result<Server, String> {
        // Before any worker exists, so a signal during start-up drains instead of killing.
        let mut handled = TERM_SIGNALS.to_vec();
        handled.push(signal_hook::consts::SIGUSR2);
        let signals = Signals::new(&handled).map_err(|e| format!("signal handlers: {e}"))?;
        let cpus = turnpike_tuning::cpu::available_cpus();
        let count = worker_count(first.config.gateway.workers);
        if let Err(e) = turnpike_tuning::rlimit::raise_nofile() {
            tracing::warn!(error = %e, "could not raise the open-file limit");
        }
        // Each worker binds its own SO_REUSEPORT listener, and the kernel would just as
        // willingly share the port with another process's: a second gateway started on a busy
        // port would take part of the first one's traffic. A plain bind first says whether
        // anything listens there (without listening itself: see `rt::probe_bind`).
        let inherited = options.inherited.listeners;
        let wanted: Vec<String> = first
            .config
            .gateway
            .listen
            .iter()
            .map(ToString::to_string)
            .collect();
        for (l, key) in first.config.gateway.listen.iter().zip(&wanted) {
            // A socket handed over by the process this one replaces is ours already.
            if inherited.iter().any(|(listen, _)| listen == key) {
                continue;
            }
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
        // Handed-over sockets the config no longer listens on are closed.
        for (listen, fd) in &inherited {
            if !wanted.contains(listen) {
                // SAFETY: an inherited descriptor nothing else uses.
                unsafe { libc::close(*fd) };
            }
        }
        let state = Arc::new(ServerState {
            snapshots: Arc::new(SnapshotCell::new(first)),
            draining: AtomicBool::new(false),
            handoff: AtomicBool::new(false),
            usage: options.usage,
            listeners: Registry::default(),
            admin_fd: std::sync::atomic::AtomicI32::new(-1),
        });
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(count);
        for id in 0..count {
            // Worker `id` takes every `count`-th handed-over socket of each address; a worker
            // left without one binds its own (it joins the same SO_REUSEPORT group).
            let mine: Vec<(String, RawFd)> = wanted
                .iter()
                .flat_map(|listen| {
                    inherited
                        .iter()
                        .filter(move |(l, _)| l == listen)
                        .enumerate()
                        .filter(|(i, _)| i % count == id)
                        .map(|(_, x)| x.clone())
                })
                .collect();
            let spec = WorkerSpec {
                id,
                cpu: cpus.get(id % cpus.len().max(1)).copied(),
                driver: options.driver,
                server: state.clone(),
                started: tx.clone(),
                inherited: mine,
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
            exe: options.exe,
        })
    }

    /// Blocks until SIGTERM/SIGINT (or a SIGUSR2 upgrade whose new process took over), then
    /// drains and returns once every worker has stopped.
    pub fn run_until_signal(self) -> std::io::Result<()> {
        let mut signals = self.signals;
        for sig in signals.forever() {
            if sig != signal_hook::consts::SIGUSR2 {
                tracing::info!(signal = sig, "draining: finishing in-flight requests");
                break;
            }
            match upgrade(&self.state, self.exe.as_deref()) {
                Ok(pid) => {
                    tracing::info!(
                        new_pid = pid,
                        "upgrade: the new process took the listening sockets; draining"
                    );
                    self.state.handoff.store(true, Ordering::Release);
                    break;
                }
                Err(e) => tracing::error!("upgrade not done, this process keeps serving: {e}"),
            }
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

/// Starts `exe` again with this process's arguments and its listening sockets, and waits (up
/// to 60 s) until the new process says its config checks. Returns the new process's pid.
fn upgrade(state: &ServerState, exe: Option<&std::path::Path>) -> Result<u32, String> {
    use std::{io::Read, os::fd::FromRawFd, os::unix::process::CommandExt};
    let exe = exe.ok_or("the executable's path is unknown")?;
    if !exe.exists() {
        return Err(format!("{} is gone", exe.display()));
    }
    let mut fds: Vec<(String, RawFd)> = state
        .listeners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let admin = state.admin_fd.load(Ordering::Acquire);
    if admin >= 0 {
        fds.push(("admin".to_owned(), admin));
    }
    if let Some(fd) = crate::cluster::gossip::socket_fd() {
        fds.push(("gossip".to_owned(), fd));
    }
    let mut pipe = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the two descriptors it is given.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the read end is ours alone from here; File closes it.
    let mut ready = unsafe { std::fs::File::from_raw_fd(pipe[0]) };
    let write_end = pipe[1];
    let list: Vec<String> = fds.iter().map(|(l, fd)| format!("{l}={fd}")).collect();
    let mut cmd = std::process::Command::new(exe);
    // The same arguments, less a one-time instruction: `--replace-state` would set aside
    // the versions this process has stored since it started.
    cmd.args(
        std::env::args_os()
            .skip(1)
            .filter(|a| a != "--replace-state"),
    )
    .env(LISTEN_FDS_ENV, list.join(","))
    .env(UPGRADE_PIPE_ENV, write_end.to_string());
    let inherit: Vec<RawFd> = fds
        .iter()
        .map(|(_, fd)| *fd)
        .chain(std::iter::once(write_end))
        .collect();
    // SAFETY: cloexec_all_but makes system calls only (async-signal-safe) between fork and
    // exec: the listed descriptors survive the exec, no other (client sockets included) does.
    unsafe {
        cmd.pre_exec(move || crate::rt::cloexec_all_but(&inherit));
    }
    let spawned = cmd.spawn();
    // SAFETY: the write end now lives in the child; this copy is closed so that the child's
    // exit reads as end of file.
    unsafe { libc::close(write_end) };
    let mut child = spawned.map_err(|e| format!("starting {}: {e}", exe.display()))?;
    tracing::info!(pid = child.id(), exe = %exe.display(), "upgrade: new process started");
    // The child's config check takes well under a second; a minute covers a slow disk.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut b = [0u8; 1];
        let _ = tx.send(ready.read(&mut b).map(|n| n == 1));
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(Ok(true)) => {
            let pid = child.id();
            // Reaped by whoever adopts it once this process exits.
            std::mem::forget(child);
            Ok(pid)
        }
        Ok(_) => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            Err(format!(
                "the new process exited before taking over ({status}); its log says why"
            ))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err("the new process did not check its config within 60 s".into())
        }
    }
}
