//! The heads the gateway writes per proxied request: the upstream request head (request line
//! with the integration's path, end-to-end headers, forwarding headers) and the response head
//! back to the client. The output buffer is reused across iterations, as a worker reuses its
//! buffers, so steady state allocates nothing (printed before each bench).
//!
//! `per_request` times everything the gateway computes for a proxied request's head before any
//! I/O: scan, parse, resolve, write the upstream head.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use turnpike_benches::{
    CountingAlloc, UPSTREAM_RESPONSE, UPSTREAM_RESPONSE_CHUNKED, answer_lines, client, limits,
    parsed_request, parsed_response, print_allocations, request_samples, route, scan_and_parse,
    shop_config_yaml, snapshot,
};
use turnpike_proxy::{
    exchange,
    h1::request::{HeadScanner, RequestHead},
    respond,
    upstream::response as client_response,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn upstream_request_heads(c: &mut Criterion) {
    let snap = snapshot(&shop_config_yaml());
    let client = client();
    let mut out = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("upstream_request_head");
    for s in request_samples() {
        let buf = s.bytes;
        let head = parsed_request(buf);
        let routed = route(&snap, buf, &head);
        let mut run = || {
            out.clear();
            routed.write_head(&mut out, black_box(buf), &head, &client);
            black_box(out.len())
        };
        let written = run() as u64;
        print_allocations(&format!("upstream_request_head/{}", s.name), &mut run);
        g.throughput(Throughput::Bytes(written));
        g.bench_function(s.name, |b| b.iter(&mut run));
    }
    g.finish();
}

fn client_response_heads(c: &mut Criterion) {
    let mut out = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("client_response_head");
    for (name, raw) in [
        ("json_200_length", UPSTREAM_RESPONSE),
        ("stream_200_rechunked", UPSTREAM_RESPONSE_CHUNKED),
    ] {
        let head = parsed_response(raw);
        let framing = client_response::client_framing(&head, 1);
        let mut run = || {
            out.clear();
            client_response::write_head(&mut out, black_box(raw), &head, framing, false);
            respond::finish_head(&mut out, &answer_lines());
            black_box(out.len())
        };
        let written = run() as u64;
        print_allocations(&format!("client_response_head/{name}"), &mut run);
        g.throughput(Throughput::Bytes(written));
        g.bench_function(name, |b| b.iter(&mut run));
    }
    g.finish();
}

/// `exchange::route` (domain or stage, route table, plan) plus what a plan with no policies
/// costs before its integration: the checks that find no CORS policy and no access log.
fn plan_lookup(c: &mut Criterion) {
    let snap = snapshot(&shop_config_yaml());
    let limits = limits();
    let mut scanner = HeadScanner::default();
    let mut g = c.benchmark_group("plan_lookup");
    for s in request_samples() {
        let mut head = RequestHead::default();
        scan_and_parse(s.bytes, &limits, &mut scanner, &mut head).expect("parses");
        let run = || {
            let routed = exchange::route(&snap, black_box(s.bytes), &head);
            let plan = routed.plan;
            black_box((
                plan.policies.cors.is_some(),
                plan.access_log.is_some(),
                routed.params.len(),
            ));
        };
        print_allocations(&format!("plan_lookup/{}", s.name), run);
        g.bench_function(s.name, |b| b.iter(run));
    }
    g.finish();
}

fn per_request(c: &mut Criterion) {
    let snap = snapshot(&shop_config_yaml());
    let limits = limits();
    let client = client();
    let mut scanner = HeadScanner::default();
    let mut head = RequestHead::default();
    let mut out = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("per_request");
    for s in request_samples() {
        let mut run = || {
            let buf = black_box(s.bytes);
            scan_and_parse(buf, &limits, &mut scanner, &mut head).expect("parses");
            let routed = route(&snap, buf, &head);
            out.clear();
            routed.write_head(&mut out, buf, &head, &client);
            black_box(&out);
        };
        print_allocations(&format!("per_request/{}", s.name), &mut run);
        g.throughput(Throughput::Bytes(s.head_len as u64));
        g.bench_function(s.name, |b| b.iter(&mut run));
    }
    g.finish();
}

criterion_group! {
    name = header_mapping;
    config = turnpike_benches::criterion();
    targets = upstream_request_heads, client_response_heads, plan_lookup, per_request
}
criterion_main!(header_mapping);
