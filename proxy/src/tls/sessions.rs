//! Server-side TLS session state: a per-core session-id cache and ticket keys, both scoped by
//! the identity of the TLS settings (certificate, policy, truststore) that made the session,
//! so a session never resumes under other settings (rustls checks only the server name and
//! suite): a client that resumed a session from before its domain required client
//! certificates would otherwise skip giving one.
//!
//! Tickets (TLS 1.3 and TLS 1.2 with the extension) are what most clients resume with; their
//! keys are shared by every worker, since the kernel spreads a client's connections over all
//! of them, and rotate every 6 hours (rustls's ring ticketer). The session-id cache serves TLS
//! 1.2 clients without tickets; it is per core (a thread-local), so it takes no lock, and a
//! client resumes only if its next connection lands on the same core — as with nginx's
//! per-worker cache.

use std::{
    cell::RefCell,
    collections::{HashMap, VecDeque},
    sync::{Arc, OnceLock},
};

use rustc_hash::FxHashMap;
use rustls::server::{ProducesTickets, StoresServerSessions};

/// Sessions kept per core.
const SESSIONS_PER_CORE: usize = 4096;

thread_local! {
    static SESSIONS: RefCell<Cache> = RefCell::new(Cache::default());
}

#[derive(Default)]
struct Cache {
    map: FxHashMap<Vec<u8>, Vec<u8>>,
    /// Insertion order, for evicting the oldest.
    order: VecDeque<Vec<u8>>,
}

/// The per-core session-id cache (the state is the calling thread's), seen through one
/// identity's scope.
#[derive(Debug, Default)]
pub struct PerCoreSessions {
    scope: u64,
}

impl PerCoreSessions {
    pub fn scoped(scope: u64) -> PerCoreSessions {
        PerCoreSessions { scope }
    }

    fn key(&self, id: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(8 + id.len());
        k.extend_from_slice(&self.scope.to_le_bytes());
        k.extend_from_slice(id);
        k
    }
}

impl StoresServerSessions for PerCoreSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let key = self.key(&key);
        SESSIONS.with_borrow_mut(|c| {
            if c.map.len() >= SESSIONS_PER_CORE
                && let Some(old) = c.order.pop_front()
            {
                c.map.remove(&old);
            }
            if c.map.insert(key.clone(), value).is_none() {
                c.order.push_back(key);
            }
            true
        })
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let key = self.key(key);
        SESSIONS.with_borrow(|c| c.map.get(&key).cloned())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let key = self.key(key);
        // The key stays in `order` until evicted; a stale entry there costs nothing.
        SESSIONS.with_borrow_mut(|c| c.map.remove(&key))
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// The ticket keys of one identity (created on first use, kept for the process's life so
/// tickets survive reloads; rotating). Called when a snapshot is built, never on a worker.
pub fn ticketer(identity: u64) -> Option<Arc<dyn ProducesTickets>> {
    type Ticketers = HashMap<u64, Arc<dyn ProducesTickets>>;
    // The control plane's lock: taken while a snapshot is built, never by a worker.
    #[allow(clippy::disallowed_types)]
    static TICKETERS: OnceLock<std::sync::Mutex<Ticketers>> = OnceLock::new();
    let mut map = TICKETERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(t) = map.get(&identity) {
        return Some(t.clone());
    }
    match rustls::crypto::ring::Ticketer::new() {
        Ok(t) => {
            map.insert(identity, t.clone());
            Some(t)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no TLS session tickets: key generation failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use rustls::server::StoresServerSessions;

    use super::{PerCoreSessions, SESSIONS_PER_CORE};

    #[test]
    fn the_cache_is_per_thread_and_bounded() {
        let s = PerCoreSessions::scoped(7);
        assert!(s.put(b"a".to_vec(), b"1".to_vec()));
        assert_eq!(s.get(b"a").as_deref(), Some(&b"1"[..]));
        assert!(
            PerCoreSessions::scoped(8).get(b"a").is_none(),
            "another identity's session"
        );
        std::thread::spawn(|| assert!(PerCoreSessions::scoped(7).get(b"a").is_none()))
            .join()
            .expect("thread");
        for i in 0..SESSIONS_PER_CORE + 10 {
            s.put(i.to_le_bytes().to_vec(), vec![0]);
        }
        assert!(s.get(b"a").is_none(), "the oldest was evicted");
        assert_eq!(
            s.take(&4000usize.to_le_bytes()).as_deref(),
            Some(&[0u8][..])
        );
        assert!(s.get(&4000usize.to_le_bytes()).is_none());
    }
}
