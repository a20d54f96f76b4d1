//! One request's life after its head is parsed, in the order DESIGN.md gives: route (a pure
//! [`route`] from snapshot and head to a [`RoutePlan`]), CORS preflight, body limit, the
//! integration (mock, `http_proxy`, or the gateway's own refusal), then metrics and the access
//! log. Every answer is written by [`crate::respond`]; integrations return results.
//!
//! A [`RequestCtx`] carries the `$context` values from parse to access log. A route whose API
//! has no CORS policy, no gateway responses and no access log runs none of that code.
//!
//! Hot path: no locks, no blocking calls, no logging above debug (integration failures are
//! warned about, rate-limited), no allocation per request.

use std::{rc::Rc, sync::Arc, time::Instant};

use turnpike_core::{
    access_log::AccessLogFormat,
    context::{RequestContext, RequestId},
    cors::CorsPolicy,
    route::Params,
    usage::{
        Now, Refusal, RefusalKind, RequestStep,
        steps::{self, StepInput},
    },
};

use crate::{
    access_log::LogSink,
    auth::{self, Authorized, PlanAuth, Refused},
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError},
    h1::{
        head::Span,
        request::{BodyKind, RequestHead},
    },
    plan::{PlanIntegration, RoutePlan},
    respond::{self, AnswerLines},
    snapshot::{Snapshot, SnapshotRef},
    stream::Stream,
    tls::server::TlsServer,
    traffic,
    upstream::{self, Forwarded},
    watch::Side,
    worker::Worker,
};

/// A stage's access log: its format and the writer its lines go to.
pub struct StageLog {
    pub format: AccessLogFormat,
    pub sink: Arc<LogSink>,
}

/// Where a parsed request goes: its plan, path parameters and the path below the stage.
pub struct Routed<'s, 'b> {
    pub plan: &'s RoutePlan,
    pub params: Params<'s, 'b>,
    /// The path below the stage prefix or domain base path; empty means `/`.
    pub path: &'b [u8],
}

/// Routes a parsed head: custom domain or stage prefix, then the API's route table (AWS HTTP
/// API matching). Never fails: a request no route serves gets the plan that answers 404 (its
/// API's and stage's when those were found, so their policies and logs apply).
#[inline]
pub fn route<'s, 'b>(snap: &'s Snapshot, buf: &'b [u8], head: &RequestHead) -> Routed<'s, 'b> {
    let host = head.host.map_or(&b""[..], |h| h.get(buf));
    let path = if head.path.is_empty() {
        &b"/"[..]
    } else {
        head.path.get(buf)
    };
    let Some((api, stage, rest)) = snap.config.locate(host, path) else {
        return Routed {
            plan: &snap.unrouted,
            params: Params::EMPTY,
            path,
        };
    };
    match snap.config.apis[api].table.find(head.method(buf), rest) {
        Some(m) => Routed {
            plan: snap.plan(api, stage, Some(*m.value as usize)),
            params: m.params,
            path: rest,
        },
        None => Routed {
            plan: snap.plan(api, stage, None),
            params: Params::EMPTY,
            path: rest,
        },
    }
}

/// What a request carries from parse to access log (the `$context` values the gateway
/// measures; the rest are read from the head and plan when a line is rendered).
pub struct RequestCtx {
    pub request_id: RequestId,
    pub started: Instant,
    pub epoch_ms: u64,
    /// The status sent (499: the client went away first, as nginx counts it).
    pub status: u16,
    /// Response payload bytes sent.
    pub response_length: u64,
    /// Request payload bytes read.
    pub request_length: u64,
    pub integration_micros: Option<u64>,
    pub integration_status: Option<u16>,
    /// The gateway's own error, when it answered one (or the integration failed).
    pub error: Option<GatewayError>,
    /// The Origin header, when the API has a CORS policy.
    pub origin: Option<Span>,
    /// Seconds a throttled or over-quota client should wait (`Retry-After`).
    pub retry_after: Option<u64>,
    /// Who an authorizer admitted: `$context.authorizer.*`, `$context.identity.*`.
    pub authorized: Option<Authorized>,
    /// The error message when AWS's names details (a SigV4 window, a resource ARN).
    pub message: Option<Box<str>>,
    /// `$context.error.validationErrorString`: why request validation refused the request.
    pub validation_error: Option<Box<str>>,
    /// `WWW-Authenticate` of a 401.
    pub challenge: Option<&'static str>,
    /// What the cache lookup decided (`None`: the route does not cache).
    pub cache: Option<crate::cache::Pending>,
}

impl RequestCtx {
    pub fn new(worker: &Worker) -> RequestCtx {
        let epoch_ms = worker.epoch_ms();
        RequestCtx {
            request_id: worker.next_request_id(epoch_ms),
            started: Instant::now(),
            epoch_ms,
            status: 0,
            response_length: 0,
            request_length: 0,
            integration_micros: None,
            integration_status: None,
            error: None,
            origin: None,
            retry_after: None,
            authorized: None,
            message: None,
            validation_error: None,
            challenge: None,
            cache: None,
        }
    }

    /// The lines every answer ends with.
    #[inline]
    pub fn lines<'a>(
        &'a self,
        plan: &'a RoutePlan,
        buf: &'a [u8],
        keep: bool,
        minor: u8,
    ) -> AnswerLines<'a> {
        AnswerLines {
            request_id: self.request_id.as_bytes(),
            cors: cors_for(plan, self.origin, buf),
            persist: respond::persist(keep, minor),
            retry_after: self.retry_after,
            challenge: self.challenge,
            extra: self.cache.as_ref().map_or(&b""[..], |p| p.lines()),
        }
    }
}

#[inline]
fn cors_for<'a>(
    plan: &'a RoutePlan,
    origin: Option<Span>,
    buf: &'a [u8],
) -> Option<(&'a CorsPolicy, Option<&'a [u8]>)> {
    let policy = plan.policies.cors.as_ref()?;
    let origin = origin
        .map(|o| o.get(buf))
        .filter(|o| policy.allows_origin(o));
    Some((policy, origin))
}

/// Serves one parsed request in `st` and counts it. Returns whether the connection may carry
/// another.
pub async fn serve(
    worker: &Rc<Worker>,
    snap: &SnapshotRef,
    c: &mut Client,
    st: &mut RequestState,
) -> bool {
    let mut x = RequestCtx::new(worker);
    st.consumed = st.head.end;
    let routed = route(snap, &st.rbuf, &st.head);
    let plan = routed.plan;
    // Requests to a WebSocket API are handshakes: crate::websocket serves them.
    if let Some(ws) = snap
        .config
        .apis
        .get(plan.api as usize)
        .and_then(|a| a.websocket.as_ref())
    {
        return crate::websocket::accept(worker, snap, c, st, plan, ws).await;
    }
    if plan.policies.cors.is_some() {
        x.origin = st.head.find(&st.rbuf, b"origin");
    }
    // The upstream head is written while the path parameters still borrow the read buffer.
    let upstream_head = match &plan.integration {
        PlanIntegration::Proxy(p) => {
            let mut out = worker.bufs.take();
            upstream::request::write_head(
                &mut out,
                &st.rbuf,
                &st.head,
                routed.path,
                &routed.params,
                &p.target,
                p.preserve_host,
                &c.info,
            );
            Some(out)
        }
        _ => None,
    };
    let at = RouteAt {
        path: span_of(&st.rbuf, routed.path),
        params: match (&plan.auth, &plan.integration) {
            (PlanAuth::Custom(_), _) | (_, PlanIntegration::Function(_)) => owned(&routed.params),
            _ if plan.validation.is_some()
                || plan.mapping.is_some()
                || plan.transform.is_some() =>
            {
                owned(&routed.params)
            }
            _ => Vec::new(),
        },
    };
    let keep = run(worker, snap, c, st, &mut x, plan, upstream_head, at).await;
    finish(worker, c, st, &x, plan);
    keep
}

/// Answers a request whose head could not be parsed (or read in time), and counts it. The
/// connection closes.
pub async fn refuse_unparsed(
    worker: &Rc<Worker>,
    snap: &SnapshotRef,
    c: &mut Client,
    st: &mut RequestState,
    e: GatewayError,
) {
    let mut x = RequestCtx::new(worker);
    let plan = &snap.unrouted;
    // Nothing of the request can be trusted: no keep-alive, no HEAD special case, and no
    // span of a head (what `st.head` holds may be the previous request's, or half of this
    // one's).
    st.head.forget();
    answer_error(worker, c, st, &mut x, plan, e, false, false).await;
    finish(worker, c, st, &x, plan);
}

/// Path parameters copied out of the read buffer, values decoded as UTF-8 (lossily).
fn owned(params: &Params<'_, '_>) -> Vec<(Box<str>, Box<str>)> {
    params
        .iter()
        .map(|(k, v)| (k.into(), String::from_utf8_lossy(v).into()))
        .collect()
}

/// Where in the read buffer the path below the stage is, and the path parameters a request
/// authorizer's event carries (copied: the body may still be read into the buffer).
struct RouteAt {
    path: std::ops::Range<usize>,
    params: Vec<(Box<str>, Box<str>)>,
}

/// Where `part` lies in `buf` (empty when it is not a part of it: the `/` of an empty path).
fn span_of(buf: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    if start <= buf.len() && start + part.len() <= buf.len() {
        start..start + part.len()
    } else {
        0..0
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    worker: &Rc<Worker>,
    snap: &SnapshotRef,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    mut upstream_head: Option<Vec<u8>>,
    at: RouteAt,
) -> bool {
    let head_only = st.head.is_head(&st.rbuf);

    // A connection serves only Hosts it could have been made for: a client that completed a
    // handshake for one domain must not reach a domain with another certificate, policy or
    // truststore (a mutual TLS domain, above all) by naming it in Host, and a plain
    // connection cannot reach a domain that requires client certificates.
    if let Some(server) = &snap.tls
        && let Some(host) = st.head.host
        && let Some(reason) = misdirected(server, &c.stream, host.get(&st.rbuf))
    {
        if let Some(out) = upstream_head {
            worker.bufs.give(out);
        }
        let e = GatewayError::client(ErrorKind::MisdirectedRequest, reason);
        let read = discard_body(st);
        return answer_error(worker, c, st, x, plan, e, read, head_only).await;
    }

    // The API's resource policy, before anything else looks at the request.
    if let Some(policy) = &plan.resource_policy
        && let Err(r) = auth::check_resource_policy(
            worker,
            c,
            st,
            plan,
            policy,
            &snap.config.auth.trusted_proxies,
            &st.rbuf[at.path.clone()],
        )
    {
        return refuse(worker, c, st, x, plan, upstream_head, r, head_only).await;
    }

    // CORS preflight: answered by the gateway for any path of an API with CORS, with or
    // without an OPTIONS route (AWS, "Configuring CORS for an HTTP API").
    if let Some(cors) = &plan.policies.cors
        && let Some(answered) = preflight(worker, c, st, x, cors).await
    {
        if let Some(out) = upstream_head {
            worker.bufs.give(out);
        }
        return answered;
    }
    // The route's authorizer.
    if !matches!(plan.auth, PlanAuth::None) {
        match auth::authorize(worker, c, st, x, plan, &at.path, &at.params).await {
            Ok(who) => {
                if let (Authorized::Custom(answer), Some(out)) = (&who, upstream_head.as_mut()) {
                    auth::request::write_context_headers(out, answer);
                }
                x.authorized = Some(who);
            }
            Err(r) => return refuse(worker, c, st, x, plan, upstream_head, r, head_only).await,
        }
    }
    // Traffic control: API key, throttles, usage plan and quota.
    if !plan.steps.is_empty()
        && let Err(refusal) = admit(worker, st, x, plan)
    {
        if let Some(out) = upstream_head {
            worker.bufs.give(out);
        }
        match refusal.kind {
            RefusalKind::InvalidApiKey => {}
            RefusalKind::Throttled => plan.counters[worker.id].count_throttled(),
            RefusalKind::QuotaExceeded => plan.counters[worker.id].count_quota_exceeded(),
        }
        let e = GatewayError::from(refusal.kind);
        x.retry_after = refusal.retry_after_ms.map(|ms| ms.div_ceil(1000));
        let read = discard_body(st);
        return answer_error(worker, c, st, x, plan, e, read, head_only).await;
    }
    if let BodyKind::Length(n) = st.head.body
        && n > plan.body_limit
        && !matches!(plan.integration, PlanIntegration::NoRoute)
    {
        let e = GatewayError::client(
            ErrorKind::PayloadTooLarge,
            "request body over max_body_bytes",
        );
        if let Some(out) = upstream_head {
            worker.bufs.give(out);
        }
        return answer_error(worker, c, st, x, plan, e, false, head_only).await;
    }
    // Request validation: parameters, then the body against its model.
    if let Some(v) = &plan.validation {
        let chunked = st.head.body == BodyKind::Chunked;
        if let Err(r) =
            crate::validate::validate(worker, c, st, x, v, &at.params, plan.body_limit).await
        {
            return refuse(worker, c, st, x, plan, upstream_head, r, head_only).await;
        }
        // A chunked body read whole is decoded: the upstream head says its length.
        if chunked && let (BodyKind::Length(n), Some(out)) = (st.head.body, upstream_head.as_mut())
        {
            upstream::request::reframe_as_length(out, n);
        }
    }
    // Parameter mapping: the request's edits, applied to the upstream head here or to the
    // function's event.
    let mut edits = None;
    if let Some(m) = &plan.mapping
        && m.maps_requests()
        && matches!(
            plan.integration,
            PlanIntegration::Proxy(_) | PlanIntegration::Function(_)
        )
    {
        let chunked = st.head.body == BodyKind::Chunked;
        match crate::mapping::map_request(worker, c, st, x, plan, m, at.path.clone(), &at.params)
            .await
        {
            Ok(e) => {
                if let Some(out) = upstream_head.as_mut() {
                    if chunked && let BodyKind::Length(n) = st.head.body {
                        upstream::request::reframe_as_length(out, n);
                    }
                    crate::mapping::edit_upstream_head(out, &e);
                }
                edits = Some(e);
            }
            Err(r) => return refuse(worker, c, st, x, plan, upstream_head, r, head_only).await,
        }
    }
    // Cache lookup (crate::cache): a hit is answered here and never reaches the integration.
    if let Some(cp) = &plan.cache
        && let Some(keep) = crate::cache::lookup(
            worker,
            c,
            st,
            x,
            plan,
            cp,
            at.path.clone(),
            upstream_head.as_mut(),
        )
        .await
    {
        if let Some(out) = upstream_head {
            worker.bufs.give(out);
        }
        return keep;
    }
    match &plan.integration {
        PlanIntegration::NoRoute => {
            let read = discard_body(st);
            answer_error(
                worker,
                c,
                st,
                x,
                plan,
                GatewayError::NOT_FOUND,
                read,
                head_only,
            )
            .await
        }
        PlanIntegration::Misconfigured(_) => {
            let read = discard_body(st);
            let e = GatewayError {
                kind: ErrorKind::ApiConfiguration,
                side: crate::error::Side::Internal,
                reason: "the integration cannot serve this stage",
            };
            answer_error(worker, c, st, x, plan, e, read, head_only).await
        }
        PlanIntegration::Mock(mock) if plan.transform.is_some() => {
            let t = plan.transform.as_deref().unwrap_or_else(|| unreachable!());
            let outcome =
                crate::transform::call_mock(worker, c, st, x, plan, t, &mock.headers, &at.params)
                    .await;
            answer_transformed(worker, c, st, x, plan, outcome, head_only).await
        }
        PlanIntegration::Proxy(p) if plan.transform.is_some() => {
            let t = plan.transform.as_deref().unwrap_or_else(|| unreachable!());
            let Some(out) = upstream_head else {
                return false;
            };
            let outcome =
                crate::transform::call_http(worker, c, st, x, plan, p, t, out, &at.params).await;
            answer_transformed(worker, c, st, x, plan, outcome, head_only).await
        }
        PlanIntegration::Mock(mock) => {
            let read = discard_body(st);
            c.linger |= !read;
            let keep = respond::keep_alive(&st.head, read, false, worker.draining());
            let mut out = worker.bufs.take();
            // A mock is the integration: its time is writing the response.
            let started = std::time::Instant::now();
            respond::write_mock(
                &mut out,
                mock,
                &x.lines(plan, &st.rbuf, keep, st.head.minor_version),
                &worker.date(),
                head_only,
            );
            x.integration_micros = Some(started.elapsed().as_micros() as u64);
            crate::cache::store_mock(worker, x, plan, mock, head_only);
            x.status = mock.status;
            x.response_length = if head_only { 0 } else { mock.body.len() as u64 };
            send(worker, c, out).await && keep
        }
        PlanIntegration::Function(fp) => {
            let body = match crate::body::read_whole_any(worker, c, st, plan.body_limit).await {
                Ok(body) => body,
                Err(r) => return refuse(worker, c, st, x, plan, None, r, head_only).await,
            };
            x.request_length = body.len() as u64;
            let path = &st.rbuf[at.path.clone()];
            let result = crate::function::invoke::invoke(
                worker,
                c,
                st,
                x,
                plan,
                fp,
                path,
                &at.params,
                &st.rbuf[body],
                edits.as_ref(),
            )
            .await;
            let read = discard_body(st);
            match result {
                Ok(resp) => answer_whole(worker, c, st, x, plan, resp, read, head_only).await,
                Err(e) => answer_error(worker, c, st, x, plan, e, read, head_only).await,
            }
        }
        PlanIntegration::Proxy(p) => {
            let Some(out) = upstream_head else {
                return false;
            };
            // A WebSocket handshake is tunnelled to the backend (upstream::tunnel).
            if upstream::tunnel::wants_tunnel(st) {
                return match upstream::tunnel::proxy(worker, snap, c, st, out, p, x).await {
                    Ok(()) => false,
                    Err(e) => answer_error(worker, c, st, x, plan, e, true, head_only).await,
                };
            }
            match upstream::forward(worker, snap, c, st, out, p, plan, x).await {
                Forwarded::Done { keep } => keep,
                Forwarded::ClientGone => {
                    x.status = 499;
                    false
                }
                Forwarded::Failed {
                    error,
                    request_read,
                } => answer_error(worker, c, st, x, plan, error, request_read, head_only).await,
            }
        }
    }
}

/// Sends a whole response an integration gave (a function's, a templated integration's),
/// after the integration's response mapping. `read`: the request was read to its end.
#[allow(clippy::too_many_arguments)]
async fn answer_whole(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    mut resp: turnpike_core::function::response::FunctionResponse,
    read: bool,
    head_only: bool,
) -> bool {
    if x.integration_status.is_none() {
        x.integration_status = Some(resp.status);
    }
    if let Some(m) = &plan.mapping {
        map_function_response(worker, c, st, x, plan, m, &mut resp);
    }
    let keep = respond::keep_alive(&st.head, read, false, worker.draining());
    let mut out = worker.bufs.take();
    respond::write_function(
        &mut out,
        &resp,
        &x.lines(plan, &st.rbuf, keep, st.head.minor_version),
        &worker.date(),
        head_only,
    );
    crate::cache::store_function(worker, x, plan, &resp, head_only);
    x.status = resp.status;
    x.response_length = if head_only { 0 } else { resp.body.len() as u64 };
    send(worker, c, out).await && keep
}

/// Answers what a templated integration ended with.
async fn answer_transformed(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    outcome: crate::transform::Outcome,
    head_only: bool,
) -> bool {
    use crate::transform::Outcome;
    match outcome {
        Outcome::Answer(resp) => {
            let read = discard_body(st);
            answer_whole(worker, c, st, x, plan, resp, read, head_only).await
        }
        Outcome::Refused(r) => refuse(worker, c, st, x, plan, None, r, head_only).await,
        Outcome::Failed(e) => {
            let read = discard_body(st);
            answer_error(worker, c, st, x, plan, e, read, head_only).await
        }
    }
}

/// Applies the response mapping of a function's answer: its status and headers.
fn map_function_response(
    worker: &Worker,
    c: &Client,
    st: &RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    m: &turnpike_core::mapping::ParameterMapping,
    resp: &mut turnpike_core::function::response::FunctionResponse,
) {
    if !m.maps_response(resp.status) {
        return;
    }
    let Some(edits) = crate::mapping::map_response(
        worker,
        c,
        st,
        x,
        plan,
        m,
        resp.status,
        crate::mapping::Fields::Pairs(&resp.headers),
        &resp.body,
    ) else {
        return;
    };
    if let Some(s) = edits.status {
        resp.status = s;
    }
    let mut pairs: Vec<(&str, &str)> = resp
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    turnpike_core::mapping::edit_pairs(&mut pairs, &edits.headers);
    resp.headers = pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
}

/// Runs the plan's traffic-control steps on the newest key table.
#[inline]
fn admit(
    worker: &Worker,
    st: &RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
) -> Result<(), Refusal> {
    let api_key = match plan.steps.first() {
        Some(RequestStep::RequireApiKey) if plan.api_key_from_authorizer => match &x.authorized {
            Some(Authorized::Custom(a)) => a.usage_identifier_key.as_deref().map(str::as_bytes),
            _ => None,
        },
        Some(RequestStep::RequireApiKey) => st
            .head
            .find(&st.rbuf, b"x-api-key")
            .map(|s| s.get(&st.rbuf)),
        _ => None,
    };
    admit_with_key(worker, x, plan, api_key)
}

/// Runs `plan`'s traffic-control steps with `api_key` (the key the request carries, if its
/// route requires one) on the newest key table, at the request's clock readings.
#[inline]
pub fn admit_with_key(
    worker: &Worker,
    x: &RequestCtx,
    plan: &RoutePlan,
    api_key: Option<&[u8]>,
) -> Result<(), Refusal> {
    let input = StepInput {
        api_key,
        stage: plan.stage_uid,
        route_key: &plan.route_key,
    };
    let now = Now {
        mono_ns: traffic::mono_ns(x.started),
        epoch_ms: x.epoch_ms,
    };
    worker
        .keys
        .with(|table, usage| steps::admit(&plan.steps, input, table, &usage.slots, now))
}

/// Answers a request an authorizer or policy refused.
#[allow(clippy::too_many_arguments)]
async fn refuse(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    upstream_head: Option<Vec<u8>>,
    r: Refused,
    head_only: bool,
) -> bool {
    if let Some(out) = upstream_head {
        worker.bufs.give(out);
    }
    if matches!(
        r.error.kind,
        ErrorKind::AuthorizerFailure | ErrorKind::AuthorizerConfiguration
    ) {
        worker.warn_failure(
            plan,
            r.error,
            x.request_id.as_str(),
            false,
            "authorizer failed",
        );
    }
    x.message = r.message;
    x.challenge = r.challenge;
    x.authorized = r.who;
    let read = discard_body(st);
    answer_error(worker, c, st, x, plan, r.error, read, head_only).await
}

/// Answers a CORS preflight if this is one: 204 with the policy's headers when allowed, a bare
/// 204 (which a browser refuses) when not. `None`: not a preflight.
async fn preflight(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    cors: &CorsPolicy,
) -> Option<bool> {
    let method_span = st.head.find(&st.rbuf, b"access-control-request-method");
    {
        let buf = &st.rbuf;
        let origin = x.origin.map(|s| s.get(buf));
        let method = method_span.map(|s| s.get(buf));
        if !CorsPolicy::is_preflight(st.head.method(buf), origin, method) {
            return None;
        }
    }
    let read = discard_body(st);
    c.linger |= !read;
    let buf = &st.rbuf;
    let origin = x.origin.map(|s| s.get(buf));
    let method = method_span.map(|s| s.get(buf));
    let keep = respond::keep_alive(&st.head, read, false, worker.draining());
    let request_headers = st
        .head
        .find(buf, b"access-control-request-headers")
        .map(|s| s.get(buf));
    let mut out = worker.bufs.take();
    crate::h1::encode::status_line(&mut out, 204, b"No Content");
    crate::h1::encode::header(&mut out, b"Date", &worker.date());
    if let (Some(origin), Some(method)) = (origin, method) {
        cors.write_preflight(origin, method, request_headers, &mut out);
    }
    let lines = AnswerLines {
        request_id: x.request_id.as_bytes(),
        cors: None,
        persist: respond::persist(keep, st.head.minor_version),
        retry_after: None,
        challenge: None,
        extra: b"",
    };
    respond::finish_head(&mut out, &lines);
    x.status = 204;
    Some(send(worker, c, out).await && keep)
}

/// Writes the gateway's own answer to `e` through the plan's gateway responses. `request_read`:
/// the request (with its body) was read to its end. Returns whether the connection stays open.
#[allow(clippy::too_many_arguments)]
pub async fn answer_error(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    e: GatewayError,
    request_read: bool,
    head_only: bool,
) -> bool {
    x.error = Some(e);
    if e.is_integration_failure() || e.kind == ErrorKind::ApiConfiguration {
        worker.warn_integration_failure(plan, e, x.request_id.as_str());
        if e.is_integration_failure() && matches!(plan.integration, PlanIntegration::Proxy(_)) {
            plan.counters[worker.id].count_upstream_error(e.upstream_cause());
        }
    }
    c.linger |= !request_read;
    let keep = respond::keep_alive(&st.head, request_read, e.closes(), worker.draining());
    let mut out = worker.bufs.take();
    let mut scratch = worker.scratch.take();
    let status = {
        let lines = x.lines(plan, &st.rbuf, keep, st.head.minor_version);
        let ctx = context(c, st, x, plan);
        respond::write_error(
            &mut out,
            e,
            &plan.policies,
            &ctx,
            &mut scratch,
            &lines,
            &worker.date(),
            head_only,
        )
    };
    x.response_length = if head_only { 0 } else { scratch.len() as u64 };
    worker.scratch.set(scratch);
    x.status = status;
    send(worker, c, out).await && keep
}

/// Why a request for `host` must not be served on this connection, if it must not.
#[inline]
fn misdirected(server: &TlsServer, stream: &Stream, host: &[u8]) -> Option<&'static str> {
    match stream {
        Stream::Tls(tls) => (server.identity_for(host) != Some(tls.identity()))
            .then_some("Host names a domain this TLS connection was not made for"),
        Stream::Plain(_) => (!server.allows_plain(host))
            .then_some("the domain requires mutual TLS; a plain HTTP connection cannot reach it"),
    }
}

/// Writes `out` to the client within the idle timeout, then gives the buffer back to the pool.
pub async fn send(worker: &Worker, c: &mut Client, out: Vec<u8>) -> bool {
    let idle = worker.snapshot().config.gateway.idle_timeout;
    let armed = c.watch.arm(idle, c.fd, Side::Both);
    let (res, out) = c.stream.write_all(out).await;
    drop(armed);
    worker.bufs.give(out);
    res.is_ok()
}

/// Marks a body-less request's end, or a body already fully read; `false` if unread body
/// bytes remain, so the connection cannot carry another request.
pub(crate) fn discard_body(st: &mut RequestState) -> bool {
    match st.head.body {
        BodyKind::None => true,
        BodyKind::Length(n) if (st.rbuf.len() - st.head.end) as u64 >= n => {
            st.consumed = st.head.end + n as usize;
            true
        }
        _ => false,
    }
}

/// Counts the request and writes its access log line.
fn finish(worker: &Worker, c: &Client, st: &RequestState, x: &RequestCtx, plan: &RoutePlan) {
    let micros = x.started.elapsed().as_micros() as u64;
    let counters = &plan.counters[worker.id];
    counters.record(x.status, micros, x.integration_micros);
    counters.count_bytes(x.request_length, x.response_length);
    if let Some(log) = &plan.access_log {
        let ctx = context(c, st, x, plan);
        worker.log_line(log, |out| log.format.render_line(&ctx, out));
    }
}

/// The `$context` values of a request, for an access log line, a gateway response body or a
/// parameter mapping.
pub fn context<'a>(
    c: &'a Client,
    st: &'a RequestState,
    x: &'a RequestCtx,
    plan: &'a RoutePlan,
) -> RequestContext<'a> {
    let buf = &st.rbuf[..];
    let text = |b: &'a [u8]| std::str::from_utf8(b).unwrap_or("-");
    let host = st.head.host.map_or("", |h| text(h.get(buf)));
    let e = x.error;
    RequestContext {
        request_id: x.request_id.as_str(),
        source_ip: Some(c.info.ip),
        user_agent: st.head.find(buf, b"user-agent").map(|s| text(s.get(buf))),
        request_time_epoch_ms: x.epoch_ms,
        method: text(st.head.method(buf)),
        path: text(if st.head.path.is_empty() {
            b"/"
        } else {
            st.head.path.get(buf)
        }),
        protocol: if st.head.minor_version == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        },
        route_key: &plan.route_key,
        stage: &plan.stage_name,
        api_id: &plan.api_name,
        domain_name: host,
        status: x.status,
        response_length: x.response_length,
        response_latency_ms: x.started.elapsed().as_millis() as u64,
        integration_latency_ms: x.integration_micros.map(|m| m / 1000),
        integration_status: x.integration_status,
        integration_error: e.filter(|e| e.is_integration_failure()).map(|e| e.reason),
        error_message: x.message.as_deref().or(e.map(|e| e.message())),
        error_response_type: e.map(|e| e.response_type().name()),
        validation_error: x.validation_error.as_deref(),
        data_processed: x.request_length + x.response_length,
        client_cert: c.stream.client_cert().map(|cert| cert.info()),
        authorizer: x
            .authorized
            .as_ref()
            .map(|a| turnpike_core::context::AuthorizerRef(a)),
        authorizer_principal_id: x.authorized.as_ref().and_then(|a| a.principal_id()),
        authorizer_error: e
            .filter(|e| {
                matches!(
                    e.kind,
                    ErrorKind::AuthorizerFailure | ErrorKind::AuthorizerConfiguration
                )
            })
            .map(|e| e.reason),
        identity_access_key: match &x.authorized {
            Some(Authorized::Iam { access_key, .. }) => Some(access_key),
            _ => None,
        },
        identity_caller: match &x.authorized {
            Some(Authorized::Iam { principal, .. }) => Some(principal),
            _ => None,
        },
        cache_status: x.cache.as_ref().and_then(|p| p.status).map(|s| s.name()),
        ..RequestContext::default()
    }
}
