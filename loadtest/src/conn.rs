//! One connection's driver: the closed loop (send a batch, read its responses, repeat) and the
//! open loop (send each request at its scheduled time, measure from that time).
//!
//! HOT PATH. Per request there is no allocation (pre-serialized request bytes, one read buffer
//! and one write buffer per connection, reused), no lock, no timer in the closed loop (the
//! worker's watchdog enforces timeouts), and two clock reads.
//!
//! Coordinated omission: in the open loop, request `k` of connection `i` is due at
//! `(i + k * connections) / rate`; its latency is measured from that due time, so a server stall
//! delays every request scheduled behind it and shows in the tail. The uncorrected service
//! time (from the actual send) is kept beside it. One refinement keeps the generator's own
//! timer out of the result: monoio timers tick in whole milliseconds, so a request that fell
//! due while its connection sat idle (asleep, nothing outstanding) is measured from when it
//! was actually sent — any delay there came from our timer, not from the server. A request that
//! fell due while the connection still waited for the server is measured from its due time.
//! The loop wakes up to 1 ms early rather than late.
//!
//! Accounting: no request is started once the window has closed (with `--new-conn` a request
//! starts with its connect). Every measured request that
//! fell due ends as completed (inside the window or during the drain), failed (the connection
//! could not be made, the exchange failed, or the drain ran out: unanswered), or not sent: it
//! fell due while its connection was still busy and the window closed first. Not-sent and
//! unanswered requests enter the corrected histogram with the time they had waited when the
//! connection stopped, a lower bound of their latency, so a target that cannot keep up shows
//! in the percentiles rather than vanishing from them.
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
    stats::{ErrorKind, Failure},
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
        None => conn.closed_loop(plan.quota(index)).await,
        Some(_) => conn.open_loop(index as u64).await,
    }
    conn.close();
}

impl Conn<'_> {
    /// Sends batches of `--pipeline` requests back to back, as fast as responses come, until
    /// the window closes or `quota` measured requests were made.
    async fn closed_loop(&mut self, quota: u64) {
        let w = self.worker;
        let mut made = 0u64;
        loop {
            let begin = w.now();
            if begin >= w.end || w.aborted() || made >= quota {
                return;
            }
            if self.connect().await.is_err() {
                continue;
            }
            // In new-connection mode the connect is part of what is measured: the request
            // started with it, inside the window.
            let sent = if w.plan.new_conn { begin } else { w.now() };
            if sent >= w.end {
                return;
            }
            let mut n = if w.plan.new_conn { 1 } else { w.plan.pipeline };
            if sent >= w.warmup_end {
                n = n.min(usize::try_from(quota - made).unwrap_or(usize::MAX));
                made += n as u64;
            }
            self.due.clear();
            self.due.resize(n, sent);
            self.count_due();
            self.exchange(sent, false).await;
        }
    }

    /// Sends request `k` of this connection (request `index + k * connections` of the run) at
    /// its due time, batching those already due. When the window closes, the requests that
    /// fell due but could not be sent are counted as not sent.
    async fn open_loop(&mut self, index: u64) {
        let w = self.worker;
        let plan = w.plan;
        let connections = plan.connections as u64;
        let due_at = |k: u64| plan.due_ns(index + k * connections);
        let mut k = 0u64;
        loop {
            let due = due_at(k);
            if due >= w.end || w.aborted() {
                break;
            }
            let mut now = w.now();
            if due > now + EARLY_NS {
                let wait = due - now - EARLY_NS;
                monoio::time::sleep(std::time::Duration::from_nanos(wait)).await;
                now = w.now();
            }
            // No request is written once the window has closed.
            if now >= w.end {
                break;
            }
            let connected = self.connect().await;
            let sent = if w.plan.new_conn { now } else { w.now() };
            if sent >= w.end {
                break;
            }
            match connected {
                Ok(()) => {
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
                    k += self.due.len() as u64;
                    self.count_due();
                    self.exchange(sent, true).await;
                }
                // No connection for any request already due: they all fail with it.
                Err(failure) => k = self.settle(k, sent, failure, due_at),
            }
            self.idle_since = w.now();
        }
        if !w.aborted() {
            self.settle(k, u64::MAX, None, due_at);
        }
    }

    /// Settles, without sending them, this connection's requests from `k` on that fall due by
    /// `until` and inside the window: each measured one is counted as due, then as failed with
    /// `failure`, or (`None`) as not sent, its corrected latency recorded as the time from its
    /// due time to now, a lower bound of what it would have been. Returns the next `k`.
    fn settle(
        &self,
        mut k: u64,
        until: u64,
        failure: Option<Failure>,
        due_at: impl Fn(u64) -> u64,
    ) -> u64 {
        let w = self.worker;
        let now = w.now();
        let mut stats = w.stats.borrow_mut();
        loop {
            let due = due_at(k);
            if due > until || due >= w.end {
                return k;
            }
            if due >= w.warmup_end {
                stats.due += 1;
                match failure {
                    Some(f) => stats.fail(f),
                    None => {
                        stats.not_sent += 1;
                        stats
                            .latency
                            .saturating_record(now.saturating_sub(due).max(1));
                    }
                }
            }
            k += 1;
        }
    }

    /// Counts the measured requests of the batch in `self.due` as due.
    fn count_due(&self) {
        let w = self.worker;
        let measured = self.due.iter().filter(|&&d| d >= w.warmup_end).count();
        w.stats.borrow_mut().due += measured as u64;
    }

    /// When the latency of a request due at `due` and sent at `sent` starts (see the module
    /// doc): from the due time if it fell due while the connection was busy, else from the
    /// send (the gap is our timer's slack, not the server's).
    fn latency_start(&self, due: u64, sent: u64) -> u64 {
        if due < self.idle_since { due } else { sent }
    }

    /// Writes the batch in `self.due` and reads its responses, recording each. `open` says the
    /// service time (from `sent`) is recorded beside the corrected latency.
    async fn exchange(&mut self, sent: u64, open: bool) {
        let w = self.worker;
        let n = self.due.len();
        self.watch.deadline.set(sent + w.timeout_ns);
        let written = match self.write_batch(n).await {
            Ok(bytes) => bytes,
            Err(_) => {
                self.fail(ErrorKind::Write, sent, 0, sent);
                return;
            }
        };
        {
            let mut stats = w.stats.borrow_mut();
            for &due in &self.due {
                if due >= w.warmup_end {
                    stats.sent += 1;
                    stats.sent_late += u64::from(due < self.idle_since);
                }
            }
        }
        w.sent(n);
        let per_request_written = written / n as u64;
        for i in 0..n {
            let head = self.heads[i];
            let result = self.read_response(head).await;
            let done = w.now();
            match result {
                Ok(resp) => {
                    let due = self.due[i];
                    let start = self.latency_start(due, sent);
                    {
                        let mut stats = w.stats.borrow_mut();
                        if due >= w.warmup_end {
                            let latency = done.saturating_sub(start);
                            let service = open.then(|| done.saturating_sub(sent));
                            stats.record(resp.status, latency, service);
                            stats.bytes_read += resp.bytes;
                            stats.bytes_written += per_request_written;
                            stats.completed_after_window += u64::from(done >= w.end);
                            stats.last_response_ns = stats.last_response_ns.max(done);
                        } else {
                            stats.warmup_requests += 1;
                        }
                    }
                    w.responded();
                    self.watch.deadline.set(done + w.timeout_ns);
                    if resp.close {
                        if i + 1 < n {
                            // Requests after this one were sent but will never be answered.
                            self.fail(ErrorKind::Read, done, i + 1, sent);
                        } else {
                            self.close();
                        }
                        break;
                    }
                }
                Err(e) => {
                    let kind = match e {
                        ReadFail::Parse => ErrorKind::Parse,
                        ReadFail::Io | ReadFail::Eof => ErrorKind::Read,
                    };
                    self.fail(kind, done, i, sent);
                    break;
                }
            }
        }
        self.watch.deadline.set(0);
        if w.plan.new_conn {
            self.close();
        }
    }

    /// Makes sure a connection is open. On failure (after a short pause) says what the
    /// requests waiting for it become: failed with a kind, or `None` when the end of the run
    /// cut the handshake short (they were never sent).
    async fn connect(&mut self) -> Result<(), Option<Failure>> {
        if self.stream.is_some() {
            return Ok(());
        }
        let w = self.worker;
        let begin = w.now();
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
                    Some(tls) => Stream::Tls(self.handshake(tls, tcp).await?),
                };
                self.stream = Some(stream);
                self.rbuf.clear();
                self.pos = 0;
                w.connected(w.now().saturating_sub(begin));
                Ok(())
            }
            Ok(Err(e)) => {
                w.connect_failed(&e);
                self.backoff().await;
                Err(Some(Failure::Error(ErrorKind::Connect)))
            }
            Err(_) => {
                w.connect_failed(&io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect timed out",
                ));
                Err(Some(Failure::Error(ErrorKind::Connect)))
            }
        }
    }

    /// Runs the TLS handshake on a fresh socket; on failure counts it (a timeout if the watchdog
    /// cut it short, else a `tls` error), pauses like a failed connect, and says what the
    /// requests waiting for it become (as [`Conn::connect`]).
    async fn handshake(
        &mut self,
        tls: &ThreadTls,
        tcp: TcpStream,
    ) -> Result<Box<TlsStream>, Option<Failure>> {
        let w = self.worker;
        let conn = match tls.connection() {
            Ok(conn) => conn,
            Err(e) => {
                self.watch.fd.set(-1);
                w.handshake_failed(&io::Error::other(e));
                self.backoff().await;
                return Err(Some(Failure::Error(ErrorKind::Tls)));
            }
        };
        let mut tls = Box::new(TlsStream::new(tcp, conn));
        self.watch.deadline.set(w.now() + w.timeout_ns);
        let result = tls.handshake().await;
        self.watch.deadline.set(0);
        match result {
            Ok(kind) => {
                w.stats.borrow_mut().handshake(kind, tls.negotiated());
                Ok(tls)
            }
            Err(e) => {
                self.watch.fd.set(-1);
                drop(tls);
                match self.watch.killed.get() {
                    Some(Kill::Timeout) => {
                        w.failed(ErrorKind::Timeout, w.now());
                        Err(Some(Failure::Error(ErrorKind::Timeout)))
                    }
                    Some(Kill::End) => Err(None),
                    None => {
                        w.handshake_failed(&e);
                        self.backoff().await;
                        Err(Some(Failure::Error(ErrorKind::Tls)))
                    }
                }
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
    /// Requests `self.due[from..]` of the batch sent at `sent` get no response: each measured
    /// one is counted as failed with that kind, or, when the end of the drain cut it off, as
    /// unanswered with its corrected latency recorded as the time it waited so far (a lower
    /// bound). The end of the run is not an error of the server's, so it is not in `errors`.
    fn fail(&mut self, kind: ErrorKind, at: u64, from: usize, sent: u64) {
        let w = self.worker;
        let failure = match self.watch.killed.get() {
            Some(Kill::Timeout) => Failure::Error(ErrorKind::Timeout),
            Some(Kill::End) => Failure::Unanswered,
            None => Failure::Error(kind),
        };
        if let Failure::Error(kind) = failure {
            w.failed(kind, at);
        }
        {
            let mut stats = w.stats.borrow_mut();
            for &due in self.due.get(from..).unwrap_or_default() {
                if due < w.warmup_end {
                    continue;
                }
                stats.fail(failure);
                if failure == Failure::Unanswered {
                    let waited = at.saturating_sub(self.latency_start(due, sent));
                    stats.latency.saturating_record(waited.max(1));
                }
            }
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
