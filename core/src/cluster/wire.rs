//! The cluster's datagrams: how counter entries are encoded, and how every datagram (counter
//! entries or membership messages) is sealed with the cluster's shared secret.
//!
//! A datagram is `"TP" version kind payload tag`: `kind` 0 carries a membership (SWIM)
//! message, 1 counter entries; `tag` is the first 16 bytes of HMAC-SHA256 over everything
//! before it under the shared secret. A datagram whose tag does not verify is dropped before
//! its payload is read, so a stranger can inject neither members nor usage. A replayed
//! datagram is harmless for counters (merging is idempotent) and for membership (SWIM
//! ignores stale incarnations).
//!
//! Counter payload: the sender's node key (u64 LE), then groups `node (u64 LE), entry count
//! (varint)`, each entry `counter id (u64 LE), word (varint)`. About 10 bytes per entry.

use super::book::{CounterId, NodeKey};

/// One node's word for one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    pub counter: CounterId,
    pub node: NodeKey,
    /// A cumulative count (rates) or `window << 32 | count` (quotas).
    pub word: u64,
}

/// What a datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Membership = 0,
    Counters = 1,
}

const MAGIC: &[u8; 2] = b"TP";
const VERSION: u8 = 1;
/// Bytes of HMAC-SHA256 kept.
pub const TAG_LEN: usize = 16;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 4;

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("datagram too short or not a turnpike cluster datagram")]
    NotOurs,
    #[error("unknown datagram version or kind")]
    Unsupported,
    #[error("authentication tag does not verify (wrong or missing cluster secret)")]
    BadTag,
    #[error("counter payload truncated or malformed")]
    Malformed,
}

/// The cluster's shared secret as an HMAC key.
pub struct Secret(ring::hmac::Key);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A key from the secret's bytes (the secret file's content, surrounding white space
    /// trimmed by the caller).
    pub fn new(bytes: &[u8]) -> Secret {
        Secret(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes))
    }

    /// A 64-hex-digit tag of `value` under this secret (HMAC-SHA256): the same on every node
    /// of the cluster, and telling nothing of `value` to whoever lacks the secret. Counter
    /// names use it for API key values.
    pub fn tag(&self, value: &[u8]) -> String {
        use std::fmt::Write;
        let t = ring::hmac::sign(&self.0, value);
        t.as_ref()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }

    /// Frames `payload` as a `kind` datagram into `out` (cleared first).
    pub fn seal(&self, kind: Kind, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(kind as u8);
        out.extend_from_slice(payload);
        let tag = ring::hmac::sign(&self.0, out);
        out.extend_from_slice(&tag.as_ref()[..TAG_LEN]);
    }

    /// Checks a datagram and returns its kind and payload.
    pub fn open<'a>(&self, datagram: &'a [u8]) -> Result<(Kind, &'a [u8]), WireError> {
        if datagram.len() < HEADER_LEN + TAG_LEN || &datagram[..2] != MAGIC {
            return Err(WireError::NotOurs);
        }
        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let full = ring::hmac::sign(&self.0, signed);
        // Constant time: a forger learns nothing from how long the comparison took.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &full.as_ref()[..TAG_LEN],
            tag,
        )) {
            return Err(WireError::BadTag);
        }
        let kind = match (signed[2], signed[3]) {
            (VERSION, 0) => Kind::Membership,
            (VERSION, 1) => Kind::Counters,
            _ => return Err(WireError::Unsupported),
        };
        Ok((kind, &signed[HEADER_LEN..]))
    }
}

/// Encodes `entries` from node `from` into payloads of at most `max` bytes each (at least
/// 64), handed to `emit` one by one. Entries are grouped by node; the order within is kept.
pub fn encode_entries(
    from: NodeKey,
    entries: &mut [Entry],
    max: usize,
    mut emit: impl FnMut(&[u8]),
) {
    let max = max.max(64);
    entries.sort_unstable_by_key(|e| e.node);
    let mut buf = Vec::with_capacity(max);
    let mut i = 0;
    while i < entries.len() {
        buf.clear();
        buf.extend_from_slice(&from.to_le_bytes());
        // Groups until the datagram is full.
        while i < entries.len() && buf.len() + 8 + 10 + 8 + 10 <= max {
            let node = entries[i].node;
            buf.extend_from_slice(&node.to_le_bytes());
            let count_at = buf.len();
            buf.push(0); // patched below (a group holds at most 127 entries: one byte)
            let mut n = 0u8;
            while i < entries.len() && entries[i].node == node && n < 127 && buf.len() + 18 <= max {
                buf.extend_from_slice(&entries[i].counter.to_le_bytes());
                put_varint(&mut buf, entries[i].word);
                n += 1;
                i += 1;
            }
            buf[count_at] = n;
        }
        emit(&buf);
    }
}

/// Decodes a counter payload: the sender and its entries (appended to `out`).
pub fn decode_entries(mut p: &[u8], out: &mut Vec<Entry>) -> Result<NodeKey, WireError> {
    let from = take_u64(&mut p)?;
    while !p.is_empty() {
        let node = take_u64(&mut p)?;
        let n = take_varint(&mut p)?;
        for _ in 0..n {
            let counter = take_u64(&mut p)?;
            let word = take_varint(&mut p)?;
            out.push(Entry {
                counter,
                node,
                word,
            });
        }
    }
    Ok(from)
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn take_u64(p: &mut &[u8]) -> Result<u64, WireError> {
    let (head, rest) = p.split_first_chunk::<8>().ok_or(WireError::Malformed)?;
    *p = rest;
    Ok(u64::from_le_bytes(*head))
}

fn take_varint(p: &mut &[u8]) -> Result<u64, WireError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = p.split_first().ok_or(WireError::Malformed)?;
        *p = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(WireError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_across_datagrams() {
        let mut entries: Vec<Entry> = (0..1000u64)
            .map(|i| Entry {
                counter: i * 7919,
                node: i % 3,
                word: i << 33 | i,
            })
            .collect();
        let mut payloads = Vec::new();
        encode_entries(42, &mut entries, 1200, |p| payloads.push(p.to_vec()));
        assert!(payloads.len() > 1 && payloads.iter().all(|p| p.len() <= 1200));
        let mut back = Vec::new();
        for p in &payloads {
            assert_eq!(decode_entries(p, &mut back), Ok(42));
        }
        back.sort();
        entries.sort();
        assert_eq!(back, entries);
    }

    #[test]
    fn a_wrong_secret_or_a_flipped_bit_is_refused() {
        let ours = Secret::new(b"correct horse");
        let theirs = Secret::new(b"battery staple");
        let mut d = Vec::new();
        ours.seal(Kind::Counters, b"payload", &mut d);
        assert_eq!(ours.open(&d), Ok((Kind::Counters, &b"payload"[..])));
        assert_eq!(theirs.open(&d), Err(WireError::BadTag));
        let mut flipped = d.clone();
        flipped[5] ^= 1;
        assert_eq!(ours.open(&flipped), Err(WireError::BadTag));
        assert_eq!(ours.open(b"TP"), Err(WireError::NotOurs));
        assert_eq!(ours.open(&[0u8; 40]), Err(WireError::NotOurs));
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        let mut out = Vec::new();
        assert_eq!(
            decode_entries(&[1, 2, 3], &mut out),
            Err(WireError::Malformed)
        );
        let mut p = 9u64.to_le_bytes().to_vec();
        p.extend_from_slice(&1u64.to_le_bytes());
        p.push(5); // five entries announced, none there
        assert_eq!(decode_entries(&p, &mut out), Err(WireError::Malformed));
        let mut p = 9u64.to_le_bytes().to_vec();
        p.extend_from_slice(&1u64.to_le_bytes());
        p.push(1);
        p.extend_from_slice(&3u64.to_le_bytes());
        p.extend_from_slice(&[0xff; 11]); // a varint that never ends
        assert_eq!(decode_entries(&p, &mut out), Err(WireError::Malformed));
    }
}
