//! Building the data plane's [`ApiKeyTable`] from the model and publishing it.
//!
//! A whole table is built on every change (a key created, disabled, deleted, moved to another
//! plan; a plan edited): at a million keys that takes a fraction of a second on the admin
//! thread (see `rebuild_a_million_keys` in the tests and the README), and the workers pick it up before
//! their next request, without a config reload. The slots each association points at are
//! not touched here: they belong to the association (see [`super::model`]), so a rebuilt
//! table finds the same buckets and counters.

use std::time::{Duration, Instant};

use turnpike_core::{
    cluster::{CounterKind, Scope, registry},
    usage::{
        ApiKeyTable, ApiKeyTableBuilder, ClusterAssoc, KeyAssoc, Limit, PlanLimits, QuotaSettings,
        RouteLimits, ThrottleFile, stage_uid,
    },
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
    let mut limits = PlanLimits::new(r.throttle.as_ref().map(checked), r.quota, stages);
    limits.cluster = r.throttle.as_ref().is_some_and(clustered)
        || r.quota.is_some_and(|q| q.scope == Scope::Cluster)
        || r.api_stages
            .iter()
            .any(|s| s.throttle.values().any(clustered));
    limits
}

fn clustered(t: &ThrottleFile) -> bool {
    t.scope == Scope::Cluster
}

/// Where a cluster-wide counter of an association stands: how this node shows it
/// (`plan/<plan id>/<key id>`, this node's ids) and what makes it the same counter on every
/// node (`plan/<plan name>/<tag of the key's value>`: ids are drawn per node, while a key's
/// value and, by convention, a plan's name are what an operator sets alike on every node).
pub struct AssocNames {
    pub display: String,
    pub identity: String,
}

impl AssocNames {
    pub fn new(plan_id: &str, plan_name: &str, key_id: &str, key_value: &str) -> AssocNames {
        AssocNames {
            display: format!("plan/{plan_id}/{key_id}"),
            identity: format!("plan/{plan_name}/{}", registry::tag(key_value)),
        }
    }

    /// The quota's counter: `<names>/quota/<PERIOD>+<offset>` (a changed period is a new
    /// counter, whose windows do not mix with the old one's).
    pub fn quota(&self, q: &QuotaSettings) -> (String, String) {
        self.with(&format!("/quota/{}+{}", q.period.as_str(), q.offset))
    }

    /// A throttle's counter: `<names>/throttle`, `<names>/throttle/<api>/<stage>/<route key>`
    /// for a per-route one.
    fn throttle(&self, route: Option<(&str, &str, &str)>) -> (String, String) {
        self.with(&match route {
            Some((api, stage, key)) => format!("/throttle/{api}/{stage}/{key}"),
            None => "/throttle".to_owned(),
        })
    }

    /// `(identity, display)` of the counter `tail` names below the association.
    fn with(&self, tail: &str) -> (String, String) {
        (
            format!("{}{tail}", self.identity),
            format!("{}{tail}", self.display),
        )
    }
}

/// The cluster-wide counters of an association with plan `r` (compiled to `limits`),
/// registered in the process's book under `names`. `quota_word`: the association's quota
/// word in its slot (restored from the store), which the counter's own count is raised to.
pub fn cluster_assoc(
    names: &AssocNames,
    r: &UsagePlanRecord,
    limits: &PlanLimits,
    quota_word: u64,
) -> ClusterAssoc {
    let mut throttles = vec![None; limits.slots_per_key() as usize];
    if let (Some(t), Some(limit)) = (&r.throttle, &limits.throttle)
        && clustered(t)
    {
        let (id, shown) = names.throttle(None);
        throttles[0] = Some(registry::bucket_as(&id, &shown, limit));
    }
    for (s, stage) in r.api_stages.iter().zip(&limits.stages) {
        for (route, _) in s.throttle.iter().filter(|(_, t)| clustered(t)) {
            if let Some((limit, offset)) = stage.route(route) {
                let (id, shown) = names.throttle(Some((&s.api, &s.stage, route)));
                throttles[offset as usize] = Some(registry::bucket_as(&id, &shown, limit));
            }
        }
    }
    let quota = r.quota.filter(|q| q.scope == Scope::Cluster).map(|q| {
        let (id, shown) = names.quota(&q);
        let c = registry::counter_as(&id, &shown, CounterKind::Quota(q));
        c.raise_own(quota_word);
        c
    });
    ClusterAssoc {
        throttles: throttles.into(),
        quota,
    }
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
            for a in &k.assocs {
                let Some(p) = self.plans.get(a.plan as usize).and_then(Option::as_ref) else {
                    continue;
                };
                if p.limits.cluster {
                    let word = self
                        .usage
                        .slots
                        .get(a.slot)
                        .map_or(0, |s| s.quota.load(std::sync::atomic::Ordering::Relaxed));
                    let names = AssocNames::new(&p.id, &p.record.name, &k.id, &k.value);
                    b.cluster(a.slot, cluster_assoc(&names, &p.record, &p.limits, word));
                }
            }
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
