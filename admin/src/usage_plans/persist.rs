//! The model and its counters in the resource store: loading at start (restoring each
//! association's quota and today's count into its slots before the first table is
//! published), saving the counters the data plane moved, and the usage report.
//!
//! Counters are saved by a thread once a second ([`super::spawn_saver`]) and once more on a
//! graceful shutdown, each time in one store transaction: a kill loses at most the counts of
//! the last second (a key may then get up to one second's worth of requests more than its
//! quota after a crash), never a torn record. Each association keeps (table
//! `usage_counters`, `plan/key`) its quota word and day word as the data plane packs them
//! (`period << 32 | count`), and (table `usage_days`, `plan/key/DDDDDDDD`) the requests
//! admitted each UTC day, which is what `get-usage` reports.

use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::Ordering::Relaxed},
};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use turnpike_core::usage::{UsageState, slots::unpack};

use super::{model::UsagePlans, records::UsagePlanRecord, table::AssocNames};
use crate::db::{DbError, ResourceDb, Table};

const DAY_MS: u64 = 86_400_000;

/// One association's counter words (table `usage_counters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterRecord {
    /// `quota period << 32 | requests counted`.
    pub quota: u64,
    /// `UTC day << 32 | requests admitted that day`.
    pub day: u64,
    /// A quota with `scope: cluster`: `[node key, word]` of every other node's count, as this
    /// node last heard them, merged back at start (so a cluster whose every node restarts
    /// still remembers a node that did not come back). `quota` is this node's own word.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<[u64; 2]>,
}

/// An association (table `usage_plan_keys`, `plan/key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssocRecord {
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

/// Key id -> one `(used, remaining)` pair per day of a usage report.
pub type UsageReport = BTreeMap<String, Vec<(u64, Option<u64>)>>;

/// What the model needs of a stored key (the rest stays in the store).
#[derive(Deserialize)]
struct KeyCore {
    value: String,
    enabled: bool,
}

/// `plan/key`: the id of an association's rows.
pub fn assoc_id(plan: &str, key: &str) -> String {
    format!("{plan}/{key}")
}

impl UsagePlans {
    /// Loads every key, plan and association from `db`, restores each association's
    /// counters into fresh slots of `usage`, and publishes the first table.
    ///
    /// An association naming a key or plan that is gone (never written so; a damaged store)
    /// is skipped with a warning.
    pub fn load(db: &ResourceDb, usage: Arc<UsageState>) -> Result<UsagePlans, DbError> {
        let mut m = UsagePlans::new(usage);
        for (id, r) in db.list::<UsagePlanRecord>(Table::UsagePlans)? {
            // No association yet: nothing to move, so this cannot fail.
            let _ = m.put_plan(&id, r);
        }
        for (id, k) in db.list::<KeyCore>(Table::ApiKeys)? {
            m.insert_key(&id, &k.value, k.enabled);
        }
        let counters: FxHashMap<String, CounterRecord> = db
            .list::<CounterRecord>(Table::UsageCounters)?
            .into_iter()
            .collect();
        for (id, _) in db.list::<AssocRecord>(Table::UsagePlanKeys)? {
            let Some((plan, key)) = id.split_once('/') else {
                continue;
            };
            let saved = counters.get(&id);
            if let Err(e) = m.associate(plan, key, saved.map(|c| [c.quota, c.day])) {
                tracing::warn!("resource store: association {id} skipped: {e}");
                continue;
            }
            if let (Some(c), Some(name)) = (saved, m.cluster_quota_name(plan, key))
                && !c.peers.is_empty()
            {
                let counter = turnpike_core::cluster::counter_id(&name);
                let entries: Vec<_> = c
                    .peers
                    .iter()
                    .map(|&[node, word]| turnpike_core::cluster::Entry {
                        counter,
                        node,
                        word,
                    })
                    .collect();
                turnpike_core::cluster::registry::book().merge(&entries);
            }
        }
        let p = m.publish();
        tracing::info!(
            keys = p.keys,
            plans = m.plan_ids.len(),
            took_ms = p.took.as_millis() as u64,
            "API keys loaded"
        );
        Ok(m)
    }

    /// Writes the counters that moved since the last save, in one transaction; returns how
    /// many associations were written.
    pub fn save_counters(&mut self, db: &ResourceDb) -> Result<usize, DbError> {
        let slots = &self.usage.slots;
        let table = self.usage.table();
        // (key position, association position, words, the peers' words of a cluster quota):
        // nothing moves keys until the marks.
        let mut changed = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            for (j, a) in k.assocs.iter().enumerate() {
                let Some(s) = slots.get(a.slot) else { continue };
                // A cluster-scoped quota counts in its shared counter: its own word is what
                // this node keeps.
                if let Some(c) = table.cluster(a.slot).and_then(|c| c.quota.as_deref()) {
                    s.quota.fetch_max(c.own(), Relaxed);
                }
                let words = [s.quota.load(Relaxed), s.day.load(Relaxed)];
                // The peers' counts are saved too, and whenever they grow: a node whose own
                // count stopped moving must still remember what the others used since.
                let peers: Vec<[u64; 2]> =
                    match self.cluster_quota_name(self.plan_id(a.plan), &k.id) {
                        Some(name) => turnpike_core::cluster::registry::book()
                            .peer_words(turnpike_core::cluster::counter_id(&name))
                            .into_iter()
                            .map(|(node, word)| [node, word])
                            .collect(),
                        None => Vec::new(),
                    };
                let sum = peers.iter().fold(0u64, |s, p| s.wrapping_add(p[1]));
                if words != a.saved || sum != a.saved_peers {
                    changed.push((i, j, words, peers, sum));
                }
            }
        }
        if changed.is_empty() {
            return Ok(0);
        }
        let mut batch = db.batch()?;
        for (i, j, [quota, day], peers, _) in &mut changed {
            let (quota, day) = (*quota, *day);
            let k = &self.keys[*i];
            let id = assoc_id(self.plan_id(k.assocs[*j].plan), &k.id);
            let record = CounterRecord {
                quota,
                day,
                peers: std::mem::take(peers),
            };
            batch.put(Table::UsageCounters, &id, &record)?;
            let (d, n) = unpack(day);
            if n > 0 {
                batch.put(Table::UsageDays, &format!("{id}/{d:08}"), &n)?;
            }
        }
        batch.commit()?;
        for &(i, j, words, _, sum) in &changed {
            let a = &mut self.keys[i].assocs[j];
            a.saved = words;
            a.saved_peers = sum;
        }
        Ok(changed.len())
    }

    /// The identity of the cluster-wide counter of `key`'s quota in `plan`, if that quota has
    /// `scope: cluster`.
    fn cluster_quota_name(&self, plan: &str, key: &str) -> Option<String> {
        let r = self.plan(plan)?;
        let q = r
            .quota
            .filter(|q| q.scope == turnpike_core::cluster::Scope::Cluster)?;
        let value = &self.key(key)?.value;
        Some(AssocNames::new(plan, &r.name, key, value).quota(&q).0)
    }

    /// Requests used and quota remaining per day, from `first` to `last` (days since 1970,
    /// inclusive), for each key of `plan` that used any in that window (and for `key`, when
    /// given, always): AWS `get-usage`'s `items`, `key id -> [[used, remaining], ..]`, one
    /// pair per day, `remaining` `None` for a plan without a quota. Today's figures come
    /// from the live counters, the rest from the store. `used` is what this node served; for
    /// a quota with `scope: cluster`, today's `remaining` is the cluster's (the limit less
    /// what every node counted in the current period, as this node last heard).
    pub fn usage_report(
        &self,
        db: &ResourceDb,
        plan: &str,
        key: Option<&str>,
        first: u32,
        last: u32,
    ) -> Result<UsageReport, DbError> {
        let quota = self.plan(plan).and_then(|p| p.quota);
        // Remaining quota on a day counts the days of its period before the window too.
        let from = match &quota {
            Some(q) => {
                let p = q.period_number(u64::from(first) * DAY_MS);
                (q.period_start_day(p) as u32).min(first)
            }
            None => first,
        };
        let prefix = match key {
            Some(k) => format!("{}/", assoc_id(plan, k)),
            None => format!("{plan}/"),
        };
        let mut days: BTreeMap<String, BTreeMap<u32, u64>> = BTreeMap::new();
        if let Some(k) = key {
            days.entry(k.to_owned()).or_default();
        }
        for (id, n) in db.scan::<u64>(Table::UsageDays, &prefix, None, usize::MAX)? {
            let mut parts = id.rsplitn(2, '/');
            let (Some(day), Some(rest)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Some(k), Ok(day)) = (rest.split('/').nth(1), day.parse::<u32>()) else {
                continue;
            };
            if (from..=last).contains(&day) {
                days.entry(k.to_owned()).or_default().insert(day, n);
            }
        }
        let keys: Vec<&str> = match key {
            Some(k) => vec![k],
            None => self.keys_of(plan),
        };
        for k in keys {
            let Some(a) = self.assoc(plan, k) else {
                continue;
            };
            let Some(s) = self.usage.slots.get(a.slot) else {
                continue;
            };
            let (d, n) = unpack(s.day.load(Relaxed));
            if n > 0 && (from..=last).contains(&d) {
                days.entry(k.to_owned())
                    .or_default()
                    .insert(d, u64::from(n));
            }
        }
        let mut out = BTreeMap::new();
        for (k, used) in days {
            let row: Vec<(u64, Option<u64>)> = (first..=last)
                .map(|d| {
                    let u = used.get(&d).copied().unwrap_or(0);
                    let remaining = quota.as_ref().map(|q| {
                        let p = q.period_number(u64::from(d) * DAY_MS);
                        let start = q.period_start_day(p) as u32;
                        let spent: u64 = used.range(start..=d).map(|(_, n)| n).sum();
                        u64::from(q.limit).saturating_sub(spent)
                    });
                    (u, remaining)
                })
                .collect();
            out.insert(k, row);
        }
        if let Some(q) = quota.filter(|q| q.scope == turnpike_core::cluster::Scope::Cluster) {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let today = (now_ms / DAY_MS) as u32;
            for (k, row) in out.iter_mut() {
                let (Some(day), Some(name)) = (
                    today
                        .checked_sub(first)
                        .and_then(|i| row.get_mut(i as usize)),
                    self.cluster_quota_name(plan, k),
                ) else {
                    continue;
                };
                let book = turnpike_core::cluster::registry::book();
                if let Some(cell) = book.cell(turnpike_core::cluster::counter_id(&name)) {
                    let total = cell.quota_total(q.period_number(now_ms));
                    day.1 = Some(u64::from(q.limit).saturating_sub(total));
                }
            }
        }
        Ok(out)
    }

    /// Sets each of `plan`'s keys' quota counter to what it used in its current quota period,
    /// counted from the per-day usage: for a plan whose quota period or offset changed, or
    /// that gained a quota. The counter holds a period number beside its count, so without
    /// this a plan moved from `DAY` to `WEEK` would start every key's week from zero, and a key
    /// at its quota would get a second one. `now_ms`: milliseconds since 1970.
    pub fn recount_quota(&self, db: &ResourceDb, plan: &str, now_ms: u64) -> Result<(), DbError> {
        let Some(q) = self.plan(plan).and_then(|p| p.quota) else {
            return Ok(());
        };
        let period = q.period_number(now_ms);
        let first = q.period_start_day(period) as u32;
        let today = (now_ms / DAY_MS) as u32;
        let report = self.usage_report(db, plan, None, first.min(today), today)?;
        for k in self.keys_of(plan) {
            let used: u64 = report
                .get(k)
                .map_or(0, |days| days.iter().map(|(u, _)| u).sum());
            if let Some(s) = self
                .assoc(plan, k)
                .and_then(|a| self.usage.slots.get(a.slot))
            {
                let used = used.min(u64::from(u32::MAX)) as u32;
                s.quota
                    .store(turnpike_core::usage::slots::pack(period, used), Relaxed);
            }
        }
        Ok(())
    }
}
