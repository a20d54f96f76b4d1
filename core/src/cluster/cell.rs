//! The hot-path half of a cluster-wide limit: one [`SharedCounter`] per limited thing (a
//! stage's route throttle, a key's usage-plan quota), shared by every worker and the gossip
//! thread. A request touches only its atomics: this node's own count, the sum of the peers'
//! counts as last merged by the gossip thread, and (for rates) the bucket's base time. No
//! lock, no allocation, no message per request.
//!
//! Rates are a cumulative token bucket over the summed counters. With `C` requests admitted
//! by the whole cluster (as this node sees it), emission interval `T = 1 / rate` and a base
//! time `B`, the next request conforms when `B + C * T <= now`. `B` only moves forward: to
//! `now - (C + burst - 1) * T` when that is later, which caps the credit an idle bucket
//! holds at `burst` requests. Under load `B` stays put and `C` may grow by exactly one per
//! `T`, so the long-run rate is exact whatever the sync delay; a delay only lets each node
//! admit what the others admitted but it has not heard of yet.
//!
//! The idle cap is judged on a view that lags by up to a sync interval plus the link delay:
//! between two merges a node sees the cluster grow only by its own admissions and would take
//! the peers' unseen share for idleness, moving `B` on and losing credit on every sync. So
//! the cap allows `slack_ns` more (two sync intervals' worth of the rate): after a true idle
//! spell the cluster may take that much more than the burst at once, and never less than
//! its rate under load.
//!
//! Between merges a node would otherwise see the cluster grow only by its own admissions and
//! admit the whole rate by itself, as would every other node: the cluster would take `N`
//! times the rate until the next merge and then owe it, a saw tooth of `(N-1)/N x rate x
//! delay` that a per-second count shows whenever the merges drift against the seconds (8%
//! at 100 ms in the simulation). So the view also guesses what each peer heard from lately
//! admitted since its word last grew: as many requests as this node admitted in that time,
//! times the peer's share, which is how busy the peer was against this node between its last
//! two words (its growth over this node's, at most one). Evenly loaded nodes then pace
//! themselves to their share between merges; a busy node beside quiet ones guesses little
//! for them; a merge replaces the guess by the peer's real count. The guess never
//! extrapolates a peer's rate, which would swing: a share above one is taken as one, so two
//! busy nodes settle at an even split. A peer that was quieter than guessed leaves credit
//! that the next merge returns (the bucket's base does not move for a guess), and a peer
//! that stopped is left out of the guess after a few syncs (see [`super::book`]).
//!
//! The debt is capped at [`MAX_DEBT_NS`]: when a view jumps far past the line (a healed
//! partition whose sides each admitted the whole rate), `B` moves back so the cluster pays
//! back at most one second of its rate instead of refusing for as long as the split lasted.

use std::sync::atomic::{
    AtomicI64, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

use crate::usage::slots::{pack, unpack};

/// How far past the line a cluster's view may be before the excess is forgiven (ns).
pub const MAX_DEBT_NS: i64 = 1_000_000_000;

/// A rate and a burst for a cluster-wide throttle, in the form the check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterRate {
    /// Nanoseconds between two requests at the steady rate (`T`).
    pub emission_ns: u64,
    /// Requests admitted at once after an idle spell (at least 1).
    pub burst: u32,
    /// Extra credit the idle cap allows for views that lag, in ns of the rate (see the
    /// module docs); 0 on a lone node.
    pub slack_ns: u64,
}

impl ClusterRate {
    /// `rate` requests per second over the whole cluster, up to `burst` at once. `None` for a
    /// zero or meaningless rate or a zero burst (nothing could pass).
    pub fn new(rate_per_second: f64, burst: u32) -> Option<ClusterRate> {
        if !(rate_per_second > 0.0 && rate_per_second.is_finite()) || burst == 0 {
            return None;
        }
        Some(ClusterRate {
            emission_ns: ((1e9 / rate_per_second).round() as u64).max(1),
            burst,
            slack_ns: 0,
        })
    }

    /// The same, for counters synced every `interval_ns`: the idle cap allows two intervals
    /// of slack.
    pub fn synced_every(self, interval_ns: u64) -> ClusterRate {
        ClusterRate {
            slack_ns: interval_ns.saturating_mul(2),
            ..self
        }
    }
}

impl ClusterRate {
    /// The credit an idle bucket holds, in requests: the burst and the slack.
    pub fn fresh_credit(&self) -> u64 {
        u64::from(self.burst) + self.slack_ns / self.emission_ns.max(1)
    }

    /// `T` in nanoseconds as the bucket's signed arithmetic takes it.
    #[inline]
    fn emission(&self) -> i64 {
        self.emission_ns.min(i64::MAX as u64) as i64
    }

    /// The same rate and burst as a checked throttle; `None` for a closed one.
    pub fn from_limit(limit: &crate::usage::Limit) -> Option<ClusterRate> {
        match limit {
            crate::usage::Limit::Rate(q) => Some(ClusterRate {
                emission_ns: q.emission_ns(),
                burst: q.burst(),
                slack_ns: 0,
            }),
            crate::usage::Limit::Closed => None,
        }
    }
}

/// A cluster-wide throttle as a request step holds it: its rate (`None`: closed, nothing
/// passes) and the shared counter, registered by name so every snapshot gets the same one.
#[derive(Debug, Clone)]
pub struct ClusterBucket {
    pub rate: Option<ClusterRate>,
    pub counter: std::sync::Arc<SharedCounter>,
}

impl ClusterBucket {
    /// Takes one request at `now_ns`: as [`crate::usage::Limit::take`].
    #[inline]
    pub fn take(&self, now_ns: u64) -> Result<(), Option<u64>> {
        match &self.rate {
            Some(r) => self.counter.take_rate(r, now_ns).map_err(Some),
            None => Err(None),
        }
    }
}

/// One cluster-wide counter as this node holds it.
///
/// For a rate, `own` and `peers` are cumulative request counts (they never reset). For a
/// quota, each is a packed word `window << 32 | count` (as [`crate::usage::slots`] packs its
/// counters), so a new window starts from zero without a reset pass and a word of an older
/// window reads as zero.
#[derive(Debug)]
pub struct SharedCounter {
    /// What this node admitted: moved by workers only (and raised by the gossip thread when a
    /// peer remembers more of this node's own count than it does, after a restart).
    own: AtomicU64,
    /// The sum over the other nodes, as last merged; written by the gossip thread only.
    peers: AtomicU64,
    /// A rate's view of the peers with the guess of their unseen requests (see the module
    /// docs): the guess's weight `W` (the sum of the guessed peers' shares, in 64ths) in the
    /// top 14 bits, and below them, as a 50-bit two's complement number, `peers` less `W`
    /// times this node's own count when each of those peers' words last grew. The view is
    /// then `own + W x own + offset`. Written by the gossip thread after `peers`, read
    /// before it.
    view: AtomicU64,
    /// The rate bucket's base time `B` in nanoseconds of the caller's clock.
    base: AtomicI64,
}

impl Default for SharedCounter {
    fn default() -> Self {
        SharedCounter {
            own: AtomicU64::new(0),
            peers: AtomicU64::new(0),
            view: AtomicU64::new(0),
            base: AtomicI64::new(i64::MIN),
        }
    }
}

impl SharedCounter {
    pub fn new() -> SharedCounter {
        SharedCounter::default()
    }

    /// Takes one request from a cluster-wide rate at `now_ns` (the buckets' monotonic clock):
    /// `Ok(())` if the cluster total as seen here, with the guess of the peers' unseen
    /// requests, conforms, else `Err(ns)` until it would.
    #[inline]
    pub fn take_rate(&self, rate: &ClusterRate, now_ns: u64) -> Result<(), u64> {
        let now = now_ns.min(i64::MAX as u64) as i64;
        let t = rate.emission();
        let mut own = self.own.load(Relaxed);
        let view = self.view.load(Acquire);
        let peers = self.peers.load(Acquire);
        let (weight, offset) = unpack_view(view);
        loop {
            let total = viewed_total(own, weight, offset);
            let base = self.base.load(Relaxed);
            let b = base.max(idle_floor(rate, now, total));
            let next = b.saturating_add(mul(total, t));
            if next > now {
                // Only what the peers really counted is forgiven, never the guess.
                let debt = b.saturating_add(mul(own.saturating_add(peers), t)) - now;
                if debt > MAX_DEBT_NS {
                    self.base.fetch_min(b - (debt - MAX_DEBT_NS), Relaxed);
                    return Err(MAX_DEBT_NS as u64);
                }
                return Err((next - now) as u64);
            }
            match self
                .own
                .compare_exchange_weak(own, own + 1, Relaxed, Relaxed)
            {
                Ok(_) => {
                    if b > base {
                        self.base.fetch_max(b, Relaxed);
                    }
                    return Ok(());
                }
                Err(current) => own = current,
            }
        }
    }

    /// Moves a rate's base on to the idle cap's floor at `now_ns` if that is later, as taking
    /// a request would, without taking one: the gossip thread does this every sync for the
    /// rates this node is not admitting on, so the base follows the cluster's use while the
    /// peers do the admitting. Otherwise a node that admitted nothing for a while would take
    /// an old base for an idle bucket and, once load moved to it, admit the burst and the
    /// slack at once while the cluster was already at its limit.
    pub fn touch_rate(&self, rate: &ClusterRate, now_ns: u64) {
        let now = now_ns.min(i64::MAX as u64) as i64;
        self.base
            .fetch_max(idle_floor(rate, now, self.rate_view()), Relaxed);
    }

    /// Takes `requests` that this node has just learned of but that were admitted in the
    /// cluster's past (its own count learned back after a restart, a peer's count heard for
    /// the first time) into a rate's bucket without owing for them: the base moves back by
    /// their time, so the line stays where it was (gossip thread only).
    pub fn count_as_past(&self, requests: u64, rate: &ClusterRate) {
        let t = rate.emission();
        let _ = self.base.fetch_update(Relaxed, Relaxed, |b| {
            (b != i64::MIN).then(|| b.saturating_sub(mul(requests, t)))
        });
    }

    /// Counts one request in quota window `window` if the cluster's total there, as seen
    /// here, is under `limit`; returns whether it was.
    #[inline]
    pub fn take_quota(&self, window: u32, limit: u32) -> bool {
        let mut word = self.own.load(Relaxed);
        loop {
            let mine = count_in(word, window);
            let peers = count_in(self.peers.load(Acquire), window);
            if u64::from(mine) + u64::from(peers) >= u64::from(limit) {
                return false;
            }
            match self
                .own
                .compare_exchange_weak(word, pack(window, mine + 1), Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(current) => word = current,
            }
        }
    }

    /// This node's own word (a cumulative count, or a packed quota word).
    #[inline]
    pub fn own(&self) -> u64 {
        self.own.load(Relaxed)
    }

    /// The cluster total a rate is judged on here: this node's count, the peers' as last
    /// merged and the guess of what they admitted since.
    pub fn rate_view(&self) -> u64 {
        let (weight, offset) = unpack_view(self.view.load(Acquire));
        viewed_total(self.own(), weight, offset)
    }

    /// The peers' word as last merged.
    pub fn peers(&self) -> u64 {
        self.peers.load(Relaxed)
    }

    /// The cluster's total in quota window `window`, as seen here.
    pub fn quota_total(&self, window: u32) -> u64 {
        u64::from(count_in(self.own(), window)) + u64::from(count_in(self.peers(), window))
    }

    /// Raises this node's own word to `word` if it is behind (both orders agree: a later
    /// window, or more requests in the same one, is a larger word).
    pub fn raise_own(&self, word: u64) {
        self.own.fetch_max(word, Relaxed);
    }

    /// Adds `n` to a rate's own count (gossip thread only: a count from before a restart).
    pub fn add_own(&self, n: u64) {
        self.own.fetch_add(n, Relaxed);
    }

    /// Publishes the peers' word (gossip thread only), with no guess of their unseen
    /// requests.
    pub fn set_peers(&self, word: u64) {
        self.set_rate_peers(word, 0, 0);
    }

    /// Publishes a rate's peers' sum `peers` (gossip thread only) with the guess of their
    /// unseen requests: peers guessed for with shares summing to `weight` (in
    /// [`SHARE_ONE`]ths, at most 255 whole peers), whose words last grew when this node's own
    /// count was, weighted by the same shares, `marks` (in [`SHARE_ONE`]ths of a request).
    pub fn set_rate_peers(&self, peers: u64, weight: u64, marks: u128) {
        self.peers.store(peers, Release);
        let weight = weight.min(VIEW_WEIGHT_MAX);
        let offset = (i128::from(peers) - (marks / u128::from(SHARE_ONE)) as i128)
            .clamp(-(1 << 49), (1 << 49) - 1);
        self.view
            .store(weight << 50 | (offset as u64 & VIEW_MASK), Release);
    }
}

/// A whole share (a peer guessed to admit as many as this node) in the view's fixed point.
pub const SHARE_ONE: u64 = 64;
const VIEW_WEIGHT_MAX: u64 = (1 << 14) - 1;
const VIEW_MASK: u64 = (1 << 50) - 1;

/// The guess's weight and the offset of a view word.
#[inline]
fn unpack_view(view: u64) -> (u64, i64) {
    (view >> 50, ((view << 14) as i64) >> 14)
}

/// `own + weight x own + offset`, clamped to `[own, u64::MAX]`.
#[inline]
fn viewed_total(own: u64, weight: u64, offset: i64) -> u64 {
    let total = i128::from(own)
        + i128::from(own) * i128::from(weight) / i128::from(SHARE_ONE)
        + i128::from(offset);
    total.clamp(i128::from(own), i128::from(u64::MAX)) as u64
}

#[inline]
fn count_in(word: u64, window: u32) -> u32 {
    match unpack(word) {
        (w, n) if w == window => n,
        _ => 0,
    }
}

/// The earliest base a rate's bucket may have at `now` with `total` requests counted: the
/// one that holds `burst` requests and the slack of credit, no more (ns).
#[inline]
fn idle_floor(rate: &ClusterRate, now: i64, total: u64) -> i64 {
    let t = rate.emission();
    let credit = total.saturating_add(u64::from(rate.burst) - 1);
    let slack = rate.slack_ns.min(i64::MAX as u64) as i64;
    now.saturating_sub(mul(credit, t)).saturating_sub(slack)
}

/// `n * t` in nanoseconds, saturating at `i64::MAX`.
#[inline]
fn mul(n: u64, t: i64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX).saturating_mul(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn alone_it_is_the_gcra_of_the_same_rate_and_burst() {
        let rate = ClusterRate::new(10.0, 5).expect("rate");
        let c = SharedCounter::new();
        let t0 = 1_000 * MS;
        for i in 0..5 {
            assert_eq!(c.take_rate(&rate, t0), Ok(()), "burst request {i}");
        }
        assert_eq!(c.take_rate(&rate, t0), Err(100 * MS));
        assert_eq!(c.take_rate(&rate, t0 + 99 * MS), Err(MS));
        assert_eq!(c.take_rate(&rate, t0 + 100 * MS), Ok(()));
        assert!(c.take_rate(&rate, t0 + 100 * MS).is_err());
        let later = t0 + 10_000 * MS;
        let passed = (0..10)
            .filter(|_| c.take_rate(&rate, later).is_ok())
            .count();
        assert_eq!(passed, 5, "an idle bucket holds the burst, never more");
    }

    #[test]
    fn peers_usage_takes_from_the_same_bucket() {
        let rate = ClusterRate::new(100.0, 10).expect("rate");
        let c = SharedCounter::new();
        let t0 = 5_000 * MS;
        assert_eq!(c.take_rate(&rate, t0), Ok(()));
        // The peers admitted 9 more meanwhile: the burst is spent.
        c.set_peers(9);
        assert_eq!(c.take_rate(&rate, t0), Err(10 * MS));
        assert_eq!(c.take_rate(&rate, t0 + 10 * MS), Ok(()));
    }

    #[test]
    fn a_restarted_clock_or_huge_counts_do_not_overflow() {
        let rate = ClusterRate::new(1e9, 1).expect("rate");
        let c = SharedCounter::new();
        c.set_peers(u64::MAX / 2);
        assert_eq!(c.take_rate(&rate, 0), Ok(()));
        let slow = ClusterRate::new(1e-3, u32::MAX).expect("rate");
        let c = SharedCounter::new();
        assert_eq!(c.take_rate(&slow, u64::MAX), Ok(()));
    }

    #[test]
    fn quotas_count_the_cluster_total_in_the_current_window() {
        let c = SharedCounter::new();
        c.set_peers(pack(7, 8));
        assert!(c.take_quota(7, 10));
        assert!(c.take_quota(7, 10));
        assert!(!c.take_quota(7, 10), "8 by the peers + 2 here = the limit");
        assert_eq!(c.quota_total(7), 10);
        // A new window: both words read as zero.
        assert!(c.take_quota(8, 10));
        assert_eq!(unpack(c.own()), (8, 1));
        c.raise_own(pack(8, 5));
        c.raise_own(pack(7, 50));
        assert_eq!(unpack(c.own()), (8, 5), "an older window never wins");
    }
}
