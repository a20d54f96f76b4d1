//! Inputs for `benches/usage.rs`: a key table of many API keys, each with its own usage slot,
//! the request steps of a route that requires a key under an account-level and a route
//! throttle, and streams of key values as requests would bring them.
//!
//! A stream holds the key values themselves, back to back, so a bench reads it sequentially
//! (the prefetcher keeps it cheap, as a request buffer just read from a socket is): the cache
//! misses a bench sees are the table's and the slots', not the stream's.

use std::sync::Arc;

use turnpike_core::{
    gcra::Gcra,
    usage::{
        ApiKeyTable, ApiKeyTableBuilder, Bucket, KeyAssoc, Limit, Now, PlanLimits, QuotaPeriod,
        QuotaSettings, RequestStep, Slot, SlotAllocator, ThrottleFile, UsageSlots, stage_uid,
        steps::{self, StepInput},
    },
};

/// Bytes in a key value: AWS generates 40-character keys.
pub const KEY_LEN: usize = 40;

/// One key value.
pub type KeyValue = [u8; KEY_LEN];

/// The route the steps are compiled for.
pub const ROUTE_KEY: &str = "GET /pets";

/// The `n`-th key's value: 40 characters of `[A-Za-z0-9]`, distinct for every `n` (the
/// first 11 characters spell `n` in base 62; the rest are a mix of it).
pub fn key_value(n: u64) -> KeyValue {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut v = [0u8; KEY_LEN];
    let mut x = n;
    for b in &mut v[..11] {
        *b = ALPHABET[(x % 62) as usize];
        x /= 62;
    }
    let mut h = splitmix(n);
    for (i, b) in v[11..].iter_mut().enumerate() {
        if i % 8 == 0 {
            h = splitmix(h);
        }
        *b = ALPHABET[(h % 62) as usize];
        h >>= 8;
    }
    v
}

/// splitmix64: a well-mixed word from any word.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A throttle far above anything a bench reaches: every check conforms (the compare-and-swap
/// path, not the refusal's load-only one).
pub fn open_limit() -> Limit {
    ThrottleFile {
        rate_limit: 1e9,
        burst_limit: 1_000_000,
        scope: turnpike_core::cluster::Scope::Node,
    }
    .check()
    .expect("limit")
}

/// `keys` API keys, each enabled and associated with one usage plan (a throttle and a monthly
/// quota, both far above what a bench uses) for one stage, through a slot of its own; and the
/// steps of a route that requires a key, under an account-level and a route throttle.
pub struct KeyFixture {
    pub table: ApiKeyTable,
    pub slots: UsageSlots,
    pub stage: u32,
    /// `RequireApiKey`, the account's and the route's `Throttle`, `UsagePlan`.
    pub steps: Box<[RequestStep]>,
    /// Keys in the table: `key_value(0..keys)`.
    pub keys: u64,
}

impl KeyFixture {
    pub fn new(keys: u64) -> KeyFixture {
        let stage = stage_uid("bench", "prod");
        let plan = PlanLimits::new(
            Some(open_limit()),
            Some(QuotaSettings {
                limit: u32::MAX,
                period: QuotaPeriod::Month,
                offset: 0,
                scope: Default::default(),
            }),
            vec![(stage, vec![])],
        );
        let per_key = plan.slots_per_key();
        let slots = UsageSlots::new();
        let mut alloc = SlotAllocator::new();
        let mut builder = ApiKeyTableBuilder::new(vec![plan]);
        builder.reserve(keys as usize);
        for n in 0..keys {
            let slot = alloc.alloc(&slots, per_key).expect("slots");
            builder.key(&key_value(n), true, &[KeyAssoc { plan: 0, slot }]);
        }
        let bucket = || Bucket {
            limit: open_limit(),
            gcra: Arc::new(Gcra::new()),
        };
        KeyFixture {
            table: builder.build(),
            slots,
            stage,
            steps: steps::compile(true, Some(&bucket()), Some(&bucket())),
            keys,
        }
    }

    /// `len` key values drawn at random (seeded) from the first `among` keys.
    pub fn stream(&self, among: u64, len: usize, seed: u64) -> Vec<KeyValue> {
        let among = among.min(self.keys);
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = splitmix(x);
                key_value(((u128::from(x) * u128::from(among)) >> 64) as u64)
            })
            .collect()
    }

    /// The step input of a request to [`ROUTE_KEY`] with `key`.
    #[inline]
    pub fn input<'a>(&self, key: &'a [u8]) -> StepInput<'a> {
        StepInput {
            api_key: Some(key),
            stage: self.stage,
            route_key: ROUTE_KEY,
        }
    }

    /// Data-plane bytes per key: the table's (entries at its load factor, extra associations)
    /// plus the one slot each key has.
    pub fn bytes_per_key(&self) -> f64 {
        let slots = self.table.len() * std::mem::size_of::<Slot>();
        (self.table.bytes() + slots) as f64 / self.table.len() as f64
    }
}

/// A clock for the steps that moves 100 ns per request from a fixed day (2026-01-15 UTC), so
/// the buckets see time pass and the quota stays in one period.
#[derive(Debug, Clone, Copy)]
pub struct BenchClock(pub u64);

impl BenchClock {
    #[inline]
    pub fn tick(&mut self) -> Now {
        self.0 += 100;
        Now {
            mono_ns: self.0,
            epoch_ms: 1_768_435_200_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use turnpike_core::usage::RefusalKind;

    use super::*;

    #[test]
    fn key_values_are_distinct_and_alphanumeric() {
        let values: std::collections::HashSet<KeyValue> = (0..100_000).map(key_value).collect();
        assert_eq!(values.len(), 100_000);
        assert!(key_value(7).iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn every_drawn_key_is_admitted_through_four_steps_and_a_stranger_is_not() {
        let f = KeyFixture::new(20_000);
        assert_eq!(f.table.len(), 20_000);
        assert_eq!(f.steps.len(), 4, "{:?}", f.steps);
        let mut clock = BenchClock(1_000_000_000);
        for key in f.stream(20_000, 5_000, 1) {
            assert!(f.table.find(&key).is_some());
            let r = steps::admit(&f.steps, f.input(&key), &f.table, &f.slots, clock.tick());
            assert_eq!(r, Ok(()));
        }
        let stranger = key_value(20_000);
        let r = steps::admit(
            &f.steps,
            f.input(&stranger),
            &f.table,
            &f.slots,
            clock.tick(),
        );
        assert_eq!(r.map_err(|r| r.kind), Err(RefusalKind::InvalidApiKey));
        // Admitted requests are counted in their key's slot: the quota step ran.
        let key = f.stream(20_000, 1, 1)[0];
        let (plan, _, slot) = f
            .table
            .find(&key)
            .and_then(|k| k.plan_for(f.stage))
            .expect("plan");
        let period = plan
            .quota
            .expect("quota")
            .period_number(clock.tick().epoch_ms);
        assert!(f.slots.get(slot).expect("slot").quota_used(period) >= 1);
    }

    #[test]
    fn a_hot_stream_draws_only_from_its_set() {
        let f = KeyFixture::new(1_000);
        let hot: std::collections::HashSet<KeyValue> = (0..10).map(key_value).collect();
        assert!(f.stream(10, 500, 3).iter().all(|k| hot.contains(k)));
    }

    #[test]
    fn admitting_allocates_nothing() {
        let f = KeyFixture::new(1_000);
        let keys = f.stream(1_000, 1_000, 2);
        let mut clock = BenchClock(1);
        let mut i = 0;
        let n = crate::steady_state_allocations(1_000, || {
            i = (i + 1) % keys.len();
            steps::admit(
                &f.steps,
                f.input(&keys[i]),
                &f.table,
                &f.slots,
                clock.tick(),
            )
        });
        assert_eq!(n, 0);
    }
}
