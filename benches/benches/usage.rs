//! API keys and traffic control (`turnpike_core::usage`): what a request to a route with
//! `api_key_required: true` pays before its integration runs. Issue 9's target: a key looked
//! up among 1,000,000 plus three bucket checks in under 100 ns, in at most 150 bytes of
//! data-plane memory per key.
//!
//! Two ways to draw keys, because they give different answers and both are true:
//! - `random_1M`: every request brings a key drawn at random from all 1,000,000. The table
//!   (64 MiB of entries) and the slots (24 MiB) are far bigger than the last-level cache, so
//!   nearly every request misses twice (its entry and its slot): the memory-bound worst case.
//! - `hot_10k`: keys drawn from 10,000 of them (the active clients of a busy hour): their
//!   entries and slots stay in cache.
//!
//! Pages matter as much as caches: on 4 KiB pages, each of the hot 10,000 entries sits on a
//! page of its own in the 64 MiB table, so even a cached entry costs a TLB miss (a nested page
//! walk on a VM). `GLIBC_TUNABLES=glibc.malloc.hugetlb=1 cargo bench ...` has the allocator
//! ask for transparent huge pages (THP in `madvise` mode), which shows what the table and the
//! slots would cost if they asked for them themselves (`madvise(MADV_HUGEPAGE)`).
//!
//! `admit_3_buckets` runs the compiled steps of such a route: the key (SipHash-1-3 of 40 bytes,
//! a probe, the plan for the stage), the account-level throttle, the route's throttle, the
//! key's usage-plan throttle and its monthly quota (and the day's usage count). `lookup` is
//! the key table alone; `unconfigured` is a route with no step, what every other route pays.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use turnpike_benches::{
    CountingAlloc, print_allocations,
    usage::{BenchClock, KeyFixture, KeyValue},
};
use turnpike_core::usage::steps;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const KEYS: u64 = 1_000_000;
const HOT: u64 = 10_000;
/// Requests in the random stream (a power of two): 40 MiB of key values, read in order, and
/// long enough that the entries and slots it touches (a million of each) never fit in cache.
const STREAM: usize = 1 << 20;
/// Requests in the hot stream: 1.3 MiB, cycled, so that reading it does not push the hot set's
/// entries and slots out of the cache the way a 40 MiB stream would.
const HOT_STREAM: usize = 1 << 15;

fn usage(c: &mut Criterion) {
    let f = KeyFixture::new(KEYS);
    println!(
        "usage: {} keys: table {} bytes ({:.1} per key) + one {}-byte slot per key = {:.1} \
         bytes of data-plane memory per key (target: at most 150)",
        f.table.len(),
        f.table.bytes(),
        f.table.bytes() as f64 / f.table.len() as f64,
        std::mem::size_of::<turnpike_core::usage::Slot>(),
        f.bytes_per_key(),
    );
    let streams: [(&str, Vec<KeyValue>); 2] = [
        ("random_1M", f.stream(KEYS, STREAM, 1)),
        ("hot_10k", f.stream(HOT, HOT_STREAM, 2)),
    ];
    let mut clock = BenchClock(1_000_000_000);

    let mut g = c.benchmark_group("usage/lookup");
    for (name, keys) in &streams {
        let mut i = 0usize;
        g.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 1) & (keys.len() - 1);
                black_box(f.table.find(black_box(&keys[i])).map(|k| k.enabled()))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("usage/admit_3_buckets");
    for (name, keys) in &streams {
        let mut i = 0usize;
        let mut admit = || {
            i = (i + 1) & (keys.len() - 1);
            let input = f.input(black_box(&keys[i]));
            steps::admit(&f.steps, input, &f.table, &f.slots, clock.tick())
        };
        print_allocations(&format!("usage/admit_3_buckets/{name}"), &mut admit);
        g.bench_function(*name, |b| b.iter(|| black_box(admit())));
        // A bench of refusals would time the wrong path: every request must have passed.
        assert_eq!(admit(), Ok(()), "admit_3_buckets/{name} was refused");
    }
    g.finish();

    let mut g = c.benchmark_group("usage");
    let keys = &streams[0].1;
    let mut i = 0usize;
    g.bench_function("unconfigured", |b| {
        b.iter(|| {
            i = (i + 1) & (STREAM - 1);
            let input = f.input(black_box(&keys[i]));
            black_box(steps::admit(
                black_box(&[]),
                input,
                &f.table,
                &f.slots,
                clock.tick(),
            ))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = turnpike_benches::criterion();
    targets = usage
}
criterion_main!(benches);
