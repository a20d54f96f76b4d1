//! Building the data plane's [`ApiKeyTable`] from the model and publishing it.
//!
//! A whole table is built on every change (a key created, disabled, deleted, moved to another
//! plan; a plan edited): at a million keys that takes a fraction of a second on the admin
//! thread (see `rebuild_a_million_keys` in the tests and the README), and the workers pick it up before
//! their next request, without a config reload. The slots each association points at are
//! not touched here: they belong to the association (see [`super::model`]), so a rebuilt
//! table finds the same buckets and counters.

use std::time::{Duration, Instant};

use turnpike_core::usage::{
    ApiKeyTable, ApiKeyTableBuilder, KeyAssoc, Limit, PlanLimits, RouteLimits, stage_uid,
};

use super::{model::UsagePlans, records::UsagePlanRecord};

/// The limits the data plane applies for a plan: stages by [`stage_uid`], per-route
/// overrides as `(route key, limit)`. A throttle that does not check (never stored: writes
/// are checked) closes rather than opens.
pub fn plan_limits(r: &UsagePlanRecord) -> PlanLimits {
    let checked = |t: &turnpike_core::usage::ThrottleFile| t.check().unwrap_or(Limit::Closed);
    let stages = r
        .api_stages
        .iter()
        .map(|s| {
            let routes: RouteLimits = s
                .throttle
                .iter()
                .map(|(route, t)| (route.as_str().into(), checked(t)))
                .collect();
            (stage_uid(&s.api, &s.stage), routes)
        })
        .collect();
    PlanLimits::new(r.throttle.as_ref().map(checked), r.quota, stages)
}

/// What a publication did.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub keys: usize,
    pub took: Duration,
    /// Bytes of the table the data plane holds.
    pub bytes: usize,
}

impl UsagePlans {
    /// A table of every key with its associations.
    pub fn build_table(&self) -> ApiKeyTable {
        // Plan number -> index in the table's plans (in id order).
        let mut index = vec![u32::MAX; self.plans.len()];
        let mut plans = Vec::with_capacity(self.plan_ids.len());
        for &n in self.plan_ids.values() {
            if let Some(p) = self.plans.get(n as usize).and_then(Option::as_ref) {
                index[n as usize] = plans.len() as u32;
                plans.push(p.limits.clone());
            }
        }
        let mut b = ApiKeyTableBuilder::new(plans);
        b.reserve(self.keys.len());
        let mut assocs: Vec<KeyAssoc> = Vec::with_capacity(4);
        for k in &self.keys {
            assocs.clear();
            assocs.extend(k.assocs.iter().filter_map(|a| {
                let plan = *index.get(a.plan as usize)?;
                (plan != u32::MAX).then_some(KeyAssoc { plan, slot: a.slot })
            }));
            b.key(k.value.as_bytes(), k.enabled, &assocs);
        }
        b.build()
    }

    /// Builds a table and makes it the one every worker uses from its next request.
    pub fn publish(&self) -> Published {
        let started = Instant::now();
        let table = self.build_table();
        let (keys, bytes) = (table.len(), table.bytes());
        self.usage.publish(table);
        let took = started.elapsed();
        tracing::debug!(keys, ?took, "API key table published");
        Published { keys, took, bytes }
    }
}
