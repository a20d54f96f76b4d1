//! Metrics kept per core and merged when scraped.
//!
//! Every worker owns one slot in each slice of counters handed out here and is the only thread
//! that writes it, so recording is a few `Relaxed` atomic adds on cache lines no other core
//! touches. The control plane owns the [`MetricsRegistry`]: building a config snapshot asks it
//! for each route's per-worker counters ([`MetricsRegistry::series`]), and a scrape reads and
//! sums all slots ([`MetricsRegistry::read`]). Reading only loads, so a scrape never slows the
//! data plane.
//!
//! - [`counters`]: one route's counters on one worker, and histograms (the hot path).
//!
//! Nothing here does I/O or reads the clock: callers pass latencies in microseconds. Nothing
//! here formats the exposition either; that is the admin crate's job.

mod counters;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub use counters::{
    BUCKETS, CODE_SLOTS, CODES, Histogram, HistogramReading, LATENCY_BOUNDS_MICROS,
    LATENCY_BOUNDS_SECONDS, RouteCounters, RouteReading, UPSTREAM_CAUSES, slot_class, slot_code,
};

/// Per-worker gauges, written by that worker.
///
/// Aligned like [`RouteCounters`], for the same reason: workers' gauges sit side by side.
#[derive(Default)]
#[repr(align(128))]
pub struct WorkerGauges {
    /// Client connections open on this worker.
    pub connections: AtomicU64,
    /// Generation of the config snapshot this worker serves with.
    pub config_generation: AtomicU64,
    /// TLS handshakes completed on `https://` listeners, by [`HANDSHAKE_OUTCOMES`] index.
    pub tls_handshakes: [AtomicU64; HANDSHAKE_OUTCOMES.len()],
    /// Client connections this worker accepted.
    pub accepted: AtomicU64,
}

/// The outcomes a client's TLS handshake is counted under (the metric's `result` label):
/// completed in full or resumed, or why it failed.
pub const HANDSHAKE_OUTCOMES: [&str; 8] = [
    "full",
    "resumed",
    "closed",
    "plain_http",
    "not_tls",
    "unknown_name",
    "client_certificate",
    "refused",
];

/// Which route a series counts: names as the config spells them (`GET /users/{id}`,
/// `$default`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub api: String,
    pub stage: String,
    pub route: String,
}

/// The registry of every series' per-worker counters. Owned and mutated by the control plane
/// only (wrap it as the caller needs); workers hold just the `Arc`s it hands out.
pub struct MetricsRegistry {
    workers: usize,
    // A BTreeMap so that a reading comes out sorted by key without a sort per scrape.
    series: BTreeMap<SeriesKey, Arc<[RouteCounters]>>,
    unrouted: Arc<[RouteCounters]>,
    gauges: Arc<[WorkerGauges]>,
}

impl MetricsRegistry {
    pub fn new(workers: usize) -> Self {
        MetricsRegistry {
            workers,
            series: BTreeMap::new(),
            unrouted: per_worker(workers),
            gauges: (0..workers).map(|_| WorkerGauges::default()).collect(),
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// One `RouteCounters` per worker for this series (index = worker), created on first use.
    /// The same key returns the same counters across config versions, so counts survive a
    /// reload that keeps the route.
    pub fn series(&mut self, key: SeriesKey) -> Arc<[RouteCounters]> {
        let workers = self.workers;
        self.series
            .entry(key)
            .or_insert_with(|| per_worker(workers))
            .clone()
    }

    /// Counters for requests that matched no route or were refused before routing (400, 404,
    /// 408, 413, 431 ...), one per worker.
    pub fn unrouted(&self) -> Arc<[RouteCounters]> {
        self.unrouted.clone()
    }

    /// One `WorkerGauges` per worker (index = worker).
    pub fn gauges(&self) -> Arc<[WorkerGauges]> {
        self.gauges.clone()
    }

    /// Forgets series not in `live`. Called after a new config is applied, so that deleted
    /// routes do not pile up. Workers still serving an older snapshot keep their `Arc`s and
    /// may go on counting into them, but those counts are no longer read; a route added back
    /// later starts again from zero, which Prometheus treats as a counter reset.
    pub fn retain(&mut self, live: &HashSet<SeriesKey>) {
        self.series.retain(|key, _| live.contains(key));
    }

    /// Everything, summed over workers; series sorted by key.
    pub fn read(&self) -> MetricsReading {
        MetricsReading {
            series: self
                .series
                .iter()
                .map(|(key, counters)| (key.clone(), merged(counters)))
                .collect(),
            unrouted: merged(&self.unrouted),
            workers: self
                .gauges
                .iter()
                .map(|g| WorkerReading {
                    connections: g.connections.load(Relaxed),
                    config_generation: g.config_generation.load(Relaxed),
                    tls_handshakes: g.tls_handshakes.each_ref().map(|c| c.load(Relaxed)),
                    accepted: g.accepted.load(Relaxed),
                })
                .collect(),
        }
    }
}

fn per_worker(workers: usize) -> Arc<[RouteCounters]> {
    (0..workers).map(|_| RouteCounters::default()).collect()
}

fn merged(counters: &[RouteCounters]) -> RouteReading {
    let mut total = RouteReading::default();
    for worker in counters {
        total.merge(&worker.read());
    }
    total
}

/// All metrics at one moment, summed over workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsReading {
    /// Sorted by key.
    pub series: Vec<(SeriesKey, RouteReading)>,
    pub unrouted: RouteReading,
    /// Index = worker.
    pub workers: Vec<WorkerReading>,
}

/// One worker's gauges at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerReading {
    pub connections: u64,
    pub config_generation: u64,
    /// By [`HANDSHAKE_OUTCOMES`] index.
    pub tls_handshakes: [u64; HANDSHAKE_OUTCOMES.len()],
    /// Client connections accepted.
    pub accepted: u64,
}
