//! The control-plane half: every cluster-wide counter as a G-counter (one entry per node,
//! each `(window, count)`), the deltas this node sends, and the merge of what peers send.
//!
//! An entry only ever grows: a later window, or more requests in the same window (the
//! packed word `window << 32 | count` orders the same way, so "grow" is `max` of words).
//! Merging is therefore idempotent, commutative and associative: a message delivered twice,
//! late or out of order changes nothing it should not, and a lost one is repaired by the
//! next that carries the same entry. Each sync sends this node's entries that moved since the
//! last one (the deltas) plus a slice of the whole book, every entry of every node, so a loss
//! is repaired within one round of the book and a node that restarts learns back its own
//! count from its peers.
//!
//! A quota window's entries are dropped once the window is over; a rate's entries are
//! cumulative and never expire. Sans-io: time is passed in.
//!
//! For a rate the book also keeps, per peer, this node's own count when the peer's word last
//! grew and the peer's share (its growth over this node's between its last two words), and
//! publishes them with the peers' sum so the hot path can guess what each peer admitted
//! since (see [`super::cell`]). A peer whose word has not grown for [`GUESS_SYNCS`] syncs is
//! left out of the guess: it has stopped, or its words are being lost, and the next that
//! arrives counts it in again.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::cell::{ClusterRate, SHARE_ONE, SharedCounter};
use super::wire::Entry;
use crate::usage::{QuotaSettings, slots::unpack};

/// A node as counters know it: a stable number from its name ([`super::node_key`]), the same
/// across restarts.
pub type NodeKey = u64;

/// A counter's stable number, from its name ([`super::counter_id`]).
pub type CounterId = u64;

/// What a counter counts, which decides its windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    /// A cumulative count for a rate (window 0, never expires).
    Rate,
    /// A quota: one window per quota period.
    Quota(QuotaSettings),
    /// Heard of from a peer, not (yet) used here.
    Unknown,
}

/// Syncs after a peer's last growth during which a rate's view guesses its unseen requests:
/// a peer's words arrive once per its sync interval, give or take the link's delay and a lost
/// datagram.
pub const GUESS_SYNCS: u64 = 3;

/// One other node's word for a counter.
#[derive(Debug, Clone, Copy, Default)]
struct PeerWord {
    word: u64,
    /// For a rate: this node's own count when `word` last grew.
    mark: u64,
    /// For a rate: how busy the peer was against this node between its last two growths
    /// (its growth over this node's, at most one), in [`SHARE_ONE`]ths.
    share: u64,
    /// The book's sync count when `word` last grew.
    grew_at: u64,
}

impl PeerWord {
    /// The peer's word grown to `word` at sync `syncs`, this node's own count being `own`.
    fn grown(&self, word: u64, own: u64, syncs: u64) -> PeerWord {
        let (theirs, mine) = (word - self.word, own.saturating_sub(self.mark));
        let last = if self.word == 0 || theirs >= mine {
            SHARE_ONE
        } else {
            (u128::from(theirs) * u128::from(SHARE_ONE) / u128::from(mine)) as u64
        };
        PeerWord {
            word,
            mark: own,
            // Half the last share, half the one before: one interval's count is noisy.
            share: if self.word == 0 {
                last
            } else {
                (self.share + last) / 2
            },
            grew_at: syncs,
        }
    }
}

impl Counter {
    /// Every node's entry for this counter (`me`'s if it counted any).
    fn state(&self, id: CounterId, me: NodeKey, out: &mut Vec<Entry>) {
        let own = self.cell.own();
        if own != 0 {
            out.push(Entry {
                counter: id,
                node: me,
                word: own,
            });
        }
        out.extend(self.peers.iter().map(|(&node, p)| Entry {
            counter: id,
            node,
            word: p.word,
        }));
    }

    /// Takes `requests` learned of just now as past use ([`SharedCounter::count_as_past`]).
    fn count_as_past(&self, requests: u64) {
        if let Some(rate) = &self.rate {
            self.cell.count_as_past(requests, rate);
        }
    }

    /// Whether a peer's first count, `word`, is past use rather than new. What a peer admits
    /// before its first count reaches this node is at most its burst and a sync interval of
    /// the rate, under a fresh bucket's credit (the burst and two intervals); more means this
    /// node restarted or only now uses the limit. New use is owed for like any other:
    /// forgiving it would leave this node's line ahead of its peers', and under load the node
    /// whose line is ahead takes every request it is offered while the others refuse theirs.
    fn is_past(&self, word: u64) -> bool {
        self.rate.is_some_and(|r| word > r.fresh_credit())
    }
}

/// One cluster-wide counter.
#[derive(Debug)]
struct Counter {
    kind: CounterKind,
    name: Option<Box<str>>,
    cell: Arc<SharedCounter>,
    /// Every other node's word.
    peers: FxHashMap<NodeKey, PeerWord>,
    /// The sync count at which a peer in the published guess leaves it (`u64::MAX`: none).
    guess_until: u64,
    /// For a rate, the rate as last registered: to keep the bucket's base moving while this
    /// node admits nothing on it ([`SharedCounter::touch_rate`]).
    rate: Option<ClusterRate>,
    /// Our own word when it was last sent.
    sent: u64,
    /// For a rate, the largest count of this node's from before a restart that a peer
    /// remembered: the part of its own count it did not admit since.
    restored: u64,

    /// Quota words of windows before this one are over and refused.
    floor: u32,
}

/// Per node, its words for one counter: what `turnpike admin cluster` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterReading {
    pub id: CounterId,
    /// The name it was registered with here (`None`: only peers use it).
    pub name: Option<Box<str>>,
    /// `(node, window, count)` for this node first, then the peers by node key.
    pub nodes: Vec<(NodeKey, u32, u32)>,
}

/// Every cluster-wide counter of this node.
#[derive(Debug)]
pub struct CounterBook {
    me: NodeKey,
    counters: FxHashMap<CounterId, Counter>,
    /// Ids in a stable order, for the round robin of full-state slices.
    order: Vec<CounterId>,
    cursor: usize,
    /// Syncs so far: the clock of [`GUESS_SYNCS`].
    syncs: u64,
}

impl CounterBook {
    /// An empty book for node `me`.
    pub fn new(me: NodeKey) -> CounterBook {
        CounterBook {
            me,
            counters: FxHashMap::default(),
            order: Vec::new(),
            cursor: 0,
            syncs: 0,
        }
    }

    /// Sets this node's key (once, when gossip starts, before the first sync): counts made
    /// before stay this node's own, and entries merged before under `me` (restored from
    /// disk) become its own count.
    pub fn set_me(&mut self, me: NodeKey) {
        self.me = me;
        let syncs = self.syncs;
        for c in self.counters.values_mut() {
            if let Some(p) = c.peers.remove(&me) {
                c.cell.raise_own(p.word);
                publish(c, syncs);
            }
        }
    }

    pub fn me(&self) -> NodeKey {
        self.me
    }

    /// Counters in the book.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// The shared counter for `id`, created if new; what peers already sent for it is kept.
    /// Registering again with another kind (a plan's quota period changed) keeps the counts.
    pub fn register(&mut self, id: CounterId, name: &str, kind: CounterKind) -> Arc<SharedCounter> {
        let syncs = self.syncs;
        let c = self.entry(id);
        c.kind = kind;
        if c.name.as_deref() != Some(name) {
            c.name = Some(name.into());
        }
        publish(c, syncs);
        c.cell.clone()
    }

    /// Sets the rate of the rate counter `id` (registered before), for [`CounterBook::sync`]
    /// to follow the bucket while this node admits nothing on it.
    pub fn set_rate(&mut self, id: CounterId, rate: Option<ClusterRate>) {
        if let Some(c) = self.counters.get_mut(&id) {
            c.rate = rate;
        }
    }

    /// The shared counter for `id`, if the book has it.
    pub fn cell(&self, id: CounterId) -> Option<Arc<SharedCounter>> {
        self.counters.get(&id).map(|c| c.cell.clone())
    }

    fn entry(&mut self, id: CounterId) -> &mut Counter {
        let order = &mut self.order;
        self.counters.entry(id).or_insert_with(|| {
            order.push(id);
            Counter {
                kind: CounterKind::Unknown,
                name: None,
                cell: Arc::default(),
                peers: FxHashMap::default(),
                guess_until: u64::MAX,
                rate: None,
                sent: 0,
                restored: 0,
                floor: 0,
            }
        })
    }

    /// Merges entries from a peer. Entries about this node raise its own count (a peer
    /// remembers what this node counted before it restarted). Returns how many entries
    /// changed something.
    pub fn merge(&mut self, entries: &[Entry]) -> usize {
        let (me, syncs) = (self.me, self.syncs);
        let mut changed = 0;
        for e in entries {
            let c = self.entry(e.counter);
            if unpack(e.word).0 < c.floor {
                continue;
            }
            if e.node == me {
                if e.word <= c.cell.own() {
                    continue;
                }
                changed += 1;
                if c.kind != CounterKind::Rate {
                    c.cell.raise_own(e.word);
                    continue;
                }
                // More than this node ever sent: a peer remembers what it counted before a
                // restart. A rate's count is what it counted before plus what it counted
                // since (taking the larger would drop the requests admitted since), and the
                // past is no debt.
                let past = e.word - c.restored;
                c.restored = e.word;
                c.cell.add_own(past);
                c.count_as_past(past);
                for p in c.peers.values_mut() {
                    p.mark = p.mark.saturating_add(past);
                }
                publish(c, syncs);
                continue;
            }
            let own = c.cell.own();
            let slot = c.peers.entry(e.node).or_default();
            if e.word > slot.word {
                let first = slot.word == 0;
                *slot = slot.grown(e.word, own, syncs);
                changed += 1;
                if first && c.kind == CounterKind::Rate && c.is_past(e.word) {
                    c.count_as_past(e.word);
                }
                publish(c, syncs);
            }
        }
        changed
    }

    /// The entries to send at this sync: every own entry that moved since the last sync, then
    /// up to `slice` counters' whole state (every node's entry) in round robin. `epoch_ms`
    /// expires quota windows that are over first; a rate that did not move here has its
    /// bucket followed to `mono_ns` (the buckets' monotonic clock).
    pub fn sync(&mut self, epoch_ms: u64, mono_ns: u64, slice: usize, out: &mut Vec<Entry>) {
        self.expire(epoch_ms);
        self.syncs += 1;
        let (me, syncs) = (self.me, self.syncs);
        for (&id, c) in &mut self.counters {
            if c.guess_until <= syncs {
                publish(c, syncs);
            }
            let own = c.cell.own();
            if own == c.sent {
                // Every sync, not only after a peer's count grew: the base a busy peer set
                // when the cluster stopped being idle is the floor read just before that
                // growth, which a read after it cannot see.
                if let (CounterKind::Rate, Some(rate)) = (c.kind, &c.rate) {
                    c.cell.touch_rate(rate, mono_ns);
                }
            } else {
                c.sent = own;
                out.push(Entry {
                    counter: id,
                    node: me,
                    word: own,
                });
            }
        }
        let n = self.order.len();
        for _ in 0..slice.min(n) {
            self.cursor = (self.cursor + 1) % n;
            let id = self.order[self.cursor];
            if let Some(c) = self.counters.get(&id) {
                c.state(id, me, out);
            }
        }
    }

    /// Every entry of the book, this node's and the peers': what a member that just came up
    /// is sent at once, so a restarted node learns its own count back and its peers' within
    /// a round trip instead of the repair round.
    pub fn whole(&self, out: &mut Vec<Entry>) {
        for (&id, c) in &self.counters {
            c.state(id, self.me, out);
        }
    }

    /// Drops the entries of quota windows that are over at `epoch_ms`.
    pub fn expire(&mut self, epoch_ms: u64) {
        let syncs = self.syncs;
        for c in self.counters.values_mut() {
            let CounterKind::Quota(q) = c.kind else {
                continue;
            };
            let current = q.period_number(epoch_ms);
            c.floor = c.floor.max(current);
            let before = c.peers.len();
            c.peers.retain(|_, p| unpack(p.word).0 >= current);
            if c.peers.len() != before {
                publish(c, syncs);
            }
        }
    }

    /// Every counter's per-node words, sorted by id.
    pub fn readings(&self) -> Vec<CounterReading> {
        let mut out: Vec<CounterReading> = self
            .counters
            .iter()
            .map(|(&id, c)| {
                let (w, n) = unpack(c.cell.own());
                let mut nodes = vec![(self.me, w, n)];
                let mut peers: Vec<_> = c
                    .peers
                    .iter()
                    .map(|(&k, p)| {
                        let (w, n) = unpack(p.word);
                        (k, w, n)
                    })
                    .collect();
                peers.sort_unstable();
                nodes.extend(peers);
                CounterReading {
                    id,
                    name: c.name.clone(),
                    nodes,
                }
            })
            .collect();
        out.sort_unstable_by_key(|r| r.id);
        out
    }

    /// The other nodes' words for counter `id`, as last merged (to keep with this node's own
    /// when it saves a quota, so a restart of every node remembers them too).
    pub fn peer_words(&self, id: CounterId) -> Vec<(NodeKey, u64)> {
        let mut out: Vec<_> = self
            .counters
            .get(&id)
            .map(|c| c.peers.iter().map(|(&k, p)| (k, p.word)).collect())
            .unwrap_or_default();
        out.sort_unstable();
        out
    }

    /// The sum this node sees for a rate counter (own and peers), for tests and reports.
    pub fn rate_total(&self, id: CounterId) -> u64 {
        self.counters
            .get(&id)
            .map_or(0, |c| c.cell.own().saturating_add(c.cell.peers()))
    }
}

/// Recomputes what the hot path reads: for a rate, the sum of the peers' counts with the
/// guess of their unseen requests (the peers whose words grew in the last [`GUESS_SYNCS`]
/// syncs, by `syncs`); for a quota (or a counter not used here yet), the sum of the counts
/// in the latest window any peer has reached.
fn publish(c: &mut Counter, syncs: u64) {
    match c.kind {
        CounterKind::Rate => {
            let (mut sum, mut weight, mut marks) = (0u64, 0u64, 0u128);
            c.guess_until = u64::MAX;
            for p in c.peers.values() {
                sum = sum.saturating_add(p.word);
                let until = p.grew_at + GUESS_SYNCS;
                if until > syncs {
                    weight += p.share;
                    marks += u128::from(p.mark) * u128::from(p.share);
                    c.guess_until = c.guess_until.min(until);
                }
            }
            c.cell.set_rate_peers(sum, weight, marks);
        }
        CounterKind::Quota(_) | CounterKind::Unknown => {
            let window = c
                .peers
                .values()
                .map(|p| unpack(p.word).0)
                .max()
                .unwrap_or(0);
            let sum = c
                .peers
                .values()
                .map(|p| unpack(p.word))
                .filter(|&(w, _)| w == window)
                .fold(0u32, |a, (_, n)| a.saturating_add(n));
            c.guess_until = u64::MAX;
            c.cell.set_peers(crate::usage::slots::pack(window, sum));
        }
    }
}
