//! The in-memory model of API keys, usage plans and their associations: what the key table
//! is built from, and what the admin checks a write against (a value already taken, a key
//! that already has a plan for a stage). Loaded from the resource store at start and kept in
//! step with every committed write: the store is written first, then this, then a new table
//! is published, so a write the store refused changes nothing here.
//!
//! Only what the data plane needs is kept per key (its value, whether it is enabled, its
//! associations with their slots); names, descriptions, tags and times are read from the
//! store when shown. Laid out for the rebuild, which visits every key: keys in one dense
//! array (a delete moves the last key into the hole), a key's first association inline, plans
//! named by number, so a key costs one pointer chase (its value). About 200 bytes per key with
//! one plan, the two maps included.

use std::{collections::BTreeMap, sync::Arc};

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use turnpike_core::usage::{PlanLimits, SlotAllocator, UsageState};

use super::{records::UsagePlanRecord, table::plan_limits};

/// Keys, plans and associations, with the slots each association holds.
pub struct UsagePlans {
    pub(super) usage: Arc<UsageState>,
    pub(super) alloc: SlotAllocator,
    /// Every key, in no order.
    pub(super) keys: Vec<KeyState>,
    /// Key id -> position in `keys`.
    key_index: FxHashMap<Box<str>, u32>,
    /// Key value -> position in `keys`: values are unique.
    by_value: FxHashMap<Box<str>, u32>,
    /// Plans by number; `None` once deleted (numbers are not reused).
    pub(super) plans: Vec<Option<PlanState>>,
    /// Plan id -> number, in id order.
    pub(super) plan_ids: BTreeMap<Arc<str>, u32>,
}

/// One key as the data plane needs it.
#[derive(Debug)]
pub struct KeyState {
    pub id: Box<str>,
    pub value: Box<str>,
    pub enabled: bool,
    pub assocs: SmallVec<[Assoc; 1]>,
}

/// A key's association with a plan and the slots it holds: `slots` consecutive slots from
/// `slot` (the plan's [`PlanLimits::slots_per_key`]), kept for as long as the association
/// lives, so every rebuilt table points at the same counters.
#[derive(Debug, Clone, Copy)]
pub struct Assoc {
    /// The plan's number.
    pub plan: u32,
    pub slot: u32,
    pub slots: u32,
    /// The counter words (quota, day) last written to the store.
    pub saved: [u64; 2],
    /// For a cluster-scoped quota, the sum of the peers' words last written with them (a
    /// peer's word only grows, so a new sum means news to save).
    pub saved_peers: u64,
}

/// A plan, with the limits the data plane applies.
#[derive(Debug)]
pub struct PlanState {
    pub id: Arc<str>,
    pub record: UsagePlanRecord,
    pub limits: PlanLimits,
}

impl Default for UsagePlans {
    fn default() -> Self {
        UsagePlans::new(Arc::new(UsageState::new()))
    }
}

impl std::fmt::Debug for UsagePlans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsagePlans")
            .field("keys", &self.keys.len())
            .field("plans", &self.plan_ids.len())
            .finish()
    }
}

/// Why a key cannot join a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssocError {
    NoKey,
    NoPlan,
    /// The key is already in this plan.
    Already,
    /// The key's plan `plan` covers `stage` (`api:stage`) too: one plan per key per stage.
    Conflict {
        plan: String,
        stage: String,
    },
    /// Every slot is taken.
    NoSlots,
}

impl std::fmt::Display for AssocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssocError::NoKey => f.write_str("no such API key"),
            AssocError::NoPlan => f.write_str("no such usage plan"),
            AssocError::Already => f.write_str("the key is already in this usage plan"),
            AssocError::Conflict { plan, stage } => write!(
                f,
                "the key is in usage plan {plan}, which also covers {stage}: a key has one \
                 usage plan per API stage"
            ),
            AssocError::NoSlots => f.write_str("no usage slots left"),
        }
    }
}

impl UsagePlans {
    /// No keys, no plans, publishing into `usage`.
    pub fn new(usage: Arc<UsageState>) -> UsagePlans {
        UsagePlans {
            usage,
            alloc: SlotAllocator::new(),
            keys: Vec::new(),
            key_index: FxHashMap::default(),
            by_value: FxHashMap::default(),
            plans: Vec::new(),
            plan_ids: BTreeMap::new(),
        }
    }

    /// Where tables are published and slots live.
    pub fn usage(&self) -> &Arc<UsageState> {
        &self.usage
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Room for `n` more keys (an import).
    pub fn reserve(&mut self, n: usize) {
        self.keys.reserve(n);
        self.key_index.reserve(n);
        self.by_value.reserve(n);
    }

    pub fn key(&self, id: &str) -> Option<&KeyState> {
        self.key_index.get(id).map(|&i| &self.keys[i as usize])
    }

    /// The id of the key whose value is `value`.
    pub fn key_with_value(&self, value: &str) -> Option<&str> {
        self.by_value
            .get(value)
            .map(|&i| &*self.keys[i as usize].id)
    }

    /// The id of plan number `n`.
    pub(super) fn plan_id(&self, n: u32) -> &str {
        self.plans
            .get(n as usize)
            .and_then(Option::as_ref)
            .map_or("", |p| &p.id)
    }

    fn plan_number(&self, id: &str) -> Option<u32> {
        self.plan_ids.get(id).copied()
    }

    fn plan_state(&self, n: u32) -> Option<&PlanState> {
        self.plans.get(n as usize).and_then(Option::as_ref)
    }

    /// The plans a key is in, by id.
    pub fn plans_of(&self, key: &str) -> Vec<&str> {
        self.key(key)
            .map(|k| k.assocs.iter().map(|a| self.plan_id(a.plan)).collect())
            .unwrap_or_default()
    }

    pub fn plan(&self, id: &str) -> Option<&UsagePlanRecord> {
        self.plan_number(id)
            .and_then(|n| self.plan_state(n))
            .map(|p| &p.record)
    }

    /// Every plan, in id order.
    pub fn plans(&self) -> impl Iterator<Item = (&str, &UsagePlanRecord)> {
        self.plan_ids
            .values()
            .filter_map(|&n| self.plan_state(n))
            .map(|p| (&*p.id, &p.record))
    }

    /// Adds a key (or replaces one with the same id).
    pub fn insert_key(&mut self, id: &str, value: &str, enabled: bool) {
        self.remove_key(id);
        let at = self.keys.len() as u32;
        self.by_value.insert(value.into(), at);
        self.key_index.insert(id.into(), at);
        self.keys.push(KeyState {
            id: id.into(),
            value: value.into(),
            enabled,
            assocs: SmallVec::new(),
        });
    }

    pub fn set_enabled(&mut self, id: &str, enabled: bool) {
        if let Some(&i) = self.key_index.get(id) {
            self.keys[i as usize].enabled = enabled;
        }
    }

    /// Removes a key and its associations, releasing their slots.
    pub fn remove_key(&mut self, id: &str) -> bool {
        let Some(i) = self.key_index.remove(id) else {
            return false;
        };
        let k = self.keys.swap_remove(i as usize);
        self.by_value.remove(&k.value);
        for a in k.assocs {
            self.alloc.release(a.slot, a.slots);
        }
        // The last key moved into the hole.
        if let Some(moved) = self.keys.get(i as usize) {
            self.key_index.insert(moved.id.clone(), i);
            self.by_value.insert(moved.value.clone(), i);
        }
        true
    }

    /// Adds or replaces a plan. Associations of a replaced plan whose slot count changed
    /// (per-route overrides added or removed) move to new ranges, taking their quota and day
    /// counters along.
    pub fn put_plan(&mut self, id: &str, record: UsagePlanRecord) -> Result<(), AssocError> {
        let limits = plan_limits(&record);
        let n = limits.slots_per_key();
        let number = match self.plan_number(id) {
            Some(number) => number,
            None => {
                let number = self.plans.len() as u32;
                self.plans.push(None);
                self.plan_ids.insert(id.into(), number);
                number
            }
        };
        let slots = &self.usage.slots;
        for k in &mut self.keys {
            for a in k
                .assocs
                .iter_mut()
                .filter(|a| a.plan == number && a.slots != n)
            {
                let start = self.alloc.alloc(slots, n).ok_or(AssocError::NoSlots)?;
                if let (Some(old), Some(new)) = (slots.get(a.slot), slots.get(start)) {
                    use std::sync::atomic::Ordering::Relaxed;
                    new.quota.store(old.quota.load(Relaxed), Relaxed);
                    new.day.store(old.day.load(Relaxed), Relaxed);
                }
                self.alloc.release(a.slot, a.slots);
                a.slot = start;
                a.slots = n;
            }
        }
        let id = match self.plan_ids.get_key_value(id) {
            Some((k, _)) => k.clone(),
            None => id.into(),
        };
        self.plans[number as usize] = Some(PlanState { id, record, limits });
        Ok(())
    }

    /// Removes a plan and every association with it.
    pub fn remove_plan(&mut self, id: &str) -> bool {
        let Some(number) = self.plan_ids.remove(id) else {
            return false;
        };
        self.plans[number as usize] = None;
        for k in &mut self.keys {
            k.assocs.retain(|a| {
                let keep = a.plan != number;
                if !keep {
                    self.alloc.release(a.slot, a.slots);
                }
                keep
            });
        }
        true
    }

    /// Whether `key` may join `plan`: both exist, the key is not in it yet, and no other plan
    /// of the key covers one of its stages.
    pub fn check_assoc(&self, plan: &str, key: &str) -> Result<(), AssocError> {
        let number = self.plan_number(plan).ok_or(AssocError::NoPlan)?;
        let p = self.plan_state(number).ok_or(AssocError::NoPlan)?;
        let k = self.key(key).ok_or(AssocError::NoKey)?;
        if k.assocs.iter().any(|a| a.plan == number) {
            return Err(AssocError::Already);
        }
        for a in &k.assocs {
            if let Some(other) = self.plan_state(a.plan)
                && let Some(stage) = shared_stage(&p.record, &other.record)
            {
                return Err(AssocError::Conflict {
                    plan: other.id.to_string(),
                    stage,
                });
            }
        }
        Ok(())
    }

    /// Whether giving plan `plan` the stages of `record` would put one of its keys in two
    /// plans for one stage: the first such key, with the other plan and the stage.
    pub fn check_plan_stages(
        &self,
        plan: &str,
        record: &UsagePlanRecord,
    ) -> Option<(String, AssocError)> {
        let number = self.plan_number(plan)?;
        for k in &self.keys {
            if !k.assocs.iter().any(|a| a.plan == number) {
                continue;
            }
            for a in k.assocs.iter().filter(|a| a.plan != number) {
                if let Some(other) = self.plan_state(a.plan)
                    && let Some(stage) = shared_stage(record, &other.record)
                {
                    let e = AssocError::Conflict {
                        plan: other.id.to_string(),
                        stage,
                    };
                    return Some((k.id.to_string(), e));
                }
            }
        }
        None
    }

    /// Associates `key` with `plan` (checked with [`UsagePlans::check_assoc`] first), with
    /// fresh slots, or with the counters `restore` (quota word, day word) from the store.
    pub fn associate(
        &mut self,
        plan: &str,
        key: &str,
        restore: Option<[u64; 2]>,
    ) -> Result<(), AssocError> {
        let number = self.plan_number(plan).ok_or(AssocError::NoPlan)?;
        let n = self
            .plan_state(number)
            .ok_or(AssocError::NoPlan)?
            .limits
            .slots_per_key();
        let &i = self.key_index.get(key).ok_or(AssocError::NoKey)?;
        let slot = self
            .alloc
            .alloc(&self.usage.slots, n)
            .ok_or(AssocError::NoSlots)?;
        let saved = restore.unwrap_or([0, 0]);
        if let (Some(s), Some(words)) = (self.usage.slots.get(slot), restore) {
            use std::sync::atomic::Ordering::Relaxed;
            s.quota.store(words[0], Relaxed);
            s.day.store(words[1], Relaxed);
        }
        self.keys[i as usize].assocs.push(Assoc {
            plan: number,
            slot,
            slots: n,
            saved,
            saved_peers: 0,
        });
        Ok(())
    }

    /// Ends an association, releasing its slots.
    pub fn dissociate(&mut self, plan: &str, key: &str) -> bool {
        let (Some(number), Some(&i)) = (self.plan_number(plan), self.key_index.get(key)) else {
            return false;
        };
        let k = &mut self.keys[i as usize];
        let Some(at) = k.assocs.iter().position(|a| a.plan == number) else {
            return false;
        };
        let a = k.assocs.remove(at);
        self.alloc.release(a.slot, a.slots);
        true
    }

    /// The association of `key` with `plan`.
    pub fn assoc(&self, plan: &str, key: &str) -> Option<&Assoc> {
        let number = self.plan_number(plan)?;
        self.key(key)?.assocs.iter().find(|a| a.plan == number)
    }

    /// Keys of `plan`, by id (unordered).
    pub fn keys_of(&self, plan: &str) -> Vec<&str> {
        let Some(number) = self.plan_number(plan) else {
            return Vec::new();
        };
        self.keys
            .iter()
            .filter(|k| k.assocs.iter().any(|a| a.plan == number))
            .map(|k| &*k.id)
            .collect()
    }
}

/// The first `api:stage` both plans cover.
fn shared_stage(a: &UsagePlanRecord, b: &UsagePlanRecord) -> Option<String> {
    a.api_stages
        .iter()
        .find(|s| {
            b.api_stages
                .iter()
                .any(|o| o.api == s.api && o.stage == s.stage)
        })
        .map(|s| format!("{}:{}", s.api, s.stage))
}
