//! Per-key usage state, shared by every worker: for each (key, usage plan) association, the
//! plan's token bucket, the quota counter and today's request count, plus one bucket per
//! per-route throttle override of the plan.
//!
//! Slots live in fixed chunks that are allocated once and never move or shrink, so a slot's
//! index stays valid across key-table rebuilds and config reloads: a key disabled and enabled
//! again, or a plan edited, keeps its counters. The control plane allocates and releases
//! ranges of slots with its own [`SlotAllocator`] while building a table; the data plane only
//! reads chunk pointers (`OnceLock::get`, an acquire load) and updates the atomics in a slot.
//!
//! Counters pack a period number beside a count in one word (`period << 32 | count`), so a
//! check-and-count is one compare-and-swap and a new period starts from zero without a
//! reset pass.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering::Relaxed},
};

use rustc_hash::FxHashMap;

use crate::gcra::Gcra;

/// Slots per chunk (a chunk is 2 MiB).
pub const CHUNK: u32 = 1 << 16;
/// Chunks at most: 2^28 slots, far past the memory of any machine turnpike runs on.
const MAX_CHUNKS: usize = 1 << 12;

/// One association's state: 24 bytes, aligned to 32 so a slot never straddles two cache
/// lines (a request touches one line of slots, not two).
#[derive(Debug, Default)]
#[repr(align(32))]
pub struct Slot {
    /// The usage plan's token bucket for this key (or a per-route override's).
    pub bucket: Gcra,
    /// `quota period number << 32 | requests counted in it`.
    pub quota: AtomicU64,
    /// `UTC day number << 32 | requests admitted that day`: what `get-usage` reports.
    pub day: AtomicU64,
}

/// A counter word's period and count.
#[inline]
pub fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

#[inline]
pub fn pack(period: u32, count: u32) -> u64 {
    (u64::from(period) << 32) | u64::from(count)
}

impl Slot {
    /// Counts one request in `period` if fewer than `limit` were counted there; returns
    /// whether it was. Exact across cores: two workers can never both take the last one.
    #[inline]
    pub fn count_quota(&self, period: u32, limit: u32) -> bool {
        let mut word = self.quota.load(Relaxed);
        loop {
            let (p, used) = unpack(word);
            let used = if p == period { used } else { 0 };
            if used >= limit {
                return false;
            }
            match self
                .quota
                .compare_exchange_weak(word, pack(period, used + 1), Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(current) => word = current,
            }
        }
    }

    /// Counts one admitted request on `day` (days since 1970, UTC).
    #[inline]
    pub fn count_day(&self, day: u32) {
        let mut word = self.day.load(Relaxed);
        loop {
            let (d, n) = unpack(word);
            let next = if d == day {
                pack(d, n.saturating_add(1))
            } else {
                pack(day, 1)
            };
            match self.day.compare_exchange_weak(word, next, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(current) => word = current,
            }
        }
    }

    /// The quota used in `period` (0 if the counter holds another period).
    pub fn quota_used(&self, period: u32) -> u32 {
        match unpack(self.quota.load(Relaxed)) {
            (p, used) if p == period => used,
            _ => 0,
        }
    }

    fn reset(&self) {
        self.bucket.reset();
        self.quota.store(0, Relaxed);
        self.day.store(0, Relaxed);
    }
}

/// Every slot of the process. Create one and share it (`Arc`) between the control plane and
/// the workers.
pub struct UsageSlots {
    chunks: Box<[OnceLock<Box<[Slot]>>]>,
}

/// Which slots are in use: owned by the control plane (one per process), never shared.
#[derive(Debug, Default)]
pub struct SlotAllocator {
    next: u32,
    /// Released ranges by length, reused first.
    free: FxHashMap<u32, Vec<u32>>,
    in_use: u64,
}

impl Default for UsageSlots {
    fn default() -> Self {
        UsageSlots::new()
    }
}

impl std::fmt::Debug for UsageSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageSlots")
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl UsageSlots {
    pub fn new() -> UsageSlots {
        UsageSlots {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The slot at `index`, if it was ever allocated.
    #[inline]
    pub fn get(&self, index: u32) -> Option<&Slot> {
        let chunk = self.chunks.get((index / CHUNK) as usize)?.get()?;
        chunk.get((index % CHUNK) as usize)
    }

    /// Bytes held by allocated chunks.
    pub fn bytes(&self) -> usize {
        let chunks = self.chunks.iter().filter(|c| c.get().is_some()).count();
        chunks * CHUNK as usize * std::mem::size_of::<Slot>()
    }
}

impl SlotAllocator {
    pub fn new() -> SlotAllocator {
        SlotAllocator::default()
    }

    /// Allocates `n` consecutive slots (1..=[`CHUNK`]) of `slots`, zeroed, and returns the
    /// first's index. `None` when `n` is out of range or every chunk is used.
    pub fn alloc(&mut self, slots: &UsageSlots, n: u32) -> Option<u32> {
        if n == 0 || n > CHUNK {
            return None;
        }
        let start = match self.free.get_mut(&n).and_then(Vec::pop) {
            Some(start) => start,
            None => {
                let mut start = self.next;
                if start % CHUNK + n > CHUNK {
                    start = start.next_multiple_of(CHUNK);
                }
                let end = start.checked_add(n)?;
                if ((end - 1) / CHUNK) as usize >= MAX_CHUNKS {
                    return None;
                }
                self.next = end;
                start
            }
        };
        self.in_use += u64::from(n);
        let chunk = slots.chunks[(start / CHUNK) as usize]
            .get_or_init(|| (0..CHUNK).map(|_| Slot::default()).collect());
        for s in &chunk[(start % CHUNK) as usize..][..n as usize] {
            s.reset();
        }
        Some(start)
    }

    /// Gives back a range from [`SlotAllocator::alloc`]. A request still running on an older
    /// key table may touch it once more; the next `alloc` zeroes it anyway.
    pub fn release(&mut self, start: u32, n: u32) {
        self.in_use = self.in_use.saturating_sub(u64::from(n));
        self.free.entry(n).or_default().push(start);
    }

    /// Slots allocated and not released.
    pub fn in_use(&self) -> u64 {
        self.in_use
    }
}
