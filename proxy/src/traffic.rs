//! Traffic control on the data plane: the buckets route plans share across reloads, each
//! worker's view of the published API key table, and the clock the buckets run on. The
//! decisions themselves are `turnpike_core::usage::steps::admit`, sans-io.
//!
//! Buckets are keyed by stable names (the account, or api + stage + route key), never by a
//! position in a snapshot: a reload that changes nothing about a route keeps its bucket's
//! state, so a config change is never a way around a throttle.

use std::{
    cell::{Cell, RefCell},
    sync::{Arc, OnceLock},
    time::Instant,
};

use rustc_hash::FxHashMap;
use turnpike_core::{
    gcra::Gcra,
    usage::{ApiKeyTable, Bucket, Limit, UsageState},
};

/// The account-level bucket: one per process.
pub fn account_bucket(limit: Limit) -> Bucket {
    static ACCOUNT: OnceLock<Arc<Gcra>> = OnceLock::new();
    Bucket {
        limit,
        gcra: ACCOUNT.get_or_init(Default::default).clone(),
    }
}

/// The bucket of `route_key` on stage `stage` of API `api`, the same one every snapshot that
/// has the route gets. Takes a lock: call while building a snapshot, never per request.
// A std Mutex: build time only.
#[allow(clippy::disallowed_types)]
pub fn route_bucket(api: &str, stage: &str, route_key: &str, limit: Limit) -> Bucket {
    type Buckets = std::sync::Mutex<FxHashMap<(Box<str>, Box<str>, Box<str>), Arc<Gcra>>>;
    static ROUTES: OnceLock<Buckets> = OnceLock::new();
    let mut routes = ROUTES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let gcra = routes
        .entry((api.into(), stage.into(), route_key.into()))
        .or_default()
        .clone();
    Bucket { limit, gcra }
}

/// The start of the buckets' clock, shared by every worker.
fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Starts the buckets' clock; call before any worker serves.
pub fn start_clock() {
    epoch();
}

/// Nanoseconds since the buckets' clock started, of `at`.
#[inline]
pub fn mono_ns(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_nanos() as u64
}

/// A worker's hold on the published key table: one relaxed load per request that needs it.
pub struct LocalKeys {
    state: Arc<UsageState>,
    seen: Cell<u64>,
    table: RefCell<Arc<ApiKeyTable>>,
}

impl LocalKeys {
    pub fn new(state: Arc<UsageState>) -> LocalKeys {
        let seen = state.generation();
        LocalKeys {
            seen: Cell::new(seen),
            table: RefCell::new(state.table()),
            state,
        }
    }

    /// Runs `f` with the newest table and the usage slots.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&ApiKeyTable, &UsageState) -> R) -> R {
        let generation = self.state.generation();
        if generation != self.seen.get() {
            *self.table.borrow_mut() = self.state.table();
            self.seen.set(generation);
        }
        f(&self.table.borrow(), &self.state)
    }
}
