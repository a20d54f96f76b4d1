//! A token bucket as GCRA (the generic cell rate algorithm) on one atomic: the rate limiter
//! that stage, route and API-key throttles are built from.
//!
//! The whole state is the "theoretical arrival time" (TAT) of the next request, in nanoseconds
//! of the caller's clock. A request at `now` conforms if the bucket is not overdrawn:
//! `max(TAT, now) - now <= (burst - 1) * T`, where `T = 1 / rate`; it then moves TAT on by `T`.
//! One compare-and-swap per decision, no lock, safe to share between cores (a global limit is
//! one `Gcra` in an `Arc`). The clock is passed in, so tests drive time by hand.

use std::sync::atomic::{AtomicU64, Ordering};

/// A rate and a burst, in the form the check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Nanoseconds between two requests at the steady rate (`T`).
    emission_ns: u64,
    /// How far ahead of `now` the TAT may run (`(burst - 1) * T`).
    tolerance_ns: u64,
}

impl Quota {
    /// `rate` requests per second on average, up to `burst` at once. `None` for a zero rate or
    /// burst (nothing could ever pass).
    pub fn new(rate_per_second: f64, burst: u32) -> Option<Quota> {
        if !(rate_per_second > 0.0 && rate_per_second.is_finite()) || burst == 0 {
            return None;
        }
        let emission_ns = ((1e9 / rate_per_second).round() as u64).max(1);
        Some(Quota {
            emission_ns,
            tolerance_ns: emission_ns.saturating_mul(u64::from(burst) - 1),
        })
    }
}

impl Quota {
    /// Nanoseconds between two requests at the steady rate.
    pub fn emission_ns(&self) -> u64 {
        self.emission_ns
    }

    /// Requests admitted at once.
    pub fn burst(&self) -> u32 {
        (self.tolerance_ns / self.emission_ns + 1).min(u64::from(u32::MAX)) as u32
    }
}

/// One bucket.
#[derive(Debug, Default)]
pub struct Gcra {
    tat: AtomicU64,
}

impl Gcra {
    pub fn new() -> Gcra {
        Gcra::default()
    }

    /// Forgets every token taken: the bucket is full again.
    pub fn reset(&self) {
        self.tat.store(0, Ordering::Relaxed);
    }

    /// Takes one token at `now_ns`: `Ok(())` if the request conforms, else `Err(ns)` with how
    /// long until one would (the `Retry-After` to give).
    #[inline]
    pub fn check(&self, quota: &Quota, now_ns: u64) -> Result<(), u64> {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ns);
            let ahead = start - now_ns;
            if ahead > quota.tolerance_ns {
                return Err(ahead - quota.tolerance_ns);
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + quota.emission_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let q = Quota::new(10.0, 5).expect("quota");
        let g = Gcra::new();
        let t0 = 1_000 * MS;
        for i in 0..5 {
            assert_eq!(g.check(&q, t0), Ok(()), "burst request {i}");
        }
        assert_eq!(
            g.check(&q, t0),
            Err(100 * MS),
            "the sixth waits one emission interval"
        );
        assert_eq!(g.check(&q, t0 + 99 * MS), Err(MS));
        assert_eq!(g.check(&q, t0 + 100 * MS), Ok(()));
        assert!(g.check(&q, t0 + 100 * MS).is_err());
        // Idle long enough and the whole burst is back, never more.
        let later = t0 + 10_000 * MS;
        assert_eq!((0..10).filter(|_| g.check(&q, later).is_ok()).count(), 5);
    }

    #[test]
    fn a_steady_stream_at_the_rate_always_passes() {
        let q = Quota::new(1000.0, 1).expect("quota");
        let g = Gcra::new();
        for i in 0..10_000u64 {
            assert_eq!(g.check(&q, i * MS), Ok(()), "request {i}");
        }
        assert!(
            g.check(&q, 9_999 * MS + MS / 2).is_err(),
            "twice the rate is refused"
        );
    }

    #[test]
    fn refuses_meaningless_quotas() {
        assert_eq!(Quota::new(0.0, 5), None);
        assert_eq!(Quota::new(-1.0, 5), None);
        assert_eq!(Quota::new(f64::NAN, 5), None);
        assert_eq!(Quota::new(10.0, 0), None);
        assert!(
            Quota::new(1e12, 1).is_some(),
            "faster than 1 per ns rounds to 1 ns"
        );
    }

    #[test]
    fn shared_between_threads_it_never_lets_more_than_burst_plus_rate_through() {
        let q = Quota::new(100.0, 50).expect("quota");
        let g = Arc::new(Gcra::new());
        // Four threads at the same instants: over 1 s of clock, at most 50 + 100 pass.
        let passed: usize = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    (0..1000u64).filter(|i| g.check(&q, i * MS).is_ok()).count()
                })
            })
            .map(|t| t.join().expect("thread"))
            .sum();
        assert!(passed <= 150, "{passed} passed");
        assert!(
            passed >= 140,
            "{passed} passed: contention must not lose tokens either"
        );
    }
}
