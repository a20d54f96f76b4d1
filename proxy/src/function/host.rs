//! One function's runtime processes and the Lambda Runtime API they poll, on threads of their
//! own (never a worker's): each process gets its own loopback listener, so the gateway knows
//! which invocation a process holds when it crashes or overruns its timeout.
//!
//! The API (AWS "Using the Lambda runtime API for custom runtimes", version 2018-06-01):
//! `GET /2018-06-01/runtime/invocation/next` blocks until an invocation is queued and answers
//! it with `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn` and
//! `-Trace-Id`; `POST .../invocation/{id}/response` and `.../{id}/error` end it;
//! `POST /2018-06-01/runtime/init/error` reports a failed start (the process is restarted).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use turnpike_core::config::FunctionSpec;

use super::{Invocation, Outcome};

/// Largest response or error a runtime may post (bytes; Lambda's synchronous limit is 6 MB).
const MAX_POST: usize = 6 * 1024 * 1024;
/// Time a process gets to exit after SIGTERM on shutdown or replacement.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What a host's threads share.
pub struct HostShared {
    pub spec: FunctionSpec,
    pub queue: flume::Receiver<Invocation>,
    pub stop: AtomicBool,
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
    pub restarts: AtomicU64,
    /// Invocations refused on a full queue (counted by the worker that refused them).
    pub throttles: AtomicU64,
    /// Invocations that overran the timeout.
    pub timeouts: AtomicU64,
    /// Microseconds runtimes spent on invocations, summed.
    pub duration_us: AtomicU64,
    /// Microseconds invocations waited in the queue, summed.
    pub queue_wait_us: AtomicU64,
    /// Runtime processes whose supervisor has not finished (stopping waits for zero).
    pub running: std::sync::atomic::AtomicUsize,
    /// The runtime cannot start (the command is missing, or its process exits before it
    /// ever asks for an invocation): invocations fail at once instead of waiting for a
    /// runtime that will not come. Cleared when a process asks for work.
    pub broken: AtomicBool,
}

/// The invocation a process holds.
// A std Mutex: the slot's own threads only, never a worker.
#[allow(clippy::disallowed_types)]
type Current = std::sync::Mutex<Option<(String, Pending)>>;

/// An invocation a process holds: when it must end, and who waits for it.
struct Pending {
    deadline: Instant,
    handed: Instant,
    reply: flume::Sender<Outcome>,
}

/// One runtime process and its listener.
struct Slot {
    shared: Arc<HostShared>,
    index: usize,
    current: Current,
    /// The process running now has asked for an invocation at least once.
    polled: AtomicBool,
    listener: TcpListener,
    addr: String,
}

/// Starts `spec.concurrency` slots; returns at once. The threads end once `shared.stop` is
/// set and their process has exited.
pub fn start(shared: Arc<HostShared>) -> std::io::Result<()> {
    for index in 0..shared.spec.concurrency as usize {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let slot = Arc::new(Slot {
            shared: shared.clone(),
            index,
            current: Current::default(),
            polled: AtomicBool::new(false),
            listener,
            addr,
        });
        let api = slot.clone();
        std::thread::Builder::new()
            .name(format!("fn-{}-api", shared.spec.name))
            .spawn(move || api.serve_api())?;
        shared.running.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name(format!("fn-{}-run", shared.spec.name))
            .spawn(move || {
                let shared = slot.shared.clone();
                slot.supervise();
                shared.running.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            shared.running.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
    }
    Ok(())
}

impl Slot {
    fn name(&self) -> &str {
        &self.shared.spec.name
    }

    fn take_current(&self) -> Option<(String, Pending)> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Runs the process, restarts it when it exits or overruns an invocation's deadline.
    fn supervise(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        while !self.shared.stop.load(Ordering::Acquire) {
            let started = Instant::now();
            self.polled.store(false, Ordering::Release);
            let mut child = match self.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let program = &self.shared.spec.command[0];
                    let dir = self.shared.spec.working_dir.as_deref().unwrap_or(".");
                    tracing::error!(function = self.name(), %program, working_dir = dir, error = %e, "cannot start the function's runtime");
                    self.fail_waiting(&format!("cannot start {program:?}: {e}"));
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
            };
            let why = loop {
                std::thread::sleep(Duration::from_millis(20));
                match child.try_wait() {
                    Ok(Some(status)) => break format!("the runtime exited ({status})"),
                    Ok(None) => {}
                    Err(e) => break format!("cannot watch the runtime: {e}"),
                }
                let overran = self
                    .current
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .is_some_and(|(_, inv)| Instant::now() > inv.deadline);
                if overran {
                    let _ = child.kill();
                    let _ = child.wait();
                    if let Some((_, inv)) = self.take_current() {
                        self.shared.timeouts.fetch_add(1, Ordering::Relaxed);
                        self.shared
                            .duration_us
                            .fetch_add(micros(inv.handed.elapsed()), Ordering::Relaxed);
                        let _ = inv.reply.send(Outcome::Overran);
                    }
                    break "an invocation overran the function's timeout: the runtime was killed"
                        .to_owned();
                }
                if self.shared.stop.load(Ordering::Acquire) && self.current_is_empty() {
                    stop_child(&mut child);
                    return;
                }
            };
            if let Some((id, inv)) = self.take_current() {
                self.shared.errors.fetch_add(1, Ordering::Relaxed);
                let _ = inv.reply.send(Outcome::Crashed(why.clone()));
                tracing::warn!(function = self.name(), request_id = %id, "{why} during an invocation");
            } else {
                tracing::warn!(function = self.name(), "{why}");
            }
            if !self.polled.load(Ordering::Acquire) {
                // It died before asking for work: its start fails (the log says why).
                self.fail_waiting(&format!("the runtime exits before it starts: {why}"));
            }
            if self.shared.stop.load(Ordering::Acquire) {
                return;
            }
            self.shared.restarts.fetch_add(1, Ordering::Relaxed);
            // A runtime that dies at once is not restarted in a tight loop.
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            } else {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }

    /// Marks the function broken and answers what waits in its queue with `why` (a 500 now
    /// rather than a 504 after the timeout).
    fn fail_waiting(&self, why: &str) {
        self.shared.broken.store(true, Ordering::Release);
        while let Ok(inv) = self.shared.queue.try_recv() {
            self.shared.errors.fetch_add(1, Ordering::Relaxed);
            let _ = inv.reply.send(Outcome::Crashed(why.to_owned()));
        }
    }

    fn current_is_empty(&self) -> bool {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let spec = &self.shared.spec;
        let mut cmd = Command::new(&spec.command[0]);
        // A clean environment, as Lambda gives: the gateway's own (its secrets included) is
        // not the function's. PATH, LANG and TZ carry over so commands are found as typed.
        cmd.env_clear();
        for keep in ["PATH", "LANG", "TZ"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        if let Some(dir) = &spec.working_dir {
            cmd.env("LAMBDA_TASK_ROOT", dir);
        }
        cmd.args(&spec.command[1..])
            .env("AWS_LAMBDA_RUNTIME_API", &self.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                (spec.memory_bytes >> 20).to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("turnpike/{}", self.index),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/turnpike/{}", spec.name),
            )
            .env("AWS_REGION", &spec.region)
            .env("AWS_DEFAULT_REGION", &spec.region)
            .envs(spec.environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &spec.working_dir {
            cmd.current_dir(dir);
        }
        let limit = spec.memory_bytes;
        super::limit_memory(&mut cmd, limit);
        // The runtime gets its standard streams only: never the gateway's client sockets.
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: system calls only between fork and exec (async-signal-safe).
            unsafe { cmd.pre_exec(|| crate::rt::cloexec_all_but(&[])) };
        }
        let mut child = cmd.spawn()?;
        for (stream, which) in [
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                "stdout",
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                "stderr",
            ),
        ] {
            let Some(stream) = stream else { continue };
            let name = spec.name.clone();
            let _ = std::thread::Builder::new()
                .name(format!("fn-{name}-log"))
                .spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        // Lambda runtimes join a record's lines with CR (one CloudWatch event
                        // each); here each is a log line of its own.
                        for part in line.split('\r').filter(|p| !p.is_empty()) {
                            tracing::info!(function = %name, stream = which, "{part}");
                        }
                    }
                });
        }
        Ok(child)
    }

    /// Serves the Runtime API to this slot's process, one connection at a time (a runtime
    /// client keeps one).
    /// Accepts without blocking, so the thread (and the listener) ends once the function is
    /// stopped and its supervisor is done.
    fn serve_api(self: Arc<Self>) {
        let _ = self.listener.set_nonblocking(true);
        loop {
            if self.shared.stop.load(Ordering::Acquire)
                && self.shared.running.load(Ordering::Acquire) == 0
            {
                return;
            }
            let conn = match self.listener.accept() {
                Ok((conn, _)) => conn,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            let _ = conn.set_nonblocking(false);
            let slot = self.clone();
            let _ = std::thread::Builder::new()
                .name(format!("fn-{}-conn", self.name()))
                .spawn(move || slot.serve_conn(conn));
        }
    }

    fn serve_conn(&self, mut conn: TcpStream) {
        let _ = conn.set_nodelay(true);
        let mut buf = Vec::with_capacity(4096);
        loop {
            let (method, path, body) = match read_request(&mut conn, &mut buf) {
                Received::Request(m, p, b) => (m, p, b),
                Received::TooLarge => {
                    // Lambda's limit for a synchronous response: the invocation fails, the
                    // runtime is told (413) and keeps running.
                    if let Some((_, inv)) = self.take_current() {
                        self.shared.errors.fetch_add(1, Ordering::Relaxed);
                        let _ = inv.reply.send(Outcome::Error(format!(
                            "the function's response is larger than {MAX_POST} bytes"
                        )));
                    }
                    respond(
                        &mut conn,
                        413,
                        &[],
                        b"{\"errorMessage\":\"payload too large\",\"errorType\":\"RequestEntityTooLarge\"}",
                    );
                    return;
                }
                Received::Closed => return,
            };
            let ok = match (method.as_str(), path.as_str()) {
                ("GET", "/2018-06-01/runtime/invocation/next") => self.next(&mut conn),
                ("POST", "/2018-06-01/runtime/init/error") => {
                    tracing::warn!(function = self.name(), error = %String::from_utf8_lossy(&body), "the runtime failed to start");
                    respond(&mut conn, 202, &[], b"{\"status\":\"OK\"}")
                }
                ("POST", p) if p.starts_with("/2018-06-01/runtime/invocation/") => {
                    let rest = &p["/2018-06-01/runtime/invocation/".len()..];
                    match rest.rsplit_once('/') {
                        Some((id, "response")) => {
                            self.finish(&mut conn, id, Outcome::Response(body))
                        }
                        Some((id, "error")) => {
                            let text = String::from_utf8_lossy(&body).into_owned();
                            self.finish(&mut conn, id, Outcome::Error(text))
                        }
                        _ => respond(&mut conn, 404, &[], b"{\"errorMessage\":\"not found\"}"),
                    }
                }
                _ => respond(&mut conn, 404, &[], b"{\"errorMessage\":\"not found\"}"),
            };
            if !ok {
                return;
            }
        }
    }

    /// Hands the next queued invocation to the process (waiting for one).
    fn next(&self, conn: &mut TcpStream) -> bool {
        self.polled.store(true, Ordering::Release);
        self.shared.broken.store(false, Ordering::Release);
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                return false;
            }
            match self.shared.queue.recv_timeout(Duration::from_millis(250)) {
                Ok(inv) => {
                    if Instant::now() >= inv.start_by {
                        // Waited in the queue past its bound: the worker has answered 504.
                        self.shared.timeouts.fetch_add(1, Ordering::Relaxed);
                        let _ = inv.reply.send(Outcome::TimedOut);
                        continue;
                    }
                    let id = request_id();
                    // The function's timeout runs from here, as Lambda's does: time in the
                    // queue is not the function's.
                    let handed = Instant::now();
                    let deadline = handed + self.shared.spec.timeout;
                    let deadline_ms = SystemTime::now()
                        .checked_add(self.shared.spec.timeout)
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_millis());
                    let arn = self.shared.spec.arn.clone();
                    let headers = [
                        ("Lambda-Runtime-Aws-Request-Id", id.clone()),
                        ("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string()),
                        ("Lambda-Runtime-Invoked-Function-Arn", arn),
                        ("Lambda-Runtime-Trace-Id", trace_id()),
                        ("Content-Type", "application/json".to_owned()),
                    ];
                    let Invocation {
                        payload,
                        queued,
                        reply,
                        ..
                    } = inv;
                    self.shared.invocations.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .queue_wait_us
                        .fetch_add(micros(handed - queued), Ordering::Relaxed);
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((
                        id,
                        Pending {
                            deadline,
                            handed,
                            reply,
                        },
                    ));
                    return respond(conn, 200, &headers, &payload);
                }
                Err(flume::RecvTimeoutError::Timeout) => continue,
                Err(flume::RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Ends invocation `id` with `outcome`.
    fn finish(&self, conn: &mut TcpStream, id: &str, outcome: Outcome) -> bool {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match current.take() {
            Some((held, inv)) if held == id => {
                drop(current);
                if matches!(outcome, Outcome::Error(_)) {
                    self.shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                self.shared
                    .duration_us
                    .fetch_add(micros(inv.handed.elapsed()), Ordering::Relaxed);
                let _ = inv.reply.send(outcome);
                respond(conn, 202, &[], b"{\"status\":\"OK\"}")
            }
            other => {
                *current = other;
                drop(current);
                respond(
                    conn,
                    400,
                    &[],
                    b"{\"errorMessage\":\"unknown or finished invocation\",\"errorType\":\"InvalidRequestID\"}",
                )
            }
        }
    }
}

/// A duration in whole microseconds (saturating), as the counters sum them.
pub(super) fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

fn stop_child(child: &mut Child) {
    // SIGTERM first, as Lambda's shutdown phase does; SIGKILL after the grace.
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let until = Instant::now() + STOP_GRACE;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An X-Ray trace header (AWS X-Ray "Tracing header"): `Root=1-{epoch s, 8 hex}-{96 random
/// bits, 24 hex};Parent={64 random bits, 16 hex};Sampled=0`.
fn trace_id() -> String {
    let mut b = [0u8; 20];
    let _ = getrandom::fill(&mut b);
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let hex = |bytes: &[u8]| bytes.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        epoch as u32,
        hex(&b[..12]),
        hex(&b[12..])
    )
}

/// A request id: 16 random bytes as a UUID (8-4-4-4-12 hex).
fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// What a runtime sent.
enum Received {
    Request(String, String, Vec<u8>),
    /// A body over [`MAX_POST`] (not read).
    TooLarge,
    Closed,
}

/// Reads one HTTP/1.1 request (head and Content-Length body) from a runtime.
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Received {
    match read_request_inner(conn, buf) {
        Some(Ok(r)) => Received::Request(r.0, r.1, r.2),
        Some(Err(())) => Received::TooLarge,
        None => Received::Closed,
    }
}

type Parsed = (String, String, Vec<u8>);

fn read_request_inner(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Result<Parsed, ()>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(end)) => {
                let method = req.method?.to_owned();
                let path = req.path?.split('?').next()?.to_owned();
                let len = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .unwrap_or(0);
                if len > MAX_POST {
                    return Some(Err(()));
                }
                while buf.len() < end + len {
                    let mut chunk = [0u8; 64 * 1024];
                    let n = conn.read(&mut chunk).ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[end..end + len].to_vec();
                buf.drain(..end + len);
                return Some(Ok((method, path, body)));
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > 64 * 1024 {
                    return None;
                }
                let mut chunk = [0u8; 16 * 1024];
                let n = conn.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(_) => return None,
        }
    }
}

fn respond(conn: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) -> bool {
    let mut out = Vec::with_capacity(256 + body.len());
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        413 => "Payload Too Large",
        _ => "Not Found",
    };
    let _ = write!(out, "HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
    conn.write_all(&out).is_ok()
}
