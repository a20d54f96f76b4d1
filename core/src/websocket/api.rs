//! A WebSocket API as configured (`protocol: websocket`) and as checked: its route keys, the
//! route selection expression, which routes are two-way, and the connection settings.

use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::{FrameLimits, route::SelectionExpression};

/// `websocket:` of an API: AWS's WebSocket quotas, made settable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketFile {
    /// A connection with no message either way for this long is closed (AWS: 10 minutes).
    #[serde(default = "default_idle_ms")]
    pub idle_timeout_ms: u64,
    /// A connection is closed after this long whatever it does (AWS: 2 hours).
    #[serde(default = "default_duration_ms")]
    pub max_duration_ms: u64,
    /// Largest message, fragments together (AWS: 128 KiB); larger closes with 1009.
    #[serde(default = "default_message_bytes")]
    pub max_message_bytes: u64,
    /// Largest frame (AWS: 32 KiB); larger closes with 1009.
    #[serde(default = "default_frame_bytes")]
    pub max_frame_bytes: u64,
}

pub const DEFAULT_IDLE_MS: u64 = 600_000;
pub const DEFAULT_DURATION_MS: u64 = 7_200_000;

fn default_idle_ms() -> u64 {
    DEFAULT_IDLE_MS
}
fn default_duration_ms() -> u64 {
    DEFAULT_DURATION_MS
}
fn default_message_bytes() -> u64 {
    FrameLimits::AWS.max_message_bytes as u64
}
fn default_frame_bytes() -> u64 {
    FrameLimits::AWS.max_frame_bytes as u64
}

impl Default for WebsocketFile {
    fn default() -> WebsocketFile {
        WebsocketFile {
            idle_timeout_ms: DEFAULT_IDLE_MS,
            max_duration_ms: DEFAULT_DURATION_MS,
            max_message_bytes: default_message_bytes(),
            max_frame_bytes: default_frame_bytes(),
        }
    }
}

/// Connection settings, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebsocketSettings {
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub limits: FrameLimits,
}

/// A checked WebSocket API: route indexes (into `Api::routes`) by role and key.
#[derive(Debug, Clone)]
pub struct WebsocketApi {
    pub selection: SelectionExpression,
    pub connect: Option<u32>,
    pub disconnect: Option<u32>,
    pub default: Option<u32>,
    /// Custom route keys, matched exactly (case-sensitive) against the selected value.
    pub keys: FxHashMap<Box<str>, u32>,
    /// Per route (same index as `Api::routes`): the integration's answer goes back to the
    /// client.
    pub two_way: Vec<bool>,
    pub settings: WebsocketSettings,
}

impl WebsocketApi {
    /// The route a message goes to: the selected value's route, else `$default`; `None`: no
    /// route (the client gets AWS's "Forbidden" error frame).
    pub fn route_for(&self, message: &[u8]) -> Option<u32> {
        self.selection
            .select(message)
            .and_then(|k| self.keys.get(k.as_str()).copied())
            .or(self.default)
    }
}
