//! Route matching: `RouteTable::find` on a small API (10 routes) and on one API of 10,000
//! routes (the bar: well under a microsecond per match), then the whole resolution a request
//! goes through, `Config::resolve(host, method, path)`: domain or stage prefix, then routes.

use std::hint::black_box;

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use turnpike_benches::{
    CountingAlloc, LARGE_CASES, LARGE_RESOLVE_CASES, ResolveCase, RouteCase, SHOP_RESOLVE_CASES,
    SMALL_CASES, config, large_config_yaml, large_table, print_allocations, shop_config_yaml,
    small_table,
};
use turnpike_core::route::RouteTable;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn bench_cases(
    g: &mut BenchmarkGroup<'_, WallTime>,
    group: &str,
    table: &RouteTable<u32>,
    cases: &[RouteCase],
) {
    for case in cases {
        let (method, path) = (case.method.as_bytes(), case.path.as_bytes());
        let run = || {
            black_box(
                table
                    .find(black_box(method), black_box(path))
                    .map(|m| *m.value),
            );
        };
        print_allocations(&format!("{group}/{}", case.name), run);
        g.bench_function(case.name, |b| b.iter(run));
    }
}

fn small(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_10");
    bench_cases(&mut g, "route_10", &small_table(), SMALL_CASES);
    g.finish();
}

fn large(c: &mut Criterion) {
    let table = large_table();
    let mut g = c.benchmark_group("route_10k");
    bench_cases(&mut g, "route_10k", &table, LARGE_CASES);
    // A match and a read of its captured parameter, as an integration URI's `{id}` does.
    g.bench_function("middle_and_param_get", |b| {
        b.iter(|| {
            let m = table
                .find(black_box(b"GET"), black_box(b"/r4950/items/42"))
                .expect("middle route");
            black_box(m.params.get("id"));
        })
    });
    g.finish();
}

fn bench_resolve(c: &mut Criterion, group: &str, yaml: &str, cases: &[ResolveCase]) {
    let config = config(yaml);
    let mut g = c.benchmark_group(group);
    for case in cases {
        let (host, method, path) = (
            case.host.as_bytes(),
            case.method.as_bytes(),
            case.path.as_bytes(),
        );
        let run = || {
            black_box(
                config
                    .resolve(black_box(host), black_box(method), black_box(path))
                    .map(|r| r.route_index),
            );
        };
        print_allocations(&format!("{group}/{}", case.name), run);
        g.bench_function(case.name, |b| b.iter(run));
    }
    g.finish();
}

fn resolve(c: &mut Criterion) {
    bench_resolve(c, "resolve_shop", &shop_config_yaml(), SHOP_RESOLVE_CASES);
    bench_resolve(c, "resolve_10k", &large_config_yaml(), LARGE_RESOLVE_CASES);
}

criterion_group! {
    name = router;
    config = turnpike_benches::criterion();
    targets = small, large, resolve
}
criterion_main!(router);
