use std::sync::{Arc, atomic::Ordering::Relaxed};

use super::{steps::StepInput, *};
use crate::{context::time::days_from_civil, gcra::Gcra};

const DAY_MS: u64 = 86_400_000;

fn ms(y: u64, m: u64, d: u64) -> u64 {
    days_from_civil(y, m, d) * DAY_MS
}

fn quota(limit: u32, period: QuotaPeriod, offset: u32) -> QuotaSettings {
    QuotaSettings {
        limit,
        period,
        offset,
        scope: Default::default(),
    }
}

#[test]
fn days_from_civil_inverts_civil_from_days() {
    for days in [0u64, 1, 58, 59, 60, 365, 10_957, 20_000, 20_422, 50_000] {
        let (y, m, d) = crate::context::time::civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
    }
}

#[test]
fn weeks_start_on_sunday_with_offset_0_and_monday_with_1() {
    // 2026-11-29 is a Sunday, 2026-11-30 a Monday.
    let sun = quota(1, QuotaPeriod::Week, 0);
    let sat = ms(2026, 11, 28) + DAY_MS - 1;
    assert_eq!(
        sun.period_number(ms(2026, 11, 29)),
        sun.period_number(sat) + 1
    );
    assert_eq!(
        sun.period_number(ms(2026, 11, 30)),
        sun.period_number(ms(2026, 11, 29))
    );
    assert_eq!(
        sun.period_start_day(sun.period_number(ms(2026, 12, 2))),
        days_from_civil(2026, 11, 29)
    );
    let mon = quota(1, QuotaPeriod::Week, 1);
    assert_eq!(
        mon.period_number(ms(2026, 11, 30)),
        mon.period_number(ms(2026, 11, 29)) + 1
    );
    assert_eq!(
        mon.period_start_day(mon.period_number(ms(2026, 12, 6))),
        days_from_civil(2026, 11, 30)
    );
    assert_eq!(mon.ms_until_next_period(ms(2026, 12, 6)), DAY_MS);
}

#[test]
fn months_start_on_day_offset_plus_one() {
    let first = quota(1, QuotaPeriod::Month, 0);
    assert_eq!(
        first.period_number(ms(2026, 12, 1)),
        first.period_number(ms(2026, 11, 30)) + 1
    );
    assert_eq!(first.ms_until_next_period(ms(2026, 11, 30)), DAY_MS);
    assert_eq!(first.ms_until_next_period(ms(2026, 12, 31) + 1), DAY_MS - 1);
    // Months from the 15th: 2026-11-14 is in October's period, the 15th starts November's.
    let mid = quota(1, QuotaPeriod::Month, 14);
    assert_eq!(
        mid.period_number(ms(2026, 11, 15)),
        mid.period_number(ms(2026, 11, 14)) + 1
    );
    assert_eq!(
        mid.period_number(ms(2026, 12, 14)),
        mid.period_number(ms(2026, 11, 15))
    );
    assert_eq!(
        mid.period_start_day(mid.period_number(ms(2027, 1, 3))),
        days_from_civil(2026, 12, 15)
    );
    let day = quota(1, QuotaPeriod::Day, 0);
    assert_eq!(
        day.ms_until_next_period(ms(2026, 11, 30) + 1000),
        DAY_MS - 1000
    );
}

#[test]
fn offsets_are_checked_per_period() {
    assert!(quota(1, QuotaPeriod::Day, 0).check().is_ok());
    assert!(quota(1, QuotaPeriod::Day, 1).check().is_err());
    assert!(quota(1, QuotaPeriod::Week, 6).check().is_ok());
    assert!(quota(1, QuotaPeriod::Week, 7).check().is_err());
    assert!(quota(1, QuotaPeriod::Month, 27).check().is_ok());
    assert!(quota(1, QuotaPeriod::Month, 28).check().is_err());
}

#[test]
fn throttle_numbers() {
    let t = |rate, burst| ThrottleFile {
        rate_limit: rate,
        burst_limit: burst,
        scope: crate::cluster::Scope::Node,
    };
    assert!(matches!(t(50.0, 100).check(), Ok(Limit::Rate(_))));
    assert_eq!(t(0.0, 100).check(), Ok(Limit::Closed));
    assert_eq!(t(10.0, 0).check(), Ok(Limit::Closed));
    assert!(t(-1.0, 1).check().is_err());
    assert!(t(f64::INFINITY, 1).check().is_err());
}

#[test]
fn a_quota_is_never_exceeded_across_threads() {
    let slot = Arc::new(Slot::default());
    let admitted: usize = (0..4)
        .map(|_| {
            let slot = slot.clone();
            std::thread::spawn(move || (0..10_000).filter(|_| slot.count_quota(7, 1000)).count())
        })
        .map(|t| t.join().expect("thread"))
        .sum();
    assert_eq!(admitted, 1000);
    assert_eq!(slot.quota_used(7), 1000);
    assert_eq!(slot.quota_used(8), 0, "another period");
    assert!(slot.count_quota(8, 1000), "a new period starts from zero");
    assert_eq!(slot.quota_used(8), 1);
}

#[test]
fn slots_are_allocated_zeroed_and_reused() {
    let slots = UsageSlots::new();
    let mut alloc = SlotAllocator::new();
    let a = alloc.alloc(&slots, 3).expect("alloc");
    let b = alloc.alloc(&slots, 3).expect("alloc");
    assert_ne!(a, b);
    slots.get(a).expect("slot").quota.store(99, Relaxed);
    alloc.release(a, 3);
    assert_eq!(alloc.in_use(), 3);
    let c = alloc.alloc(&slots, 3).expect("alloc");
    assert_eq!(c, a, "a released range is reused");
    assert_eq!(
        slots.get(c).expect("slot").quota.load(Relaxed),
        0,
        "and zeroed"
    );
    assert!(alloc.alloc(&slots, 0).is_none());
    assert!(alloc.alloc(&slots, slots::CHUNK + 1).is_none());
    // A range never straddles two chunks.
    let big = alloc.alloc(&slots, slots::CHUNK - 2).expect("alloc");
    assert_eq!(big % slots::CHUNK, 0);
    assert!(slots.get(big + slots::CHUNK - 3).is_some());
    assert!(slots.get(u32::MAX).is_none());
}

fn limit(rate: f64, burst: u32) -> Limit {
    ThrottleFile {
        rate_limit: rate,
        burst_limit: burst,
        scope: crate::cluster::Scope::Node,
    }
    .check()
    .expect("limit")
}

struct Fixture {
    table: ApiKeyTable,
    slots: UsageSlots,
    stage: u32,
    other_stage: u32,
}

/// Plan 0 covers `stage` (10 r/s, burst 5, quota 3/day, `GET /slow` at 1 r/s burst 1); plan 1
/// covers `other_stage` with no limits. Keys: `key-a...` (plan 0 and 1), `key-b...` disabled,
/// `key-c...` with no plan.
fn fixture() -> Fixture {
    let stage = stage_uid("tests-api", "prod");
    let other_stage = stage_uid("tests-api", "beta");
    let plans = vec![
        PlanLimits::new(
            Some(limit(10.0, 5)),
            Some(quota(3, QuotaPeriod::Day, 0)),
            vec![(stage, vec![("GET /slow".into(), limit(1.0, 1))])],
        ),
        PlanLimits::new(None, None, vec![(other_stage, vec![])]),
    ];
    let slots = UsageSlots::new();
    let mut alloc = SlotAllocator::new();
    let a0 = alloc
        .alloc(&slots, plans[0].slots_per_key())
        .expect("slots");
    let a1 = alloc
        .alloc(&slots, plans[1].slots_per_key())
        .expect("slots");
    let b0 = alloc
        .alloc(&slots, plans[0].slots_per_key())
        .expect("slots");
    let mut builder = ApiKeyTableBuilder::new(plans);
    builder.key(
        b"key-aaaaaaaaaaaaaaaaaaaa",
        true,
        &[
            KeyAssoc { plan: 0, slot: a0 },
            KeyAssoc { plan: 1, slot: a1 },
        ],
    );
    builder.key(
        b"key-bbbbbbbbbbbbbbbbbbbb",
        false,
        &[KeyAssoc { plan: 0, slot: b0 }],
    );
    builder.key(b"key-cccccccccccccccccccc", true, &[]);
    Fixture {
        table: builder.build(),
        slots,
        stage,
        other_stage,
    }
}

#[test]
fn the_table_finds_keys_by_value_and_their_plan_per_stage() {
    let f = fixture();
    assert_eq!(f.table.len(), 3);
    let a = f.table.find(b"key-aaaaaaaaaaaaaaaaaaaa").expect("key a");
    assert!(a.enabled());
    let (p, _, _) = a.plan_for(f.stage).expect("plan for prod");
    assert_eq!(p.quota.map(|q| q.limit), Some(3));
    let (p, _, _) = a.plan_for(f.other_stage).expect("plan for beta");
    assert!(p.quota.is_none());
    assert!(a.plan_for(stage_uid("tests-api", "nowhere")).is_none());
    assert!(
        !f.table
            .find(b"key-bbbbbbbbbbbbbbbbbbbb")
            .expect("b")
            .enabled()
    );
    assert!(
        f.table
            .find(b"key-cccccccccccccccccccc")
            .expect("c")
            .plan_for(f.stage)
            .is_none()
    );
    assert!(f.table.find(b"key-aaaaaaaaaaaaaaaaaaab").is_none());
    assert!(f.table.find(b"").is_none());
    assert!(ApiKeyTable::empty().find(b"anything").is_none());
}

#[test]
fn a_big_table_finds_every_key_and_no_other() {
    let mut b = ApiKeyTableBuilder::new(vec![PlanLimits::new(None, None, vec![(1, vec![])])]);
    for i in 0..50_000 {
        b.key(
            format!("key-{i:020}").as_bytes(),
            true,
            &[KeyAssoc { plan: 0, slot: i }],
        );
    }
    let t = b.build();
    assert_eq!(t.len(), 50_000);
    for i in (0..50_000).step_by(7) {
        let k = t.find(format!("key-{i:020}").as_bytes()).expect("key");
        assert_eq!(k.plan_for(1).map(|p| p.2), Some(i));
    }
    assert!((0..10_000).all(|i| t.find(format!("nokey-{i:020}").as_bytes()).is_none()));
    assert!(
        t.bytes() / t.len() <= 86,
        "{} bytes per key",
        t.bytes() / t.len()
    );
}

fn run(
    f: &Fixture,
    steps: &[RequestStep],
    key: &[u8],
    route: &str,
    now: Now,
) -> Result<(), Refusal> {
    let input = StepInput {
        api_key: Some(key),
        stage: f.stage,
        route_key: route,
    };
    steps::admit(steps, input, &f.table, &f.slots, now)
}

fn kind(r: Result<(), Refusal>) -> Option<RefusalKind> {
    r.err().map(|r| r.kind)
}

#[test]
fn api_keys_are_required_enabled_and_planned_for_the_stage() {
    let f = fixture();
    let steps = steps::compile(true, None, None);
    let now = Now {
        mono_ns: 1_000_000_000,
        epoch_ms: ms(2026, 11, 30),
    };
    assert_eq!(
        run(&f, &steps, b"key-aaaaaaaaaaaaaaaaaaaa", "GET /", now),
        Ok(())
    );
    for bad in [
        &b"key-bbbbbbbbbbbbbbbbbbbb"[..],
        b"key-cccccccccccccccccccc",
        b"key-unknown-unknown-unknown",
    ] {
        assert_eq!(
            kind(run(&f, &steps, bad, "GET /", now)),
            Some(RefusalKind::InvalidApiKey)
        );
    }
    let none = StepInput {
        api_key: None,
        stage: f.stage,
        route_key: "GET /",
    };
    assert_eq!(
        kind(steps::admit(&steps, none, &f.table, &f.slots, now)),
        Some(RefusalKind::InvalidApiKey)
    );
    // No step: nothing is asked of the request.
    assert_eq!(steps::admit(&[], none, &f.table, &f.slots, now), Ok(()));
}

#[test]
fn the_quota_counts_admitted_requests_and_resets_with_the_period() {
    let f = fixture();
    let steps = steps::compile(true, None, None);
    let day = ms(2026, 11, 30);
    let mut mono = 0u64;
    let mut at = |epoch_ms| {
        mono += 1_000_000_000; // a second apart: never throttled
        Now {
            mono_ns: mono,
            epoch_ms,
        }
    };
    let key = b"key-aaaaaaaaaaaaaaaaaaaa";
    for _ in 0..3 {
        assert_eq!(run(&f, &steps, key, "GET /", at(day + 1000)), Ok(()));
    }
    let refused = run(&f, &steps, key, "GET /", at(day + 1000)).expect_err("quota");
    assert_eq!(refused.kind, RefusalKind::QuotaExceeded);
    assert_eq!(refused.retry_after_ms, Some(DAY_MS - 1000));
    assert_eq!(
        run(&f, &steps, key, "GET /", at(day + DAY_MS)),
        Ok(()),
        "next day"
    );
    // Today's count is what usage reports.
    let (_, _, slot) = f
        .table
        .find(key)
        .and_then(|k| k.plan_for(f.stage))
        .expect("plan");
    let s = f.slots.get(slot).expect("slot");
    assert_eq!(
        slots::unpack(s.day.load(Relaxed)),
        ((day / DAY_MS + 1) as u32, 1)
    );
}

#[test]
fn throttles_apply_in_order_and_a_throttled_request_uses_no_quota() {
    let f = fixture();
    let account = Bucket {
        limit: limit(1000.0, 1000),
        gcra: Arc::new(Gcra::new()),
    };
    let route = Bucket {
        limit: limit(1.0, 2),
        gcra: Arc::new(Gcra::new()),
    };
    let steps = steps::compile(true, Some(&account), Some(&route));
    let now = Now {
        mono_ns: 10_000_000_000,
        epoch_ms: ms(2026, 11, 30),
    };
    let key = b"key-aaaaaaaaaaaaaaaaaaaa";
    assert_eq!(run(&f, &steps, key, "GET /", now), Ok(()));
    assert_eq!(run(&f, &steps, key, "GET /", now), Ok(()));
    let r = run(&f, &steps, key, "GET /", now).expect_err("route bucket empty");
    assert_eq!(r.kind, RefusalKind::Throttled);
    assert_eq!(r.retry_after_ms, Some(1000));
    // Two admitted, so one request of the quota of 3 is left.
    let later = Now {
        mono_ns: now.mono_ns + 5_000_000_000,
        ..now
    };
    assert_eq!(run(&f, &steps, key, "GET /", later), Ok(()));
    let later = Now {
        mono_ns: later.mono_ns + 5_000_000_000,
        ..later
    };
    assert_eq!(
        kind(run(&f, &steps, key, "GET /", later)),
        Some(RefusalKind::QuotaExceeded)
    );
}

#[test]
fn the_plans_route_override_replaces_its_throttle_on_that_route() {
    let f = fixture();
    let steps = steps::compile(true, None, None);
    let now = Now {
        mono_ns: 10_000_000_000,
        epoch_ms: ms(2026, 11, 30),
    };
    let key = b"key-aaaaaaaaaaaaaaaaaaaa";
    assert_eq!(run(&f, &steps, key, "GET /slow", now), Ok(()));
    let r = run(&f, &steps, key, "GET /slow", now).expect_err("1 r/s, burst 1");
    assert_eq!(r.kind, RefusalKind::Throttled);
    // The plan's own bucket (burst 5) is untouched by the override's.
    assert_eq!(run(&f, &steps, key, "GET /", now), Ok(()));
}

#[test]
fn a_closed_limit_refuses_everything_with_no_retry_time() {
    let f = fixture();
    let closed = Bucket {
        limit: Limit::Closed,
        gcra: Arc::new(Gcra::new()),
    };
    let steps = steps::compile(false, Some(&closed), None);
    let now = Now {
        mono_ns: 1,
        epoch_ms: 1,
    };
    let r = run(&f, &steps, b"", "GET /", now).expect_err("closed");
    assert_eq!((r.kind, r.retry_after_ms), (RefusalKind::Throttled, None));
}

#[test]
fn stage_uids_are_stable_by_name() {
    let a = stage_uid("uid-api", "prod");
    assert_eq!(stage_uid("uid-api", "prod"), a);
    assert_ne!(stage_uid("uid-api", "beta"), a);
    assert_ne!(stage_uid("uid-api-prod", ""), a);
}

#[test]
fn a_published_table_moves_the_generation() {
    let state = UsageState::new();
    let g = state.generation();
    assert!(state.table().is_empty());
    state.publish(fixture().table);
    assert_ne!(state.generation(), g);
    assert_eq!(state.table().len(), 3);
}

#[test]
fn a_cluster_scoped_plan_counts_on_its_shared_counters_with_the_peers_usage() {
    use crate::cluster::{ClusterBucket, ClusterRate, SharedCounter};
    let stage = stage_uid("tests-api", "cluster");
    let mut plan = PlanLimits::new(
        Some(limit(1000.0, 1000)),
        Some(quota(10, QuotaPeriod::Day, 0)),
        vec![(stage, vec![("GET /slow".into(), limit(1.0, 1))])],
    );
    plan.cluster = true;
    let slots = UsageSlots::new();
    let first = SlotAllocator::new()
        .alloc(&slots, plan.slots_per_key())
        .expect("slots");
    let quota_counter = Arc::new(SharedCounter::new());
    let route_counter = Arc::new(SharedCounter::new());
    let mut b = ApiKeyTableBuilder::new(vec![plan]);
    b.key(
        b"key-clusterrrrrrrrrrr",
        true,
        &[KeyAssoc {
            plan: 0,
            slot: first,
        }],
    );
    // The plan's throttle holds per node (no bucket at offset 0); the route's override and
    // the quota are cluster-wide.
    b.cluster(
        first,
        ClusterAssoc {
            throttles: vec![
                None,
                Some(ClusterBucket {
                    rate: ClusterRate::new(1.0, 2),
                    counter: route_counter.clone(),
                }),
            ]
            .into(),
            quota: Some(quota_counter.clone()),
        },
    );
    let f = Fixture {
        table: b.build(),
        slots,
        stage,
        other_stage: stage,
    };
    let steps = steps::compile(true, None, None);
    let now = Now {
        mono_ns: 10_000_000_000,
        epoch_ms: ms(2026, 11, 30),
    };
    let key = b"key-clusterrrrrrrrrrr";
    let day = quota(10, QuotaPeriod::Day, 0).period_number(now.epoch_ms);
    // The peers used 8 of the cluster's 10 today: two are left here.
    quota_counter.set_peers(slots::pack(day, 8));
    assert_eq!(run(&f, &steps, key, "GET /", now), Ok(()));
    assert_eq!(run(&f, &steps, key, "GET /", now), Ok(()));
    assert_eq!(
        kind(run(&f, &steps, key, "GET /", now)),
        Some(RefusalKind::QuotaExceeded)
    );
    assert_eq!(quota_counter.quota_total(day), 10);
    assert_eq!(
        f.slots.get(first).map(|s| s.quota.load(Relaxed)),
        Some(0),
        "the node's own slot is not where a cluster quota counts"
    );
    // The route's cluster-wide bucket (burst 2): this node takes one, a peer the other.
    quota_counter.set_peers(slots::pack(day, 0));
    assert_eq!(run(&f, &steps, key, "GET /slow", now), Ok(()));
    route_counter.set_peers(1);
    assert_eq!(
        kind(run(&f, &steps, key, "GET /slow", now)),
        Some(RefusalKind::Throttled)
    );
}
