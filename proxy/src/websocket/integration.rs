//! The integrations a WebSocket event calls, each returning an [`Answer`]: the status
//! (`$connect` refuses the upgrade on a non-2xx) and the body a two-way route sends back.
//!
//! - `mock`: its status and body;
//! - `function`: AWS's WebSocket event ([`turnpike_core::websocket::event`]), the function's
//!   `{statusCode, body}` back;
//! - `http_proxy`: the message POSTed to the integration's URI, with the connection id in a
//!   `connectionId` header, the route key in `routeKey` and the event type in `eventType`
//!   (AWS maps them with `integration.request.header.connectionId: context.connectionId`);
//!   the backend's status and body back. On `$connect` the POST carries the handshake's
//!   query string and its end-to-end headers ([`write_handshake_headers`]), so the backend
//!   can authorize on them.
//!
//! On `$connect`, an answer's `Sec-WebSocket-Protocol` (a mock's headers, a function's
//! `headers`, a backend's response header) is the subprotocol the integration chose
//! ([`Answer::subprotocol`]); [`super::accept`] checks the client offered it.

use std::time::Instant;

use turnpike_core::{
    auth::request_authorizer::query_pairs,
    h1::{HeaderKind, encode, request::RequestHead},
    websocket::event::{self, EventType, WsEvent},
};

use super::Upgraded;
use crate::{
    auth::Authorized,
    conn::Client,
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    plan::{PlanIntegration, RoutePlan},
    upstream::{call, request::ClientInfo},
    worker::Worker,
};

/// Largest answer read from an `http_proxy` backend (a WebSocket message is at most 128 KiB
/// on AWS; a backend's answer to one is bounded the same way, generously).
const MAX_ANSWER: usize = 1 << 20;

/// What the event is about.
pub struct Input<'a> {
    pub event_type: EventType,
    pub route_key: &'a str,
    /// MESSAGE: the payload and whether it came in a binary frame.
    pub body: Option<(&'a [u8], bool)>,
    /// DISCONNECT: the close code and reason.
    pub disconnect: Option<(u16, &'a str)>,
    /// CONNECT: the handshake request (its buffer and head), for headers and query.
    pub handshake: Option<(&'a [u8], &'a RequestHead)>,
}

/// An integration's answer.
pub struct Answer {
    pub status: u16,
    pub body: Option<Vec<u8>>,
    /// `$connect` only: the `Sec-WebSocket-Protocol` the integration answered with.
    pub subprotocol: Option<Box<[u8]>>,
}

/// [`call`], timed: `x.integration_micros` gets the call's duration, and
/// `x.integration_status` its answer's status or `x.error` its failure (what the access log
/// line of the event shows).
pub async fn call_timed(
    worker: &Worker,
    c: &Client,
    plan: &RoutePlan,
    up: &Upgraded,
    x: &mut RequestCtx,
    input: Input<'_>,
) -> Result<Answer, GatewayError> {
    let started = Instant::now();
    let res = call(worker, c, plan, up, x, input).await;
    x.integration_micros = Some(started.elapsed().as_micros() as u64);
    match &res {
        Ok(a) => x.integration_status = Some(a.status),
        Err(e) => x.error = Some(*e),
    }
    res
}

/// Calls `plan`'s integration for one event of connection `up`.
pub async fn call(
    worker: &Worker,
    c: &Client,
    plan: &RoutePlan,
    up: &Upgraded,
    x: &RequestCtx,
    input: Input<'_>,
) -> Result<Answer, GatewayError> {
    match &plan.integration {
        PlanIntegration::Mock(m) => Ok(Answer {
            status: m.status,
            body: Some(m.body.to_vec()),
            subprotocol: input
                .handshake
                .and_then(|_| {
                    m.headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
                })
                .map(|(_, v)| v.as_bytes().into()),
        }),
        PlanIntegration::Function(f) => {
            let payload = function_event(c, up, x, &input);
            let answer = crate::function::invoke::call(worker, c, &f.function, payload).await?;
            let a = event::parse_answer(&answer).map_err(|why| {
                tracing::warn!(function = %f.function.name, why, "the function's answer to a WebSocket event is malformed");
                GatewayError::upstream(
                    ErrorKind::IntegrationFailure,
                    "the function's response is malformed",
                )
            })?;
            Ok(Answer {
                status: a.status,
                body: a.body,
                subprotocol: a
                    .subprotocol
                    .filter(|_| input.handshake.is_some())
                    .map(|p| p.into_bytes().into()),
            })
        }
        PlanIntegration::Proxy(p) => {
            let target = &p.target;
            let body = input.body.map_or(&b""[..], |(b, _)| b);
            let mut request = worker.bufs.take();
            request.extend_from_slice(b"POST ");
            match &target.path {
                Some(t) => {
                    let at = request.len();
                    t.render_with(|_| None, &mut request);
                    if request.len() == at {
                        request.push(b'/');
                    }
                }
                None => request.push(b'/'),
            }
            let client_query = input
                .handshake
                .and_then(|(buf, head)| head.query.map(|q| q.get(buf)))
                .filter(|q| !q.is_empty());
            let mut sep = b'?';
            for q in [target.query.as_deref(), client_query]
                .into_iter()
                .flatten()
            {
                request.push(sep);
                request.extend_from_slice(q);
                sep = b'&';
            }
            request.extend_from_slice(b" HTTP/1.1\r\n");
            encode::header(&mut request, b"Host", &target.host_header);
            if let Some((buf, head)) = input.handshake {
                write_handshake_headers(&mut request, buf, head, &c.info);
            }
            encode::header(&mut request, b"connectionId", &up.id_text);
            encode::header(&mut request, b"routeKey", input.route_key.as_bytes());
            encode::header(
                &mut request,
                b"eventType",
                input.event_type.as_str().as_bytes(),
            );
            let content_type: &[u8] = match input.body {
                Some((_, true)) => b"application/octet-stream",
                _ => b"application/json",
            };
            encode::header(&mut request, b"Content-Type", content_type);
            encode::content_length(&mut request, body.len() as u64);
            request.extend_from_slice(encode::CRLF);
            if input.handshake.is_some()
                && let Some(Authorized::Custom(answer)) = &x.authorized
            {
                // A request authorizer's context, as the HTTP path forwards it.
                crate::auth::request::write_context_headers(&mut request, answer);
            }
            request.extend_from_slice(body);
            let called = call::call(worker, c, target, request, p.timeout, MAX_ANSWER).await?;
            let subprotocol = input
                .handshake
                .and_then(|_| called.header(b"sec-websocket-protocol"))
                .map(Box::from);
            Ok(Answer {
                status: called.status,
                body: (!called.body.is_empty()).then_some(called.body),
                subprotocol,
            })
        }
        PlanIntegration::Misconfigured(_) => Err(GatewayError::client(
            ErrorKind::ApiConfiguration,
            "the route's integration cannot serve this stage",
        )),
        PlanIntegration::NoRoute => Err(GatewayError::client(ErrorKind::NotFound, "no route")),
    }
}

/// The handshake's end-to-end headers for a `$connect` call to an `http_proxy` backend,
/// then `X-Forwarded-For` (the client's, then its address), `X-Forwarded-Proto` and
/// `X-Forwarded-Port`, as the HTTP path sends them.
///
/// Left out: `Host` (the backend's is sent), hop-by-hop headers and those the `Connection`
/// header nominates, `Expect`, the client's `X-Forwarded-Proto`/`-Port`, its
/// `x-authorizer-*` headers, the handshake's own `Sec-WebSocket-Key`, `-Version`,
/// `-Extensions` and `-Accept` (they belong to the client's connection with the gateway), and
/// the fields the gateway sets itself (`connectionId`, `routeKey`, `eventType`,
/// `Content-Type`): a client cannot pose as another connection. `Sec-WebSocket-Protocol`
/// passes: a backend chooses a subprotocol from it.
pub fn write_handshake_headers(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    client: &ClientInfo,
) {
    const OWN: [&[u8]; 8] = [
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-accept",
        b"connectionid",
        b"routekey",
        b"eventtype",
        b"content-type",
    ];
    let prefix = crate::upstream::request::AUTHORIZER_PREFIX;
    for h in &head.headers {
        match h.kind {
            HeaderKind::Host
            | HeaderKind::Expect
            | HeaderKind::XForwardedProto
            | HeaderKind::XForwardedPort
            | HeaderKind::XForwardedFor => continue,
            k if k.is_hop_by_hop() => continue,
            _ => {}
        }
        let name = h.name.get(buf);
        if head.connection.nominates(buf, name)
            || OWN.iter().any(|o| name.eq_ignore_ascii_case(o))
            || name.len() > prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            continue;
        }
        encode::header(out, name, h.value.get(buf));
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for h in head
        .headers
        .iter()
        .filter(|h| h.kind == HeaderKind::XForwardedFor)
    {
        out.extend_from_slice(h.value.get(buf));
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client.ip_text());
    out.extend_from_slice(if client.tls {
        b"\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: "
    } else {
        b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: "
    });
    out.extend_from_slice(client.port_text());
    out.extend_from_slice(encode::CRLF);
}

fn function_event(c: &Client, up: &Upgraded, x: &RequestCtx, input: &Input<'_>) -> Vec<u8> {
    let mut headers = Vec::new();
    let mut query = Vec::new();
    if let Some((buf, head)) = input.handshake {
        for h in &head.headers {
            headers.push((
                String::from_utf8_lossy(h.name.get(buf)).into_owned(),
                String::from_utf8_lossy(h.value.get(buf)).into_owned(),
            ));
        }
        if let Some(q) = head.query {
            query.extend(query_pairs(&String::from_utf8_lossy(q.get(buf))));
        }
    }
    let message_id = x.request_id.as_str();
    event::to_json(&WsEvent {
        event_type: input.event_type,
        route_key: input.route_key,
        connection_id: up.id_str(),
        message_id: (input.event_type == EventType::Message).then_some(message_id),
        request_id: x.request_id.as_str(),
        api_id: &up.api_name,
        stage: &up.stage_name,
        domain_name: &up.domain,
        connected_at: up.connected_at,
        request_time_epoch: x.epoch_ms,
        source_ip: std::str::from_utf8(c.info.ip_text()).unwrap_or(""),
        user_agent: &up.user_agent,
        headers: &headers,
        query: &query,
        body: input.body,
        disconnect: input.disconnect,
        authorizer: up.authorizer.as_deref(),
    })
}
