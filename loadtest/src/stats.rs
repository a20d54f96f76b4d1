//! What one load thread measured: latency histograms, counters by status class and error kind,
//! bytes moved. Each thread owns one [`Stats`]; they are merged once, after the run.
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

/// One thread's measurements (or, after [`Stats::merge`], the whole run's).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Response time; in rate mode measured from each request's intended send time.
    pub latency: Histogram<u64>,
    /// Response time from the actual send (service time). Only filled in rate mode: in a
    /// closed loop the two are the same and recording twice would only cost time.
    pub service: Histogram<u64>,
    /// Responses to requests sent (rate mode: scheduled) inside the measured window.
    pub requests: u64,
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
            requests: 0,
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
        self.requests += other.requests;
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
}
