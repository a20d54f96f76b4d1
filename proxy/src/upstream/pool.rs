//! Per-core keep-alive pools of upstream connections, keyed by address and TLS identity
//! ([`PoolKey`]: a TLS connection serves only requests that would have opened it the same way).
//! Bounded per key
//! (`max_idle_per_core`), aged out after `idle_timeout`, checked for a peer close before reuse.
//! Per-core pools multiply origin connections by the worker count, hence the cap.

use std::{cell::RefCell, net::SocketAddr, time::Instant};

use rustc_hash::FxHashMap;
use turnpike_core::config::UpstreamPolicy;

use crate::{rt, stream::Stream};

/// What a pooled connection is interchangeable by: the backend's address and, for TLS, a hash
/// of everything that shaped the handshake (server name, roots, client certificate); 0 for
/// plain TCP. Stable across reloads, so pooled connections survive them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: SocketAddr,
    pub tls: u64,
}

struct Idle {
    stream: Stream,
    since: Instant,
}

#[derive(Default)]
pub struct UpstreamPool {
    idle: RefCell<FxHashMap<PoolKey, Vec<Idle>>>,
}

impl UpstreamPool {
    /// The most recently used live connection for `key`, if any. Stale or peer-closed ones
    /// found on the way are closed.
    #[inline]
    pub fn checkout(&self, key: PoolKey, policy: &UpstreamPolicy) -> Option<Stream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&key)?;
        let now = Instant::now();
        while let Some(c) = list.pop() {
            if now.duration_since(c.since) < policy.idle_timeout && !rt::peer_gone(c.stream.fd()) {
                return Some(c.stream);
            }
        }
        None
    }

    /// Returns a connection whose last exchange completed cleanly. One holding decrypted
    /// bytes nobody asked for (an upstream that sent more than its response) is closed.
    #[inline]
    pub fn checkin(&self, key: PoolKey, mut stream: Stream, policy: &UpstreamPolicy) {
        if stream.has_buffered() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(key).or_default();
        if list.len() < policy.max_idle_per_core {
            list.push(Idle {
                stream,
                since: Instant::now(),
            });
        }
    }

    /// Closes connections idle for longer than the policy allows.
    pub fn expire(&self, now: Instant, policy: &UpstreamPolicy) {
        let mut idle = self.idle.borrow_mut();
        for list in idle.values_mut() {
            list.retain(|c| now.duration_since(c.since) < policy.idle_timeout);
            list.truncate(policy.max_idle_per_core);
        }
        idle.retain(|_, list| !list.is_empty());
    }

    /// Idle connections held, all addresses together.
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }
}
