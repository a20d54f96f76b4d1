use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::*;

fn key(api: &str, stage: &str, route: &str) -> SeriesKey {
    SeriesKey {
        api: api.to_owned(),
        stage: stage.to_owned(),
        route: route.to_owned(),
    }
}

/// Counts per bucket with `n` samples at bucket `i` for each `(i, n)`.
fn buckets(at: &[(usize, u64)]) -> [u64; BUCKETS] {
    let mut counts = [0; BUCKETS];
    for &(i, n) in at {
        counts[i] = n;
    }
    counts
}

#[test]
fn micro_bounds_match_second_bounds() {
    for (micros, seconds) in LATENCY_BOUNDS_MICROS.iter().zip(LATENCY_BOUNDS_SECONDS) {
        assert_eq!(*micros as f64 / 1e6, seconds);
    }
    assert!(LATENCY_BOUNDS_MICROS.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(BUCKETS, LATENCY_BOUNDS_SECONDS.len() + 1);
}

#[test]
fn a_sample_on_a_bound_goes_in_that_bounds_bucket() {
    let h = Histogram::default();
    h.record_micros(500);
    h.record_micros(501);
    h.record_micros(0);
    let r = h.read();
    assert_eq!(r.counts, buckets(&[(0, 2), (1, 1)]));
    assert_eq!(r.sum_micros, 1001);
    assert_eq!(r.count(), 3);

    for (i, bound) in LATENCY_BOUNDS_MICROS.iter().enumerate() {
        let h = Histogram::default();
        h.record_micros(*bound);
        h.record_micros(bound + 1);
        h.record_micros(bound - 1);
        let expected = if i == 0 {
            buckets(&[(0, 2), (1, 1)])
        } else {
            buckets(&[(i, 2), (i + 1, 1)])
        };
        assert_eq!(h.read().counts, expected, "bound {bound} µs");
    }
}

#[test]
fn samples_above_ten_seconds_overflow_into_the_last_bucket() {
    let h = Histogram::default();
    h.record_micros(10_000_000);
    h.record_micros(10_000_001);
    h.record_micros(3_600_000_000);
    let r = h.read();
    assert_eq!(r.counts, buckets(&[(13, 1), (14, 2)]));
    assert_eq!(r.sum_micros, 3_620_000_001);
}

/// A code-slot array with these counts.
fn codes(counts: &[(u16, u64)]) -> [u64; CODE_SLOTS] {
    let mut out = [0; CODE_SLOTS];
    for (code, n) in counts {
        out[CODES
            .iter()
            .position(|c| c == code)
            .expect("a counted code")] = *n;
    }
    out
}

#[test]
fn status_classes() {
    let c = RouteCounters::default();
    for status in [100, 199, 200, 204, 301, 404, 429, 500, 599] {
        c.record(status, 1, None);
    }
    // Not a status class: counted as requests only.
    for status in [0, 99, 600, 999] {
        c.record(status, 1, None);
    }
    let r = c.read();
    assert_eq!(r.requests, 13);
    assert_eq!(r.by_class, [2, 2, 1, 2, 2]);
    assert_eq!(r.latency.count(), 13);
    // Exact codes, and the codes outside the table in their class's `other` slot.
    assert_eq!(
        (r.code(200), r.code(204), r.code(429), r.code(500)),
        (1, 1, 1, 1)
    );
    assert_eq!((r.code(199), r.code(599), r.code(418)), (0, 0, 0));
    let other = |class: usize| r.by_code[CODES.len() + class];
    assert_eq!((other(0), other(4)), (1, 1), "199 and 599");
    assert_eq!(r.by_code.iter().sum::<u64>(), 9);
}

#[test]
fn every_code_has_its_own_slot_in_its_class() {
    for (i, code) in CODES.iter().enumerate() {
        assert_eq!(slot_code(i), Some(*code));
        assert_eq!(slot_class(i), usize::from(code / 100 - 1));
        let c = RouteCounters::default();
        c.record(*code, 1, None);
        assert_eq!(c.read().code(*code), 1, "{code}");
    }
    assert!(CODES.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
}

#[test]
fn integration_latency_only_when_an_integration_ran() {
    let c = RouteCounters::default();
    c.record(200, 3_000, Some(2_000));
    c.record(403, 100, None);
    let r = c.read();
    assert_eq!(r.latency.count(), 2);
    assert_eq!(r.latency.sum_micros, 3_100);
    assert_eq!(r.integration_latency.counts, buckets(&[(2, 1)]));
    assert_eq!(r.integration_latency.sum_micros, 2_000);
}

#[test]
fn readings_merge_over_workers() {
    let mut registry = MetricsRegistry::new(3);
    let users = registry.series(key("shop", "prod", "GET /users"));
    users[0].record(200, 500, Some(400));
    users[0].record(200, 501, Some(450));
    users[1].record(404, 1_000, None);
    users[1].record(502, 30_000, Some(29_000));
    users[2].record(200, 20_000_000, Some(19_999_000));
    let unrouted = registry.unrouted();
    unrouted[2].record(404, 10, None);
    unrouted[0].record(431, 20, None);

    let reading = registry.read();
    assert_eq!(reading.series.len(), 1);
    let (k, r) = &reading.series[0];
    assert_eq!(*k, key("shop", "prod", "GET /users"));
    assert_eq!(
        *r,
        RouteReading {
            requests: 5,
            by_class: [0, 3, 0, 1, 1],
            by_code: codes(&[(200, 3), (404, 1), (502, 1)]),
            bytes_in: 0,
            bytes_out: 0,
            upstream_errors: [0; 4],
            throttled: 0,
            quota_exceeded: 0,
            cache_hits: 0,
            cache_misses: 0,
            latency: HistogramReading {
                counts: buckets(&[(0, 1), (1, 2), (6, 1), (14, 1)]),
                sum_micros: 500 + 501 + 1_000 + 30_000 + 20_000_000,
            },
            integration_latency: HistogramReading {
                counts: buckets(&[(0, 2), (6, 1), (14, 1)]),
                sum_micros: 400 + 450 + 29_000 + 19_999_000,
            },
        }
    );
    assert_eq!(
        reading.unrouted,
        RouteReading {
            requests: 2,
            by_class: [0, 0, 0, 2, 0],
            by_code: codes(&[(404, 1), (431, 1)]),
            bytes_in: 0,
            bytes_out: 0,
            upstream_errors: [0; 4],
            throttled: 0,
            quota_exceeded: 0,
            cache_hits: 0,
            cache_misses: 0,
            latency: HistogramReading {
                counts: buckets(&[(0, 2)]),
                sum_micros: 30,
            },
            integration_latency: HistogramReading::default(),
        }
    );
}

#[test]
fn bytes_and_upstream_causes_add_up() {
    let c = RouteCounters::default();
    c.count_bytes(100, 2_000);
    c.count_bytes(5, 0);
    c.count_upstream_error(0);
    c.count_upstream_error(3);
    c.count_upstream_error(3);
    c.count_upstream_error(99); // not a cause: ignored
    let mut r = c.read();
    assert_eq!((r.bytes_in, r.bytes_out), (105, 2_000));
    assert_eq!(r.upstream_errors, [1, 0, 0, 2]);
    r.merge(&c.read());
    assert_eq!((r.bytes_in, r.upstream_errors[3]), (210, 4));
}

#[test]
fn merging_readings_adds_everything() {
    let a = RouteCounters::default();
    let b = RouteCounters::default();
    a.record(200, 700, Some(600));
    b.record(500, 700, None);
    b.record(201, 2_000_000, Some(1));
    let mut total = a.read();
    total.merge(&b.read());
    assert_eq!(total.requests, 3);
    assert_eq!(total.by_class, [0, 2, 0, 0, 1]);
    assert_eq!(total.latency.counts, buckets(&[(1, 2), (11, 1)]));
    assert_eq!(total.latency.sum_micros, 2_001_400);
    assert_eq!(total.integration_latency.counts, buckets(&[(0, 1), (1, 1)]));
    assert_eq!(total.integration_latency.sum_micros, 601);
}

#[test]
fn the_same_key_returns_the_same_counters() {
    let mut registry = MetricsRegistry::new(4);
    let a = registry.series(key("shop", "prod", "GET /users"));
    let b = registry.series(key("shop", "prod", "GET /users"));
    let other = registry.series(key("shop", "test", "GET /users"));
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &other));
    assert_eq!(a.len(), 4);
    assert_eq!(registry.workers(), 4);
    assert!(Arc::ptr_eq(&registry.unrouted(), &registry.unrouted()));
    assert!(Arc::ptr_eq(&registry.gauges(), &registry.gauges()));
}

#[test]
fn retain_forgets_series_not_live() {
    let mut registry = MetricsRegistry::new(2);
    let kept = registry.series(key("shop", "prod", "GET /users"));
    let dropped = registry.series(key("shop", "prod", "DELETE /users/{id}"));
    dropped[1].record(204, 1, None);
    kept[0].record(200, 1, None);

    let live: HashSet<_> = [key("shop", "prod", "GET /users")].into();
    registry.retain(&live);

    let reading = registry.read();
    assert_eq!(reading.series.len(), 1);
    assert_eq!(reading.series[0].0, key("shop", "prod", "GET /users"));
    assert_eq!(reading.series[0].1.requests, 1);
    assert!(Arc::ptr_eq(
        &kept,
        &registry.series(key("shop", "prod", "GET /users"))
    ));
    // A route added back starts from zero.
    let again = registry.series(key("shop", "prod", "DELETE /users/{id}"));
    assert!(!Arc::ptr_eq(&dropped, &again));
    assert_eq!(again[1].read(), RouteReading::default());
}

#[test]
fn a_reading_is_sorted_by_key() {
    let mut registry = MetricsRegistry::new(1);
    for (api, route) in [("shop", "GET /b"), ("admin", "GET /z"), ("shop", "GET /a")] {
        registry.series(key(api, "prod", route));
    }
    let routes: Vec<_> = registry
        .read()
        .series
        .iter()
        .map(|(k, _)| format!("{} {}", k.api, k.route))
        .collect();
    assert_eq!(routes, ["admin GET /z", "shop GET /a", "shop GET /b"]);
}

#[test]
fn worker_gauges_are_read_per_worker() {
    let registry = MetricsRegistry::new(2);
    let gauges = registry.gauges();
    gauges[0].connections.store(7, Relaxed);
    gauges[1].connections.store(3, Relaxed);
    gauges[1].config_generation.store(2, Relaxed);
    assert_eq!(
        registry.read().workers,
        [
            WorkerReading {
                connections: 7,
                config_generation: 0,
                ..WorkerReading::default()
            },
            WorkerReading {
                connections: 3,
                config_generation: 2,
                ..WorkerReading::default()
            },
        ]
    );
}

#[test]
fn no_workers_reads_empty() {
    let mut registry = MetricsRegistry::new(0);
    assert!(registry.series(key("a", "b", "c")).is_empty());
    let reading = registry.read();
    assert_eq!(reading.series[0].1, RouteReading::default());
    assert!(reading.workers.is_empty());
}

#[test]
fn workers_counters_do_not_share_cache_lines() {
    assert_eq!(std::mem::align_of::<RouteCounters>(), 128);
    assert_eq!(std::mem::align_of::<WorkerGauges>(), 128);
    let mut registry = MetricsRegistry::new(3);
    let counters = registry.series(key("a", "b", "c"));
    for pair in counters.windows(2) {
        let (a, b) = (&pair[0] as *const _ as usize, &pair[1] as *const _ as usize);
        assert_eq!(a % 128, 0);
        assert!(b - a >= 128);
    }
}

#[test]
fn counts_from_threads_writing_their_own_slots_add_up() {
    let mut registry = MetricsRegistry::new(4);
    let counters = registry.series(key("shop", "prod", "GET /users"));
    std::thread::scope(|s| {
        for worker in 0..4 {
            let counters = &counters;
            s.spawn(move || {
                for i in 0..10_000u64 {
                    counters[worker].record(200, i, Some(i));
                }
            });
        }
    });
    let r = &registry.read().series[0].1;
    assert_eq!(r.requests, 40_000);
    assert_eq!(r.by_class[1], 40_000);
    assert_eq!(r.latency.count(), 40_000);
    assert_eq!(r.latency.sum_micros, 4 * (0..10_000).sum::<u64>());
}
