//! The in-memory model of API keys, usage plans and their associations: what the key table
//! is built from, and what the admin checks a write against (a value already taken, a key
//! that already has a plan for a stage). Loaded from the resource store at start and kept in
//! step with every committed write: the store is written first, then this, then a new table
//! is published, so a write the store refused changes nothing here.
//!
//! Only what the data plane needs is kept per key (the value, whether it is enabled, its
//! associations with their slots); names, descriptions, tags and times are read from the
//! store when shown. About 200 bytes per key with one plan.

use std::{collections::BTreeMap, sync::Arc};

use rustc_hash::FxHashMap;
use turnpike_core::usage::{PlanLimits, SlotAllocator, UsageState};

use super::{records::UsagePlanRecord, table::plan_limits};

/// Keys, plans and associations, with the slots each association holds.
pub struct UsagePlans {
    pub(super) usage: Arc<UsageState>,
    pub(super) alloc: SlotAllocator,
    /// By key id.
    pub(super) keys: FxHashMap<Box<str>, KeyState>,
    /// Key value -> key id: values are unique.
    pub(super) by_value: FxHashMap<Arc<str>, Box<str>>,
    /// By plan id.
    pub(super) plans: BTreeMap<Arc<str>, PlanState>,
}

/// One key as the data plane needs it.
#[derive(Debug)]
pub struct KeyState {
    pub value: Arc<str>,
    pub enabled: bool,
    pub assocs: Vec<Assoc>,
}

/// A key's association with a plan and the slots it holds: `slots` consecutive slots from
/// `slot` (the plan's [`PlanLimits::slots_per_key`]), kept for as long as the association
/// lives, so every rebuilt table points at the same counters.
#[derive(Debug)]
pub struct Assoc {
    pub plan: Arc<str>,
    pub slot: u32,
    pub slots: u32,
    /// The counter words (quota, day) last written to the store.
    pub saved: [u64; 2],
}

/// A plan, with the limits the data plane applies.
#[derive(Debug)]
pub struct PlanState {
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
            .field("plans", &self.plans.len())
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
            keys: FxHashMap::default(),
            by_value: FxHashMap::default(),
            plans: BTreeMap::new(),
        }
    }

    /// Where tables are published and slots live.
    pub fn usage(&self) -> &Arc<UsageState> {
        &self.usage
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub fn key(&self, id: &str) -> Option<&KeyState> {
        self.keys.get(id)
    }

    /// The id of the key whose value is `value`.
    pub fn key_with_value(&self, value: &str) -> Option<&str> {
        self.by_value.get(value).map(|id| &**id)
    }

    /// The plans a key is in, by id.
    pub fn plans_of(&self, key: &str) -> Vec<&str> {
        self.keys
            .get(key)
            .map(|k| k.assocs.iter().map(|a| &*a.plan).collect())
            .unwrap_or_default()
    }

    pub fn plan(&self, id: &str) -> Option<&UsagePlanRecord> {
        self.plans.get(id).map(|p| &p.record)
    }

    /// Every plan, by id.
    pub fn plans(&self) -> impl Iterator<Item = (&str, &UsagePlanRecord)> {
        self.plans.iter().map(|(id, p)| (&**id, &p.record))
    }

    /// Adds a key (or replaces one with the same id).
    pub fn insert_key(&mut self, id: &str, value: &str, enabled: bool) {
        self.remove_key(id);
        let value: Arc<str> = value.into();
        self.by_value.insert(value.clone(), id.into());
        self.keys.insert(
            id.into(),
            KeyState {
                value,
                enabled,
                assocs: Vec::new(),
            },
        );
    }

    pub fn set_enabled(&mut self, id: &str, enabled: bool) {
        if let Some(k) = self.keys.get_mut(id) {
            k.enabled = enabled;
        }
    }

    /// Removes a key and its associations, releasing their slots.
    pub fn remove_key(&mut self, id: &str) -> bool {
        let Some(k) = self.keys.remove(id) else {
            return false;
        };
        self.by_value.remove(&k.value);
        for a in k.assocs {
            self.alloc.release(a.slot, a.slots);
        }
        true
    }

    /// Adds or replaces a plan. Associations of a replaced plan whose slot count changed
    /// (per-route overrides added or removed) move to new ranges, taking their quota and day
    /// counters along.
    pub fn put_plan(&mut self, id: &str, record: UsagePlanRecord) -> Result<(), AssocError> {
        let limits = plan_limits(&record);
        let n = limits.slots_per_key();
        let id: Arc<str> = match self.plans.get_key_value(id) {
            Some((k, _)) => k.clone(),
            None => id.into(),
        };
        let slots = &self.usage.slots;
        for k in self.keys.values_mut() {
            for a in k.assocs.iter_mut().filter(|a| a.plan == id && a.slots != n) {
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
        self.plans.insert(id, PlanState { record, limits });
        Ok(())
    }

    /// Removes a plan and every association with it.
    pub fn remove_plan(&mut self, id: &str) -> bool {
        if self.plans.remove(id).is_none() {
            return false;
        }
        for k in self.keys.values_mut() {
            k.assocs.retain(|a| {
                let keep = &*a.plan != id;
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
        let p = self.plans.get(plan).ok_or(AssocError::NoPlan)?;
        let k = self.keys.get(key).ok_or(AssocError::NoKey)?;
        if k.assocs.iter().any(|a| &*a.plan == plan) {
            return Err(AssocError::Already);
        }
        for a in &k.assocs {
            if let Some(other) = self.plans.get(&a.plan)
                && let Some(stage) = shared_stage(&p.record, &other.record)
            {
                return Err(AssocError::Conflict {
                    plan: a.plan.to_string(),
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
        for (id, k) in &self.keys {
            if !k.assocs.iter().any(|a| &*a.plan == plan) {
                continue;
            }
            for a in k.assocs.iter().filter(|a| &*a.plan != plan) {
                if let Some(other) = self.plans.get(&a.plan)
                    && let Some(stage) = shared_stage(record, &other.record)
                {
                    let e = AssocError::Conflict {
                        plan: a.plan.to_string(),
                        stage,
                    };
                    return Some((id.to_string(), e));
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
        let (plan_id, p) = self.plans.get_key_value(plan).ok_or(AssocError::NoPlan)?;
        let n = p.limits.slots_per_key();
        let k = self.keys.get_mut(key).ok_or(AssocError::NoKey)?;
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
        k.assocs.push(Assoc {
            plan: plan_id.clone(),
            slot,
            slots: n,
            saved,
        });
        Ok(())
    }

    /// Ends an association, releasing its slots.
    pub fn dissociate(&mut self, plan: &str, key: &str) -> bool {
        let Some(k) = self.keys.get_mut(key) else {
            return false;
        };
        let Some(i) = k.assocs.iter().position(|a| &*a.plan == plan) else {
            return false;
        };
        let a = k.assocs.remove(i);
        self.alloc.release(a.slot, a.slots);
        true
    }

    /// The association of `key` with `plan`.
    pub fn assoc(&self, plan: &str, key: &str) -> Option<&Assoc> {
        self.keys.get(key)?.assocs.iter().find(|a| &*a.plan == plan)
    }

    /// Keys of `plan`, by id (unordered).
    pub fn keys_of(&self, plan: &str) -> Vec<&str> {
        self.keys
            .iter()
            .filter(|(_, k)| k.assocs.iter().any(|a| &*a.plan == plan))
            .map(|(id, _)| &**id)
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
