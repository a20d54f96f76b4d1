//! What one load thread measured: latency histograms, counters by status class and error kind,
//! bytes moved, and what became of every request that fell due. Each thread owns one [`Stats`];
//! they are merged once, after the run.
//!
//! Accounting: every measured request that falls due ends in exactly one of four places —
//! completed inside the window, completed after it (during the drain), failed (by
//! [`Failure`]), or never sent — so `due == completed_in_window + completed_after_window +
//! failed + not_sent` always holds (checked by [`Stats::unaccounted`]).
//!
//! Recording is on the hot path: a histogram bucket increment and a few adds, no allocation,
//! no atomics. Latencies are kept in nanoseconds with 3 significant digits.

use hdrhistogram::Histogram;

/// The longest latency a histogram holds exactly (one hour); longer ones saturate.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// Kinds of failure the report counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection could not be made.
    Connect,
    /// No response within `--timeout`.
    Timeout,
    /// Reading failed, or the server closed with requests outstanding.
    Read,
    /// Writing the request failed.
    Write,
    /// The response was not valid HTTP/1.x.
    Parse,
    /// The TLS handshake failed: a certificate not trusted, an alert, a protocol error.
    Tls,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Read,
        ErrorKind::Write,
        ErrorKind::Parse,
        ErrorKind::Tls,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Read => "read",
            ErrorKind::Write => "write",
            ErrorKind::Parse => "parse",
            ErrorKind::Tls => "tls",
        }
    }
}

/// Why one request that fell due got no response: an error, or the generator stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection it was meant for failed (connect, TLS), or it failed on the wire.
    Error(ErrorKind),
    /// Sent, but still unanswered when the drain time after the window ran out.
    Unanswered,
}

impl Failure {
    /// Every failure, in the order of [`Stats::failed`].
    pub const ALL: [Failure; 7] = [
        Failure::Error(ErrorKind::Connect),
        Failure::Error(ErrorKind::Timeout),
        Failure::Error(ErrorKind::Read),
        Failure::Error(ErrorKind::Write),
        Failure::Error(ErrorKind::Parse),
        Failure::Error(ErrorKind::Tls),
        Failure::Unanswered,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failure::Error(kind) => kind.name(),
            Failure::Unanswered => "unanswered",
        }
    }

    fn index(self) -> usize {
        match self {
            Failure::Error(kind) => kind as usize,
            Failure::Unanswered => 6,
        }
    }
}

/// One thread's measurements (or, after [`Stats::merge`], the whole run's).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Response time; in rate mode measured from each request's intended send time.
    pub latency: Histogram<u64>,
    /// Response time from the actual send (service time). Only filled in rate mode: in a
    /// closed loop the two are the same and recording twice would only cost time.
    pub service: Histogram<u64>,
    /// Time from starting a connect to the connection being ready for requests (TCP connect,
    /// and with TLS the handshake), in ns; whole run, warm-up included, like `connects`.
    pub connect: Histogram<u64>,
    /// Responses to requests sent (rate mode: due) inside the measured window, whenever they
    /// arrived: `completed_in_window` is `requests - completed_after_window`.
    pub requests: u64,
    /// Of `requests`, the responses that arrived after the window closed (during the drain).
    pub completed_after_window: u64,
    /// Requests that fell due in the measured window (closed loop: were sent, or meant to be).
    pub due: u64,
    /// Of `due`, the requests written to a connection.
    pub sent: u64,
    /// Of `sent` (rate mode), those that fell due while their connection was still busy with
    /// earlier requests, so went out after their due time.
    pub sent_late: u64,
    /// Of `due` (rate mode), those never written: the window closed while every earlier
    /// request of their connection was still outstanding.
    pub not_sent: u64,
    /// Of `due`, the requests that got no response, by [`Failure`] in the order of
    /// [`Failure::ALL`].
    pub failed: [u64; 7],
    /// When the last measured response arrived (ns since the start of the run; 0: none).
    pub last_response_ns: u64,
    /// Responses to requests sent during the warm-up.
    pub warmup_requests: u64,
    /// Responses by status class: index 0 = 1xx (unused), ..., 4 = 5xx, 5 = anything else.
    pub status: [u64; 6],
    /// Errors by [`ErrorKind`], in the order of [`ErrorKind::ALL`].
    pub errors: [u64; 6],
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Connections made (with TLS: handshakes completed).
    pub connects: u64,
    /// TLS handshakes by kind (whole run, warm-up included, like `connects`).
    pub tls_full: u64,
    pub tls_resumed: u64,
    /// Protocol version and cipher suite of a handshake (the latest), for the report.
    pub tls_negotiated: (Option<&'static str>, Option<&'static str>),
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        // Constant, valid bounds: this cannot fail whatever the input.
        let hist =
            || Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("constant histogram bounds");
        Self {
            latency: hist(),
            service: hist(),
            connect: hist(),
            requests: 0,
            completed_after_window: 0,
            due: 0,
            sent: 0,
            sent_late: 0,
            not_sent: 0,
            failed: [0; 7],
            last_response_ns: 0,
            warmup_requests: 0,
            status: [0; 6],
            errors: [0; 6],
            bytes_read: 0,
            bytes_written: 0,
            connects: 0,
            tls_full: 0,
            tls_resumed: 0,
            tls_negotiated: (None, None),
        }
    }

    /// Records one response in the measured window.
    #[inline]
    pub fn record(&mut self, status: u16, latency_ns: u64, service_ns: Option<u64>) {
        self.requests += 1;
        let class = match status {
            100..=599 => usize::from(status / 100 - 1),
            _ => 5,
        };
        self.status[class] += 1;
        self.latency.saturating_record(latency_ns.max(1));
        if let Some(s) = service_ns {
            self.service.saturating_record(s.max(1));
        }
    }

    /// Counts one due request that got no response.
    #[inline]
    pub fn fail(&mut self, failure: Failure) {
        self.failed[failure.index()] += 1;
    }

    pub fn failed_count(&self, failure: Failure) -> u64 {
        self.failed[failure.index()]
    }

    pub fn total_failed(&self) -> u64 {
        self.failed.iter().sum()
    }

    /// Due requests not in any outcome (0 when the books balance; negative when an outcome was
    /// counted twice).
    pub fn unaccounted(&self) -> i128 {
        i128::from(self.due)
            - i128::from(self.requests)
            - i128::from(self.total_failed())
            - i128::from(self.not_sent)
    }

    #[inline]
    pub fn error(&mut self, kind: ErrorKind) {
        self.errors[kind as usize] += 1;
    }

    /// Counts one completed TLS handshake.
    pub fn handshake(
        &mut self,
        kind: rustls::HandshakeKind,
        negotiated: (Option<&'static str>, Option<&'static str>),
    ) {
        match kind {
            rustls::HandshakeKind::Resumed => self.tls_resumed += 1,
            _ => self.tls_full += 1,
        }
        self.tls_negotiated = negotiated;
    }

    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize]
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Adds another thread's measurements into this one.
    pub fn merge(&mut self, other: &Stats) {
        // Both histograms have the same bounds, so adding cannot fail; saturate if it would.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        let _ = self.connect.add(&other.connect);
        self.requests += other.requests;
        self.completed_after_window += other.completed_after_window;
        self.due += other.due;
        self.sent += other.sent;
        self.sent_late += other.sent_late;
        self.not_sent += other.not_sent;
        for (a, b) in self.failed.iter_mut().zip(other.failed) {
            *a += b;
        }
        self.last_response_ns = self.last_response_ns.max(other.last_response_ns);
        self.warmup_requests += other.warmup_requests;
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.connects += other.connects;
        self.tls_full += other.tls_full;
        self.tls_resumed += other.tls_resumed;
        if self.tls_negotiated.0.is_none() {
            self.tls_negotiated = other.tls_negotiated;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Stats::new();
        a.record(200, 1_000, None);
        a.record(503, 2_000, None);
        a.record(42, 3_000, None);
        a.error(ErrorKind::Timeout);
        a.handshake(rustls::HandshakeKind::Full, (Some("TLSv1_3"), None));
        let mut b = Stats::new();
        b.handshake(rustls::HandshakeKind::Resumed, (None, None));
        b.handshake(
            rustls::HandshakeKind::FullWithHelloRetryRequest,
            (None, None),
        );
        b.record(404, 5_000_000, Some(7));
        b.merge(&a);
        assert_eq!(b.requests, 4);
        assert_eq!(b.status, [0, 1, 0, 1, 1, 1]);
        assert_eq!(b.error_count(ErrorKind::Timeout), 1);
        assert_eq!((b.tls_full, b.tls_resumed), (2, 1));
        assert_eq!(b.tls_negotiated.0, Some("TLSv1_3"));
        assert_eq!(b.latency.len(), 4);
        assert_eq!(b.service.len(), 1);
        assert!(b.latency.max() >= 4_990_000);
    }

    #[test]
    fn outcomes_merge_and_balance() {
        let mut a = Stats::new();
        a.due = 5;
        a.sent = 3;
        a.record(200, 10, Some(5));
        a.record(200, 10, Some(5));
        a.completed_after_window = 1;
        a.fail(Failure::Unanswered);
        a.not_sent = 2;
        a.last_response_ns = 7;
        assert_eq!(a.unaccounted(), 0);
        let mut b = Stats::new();
        b.due = 2;
        b.sent = 2;
        b.fail(Failure::Error(ErrorKind::Read));
        b.fail(Failure::Error(ErrorKind::Read));
        b.last_response_ns = 3;
        b.merge(&a);
        assert_eq!((b.due, b.sent, b.requests, b.not_sent), (7, 5, 2, 2));
        assert_eq!(b.failed_count(Failure::Error(ErrorKind::Read)), 2);
        assert_eq!(b.failed_count(Failure::Unanswered), 1);
        assert_eq!((b.total_failed(), b.completed_after_window), (3, 1));
        assert_eq!((b.unaccounted(), b.last_response_ns), (0, 7));
        b.due += 1;
        assert_eq!(b.unaccounted(), 1);
        let names: Vec<_> = Failure::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names[6], "unanswered");
        assert!(Failure::ALL.iter().enumerate().all(|(i, f)| f.index() == i));
    }
}
