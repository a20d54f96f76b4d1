//! WebSocket APIs (`protocol: websocket`): the handshake and `$connect` ([`accept`]), the
//! connection's life after the upgrade ([`session`]), the integrations an event calls
//! ([`integration`]), each event's access log line ([`log`]), and the worker's registry of
//! its connections ([`registry`]) that the `@connections` API reaches.
//!
//! Throttling ([`admit`]): `$connect` and every routed message take a token from the route's
//! buckets (the account-level throttle, the route's `route_settings` throttle or the stage's
//! default), compiled into the route's plan as for HTTP routes; `$disconnect` is never
//! throttled.
//!
//! The connection driver hands a WebSocket API's request here from [`crate::exchange`]
//! (a hook after routing); when the upgrade is accepted, the request's state goes back to the
//! worker's pool and [`crate::conn`] runs [`session::run`] with what [`Upgraded`] carries: an
//! idle WebSocket holds no read buffer, no snapshot, only its socket, its task and this
//! state. Each message takes the newest snapshot, so a reload applies to open connections.
//!
//! Hot path: no locks, no blocking calls, no logging above debug.

pub mod accept;
pub mod integration;
pub mod log;
pub mod manage;
pub mod registry;
pub mod session;

use std::{cell::Cell, sync::Arc, sync::OnceLock};

use turnpike_core::{
    usage::Refusal,
    websocket::id::{ConnectionId, ID_LEN},
};

pub use accept::accept;

use crate::{exchange::RequestCtx, plan::RoutePlan, worker::Worker};

/// What an accepted upgrade carries into the WebSocket session.
pub struct Upgraded {
    pub id: ConnectionId,
    /// `id`, encoded.
    pub id_text: [u8; ID_LEN],
    /// The API and stage, by name: indexes may change with a reload.
    pub api_name: Arc<str>,
    pub stage_name: Arc<str>,
    /// The Host the client connected to (`requestContext.domainName`).
    pub domain: Box<str>,
    pub user_agent: Box<str>,
    /// Milliseconds since the epoch.
    pub connected_at: u64,
    /// The `$connect` authorizer's context, given to every event as AWS does.
    pub authorizer: Option<Box<serde_json::Value>>,
}

impl Upgraded {
    pub fn id_str(&self) -> &str {
        std::str::from_utf8(&self.id_text).unwrap_or("")
    }
}

/// The process's start as connection ids see it (taken when the first id is made or
/// checked), milliseconds since the epoch: the part of ids that keeps them unique across
/// restarts, and tells an id of an earlier process (gone: 410) from one of this one.
fn node_start_ms() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

thread_local! {
    /// This worker's count of WebSocket connections (each worker is one thread).
    static SERIAL: Cell<u64> = const { Cell::new(0) };
}

/// A new connection id on worker `worker`.
pub fn next_id(worker: usize) -> ConnectionId {
    let serial = SERIAL.with(|s| {
        let n = s.get() + 1;
        s.set(n);
        n
    });
    ConnectionId::new(node_start_ms(), worker as u8, serial)
}

/// Whether `id` names a connection of this process (else it is gone: 410).
pub fn is_ours(id: &ConnectionId) -> bool {
    id.node_start == ConnectionId::new(node_start_ms(), 0, 0).node_start
}

/// Runs a WebSocket route's traffic-control steps for one event (`$connect` or a message),
/// on the newest key table. WebSocket routes take no API key, so the steps are throttles:
/// a refusal is [`turnpike_core::usage::RefusalKind::Throttled`]. Call only when
/// `plan.steps` is not empty.
pub fn admit(worker: &Worker, x: &RequestCtx, plan: &RoutePlan) -> Result<(), Refusal> {
    crate::exchange::admit_with_key(worker, x, plan, None)
}
