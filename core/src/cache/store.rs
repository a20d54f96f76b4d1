//! One core's response cache: stored responses by [`Fingerprint`], bounded by bytes, evicted
//! by quick_cache's S3-FIFO (a small probation queue in front of the main one, so a scan of
//! one-hit requests does not push out what is read often). Not thread-safe on purpose: each
//! worker owns its own and nothing is shared between cores.

use std::rc::Rc;

use quick_cache::{Weighter, unsync::Cache};

use super::{
    http::Freshness,
    key::{Fingerprint, FingerprintHash},
};

/// What an entry costs beyond its bytes (the map's slot, the `Rc`, the entry's fields).
pub const ENTRY_OVERHEAD: u64 = 160;

/// A response as stored, ready to write: the head without its framing and per-response lines,
/// and the whole body.
#[derive(Debug)]
pub struct StoredResponse {
    pub status: u16,
    /// The status line and header lines, each ending in CRLF, without the blank line; without
    /// `Content-Length`/`Transfer-Encoding` (the hit writes the body's length), hop-by-hop
    /// fields, and lines written per answer (`Connection`, `apigw-requestid`, CORS; `Date` in
    /// `aws` mode, the origin's `Date` is kept in `http` mode).
    pub head: Box<[u8]>,
    pub body: Box<[u8]>,
    /// When the entry was stored (ms since the Unix epoch).
    pub stored_ms: u64,
    /// Past this (ms since the Unix epoch) the entry is gone: served no more, not even stale.
    pub expires_ms: u64,
    /// `http` mode: what RFC 9111 needs to judge reuse.
    pub http: Option<Box<Freshness>>,
}

impl StoredResponse {
    /// Bytes this entry counts for against the capacity.
    pub fn weight(&self) -> u64 {
        (self.head.len() + self.body.len()) as u64 + ENTRY_OVERHEAD
    }
}

/// The primary entry of a response that varies (RFC 9111 section 4.1): the request fields
/// its `Vary` names; the variant is stored under the key of the request's values of them,
/// salted with `nonce`, so replacing or removing this entry orphans every old variant.
#[derive(Debug)]
pub struct VaryEntry {
    /// Lower-case field names, in the order `Vary` lists them.
    pub fields: Box<[Box<str>]>,
    pub nonce: u64,
    pub expires_ms: u64,
}

/// What a key holds.
#[derive(Debug, Clone)]
pub enum Slot {
    Response(Rc<StoredResponse>),
    Vary(Rc<VaryEntry>),
}

impl Slot {
    pub fn expires_ms(&self) -> u64 {
        match self {
            Slot::Response(r) => r.expires_ms,
            Slot::Vary(v) => v.expires_ms,
        }
    }
}

/// Weighs entries by their bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotWeight;

impl Weighter<Fingerprint, Slot> for SlotWeight {
    fn weight(&self, _key: &Fingerprint, slot: &Slot) -> u64 {
        match slot {
            Slot::Response(r) => r.weight(),
            Slot::Vary(v) => v.fields.iter().map(|f| f.len() as u64).sum::<u64>() + ENTRY_OVERHEAD,
        }
    }
}

/// One core's cache for one stage.
pub struct ResponseStore {
    map: Cache<Fingerprint, Slot, SlotWeight, FingerprintHash>,
}

impl std::fmt::Debug for ResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStore")
            .field("entries", &self.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl ResponseStore {
    /// An empty store holding at most `capacity_bytes` of entries (by [`StoredResponse::weight`]).
    pub fn new(capacity_bytes: u64) -> ResponseStore {
        // The map sizes its tables for the expected count; 4 KiB is a typical API response.
        let estimated = (capacity_bytes / 4096).clamp(16, 1 << 20) as usize;
        ResponseStore {
            map: Cache::with(
                estimated,
                capacity_bytes.max(1),
                SlotWeight,
                FingerprintHash,
                Default::default(),
            ),
        }
    }

    /// The entry under `key` if it has not expired at `now_ms`; an expired one is removed.
    #[inline]
    pub fn get(&mut self, key: Fingerprint, now_ms: u64) -> Option<Slot> {
        let slot = self.map.get(&key)?;
        if slot.expires_ms() > now_ms {
            return Some(slot.clone());
        }
        self.map.remove(&key);
        None
    }

    /// Stores `slot` under `key` (replacing what was there). An entry heavier than the whole
    /// capacity is not kept.
    pub fn insert(&mut self, key: Fingerprint, slot: Slot) {
        self.map.insert(key, slot);
    }

    pub fn remove(&mut self, key: Fingerprint) {
        self.map.remove(&key);
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held (by weight).
    pub fn bytes(&self) -> u64 {
        self.map.weight()
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.map.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: usize, expires_ms: u64) -> Slot {
        Slot::Response(Rc::new(StoredResponse {
            status: 200,
            head: b"HTTP/1.1 200 OK\r\n"[..].into(),
            body: vec![b'x'; body].into(),
            stored_ms: 0,
            expires_ms,
            http: None,
        }))
    }

    #[test]
    fn expired_entries_are_not_returned_and_are_dropped() {
        let mut s = ResponseStore::new(1 << 20);
        s.insert(Fingerprint(1), entry(10, 1000));
        assert!(s.get(Fingerprint(1), 999).is_some());
        assert!(s.get(Fingerprint(1), 1000).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn bytes_stay_within_capacity() {
        let mut s = ResponseStore::new(64 * 1024);
        for i in 0..100u128 {
            s.insert(Fingerprint(i), entry(4000, u64::MAX));
        }
        assert!(s.bytes() <= 64 * 1024, "{} bytes", s.bytes());
        assert!(s.len() < 100 && s.len() > 5, "{} entries", s.len());
        // The newest is there: S3-FIFO admits new entries to its probation queue.
        assert!(s.get(Fingerprint(99), 0).is_some());
        s.clear();
        assert_eq!((s.len(), s.bytes()), (0, 0));
    }
}
