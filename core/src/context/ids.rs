//! Request ids shaped like AWS HTTP API ids (`JKJaXmhLoAMEJeQ=`, the `apigw-requestid`
//! response header): 11 bytes in URL-safe base64 with its `=` pad, 16 ASCII characters.
//!
//! The 88 bits are, high to low: 42 bits of epoch milliseconds (enough until 2109, then the
//! field wraps), 16 bits of worker id, 30 bits of sequence. One [`RequestIds`] lives on each
//! core, so making an id is a few integer operations with no atomics and no allocation.
//!
//! Unique on one core because the (milliseconds, sequence) pair never repeats: time never
//! moves backwards here (a clock step back keeps the last millisecond), and when a millisecond
//! has used all 2^30 sequences the generator borrows the next one. Unique across cores by the
//! worker field. Across restarts (and across gateway nodes, whose worker ids repeat) the
//! sequence starts at an offset drawn from the seed, so two processes collide only when they
//! share a millisecond and a worker id and their sequence windows overlap: about one chance in
//! 2^30 per id issued in that millisecond, given a random seed.

/// One request id: 16 ASCII bytes of URL-safe base64 (`A-Z a-z 0-9 - _`, then `=`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId([u8; 16]);

impl RequestId {
    /// The 16 bytes, as sent in a header or written to a log.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only base64url characters and '=' are ever written.
        std::str::from_utf8(&self.0).unwrap_or("-")
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const MS_BITS: u32 = 42;
const SEQ_BITS: u32 = 30;
const MS_MASK: u64 = (1 << MS_BITS) - 1;
const SEQ_MASK: u32 = (1 << SEQ_BITS) - 1;
const PER_MS: u32 = 1 << SEQ_BITS;

/// A core's request id generator: plain data, one per worker, never shared (no atomics).
#[derive(Debug, Clone)]
pub struct RequestIds {
    worker: u16,
    /// Where every millisecond's sequence starts (30 bits drawn from the seed).
    offset: u32,
    /// The millisecond the last id was made in (never decreases).
    pub(super) last_ms: u64,
    /// Ids made in `last_ms` so far (0..=2^30).
    pub(super) issued: u32,
}

impl RequestIds {
    /// A generator for worker `worker` (the core's index; unique within the process).
    /// `seed` should differ per process start (random bytes, or the start time in
    /// nanoseconds mixed with the pid): it keeps a restarted gateway, or another node, from
    /// repeating this one's ids.
    pub fn new(worker: u16, seed: u64) -> RequestIds {
        RequestIds {
            worker,
            offset: (splitmix64(seed) >> (64 - SEQ_BITS)) as u32,
            last_ms: 0,
            issued: 0,
        }
    }

    /// The next id, for a request received at `now_epoch_ms` (milliseconds since the Unix
    /// epoch, read by the caller).
    pub fn next(&mut self, now_epoch_ms: u64) -> RequestId {
        if now_epoch_ms > self.last_ms {
            self.last_ms = now_epoch_ms;
            self.issued = 0;
        } else if self.issued == PER_MS {
            self.last_ms += 1;
            self.issued = 0;
        }
        let seq = self.offset.wrapping_add(self.issued) & SEQ_MASK;
        self.issued += 1;
        let bits = (u128::from(self.last_ms & MS_MASK) << (16 + SEQ_BITS))
            | (u128::from(self.worker) << SEQ_BITS)
            | u128::from(seq);
        let bytes = bits.to_be_bytes();
        RequestId(encode11(&bytes[5..16]))
    }
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 of 11 bytes: 15 characters and one `=`.
fn encode11(b: &[u8]) -> [u8; 16] {
    let mut out = [b'='; 16];
    for (i, chunk) in b.chunks(3).enumerate() {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (j, &x)| n | u32::from(x) << (16 - 8 * j));
        let o = &mut out[i * 4..];
        for (k, slot) in o.iter_mut().take(chunk.len() + 1).enumerate() {
            *slot = B64URL[(n >> (18 - 6 * k) & 63) as usize];
        }
    }
    out
}

/// A 64-bit mixer (SplitMix64's finaliser): nearby seeds give unrelated offsets.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
