//! The opening handshake of a WebSocket API: the request checked (RFC 6455 section 4.2.1),
//! `$connect` run (its authorizer, its throttles, then its integration, as AWS:
//! authorization happens only here), and `101 Switching Protocols` written (with the
//! subprotocol the integration chose, when the client offered it), or the upgrade refused
//! with the status the authorizer, throttle or integration gave.

use std::{rc::Rc, sync::Arc};

use turnpike_core::{
    h1::{encode, head::trim_ows},
    usage::RefusalKind,
    websocket::{api::WebsocketApi, event::EventType, handshake},
};

use super::{Upgraded, integration, log, registry};
use crate::{
    auth::{self, Authorized, PlanAuth},
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    plan::RoutePlan,
    snapshot::SnapshotRef,
    watch::Side,
    worker::Worker,
};

/// How long writing a handshake answer may take.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves a request to a WebSocket API (`plan`: its API and stage, no route). On success the
/// connection carries the upgrade in [`Client::upgrade`] and the driver runs the session;
/// either way the HTTP exchange is over (`false`). Every outcome is one `CONNECT` line in the
/// stage's access log.
pub async fn accept(
    worker: &Rc<Worker>,
    snap: &SnapshotRef,
    c: &mut Client,
    st: &mut RequestState,
    plan: &RoutePlan,
    ws: &Arc<WebsocketApi>,
) -> bool {
    // The management API shares the API's host and stage (AWS).
    let path = st.head.path.get(&st.rbuf);
    if let Some(at) = memchr::memmem::rfind(path, b"/@connections/") {
        let start = st.head.path.start as usize + at + b"/@connections/".len();
        let end = st.head.path.end as usize;
        return super::manage::serve_http(worker, snap, c, st, plan, start..end).await;
    }
    let mut x = RequestCtx::new(worker);
    let accept_key = match handshake::check(&st.rbuf, &st.head) {
        Ok(k) => k,
        Err(e) => {
            // A 426 names the protocol to upgrade to (RFC 9110 section 15.5.22).
            let extra: &[u8] = match e {
                handshake::HandshakeError::Version => {
                    b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                }
                handshake::HandshakeError::NotUpgrade => b"Upgrade: websocket\r\n",
                _ => b"",
            };
            let message = e.message();
            let no = HandshakeRefusal {
                status: e.status(),
                body: message.as_bytes(),
                extra,
                error: Some(message),
            };
            refuse(worker, c, &x, plan, None, no).await;
            return false;
        }
    };
    let buf = &st.rbuf;
    let text = |name: &[u8]| {
        st.head
            .find(buf, name)
            .map(|v| String::from_utf8_lossy(v.get(buf)).into_owned())
            .unwrap_or_default()
    };
    let id = super::next_id(worker.id);
    let mut up = Upgraded {
        id,
        id_text: id.encode(),
        api_name: plan.api_name.clone(),
        stage_name: plan.stage_name.clone(),
        domain: text(b"host").into(),
        user_agent: text(b"user-agent").into(),
        connected_at: x.epoch_ms,
        authorizer: None,
    };
    let mut subprotocol: Option<Box<[u8]>> = None;
    if let Some(r) = ws.connect {
        let cp = snap.plan(plan.api as usize, plan.stage as usize, Some(r as usize));
        if !matches!(cp.auth, PlanAuth::None) {
            let path = st.head.path.start as usize..st.head.path.end as usize;
            match auth::authorize(worker, c, st, &x, cp, &path, &[]).await {
                Ok(who) => {
                    up.authorizer = Some(Box::new(authorizer_json(&who)));
                    x.authorized = Some(who);
                }
                Err(r) => {
                    let message = r.message.as_deref().unwrap_or(r.error.message());
                    let mut extra = Vec::new();
                    if let Some(ch) = r.challenge {
                        encode::header(&mut extra, b"WWW-Authenticate", ch.as_bytes());
                    }
                    x.error = Some(r.error);
                    let no = HandshakeRefusal {
                        status: r.error.status(),
                        body: message.as_bytes(),
                        extra: &extra,
                        error: Some(message),
                    };
                    refuse(worker, c, &x, cp, Some(&up), no).await;
                    return false;
                }
            }
        }
        // The route's throttles (AWS applies route throttling to $connect too).
        if !cp.steps.is_empty()
            && let Err(refusal) = super::admit(worker, &x, cp)
        {
            if refusal.kind == RefusalKind::Throttled {
                cp.counters[worker.id].count_throttled();
            }
            let e = GatewayError::from(refusal.kind);
            x.error = Some(e);
            let mut extra = Vec::new();
            if let Some(ms) = refusal.retry_after_ms {
                let mut secs = Vec::with_capacity(8);
                encode::push_decimal(&mut secs, ms.div_ceil(1000));
                encode::header(&mut extra, b"Retry-After", &secs);
            }
            let no = HandshakeRefusal::of(e, &extra);
            refuse(worker, c, &x, cp, Some(&up), no).await;
            return false;
        }
        let input = integration::Input {
            event_type: EventType::Connect,
            route_key: "$connect",
            body: None,
            disconnect: None,
            handshake: Some((&st.rbuf, &st.head)),
        };
        match integration::call_timed(worker, c, cp, &up, &mut x, input).await {
            Ok(a) if (200..300).contains(&a.status) => {
                if let Some(p) = a.subprotocol {
                    let p = trim_ows(&p);
                    if !handshake::offers_subprotocol(&st.rbuf, &st.head, p) {
                        // A 101 naming a subprotocol the client did not offer is one the client
                        // must fail (RFC 6455 section 4.1): refuse it here, as the
                        // integration's fault, so the client sees why.
                        let e = GatewayError::upstream(
                            ErrorKind::BadGateway,
                            "the $connect integration chose a subprotocol the client did not offer",
                        );
                        worker.warn_integration_failure(cp, e, x.request_id.as_str());
                        x.error = Some(e);
                        let no = HandshakeRefusal::of(e, b"");
                        refuse(worker, c, &x, cp, Some(&up), no).await;
                        return false;
                    }
                    subprotocol = Some(p.into());
                }
            }
            Ok(a) => {
                let body = a.body.unwrap_or_default();
                let no = HandshakeRefusal {
                    status: a.status,
                    body: &body,
                    extra: b"",
                    error: None,
                };
                refuse(worker, c, &x, cp, Some(&up), no).await;
                return false;
            }
            Err(e) => {
                worker.warn_integration_failure(cp, e, x.request_id.as_str());
                let no = HandshakeRefusal::of(e, b"");
                refuse(worker, c, &x, cp, Some(&up), no).await;
                return false;
            }
        }
        cp.counters[worker.id].record(
            101,
            x.started.elapsed().as_micros() as u64,
            x.integration_micros,
        );
    }
    let mut out = worker.bufs.take();
    handshake::write_101_start(&mut out, &accept_key);
    if let Some(p) = &subprotocol {
        encode::header(&mut out, b"Sec-WebSocket-Protocol", p);
    }
    encode::header(&mut out, b"Date", &worker.date());
    encode::header(&mut out, b"apigw-requestid", x.request_id.as_bytes());
    out.extend_from_slice(encode::CRLF);
    let fd = c.fd;
    let armed = c.watch.arm(WRITE_TIMEOUT, fd, Side::Both);
    let (res, out) = c.stream.write_all(out).await;
    drop(armed);
    worker.bufs.give(out);
    let written = res.is_ok() && !c.watch.fired();
    let line = log::Line {
        event_type: EventType::Connect,
        route_key: "$connect",
        up: Some(&up),
        // 499: the client went away before its 101 was written (as HTTP requests count it).
        status: if written { 200 } else { 499 },
        error: None,
        disconnect: None,
    };
    log::write(worker, plan, c, &x, line);
    if !written {
        return false;
    }
    let ip = String::from_utf8_lossy(c.info.ip_text()).into_owned();
    super::manage::ensure_inbox(worker);
    registry::insert(
        id.serial,
        Rc::new(registry::Entry::new(
            plan.api_name.clone(),
            up.connected_at,
            ip.into(),
            up.user_agent.clone(),
        )),
    );
    c.upgrade = Some(Box::new(up));
    false
}

/// `requestContext.authorizer` of the connection's events: a request authorizer's
/// `principalId` and context, a JWT's claims, or the IAM caller.
fn authorizer_json(who: &Authorized) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    match who {
        Authorized::Custom(a) => {
            if let Some(p) = &a.principal_id {
                m.insert("principalId".into(), p.to_string().into());
            }
            for (k, v) in a.context.iter() {
                m.insert(k.to_string(), v.to_string().into());
            }
        }
        Authorized::Jwt(v) => {
            let claims: serde_json::Map<String, serde_json::Value> = v
                .claims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string().into()))
                .collect();
            m.insert("jwt".into(), serde_json::json!({ "claims": claims }));
        }
        Authorized::Iam { principal, .. } => {
            m.insert("principalId".into(), principal.to_string().into());
        }
    }
    serde_json::Value::Object(m)
}

/// A refused handshake's answer.
struct HandshakeRefusal<'a> {
    status: u16,
    /// The message (sent as JSON `{"message": ...}`), or the integration's own body (sent
    /// as is when it is JSON, or when the status is not an error).
    body: &'a [u8],
    /// Header lines to add (`WWW-Authenticate`, `Retry-After`, ...).
    extra: &'a [u8],
    /// `$context.error.message` of the access log line: the gateway's own error.
    error: Option<&'a str>,
}

impl<'a> HandshakeRefusal<'a> {
    /// The refusal of the gateway's own error `e`: its status and message, with `extra`.
    fn of(e: GatewayError, extra: &'a [u8]) -> HandshakeRefusal<'a> {
        HandshakeRefusal {
            status: e.status(),
            body: e.message().as_bytes(),
            extra,
            error: Some(e.message()),
        }
    }
}

/// Refuses the upgrade as `no` says, counts and logs it (`up`: the connection, once it has an
/// id), and closes.
async fn refuse(
    worker: &Worker,
    c: &mut Client,
    x: &RequestCtx,
    plan: &RoutePlan,
    up: Option<&Upgraded>,
    no: HandshakeRefusal<'_>,
) {
    let status = no.status;
    let mut body = Vec::new();
    if no.body.first() == Some(&b'{') || status < 400 {
        body.extend_from_slice(no.body);
    } else {
        body.extend_from_slice(b"{\"message\":");
        turnpike_core::context::escape::json_string(&String::from_utf8_lossy(no.body), &mut body);
        body.push(b'}');
    }
    let mut out = worker.bufs.take();
    encode::status_line(&mut out, status, encode::reason(status).as_bytes());
    encode::header(&mut out, b"Date", &worker.date());
    encode::header(&mut out, b"Content-Type", b"application/json");
    encode::content_length(&mut out, body.len() as u64);
    encode::header(&mut out, b"apigw-requestid", x.request_id.as_bytes());
    out.extend_from_slice(no.extra);
    encode::header(&mut out, b"Connection", b"close");
    out.extend_from_slice(encode::CRLF);
    out.extend_from_slice(&body);
    let armed = c.watch.arm(WRITE_TIMEOUT, c.fd, Side::Both);
    let (_, out) = c.stream.write_all(out).await;
    drop(armed);
    worker.bufs.give(out);
    plan.counters[worker.id].record(
        status,
        x.started.elapsed().as_micros() as u64,
        x.integration_micros,
    );
    let line = log::Line {
        event_type: EventType::Connect,
        route_key: "$connect",
        up,
        status,
        error: no.error,
        disconnect: None,
    };
    log::write(worker, plan, c, x, line);
}
