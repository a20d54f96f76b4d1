//! Access log lines (`turnpike_core::access_log`): AWS's JSON example format rendered for one
//! request into a reused buffer, as a worker does after each response; the CLF format beside
//! it; and making a request id. A render must not allocate once the buffer has grown.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use turnpike_benches::{CountingAlloc, print_allocations};
use turnpike_core::access_log::AccessLogFormat;
use turnpike_core::context::{RequestContext, RequestIds};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn ctx() -> RequestContext<'static> {
    RequestContext {
        request_id: "JKJaXmhLoAMEJeQ=",
        source_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) \"quoted\""),
        request_time_epoch_ms: 1_747_602_530_123,
        method: "GET",
        path: "/prod/users/42",
        protocol: "HTTP/1.1",
        route_key: "GET /users/{id}",
        stage: "prod",
        status: 200,
        response_length: 1234,
        response_latency_ms: 3,
        ..Default::default()
    }
}

fn access_log(c: &mut Criterion) {
    let mut g = c.benchmark_group("access_log");
    let ctx = ctx();
    for name in ["json", "clf"] {
        let format = AccessLogFormat::parse(name).expect("format");
        let mut out = Vec::with_capacity(512);
        print_allocations(&format!("access_log/{name}"), || {
            out.clear();
            format.render_line(black_box(&ctx), &mut out);
            out.len()
        });
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(&format).render_line(black_box(&ctx), &mut out);
                black_box(out.len())
            })
        });
    }
    let mut ids = RequestIds::new(0, 0x5eed);
    let mut now = 1_747_602_530_123u64;
    g.bench_function("request_id", |b| {
        b.iter(|| {
            now += 1;
            black_box(ids.next(black_box(now)))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = turnpike_benches::criterion();
    targets = access_log
}
criterion_main!(benches);
