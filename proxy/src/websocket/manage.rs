//! The `@connections` management API: `POST` sends a message to a connection, `GET` reads
//! it (`{connectedAt, identity: {sourceIp, userAgent}, lastActiveAt}`), `DELETE` closes it;
//! 410 Gone for a connection that is not open. Reached on the gateway at
//! `/{stage}/@connections/{id}` (signed with SigV4 for `execute-api`, as AWS requires) and on
//! the admin port at `/v1/connections/{id}` (admin token).
//!
//! A connection lives on the core that accepted it, and its id names that core
//! ([`turnpike_core::websocket::id`]). A command for a connection of this core is applied at
//! once; for another core it is carried there over that core's inbox (a channel the worker
//! drains on its own runtime) and the answer comes back on a one-shot channel. The admin
//! thread, not a worker, does the same from outside.

use std::{
    rc::Rc,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use turnpike_core::{h1::encode, websocket::id::ConnectionId};

use super::registry::{self, Outgoing};
use crate::{
    auth::IamPlan,
    conn::{Client, RequestState},
    exchange::RequestCtx,
    plan::RoutePlan,
    snapshot::SnapshotRef,
    watch::Side,
    worker::Worker,
};

/// The largest message `POST @connections` takes (AWS: 128 KiB, the message limit).
pub const MAX_POST_BYTES: u64 = 128 * 1024;
/// How long a command waits for another core's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the management API asks of a connection.
pub enum Command {
    Post(Vec<u8>),
    Get,
    Delete,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Done,
    Info {
        connected_at: u64,
        last_active: u64,
        source_ip: Box<str>,
        user_agent: Box<str>,
    },
    /// No such open connection.
    Gone,
}

struct Delivery {
    serial: u64,
    command: Command,
    /// Only a connection of this API (the gateway's calls); `None`: any (the admin's).
    api: Option<Arc<str>>,
    reply: flume::Sender<Reply>,
}

/// Each worker's inbox, by worker index (ids carry the index in a byte).
static INBOXES: [OnceLock<flume::Sender<Delivery>>; 256] = [const { OnceLock::new() }; 256];

thread_local! {
    static INBOX_STARTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Opens this worker's inbox (once): called when the worker accepts its first WebSocket, so
/// a worker that never held one costs nothing, and a command for it finds no inbox: 410.
pub fn ensure_inbox(worker: &Rc<Worker>) {
    if INBOX_STARTED.with(|s| s.replace(true)) {
        return;
    }
    let (tx, rx) = flume::unbounded::<Delivery>();
    if INBOXES[worker.id & 0xFF].set(tx).is_err() {
        return;
    }
    crate::rt::spawn(async move {
        while let Ok(d) = rx.recv_async().await {
            let _ = d
                .reply
                .send(apply_local(d.serial, d.command, d.api.as_deref()));
        }
    });
}

/// Applies a command to connection `serial` of this worker, if it is one of API `api` (any
/// API when `None`).
fn apply_local(serial: u64, command: Command, api: Option<&str>) -> Reply {
    let Some(entry) = registry::get(serial).filter(|e| api.is_none_or(|a| *e.api == *a)) else {
        return Reply::Gone;
    };
    match command {
        Command::Post(m) => {
            entry.push(Outgoing::Message(m));
            Reply::Done
        }
        Command::Delete => {
            entry.push(Outgoing::Close);
            Reply::Done
        }
        Command::Get => Reply::Info {
            connected_at: entry.connected_at,
            last_active: entry.last_active.get(),
            source_ip: entry.source_ip.clone(),
            user_agent: entry.user_agent.clone(),
        },
    }
}

/// Where `id` lives: `None` when it is not a connection of this process.
fn parse(id: &[u8]) -> Option<ConnectionId> {
    ConnectionId::parse(id).filter(super::is_ours)
}

/// A command from a worker (`here`: its index) for a connection of API `api`.
pub async fn command(here: usize, id: &[u8], command: Command, api: Arc<str>) -> Reply {
    let Some(id) = parse(id) else {
        return Reply::Gone;
    };
    if usize::from(id.worker) == here {
        return apply_local(id.serial, command, Some(&api));
    }
    let Some(rx) = deliver(id.worker, id.serial, command, Some(api)) else {
        return Reply::Gone;
    };
    match crate::rt::until(Instant::now() + REPLY_TIMEOUT, rx.recv_async()).await {
        Some(Ok(r)) => r,
        _ => Reply::Gone,
    }
}

/// Hands `command` for connection `serial` to worker `worker`'s inbox; the receiver gets its
/// reply. `None`: that worker holds no WebSocket (no inbox) or is gone.
fn deliver(
    worker: u8,
    serial: u64,
    command: Command,
    api: Option<Arc<str>>,
) -> Option<flume::Receiver<Reply>> {
    let inbox = INBOXES[usize::from(worker)].get()?;
    let (tx, rx) = flume::bounded(1);
    let d = Delivery {
        serial,
        command,
        api,
        reply: tx,
    };
    inbox.send(d).ok().map(|()| rx)
}

/// A command from a thread that is no worker (the admin API's, for a connection of any
/// API): blocks until the core that holds the connection answered, at most two seconds.
pub fn command_blocking(id: &[u8], command: Command) -> Reply {
    let Some(id) = parse(id) else {
        return Reply::Gone;
    };
    let Some(rx) = deliver(id.worker, id.serial, command, None) else {
        return Reply::Gone;
    };
    rx.recv_timeout(REPLY_TIMEOUT).unwrap_or(Reply::Gone)
}

/// The HTTP answer to a reply: status and JSON body (empty for 200 POST and 204 DELETE).
pub fn http_answer(reply: &Reply, delete: bool) -> (u16, Vec<u8>) {
    match reply {
        Reply::Done if delete => (204, Vec::new()),
        Reply::Done => (200, Vec::new()),
        Reply::Gone => (410, br#"{"message":"Gone"}"#.to_vec()),
        Reply::Info {
            connected_at,
            last_active,
            source_ip,
            user_agent,
        } => (
            200,
            serde_json::to_vec(&serde_json::json!({
                "connectedAt": iso8601(*connected_at),
                "identity": { "sourceIp": &**source_ip, "userAgent": &**user_agent },
                "lastActiveAt": iso8601(*last_active),
            }))
            .unwrap_or_default(),
        ),
    }
}

/// `2026-11-30T09:05:55.123Z` for milliseconds since the epoch (AWS's timestamps).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Serves `METHOD /{stage}/@connections/{id}` on the gateway: SigV4 (service `execute-api`,
/// the gateway's IAM credentials), then the command. Always closes the exchange's
/// keep-alive question with `keep` as HTTP allows.
pub async fn serve_http(
    worker: &Rc<Worker>,
    snap: &SnapshotRef,
    c: &mut Client,
    st: &mut RequestState,
    plan: &RoutePlan,
    id: std::ops::Range<usize>,
) -> bool {
    let x = RequestCtx::new(worker);
    let method = st.head.method(&st.rbuf).to_vec();
    let path = st.head.path.start as usize..st.head.path.end as usize;
    let body = match crate::body::read_whole(worker, c, st, MAX_POST_BYTES).await {
        Ok(b) => b,
        Err(r) => {
            let m = r.message.as_deref().unwrap_or(r.error.message()).to_owned();
            return answer(worker, c, &x, r.error.status(), &message(&m), false).await;
        }
    };
    let iam = IamPlan {
        credentials: Arc::from(snap.config.auth.iam.clone()),
        region: snap.config.auth.region.as_str().into(),
    };
    // The ARN's path is the one below the stage: `@connections/{id}` (AWS's
    // `{api}/{stage}/POST/@connections/{id}`).
    let below_start = id
        .start
        .saturating_sub(b"/@connections/".len())
        .max(path.start);
    let below = st.rbuf[below_start..path.end].to_vec();
    let body_bytes = body.clone().map(|r| &st.rbuf[r]);
    if let Err(r) = crate::auth::iam::check_iam(worker, st, &x, plan, &iam, &below, body_bytes) {
        let m = r.message.as_deref().unwrap_or(r.error.message()).to_owned();
        return answer(worker, c, &x, r.error.status(), &message(&m), false).await;
    }
    let id_bytes = st.rbuf[id].to_vec();
    let (cmd, delete) = match &method[..] {
        b"POST" => {
            let data = body.map(|r| st.rbuf[r].to_vec()).unwrap_or_default();
            (Command::Post(data), false)
        }
        b"GET" => (Command::Get, false),
        b"DELETE" => (Command::Delete, true),
        _ => {
            return answer(worker, c, &x, 405, &message("Method Not Allowed"), false).await;
        }
    };
    let reply = command(worker.id, &id_bytes, cmd, plan.api_name.clone()).await;
    let (status, body) = http_answer(&reply, delete);
    let keep = st.head.keep_alive && !worker.draining();
    answer(worker, c, &x, status, &body, keep).await
}

fn message(m: &str) -> Vec<u8> {
    let mut out = b"{\"message\":".to_vec();
    turnpike_core::context::escape::json_string(m, &mut out);
    out.push(b'}');
    out
}

async fn answer(
    worker: &Worker,
    c: &mut Client,
    x: &RequestCtx,
    status: u16,
    body: &[u8],
    keep: bool,
) -> bool {
    let mut out = worker.bufs.take();
    encode::status_line(&mut out, status, encode::reason(status).as_bytes());
    encode::header(&mut out, b"Date", &worker.date());
    if !body.is_empty() {
        encode::header(&mut out, b"Content-Type", b"application/json");
    }
    if status != 204 {
        encode::content_length(&mut out, body.len() as u64);
    }
    encode::header(&mut out, b"apigw-requestid", x.request_id.as_bytes());
    if !keep {
        encode::header(&mut out, b"Connection", b"close");
    }
    out.extend_from_slice(encode::CRLF);
    out.extend_from_slice(body);
    let armed = c.watch.arm(Duration::from_secs(10), c.fd, Side::Both);
    let (res, out) = c.stream.write_all(out).await;
    drop(armed);
    worker.bufs.give(out);
    keep && res.is_ok() && !c.watch.fired()
}
