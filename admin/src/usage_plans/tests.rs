use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Instant,
};

use turnpike_core::{
    config::parse,
    usage::{QuotaPeriod, QuotaSettings, ThrottleFile, UsageState, slots::pack, stage_uid},
};

use super::{
    AssocError, UsagePlans,
    persist::{AssocRecord, assoc_id},
    records::{
        ApiKeyRecord, ApiStage, PlanBody, UsagePlanRecord, check_plan, check_value, format_day,
        parse_day, parse_iso_time,
    },
};
use crate::db::{ResourceDb, Table};

const VALUE_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const VALUE_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn stage(api: &str, stage: &str, routes: &[&str]) -> ApiStage {
    ApiStage {
        api: api.into(),
        stage: stage.into(),
        throttle: routes
            .iter()
            .map(|r| {
                (
                    r.to_string(),
                    ThrottleFile {
                        rate_limit: 1.0,
                        burst_limit: 1,
                        scope: turnpike_core::cluster::Scope::Node,
                    },
                )
            })
            .collect(),
    }
}

fn plan(stages: Vec<ApiStage>, quota: Option<u32>) -> UsagePlanRecord {
    UsagePlanRecord {
        name: "p".into(),
        description: None,
        api_stages: stages,
        throttle: Some(ThrottleFile {
            rate_limit: 50.0,
            burst_limit: 100,
            scope: turnpike_core::cluster::Scope::Node,
        }),
        quota: quota.map(|limit| QuotaSettings {
            limit,
            period: QuotaPeriod::Month,
            offset: 0,
            scope: Default::default(),
        }),
        tags: BTreeMap::new(),
        created_at: 1,
        updated_at: 1,
    }
}

#[test]
fn keys_plans_and_switches_reach_the_table() {
    let mut m = UsagePlans::default();
    m.put_plan("plan01", plan(vec![stage("shop", "prod", &[])], None))
        .expect("plan");
    m.insert_key("key0000001", VALUE_A, true);
    m.insert_key("key0000002", VALUE_B, true);
    m.associate("plan01", "key0000001", None).expect("assoc");
    m.publish();
    let uid = stage_uid("shop", "prod");
    let t = m.usage().table();
    let a = t.find(VALUE_A.as_bytes()).expect("key a");
    assert!(a.enabled());
    assert!(a.plan_for(uid).is_some(), "a has a plan for shop:prod");
    assert!(a.plan_for(stage_uid("shop", "dev")).is_none());
    let b = t.find(VALUE_B.as_bytes()).expect("key b");
    assert!(b.plan_for(uid).is_none(), "b has no plan");

    m.set_enabled("key0000001", false);
    m.publish();
    assert!(
        !m.usage()
            .table()
            .find(VALUE_A.as_bytes())
            .expect("a")
            .enabled()
    );
    assert_eq!(m.key_with_value(VALUE_A), Some("key0000001"));

    m.remove_key("key0000001");
    m.publish();
    assert!(m.usage().table().find(VALUE_A.as_bytes()).is_none());
    assert_eq!(m.key_with_value(VALUE_A), None);
    assert_eq!(m.usage().table().len(), 1);
}

#[test]
fn one_plan_per_key_per_stage() {
    let mut m = UsagePlans::default();
    m.put_plan("plan01", plan(vec![stage("shop", "prod", &[])], None))
        .expect("p1");
    m.put_plan(
        "plan02",
        plan(
            vec![stage("shop", "dev", &[]), stage("shop", "prod", &[])],
            None,
        ),
    )
    .expect("p2");
    m.put_plan("plan03", plan(vec![stage("shop", "dev", &[])], None))
        .expect("p3");
    m.insert_key("key0000001", VALUE_A, true);
    m.associate("plan01", "key0000001", None).expect("first");
    assert_eq!(
        m.check_assoc("plan02", "key0000001"),
        Err(AssocError::Conflict {
            plan: "plan01".into(),
            stage: "shop:prod".into()
        })
    );
    assert_eq!(
        m.check_assoc("plan01", "key0000001"),
        Err(AssocError::Already)
    );
    assert_eq!(m.check_assoc("plan03", "key0000001"), Ok(()));
    assert_eq!(
        m.check_assoc("nope00", "key0000001"),
        Err(AssocError::NoPlan)
    );
    assert_eq!(
        m.check_assoc("plan03", "nokey00000"),
        Err(AssocError::NoKey)
    );
    m.associate("plan03", "key0000001", None).expect("dev");
    // Moving plan03 onto prod would give the key two plans there.
    let moved = plan(vec![stage("shop", "prod", &[])], None);
    let (key, e) = m.check_plan_stages("plan03", &moved).expect("conflict");
    assert_eq!(key, "key0000001");
    assert!(matches!(e, AssocError::Conflict { plan, .. } if plan == "plan01"));
}

#[test]
fn slots_stay_across_rebuilds_and_move_with_the_override_count() {
    let mut m = UsagePlans::default();
    m.put_plan("plan01", plan(vec![stage("shop", "prod", &[])], Some(10)))
        .expect("plan");
    m.insert_key("key0000001", VALUE_A, true);
    m.associate("plan01", "key0000001", None).expect("assoc");
    let before = m.assoc("plan01", "key0000001").expect("assoc").slot;
    let s = m.usage().slots.get(before).expect("slot");
    s.quota.store(pack(7, 3), Relaxed);
    s.day.store(pack(20_000, 3), Relaxed);
    // Same slot count: same slots.
    m.put_plan("plan01", plan(vec![stage("shop", "prod", &[])], Some(20)))
        .expect("edit");
    m.publish();
    assert_eq!(m.assoc("plan01", "key0000001").expect("a").slot, before);
    // One override more: new slots, counters carried over.
    m.put_plan(
        "plan01",
        plan(vec![stage("shop", "prod", &["GET /pets"])], Some(20)),
    )
    .expect("override");
    let a = m.assoc("plan01", "key0000001").expect("a");
    assert_eq!(a.slots, 2);
    assert_ne!(a.slot, before);
    let s = m.usage().slots.get(a.slot).expect("new slot");
    assert_eq!(s.quota.load(Relaxed), pack(7, 3));
    assert_eq!(s.day.load(Relaxed), pack(20_000, 3));
    m.publish();
    let t = m.usage().table();
    let (_, st, first) = t
        .find(VALUE_A.as_bytes())
        .and_then(|k| k.plan_for(stage_uid("shop", "prod")))
        .expect("plan");
    assert_eq!(first, a.slot);
    assert_eq!(st.route("GET /pets").map(|(_, off)| off), Some(1));
    // Deleting the plan frees its associations.
    assert!(m.remove_plan("plan01"));
    assert!(m.plans_of("key0000001").is_empty());
}

/// Writes a plan, a key and their association as the API does.
fn seed(db: &ResourceDb) {
    db.put(
        Table::UsagePlans,
        "plan01",
        &plan(vec![stage("shop", "prod", &[])], Some(100)),
    )
    .expect("plan");
    let key = ApiKeyRecord {
        name: "k".into(),
        value: VALUE_A.into(),
        enabled: true,
        description: None,
        tags: BTreeMap::new(),
        created_at: 1,
        updated_at: 1,
    };
    db.put(Table::ApiKeys, "key0000001", &key).expect("key");
    db.put(
        Table::UsagePlanKeys,
        &assoc_id("plan01", "key0000001"),
        &AssocRecord { created_at: 1 },
    )
    .expect("assoc");
}

#[test]
fn counters_survive_a_restart_through_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let today = 20_500u32;
    {
        let db = ResourceDb::open(dir.path()).expect("db");
        seed(&db);
        let mut m = UsagePlans::load(&db, Arc::new(UsageState::new())).expect("load");
        assert_eq!(m.usage().table().len(), 1, "load publishes");
        assert_eq!(m.save_counters(&db).expect("save"), 0, "nothing moved");
        let usage = m.usage().clone();
        let s = usage
            .slots
            .get(m.assoc("plan01", "key0000001").expect("assoc").slot)
            .expect("slot");
        s.quota.store(pack(673, 42), Relaxed);
        s.day.store(pack(today - 1, 30), Relaxed);
        assert_eq!(m.save_counters(&db).expect("save"), 1);
        s.day.store(pack(today, 12), Relaxed);
        assert_eq!(m.save_counters(&db).expect("save"), 1);
        assert_eq!(
            m.save_counters(&db).expect("save"),
            0,
            "saved words are not written again"
        );
    }
    // A new process: fresh slots, counters restored before the first table.
    let db = ResourceDb::open(dir.path()).expect("reopen");
    let m = UsagePlans::load(&db, Arc::new(UsageState::new())).expect("load");
    let a = m.assoc("plan01", "key0000001").expect("assoc");
    let s = m.usage().slots.get(a.slot).expect("slot");
    assert_eq!(s.quota.load(Relaxed), pack(673, 42));
    assert_eq!(s.day.load(Relaxed), pack(today, 12));
    let report = m
        .usage_report(&db, "plan01", None, today - 2, today)
        .expect("report");
    let row = &report["key0000001"];
    assert_eq!(row.len(), 3);
    assert_eq!(row[0].0, 0);
    assert_eq!(row[1].0, 30);
    assert_eq!(row[2].0, 12);
    // The month of day 20500 started before the window: remaining counts from its start.
    assert_eq!(row[2].1, Some(100 - 42));
}

#[test]
fn a_cluster_quota_saves_what_the_peers_used_after_its_own_count_stopped() {
    use super::persist::CounterRecord;
    use turnpike_core::cluster::{Entry, Scope, registry};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = ResourceDb::open(dir.path()).expect("db");
    let mut p = plan(vec![stage("shop", "prod", &[])], Some(100));
    p.name = "peers-are-saved".into();
    if let Some(q) = &mut p.quota {
        q.scope = Scope::Cluster;
        q.period = QuotaPeriod::Day;
    }
    db.put(Table::UsagePlans, "plan77", &p).expect("plan");
    let key = ApiKeyRecord {
        name: "k".into(),
        value: "cccccccccccccccccccccccccccccc".into(),
        enabled: true,
        description: None,
        tags: BTreeMap::new(),
        created_at: 1,
        updated_at: 1,
    };
    db.put(Table::ApiKeys, "key0000077", &key).expect("key");
    let id = assoc_id("plan77", "key0000077");
    db.put(Table::UsagePlanKeys, &id, &AssocRecord { created_at: 1 })
        .expect("assoc");
    let mut m = UsagePlans::load(&db, Arc::new(UsageState::new())).expect("load");
    let counter = registry::book()
        .readings()
        .into_iter()
        .find(|r| r.name.as_deref() == Some("plan/plan77/key0000077/quota/DAY+0"))
        .expect("the key's cluster quota counter")
        .id;
    let peer_used = |n| {
        registry::book().merge(&[Entry {
            counter,
            node: 99,
            word: pack(20_500, n),
        }])
    };
    let saved_peers = || {
        db.get::<CounterRecord>(Table::UsageCounters, &id)
            .expect("read")
            .map(|r| r.peers)
    };
    assert_eq!(m.save_counters(&db).expect("save"), 0, "nothing moved");
    // This node counts nothing; a peer's count grows: saved, and again when it grows more.
    peer_used(7);
    assert_eq!(m.save_counters(&db).expect("save"), 1);
    assert_eq!(saved_peers(), Some(vec![[99, pack(20_500, 7)]]));
    assert_eq!(m.save_counters(&db).expect("save"), 0);
    peer_used(9);
    assert_eq!(m.save_counters(&db).expect("save"), 1);
    assert_eq!(saved_peers(), Some(vec![[99, pack(20_500, 9)]]));
}

#[test]
fn an_uncommitted_batch_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = ResourceDb::open(dir.path()).expect("db");
    seed(&db);
    {
        let mut b = db.batch().expect("batch");
        b.remove(Table::ApiKeys, "key0000001").expect("remove");
        b.remove_prefix(Table::UsagePlanKeys, "plan01/")
            .expect("remove prefix");
        // Dropped without a commit, as a kill would.
    }
    assert!(
        db.get::<ApiKeyRecord>(Table::ApiKeys, "key0000001")
            .expect("get")
            .is_some()
    );
    let rows = db
        .scan::<AssocRecord>(Table::UsagePlanKeys, "plan01/", None, 10)
        .expect("scan");
    assert_eq!(rows.len(), 1);
}

#[test]
fn plans_are_checked_against_the_running_config_with_field_paths() {
    let doc = parse(
        "apis:\n  - name: shop\n    integrations: { m: { type: mock } }\n    routes: [ { key: 'GET /pets', integration: m } ]\n    stages: [ { name: prod } ]\n",
    )
    .expect("doc");
    let body = |stages: Vec<ApiStage>| PlanBody {
        name: "basic".into(),
        api_stages: stages,
        quota: Some(QuotaSettings {
            limit: 5,
            period: QuotaPeriod::Week,
            offset: 9,
            scope: Default::default(),
        }),
        ..PlanBody::default()
    };
    let errors = check_plan(
        &body(vec![
            stage("shop", "dev", &[]),
            stage("nope", "prod", &[]),
            stage("shop", "prod", &["GET /cats"]),
        ]),
        &doc,
    );
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "quota.offset",
            "api_stages[0].stage",
            "api_stages[1].api",
            "api_stages[2].throttle[\"GET /cats\"]"
        ],
        "{errors:?}"
    );
    let mut ok = body(vec![stage("shop", "prod", &["GET /pets"])]);
    ok.quota = None;
    assert!(check_plan(&ok, &doc).is_empty());
}

#[test]
fn values_dates_and_times() {
    assert!(check_value(&"x".repeat(20)).is_ok());
    assert!(check_value(&"x".repeat(19)).is_err());
    assert!(check_value(&"x".repeat(129)).is_err());
    assert!(check_value(&format!("{} y", "x".repeat(20))).is_err());
    assert_eq!(parse_day("1970-01-02"), Some(1));
    assert_eq!(parse_day("2026-02-30"), None);
    assert_eq!(parse_day("2026-2-3"), None);
    let d = parse_day("2026-11-30").expect("day");
    assert_eq!(format_day(d), "2026-11-30");
    let t = turnpike_core::tls::iso_time(1_800_000_123);
    assert_eq!(parse_iso_time(&t), Some(1_800_000_123));
}

/// The figure the README quotes: `cargo test --release -p turnpike-admin -- --ignored
/// rebuild_a_million_keys --nocapture`.
#[test]
#[ignore = "a measurement: run in release"]
fn rebuild_a_million_keys() {
    let mut m = UsagePlans::default();
    m.put_plan("plan01", plan(vec![stage("shop", "prod", &[])], Some(1000)))
        .expect("plan");
    let rss_before = rss_kb();
    let started = Instant::now();
    for i in 0..1_000_000u32 {
        let id = format!("k{i:09}");
        m.insert_key(&id, &format!("value-{i:034}"), true);
        m.associate("plan01", &id, None).expect("assoc");
    }
    eprintln!(
        "model of 1,000,000 keys: {:?}, {} bytes per key resident (slots included)",
        started.elapsed(),
        (rss_kb() - rss_before) * 1024 / 1_000_000
    );
    for _ in 0..3 {
        let p = m.publish();
        eprintln!(
            "table of {} keys: built and published in {:?}, {} bytes",
            p.keys, p.took, p.bytes
        );
    }
    let started = Instant::now();
    m.set_enabled("k000000001", false);
    m.publish();
    eprintln!("a key disabled, table republished: {:?}", started.elapsed());
}

/// This process's resident memory, in KiB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
