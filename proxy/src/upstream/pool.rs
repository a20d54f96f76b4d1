//! Per-core keep-alive pools of upstream connections, keyed by address. Bounded per address
//! (`max_idle_per_core`), aged out after `idle_timeout`, checked for a peer close before reuse.
//! Per-core pools multiply origin connections by the worker count, hence the cap.

use std::{cell::RefCell, net::SocketAddr, os::fd::AsRawFd, time::Instant};

use rustc_hash::FxHashMap;
use turnpike_core::config::UpstreamPolicy;

use crate::rt::{self, TcpStream};

struct Idle {
    stream: TcpStream,
    since: Instant,
}

#[derive(Default)]
pub struct UpstreamPool {
    idle: RefCell<FxHashMap<SocketAddr, Vec<Idle>>>,
}

impl UpstreamPool {
    /// The most recently used live connection to `addr`, if any. Stale or peer-closed ones
    /// found on the way are closed.
    #[inline]
    pub fn checkout(&self, addr: SocketAddr, policy: &UpstreamPolicy) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(c) = list.pop() {
            if now.duration_since(c.since) < policy.idle_timeout
                && !rt::peer_gone(c.stream.as_raw_fd())
            {
                return Some(c.stream);
            }
        }
        None
    }

    /// Returns a connection whose last exchange completed cleanly.
    #[inline]
    pub fn checkin(&self, addr: SocketAddr, stream: TcpStream, policy: &UpstreamPolicy) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(addr).or_default();
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
