//! Connection ids: 16 characters, like API Gateway's (`L0SM9cOFvHcCIhw=`: the base64 of 11
//! bytes), unique across the cores of a node and across its restarts, and telling which core
//! holds the connection, so a message for it goes straight to that core.
//!
//! The 11 bytes: the node's start time in milliseconds (low 40 bits: unique for 34 years of
//! restarts, and two processes of one node, as in a binary upgrade, start at different
//! milliseconds), the worker's index, and the worker's counter (40 bits). Encoded in base64's
//! URL-safe alphabet (`-` and `_` for `+` and `/`), so an id is a single path segment in
//! `@connections/{id}` without escaping; the final `=` is kept, as in AWS's ids.

use base64::Engine;

/// Length of an encoded id.
pub const ID_LEN: usize = 16;

/// What an id says about the connection it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    /// The node's start time, milliseconds since the epoch, low 40 bits.
    pub node_start: u64,
    /// The worker (core) that holds the connection.
    pub worker: u8,
    /// Its number among that worker's connections.
    pub serial: u64,
}

const MASK_40: u64 = (1 << 40) - 1;

impl ConnectionId {
    pub fn new(node_start_ms: u64, worker: u8, serial: u64) -> ConnectionId {
        ConnectionId {
            node_start: node_start_ms & MASK_40,
            worker,
            serial: serial & MASK_40,
        }
    }

    /// The 16-character form.
    pub fn encode(&self) -> [u8; ID_LEN] {
        let mut raw = [0u8; 11];
        raw[..5].copy_from_slice(&self.node_start.to_be_bytes()[3..]);
        raw[5] = self.worker;
        raw[6..].copy_from_slice(&self.serial.to_be_bytes()[3..]);
        let mut out = [0u8; ID_LEN];
        let n = base64::engine::general_purpose::URL_SAFE
            .encode_slice(raw, &mut out)
            .unwrap_or(0);
        debug_assert_eq!(n, ID_LEN);
        out
    }

    /// Parses the 16-character form; `None` for anything else.
    pub fn parse(s: &[u8]) -> Option<ConnectionId> {
        if s.len() != ID_LEN {
            return None;
        }
        let mut raw = [0u8; 12];
        let n = base64::engine::general_purpose::URL_SAFE
            .decode_slice(s, &mut raw)
            .ok()?;
        if n != 11 {
            return None;
        }
        let mut a = [0u8; 8];
        a[3..].copy_from_slice(&raw[..5]);
        let node_start = u64::from_be_bytes(a);
        let mut b = [0u8; 8];
        b[3..].copy_from_slice(&raw[6..11]);
        Some(ConnectionId {
            node_start,
            worker: raw[5],
            serial: u64::from_be_bytes(b),
        })
    }
}
