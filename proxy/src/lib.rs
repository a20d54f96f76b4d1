//! turnpike-proxy: the data plane.
//!
//! - [`access_log`]: access log I/O, per-worker buffers to one writer thread per destination;
//! - [`server`]: starts one [`worker`] per core, handles signals, drains on SIGTERM;
//! - [`worker`]: a core's runtime, listeners, pools and connection registry;
//! - [`conn`]: the client connection driver (wait, read a head, hand it on, repeat);
//! - [`exchange`]: one request's pipeline: route to its [`plan`], policies, integration;
//! - [`respond`]: every answer the gateway writes, and the keep-alive decision;
//! - [`plan`]: route plans, compiled per api, stage and route;
//! - [`error`]: the data plane's one error type;
//! - [`access_log`]: access log writers fed by per-core buffers;
//! - [`control`]: the data plane as the admin sees it (compile, publish);
//! - [`upstream`]: the `http_proxy` integration and its per-core pools;
//! - [`pump`]: body streaming in both directions;
//! - [`h1`]: the HTTP/1.1 codec (no I/O; in turnpike-core);
//! - [`snapshot`]: compiled configs and their lock-free publication;
//! - [`websocket`]: WebSocket APIs: handshake, `$connect`, sessions, `@connections`;
//! - [`rt`]: the runtime seam (monoio stays behind it).

pub mod access_log;
pub mod auth;
pub mod body;
pub mod cache;
pub mod cluster;
pub mod conn;
pub mod control;
pub mod error;
pub mod event;
pub mod exchange;
pub mod function;
pub mod mapping;
/// The HTTP/1.1 codec lives in turnpike-core (the admin server parses with it too).
pub use turnpike_core::h1;
pub mod plan;
pub mod pump;
pub mod respond;
pub mod rt;
pub mod server;
pub mod snapshot;
pub mod stream;
pub mod tls;
pub mod traffic;
pub mod transform;
pub mod upstream;
pub mod validate;
pub mod watch;
pub mod websocket;
pub mod worker;
