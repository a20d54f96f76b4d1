//! A sink's writer thread: pops batches and writes them to the destination.
//!
//! It may block (opening, writing, sending): that is what it is for, so no worker ever does.
//! It sleeps parked while the queue is empty; a worker's push unparks it. Failures drop the
//! batch's lines, count them, and warn at most once per [`WARN_EVERY`].

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::{
        fd::AsRawFd,
        unix::{fs::OpenOptionsExt, net::UnixDatagram},
    },
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use turnpike_core::access_log::LogDestination;

use super::{LogSink, MAX_RECYCLED_CAPACITY};

/// The least time between two warnings from one writer.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(5);

/// How long a writer sleeps with nothing to do before looking again (a safety net: pushes,
/// reopens and shutdown unpark it).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Syslog priority: facility local0 (16) * 8 + severity info (6).
const SYSLOG_PRI: u8 = 134;

/// Runs until [`LogSinks::shutdown`](super::LogSinks::shutdown) and an empty queue.
pub(super) fn run(sink: Arc<LogSink>, syslog_path: PathBuf) {
    // Declared first, dropped last: whatever happens below, the sink stops accepting batches
    // and the shutdown stops waiting for this thread.
    let _exit = Retire(&sink);
    let _ = sink.writer.set(thread::current());
    let mut out = Output::new(&sink.dest, syslog_path);
    let mut warn = WarnLimiter::new(WARN_EVERY);
    // Drops counted by this thread; the rest of the dropped counter is full queues.
    let mut own_drops = 0u64;
    let mut queue_drops_seen = 0u64;
    loop {
        if sink.reopen.swap(false, Ordering::AcqRel) {
            out.close();
        }
        // Read before popping: a batch pushed before the stop was asked for is popped below.
        let stopping = sink.stopping.load(Ordering::Acquire);
        let Some(mut batch) = sink.batches.pop() else {
            if stopping {
                return;
            }
            thread::park_timeout(IDLE_WAKE);
            continue;
        };
        let done = out.write(&batch.bytes, batch.lines);
        sink.written.fetch_add(done.written, Ordering::Relaxed);
        let dropped = batch.lines - done.written;
        if dropped > 0 {
            own_drops += dropped;
            sink.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        let queue_drops = sink
            .dropped
            .load(Ordering::Relaxed)
            .saturating_sub(own_drops);
        let new_queue_drops = queue_drops.saturating_sub(queue_drops_seen);
        if dropped > 0 || new_queue_drops > 0 {
            if let Some(lines) = warn.note(Instant::now(), dropped + new_queue_drops) {
                match &done.error {
                    Some(e) => tracing::warn!(
                        destination = %sink.key, error = %e, dropped_lines = lines,
                        "access log lines dropped"
                    ),
                    None => tracing::warn!(
                        destination = %sink.key, dropped_lines = lines,
                        "access log lines dropped: the writer is behind and its queue was full"
                    ),
                }
            }
            queue_drops_seen = queue_drops;
        }
        batch.bytes.clear();
        if batch.bytes.capacity() <= MAX_RECYCLED_CAPACITY {
            let _ = sink.spare.push(batch.bytes);
        }
    }
}

/// Marks the sink's writer gone when the writer thread ends, even by a panic.
struct Retire<'a>(&'a LogSink);

impl Drop for Retire<'_> {
    fn drop(&mut self) {
        self.0.retire();
    }
}

/// What became of one batch.
struct Done {
    written: u64,
    /// Why some lines were not written.
    error: Option<io::Error>,
}

/// A destination, opened lazily by [`Output::write`].
enum Output {
    File { path: PathBuf, file: Option<File> },
    Stdout,
    Syslog(Syslog),
}

impl Output {
    fn new(dest: &LogDestination, syslog_path: PathBuf) -> Output {
        match dest {
            LogDestination::File(path) => Output::File {
                path: path.clone(),
                file: None,
            },
            LogDestination::Stdout => Output::Stdout,
            LogDestination::Syslog => Output::Syslog(Syslog::new(syslog_path)),
        }
    }

    /// Closes the file or socket; the next write opens the path again.
    fn close(&mut self) {
        match self {
            Output::File { file, .. } => *file = None,
            Output::Stdout => {}
            Output::Syslog(s) => s.socket = None,
        }
    }

    /// Writes one batch of `lines` whole lines.
    fn write(&mut self, bytes: &[u8], lines: u64) -> Done {
        let result = match self {
            Output::File { path, file } => write_file(path, file, bytes),
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Output::Syslog(s) => return s.send(bytes),
        };
        match result {
            Ok(()) => Done {
                written: lines,
                error: None,
            },
            // Part of the batch may be in the file; it is counted as dropped, whole.
            Err(error) => Done {
                written: 0,
                error: Some(error),
            },
        }
    }
}

/// Appends to `file`, opening `path` first if it is closed; closes it on a failed write so the
/// next batch opens the path again (a FIFO whose reader left, a file removed by hand).
fn write_file(path: &Path, file: &mut Option<File>, bytes: &[u8]) -> io::Result<()> {
    let mut f = match file.take() {
        Some(f) => f,
        None => open_append(path).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::ENXIO) {
                " (a FIFO nobody has open for reading)"
            } else {
                ""
            };
            io::Error::new(e.kind(), format!("open {}: {e}{hint}", path.display()))
        })?,
    };
    f.write_all(bytes)?;
    *file = Some(f);
    Ok(())
}

/// Opens `path` for appending (created 0640; its directory must exist).
///
/// Opened non-blocking so a FIFO without a reader fails at once (ENXIO) instead of holding the
/// writer until one comes; then switched back to blocking writes.
fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(2) on the fd `file` owns and keeps open for both calls.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// RFC 3164 datagrams to the local syslog socket, one per line.
struct Syslog {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    pid: u32,
    /// One datagram, reused.
    datagram: Vec<u8>,
}

impl Syslog {
    fn new(path: PathBuf) -> Syslog {
        Syslog {
            path,
            socket: None,
            pid: std::process::id(),
            datagram: Vec::with_capacity(1024),
        }
    }

    /// Sends each line of `bytes` as `<PRI>Mmm dd hh:mm:ss turnpike[pid]: line`.
    ///
    /// A line too long for a datagram is dropped alone; any other failure drops the rest of
    /// the batch and closes the socket, so the next batch connects again (the daemon may have
    /// restarted).
    fn send(&mut self, bytes: &[u8]) -> Done {
        let socket = match self.socket.take() {
            Some(s) => s,
            None => match UnixDatagram::unbound().and_then(|s| s.connect(&self.path).map(|()| s)) {
                Ok(s) => s,
                Err(e) => {
                    return Done {
                        written: 0,
                        error: Some(io::Error::new(
                            e.kind(),
                            format!("syslog socket {}: {e}", self.path.display()),
                        )),
                    };
                }
            },
        };
        self.datagram.clear();
        self.datagram
            .extend_from_slice(format!("<{SYSLOG_PRI}>").as_bytes());
        push_timestamp(&mut self.datagram, SystemTime::now());
        self.datagram
            .extend_from_slice(format!(" turnpike[{}]: ", self.pid).as_bytes());
        let prefix = self.datagram.len();
        let mut written = 0;
        let mut error = None;
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            self.datagram.truncate(prefix);
            self.datagram.extend_from_slice(line);
            match socket.send(&self.datagram) {
                Ok(_) => written += 1,
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => error = Some(e),
                Err(e) => {
                    return Done {
                        written,
                        error: Some(e),
                    };
                }
            }
        }
        self.socket = Some(socket);
        Done { written, error }
    }
}

/// Appends `Mmm dd hh:mm:ss` in local time (RFC 3164's TIMESTAMP; the day padded with a
/// space). A time the C library cannot convert shows as `Jan  1 00:00:00`.
pub(super) fn push_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .try_into()
        .unwrap_or(0);
    // SAFETY: `tm` is plain data (integers and a nullable pointer), so all-zero is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `secs` and writes only `tm`, both live locals.
    let converted = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    let (month, day, h, m, s) = if converted {
        let month = usize::try_from(tm.tm_mon)
            .ok()
            .and_then(|i| MONTHS.get(i))
            .unwrap_or(&"Jan");
        (*month, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        ("Jan", 1, 0, 0, 0)
    };
    out.extend_from_slice(format!("{month} {day:>2} {h:02}:{m:02}:{s:02}").as_bytes());
}

/// Lets one warning through per period and counts what happened in between.
pub(super) struct WarnLimiter {
    every: Duration,
    last: Option<Instant>,
    pending: u64,
}

impl WarnLimiter {
    pub(super) fn new(every: Duration) -> WarnLimiter {
        WarnLimiter {
            every,
            last: None,
            pending: 0,
        }
    }

    /// Notes `dropped` lines at `now`; returns the lines dropped since the last warning when a
    /// warning is due.
    pub(super) fn note(&mut self, now: Instant, dropped: u64) -> Option<u64> {
        self.pending += dropped;
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}
