//! Cluster-wide limits without an external store: the counter model the gossip channel
//! carries, sans-io.
//!
//! Each node keeps, for every cluster-scoped throttle or quota, one G-counter: a word per
//! node (a cumulative count for a rate, `window << 32 | count` for a quota). The node's own
//! word is moved by its workers on [`SharedCounter`] atomics; the gossip thread sends the
//! words that moved every `sync_interval` and merges what peers send into the peers' sum the
//! workers read. A node admits while its local view of the cluster total is under the
//! limit, so only the sync delay can overshoot.
//!
//! - [`cell`]: the hot path: [`SharedCounter`], the cumulative token bucket over summed
//!   counters ([`ClusterRate`]) and the quota check.
//! - [`book`]: the G-counters ([`CounterBook`]): deltas, merge, window expiry, readings.
//! - [`wire`]: the datagram format, entry encoding and HMAC sealing ([`Secret`]).
//! - [`registry`]: the process's book, where limits register their counters by name.
//!
//! Nothing here does I/O or reads a clock; the proxy's gossip thread does both.

pub mod book;
pub mod cell;
pub mod registry;
#[cfg(test)]
mod sim;
pub mod wire;

use std::hash::Hasher;

pub use book::{CounterBook, CounterId, CounterKind, CounterReading, NodeKey};
pub use cell::{ClusterBucket, ClusterRate, SharedCounter};
pub use wire::{Entry, Kind, Secret, WireError};

/// Scope of a throttle or quota: this node's traffic alone (the default) or the whole
/// cluster's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Node,
    Cluster,
}

impl Scope {
    /// Whether this is the default (for `skip_serializing_if`).
    pub fn is_node(&self) -> bool {
        *self == Scope::Node
    }
}

/// A stable 64-bit number for `name`, the same on every node and across restarts (a fixed-key
/// SipHash: these numbers only need to be distinct, not secret).
pub fn stable_hash(domain: &str, name: &str) -> u64 {
    let mut h =
        siphasher::sip::SipHasher13::new_with_keys(0x7475_726e_7069_6b65, 0x0063_6c75_7374_6572);
    h.write(domain.as_bytes());
    h.write_u8(0xff);
    h.write(name.as_bytes());
    h.finish()
}

/// A node's key from its `node_name`.
pub fn node_key(node_name: &str) -> NodeKey {
    stable_hash("node", node_name)
}

/// A counter's id from its stable name (`stage/<api>/<stage>/<route key>`,
/// `plan/<plan id>/<key id>`).
pub fn counter_id(name: &str) -> CounterId {
    stable_hash("counter", name)
}
