//! The process's [`CounterBook`]: every cluster-scoped limit registers its counter here by
//! name while plans and key tables are built (a stage's route throttle from a config
//! snapshot, a usage plan's throttle and quota from the admin's key table), and the gossip
//! thread syncs and merges it. One book per process, so a counter survives every rebuild and
//! reload that keeps its name.
//!
//! The lock is taken while building and by the gossip thread, never per request: workers
//! hold the [`SharedCounter`]s registration hands out.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering::Relaxed},
};

use super::{
    ClusterBucket, ClusterRate, CounterBook, CounterKind, NodeKey, Secret, SharedCounter,
    counter_id,
};
use crate::usage::Limit;

// A std Mutex: taken while building plans and tables and by the gossip thread, never per
// request.
#[allow(clippy::disallowed_types)]
type Locked<T> = std::sync::Mutex<T>;

static SYNC_INTERVAL_NS: AtomicU64 = AtomicU64::new(0);

/// The process's book. Its node key is set when gossip starts ([`join`]); a cluster-scoped
/// limit on a node with no `cluster:` section counts this node alone.
#[allow(clippy::disallowed_types)]
pub fn book() -> std::sync::MutexGuard<'static, CounterBook> {
    static BOOK: OnceLock<Locked<CounterBook>> = OnceLock::new();
    BOOK.get_or_init(|| Locked::new(CounterBook::new(0)))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

static SECRET: OnceLock<Secret> = OnceLock::new();

/// Makes this process node `me` of a cluster that syncs every `sync_interval_ns` and shares
/// `secret`: counts made before stay this node's own, and entries restored for `me` become
/// its own count. Once per process (a second call changes only the interval).
pub fn join(me: NodeKey, sync_interval_ns: u64, secret: &[u8]) {
    book().set_me(me);
    SYNC_INTERVAL_NS.store(sync_interval_ns, Relaxed);
    let _ = SECRET.set(Secret::new(secret));
}

/// A tag of `value` the same on every node of this cluster and opaque to others (see
/// [`Secret::tag`]): how counter names refer to API key values, which are what is the same
/// across nodes (ids are drawn per node). Without a cluster, a tag under an empty secret.
pub fn tag(value: &str) -> String {
    SECRET
        .get_or_init(|| Secret::new(b""))
        .tag(value.as_bytes())
}

/// The sync interval of the running cluster (ns; 0 with none): cluster rates allow two
/// intervals of slack for lagging views.
pub fn sync_interval_ns() -> u64 {
    SYNC_INTERVAL_NS.load(Relaxed)
}

/// The shared counter of the cluster-wide limit named `name` (`stage/<api>/<stage>/<route>`,
/// `plan/<plan id>/<key id>/...`): the same one for every snapshot and key table, and the one
/// peers' usage for that name is merged into.
pub fn counter(name: &str, kind: CounterKind) -> Arc<SharedCounter> {
    book().register(counter_id(name), name, kind)
}

/// The shared counter whose identity across nodes is `identity` and which this node shows
/// as `display` (a name with this node's own ids in it).
pub fn counter_as(identity: &str, display: &str, kind: CounterKind) -> Arc<SharedCounter> {
    book().register(counter_id(identity), display, kind)
}

/// A cluster-wide throttle of `limit` on the counter named `name` (a closed limit refuses
/// everything), with the running cluster's sync slack.
pub fn bucket(name: &str, limit: &Limit) -> ClusterBucket {
    bucket_as(name, name, limit)
}

/// [`bucket`] on the counter [`counter_as`] gives.
pub fn bucket_as(identity: &str, display: &str, limit: &Limit) -> ClusterBucket {
    let rate = ClusterRate::from_limit(limit).map(|r| r.synced_every(sync_interval_ns()));
    let id = counter_id(identity);
    let mut book = book();
    let counter = book.register(id, display, CounterKind::Rate);
    book.set_rate(id, rate);
    ClusterBucket { rate, counter }
}
