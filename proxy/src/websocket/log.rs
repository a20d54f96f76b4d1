//! Access log lines of WebSocket events, in the stage's access log (`access_log` of the
//! stage, the same settings and writer as HTTP requests): one per `$connect` (accepted, or
//! refused with its status), one per message, one per `$disconnect`, with AWS's WebSocket
//! `$context` variables (`eventType`, `connectionId`, `messageId`, `connectedAt`, ...; AWS
//! "Configure logging for WebSocket APIs in API Gateway").
//!
//! A stage without an access log pays one branch per event. Lines go to the worker's
//! non-blocking [`crate::access_log::LogBuffer`]; nothing here blocks, locks or logs.

use turnpike_core::{
    context::{AuthorizerRef, AuthorizerValues, RequestContext, WebsocketContext},
    websocket::event::EventType,
};

use super::Upgraded;
use crate::{conn::Client, exchange::RequestCtx, plan::RoutePlan, worker::Worker};

/// What one event's line says beyond what its [`RequestCtx`] carries.
pub struct Line<'a> {
    pub event_type: EventType,
    /// `$context.routeKey`: `$connect`, `$disconnect`, the message's route key, or `-` for a
    /// message no route takes.
    pub route_key: &'a str,
    /// The connection, once it has an id (a handshake refused before that has none).
    pub up: Option<&'a Upgraded>,
    /// `$context.status`: for `$connect`, the refusal's status, or 200 for an accepted
    /// connection (AWS logs the `$connect` route's success, not the 101 on the wire); for a
    /// message, the integration's status or the gateway's error (403 no route, 429
    /// throttled, 5xx a failed integration); for `$disconnect`, the integration's status (200
    /// without a `$disconnect` route).
    pub status: u16,
    /// `$context.error.message`: the gateway's own error, if it answered one.
    pub error: Option<&'a str>,
    /// `$disconnect`: the close code and reason.
    pub disconnect: Option<(u16, &'a str)>,
}

/// Writes `line` to `plan`'s stage access log, if the stage has one.
#[inline]
pub fn write(worker: &Worker, plan: &RoutePlan, c: &Client, x: &RequestCtx, line: Line<'_>) {
    if let Some(log) = &plan.access_log {
        write_line(worker, log, plan, c, x, &line);
    }
}

fn write_line(
    worker: &Worker,
    log: &crate::exchange::StageLog,
    plan: &RoutePlan,
    c: &Client,
    x: &RequestCtx,
    line: &Line<'_>,
) {
    let up = line.up;
    let from_connect = up.and_then(|u| u.authorizer.as_deref()).map(JsonAuthorizer);
    let authorizer = match (&x.authorized, &from_connect) {
        (Some(a), _) => Some(AuthorizerRef(a)),
        (None, Some(j)) => Some(AuthorizerRef(j as &dyn AuthorizerValues)),
        (None, None) => None,
    };
    let principal = match (&x.authorized, &from_connect) {
        (Some(a), _) => a.principal_id(),
        (None, Some(j)) => j.principal_id(),
        (None, None) => None,
    };
    let e = x.error;
    let ctx = RequestContext {
        request_id: x.request_id.as_str(),
        source_ip: Some(c.info.ip),
        user_agent: up.map(|u| &*u.user_agent).filter(|ua| !ua.is_empty()),
        request_time_epoch_ms: x.epoch_ms,
        route_key: line.route_key,
        stage: &plan.stage_name,
        api_id: &plan.api_name,
        domain_name: up.map_or("", |u| &*u.domain),
        status: line.status,
        response_latency_ms: x.started.elapsed().as_millis() as u64,
        integration_latency_ms: x.integration_micros.map(|m| m / 1000),
        integration_status: x.integration_status,
        integration_error: e.filter(|e| e.is_integration_failure()).map(|e| e.reason),
        error_message: line.error,
        error_response_type: e.map(|e| e.response_type().name()),
        authorizer,
        authorizer_principal_id: principal,
        websocket: Some(WebsocketContext {
            event_type: line.event_type.as_str(),
            connection_id: up.map_or("", |u| u.id_str()),
            message_id: (line.event_type == EventType::Message).then(|| x.request_id.as_str()),
            connected_at_ms: up.map_or(0, |u| u.connected_at),
            disconnect_status_code: line.disconnect.map(|(code, _)| code),
            disconnect_reason: line.disconnect.map(|(_, why)| why),
        }),
        ..RequestContext::default()
    };
    worker.log_line(log, |out| log.format.render_line(&ctx, out));
}

/// The `$connect` authorizer's answer as the connection keeps it (`requestContext.authorizer`
/// of its events): a request authorizer's `principalId` and context values at the top, a
/// JWT's claims under `jwt.claims`.
struct JsonAuthorizer<'a>(&'a serde_json::Value);

impl JsonAuthorizer<'_> {
    /// `$context.authorizer.principalId`: a request authorizer's, else a JWT's `sub`.
    fn principal_id(&self) -> Option<&str> {
        self.0
            .get("principalId")
            .and_then(serde_json::Value::as_str)
            .or_else(|| self.claim("sub"))
    }
}

impl AuthorizerValues for JsonAuthorizer<'_> {
    fn claim(&self, name: &str) -> Option<&str> {
        self.0.get("jwt")?.get("claims")?.get(name)?.as_str()
    }

    fn property(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.as_str()
    }
}
