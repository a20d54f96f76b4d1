//! Request ("Lambda") authorizers reached over HTTP: the identity sources read from the
//! request, this core's cached answer for them, else the AWS event POSTed to the authorizer
//! (payload format 1.0 or 2.0), its answer parsed and judged against the request's ARN.
//!
//! As AWS: a missing identity source is 401 without a call; an unreachable, failing or slow
//! authorizer is 500 `AUTHORIZER_FAILURE`; an answer that is not a valid simple or IAM
//! response is 500 `AUTHORIZER_CONFIGURATION_ERROR`; a denial is 403. Denials are cached like
//! grants. An IAM-policy answer is cached per request ARN (its verdict depends on it).

use std::{rc::Rc, sync::Arc, time::Duration};

use turnpike_core::auth::request_authorizer::{
    self as event, AuthorizerAnswer, IdentitySource, PayloadFormat,
};

use super::{Authorized, Refused};
use crate::{
    conn::{Client, RequestState},
    error::ErrorKind,
    exchange::RequestCtx,
    h1::encode,
    plan::{ProxyTarget, RoutePlan},
    upstream::call,
    worker::Worker,
};

/// Largest authorizer answer read (bytes).
const MAX_ANSWER: usize = 64 * 1024;

/// A request authorizer as one stage uses it.
pub struct CustomPlan {
    /// [`turnpike_core::auth::model::Authorizer::uid`]: keys the answer cache.
    pub uid: u64,
    /// Where the event goes, or why this stage cannot reach the authorizer.
    pub target: Result<ProxyTarget, Arc<str>>,
    /// The request line's target (`/authorize?x=y`).
    pub request_target: Box<[u8]>,
    /// A function invoked with the event instead of the HTTP endpoint.
    pub function: Option<Arc<crate::function::FunctionHandle>>,
    pub format: PayloadFormat,
    pub simple_responses: bool,
    pub sources: Box<[IdentitySource]>,
    /// How long answers are reused (ms); zero: never.
    pub ttl_ms: u64,
    pub timeout: Duration,
}

/// What the authorizer step needs besides the request.
pub struct CallInput<'a> {
    /// The path below the stage (empty means `/`).
    pub path: &'a [u8],
    /// The matched path parameters.
    pub params: &'a [(Box<str>, Box<str>)],
}

/// Runs a request authorizer for the request in `st`.
pub async fn check_custom(
    worker: &Worker,
    c: &Client,
    st: &RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
    cp: &CustomPlan,
    input: CallInput<'_>,
) -> Result<Authorized, Refused> {
    let snap = worker.snapshot();
    let stage = snap.stage_of(plan);
    let buf = &st.rbuf;
    // The identity sources: all present and non-empty, or 401 without a call.
    let mut values: smallvec::SmallVec<[&[u8]; 4]> = smallvec::SmallVec::new();
    for source in cp.sources.iter() {
        let v: Option<&[u8]> = match source {
            IdentitySource::Header(name) => st.head.find(buf, name.as_bytes()).map(|s| s.get(buf)),
            IdentitySource::Query(name) => st
                .head
                .query
                .and_then(|q| query_value(q.get(buf), name.as_bytes())),
            IdentitySource::StageVariable(name) => stage
                .and_then(|s| s.variables.get(&**name))
                .map(|v| v.as_bytes()),
            IdentitySource::Context(name) => context_value(name, c, st, plan),
        };
        match v {
            Some(v) if !v.is_empty() => values.push(v),
            _ => {
                return Err(Refused::new(
                    ErrorKind::Unauthorized,
                    "an identity source is missing",
                ));
            }
        }
    }
    let arn = super::request_arn(worker, st, plan, input.path);
    let now_ms = x.epoch_ms;
    let fp = (cp.ttl_ms > 0).then(|| {
        let route = (!cp.simple_responses).then_some(arn.as_bytes());
        worker
            .auth_cache
            .fingerprint(cp.uid, values.iter().copied().chain(route))
    });
    if let Some(fp) = fp
        && let Some(answer) = worker.auth_cache.answer(fp, now_ms)
    {
        return verdict(answer);
    }
    // The event.
    let identity: Vec<&str> = values
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .collect();
    let body = crate::event::with_facts(
        worker,
        c,
        st,
        x,
        plan,
        input.path,
        input.params,
        None,
        |facts| match cp.format {
            PayloadFormat::V2 => event::event_v2(facts, &identity),
            PayloadFormat::V1 => event::event_v1(facts, identity.first().copied().unwrap_or("")),
        },
    );
    let answer_body = match &cp.function {
        Some(function) => crate::function::invoke::call(worker, c, function, body)
            .await
            .map_err(|e| {
                tracing::debug!(reason = e.reason, "request authorizer function failed");
                Refused::new(ErrorKind::AuthorizerFailure, e.reason)
            })?,
        None => post(worker, c, cp, body).await?,
    };
    let answer =
        event::parse_answer(&answer_body, cp.format, cp.simple_responses, &arn).map_err(|e| {
            tracing::debug!(error = ?e, "request authorizer answer refused");
            Refused::new(
                ErrorKind::AuthorizerConfiguration,
                "the authorizer's answer is not a valid response",
            )
        })?;
    let answer = Rc::new(answer);
    if let Some(fp) = fp {
        worker
            .auth_cache
            .keep_answer(fp, answer.clone(), now_ms, now_ms + cp.ttl_ms);
    }
    verdict(answer)
}

/// POSTs the event to the authorizer's HTTP endpoint; the body of its answer.
async fn post(
    worker: &Worker,
    c: &Client,
    cp: &CustomPlan,
    body: Vec<u8>,
) -> Result<Vec<u8>, Refused> {
    let target = cp.target.as_ref().map_err(|_| {
        Refused::new(
            ErrorKind::AuthorizerFailure,
            "the authorizer cannot serve this stage",
        )
    })?;

    let mut request = worker.bufs.take();
    request.extend_from_slice(b"POST ");
    request.extend_from_slice(&cp.request_target);
    request.extend_from_slice(b" HTTP/1.1\r\n");
    encode::header(&mut request, b"Host", &target.host_header);
    encode::header(&mut request, b"Content-Type", b"application/json");
    encode::header(&mut request, b"User-Agent", b"turnpike-authorizer");
    encode::content_length(&mut request, body.len() as u64);
    request.extend_from_slice(encode::CRLF);
    request.extend_from_slice(&body);

    let called = call::call(worker, c, target, request, cp.timeout, MAX_ANSWER)
        .await
        .map_err(|e| {
            tracing::debug!(reason = e.reason, "request authorizer failed");
            let reason = match e.kind {
                ErrorKind::GatewayTimeout => "authorizer timed out",
                _ => e.reason,
            };
            Refused::new(ErrorKind::AuthorizerFailure, reason)
        })?;
    match called.status {
        200..=299 => {}
        401 => {
            return Err(Refused::new(
                ErrorKind::Unauthorized,
                "the authorizer answered 401",
            ));
        }
        403 => {
            return Err(Refused::new(
                ErrorKind::AccessDenied,
                "the authorizer answered 403",
            ));
        }
        _ => {
            return Err(Refused::new(
                ErrorKind::AuthorizerFailure,
                "the authorizer answered an error status",
            ));
        }
    }
    Ok(called.body)
}

fn verdict(answer: Rc<AuthorizerAnswer>) -> Result<Authorized, Refused> {
    if answer.allowed {
        Ok(Authorized::Custom(answer))
    } else {
        Err(Refused::new(
            ErrorKind::AccessDenied,
            "the authorizer denied the request",
        ))
    }
}

/// The raw value of query parameter `name` in `query` (first occurrence).
fn query_value<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name).then_some(v)
    })
}

/// A `$context` identity source's value.
fn context_value<'a>(
    name: &str,
    c: &'a Client,
    st: &'a RequestState,
    plan: &'a RoutePlan,
) -> Option<&'a [u8]> {
    let buf = &st.rbuf;
    Some(match name {
        "identity.sourceIp" => c.info.ip_text(),
        "httpMethod" => st.head.method(buf),
        "stage" => plan.stage_name.as_bytes(),
        "routeKey" => plan.route_key.as_bytes(),
        "apiId" => plan.api_name.as_bytes(),
        "domainName" => st.head.host.map_or(&b""[..], |h| h.get(buf)),
        "identity.userAgent" => st.head.find(buf, b"user-agent")?.get(buf),
        _ => return None,
    })
}

/// Appends the authorizer's context to the upstream request head in `out` (which ends with
/// the blank line) as `x-authorizer-{key}` headers, and the principal as
/// `x-authorizer-principal-id`. Keys that are not header tokens and values with control bytes
/// are left out.
pub fn write_context_headers(out: &mut Vec<u8>, answer: &AuthorizerAnswer) {
    if out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    let mut add = |key: &[u8], value: &[u8]| {
        let token = !key.is_empty()
            && key
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return;
        }
        out.extend_from_slice(crate::upstream::request::AUTHORIZER_PREFIX);
        out.extend(key.iter().map(u8::to_ascii_lowercase));
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(encode::CRLF);
    };
    if let Some(p) = &answer.principal_id {
        add(b"principal-id", p.as_bytes());
    }
    for (k, v) in answer.context.iter() {
        add(k.as_bytes(), v.as_bytes());
    }
    out.extend_from_slice(encode::CRLF);
}
