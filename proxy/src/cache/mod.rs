//! The cache steps of the request pipeline: **cache lookup** (after parameter mapping, before
//! the integration) and **cache store** (as the response is written). Each worker keeps its
//! own stores ([`WorkerCaches`]): no locks, nothing shared between cores.
//!
//! - `aws` mode (AWS API Gateway's stage cache): GET (and HEAD, answered from the stored
//!   GET) is cached on every route of a stage with a cache, other methods where the route
//!   says `cache: {enabled: true}`; the key is method, path below the stage and the route's
//!   key parameters; 2xx responses other than 206 are stored for the TTL whatever their
//!   `Cache-Control` says (AWS stores whatever the integration answered, errors included;
//!   turnpike never lets a backend's error stick for a TTL). `Cache-Control: max-age=0` from
//!   a caller allowed to invalidate (the stage does not require authorization, or the request
//!   passed the route's authorizer) skips the entry and stores the fresh answer; from anyone
//!   else it gets the stage's `unauthorized_cache_control` strategy.
//! - `http` mode: an RFC 9111 shared cache, see [`rfc`].
//!
//! A route that does not cache has no [`CachePlan`] and runs none of this.
//!
//! - [`capture`]: the tap that copies a response as it streams to the client;
//! - `registry`: stage caches by names (flush, sizes) and each worker's stores;
//! - [`rfc`]: the `http` mode's lookup, revalidation and store decisions.
//!
//! Hot path: no locks, no blocking calls; a hit allocates nothing beyond the pooled output
//! buffer (a stored response larger than a pooled buffer grows it once).

pub mod capture;
mod registry;
pub mod rfc;

use std::{
    hash::{Hash, Hasher},
    rc::Rc,
    sync::{Arc, OnceLock},
};

use turnpike_core::cache::{
    CacheMode, Fingerprint, KeyBuilder, ParamAt, RouteCache, Slot, StageCache, StoredResponse,
    UnauthorizedStrategy, http::Directives, key::query_values,
};

pub use self::{
    capture::Tap,
    registry::{StageShared, WorkerCaches, find as find_stage},
};
use crate::{
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    h1::encode,
    plan::{MockResponse, RoutePlan},
    respond::{self, AnswerLines},
    worker::Worker,
};

/// AWS's warning on an answer that ignored an unauthorized `Cache-Control: max-age=0`.
pub const UNAUTHORIZED_WARNING: &[u8] =
    b"Warning: 199 Cache-control headers were ignored because the caller was unauthorized.\r\n";

/// How a route of a stage with a cache uses it. Compiled with the snapshot; `None` on the
/// plan when nothing on the route is cached.
pub struct CachePlan {
    /// The stage cache, by names (the same across reloads).
    pub shared: Arc<StageShared>,
    pub stage: StageCache,
    pub route: Option<RouteCache>,
    /// Milliseconds an entry is kept (the route's TTL, else the stage's).
    pub ttl_ms: u64,
    /// A hash of `stage`: a worker's store made for other settings is replaced.
    pub settings_id: u64,
}

impl CachePlan {
    /// The plan of a route (`route`: its own settings) on a stage whose cache is `stage`;
    /// `None` when the route caches nothing (a TTL of 0, or `enabled: false`). `workers`: how
    /// many workers keep a store.
    pub fn compile(
        api: &str,
        stage_name: &str,
        stage: &StageCache,
        route: Option<&RouteCache>,
        workers: usize,
    ) -> Option<Arc<CachePlan>> {
        let ttl = route
            .and_then(|r| r.ttl_seconds)
            .unwrap_or(stage.ttl_seconds);
        if ttl == 0 || route.and_then(|r| r.enabled) == Some(false) {
            return None;
        }
        let mut h = rustc_hash::FxHasher::default();
        stage.hash(&mut h);
        Some(Arc::new(CachePlan {
            shared: registry::stage(api, stage_name, workers),
            stage: stage.clone(),
            route: route.cloned(),
            ttl_ms: u64::from(ttl) * 1000,
            settings_id: h.finish(),
        }))
    }
}

/// `$context.cacheStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Answered from the cache.
    Hit,
    /// Cacheable, not in the cache: the integration answered.
    Miss,
    /// The cache was skipped on request (an authorized `max-age=0`; in `http` mode, request
    /// directives that rule out a stored answer).
    Bypass,
    /// `http` mode: a stored response was confirmed by the origin (304) and answered.
    Revalidated,
    /// `http` mode: the origin failed (5xx) to revalidate a stale response, which was
    /// answered instead (RFC 9111 section 4.2.4), as its directives allow.
    Stale,
}

impl CacheStatus {
    pub fn name(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
            CacheStatus::Revalidated => "revalidated",
            CacheStatus::Stale => "stale",
        }
    }
}

/// What the lookup left for the store and the answer's lines.
pub struct Pending {
    /// Where the response is stored (`http` mode: the URI's primary key).
    pub key: Fingerprint,
    /// `None`: the request does not count as a cache request (`http` mode: an unsafe method,
    /// which only invalidates).
    pub status: Option<CacheStatus>,
    pub mode: CacheMode,
    /// Header lines the answer carries: AWS's [`UNAUTHORIZED_WARNING`], or in `http` mode an
    /// RFC 9211 `Cache-Status`.
    pub line: &'static [u8],
    /// The response may be stored.
    pub store: bool,
    /// `http` mode: what the store and revalidation need.
    pub http: Option<Box<rfc::HttpPending>>,
}

impl Pending {
    /// See [`Pending::line`].
    #[inline]
    pub fn lines(&self) -> &'static [u8] {
        self.line
    }
}

/// The process's fingerprint secret (random per start).
pub(crate) fn secret() -> (u64, u64) {
    static SECRET: OnceLock<(u64, u64)> = OnceLock::new();
    *SECRET.get_or_init(|| {
        let mut b = [0u8; 16];
        if getrandom::fill(&mut b).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            b[..8].copy_from_slice(&t.to_le_bytes());
            b[8..].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
        }
        let (k0, k1) = b.split_at(8);
        (
            u64::from_le_bytes(k0.try_into().unwrap_or_default()),
            u64::from_le_bytes(k1.try_into().unwrap_or_default()),
        )
    })
}

/// The header values of `name` in the request, in order.
fn request_values<'b>(st: &'b RequestState, name: &'b [u8]) -> impl Iterator<Item = &'b [u8]> {
    let buf = &st.rbuf[..];
    st.head
        .headers
        .iter()
        .filter(move |h| h.name.get(buf).eq_ignore_ascii_case(name))
        .map(move |h| h.value.get(buf))
}

/// The cache lookup step. `path`: the path below the stage; `upstream_head`: the request
/// head for an `http_proxy` integration (`http` mode adds its validators to it). Returns `Some(keep)` when the
/// request was answered here (a hit, or a refused `max-age=0`); `None` sends it on to the
/// integration, with `x.cache` saying what to store.
#[allow(clippy::too_many_arguments)]
pub async fn lookup(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    cp: &CachePlan,
    path: std::ops::Range<usize>,
    upstream_head: Option<&mut Vec<u8>>,
) -> Option<bool> {
    if cp.stage.mode == CacheMode::Http {
        return rfc::lookup(worker, c, st, x, plan, cp, upstream_head).await;
    }
    let method = st.head.method(&st.rbuf);
    if !RouteCache::caches(cp.route.as_ref(), method) {
        return None;
    }
    let head_only = st.head.is_head(&st.rbuf);
    let key = aws_key(st, cp, &st.rbuf[path.clone()]);
    let mut pending = Pending {
        key,
        status: Some(CacheStatus::Miss),
        mode: CacheMode::Aws,
        line: b"",
        store: !head_only,
        http: None,
    };
    let refresh = Directives::parse(request_values(st, b"cache-control")).max_age == Some(0);
    if refresh {
        let allowed = !cp.stage.require_authorization_for_cache_control || x.authorized.is_some();
        if allowed {
            pending.status = Some(CacheStatus::Bypass);
            plan.counters[worker.id].count_cache_miss();
            x.cache = Some(pending);
            return None;
        }
        match cp.stage.unauthorized {
            UnauthorizedStrategy::FailWith403 => {
                x.cache = Some(pending);
                return Some(refuse_invalidation(worker, c, st, x, plan, path).await);
            }
            UnauthorizedStrategy::SucceedWithResponseHeader => pending.line = UNAUTHORIZED_WARNING,
            UnauthorizedStrategy::SucceedWithoutResponseHeader => {}
        }
    }
    let now = x.epoch_ms;
    let stored = worker.cache.with(cp, |s| s.get(key, now));
    if let Some(Slot::Response(r)) = stored {
        pending.status = Some(CacheStatus::Hit);
        x.cache = Some(pending);
        return Some(answer_stored(worker, c, st, x, plan, &r, None).await);
    }
    plan.counters[worker.id].count_cache_miss();
    x.cache = Some(pending);
    None
}

/// The `aws` mode key: method (HEAD as GET), path below the stage, and the route's key
/// parameters' values (all of them, in order; a missing one differs from an empty one).
fn aws_key(st: &RequestState, cp: &CachePlan, path: &[u8]) -> Fingerprint {
    let buf = &st.rbuf[..];
    let method = match st.head.method(buf) {
        b"HEAD" => &b"GET"[..],
        m => m,
    };
    let mut k = KeyBuilder::new(secret());
    k.part(b"aws")
        .part(method)
        .part(if path.is_empty() { b"/" } else { path });
    if let Some(route) = &cp.route {
        for p in &route.key_parameters {
            let name = p.name.as_bytes();
            k.part(name);
            match p.at {
                ParamAt::Query => {
                    let q = st.head.query.map_or(&b""[..], |q| q.get(buf));
                    for v in query_values(q, name) {
                        k.optional(Some(v));
                    }
                }
                ParamAt::Header => {
                    for v in request_values(st, name) {
                        k.optional(Some(v));
                    }
                }
                // Path parameters are in the path already.
                ParamAt::Path => {}
            }
            k.optional(None);
        }
    }
    k.finish()
}

/// 403 to an unauthorized `Cache-Control: max-age=0` (`fail_with_403`), as AWS words it.
async fn refuse_invalidation(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    path: std::ops::Range<usize>,
) -> bool {
    let head_only = st.head.is_head(&st.rbuf);
    let snap = worker.snapshot();
    let auth = &snap.config.auth;
    let path = String::from_utf8_lossy(&st.rbuf[path]);
    let path = if path.is_empty() { "/".into() } else { path };
    x.message = Some(
        format!(
            "User: anonymous is not authorized to perform: execute-api:InvalidateCache on resource: arn:aws:execute-api:{}:{}:{}/{}/{}{}",
            auth.region,
            auth.account_id,
            plan.api_name,
            plan.stage_name,
            String::from_utf8_lossy(st.head.method(&st.rbuf)),
            path
        )
        .into(),
    );
    let e = GatewayError::client(
        ErrorKind::AccessDenied,
        "Cache-Control: max-age=0 from a caller not authorized to invalidate the cache",
    );
    let read = crate::exchange::discard_body(st);
    crate::exchange::answer_error(worker, c, st, x, plan, e, read, head_only).await
}

/// Answers with a stored response: its head and body as stored, `Date` (the current one in
/// `aws` mode), `Age` when given, the body's length and the per-answer lines. Counts a hit (a
/// revalidation is counted as the miss it was).
pub(crate) async fn answer_stored(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    r: &StoredResponse,
    age: Option<u64>,
) -> bool {
    if x.cache.as_ref().and_then(|p| p.status) == Some(CacheStatus::Hit) {
        plan.counters[worker.id].count_cache_hit();
    }
    let head_only = st.head.is_head(&st.rbuf);
    let read = crate::exchange::discard_body(st);
    c.linger |= !read;
    let keep = respond::keep_alive(&st.head, read, false, worker.draining());
    let mut out = worker.bufs.take();
    let with_date = r.http.is_none();
    write_stored(
        &mut out,
        r,
        with_date.then(|| worker.date()).as_ref().map(|d| &d[..]),
        age,
        &x.lines(plan, &st.rbuf, keep, st.head.minor_version),
        head_only,
    );
    x.status = r.status;
    x.response_length = if head_only || bodyless(r.status) {
        0
    } else {
        r.body.len() as u64
    };
    crate::exchange::send(worker, c, out).await && keep
}

fn bodyless(status: u16) -> bool {
    status == 204 || status == 304 || (100..200).contains(&status)
}

/// Writes a stored response (see [`answer_stored`]).
pub fn write_stored(
    out: &mut Vec<u8>,
    r: &StoredResponse,
    date: Option<&[u8]>,
    age: Option<u64>,
    lines: &AnswerLines<'_>,
    head_only: bool,
) {
    out.extend_from_slice(&r.head);
    if let Some(date) = date {
        encode::header(out, b"Date", date);
    }
    if let Some(age) = age {
        out.extend_from_slice(b"Age: ");
        encode::push_decimal(out, age);
        out.extend_from_slice(encode::CRLF);
    }
    if !bodyless(r.status) {
        encode::content_length(out, r.body.len() as u64);
    }
    respond::finish_head(out, lines);
    if !head_only && !bodyless(r.status) {
        out.extend_from_slice(&r.body);
    }
}

/// The cache store step for a relayed response: a tap on the response whose head was just
/// written to `written` (the gateway's head for the client, before its per-answer lines), or
/// `None` when it is not to be stored.
#[inline]
pub fn tap(
    worker: &Worker,
    x: &RequestCtx,
    plan: &RoutePlan,
    written: &[u8],
    st: &RequestState,
    input: &[u8],
) -> Option<Tap> {
    let p = x.cache.as_ref()?;
    let cp = plan.cache.as_deref()?;
    let head = &st.response;
    if p.mode == CacheMode::Http {
        return rfc::tap(worker, p, cp, written, st, input);
    }
    if !p.store || st.head.is_head(&st.rbuf) || !storable_status(p, head.status) {
        return None;
    }
    let expected = match head.body {
        crate::h1::response::ResponseBody::Length(n) => Some(n),
        crate::h1::response::ResponseBody::None => Some(0),
        _ => None,
    };
    Tap::new(
        head.status,
        written,
        false,
        cp.stage.max_entry_bytes,
        expected,
    )
}

/// `aws` mode stores 2xx but 206 (mocks and functions in `http` mode are not stored: they
/// carry no freshness of their own).
fn storable_status(p: &Pending, status: u16) -> bool {
    p.mode == CacheMode::Aws && (200..300).contains(&status) && status != 206
}

/// Stores what `tap` captured, if the response was relayed whole (`complete`) and fit.
pub fn store(worker: &Worker, x: &RequestCtx, plan: &RoutePlan, tap: Option<Tap>, complete: bool) {
    let (Some(mut t), true) = (tap, complete) else {
        return;
    };
    if t.over {
        return;
    }
    let (Some(p), Some(cp)) = (x.cache.as_ref(), plan.cache.as_deref()) else {
        return;
    };
    let now = worker.epoch_ms();
    if let Some(h) = t.http.take() {
        rfc::store(worker, cp, t, *h, now);
        return;
    }
    let entry = StoredResponse {
        status: t.status,
        head: t.head.into(),
        body: t.body.into(),
        stored_ms: now,
        expires_ms: now + cp.ttl_ms,
        http: None,
    };
    worker
        .cache
        .with(cp, |s| s.insert(p.key, Slot::Response(Rc::new(entry))));
}

/// The cache store step for a mock integration's answer.
pub fn store_mock(
    worker: &Worker,
    x: &RequestCtx,
    plan: &RoutePlan,
    mock: &MockResponse,
    head_only: bool,
) {
    let Some(p) = x.cache.as_ref().filter(|p| p.store) else {
        return;
    };
    let Some(cp) = plan.cache.as_deref() else {
        return;
    };
    if head_only || !storable_status(p, mock.status) {
        return;
    }
    let mut t = match Tap::new(
        mock.status,
        &mock.head,
        false,
        cp.stage.max_entry_bytes,
        Some(mock.body.len() as u64),
    ) {
        Some(t) => t,
        None => return,
    };
    t.take(&mock.body);
    store(worker, x, plan, Some(t), true);
}

/// The cache store step for a function's answer.
pub fn store_function(
    worker: &Worker,
    x: &RequestCtx,
    plan: &RoutePlan,
    resp: &turnpike_core::function::response::FunctionResponse,
    head_only: bool,
) {
    let Some(p) = x.cache.as_ref().filter(|p| p.store) else {
        return;
    };
    let Some(cp) = plan.cache.as_deref() else {
        return;
    };
    if head_only || !storable_status(p, resp.status) {
        return;
    }
    let mut head = Vec::new();
    encode::status_line(
        &mut head,
        resp.status,
        encode::reason(resp.status).as_bytes(),
    );
    for (k, v) in &resp.headers {
        encode::header(&mut head, k.as_bytes(), v.as_bytes());
    }
    for cookie in &resp.cookies {
        encode::header(&mut head, b"Set-Cookie", cookie.as_bytes());
    }
    let Some(mut t) = Tap::new(
        resp.status,
        &head,
        true,
        cp.stage.max_entry_bytes,
        Some(resp.body.len() as u64),
    ) else {
        return;
    };
    t.take(&resp.body);
    store(worker, x, plan, Some(t), true);
}
