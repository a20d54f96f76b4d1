//! The API key table the data plane looks keys up in. Read-only once built: the control plane
//! builds a new table when keys or plans change and publishes it whole, as config snapshots
//! are published, so a lookup takes no lock.
//!
//! A key's value is never kept: each key is a 128-bit fingerprint, SipHash-1-3 of the value
//! under a random key drawn for each table. Finding a value that matches a stored fingerprint
//! without the table's hash key is a 2^128 search; telling keys apart by timing tells nothing
//! about any value. Entries sit in one open-addressing array (linear probing, at most 3/4
//! full), 32 bytes each, holding the key's first usage plan association inline, so a lookup
//! costs one cache line in the common case; the per-key usage state is in
//! [`super::UsageSlots`].
//!
//! Data-plane memory per key with one plan: an entry (32 bytes at a load of 3/8 to 3/4, so 43
//! to 85 bytes) and one slot (32 bytes), plus 32 bytes more per per-route throttle override of
//! its plan.

use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

use super::{Limit, QuotaSettings};

/// A key's association with a usage plan: the plan (index into the table's plans) and the
/// first of the plan's [`PlanLimits::slots_per_key`] consecutive slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyAssoc {
    pub plan: u32,
    pub slot: u32,
}

/// A usage plan's per-route throttles on one stage: (route key, limit).
pub type RouteLimits = Vec<(Box<str>, Limit)>;

/// A usage plan, as the data plane applies it.
#[derive(Debug, Clone)]
pub struct PlanLimits {
    /// The plan's throttle for each key, if it has one.
    pub throttle: Option<Limit>,
    pub quota: Option<QuotaSettings>,
    /// The API stages the plan covers.
    pub stages: Box<[PlanStage]>,
    slots_per_key: u32,
    /// Some of the plan's limits have `scope: cluster`: each association's cluster-wide
    /// counters are in the table ([`ApiKeyTable::cluster`]). False: nothing is looked up.
    pub cluster: bool,
}

/// An association's cluster-wide counters, for a plan with `scope: cluster` limits.
#[derive(Debug, Clone, Default)]
pub struct ClusterAssoc {
    /// By slot offset from the association's first slot (0: the plan's throttle, then the
    /// per-route overrides): the cluster-wide bucket of a throttle with `scope: cluster`,
    /// `None` for one that holds per node.
    pub throttles: Box<[Option<crate::cluster::ClusterBucket>]>,
    /// The quota's counter if the quota has `scope: cluster`.
    pub quota: Option<std::sync::Arc<crate::cluster::SharedCounter>>,
}

impl ClusterAssoc {
    /// The cluster-wide bucket of the throttle at `offset`, if it has one.
    #[inline]
    pub fn throttle(&self, offset: u32) -> Option<&crate::cluster::ClusterBucket> {
        self.throttles.get(offset as usize).and_then(Option::as_ref)
    }
}

/// One API stage of a usage plan, with the plan's per-route throttle overrides there.
#[derive(Debug, Clone)]
pub struct PlanStage {
    /// [`super::stage_uid`] of the API stage.
    pub stage: u32,
    /// Route key (`GET /pets`) -> the throttle each key gets on that route, in place of the
    /// plan's.
    pub routes: Box<[(Box<str>, Limit)]>,
    /// Offset of `routes[0]`'s bucket from the association's first slot.
    first_route_slot: u32,
}

impl PlanLimits {
    /// `stages`: (stage uid, per-route overrides). Each key associated with the plan needs
    /// [`PlanLimits::slots_per_key`] slots: one for the plan's bucket and counters, one per
    /// override.
    pub fn new(
        throttle: Option<Limit>,
        quota: Option<QuotaSettings>,
        stages: Vec<(u32, RouteLimits)>,
    ) -> PlanLimits {
        let mut next = 1u32;
        let stages = stages
            .into_iter()
            .map(|(stage, routes)| {
                let s = PlanStage {
                    stage,
                    first_route_slot: next,
                    routes: routes.into(),
                };
                next += s.routes.len() as u32;
                s
            })
            .collect();
        PlanLimits {
            throttle,
            quota,
            stages,
            slots_per_key: next,
            cluster: false,
        }
    }

    /// Consecutive slots each associated key needs.
    pub fn slots_per_key(&self) -> u32 {
        self.slots_per_key
    }

    /// The stage entry for `stage`, if the plan covers it.
    #[inline]
    pub fn stage(&self, stage: u32) -> Option<&PlanStage> {
        self.stages.iter().find(|s| s.stage == stage)
    }
}

impl PlanStage {
    /// The override for `route_key`, with its slot's offset from the association's first slot.
    #[inline]
    pub fn route(&self, route_key: &str) -> Option<(&Limit, u32)> {
        self.routes
            .iter()
            .position(|(k, _)| &**k == route_key)
            .map(|i| (&self.routes[i].1, self.first_route_slot + i as u32))
    }
}

const ENABLED: u16 = 1;
const HAS_FIRST: u16 = 2;

/// One key: 32 bytes, aligned to 32 so an entry never straddles two cache lines.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
struct Entry {
    /// Never `[0, 0]` for a key (the low word's lowest bit is forced to 1): that marks a free
    /// position.
    fp: [u64; 2],
    first: KeyAssoc,
    /// Further associations: `more[more_start..more_start + more_len]`.
    more_start: u32,
    more_len: u16,
    flags: u16,
}

/// The published key table.
pub struct ApiKeyTable {
    hash_key: [u64; 2],
    /// Capacity - 1 (a power of two minus one).
    mask: usize,
    entries: Box<[Entry]>,
    more: Box<[KeyAssoc]>,
    plans: Box<[PlanLimits]>,
    /// Association's first slot -> its cluster-wide counters (plans with `cluster` only).
    cluster: rustc_hash::FxHashMap<u32, ClusterAssoc>,
    len: usize,
}

impl std::fmt::Debug for ApiKeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyTable")
            .field("keys", &self.len)
            .field("plans", &self.plans.len())
            .finish_non_exhaustive()
    }
}

/// A key found in a table.
#[derive(Clone, Copy)]
pub struct KeyRef<'t> {
    table: &'t ApiKeyTable,
    entry: &'t Entry,
}

impl<'t> KeyRef<'t> {
    pub fn enabled(&self) -> bool {
        self.entry.flags & ENABLED != 0
    }

    /// The key's usage plan for API stage `stage` (there is at most one, as AWS enforces):
    /// the plan, its stage entry and the association's first slot.
    #[inline]
    pub fn plan_for(&self, stage: u32) -> Option<(&'t PlanLimits, &'t PlanStage, u32)> {
        let e = self.entry;
        let first = (e.flags & HAS_FIRST != 0).then_some(&e.first);
        let more = &self.table.more[e.more_start as usize..][..usize::from(e.more_len)];
        first.into_iter().chain(more).find_map(|a| {
            let plan = self.table.plans.get(a.plan as usize)?;
            plan.stage(stage).map(|s| (plan, s, a.slot))
        })
    }
}

impl ApiKeyTable {
    /// A table with no keys and no plans.
    pub fn empty() -> ApiKeyTable {
        ApiKeyTableBuilder::new(Vec::new()).build()
    }

    /// The key whose value is `value`, if the table has it.
    #[inline]
    pub fn find(&self, value: &[u8]) -> Option<KeyRef<'_>> {
        let fp = fingerprint(&self.hash_key, value);
        let mut i = fp[0] as usize & self.mask;
        loop {
            let e = &self.entries[i];
            if e.fp == fp {
                return Some(KeyRef {
                    table: self,
                    entry: e,
                });
            }
            if e.fp == [0, 0] {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Keys in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn plans(&self) -> &[PlanLimits] {
        &self.plans
    }

    /// The cluster-wide counters of the association whose first slot is `first`.
    #[inline]
    pub fn cluster(&self, first: u32) -> Option<&ClusterAssoc> {
        self.cluster.get(&first)
    }

    /// Bytes the table holds (entries and extra associations; plans are a few hundred bytes).
    pub fn bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
            + self.more.len() * std::mem::size_of::<KeyAssoc>()
    }
}

#[inline]
fn fingerprint(key: &[u64; 2], value: &[u8]) -> [u64; 2] {
    let mut h = SipHasher13::new_with_keys(key[0], key[1]);
    h.write(value);
    let h = h.finish128();
    [h.h1, h.h2 | 1]
}

/// Builds an [`ApiKeyTable`].
pub struct ApiKeyTableBuilder {
    hash_key: [u64; 2],
    plans: Vec<PlanLimits>,
    keys: Vec<Entry>,
    more: Vec<KeyAssoc>,
    cluster: rustc_hash::FxHashMap<u32, ClusterAssoc>,
}

impl ApiKeyTableBuilder {
    /// A builder whose keys may name `plans` by index. The fingerprint key is drawn from the
    /// operating system's random source.
    pub fn new(plans: Vec<PlanLimits>) -> ApiKeyTableBuilder {
        use ring::rand::SecureRandom;
        let mut seed = [0u8; 16];
        // The system's random source does not fail on Linux once booted; should it, keys
        // still work, only the fingerprints are predictable.
        let _ = ring::rand::SystemRandom::new().fill(&mut seed);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        ApiKeyTableBuilder {
            hash_key: [word(&seed[..8]), word(&seed[8..])],
            plans,
            keys: Vec::new(),
            more: Vec::new(),
            cluster: Default::default(),
        }
    }

    /// Room for `n` keys.
    pub fn reserve(&mut self, n: usize) {
        self.keys.reserve(n);
    }

    /// Adds a key. `assocs` name plans given to [`ApiKeyTableBuilder::new`]; associations
    /// naming a plan that does not exist are dropped.
    pub fn key(&mut self, value: &[u8], enabled: bool, assocs: &[KeyAssoc]) {
        let mut valid = assocs
            .iter()
            .filter(|a| (a.plan as usize) < self.plans.len());
        let mut e = Entry {
            fp: fingerprint(&self.hash_key, value),
            flags: if enabled { ENABLED } else { 0 },
            ..Entry::default()
        };
        if let Some(first) = valid.next() {
            e.first = *first;
            e.flags |= HAS_FIRST;
        }
        let start = self.more.len();
        self.more.extend(valid);
        e.more_start = start as u32;
        e.more_len = (self.more.len() - start).min(usize::from(u16::MAX)) as u16;
        self.keys.push(e);
    }

    /// Gives the association whose first slot is `first` its cluster-wide counters (its
    /// plan must have [`PlanLimits::cluster`] set for them to be used).
    pub fn cluster(&mut self, first: u32, counters: ClusterAssoc) {
        self.cluster.insert(first, counters);
    }

    /// The table. Two keys with the same value: the last one added wins.
    pub fn build(self) -> ApiKeyTable {
        let capacity = (self.keys.len() * 4 / 3 + 1).next_power_of_two().max(8);
        let mask = capacity - 1;
        let mut entries = vec![Entry::default(); capacity].into_boxed_slice();
        let mut len = 0;
        for k in self.keys {
            let mut i = k.fp[0] as usize & mask;
            loop {
                if entries[i].fp == [0, 0] {
                    len += 1;
                    entries[i] = k;
                    break;
                }
                if entries[i].fp == k.fp {
                    entries[i] = k;
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        ApiKeyTable {
            hash_key: self.hash_key,
            mask,
            entries,
            more: self.more.into(),
            plans: self.plans.into(),
            cluster: self.cluster,
            len,
        }
    }
}
