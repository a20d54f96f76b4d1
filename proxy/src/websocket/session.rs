//! A WebSocket connection after the upgrade: wait (holding no buffer) for the client or for
//! a message the `@connections` API queued, decode frames, route each message and call its
//! integration, answer pings, and close as RFC 6455 and AWS do.
//!
//! Closing: a client's close frame is echoed with its code; a protocol violation is closed
//! with its code (1002, 1007, 1009); the idle timeout, the maximum duration and a drain close
//! with 1001 "Going away"; `DELETE @connections/{id}` with 1000; a dropped TCP connection
//! gets no frame. `$disconnect` is then called, best-effort, with the code in
//! `requestContext.disconnectStatusCode` (1006 for a dropped connection, 1005 for a close
//! frame without a code, as AWS reports them).
//!
//! Only data messages count as activity for the idle timeout (either way); pings do not, as
//! on AWS.
//!
//! Each message takes a token from its route's throttles before its integration is called; a
//! throttled one gets AWS's error frame (`{"message": "Too Many Requests", ...}`) and the
//! connection stays open. Each message and the disconnection are a line in the stage's
//! access log ([`super::log`]).

use std::{future::Future, pin::pin, rc::Rc, task::Poll, time::Duration};

use turnpike_core::{
    usage::RefusalKind,
    websocket::{
        CloseCode, Decoder, Event, Opcode, Violation, api::WebsocketApi, encode, event::EventType,
    },
};

use super::{
    Upgraded, integration, log,
    registry::{self, Entry, Outgoing},
};
use crate::{
    conn::Client,
    error::GatewayError,
    exchange::RequestCtx,
    snapshot::SnapshotRef,
    stream::Stream,
    watch::Side,
    worker::{IO_BUF, Worker},
};

/// How long writing one frame may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session ends.
enum End {
    /// The client sent a close frame (its code, if any).
    Peer(Option<u16>),
    Violation(Violation),
    /// The TCP connection ended without a close frame, or failed.
    Dropped,
    /// Idle timeout or maximum duration.
    Timeout,
    Drain,
    /// `DELETE @connections/{id}`.
    Deleted,
    /// The API or stage is no longer configured.
    Gone,
}

enum Woke {
    Readable(std::io::Result<()>),
    Outbox,
}

/// Waits until the client sends something or a message is queued for it.
async fn wait(stream: &mut Stream, entry: &Entry) -> Woke {
    let mut readable = pin!(stream.readable());
    std::future::poll_fn(|cx| {
        if entry.has_outgoing() {
            return Poll::Ready(Woke::Outbox);
        }
        entry.register(cx.waker());
        readable.as_mut().poll(cx).map(Woke::Readable)
    })
    .await
}

/// The API (by name) and stage of the connection in the newest snapshot.
fn locate(worker: &Worker, up: &Upgraded) -> Option<(SnapshotRef, usize, usize)> {
    let snap = worker.snapshot();
    let a = snap
        .config
        .apis
        .iter()
        .position(|a| *a.name == *up.api_name && a.websocket.is_some())?;
    let s = snap.config.apis[a]
        .stages
        .iter()
        .position(|s| *s.name == *up.stage_name)?;
    Some((snap, a, s))
}

fn api_of(snap: &SnapshotRef, a: usize) -> &WebsocketApi {
    match &snap.config.apis[a].websocket {
        Some(ws) => ws,
        None => unreachable!("located APIs are WebSocket APIs"),
    }
}

/// Runs the session of an accepted connection until it closes, then calls `$disconnect`.
pub async fn run(worker: &Rc<Worker>, c: &mut Client, up: Box<Upgraded>) {
    let entry = match registry::get(up.id.serial) {
        Some(e) => e,
        None => return,
    };
    let end = Box::pin(serve(worker, c, &up, &entry)).await;
    registry::remove(up.id.serial);
    let (close, status, reason): (Option<(CloseCode, &str)>, u16, &str) = match &end {
        End::Peer(code) => (None, code.unwrap_or(1005), "Client closed"),
        End::Violation(v) => (Some((v.code, v.reason)), v.code.as_u16(), v.reason),
        End::Dropped => (None, 1006, "Connection dropped"),
        End::Timeout => (
            Some((CloseCode::GoingAway, "Going away")),
            1001,
            "Going away",
        ),
        End::Drain | End::Gone => (
            Some((CloseCode::GoingAway, "Going away")),
            1001,
            "Going away",
        ),
        End::Deleted => (Some((CloseCode::Normal, "")), 1000, "Connection deleted"),
    };
    if let End::Peer(code) = end {
        // Echo the client's close (RFC 6455 section 5.5.1), with its code when it gave one.
        let mut out = Vec::with_capacity(4);
        match code {
            Some(code) => encode::frame(&mut out, Opcode::Close, &code.to_be_bytes()),
            None => encode::frame(&mut out, Opcode::Close, b""),
        }
        let _ = Box::pin(write(c, out)).await;
    } else if let Some((code, why)) = close {
        let mut out = Vec::with_capacity(32);
        encode::close(&mut out, code, why);
        if Box::pin(write(c, out)).await {
            // Let the client's close frame (or anything in flight) arrive before the socket
            // closes, so it sees ours rather than a reset.
            c.linger = true;
        }
    }
    Box::pin(disconnect(worker, c, &up, status, reason)).await;
}

/// Calls the `$disconnect` route, if any; its answer and failure are ignored (AWS: best
/// effort). Either way the disconnection is a `DISCONNECT` line in the stage's access log.
async fn disconnect(worker: &Worker, c: &Client, up: &Upgraded, status: u16, reason: &str) {
    let Some((snap, a, s)) = locate(worker, up) else {
        return;
    };
    let mut x = RequestCtx::new(worker);
    let Some(r) = api_of(&snap, a).disconnect else {
        let line = log::Line {
            event_type: EventType::Disconnect,
            route_key: "$disconnect",
            up: Some(up),
            status: 200,
            error: None,
            disconnect: Some((status, reason)),
        };
        log::write(worker, snap.plan(a, s, None), c, &x, line);
        return;
    };
    let plan = snap.plan(a, s, Some(r as usize));
    let input = integration::Input {
        event_type: EventType::Disconnect,
        route_key: "$disconnect",
        body: None,
        disconnect: Some((status, reason)),
        handshake: None,
    };
    let res = integration::call_timed(worker, c, plan, up, &mut x, input).await;
    let (answered, error) = match res {
        Ok(a) => (a.status, None),
        Err(e) => {
            tracing::debug!(reason = e.reason, "$disconnect failed");
            (e.status(), Some(e.message()))
        }
    };
    plan.counters[worker.id].record(answered, x.started.elapsed().as_micros() as u64, None);
    let line = log::Line {
        event_type: EventType::Disconnect,
        route_key: "$disconnect",
        up: Some(up),
        status: answered,
        error,
        disconnect: Some((status, reason)),
    };
    log::write(worker, plan, c, &x, line);
}

/// Writes `out` within the write timeout; `false` when that failed.
async fn write(c: &mut Client, out: Vec<u8>) -> bool {
    let armed = c.watch.arm(WRITE_TIMEOUT, c.fd, Side::Both);
    let (res, _) = c.stream.write_all(out).await;
    drop(armed);
    res.is_ok() && !c.watch.fired()
}

/// Appends a message frame: text when `payload` is UTF-8, else binary.
fn message_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let op = if std::str::from_utf8(payload).is_ok() {
        Opcode::Text
    } else {
        Opcode::Binary
    };
    encode::frame(out, op, payload);
}

/// The session's loop: returns why it ended.
async fn serve(worker: &Rc<Worker>, c: &mut Client, up: &Upgraded, entry: &Entry) -> End {
    let mut decoder = Decoder::new();
    // Bytes of a frame not complete yet (empty between frames: no buffer held).
    let mut pending: Vec<u8> = Vec::new();
    let settings = match locate(worker, up) {
        Some((snap, a, _)) => api_of(&snap, a).settings,
        None => return End::Gone,
    };
    let end_by = c.watch.deadline_in(settings.max_duration);
    let mut idle_until = c.watch.deadline_in(settings.idle_timeout);
    loop {
        while let Some(o) = entry.pop() {
            match o {
                Outgoing::Message(m) => {
                    let mut out = Vec::with_capacity(m.len() + 10);
                    message_frame(&mut out, &m);
                    if !Box::pin(write(c, out)).await {
                        return End::Dropped;
                    }
                    entry.last_active.set(worker.epoch_ms());
                    idle_until = c.watch.deadline_in(settings.idle_timeout);
                }
                Outgoing::Close => return End::Deleted,
            }
        }
        if worker.draining() {
            return End::Drain;
        }
        if !c.stream.has_buffered() {
            c.watch.set_idle(pending.is_empty());
            let armed = c.watch.arm_at(idle_until.min(end_by), c.fd, Side::Read);
            let woke = wait(&mut c.stream, entry).await;
            drop(armed);
            c.watch.set_idle(false);
            if c.watch.fired() {
                return End::Timeout;
            }
            match woke {
                Woke::Outbox => continue,
                Woke::Readable(Err(_)) => return End::Dropped,
                Woke::Readable(Ok(())) => {}
            }
            if worker.draining() {
                return End::Drain;
            }
        }
        let Some((snap, a, s)) = locate(worker, up) else {
            return End::Gone;
        };
        let limits = api_of(&snap, a).settings.limits;
        let mut buf = if pending.is_empty() {
            worker.bufs.take()
        } else {
            std::mem::take(&mut pending)
        };
        crate::rt::make_room(&mut buf, IO_BUF.max(limits.max_wire_frame() + 1));
        match c.stream.read_now(&mut buf) {
            Ok(0) => {
                worker.bufs.give(buf);
                return End::Dropped;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                worker.bufs.give(buf);
                return End::Dropped;
            }
        }
        let mut at = 0;
        let mut ended = None;
        while ended.is_none() {
            match decoder.decode(&buf[at..], &limits) {
                Ok(None) => break,
                Ok(Some((n, event))) => {
                    at += n;
                    let Some(event) = event else { continue };
                    match Box::pin(on_event(worker, c, up, entry, &snap, a, s, event)).await {
                        // A data message: the idle timeout starts again.
                        Ok(true) => idle_until = c.watch.deadline_in(settings.idle_timeout),
                        Ok(false) => {}
                        Err(end) => ended = Some(end),
                    }
                }
                Err(v) => ended = Some(End::Violation(v)),
            }
        }
        drop(snap);
        if at >= buf.len() || ended.is_some() {
            buf.clear();
            worker.bufs.give(buf);
        } else {
            buf.drain(..at);
            // Keep only what the frame needs, not the pool's large buffer.
            if buf.capacity() > 2 * buf.len() + 4096 {
                let small = buf.to_vec();
                buf.clear();
                worker.bufs.give(buf);
                pending = small;
            } else {
                pending = buf;
            }
        }
        if let Some(end) = ended {
            return end;
        }
    }
}

/// Handles one event: `Ok(true)` for a data message (activity), `Ok(false)` for a control
/// frame, `Err` when the session ends.
#[allow(clippy::too_many_arguments)]
async fn on_event(
    worker: &Rc<Worker>,
    c: &mut Client,
    up: &Upgraded,
    entry: &Entry,
    snap: &SnapshotRef,
    a: usize,
    s: usize,
    event: Event,
) -> Result<bool, End> {
    let (payload, binary) = match event {
        Event::Ping(p) => {
            let mut out = Vec::with_capacity(p.len() + 2);
            encode::frame(&mut out, Opcode::Pong, &p);
            return if write(c, out).await {
                Ok(false)
            } else {
                Err(End::Dropped)
            };
        }
        Event::Pong(_) => return Ok(false),
        Event::Close { code, .. } => return Err(End::Peer(code)),
        Event::Text(t) => (t.into_bytes(), false),
        Event::Binary(b) => (b, true),
    };
    entry.last_active.set(worker.epoch_ms());
    let ws = api_of(snap, a);
    let mut x = RequestCtx::new(worker);
    let mut out = Vec::new();
    match ws.route_for(&payload) {
        None => {
            error_frame(&mut out, "Forbidden", up, &x);
            let line = log::Line {
                event_type: EventType::Message,
                route_key: "-",
                up: Some(up),
                status: 403,
                error: Some("Forbidden"),
                disconnect: None,
            };
            log::write(worker, snap.plan(a, s, None), c, &x, line);
        }
        Some(r) => {
            let plan = snap.plan(a, s, Some(r as usize));
            let key = &*plan.route_key;
            // The route's throttles: a throttled message gets AWS's error frame and the
            // connection stays open.
            let refused = if plan.steps.is_empty() {
                None
            } else {
                super::admit(worker, &x, plan).err()
            };
            let (status, error) = if let Some(refusal) = refused {
                if refusal.kind == RefusalKind::Throttled {
                    plan.counters[worker.id].count_throttled();
                }
                let e = GatewayError::from(refusal.kind);
                x.error = Some(e);
                plan.counters[worker.id].record(e.status(), 0, None);
                error_frame(&mut out, e.message(), up, &x);
                (e.status(), Some(e.message()))
            } else {
                let input = integration::Input {
                    event_type: EventType::Message,
                    route_key: key,
                    body: Some((&payload, binary)),
                    disconnect: None,
                    handshake: None,
                };
                let res = integration::call_timed(worker, c, plan, up, &mut x, input).await;
                let micros = x.started.elapsed().as_micros() as u64;
                match res {
                    Ok(answer) => {
                        plan.counters[worker.id].record(
                            answer.status,
                            micros,
                            x.integration_micros,
                        );
                        if ws.two_way[r as usize]
                            && let Some(body) = answer.body
                        {
                            message_frame(&mut out, &body);
                        }
                        (answer.status, None)
                    }
                    Err(e) => {
                        worker.warn_integration_failure(plan, e, x.request_id.as_str());
                        plan.counters[worker.id].record(e.status(), micros, None);
                        error_frame(&mut out, "Internal server error", up, &x);
                        (e.status(), Some("Internal server error"))
                    }
                }
            };
            let line = log::Line {
                event_type: EventType::Message,
                route_key: key,
                up: Some(up),
                status,
                error,
                disconnect: None,
            };
            log::write(worker, plan, c, &x, line);
        }
    }
    if out.is_empty() {
        return Ok(true);
    }
    entry.last_active.set(worker.epoch_ms());
    if write(c, out).await {
        Ok(true)
    } else {
        Err(End::Dropped)
    }
}

/// AWS's error frame: `{"message": "Forbidden", "connectionId": "...", "requestId": "..."}`.
fn error_frame(out: &mut Vec<u8>, message: &str, up: &Upgraded, x: &RequestCtx) {
    let text = format!(
        "{{\"message\": \"{message}\", \"connectionId\":\"{}\", \"requestId\":\"{}\"}}",
        up.id_str(),
        x.request_id.as_str()
    );
    encode::frame(out, Opcode::Text, text.as_bytes());
}
