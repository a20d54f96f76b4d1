//! Stage caches by stable names, and each worker's own stores.
//!
//! A [`StageShared`] exists once per (api name, stage name) for as long as some published
//! snapshot has a plan caching on that stage: snapshots built while an older one still runs
//! get the same one, so a reload keeps the stores (DESIGN.md: state that outlives a reload is
//! keyed by names). It carries what the admin thread may do to every core's store without
//! touching it: bump the flush epoch (each worker empties its store when it sees the epoch
//! move, at its next lookup or tick), and read the sizes workers publish each tick.
//!
//! Each worker keeps its [`ResponseStore`]s in [`WorkerCaches`], one slot per stage; a store
//! made for other settings (capacity, mode, TTL ...) is replaced when a plan with new settings
//! first uses it, which drops its contents.

use std::{
    cell::RefCell,
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use rustc_hash::FxHashMap;
use turnpike_core::cache::ResponseStore;

use super::CachePlan;

/// One stage cache as every core and the admin see it.
pub struct StageShared {
    pub api: Box<str>,
    pub stage: Box<str>,
    /// Index of this stage's store in each worker's [`WorkerCaches`].
    slot: usize,
    /// Moved by each flush.
    epoch: AtomicU64,
    /// Per worker: entries and bytes held, as of its last tick.
    sizes: Box<[[AtomicU64; 2]]>,
}

impl StageShared {
    /// Empties this stage's cache on every core (each at its next lookup or tick, within one
    /// tick).
    pub fn flush(&self) {
        self.epoch.fetch_add(1, Relaxed);
    }

    /// Entries and bytes each worker holds, as of its last tick.
    pub fn sizes(&self) -> Vec<(u64, u64)> {
        self.sizes
            .iter()
            .map(|[n, b]| (n.load(Relaxed), b.load(Relaxed)))
            .collect()
    }
}

type Registry = FxHashMap<(Box<str>, Box<str>), Weak<StageShared>>;

// A std Mutex: taken while building a snapshot and by admin calls, never per request.
#[allow(clippy::disallowed_types)]
fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<std::sync::Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The stage cache of `api`/`stage`: the one that live snapshots already use, else a new one
/// (empty on every core). `workers`: how many workers there are.
pub fn stage(api: &str, stage: &str, workers: usize) -> Arc<StageShared> {
    let mut reg = registry();
    if let Some(live) = reg.get(&(api.into(), stage.into())).and_then(Weak::upgrade) {
        return live;
    }
    reg.retain(|_, w| w.strong_count() > 0);
    let mut used: Vec<usize> = reg
        .values()
        .filter_map(Weak::upgrade)
        .map(|s| s.slot)
        .collect();
    used.sort_unstable();
    let slot = used
        .iter()
        .enumerate()
        .find(|(i, s)| *i != **s)
        .map_or(used.len(), |(i, _)| i);
    let shared = Arc::new(StageShared {
        api: api.into(),
        stage: stage.into(),
        slot,
        epoch: AtomicU64::new(0),
        sizes: (0..workers.max(1)).map(|_| Default::default()).collect(),
    });
    reg.insert((api.into(), stage.into()), Arc::downgrade(&shared));
    shared
}

/// The live stage cache of `api`/`stage`, if a published snapshot caches on it.
pub fn find(api: &str, stage: &str) -> Option<Arc<StageShared>> {
    registry()
        .get(&(api.into(), stage.into()))
        .and_then(Weak::upgrade)
}

/// A worker's store of one stage.
struct LocalStore {
    store: ResponseStore,
    shared: Weak<StageShared>,
    epoch: u64,
    settings_id: u64,
}

/// One worker's stores, by [`StageShared`] slot.
pub struct WorkerCaches {
    worker: usize,
    stores: RefCell<Vec<Option<LocalStore>>>,
}

impl WorkerCaches {
    pub fn new(worker: usize) -> WorkerCaches {
        WorkerCaches {
            worker,
            stores: RefCell::new(Vec::new()),
        }
    }

    /// Runs `f` on this worker's store for `plan`'s stage: made (or emptied) first when there
    /// is none yet, it was made for other settings or another stage, or a flush happened
    /// since. Never call across an `.await` (the store is borrowed).
    #[inline]
    pub fn with<R>(&self, plan: &CachePlan, f: impl FnOnce(&mut ResponseStore) -> R) -> R {
        let shared = &plan.shared;
        let epoch = shared.epoch.load(Relaxed);
        let mut stores = self.stores.borrow_mut();
        if stores.len() <= shared.slot {
            stores.resize_with(shared.slot + 1, || None);
        }
        let local = &mut stores[shared.slot];
        let current = matches!(local, Some(l) if l.settings_id == plan.settings_id
            && std::ptr::eq(l.shared.as_ptr(), Arc::as_ptr(shared)));
        match local {
            Some(l) if current => {
                if l.epoch != epoch {
                    l.store.clear();
                    l.epoch = epoch;
                }
            }
            _ => {
                *local = Some(LocalStore {
                    store: ResponseStore::new(plan.stage.capacity_bytes),
                    shared: Arc::downgrade(shared),
                    epoch,
                    settings_id: plan.settings_id,
                });
            }
        }
        match local {
            Some(l) => f(&mut l.store),
            None => unreachable!("made above"),
        }
    }

    /// Once a tick: empties stores whose stage was flushed, drops those of stages no snapshot
    /// caches on any more, and publishes each store's size for the admin.
    pub fn tick(&self) {
        let mut stores = self.stores.borrow_mut();
        for local in stores.iter_mut() {
            let Some(l) = local else { continue };
            let Some(shared) = l.shared.upgrade() else {
                *local = None;
                continue;
            };
            let epoch = shared.epoch.load(Relaxed);
            if l.epoch != epoch {
                l.store.clear();
                l.epoch = epoch;
            }
            if let Some([n, b]) = shared.sizes.get(self.worker) {
                n.store(l.store.len() as u64, Relaxed);
                b.store(l.store.bytes(), Relaxed);
            }
        }
    }
}
