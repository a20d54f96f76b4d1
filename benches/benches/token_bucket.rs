//! The GCRA token bucket (`turnpike_core::gcra`): one decision per request on a throttled
//! route. Conforming requests (a bucket with room), refused ones (an empty bucket), a steady
//! stream at the configured rate, and a bucket shared with another core that is hammering it
//! (a global limit: the compare-and-swap retries under contention). Then a cluster-wide rate's
//! decision (`turnpike_core::cluster::SharedCounter`), without and with peers guessed for.
//!
//! Every bucket is reached through `black_box`: a bucket whose address never escapes lets the
//! compiler treat its atomic as a plain variable, and the bench would time nothing.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use turnpike_benches::{CountingAlloc, print_allocations};
use turnpike_core::cluster::{ClusterRate, SharedCounter, cell::SHARE_ONE};
use turnpike_core::gcra::{Gcra, Quota};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn token_bucket(c: &mut Criterion) {
    let mut g = c.benchmark_group("token_bucket");
    // A huge rate: every check conforms (the CAS path).
    let open = Quota::new(1e9, 1_000_000).expect("quota");
    let bucket = Gcra::new();
    let mut now = 0u64;
    print_allocations("token_bucket/conforming", || {
        now += 1;
        black_box(black_box(&bucket).check(&open, now)).ok()
    });
    // The clocks live outside the bench closures: criterion calls a closure once per sample, and
    // a clock restarting at 0 against a bucket whose TAT kept moving would time refusals.
    g.bench_function("conforming", |b| {
        b.iter(|| {
            now += 1;
            black_box(black_box(&bucket).check(black_box(&open), now)).ok()
        })
    });
    assert_eq!(
        bucket.check(&open, now + 1),
        Ok(()),
        "the conforming bench was refused"
    );
    // An exhausted bucket: every check is refused (a load, no write).
    let closed = Quota::new(1.0, 1).expect("quota");
    let empty = Gcra::new();
    let _ = empty.check(&closed, 0);
    g.bench_function("refused", |b| {
        b.iter(|| black_box(black_box(&empty).check(black_box(&closed), 1)))
    });
    // Requests at exactly the rate, each conforming with no slack left.
    let steady = Quota::new(1000.0, 1).expect("quota");
    let at_rate = Gcra::new();
    let mut t = 0u64;
    g.bench_function("at_rate", |b| {
        b.iter(|| {
            t += 1_000_000;
            black_box(black_box(&at_rate).check(black_box(&steady), t)).ok()
        })
    });
    assert_eq!(
        at_rate.check(&steady, t + 1_000_000),
        Ok(()),
        "the at_rate bench was refused"
    );
    // A cluster-wide rate (`scope: cluster`): the same decision over this node's count, the
    // peers' sum and, between syncs, the guess of what busy peers admitted.
    let cluster_open = ClusterRate::new(1e9, 1_000_000).expect("rate");
    let counter = SharedCounter::new();
    counter.set_peers(1_000);
    let mut tc = 0u64;
    g.bench_function("cluster_conforming", |b| {
        b.iter(|| {
            tc += 1;
            black_box(black_box(&counter).take_rate(black_box(&cluster_open), tc)).ok()
        })
    });
    let guessed = SharedCounter::new();
    guessed.set_rate_peers(1_000, 2 * SHARE_ONE, 0);
    let mut tg = 0u64;
    g.bench_function("cluster_conforming_guessed", |b| {
        b.iter(|| {
            tg += 1;
            black_box(black_box(&guessed).take_rate(black_box(&cluster_open), tg)).ok()
        })
    });
    assert_eq!(
        guessed.take_rate(&cluster_open, tg + 1),
        Ok(()),
        "the cluster bench was refused"
    );
    // One bucket, two cores: another thread takes tokens from it as fast as it can while this
    // one is timed. Only meaningful where there is a second CPU.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        let shared = Arc::new(Gcra::new());
        let stop = Arc::new(AtomicBool::new(false));
        let rival = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let now = start.elapsed().as_nanos() as u64;
                    black_box(shared.check(&open, now)).ok();
                }
            })
        };
        let start = Instant::now();
        g.bench_function("contended_2_cores", |b| {
            b.iter(|| {
                let now = start.elapsed().as_nanos() as u64;
                black_box(black_box(&*shared).check(black_box(&open), now)).ok()
            })
        });
        stop.store(true, Ordering::Relaxed);
        rival.join().expect("rival thread");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = turnpike_benches::criterion();
    targets = token_bucket
}
criterion_main!(benches);
