//! The stage cache's lookup (`turnpike_core::cache`): building a request's key (a keyed
//! 128-bit SipHash of method, path and key parameters) and finding its entry in a core's
//! store (quick_cache's unsync S3-FIFO map), for a hit and a miss, in a store holding 10,000
//! entries; and the RFC 9111 reuse decision of the `http` mode. A hit in the gateway is this
//! plus copying the stored bytes into the output buffer.

use std::hint::black_box;
use std::rc::Rc;

use criterion::{Criterion, criterion_group, criterion_main};
use turnpike_benches::{CountingAlloc, print_allocations};
use turnpike_core::cache::{
    Fingerprint, KeyBuilder, ResponseStore, Slot, StoredResponse,
    http::{Directives, Freshness, reuse},
    key::query_values,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SECRET: (u64, u64) = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);

fn key(path: &[u8], query: &[u8], accept: &[u8]) -> Fingerprint {
    let mut k = KeyBuilder::new(SECRET);
    k.part(b"aws").part(b"GET").part(path).part(b"type");
    for v in query_values(query, b"type") {
        k.optional(Some(v));
    }
    k.optional(None)
        .part(b"accept")
        .optional(Some(accept))
        .optional(None);
    k.finish()
}

fn entry(i: usize) -> Slot {
    Slot::Response(Rc::new(StoredResponse {
        status: 200,
        head: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"abc\"\r\n"[..].into(),
        body: format!("{{\"id\":{i},\"name\":\"pet {i}\"}}")
            .into_bytes()
            .into(),
        stored_ms: 0,
        expires_ms: u64::MAX,
        http: None,
    }))
}

fn cache(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache");
    let mut store = ResponseStore::new(64 << 20);
    for i in 0..10_000 {
        let path = format!("/pets/{i}");
        store.insert(
            key(path.as_bytes(), b"type=dog&page=2", b"application/json"),
            entry(i),
        );
    }
    print_allocations("cache/key", || {
        key(b"/pets/42", b"type=dog&page=2", b"application/json")
    });
    g.bench_function("key", |b| {
        b.iter(|| {
            key(
                black_box(b"/pets/42"),
                black_box(b"type=dog&page=2"),
                black_box(b"application/json"),
            )
        })
    });
    print_allocations("cache/hit", || {
        let k = key(b"/pets/42", b"type=dog&page=2", b"application/json");
        store.get(k, 1).is_some()
    });
    g.bench_function("hit", |b| {
        b.iter(|| {
            let k = key(
                black_box(b"/pets/42"),
                black_box(b"type=dog&page=2"),
                black_box(b"application/json"),
            );
            black_box(store.get(k, 1))
        })
    });
    assert!(
        store
            .get(key(b"/pets/42", b"type=dog&page=2", b"application/json"), 1)
            .is_some()
    );
    g.bench_function("miss", |b| {
        b.iter(|| {
            let k = key(
                black_box(b"/cats/42"),
                black_box(b"type=dog"),
                black_box(b"application/json"),
            );
            black_box(store.get(k, 1))
        })
    });
    let f = Freshness {
        request_ms: 1_000,
        response_ms: 1_000,
        date_s: Some(1),
        lifetime_s: 60,
        ..Freshness::default()
    };
    g.bench_function("http_reuse", |b| {
        b.iter(|| {
            let req = Directives::parse([black_box(&b"max-age=30, max-stale=10"[..])]);
            black_box(reuse(black_box(&f), &req, false, black_box(20_000)))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = turnpike_benches::criterion();
    targets = cache
}
criterion_main!(benches);
