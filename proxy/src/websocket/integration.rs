//! The integrations a WebSocket event calls, each returning an [`Answer`]: the status
//! (`$connect` refuses the upgrade on a non-2xx) and the body a two-way route sends back.
//!
//! - `mock`: its status and body;
//! - `function`: AWS's WebSocket event ([`turnpike_core::websocket::event`]), the function's
//!   `{statusCode, body}` back;
//! - `http_proxy`: the message POSTed to the integration's URI, with the connection id in a
//!   `connectionId` header and the route key in `routeKey` (AWS maps them with
//!   `integration.request.header.connectionId: context.connectionId`); the backend's status
//!   and body back.

use turnpike_core::{
    auth::request_authorizer::query_pairs,
    h1::{encode, request::RequestHead},
    websocket::event::{self, EventType, WsEvent},
};

use super::Upgraded;
use crate::{
    conn::Client,
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    plan::{PlanIntegration, RoutePlan},
    upstream::call,
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
        }),
        PlanIntegration::Function(f) => {
            let payload = function_event(c, up, x, &input);
            let answer = crate::function::invoke::call(worker, c, &f.function, payload).await?;
            let (status, body) = event::parse_answer(&answer).map_err(|why| {
                tracing::warn!(function = %f.function.name, why, "the function's answer to a WebSocket event is malformed");
                GatewayError::upstream(
                    ErrorKind::IntegrationFailure,
                    "the function's response is malformed",
                )
            })?;
            Ok(Answer { status, body })
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
            if let Some(q) = &target.query {
                request.push(b'?');
                request.extend_from_slice(q);
            }
            request.extend_from_slice(b" HTTP/1.1\r\n");
            encode::header(&mut request, b"Host", &target.host_header);
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
            request.extend_from_slice(body);
            let called = call::call(worker, c, target, request, p.timeout, MAX_ANSWER).await?;
            Ok(Answer {
                status: called.status,
                body: (!called.body.is_empty()).then_some(called.body),
            })
        }
        PlanIntegration::Misconfigured(_) => Err(GatewayError::client(
            ErrorKind::ApiConfiguration,
            "the route's integration cannot serve this stage",
        )),
        PlanIntegration::NoRoute => Err(GatewayError::client(ErrorKind::NotFound, "no route")),
    }
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
