//! `http` mode: the stage cache as an RFC 9111 shared cache. The decisions are
//! `turnpike_core::cache::http`'s (sans I/O); this file wires them to a request:
//!
//! - **lookup**: GET and HEAD (answered from the stored GET) are looked up by the effective
//!   request URI (Host, path and query); a response that varied is found through its `Vary`
//!   entry and the request's values of the fields it names (RFC 9111 section 4.1). A fresh
//!   response (or a stale one the request accepts with `max-stale`) is answered with its
//!   `Age`; a conditional request it satisfies gets 304. One that must be validated sends the
//!   request on with `If-None-Match` / `If-Modified-Since` (section 4.3.1), and a 304 from
//!   the origin refreshes the stored response's header fields and answers from it (4.3.4).
//!   `only-if-cached` with nothing usable gets 504 (5.2.1.7).
//! - **store**: a response storable by section 3 (status understood; no `no-store`,
//!   `private`, `Vary: *`; `Authorization` only with `public`, `must-revalidate` or
//!   `s-maxage`; explicit freshness or a heuristically cacheable status) with a freshness
//!   lifetime or a validator. The stage's `ttl_seconds` caps how long an entry is kept and the
//!   heuristic lifetime (10% of the time since `Last-Modified`); a response that says nothing
//!   about freshness and has no validator is not stored.
//! - **invalidation**: a non-error response to an unsafe method removes the entries of the
//!   request URI and of its `Location` and `Content-Location` on the same host (4.4).
//!
//! Every answer of a cached route carries an RFC 9211 `Cache-Status` field.

use std::{
    rc::Rc,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use turnpike_core::cache::{
    Fingerprint, KeyBuilder, Slot, StoredResponse, VaryEntry,
    http::{Directives, Freshness, ResponseFields, Reuse, Storable, reuse, storable},
};

use super::{CachePlan, CacheStatus, Pending, Tap, request_values, secret};
use crate::{
    conn::{Client, RequestState},
    exchange::RequestCtx,
    h1::{HeaderKind, encode},
    plan::RoutePlan,
    respond,
    worker::Worker,
};

const HIT: &[u8] = b"Cache-Status: turnpike; hit\r\n";
const URI_MISS: &[u8] = b"Cache-Status: turnpike; fwd=uri-miss\r\n";
const VARY_MISS: &[u8] = b"Cache-Status: turnpike; fwd=vary-miss\r\n";
const STALE: &[u8] = b"Cache-Status: turnpike; fwd=stale\r\n";
const REQUEST: &[u8] = b"Cache-Status: turnpike; fwd=request\r\n";
const METHOD: &[u8] = b"Cache-Status: turnpike; fwd=method\r\n";
const REVALIDATED: &[u8] = b"Cache-Status: turnpike; fwd=stale; fwd-status=304\r\n";
const STALE_ON_ERROR: &[u8] = b"Cache-Status: turnpike; hit; fwd=stale; detail=origin-error\r\n";

/// What an `http` mode request carries from lookup to store.
pub struct HttpPending {
    /// When the request was sent on (ms since the epoch): the age calculation's request time.
    pub request_ms: u64,
    /// The request carried `Authorization`.
    pub authorization: bool,
    /// The request's `Cache-Control`.
    pub req: Directives,
    /// An unsafe method: a non-error response invalidates.
    pub invalidate: bool,
    /// The stored response this request validates (the gateway added the validators), and
    /// the key it is stored under.
    pub validating: Option<(Fingerprint, Rc<StoredResponse>)>,
}

/// Where and how a captured response is stored.
pub struct HttpStore {
    /// The URI's key.
    primary: Fingerprint,
    /// `Vary` field names, lower case; empty: stored under `primary` itself.
    vary: Box<[Box<str>]>,
    /// The request's values of the `vary` fields.
    values: Fingerprint,
    freshness: Freshness,
}

/// The key of the effective request URI: Host, path and query.
fn uri_key(host: &[u8], path: &[u8], query: Option<&[u8]>) -> Fingerprint {
    let mut k = KeyBuilder::new(secret());
    k.part(b"http")
        .part_lowercase(host)
        .part(if path.is_empty() { b"/" } else { path })
        .optional(query);
    k.finish()
}

fn primary_key(st: &RequestState) -> Fingerprint {
    let buf = &st.rbuf[..];
    uri_key(
        st.head.host.map_or(&b""[..], |h| h.get(buf)),
        st.head.path.get(buf),
        st.head.query.map(|q| q.get(buf)),
    )
}

/// A fingerprint of the request's values of `fields`, with list values compared item by item
/// (whitespace around commas and how lines are split do not matter).
fn vary_values(st: &RequestState, fields: &[Box<str>]) -> Fingerprint {
    let mut k = KeyBuilder::new(secret());
    for f in fields {
        k.part(f.as_bytes());
        for v in request_values(st, f.as_bytes()) {
            for item in v.split(|&b| b == b',') {
                k.optional(Some(item.trim_ascii()));
            }
        }
        k.optional(None);
    }
    k.finish()
}

fn variant_key(primary: Fingerprint, nonce: u64, values: Fingerprint) -> Fingerprint {
    let mut k = KeyBuilder::new(secret());
    k.part(&primary.0.to_le_bytes())
        .part(&nonce.to_le_bytes())
        .part(&values.0.to_le_bytes());
    k.finish()
}

fn next_nonce() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// `(name, value)` of each header line of a head the gateway wrote (status line skipped).
fn header_lines(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let i = line.iter().position(|&b| b == b':')?;
        Some((&line[..i], line[i + 1..].trim_ascii()))
    })
}

/// See [`super::lookup`].
#[allow(clippy::too_many_arguments)]
pub async fn lookup(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    cp: &CachePlan,
    upstream_head: Option<&mut Vec<u8>>,
) -> Option<bool> {
    let now = x.epoch_ms;
    let key = primary_key(st);
    let method = st.head.method(&st.rbuf);
    let mut http = HttpPending {
        request_ms: now,
        authorization: false,
        req: Directives::default(),
        invalidate: false,
        validating: None,
    };
    if method != b"GET" && method != b"HEAD" {
        if !matches!(method, b"OPTIONS" | b"TRACE") {
            http.invalidate = true;
            x.cache = Some(Pending {
                key,
                status: None,
                mode: cp.stage.mode,
                line: METHOD,
                store: false,
                http: Some(Box::new(http)),
            });
        }
        return None;
    }
    let head_only = method == b"HEAD";
    http.req = Directives::parse(request_values(st, b"cache-control"));
    // RFC 9111 section 5.4: `Pragma` is deprecated and has no caching meaning of its own.
    let pragma = false;
    let mut upstream_head = upstream_head;
    if let Some(out) = upstream_head.as_deref_mut() {
        append_header(out, b"Surrogate-Capability", SURROGATE_CAPABILITY);
    }
    http.authorization = st.head.find(&st.rbuf, b"authorization").is_some();
    let only_if_cached = http.req.only_if_cached;
    let mut pending = Pending {
        key,
        status: Some(CacheStatus::Miss),
        mode: cp.stage.mode,
        line: URI_MISS,
        store: !head_only && !http.req.no_store,
        http: None,
    };
    // `no-store` asks that nothing of this exchange be kept: nor is a stored answer given.
    if http.req.no_store {
        pending.status = Some(CacheStatus::Bypass);
        pending.line = REQUEST;
        return miss(worker, c, st, x, plan, pending, http, only_if_cached).await;
    }
    enum Found {
        Stored(Fingerprint, Rc<StoredResponse>),
        VaryMiss,
        Nothing,
    }
    let found = worker.cache.with(cp, |s| match s.get(key, now) {
        Some(Slot::Response(r)) => Found::Stored(key, r),
        Some(Slot::Vary(v)) => {
            let vk = variant_key(key, v.nonce, vary_values(st, &v.fields));
            match s.get(vk, now) {
                Some(Slot::Response(r)) => Found::Stored(vk, r),
                _ => Found::VaryMiss,
            }
        }
        None => Found::Nothing,
    });
    let (stored_key, r) = match found {
        Found::Stored(k, r) => (k, r),
        Found::VaryMiss => {
            pending.line = VARY_MISS;
            return miss(worker, c, st, x, plan, pending, http, only_if_cached).await;
        }
        Found::Nothing => return miss(worker, c, st, x, plan, pending, http, only_if_cached).await,
    };
    let Some(f) = r.http.as_deref() else {
        return miss(worker, c, st, x, plan, pending, http, only_if_cached).await;
    };
    match reuse(f, &http.req, pragma, now) {
        Reuse::Fresh | Reuse::Stale => {
            pending.status = Some(CacheStatus::Hit);
            pending.line = HIT;
            x.cache = Some(pending);
            let age = f.current_age(now);
            if not_modified(st, &r) {
                return Some(answer_not_modified(worker, c, st, x, plan, &r, age).await);
            }
            Some(super::answer_stored(worker, c, st, x, plan, &r, Some(age)).await)
        }
        Reuse::Validate => {
            pending.line = if reuse(f, &Directives::default(), false, now) == Reuse::Fresh {
                REQUEST
            } else {
                STALE
            };
            let client_conditional = st.head.find(&st.rbuf, b"if-none-match").is_some()
                || st.head.find(&st.rbuf, b"if-modified-since").is_some();
            if f.has_validator()
                && !client_conditional
                && !head_only
                && let Some(out) = upstream_head
            {
                add_validators(out, f);
                http.validating = Some((stored_key, r.clone()));
            }
            miss(worker, c, st, x, plan, pending, http, only_if_cached).await
        }
    }
}

/// Sends the request on (a miss), or answers 504 to `only-if-cached`.
#[allow(clippy::too_many_arguments)]
async fn miss(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    mut pending: Pending,
    http: HttpPending,
    only_if_cached: bool,
) -> Option<bool> {
    if only_if_cached {
        pending.store = false;
        x.cache = Some(pending);
        return Some(answer_504(worker, c, st, x, plan).await);
    }
    plan.counters[worker.id].count_cache_miss();
    pending.http = Some(Box::new(http));
    x.cache = Some(pending);
    None
}

/// `If-None-Match` / `If-Modified-Since` from the stored validators.
fn add_validators(out: &mut Vec<u8>, f: &Freshness) {
    if let Some(etag) = &f.etag {
        append_header(out, b"If-None-Match", etag);
    }
    if let Some(lm) = &f.last_modified {
        append_header(out, b"If-Modified-Since", lm);
    }
}

/// Adds a field to a request head that ends with its blank line.
fn append_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    encode::header(out, name, value);
    out.extend_from_slice(encode::CRLF);
}

/// `Surrogate-Capability` (Edge Architecture 1.0): the origin may target `Surrogate-Control`
/// directives at this cache.
const SURROGATE_CAPABILITY: &[u8] = b"turnpike=\"Surrogate/1.0\"";

/// Whether the request's conditions say the client's copy is current (RFC 9110 section
/// 13.1.2 weak comparison for `If-None-Match`; `If-Modified-Since` only without it).
fn not_modified(st: &RequestState, r: &StoredResponse) -> bool {
    if !(200..300).contains(&r.status) {
        return false;
    }
    let f = r.http.as_deref();
    let strip = |t: &[u8]| -> Vec<u8> {
        t.trim_ascii()
            .strip_prefix(b"W/")
            .unwrap_or(t.trim_ascii())
            .to_vec()
    };
    let mut inm = request_values(st, b"if-none-match").peekable();
    if inm.peek().is_some() {
        let Some(etag) = f.and_then(|f| f.etag.as_deref()) else {
            return false;
        };
        let mine = strip(etag);
        return inm
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii() == b"*" || strip(t) == mine);
    }
    let Some(since) = st
        .head
        .find(&st.rbuf, b"if-modified-since")
        .and_then(|s| turnpike_core::cache::http::http_date(s.get(&st.rbuf)))
    else {
        return false;
    };
    let changed = f
        .and_then(|f| f.last_modified.as_deref())
        .and_then(turnpike_core::cache::http::http_date)
        .or_else(|| f.and_then(|f| f.date_s));
    changed.is_some_and(|t| t <= since)
}

/// 304 from the stored response: its status line replaced, with the fields RFC 9110 section
/// 15.4.5 has a 304 carry.
async fn answer_not_modified(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    r: &StoredResponse,
    age: u64,
) -> bool {
    plan.counters[worker.id].count_cache_hit();
    let read = crate::exchange::discard_body(st);
    c.linger |= !read;
    let keep = respond::keep_alive(&st.head, read, false, worker.draining());
    let mut out = worker.bufs.take();
    encode::status_line(&mut out, 304, b"Not Modified");
    for (name, value) in header_lines(&r.head) {
        let kept = [
            &b"cache-control"[..],
            b"content-location",
            b"date",
            b"etag",
            b"expires",
            b"vary",
            b"last-modified",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n));
        if kept {
            encode::header(&mut out, name, value);
        }
    }
    out.extend_from_slice(b"Age: ");
    encode::push_decimal(&mut out, age);
    out.extend_from_slice(encode::CRLF);
    respond::finish_head(
        &mut out,
        &x.lines(plan, &st.rbuf, keep, st.head.minor_version),
    );
    x.status = 304;
    x.response_length = 0;
    crate::exchange::send(worker, c, out).await && keep
}

/// 504 to `only-if-cached` when nothing usable is stored (RFC 9111 section 5.2.1.7).
async fn answer_504(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
) -> bool {
    let read = crate::exchange::discard_body(st);
    c.linger |= !read;
    let keep = respond::keep_alive(&st.head, read, false, worker.draining());
    let mut out = worker.bufs.take();
    encode::status_line(&mut out, 504, b"Gateway Timeout");
    encode::header(&mut out, b"Date", &worker.date());
    encode::content_length(&mut out, 0);
    respond::finish_head(
        &mut out,
        &x.lines(plan, &st.rbuf, keep, st.head.minor_version),
    );
    x.status = 504;
    crate::exchange::send(worker, c, out).await && keep
}

/// See [`super::tap`]: invalidates after an unsafe method, or decides whether and where the
/// response is stored.
pub fn tap(
    worker: &Worker,
    p: &Pending,
    cp: &CachePlan,
    written: &[u8],
    st: &RequestState,
    input: &[u8],
) -> Option<Tap> {
    let h = p.http.as_deref()?;
    let head = &st.response;
    let status = head.status;
    let fields = ResponseFields::read(
        head.headers
            .iter()
            .map(|f| (f.name.get(input), f.value.get(input))),
    );
    if h.invalidate {
        if (200..400).contains(&status) {
            invalidate(worker, cp, st, &fields, head, input);
        }
        return None;
    }
    if !p.store || st.head.is_head(&st.rbuf) {
        return None;
    }
    if let Storable::No(_) = storable(status, &fields, &h.req, h.authorization) {
        return None;
    }
    let now = worker.epoch_ms();
    let freshness = Freshness::of(status, &fields, h.request_ms, now, cp.ttl_ms / 1000);
    if freshness.lifetime_s == 0 && !freshness.has_validator() {
        return None;
    }
    let vary: Box<[Box<str>]> = fields
        .vary
        .iter()
        .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase().into())
        .collect();
    let values = vary_values(st, &vary);
    let expected = match head.body {
        crate::h1::response::ResponseBody::Length(n) => Some(n),
        crate::h1::response::ResponseBody::None => Some(0),
        _ => None,
    };
    let mut t = Tap::new(status, written, true, cp.stage.max_entry_bytes, expected)?;
    t.http = Some(Box::new(HttpStore {
        primary: p.key,
        vary,
        values,
        freshness,
    }));
    Some(t)
}

/// Stores a captured response (see [`super::store`]).
pub fn store(worker: &Worker, cp: &CachePlan, t: Tap, h: HttpStore, now: u64) {
    let expires_ms = now + cp.ttl_ms;
    let entry = Rc::new(StoredResponse {
        status: t.status,
        head: t.head.into(),
        body: t.body.into(),
        stored_ms: now,
        expires_ms,
        http: Some(Box::new(h.freshness)),
    });
    worker.cache.with(cp, |s| {
        if h.vary.is_empty() {
            s.insert(h.primary, Slot::Response(entry));
            return;
        }
        let nonce = match s.get(h.primary, now) {
            Some(Slot::Vary(v)) if v.fields == h.vary => v.nonce,
            _ => next_nonce(),
        };
        s.insert(
            h.primary,
            Slot::Vary(Rc::new(VaryEntry {
                fields: h.vary,
                nonce,
                expires_ms,
            })),
        );
        s.insert(
            variant_key(h.primary, nonce, h.values),
            Slot::Response(entry),
        );
    });
}

/// RFC 9111 section 4.4: the request URI's entry, and those of `Location` and
/// `Content-Location` when they are on the same host.
fn invalidate(
    worker: &Worker,
    cp: &CachePlan,
    st: &RequestState,
    _fields: &ResponseFields<'_>,
    head: &crate::h1::response::ResponseHead,
    input: &[u8],
) {
    let buf = &st.rbuf[..];
    let host = st.head.host.map_or(&b""[..], |h| h.get(buf));
    let mut keys = vec![primary_key(st)];
    for f in &head.headers {
        let name = f.name.get(input);
        if !(name.eq_ignore_ascii_case(b"location")
            || name.eq_ignore_ascii_case(b"content-location"))
        {
            continue;
        }
        if let Some(k) = same_host_key(host, f.value.get(input).trim_ascii()) {
            keys.push(k);
        }
    }
    worker.cache.with(cp, |s| {
        for k in keys {
            s.remove(k);
        }
    });
}

/// The key of a `Location`-style URI reference if it names a resource on `host`.
fn same_host_key(host: &[u8], uri: &[u8]) -> Option<Fingerprint> {
    let rest = if let Some(r) = uri
        .strip_prefix(b"http://")
        .or_else(|| uri.strip_prefix(b"https://"))
    {
        let end = r
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(r.len());
        if !r[..end].eq_ignore_ascii_case(host) {
            return None;
        }
        &r[end..]
    } else if uri.starts_with(b"/") && !uri.starts_with(b"//") {
        uri
    } else {
        return None;
    };
    let rest = rest.split(|&b| b == b'#').next().unwrap_or(rest);
    let (path, query) = match rest.iter().position(|&b| b == b'?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    Some(uri_key(host, path, query))
}

/// The origin's answer to the gateway's own validation. A 304: the stored response's header
/// fields are updated from it (RFC 9111 section 4.3.4), stored again, and answered. A 5xx:
/// the stale stored response is answered instead, unless its directives forbid serving it
/// stale (section 4.2.4). `None`: anything else, or a request the gateway did not validate;
/// it is relayed.
pub async fn revalidated(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    input: &[u8],
) -> Option<bool> {
    let cp = plan.cache.as_deref()?;
    let p = x.cache.as_mut()?;
    let h = p.http.as_mut()?;
    let status = st.response.status;
    let stale_ok = |r: &StoredResponse| {
        r.http
            .as_deref()
            .is_some_and(|f| !f.must_revalidate && !f.no_cache)
    };
    let on_error =
        (500..600).contains(&status) && h.validating.as_ref().is_some_and(|(_, r)| stale_ok(r));
    if status != 304 && !on_error {
        return None;
    }
    let (key, r) = h.validating.take()?;
    if on_error {
        p.status = Some(CacheStatus::Stale);
        p.line = STALE_ON_ERROR;
        let age = r
            .http
            .as_deref()
            .map_or(0, |f| f.current_age(worker.epoch_ms()));
        return Some(super::answer_stored(worker, c, st, x, plan, &r, Some(age)).await);
    }
    let request_ms = h.request_ms;
    p.status = Some(CacheStatus::Revalidated);
    p.line = REVALIDATED;
    let fresh = &st.response;
    // Fields a 304 does not change: the representation's own (its coding, digest, range)
    // and the validator it was selected by (cache-tests.fyi, "update304").
    const KEPT: [&[u8]; 5] = [
        b"age",
        b"etag",
        b"content-encoding",
        b"content-md5",
        b"content-range",
    ];
    let updates: Vec<(&[u8], &[u8])> = fresh
        .headers
        .iter()
        .filter(|f| !f.kind.is_hop_by_hop() && f.kind != HeaderKind::ContentLength)
        .map(|f| (f.name.get(input), f.value.get(input)))
        .filter(|(n, _)| !KEPT.iter().any(|k| n.eq_ignore_ascii_case(k)))
        .collect();
    let mut head = Vec::with_capacity(r.head.len() + 128);
    let status_end = r
        .head
        .iter()
        .position(|&b| b == b'\n')
        .map_or(r.head.len(), |i| i + 1);
    head.extend_from_slice(&r.head[..status_end]);
    for (name, value) in header_lines(&r.head) {
        if !updates.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            encode::header(&mut head, name, value);
        }
    }
    for (name, value) in &updates {
        encode::header(&mut head, name, value);
    }
    let now = worker.epoch_ms();
    let fields = ResponseFields::read(header_lines(&head));
    let freshness = Freshness::of(r.status, &fields, request_ms, now, cp.ttl_ms / 1000);
    let updated = Rc::new(StoredResponse {
        status: r.status,
        head: head.into(),
        body: r.body.clone(),
        stored_ms: now,
        expires_ms: now + cp.ttl_ms,
        http: Some(Box::new(freshness)),
    });
    worker
        .cache
        .with(cp, |s| s.insert(key, Slot::Response(updated.clone())));
    let age = updated.http.as_deref().map_or(0, |f| f.current_age(now));
    Some(super::answer_stored(worker, c, st, x, plan, &updated, Some(age)).await)
}
