//! One connection's driver: the closed loop (send a batch, read its responses, repeat) and the
//! open loop (send each request at its scheduled time, measure from that time).
//!
//! HOT PATH. Per request there is no allocation (pre-serialized request bytes, one read buffer
//! and one write buffer per connection, reused), no lock, no timer in the closed loop (the
//! worker's watchdog enforces timeouts), and two clock reads.
//!
//! Coordinated omission: in the open loop, request `k` of a connection is due at
//! `offset + k * interval`; its latency is measured from that due time, so a server stall
//! delays every request scheduled behind it and shows in the tail. The uncorrected service
//! time (from the actual send) is kept beside it. One refinement keeps the generator's own
//! timer out of the result: monoio timers tick in whole milliseconds, so a request that fell
//! due while its connection sat idle (asleep, nothing outstanding) is measured from when it
//! was actually sent — any delay there came from our timer, not from the server. A request that
//! fell due while the connection still waited for the server is measured from its due time.
//! The loop wakes up to 1 ms early rather than late.
//!
//! `https://`: the same loops over a TLS [`Stream`]. The handshake is part of the connect, so
//! in new-connection mode it is inside the measured latency, as the TCP connect is; a failed
//! handshake counts as a `tls` error (a timed-out one as a timeout) and backs off like a failed
//! connect.

use std::{io, os::fd::AsRawFd};

use monoio::net::TcpStream;

use crate::{
    request::Rng,
    response::{Body, parse_head},
    stats::ErrorKind,
    stream::{Stream, TlsStream},
    tls::ThreadTls,
    worker::{Kill, Watch, Worker},
};

/// Initial read buffer: a 16 KiB response fits in one read.
const READ_BUF: usize = 64 << 10;
/// A response head larger than this is treated as garbage (a parse error).
const MAX_HEAD: usize = 1 << 20;
/// Pause after a failed connect, so an unreachable target is not hammered in a tight loop.
const CONNECT_BACKOFF_MS: u64 = 50;
/// How early the open loop wakes before a request's due time (one timer tick).
const EARLY_NS: u64 = 1_000_000;

/// Why reading a response stopped.
enum ReadFail {
    Io,
    /// The server closed the connection.
    Eof,
    Parse,
}

/// A response that was read completely.
struct Response {
    status: u16,
    bytes: u64,
    close: bool,
}

/// Per-connection state kept across requests.
struct Conn<'a> {
    worker: &'a Worker,
    watch: &'a Watch,
    stream: Option<Stream>,
    rbuf: Vec<u8>,
    /// Parse position in `rbuf`; `rbuf[pos..]` is unread.
    pos: usize,
    wbuf: Vec<u8>,
    /// Per request of the current batch: was it a HEAD.
    heads: Vec<bool>,
    /// Per request of the current batch (open loop): its due time.
    due: Vec<u64>,
    /// Open loop: when the connection last had nothing outstanding (ns since start).
    idle_since: u64,
    rng: Rng,
}

/// Runs connection `index` (global across threads) until the run ends.
pub async fn run(worker: &Worker, index: usize, watch: &Watch) {
    let plan = worker.plan;
    let mut conn = Conn {
        worker,
        watch,
        stream: None,
        rbuf: Vec::with_capacity(READ_BUF),
        pos: 0,
        wbuf: Vec::new(),
        heads: Vec::with_capacity(plan.pipeline),
        due: Vec::with_capacity(plan.pipeline),
        idle_since: 0,
        rng: Rng::new(index as u64),
    };
    match plan.rate {
        None => conn.closed_loop().await,
        Some(rate) => {
            let interval = plan.connections as f64 * 1e9 / rate;
            let offset = index as f64 * interval / plan.connections as f64;
            conn.open_loop(offset, interval).await;
        }
    }
    conn.close();
}

impl Conn<'_> {
    /// Sends batches of `--pipeline` requests back to back, as fast as responses come.
    async fn closed_loop(&mut self) {
        let w = self.worker;
        loop {
            let begin = w.now();
            if begin >= w.end || w.aborted() {
                return;
            }
            if !self.connect().await {
                continue;
            }
            let n = if w.plan.new_conn { 1 } else { w.plan.pipeline };
            // In new-connection mode the connect is part of what is measured.
            let sent = if w.plan.new_conn { begin } else { w.now() };
            self.exchange(n, sent, false).await;
        }
    }

    /// Sends request `k` at `offset + k * interval`, batching those already due.
    async fn open_loop(&mut self, offset: f64, interval: f64) {
        let w = self.worker;
        let due_at = |k: u64| (offset + k as f64 * interval) as u64;
        let mut k = 0u64;
        loop {
            let due = due_at(k);
            if due >= w.end || w.aborted() {
                return;
            }
            let mut now = w.now();
            if due > now + EARLY_NS {
                let wait = due - now - EARLY_NS;
                monoio::time::sleep(std::time::Duration::from_nanos(wait)).await;
                now = w.now();
            }
            let connected = self.connect().await;
            let sent = if w.plan.new_conn { now } else { w.now() };
            let limit = if w.plan.new_conn { 1 } else { w.plan.pipeline };
            self.due.clear();
            self.due.push(due);
            while self.due.len() < limit {
                let next = due_at(k + self.due.len() as u64);
                if next > sent || next >= w.end {
                    break;
                }
                self.due.push(next);
            }
            let n = self.due.len();
            k += n as u64;
            if connected {
                self.exchange(n, sent, true).await;
            }
            self.idle_since = w.now();
        }
    }

    /// Writes `n` requests and reads their responses, recording each. `open` says latency is
    /// measured from `self.due` rather than from `sent`.
    async fn exchange(&mut self, n: usize, sent: u64, open: bool) {
        let w = self.worker;
        self.watch.deadline.set(sent + w.timeout_ns);
        let written = match self.write_batch(n).await {
            Ok(bytes) => bytes,
            Err(_) => {
                self.fail(ErrorKind::Write, sent);
                return;
            }
        };
        let per_request_written = written / n as u64;
        for i in 0..n {
            let head = self.heads[i];
            let result = self.read_response(head).await;
            let done = w.now();
            match result {
                Ok(resp) => {
                    let due = if open { self.due[i] } else { sent };
                    // See the module doc: due while busy -> from the due time; due while idle
                    // -> from the send (the gap is our timer's slack, not the server's).
                    let start = if due < self.idle_since { due } else { sent };
                    let measured = due >= w.warmup_end;
                    {
                        let mut stats = w.stats.borrow_mut();
                        if measured {
                            let latency = done.saturating_sub(start);
                            let service = open.then(|| done.saturating_sub(sent));
                            stats.record(resp.status, latency, service);
                            stats.bytes_read += resp.bytes;
                            stats.bytes_written += per_request_written;
                        } else {
                            stats.warmup_requests += 1;
                        }
                    }
                    w.responded();
                    self.watch.deadline.set(done + w.timeout_ns);
                    if resp.close {
                        if i + 1 < n {
                            // Requests after this one were sent but will never be answered.
                            self.fail(ErrorKind::Read, done);
                        } else {
                            self.close();
                        }
                        break;
                    }
                }
                Err(ReadFail::Parse) => {
                    self.fail(ErrorKind::Parse, done);
                    break;
                }
                Err(ReadFail::Io) => {
                    self.fail(ErrorKind::Read, done);
                    break;
                }
                Err(ReadFail::Eof) => {
                    self.fail(ErrorKind::Read, done);
                    break;
                }
            }
        }
        self.watch.deadline.set(0);
        if w.plan.new_conn {
            self.close();
        }
    }

    /// Makes sure a connection is open; false (after a short pause) when the connect failed.
    async fn connect(&mut self) -> bool {
        if self.stream.is_some() {
            return true;
        }
        let w = self.worker;
        // A connect cancelled by this timeout may leak its socket if it completes later (a
        // known monoio 0.2.4 issue); it only happens to connects slower than --timeout.
        let attempt =
            monoio::time::timeout(w.plan.timeout, TcpStream::connect_addr(w.plan.target.addr))
                .await;
        match attempt {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                self.watch.fd.set(tcp.as_raw_fd());
                self.watch.killed.set(None);
                let stream = match &w.tls {
                    None => Stream::Plain(tcp),
                    Some(tls) => match self.handshake(tls, tcp).await {
                        Some(tls) => Stream::Tls(tls),
                        None => return false,
                    },
                };
                self.stream = Some(stream);
                self.rbuf.clear();
                self.pos = 0;
                w.connected();
                true
            }
            Ok(Err(e)) => {
                w.connect_failed(&e);
                self.backoff().await;
                false
            }
            Err(_) => {
                w.connect_failed(&io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect timed out",
                ));
                false
            }
        }
    }

    /// Runs the TLS handshake on a fresh socket; on failure counts it (a timeout if the watchdog
    /// cut it short, else a `tls` error) and pauses like a failed connect.
    async fn handshake(&mut self, tls: &ThreadTls, tcp: TcpStream) -> Option<Box<TlsStream>> {
        let w = self.worker;
        let conn = match tls.connection() {
            Ok(conn) => conn,
            Err(e) => {
                self.watch.fd.set(-1);
                w.handshake_failed(&io::Error::other(e));
                self.backoff().await;
                return None;
            }
        };
        let mut tls = Box::new(TlsStream::new(tcp, conn));
        self.watch.deadline.set(w.now() + w.timeout_ns);
        let result = tls.handshake().await;
        self.watch.deadline.set(0);
        match result {
            Ok(kind) => {
                w.stats.borrow_mut().handshake(kind, tls.negotiated());
                Some(tls)
            }
            Err(e) => {
                self.watch.fd.set(-1);
                drop(tls);
                match self.watch.killed.get() {
                    Some(Kill::Timeout) => w.failed(ErrorKind::Timeout, w.now()),
                    Some(Kill::End) => {}
                    None => {
                        w.handshake_failed(&e);
                        self.backoff().await;
                    }
                }
                None
            }
        }
    }

    async fn backoff(&self) {
        let w = self.worker;
        if w.now() < w.end && !w.aborted() {
            monoio::time::sleep(std::time::Duration::from_millis(CONNECT_BACKOFF_MS)).await;
        }
    }

    /// Closes the connection; the watchdog forgets it first.
    fn close(&mut self) {
        self.watch.fd.set(-1);
        self.watch.deadline.set(0);
        self.stream = None;
        self.rbuf.clear();
        self.pos = 0;
    }

    /// Counts a failure (a timeout if the watchdog shut the socket) and drops the connection.
    fn fail(&mut self, kind: ErrorKind, at: u64) {
        let kind = match self.watch.killed.get() {
            Some(Kill::Timeout) => Some(ErrorKind::Timeout),
            // Cut off at the end of the run: not the server's fault, not counted.
            Some(Kill::End) => None,
            None => Some(kind),
        };
        if let Some(kind) = kind {
            self.worker.failed(kind, at);
        }
        self.close();
    }

    /// Writes `n` requests in one go; returns the bytes written.
    async fn write_batch(&mut self, n: usize) -> io::Result<u64> {
        let set = &self.worker.plan.requests;
        self.heads.clear();
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        let (res, len) = if n == 1 {
            let v = set.pick(&mut self.rng);
            self.heads.push(v.head);
            let (res, _) = stream.write_all(v.bytes).await;
            (res, v.bytes.len())
        } else if let Some(batch) = set.batch(n) {
            let v = set.pick(&mut self.rng);
            self.heads.resize(n, v.head);
            let (res, _) = stream.write_all(batch).await;
            (res, batch.len())
        } else {
            let mut buf = std::mem::take(&mut self.wbuf);
            buf.clear();
            for _ in 0..n {
                let v = set.pick(&mut self.rng);
                self.heads.push(v.head);
                buf.extend_from_slice(v.bytes);
            }
            let len = buf.len();
            let (res, buf) = stream.write_all(buf).await;
            self.wbuf = buf;
            (res, len)
        };
        res?;
        Ok(len as u64)
    }

    /// Reads one complete response, skipping 1xx interim responses.
    async fn read_response(&mut self, head_request: bool) -> Result<Response, ReadFail> {
        let mut bytes = 0u64;
        let head = loop {
            match parse_head(&self.rbuf[self.pos..], head_request) {
                Ok(Some(h)) if (100..200).contains(&h.status) && h.status != 101 => {
                    self.pos += h.len;
                    bytes += h.len as u64;
                }
                Ok(Some(h)) => break h,
                Ok(None) => self.fill().await?,
                Err(_) => return Err(ReadFail::Parse),
            }
        };
        self.pos += head.len;
        bytes += head.len as u64;
        let mut body = Body::new(head.framing);
        let mut close = head.close;
        loop {
            let used = body
                .consume(&self.rbuf[self.pos..])
                .map_err(|_| ReadFail::Parse)?;
            self.pos += used;
            bytes += used as u64;
            if body.is_done() {
                break;
            }
            match self.fill().await {
                Ok(()) => {}
                Err(ReadFail::Eof) if body.ends_at_close() => {
                    close = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if self.pos == self.rbuf.len() {
            self.rbuf.clear();
            self.pos = 0;
        }
        Ok(Response {
            status: head.status,
            bytes,
            close,
        })
    }

    /// Reads more bytes after `rbuf[..len]`, making room first.
    async fn fill(&mut self) -> Result<(), ReadFail> {
        if self.pos == self.rbuf.len() {
            self.rbuf.clear();
            self.pos = 0;
        } else if self.rbuf.len() == self.rbuf.capacity() {
            if self.pos > 0 {
                self.rbuf.drain(..self.pos);
                self.pos = 0;
            } else if self.rbuf.capacity() >= MAX_HEAD {
                return Err(ReadFail::Parse);
            } else {
                self.rbuf.reserve(self.rbuf.capacity());
            }
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(ReadFail::Eof);
        };
        let (res, buf) = stream.read(std::mem::take(&mut self.rbuf)).await;
        self.rbuf = buf;
        match res {
            Ok(0) => Err(ReadFail::Eof),
            Ok(_) => Ok(()),
            Err(_) => Err(ReadFail::Io),
        }
    }
}
