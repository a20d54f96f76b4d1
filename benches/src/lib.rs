//! Shared inputs for the criterion benches: request and response heads as clients and upstreams
//! send them, route sets, config documents, and the compiled gateway state a request runs
//! against.
//!
//! Every input is checked by the tests at the bottom to take the path its bench claims to
//! measure: a head that fails to parse, or a path that misses the route it is named after, would
//! time an error path instead. The tests also hold the hot paths to their promise of no
//! allocation per request, counted by [`CountingAlloc`].
//!
//! - `benches/parser.rs`: request heads, chunked bodies, upstream response heads;
//! - `benches/router.rs`: route tables of 10 and 10,000 routes, and whole-config resolution;
//! - `benches/header_mapping.rs`: the heads written upstream and back to the client;
//! - `benches/usage.rs`: API key tables and traffic-control steps ([`usage`]).
//! - `benches/jwt.rs`: JWT authorizer verification (RS256, ES256, EdDSA), uncached.
//! - `benches/template.rs`: mapping templates (AWS's PetStore template over 1 KiB of JSON).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use criterion::Criterion;
use turnpike_core::{
    config::{Config, GatewayFile, load},
    metrics::MetricsRegistry,
    route::{RouteKey, RouteTable},
};
use turnpike_proxy::{
    exchange,
    h1::{
        chunked::{ChunkedDecoder, Event},
        encode,
        request::{self, HeadScanner, Limits, RequestHead},
        response::{self, ResponseHead},
    },
    plan::{PlanIntegration, ProxyPlan},
    respond,
    snapshot::Snapshot,
    upstream::request::{self as upstream_request, ClientInfo},
};

/// Criterion settings sized for a shared 2-core VM: short warm-up and measurement, still 100
/// samples. Command-line flags (`--measurement-time`, `--sample-size`, ...) override them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

// ---------------------------------------------------------------------------------------------
// Request and response heads

/// A request head as a client sends it, with a name for bench ids.
pub struct Sample {
    pub name: &'static str,
    /// What arrives on the connection: the head, then any body bytes.
    pub bytes: &'static [u8],
    /// Length of the head (what the scanner and parser look at).
    pub head_len: usize,
}

/// `curl https://api.example.com/users/42`.
pub const CURL_GET: &[u8] = b"GET /users/42 HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
\r\n";

/// A browser navigation: 15 header fields, about 700 bytes.
pub const BROWSER_GET: &[u8] = b"GET /products/12345?ref=home&utm_source=newsletter HTTP/1.1\r\n\
Host: api.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://api.example.com/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=3f9a1c2e; theme=dark\r\n\
\r\n";

/// An API client's POST with a JSON body, behind a load balancer that added X-Forwarded-For.
pub const POST_JSON: &[u8] = b"POST /orders HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: python-requests/2.31.0\r\n\
Accept-Encoding: gzip, deflate\r\n\
Accept: application/json\r\n\
Connection: keep-alive\r\n\
Content-Type: application/json\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\r\n\
X-Forwarded-For: 203.0.113.7\r\n\
Content-Length: 48\r\n\
\r\n\
{\"item\":\"sku-1234\",\"quantity\":2,\"express\":true}\n";

/// The three request samples, in bench order.
pub fn request_samples() -> [Sample; 3] {
    [
        sample("curl_get", CURL_GET),
        sample("browser_get", BROWSER_GET),
        sample("post_content_length", POST_JSON),
    ]
}

fn sample(name: &'static str, bytes: &'static [u8]) -> Sample {
    let head_len = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |i| i + 4);
    Sample {
        name,
        bytes,
        head_len,
    }
}

/// The default request limits (`gateway.max_header_bytes`, `gateway.max_headers`).
pub fn limits() -> Limits {
    let gw = GatewayFile::default();
    Limits {
        max_head_bytes: gw.max_header_bytes,
        max_headers: gw.max_headers,
    }
}

/// What a connection does per request before routing: find the head's end, then parse it.
/// `scanner` and `head` are reused across calls, as a connection reuses them.
#[inline]
pub fn scan_and_parse(
    buf: &[u8],
    limits: &Limits,
    scanner: &mut HeadScanner,
    head: &mut RequestHead,
) -> Result<(), request::HeadError> {
    scanner.reset();
    match scanner.scan(buf, limits)? {
        Some((start, end)) => request::parse(buf, start, end, limits, head),
        None => Err(request::HeadError::BadRequest("incomplete head")),
    }
}

/// A parsed request head; panics if `raw` does not parse (inputs here are fixed).
pub fn parsed_request(raw: &[u8]) -> RequestHead {
    let mut head = RequestHead::default();
    scan_and_parse(raw, &limits(), &mut HeadScanner::default(), &mut head)
        .expect("bench request heads parse");
    head
}

/// A typical JSON response from an upstream behind nginx.
pub const UPSTREAM_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 14 May 2024 09:26:53 GMT\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1842\r\n\
Connection: keep-alive\r\n\
Keep-Alive: timeout=60\r\n\
Vary: Accept-Encoding\r\n\
Cache-Control: private, max-age=0, no-cache\r\n\
ETag: W/\"732-k5rT0xQ2c9bS3vH1mZ8aYw\"\r\n\
X-Request-Id: 7f3c9a52-1d2b-4c8e-9f0a-6b5e4d3c2b1a\r\n\
Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n\
\r\n";

/// A streamed upstream response: chunked, no length.
pub const UPSTREAM_RESPONSE_CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 14 May 2024 09:26:53 GMT\r\n\
Content-Type: text/event-stream\r\n\
Transfer-Encoding: chunked\r\n\
Connection: keep-alive\r\n\
Cache-Control: no-cache\r\n\
X-Request-Id: 7f3c9a52-1d2b-4c8e-9f0a-6b5e4d3c2b1a\r\n\
\r\n";

/// A parsed upstream response head (for a non-HEAD request); panics if `raw` does not parse.
pub fn parsed_response(raw: &[u8]) -> ResponseHead {
    let l = limits();
    let mut head = ResponseHead::default();
    let complete = response::parse(raw, l.max_head_bytes, l.max_headers, false, &mut head)
        .expect("bench response heads parse");
    assert!(complete, "bench response heads are complete");
    head
}

/// A chunked body of `total` data bytes in chunks of `chunk` bytes, then the last chunk.
pub fn chunked_body(total: usize, chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total + total / chunk.max(1) * 12 + 8);
    let mut left = total;
    let mut fill = b'a';
    while left > 0 {
        let n = left.min(chunk);
        encode::chunk_head(&mut out, n);
        out.extend(std::iter::repeat_n(fill, n));
        out.extend_from_slice(b"\r\n");
        fill = if fill == b'z' { b'a' } else { fill + 1 };
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Decodes a whole chunked body held in one buffer, as a body pump does with what one read
/// returned; returns the data bytes seen. Panics on malformed input.
#[inline]
pub fn decode_chunked(decoder: &mut ChunkedDecoder, input: &[u8]) -> usize {
    let mut pos = 0;
    let mut data = 0;
    loop {
        match decoder
            .decode(&input[pos..])
            .expect("bench bodies are well-formed")
        {
            (n, Event::Data(r)) => {
                data += r.len();
                pos += n;
            }
            (_, Event::Done) => return data,
            (_, Event::NeedMore) => panic!("bench bodies are complete"),
            (n, Event::LastChunk | Event::Trailer(_)) => pos += n,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes and configs

/// A realistic small API (10 routes): statics, `{id}`, a nested param, one method on several
/// paths, an `ANY /{proxy+}` catch-all and `$default`. (key, integration).
pub const SMALL_API: [(&str, &str); 10] = [
    ("GET /users", "users"),
    ("POST /users", "users"),
    ("GET /users/{id}", "user"),
    ("PUT /users/{id}", "user"),
    ("DELETE /users/{id}", "user"),
    ("GET /users/{id}/orders", "orders"),
    ("POST /orders", "orders"),
    ("GET /health", "health"),
    ("ANY /{proxy+}", "catchall"),
    ("$default", "hello"),
];

/// How many routes the large API has.
pub const LARGE_ROUTES: usize = 10_000;
/// Of those, `GET /r{i}/items/{id}` for `i` below this; then 50 statics and 50 greedy ones.
pub const LARGE_ITEM_ROUTES: usize = LARGE_ROUTES - 100;

/// 10,000 route keys of one API: `GET /r{i}/items/{id}` (9,900), `GET /static/page{i}` (50)
/// and `ANY /r{i}/files/{proxy+}` (50), in that insertion order.
pub fn large_api_keys() -> Vec<String> {
    let mut keys = Vec::with_capacity(LARGE_ROUTES);
    keys.extend((0..LARGE_ITEM_ROUTES).map(|i| format!("GET /r{i}/items/{{id}}")));
    keys.extend((0..50).map(|i| format!("GET /static/page{i}")));
    keys.extend((0..50).map(|i| format!("ANY /r{i}/files/{{proxy+}}")));
    keys
}

/// A route table mapping each key to its index, built as the config check builds one.
pub fn route_table<'k>(keys: impl IntoIterator<Item = &'k str>) -> RouteTable<u32> {
    let mut table = RouteTable::new();
    for (i, key) in keys.into_iter().enumerate() {
        let key = RouteKey::parse(key).expect("bench route keys parse");
        table
            .insert(&key, i as u32)
            .expect("bench route keys are distinct");
    }
    table
}

pub fn small_table() -> RouteTable<u32> {
    route_table(SMALL_API.iter().map(|(k, _)| *k))
}

pub fn large_table() -> RouteTable<u32> {
    let keys = large_api_keys();
    route_table(keys.iter().map(String::as_str))
}

/// A router bench case: a request line, and the route key it must match (`None`: no route).
pub struct RouteCase {
    pub name: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub expect: Option<&'static str>,
}

const fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    expect: Option<&'static str>,
) -> RouteCase {
    RouteCase {
        name,
        method,
        path,
        expect,
    }
}

pub const SMALL_CASES: &[RouteCase] = &[
    case("static", "GET", "/users", Some("GET /users")),
    case("param", "GET", "/users/42", Some("GET /users/{id}")),
    case(
        "nested_param",
        "GET",
        "/users/42/orders",
        Some("GET /users/{id}/orders"),
    ),
    case(
        "greedy_after_backtrack",
        "GET",
        "/users/42/avatar/large.png",
        Some("ANY /{proxy+}"),
    ),
    case("default", "GET", "/", Some("$default")),
];

pub const LARGE_CASES: &[RouteCase] = &[
    case("first", "GET", "/r0/items/42", Some("GET /r0/items/{id}")),
    case(
        "middle",
        "GET",
        "/r4950/items/42",
        Some("GET /r4950/items/{id}"),
    ),
    case(
        "last",
        "GET",
        "/r9899/items/42",
        Some("GET /r9899/items/{id}"),
    ),
    case(
        "static",
        "GET",
        "/static/page25",
        Some("GET /static/page25"),
    ),
    case(
        "greedy",
        "GET",
        "/r10/files/2024/05/report.pdf",
        Some("ANY /r10/files/{proxy+}"),
    ),
    case("miss_unknown_prefix", "GET", "/r10000/items/42", None),
    case("miss_method", "DELETE", "/r4950/items/42", None),
];

/// The shop config: two APIs, stages, an exact and a wildcard domain with base paths. The shop
/// API's routes are [`SMALL_API`]; every upstream is an IP literal (no DNS in benches).
pub fn shop_config_yaml() -> String {
    let mut y = String::from(
        r#"gateway: { listen: ["127.0.0.1:8080"], workers: 2 }
apis:
  - name: shop
    default: true
    integrations:
      users:    { type: http_proxy, uri: "http://127.0.0.1:9000/users", timeout_ms: 3000 }
      user:     { type: http_proxy, uri: "http://127.0.0.1:9000/users/{id}" }
      orders:   { type: http_proxy, uri: "http://127.0.0.1:9001" }
      catchall: { type: http_proxy, uri: "http://${stageVariables.backend}/{proxy}" }
      health:   { type: mock, status: 200, headers: { content-type: application/json }, body: '{"status":"ok"}' }
      hello:    { type: mock, status: 200, headers: { content-type: text/plain }, body: "hello" }
    routes:
"#,
    );
    for (key, integration) in SMALL_API {
        let _ = writeln!(
            y,
            "      - {{ key: \"{key}\", integration: {integration} }}"
        );
    }
    y.push_str(
        r#"    stages:
      - { name: prod, variables: { backend: "127.0.0.1:9002" } }
      - { name: $default, variables: { backend: "127.0.0.1:9002" } }
  - name: admin
    integrations:
      ok: { type: mock, body: "admin" }
    routes:
      - { key: "GET /ping", integration: ok }
    stages:
      - { name: v1 }
domains:
  - { name: api.example.com, mappings: [ { api: shop, stage: prod } ] }
  - { name: "*.example.org", mappings: [ { api: shop, stage: prod, base_path: shop }, { api: admin, stage: v1, base_path: adm } ] }
"#,
    );
    y
}

/// One API with the [`large_api_keys`] routes, served at `big.example.com` and under `/prod`.
pub fn large_config_yaml() -> String {
    let mut y = String::from(
        r#"apis:
  - name: big
    integrations:
      items: { type: http_proxy, uri: "http://127.0.0.1:9000" }
    routes:
"#,
    );
    for key in large_api_keys() {
        let _ = writeln!(y, "      - {{ key: \"{key}\", integration: items }}");
    }
    y.push_str(
        r#"    stages:
      - { name: prod }
domains:
  - { name: big.example.com, mappings: [ { api: big, stage: prod } ] }
"#,
    );
    y
}

pub fn config(yaml: &str) -> Config {
    let (_, config) = load(yaml).expect("bench configs load");
    config
}

/// A config compiled as the admin thread compiles it for the workers (one worker's metrics).
pub fn snapshot(yaml: &str) -> Snapshot {
    Snapshot::build(config(yaml), 1, &mut MetricsRegistry::new(1)).expect("bench configs compile")
}

/// A whole-resolution bench case: Host, method, path and the route key it must reach.
pub struct ResolveCase {
    pub name: &'static str,
    pub host: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub expect: Option<&'static str>,
}

const fn rcase(
    name: &'static str,
    host: &'static str,
    method: &'static str,
    path: &'static str,
    expect: Option<&'static str>,
) -> ResolveCase {
    ResolveCase {
        name,
        host,
        method,
        path,
        expect,
    }
}

pub const SHOP_RESOLVE_CASES: &[ResolveCase] = &[
    rcase(
        "exact_domain",
        "api.example.com",
        "GET",
        "/users/42",
        Some("GET /users/{id}"),
    ),
    rcase(
        "wildcard_domain_base_path",
        "eu.example.org:8443",
        "GET",
        "/shop/users/42/orders",
        Some("GET /users/{id}/orders"),
    ),
    rcase(
        "stage_prefix",
        "127.0.0.1:8080",
        "GET",
        "/prod/users/42",
        Some("GET /users/{id}"),
    ),
    rcase(
        "default_stage_greedy",
        "127.0.0.1:8080",
        "GET",
        "/assets/app.js",
        Some("ANY /{proxy+}"),
    ),
    rcase(
        "miss_base_path",
        "eu.example.org",
        "GET",
        "/nowhere/users",
        None,
    ),
];

pub const LARGE_RESOLVE_CASES: &[ResolveCase] = &[
    rcase(
        "domain_last",
        "big.example.com",
        "GET",
        "/r9899/items/42",
        Some("GET /r9899/items/{id}"),
    ),
    rcase(
        "stage_prefix_middle",
        "10.0.0.1",
        "GET",
        "/prod/r4950/items/42",
        Some("GET /r4950/items/{id}"),
    ),
    rcase(
        "domain_miss",
        "big.example.com",
        "GET",
        "/r10000/items/42",
        None,
    ),
];

// ---------------------------------------------------------------------------------------------
// Upstream heads

/// The client the header-mapping benches forward for (formatted once, as per connection).
pub fn client() -> ClientInfo {
    ClientInfo::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 23)), 8080, false)
}

/// The lines every answer ends with, for an HTTP/1.1 keep-alive answer with no CORS.
pub fn answer_lines() -> respond::AnswerLines<'static> {
    respond::AnswerLines {
        request_id: b"JKJaXmhLoAMEJeQ=",
        cors: None,
        persist: respond::Persist::Default,
        retry_after: None,
        challenge: None,
        extra: b"",
    }
}

/// A parsed request routed through a snapshot to its `http_proxy` integration, by the gateway's
/// own [`exchange::route`]: what the gateway writes the upstream head from.
pub struct Routed<'s, 'b> {
    pub routed: exchange::Routed<'s, 'b>,
    pub proxy: &'s ProxyPlan,
}

/// Routes `head` (parsed from `buf`) as the gateway does; panics if it matches no proxied
/// route (bench inputs always do).
pub fn route<'s, 'b>(snap: &'s Snapshot, buf: &'b [u8], head: &RequestHead) -> Routed<'s, 'b> {
    let routed = exchange::route(snap, buf, head);
    match &routed.plan.integration {
        PlanIntegration::Proxy(p) => {
            let proxy: &'s ProxyPlan = p;
            Routed { routed, proxy }
        }
        _ => panic!("route {} is not a routed http_proxy", routed.plan.route_key),
    }
}

impl Routed<'_, '_> {
    /// `upstream::request::write_head` for this route into `out`.
    pub fn write_head(
        &self,
        out: &mut Vec<u8>,
        buf: &[u8],
        head: &RequestHead,
        client: &ClientInfo,
    ) {
        upstream_request::write_head(
            out,
            buf,
            head,
            self.routed.path,
            &self.routed.params,
            &self.proxy.target,
            self.proxy.preserve_host,
            client,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Allocation counting

/// The system allocator, counting allocations per thread, so a bench or test can show that a
/// hot path allocates nothing once its reused buffers have grown. Install it in a bench binary
/// with `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
pub struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // Const-initialized without a destructor: never allocates, never fails after thread exit.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call forwards to `System` with the caller's arguments unchanged; counting only
// touches a thread-local `Cell`.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn allocations_so_far() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations (alloc, alloc_zeroed, realloc) made on this thread by `calls` calls of `f`,
/// after a few warm-up calls let reused buffers reach their size. Panics unless
/// [`CountingAlloc`] is the global allocator, so a zero is never a missing counter.
pub fn steady_state_allocations<R>(calls: u64, mut f: impl FnMut() -> R) -> u64 {
    let before = allocations_so_far();
    drop(std::hint::black_box(Box::new(0u64)));
    assert!(
        allocations_so_far() > before,
        "CountingAlloc is not the global allocator"
    );
    for _ in 0..8 {
        drop(std::hint::black_box(f()));
    }
    let before = allocations_so_far();
    for _ in 0..calls {
        drop(std::hint::black_box(f()));
    }
    allocations_so_far() - before
}

/// Prints what [`steady_state_allocations`] counted for one bench, beside its timings.
pub fn print_allocations<R>(id: &str, f: impl FnMut() -> R) {
    const CALLS: u64 = 1000;
    let n = steady_state_allocations(CALLS, f);
    println!("{id}: {n} allocations in {CALLS} calls (steady state)");
}

#[cfg(test)]
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

pub mod usage;

#[cfg(test)]
mod tests;
