//! One route's counters on one worker: request and status-class counts, and latency histograms
//! with fixed buckets.
//!
//! HOT PATH: [`RouteCounters::record`] runs once per request on the worker that served it.
//! Banned here: locks, allocation, logging, loops over every bucket, orderings stronger than
//! `Relaxed`. A reading taken while a worker records may see a request in `requests` but not
//! yet in a histogram; scrapes are seconds apart, so that skew of one request does not matter.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bucket upper bounds, seconds (Prometheus `le`), chosen for an API gateway: 0.5ms .. 10s.
pub const LATENCY_BOUNDS_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// [`LATENCY_BOUNDS_SECONDS`] in whole microseconds, so that recording compares integers and
/// never converts to floating point. A test checks the two tables agree.
pub const LATENCY_BOUNDS_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Buckets in a histogram: one per bound plus the overflow (`+Inf`) bucket.
pub const BUCKETS: usize = LATENCY_BOUNDS_MICROS.len() + 1;

/// A latency histogram with the fixed [`LATENCY_BOUNDS_SECONDS`] buckets.
///
/// Counts are kept per bucket (not cumulative), so a sample touches one bucket, not every
/// bucket above it; the exposition makes them cumulative at scrape time.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Counts one sample. A sample equal to a bound belongs to that bound's bucket (`le` is
    /// "less than or equal"): 500 µs goes in `le="0.0005"`, 501 µs in `le="0.001"`.
    #[inline]
    pub fn record_micros(&self, micros: u64) {
        // A binary search over 14 sorted integers: four comparisons, no float conversion.
        let bucket = LATENCY_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        // `partition_point` returns at most `len()`, which is the overflow bucket's index; the
        // `get` keeps the hot path free of a panic branch the optimiser might not remove.
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Relaxed);
        }
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// The histogram as it stands now.
    pub fn read(&self) -> HistogramReading {
        HistogramReading {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_micros: self.sum_micros.load(Relaxed),
        }
    }
}

/// A histogram's values at one moment, or merged over workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramReading {
    /// Samples per bucket, not cumulative; the last is the overflow (`+Inf`) bucket.
    pub counts: [u64; BUCKETS],
    pub sum_micros: u64,
}

impl HistogramReading {
    /// Samples in all buckets. Computed from the buckets rather than kept apart, so that the
    /// `+Inf` bucket and `_count` always agree.
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |n, c| n.wrapping_add(*c))
    }

    pub fn merge(&mut self, other: &HistogramReading) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.wrapping_add(*theirs);
        }
        self.sum_micros = self.sum_micros.wrapping_add(other.sum_micros);
    }
}

/// Status codes counted exactly (the `code` label): the IANA registry's codes that gateways
/// and their backends send (RFC 9110 §15 and the registry's later additions). Any other code
/// counts in its class's `other` slot.
pub const CODES: [u16; 52] = [
    100, 101, 103, //
    200, 201, 202, 203, 204, 205, 206, 207, //
    300, 301, 302, 303, 304, 307, 308, //
    400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421,
    422, 425, 426, 428, 429, 431, 451, //
    500, 501, 502, 503, 504, 505, 507, 511,
];

/// Why an integration failed (the `cause` label): the upstream could not be connected to
/// (refused, unreachable, TLS handshake), did not answer in time, closed or reset the
/// connection mid-exchange, or answered something that is not a valid response.
pub const UPSTREAM_CAUSES: [&str; 4] = ["connect", "timeout", "reset", "bad_response"];

/// Counting slots: one per [`CODES`] entry, then one `other` slot per class (`1xx`..`5xx`).
pub const CODE_SLOTS: usize = CODES.len() + 5;

/// The code of slot `i`, or `None` for a class's `other` slot.
pub fn slot_code(i: usize) -> Option<u16> {
    CODES.get(i).copied()
}

/// The class (0 for 1xx .. 4 for 5xx) slot `i` counts in.
pub fn slot_class(i: usize) -> usize {
    match slot_code(i) {
        Some(code) => usize::from(code / 100 - 1),
        None => i - CODES.len(),
    }
}

/// Slot per status 0..600 (`u8::MAX`: not a status), computed at compile time so that the
/// hot path is one table load.
const SLOT_OF: [u8; 600] = {
    let mut t = [u8::MAX; 600];
    let mut status = 100;
    while status < 600 {
        t[status] = (CODES.len() + status / 100 - 1) as u8;
        status += 1;
    }
    let mut i = 0;
    while i < CODES.len() {
        t[CODES[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// One route's counters on one worker.
///
/// Aligned to 128 bytes (two cache lines: the adjacent-line prefetcher pulls pairs) because the
/// counters of different workers sit side by side in one slice and each worker writes its own:
/// sharing a line would make every request bounce it between cores.
#[repr(align(128))]
pub struct RouteCounters {
    requests: AtomicU64,
    /// Requests refused by a throttle (429 `THROTTLED`).
    throttled: AtomicU64,
    /// Requests refused by a usage plan quota (429 `QUOTA_EXCEEDED`).
    quota_exceeded: AtomicU64,
    /// Requests answered from the stage cache (AWS `CacheHitCount`) and requests the cache
    /// could have answered but sent to the integration (AWS `CacheMissCount`).
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Responses per [`CODE_SLOTS`] slot (classes are summed from them when read).
    by_code: [AtomicU64; CODE_SLOTS],
    /// Request bytes read (head and body) and response bytes written (head and body).
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Integration failures by [`UPSTREAM_CAUSES`] index.
    upstream_errors: [AtomicU64; UPSTREAM_CAUSES.len()],
    latency: Histogram,
    integration_latency: Histogram,
}

impl Default for RouteCounters {
    fn default() -> RouteCounters {
        RouteCounters {
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            quota_exceeded: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            by_code: std::array::from_fn(|_| AtomicU64::new(0)),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            upstream_errors: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: Histogram::default(),
            integration_latency: Histogram::default(),
        }
    }
}

impl RouteCounters {
    /// Called once per request by the worker that served it. `integration_micros` is `None`
    /// when no integration ran (refusals before the integration, cache hits and the like).
    ///
    /// A status outside 100..=599 counts as a request but in no class.
    #[inline]
    pub fn record(&self, status: u16, latency_micros: u64, integration_micros: Option<u64>) {
        self.requests.fetch_add(1, Relaxed);
        let slot = SLOT_OF.get(usize::from(status)).copied().unwrap_or(u8::MAX);
        if let Some(count) = self.by_code.get(usize::from(slot)) {
            count.fetch_add(1, Relaxed);
        }
        self.latency.record_micros(latency_micros);
        if let Some(micros) = integration_micros {
            self.integration_latency.record_micros(micros);
        }
    }

    /// Counts a request a throttle refused (it is also recorded with its 429).
    #[inline]
    pub fn count_throttled(&self) {
        self.throttled.fetch_add(1, Relaxed);
    }

    /// Counts a request's bytes: read from the client, written to it.
    #[inline]
    pub fn count_bytes(&self, bytes_in: u64, bytes_out: u64) {
        self.bytes_in.fetch_add(bytes_in, Relaxed);
        self.bytes_out.fetch_add(bytes_out, Relaxed);
    }

    /// Counts an integration failure of cause `cause` ([`UPSTREAM_CAUSES`] index).
    #[inline]
    pub fn count_upstream_error(&self, cause: usize) {
        if let Some(c) = self.upstream_errors.get(cause) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Counts a request a usage plan quota refused.
    #[inline]
    pub fn count_quota_exceeded(&self) {
        self.quota_exceeded.fetch_add(1, Relaxed);
    }

    /// Counts a request answered from the stage cache.
    #[inline]
    pub fn count_cache_hit(&self) {
        self.cache_hits.fetch_add(1, Relaxed);
    }

    /// Counts a cacheable request that went to the integration.
    #[inline]
    pub fn count_cache_miss(&self) {
        self.cache_misses.fetch_add(1, Relaxed);
    }

    pub fn read(&self) -> RouteReading {
        let by_code: [u64; CODE_SLOTS] = std::array::from_fn(|i| self.by_code[i].load(Relaxed));
        let mut by_class = [0u64; 5];
        for (i, n) in by_code.iter().enumerate() {
            by_class[slot_class(i)] += n;
        }
        RouteReading {
            requests: self.requests.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
            quota_exceeded: self.quota_exceeded.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            by_class,
            by_code,
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            upstream_errors: std::array::from_fn(|i| self.upstream_errors[i].load(Relaxed)),
            latency: self.latency.read(),
            integration_latency: self.integration_latency.read(),
        }
    }
}

/// A route's counters at one moment, or merged over workers.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteReading {
    pub requests: u64,
    /// Requests refused by a throttle (429 `THROTTLED`).
    pub throttled: u64,
    /// Requests refused by a usage plan quota (429 `QUOTA_EXCEEDED`).
    pub quota_exceeded: u64,
    /// Requests answered from the stage cache (AWS `CacheHitCount`).
    pub cache_hits: u64,
    /// Cacheable requests sent to the integration (AWS `CacheMissCount`).
    pub cache_misses: u64,
    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub by_class: [u64; 5],
    /// Responses per code slot ([`slot_code`] names each).
    pub by_code: [u64; CODE_SLOTS],
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// By [`UPSTREAM_CAUSES`] index.
    pub upstream_errors: [u64; UPSTREAM_CAUSES.len()],
    pub latency: HistogramReading,
    pub integration_latency: HistogramReading,
}

impl Default for RouteReading {
    fn default() -> RouteReading {
        RouteReading {
            requests: 0,
            throttled: 0,
            quota_exceeded: 0,
            cache_hits: 0,
            cache_misses: 0,
            by_class: [0; 5],
            by_code: [0; CODE_SLOTS],
            bytes_in: 0,
            bytes_out: 0,
            upstream_errors: [0; UPSTREAM_CAUSES.len()],
            latency: HistogramReading::default(),
            integration_latency: HistogramReading::default(),
        }
    }
}

impl RouteReading {
    /// Responses with status `code` (an exact code of [`CODES`] or 504).
    pub fn code(&self, code: u16) -> u64 {
        SLOT_OF
            .get(usize::from(code))
            .and_then(|&s| slot_code(usize::from(s)).filter(|c| *c == code).map(|_| s))
            .map_or(0, |s| self.by_code[usize::from(s)])
    }

    pub fn merge(&mut self, other: &RouteReading) {
        self.requests = self.requests.wrapping_add(other.requests);
        self.throttled = self.throttled.wrapping_add(other.throttled);
        self.quota_exceeded = self.quota_exceeded.wrapping_add(other.quota_exceeded);
        self.cache_hits = self.cache_hits.wrapping_add(other.cache_hits);
        self.cache_misses = self.cache_misses.wrapping_add(other.cache_misses);
        for (mine, theirs) in self.by_class.iter_mut().zip(&other.by_class) {
            *mine = mine.wrapping_add(*theirs);
        }
        for (mine, theirs) in self.by_code.iter_mut().zip(&other.by_code) {
            *mine = mine.wrapping_add(*theirs);
        }
        self.bytes_in = self.bytes_in.wrapping_add(other.bytes_in);
        self.bytes_out = self.bytes_out.wrapping_add(other.bytes_out);
        for (mine, theirs) in self.upstream_errors.iter_mut().zip(&other.upstream_errors) {
            *mine = mine.wrapping_add(*theirs);
        }
        self.latency.merge(&other.latency);
        self.integration_latency.merge(&other.integration_latency);
    }
}
