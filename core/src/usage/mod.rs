//! Traffic control, AWS's way: throttles (token buckets on shared atomics), API keys and the
//! usage plans that give them throttles and quotas (AWS API Gateway developer guide,
//! "Throttle requests to your REST APIs" and "Usage plans and API keys for REST APIs").
//!
//! - [`period`]: quota periods (`DAY`, `WEEK`, `MONTH` with AWS's offset), aligned in UTC.
//! - [`slots`]: per-key state (the plan's bucket, quota and daily usage counters) in an
//!   append-only array of atomics that outlives every key table, so a rebuilt table or a
//!   config reload never resets a counter.
//! - [`keys`]: the read-only API key table the data plane looks keys up in: a 128-bit keyed
//!   fingerprint per key, never the key's value.
//! - [`steps`]: the request steps (API key, throttles, quota) and [`steps::admit`], which runs
//!   them with an injected `now`.
//!
//! The control plane (the admin) owns keys and plans, builds tables and allocates slots; the
//! data plane only reads tables and updates atomics. Nothing here locks on the request path;
//! the only lock ([`stage_uid`]'s interner) is taken while building.

pub mod keys;
pub mod period;
pub mod slots;
pub mod steps;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::gcra::{Gcra, Quota};

pub use keys::{
    ApiKeyTable, ApiKeyTableBuilder, ClusterAssoc, KeyAssoc, PlanLimits, PlanStage, RouteLimits,
};
pub use period::{QuotaPeriod, QuotaSettings};
pub use slots::{Slot, SlotAllocator, UsageSlots};
pub use steps::{Now, Refusal, RefusalKind, RequestStep};

/// A throttle as written: `{ rate_limit: 50, burst_limit: 100 }` (AWS `ThrottlingRateLimit`,
/// requests per second on average, and `ThrottlingBurstLimit`, requests at once). A rate or
/// burst of 0 refuses every request, as it does on AWS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleFile {
    /// Requests per second (may be fractional: `0.5` is one every two seconds).
    pub rate_limit: f64,
    /// Requests admitted at once after an idle spell.
    pub burst_limit: u32,
    /// `cluster`: the limit holds for the whole cluster's traffic (see the README's
    /// "Cluster"); `node` (the default): for this node's alone.
    #[serde(default, skip_serializing_if = "crate::cluster::Scope::is_node")]
    pub scope: crate::cluster::Scope,
}

impl ThrottleFile {
    /// Checks the numbers: a finite, non-negative rate.
    pub fn check(&self) -> Result<Limit, String> {
        if !self.rate_limit.is_finite() || self.rate_limit < 0.0 {
            return Err(format!(
                "rate_limit must be a non-negative number of requests per second, not {}",
                self.rate_limit
            ));
        }
        Ok(Quota::new(self.rate_limit, self.burst_limit).map_or(Limit::Closed, Limit::Rate))
    }
}

/// A checked throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Rate(Quota),
    /// A rate or burst of 0: nothing passes.
    Closed,
}

impl Limit {
    /// Takes a token from `gcra` at `now_ns`. `Err(Some(ns))`: refused, a token frees up in
    /// `ns`; `Err(None)`: refused, and none ever will (a closed limit).
    #[inline]
    pub fn take(&self, gcra: &Gcra, now_ns: u64) -> Result<(), Option<u64>> {
        match self {
            Limit::Rate(q) => gcra.check(q, now_ns).map_err(Some),
            Limit::Closed => Err(None),
        }
    }
}

/// A throttle the data plane checks: its limits and the bucket, which is shared by every
/// worker and kept across reloads by whoever builds plans (keyed by stable names).
#[derive(Debug, Clone)]
pub struct Bucket {
    pub limit: Limit,
    pub gcra: Arc<Gcra>,
}

/// A stable number for an API stage, by its names: the same (api, stage) gets the same
/// number for the life of the process, whichever config or key table asks. Route plans and
/// usage plans meet on it, so a key table built between two config reloads still applies.
///
/// Takes a lock: call while building, never per request.
// A std Mutex: taken only while building plans and tables, never per request.
#[allow(clippy::disallowed_types)]
pub fn stage_uid(api: &str, stage: &str) -> u32 {
    type Names = std::sync::Mutex<FxHashMap<(Box<str>, Box<str>), u32>>;
    static NAMES: OnceLock<Names> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let next = names.len() as u32;
    *names.entry((api.into(), stage.into())).or_insert(next)
}

/// What the control plane publishes to the data plane: the current key table (swapped whole
/// on every change) and the slots every table points into. One per process, shared (`Arc`).
pub struct UsageState {
    pub slots: UsageSlots,
    table: arc_swap::ArcSwap<ApiKeyTable>,
    generation: std::sync::atomic::AtomicU64,
}

impl Default for UsageState {
    fn default() -> Self {
        UsageState::new()
    }
}

impl std::fmt::Debug for UsageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageState")
            .field("table", &self.table.load())
            .field("slots", &self.slots)
            .finish()
    }
}

impl UsageState {
    /// No keys yet.
    pub fn new() -> UsageState {
        UsageState {
            slots: UsageSlots::new(),
            table: arc_swap::ArcSwap::from_pointee(ApiKeyTable::empty()),
            generation: Default::default(),
        }
    }

    /// Makes `table` the one every worker uses from its next request on.
    pub fn publish(&self, table: ApiKeyTable) {
        self.table.store(Arc::new(table));
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The current table (a worker keeps it until [`UsageState::generation`] moves).
    pub fn table(&self) -> Arc<ApiKeyTable> {
        self.table.load_full()
    }

    /// Moves on every publish: one relaxed load tells a worker whether to reload.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }
}
