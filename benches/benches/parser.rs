//! The parsing a connection does per request: find the end of the head and parse it strictly
//! (scanner and parsed head reused, as a connection reuses them), decode a chunked body, and
//! parse the upstream's response head. Throughput is over the bytes each step reads.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use turnpike_benches::{
    CountingAlloc, UPSTREAM_RESPONSE, UPSTREAM_RESPONSE_CHUNKED, chunked_body, decode_chunked,
    limits, print_allocations, request_samples, scan_and_parse,
};
use turnpike_proxy::h1::{
    chunked::ChunkedDecoder,
    request::{HeadScanner, RequestHead},
    response::{self, ResponseHead},
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn request_heads(c: &mut Criterion) {
    let limits = limits();
    let mut g = c.benchmark_group("request_head");
    for s in request_samples() {
        let mut scanner = HeadScanner::default();
        let mut head = RequestHead::default();
        let mut run = || {
            scan_and_parse(black_box(s.bytes), &limits, &mut scanner, &mut head)
                .expect("bench request heads parse");
            black_box(&head);
        };
        print_allocations(&format!("request_head/{}", s.name), &mut run);
        g.throughput(Throughput::Bytes(s.head_len as u64));
        g.bench_function(s.name, |b| b.iter(&mut run));
    }
    g.finish();
}

fn chunked_bodies(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunked_decode");
    for (name, chunk) in [
        ("64KiB_in_4KiB_chunks", 4096),
        ("64KiB_in_256B_chunks", 256),
    ] {
        let body = chunked_body(64 * 1024, chunk);
        let mut run = || {
            let mut decoder = ChunkedDecoder::new();
            black_box(decode_chunked(&mut decoder, black_box(&body)));
        };
        print_allocations(&format!("chunked_decode/{name}"), &mut run);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(&mut run));
    }
    g.finish();
}

fn response_heads(c: &mut Criterion) {
    let limits = limits();
    let mut g = c.benchmark_group("response_head");
    for (name, raw) in [
        ("json_200_length", UPSTREAM_RESPONSE),
        ("stream_200_chunked", UPSTREAM_RESPONSE_CHUNKED),
    ] {
        let mut head = ResponseHead::default();
        let mut run = || {
            let complete = response::parse(
                black_box(raw),
                limits.max_head_bytes,
                limits.max_headers,
                false,
                &mut head,
            )
            .expect("bench response heads parse");
            black_box((complete, &head));
        };
        print_allocations(&format!("response_head/{name}"), &mut run);
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| b.iter(&mut run));
    }
    g.finish();
}

criterion_group! {
    name = parser;
    config = turnpike_benches::criterion();
    targets = request_heads, chunked_bodies, response_heads
}
criterion_main!(parser);
