//! Access-log I/O: moves formatted lines from workers to their destinations without ever
//! stalling a worker. Formatting lines is not done here (turnpike-core renders them).
//!
//! - [`LogSinks`]: the process-wide registry, one [`LogSink`] per destination key. The admin
//!   thread opens sinks while compiling a config; a reload finds the same sink, writer thread
//!   and counters again under [`LogDestination::key`].
//! - [`LogSink`]: one destination, its writer thread, its bounded queue and its counters.
//! - [`LogBuffer`]: a worker's staging buffer for one sink, owned by that worker and never
//!   shared.
//! - `writer`: the writer thread (appended file reopened on SIGHUP, stdout, syslog datagrams).
//!
//! A worker appends lines to its [`LogBuffer`]. Past [`FLUSH_AT`] staged bytes, or on the
//! worker's tick, the batch is pushed onto the sink's bounded lock-free queue; when the queue
//! is full the batch is dropped and its lines counted as dropped. A worker never blocks, never
//! waits and never takes a lock here: its only cross-thread operations are an `ArrayQueue`
//! push and pop, a few atomic adds and an unpark. Emptied batch buffers come back through a
//! second queue, so the steady state does not allocate per batch. Everything that can block
//! (opening a FIFO, a full pipe, a slow disk, a busy syslog daemon) happens on the writer.

mod writer;

#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fmt, io, mem,
    path::PathBuf,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::{self, Thread},
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;
use signal_hook::{consts::SIGHUP, iterator::Signals};
use turnpike_core::access_log::LogDestination;

/// Staged bytes past which [`LogBuffer::end_line`] hands the batch to the writer (32 KiB).
pub const FLUSH_AT: usize = 32 * 1024;

/// Batches a sink's queue holds per worker before further batches are dropped.
pub const BATCHES_PER_WORKER: usize = 8;

/// The capacity a fresh batch buffer gets: a full batch plus room for the line that crosses
/// [`FLUSH_AT`].
const BATCH_CAPACITY: usize = FLUSH_AT + 8 * 1024;

/// Buffers grown past this (by very long lines) are freed instead of recycled.
const MAX_RECYCLED_CAPACITY: usize = 4 * FLUSH_AT;

/// The local syslog socket.
pub const SYSLOG_PATH: &str = "/dev/log";

/// One worker's batch of whole lines, on its way to the writer.
struct Batch {
    bytes: Vec<u8>,
    lines: u64,
}

/// Every destination's writer, keyed by [`LogDestination::key`].
///
/// Held in an `Arc` by the server. [`get_or_open`](LogSinks::get_or_open),
/// [`reopen`](LogSinks::reopen) and [`shutdown`](LogSinks::shutdown) are for the admin and
/// server threads; workers only ever touch a [`LogBuffer`].
pub struct LogSinks {
    /// Copy-on-write: sinks are only added, by the admin thread, a few times per config.
    sinks: ArcSwap<HashMap<String, Arc<LogSink>>>,
    queue_batches: usize,
    syslog_path: PathBuf,
    closed: AtomicBool,
}

impl LogSinks {
    /// An empty registry for `workers` worker threads: each sink's queue holds
    /// `workers * BATCHES_PER_WORKER` batches (at least [`BATCHES_PER_WORKER`]). Syslog lines
    /// go to [`SYSLOG_PATH`].
    pub fn new(workers: usize) -> LogSinks {
        LogSinks {
            sinks: ArcSwap::from_pointee(HashMap::new()),
            queue_batches: workers.max(1) * BATCHES_PER_WORKER,
            syslog_path: PathBuf::from(SYSLOG_PATH),
            closed: AtomicBool::new(false),
        }
    }

    /// Sends syslog datagrams to `path` instead of [`SYSLOG_PATH`] (for sinks opened after
    /// this call, so call it before any).
    pub fn with_syslog_path(mut self, path: impl Into<PathBuf>) -> LogSinks {
        self.syslog_path = path.into();
        self
    }

    /// The sink for `dest`, started on first use: the same sink (writer thread and counters)
    /// for every call with the same [`LogDestination::key`].
    ///
    /// Never blocks on the destination: a file is opened by the writer thread, before its
    /// first write. When the writer thread cannot be started, or after
    /// [`shutdown`](LogSinks::shutdown), the sink has no writer and every line sent to it is
    /// counted as dropped (with a warning here).
    pub fn get_or_open(&self, dest: &LogDestination) -> Arc<LogSink> {
        let key = dest.key();
        if let Some(sink) = self.sinks.load().get(&key) {
            return Arc::clone(sink);
        }
        let fresh = Arc::new(LogSink::new(key.clone(), dest.clone(), self.queue_batches));
        let before = self.sinks.rcu(|map| {
            if map.contains_key(&key) {
                return Arc::clone(map);
            }
            let mut next = HashMap::clone(map);
            next.insert(key.clone(), Arc::clone(&fresh));
            Arc::new(next)
        });
        if let Some(raced) = before.get(&key) {
            // Another thread opened it between our load and our update: use theirs.
            return Arc::clone(raced);
        }
        if self.closed.load(Ordering::Acquire) {
            tracing::warn!(destination = %key, "access log opened after shutdown: its lines are dropped");
            fresh.retire();
            return fresh;
        }
        let sink = Arc::clone(&fresh);
        let syslog_path = self.syslog_path.clone();
        let spawned = thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer::run(sink, syslog_path));
        match spawned {
            // The writer records itself too; whichever comes first lets workers unpark it.
            Ok(handle) => {
                let _ = fresh.writer.set(handle.thread().clone());
            }
            Err(e) => {
                tracing::warn!(destination = %key, error = %e, "could not start the access log writer: its lines are dropped");
                fresh.retire();
            }
        }
        fresh
    }

    /// The sink kept under `key` ([`LogDestination::key`]), if one was opened.
    pub fn get(&self, key: &str) -> Option<Arc<LogSink>> {
        self.sinks.load().get(key).cloned()
    }

    /// Every sink opened so far, in no particular order (for metrics).
    pub fn sinks(&self) -> Vec<Arc<LogSink>> {
        self.sinks.load().values().cloned().collect()
    }

    /// Makes every writer close its file (or syslog socket) and open its path again before its
    /// next write: logrotate renames the file, then signals. Lines written before this call
    /// are in the renamed file, lines written after it in the new one; none is lost.
    pub fn reopen(&self) {
        for sink in self.sinks.load().values() {
            sink.reopen.store(true, Ordering::Release);
            sink.wake_writer();
        }
    }

    /// Stops every writer once it has written what was queued, waiting up to `timeout`.
    ///
    /// Call after the workers stopped (each flushed its [`LogBuffer`]s). Returns whether every
    /// writer finished in time; one stuck on its destination (a pipe nobody reads) is left
    /// behind with a warning. Lines flushed after this are counted as dropped.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        self.closed.store(true, Ordering::Release);
        let sinks = self.sinks.load_full();
        for sink in sinks.values() {
            sink.stopping.store(true, Ordering::Release);
            sink.wake_writer();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<&str> = sinks
                .values()
                .filter(|s| !s.finished.load(Ordering::Acquire))
                .map(|s| s.key())
                .collect();
            if running.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                tracing::warn!(destinations = ?running, "access log writers still busy at shutdown");
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for LogSinks {
    /// Asks every writer to stop once its queue is empty, without waiting (a registry dropped
    /// without [`LogSinks::shutdown`] leaves no thread running forever).
    fn drop(&mut self) {
        for sink in self.sinks.load().values() {
            sink.stopping.store(true, Ordering::Release);
            sink.wake_writer();
        }
    }
}

impl fmt::Debug for LogSinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSinks")
            .field("sinks", &self.sinks.load().keys().collect::<Vec<_>>())
            .field("queue_batches", &self.queue_batches)
            .field("syslog_path", &self.syslog_path)
            .finish()
    }
}

/// One destination: its writer thread's queue and its counters.
///
/// Counted in lines: every line a [`LogBuffer`] flushed ends up in exactly one of
/// [`written_lines`](LogSink::written_lines) and [`dropped_lines`](LogSink::dropped_lines)
/// once the writer is done with it.
pub struct LogSink {
    key: String,
    dest: LogDestination,
    /// Workers push, the writer pops.
    batches: ArrayQueue<Batch>,
    /// Emptied buffers: the writer pushes, workers pop.
    spare: ArrayQueue<Vec<u8>>,
    written: AtomicU64,
    dropped: AtomicU64,
    /// Set by [`LogSinks::reopen`], taken by the writer.
    reopen: AtomicBool,
    /// Set by [`LogSinks::shutdown`]: the writer exits once the queue is empty.
    stopping: AtomicBool,
    /// False once no writer will pop the queue again: flushes count their lines as dropped.
    accepting: AtomicBool,
    /// The writer thread has exited (or never existed).
    finished: AtomicBool,
    /// The writer thread, set by itself when it starts, for workers to unpark.
    writer: OnceLock<Thread>,
}

impl LogSink {
    fn new(key: String, dest: LogDestination, queue_batches: usize) -> LogSink {
        LogSink {
            key,
            dest,
            batches: ArrayQueue::new(queue_batches),
            // Room for every queued batch's buffer and one staged per worker.
            spare: ArrayQueue::new(queue_batches + queue_batches / BATCHES_PER_WORKER + 1),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reopen: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            accepting: AtomicBool::new(true),
            finished: AtomicBool::new(false),
            writer: OnceLock::new(),
        }
    }

    /// The stable name this sink is kept under ([`LogDestination::key`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where this sink writes.
    pub fn destination(&self) -> &LogDestination {
        &self.dest
    }

    /// Lines written to the destination so far.
    pub fn written_lines(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Lines dropped so far: queue full, destination not open, a failed write or send.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Batches waiting for the writer now.
    pub fn queued_batches(&self) -> usize {
        self.batches.len()
    }

    /// How many batches the queue holds before dropping.
    pub fn queue_capacity(&self) -> usize {
        self.batches.capacity()
    }

    /// A fresh staging buffer for one worker; same as [`LogBuffer::new`].
    pub fn buffer(self: &Arc<Self>) -> LogBuffer {
        LogBuffer::new(Arc::clone(self))
    }

    fn wake_writer(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// No writer will run: whatever is queued and whatever comes is dropped.
    fn retire(&self) {
        self.accepting.store(false, Ordering::Release);
        while let Some(batch) = self.batches.pop() {
            self.dropped.fetch_add(batch.lines, Ordering::Relaxed);
        }
        self.finished.store(true, Ordering::Release);
    }
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSink")
            .field("key", &self.key)
            .field("written_lines", &self.written_lines())
            .field("dropped_lines", &self.dropped_lines())
            .field("queued_batches", &self.queued_batches())
            .finish()
    }
}

/// A worker's staged lines for one sink: owned by one worker, never shared, never blocking.
///
/// Per line: write the line's bytes into [`line`](LogBuffer::line) (a trailing `'\n'` is
/// added if missing; a line must not contain another `'\n'`), then call
/// [`end_line`](LogBuffer::end_line); or call [`push_line`](LogBuffer::push_line) with the
/// bytes. Per tick, and before the worker exits: [`flush`](LogBuffer::flush). Dropping the
/// buffer flushes it too.
pub struct LogBuffer {
    sink: Arc<LogSink>,
    staged: Vec<u8>,
    /// Bytes of `staged` that are whole, ended lines.
    committed: usize,
    lines: u64,
}

impl LogBuffer {
    /// An empty buffer staging lines for `sink`. Allocates nothing until the first line.
    pub fn new(sink: Arc<LogSink>) -> LogBuffer {
        LogBuffer {
            sink,
            staged: Vec::new(),
            committed: 0,
            lines: 0,
        }
    }

    /// The sink this buffer flushes to.
    pub fn sink(&self) -> &Arc<LogSink> {
        &self.sink
    }

    /// Lines staged and not yet flushed.
    pub fn staged_lines(&self) -> u64 {
        self.lines
    }

    /// The buffer to append one line's bytes to; [`end_line`](LogBuffer::end_line) commits
    /// them. Bytes appended since the last `end_line` and never committed are discarded here.
    /// Bytes before the returned vector's current length must be left alone.
    pub fn line(&mut self) -> &mut Vec<u8> {
        self.staged.truncate(self.committed);
        if self.staged.capacity() == 0 {
            self.staged = self.take_spare();
        }
        &mut self.staged
    }

    /// Commits the line written into [`line`](LogBuffer::line), adding its `'\n'` if missing
    /// (nothing written is an empty line), and flushes once [`FLUSH_AT`] bytes are staged.
    pub fn end_line(&mut self) {
        if self.staged.len() == self.committed || self.staged.last() != Some(&b'\n') {
            self.staged.push(b'\n');
        }
        self.committed = self.staged.len();
        self.lines += 1;
        if self.committed >= FLUSH_AT {
            self.flush();
        }
    }

    /// Stages `line` (with or without its trailing `'\n'`) as one line.
    pub fn push_line(&mut self, line: &[u8]) {
        self.line().extend_from_slice(line);
        self.end_line();
    }

    /// Hands the staged lines to the writer. Never blocks: if the sink's queue is full, or its
    /// writer is gone, the lines are counted as dropped instead.
    pub fn flush(&mut self) {
        self.staged.truncate(self.committed);
        if self.lines == 0 {
            return;
        }
        let lines = mem::take(&mut self.lines);
        self.committed = 0;
        let sink = &*self.sink;
        if !sink.accepting.load(Ordering::Acquire) || sink.batches.is_full() {
            // Keep the buffer: nothing is allocated or moved when the writer is behind.
            sink.dropped.fetch_add(lines, Ordering::Relaxed);
            self.staged.clear();
            return;
        }
        let next = self.take_spare();
        let bytes = mem::replace(&mut self.staged, next);
        match sink.batches.push(Batch { bytes, lines }) {
            Ok(()) => sink.wake_writer(),
            Err(batch) => {
                // Filled up since the check above (another worker won the last slot).
                sink.dropped.fetch_add(batch.lines, Ordering::Relaxed);
                let mut bytes = batch.bytes;
                bytes.clear();
                let spare = mem::replace(&mut self.staged, bytes);
                let _ = sink.spare.push(spare);
            }
        }
    }

    fn take_spare(&self) -> Vec<u8> {
        self.sink
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BATCH_CAPACITY))
    }
}

impl Drop for LogBuffer {
    fn drop(&mut self) {
        self.flush();
    }
}

impl fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogBuffer")
            .field("sink", &self.sink.key)
            .field("staged_lines", &self.lines)
            .field("staged_bytes", &self.committed)
            .finish()
    }
}

/// Reopens every access log on each SIGHUP ([`LogSinks::reopen`]), from a thread of its own.
///
/// Errors: installing the signal handler or starting the thread failed.
pub fn spawn_sighup_listener(sinks: Arc<LogSinks>) -> io::Result<()> {
    let mut signals = Signals::new([SIGHUP])?;
    thread::Builder::new()
        .name("log-reopen".into())
        .spawn(move || {
            for _ in signals.forever() {
                tracing::info!("SIGHUP: reopening access logs");
                sinks.reopen();
            }
        })?;
    Ok(())
}
