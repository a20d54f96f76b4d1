//! A deterministic simulation of the counter exchange: nodes with their books and shared
//! counters, a clock advanced by hand, links that drop, delay, duplicate and reorder
//! datagrams (seeded, so every run is the same), and demand offered to each node.

use std::{collections::BinaryHeap, sync::Arc};

use super::{book::*, cell::*, wire::*};
use crate::usage::{
    QuotaPeriod, QuotaSettings,
    slots::{pack, unpack},
};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;

/// A xorshift generator: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1e6 < p
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// How links misbehave.
#[derive(Clone, Copy)]
struct Links {
    drop: f64,
    duplicate: f64,
    /// Delays are uniform in `[min_delay, max_delay]` (different delays reorder).
    min_delay: u64,
    max_delay: u64,
}

const PERFECT: Links = Links {
    drop: 0.0,
    duplicate: 0.0,
    min_delay: 0,
    max_delay: 0,
};

struct InFlight {
    at: u64,
    seq: u64,
    to: usize,
    datagram: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // A min-heap on arrival time.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Node {
    book: CounterBook,
    cell: Arc<SharedCounter>,
    up: bool,
}

struct Cluster {
    nodes: Vec<Node>,
    secret: Secret,
    links: Links,
    rng: Rng,
    flight: BinaryHeap<InFlight>,
    seq: u64,
    /// Which nodes can reach which (a partition clears some).
    reach: Vec<Vec<bool>>,
    bytes_sent: u64,
    /// The simulated clock (ns).
    now: u64,
    sync_ns: u64,
    /// Counters whose whole state each sync repeats.
    repair_slice: usize,
}

const COUNTER: CounterId = 77;

impl Node {
    /// Node `i` with an empty book and the one counter registered as `kind`.
    fn fresh(i: usize, kind: CounterKind) -> Node {
        let mut book = CounterBook::new(100 + i as u64);
        let cell = book.register(COUNTER, "stage/a/prod/GET /", kind);
        Node {
            book,
            cell,
            up: true,
        }
    }
}

impl Cluster {
    fn new(n: usize, kind: CounterKind, links: Links, sync_ns: u64, seed: u64) -> Cluster {
        let nodes = (0..n).map(|i| Node::fresh(i, kind)).collect();
        Cluster {
            nodes,
            secret: Secret::new(b"s3cret"),
            links,
            rng: Rng(seed | 1),
            flight: BinaryHeap::new(),
            seq: 0,
            reach: vec![vec![true; n]; n],
            bytes_sent: 0,
            now: 10 * SECOND,
            sync_ns,
            repair_slice: 4,
        }
    }

    /// Every up node sends its sync to every peer it can reach.
    fn sync(&mut self, epoch_ms: u64) {
        for from in 0..self.nodes.len() {
            self.sync_node(from, epoch_ms);
        }
    }

    /// Node `from`, if up, sends its sync to every peer it can reach.
    fn sync_node(&mut self, from: usize, epoch_ms: u64) {
        if !self.nodes[from].up {
            return;
        }
        let mut entries = Vec::new();
        self.nodes[from]
            .book
            .sync(epoch_ms, self.now, self.repair_slice, &mut entries);
        self.send(from, entries, |_| true);
    }

    /// Node `i` restarts with an empty book under the same node key, its rate counter
    /// registered again.
    fn restart(&mut self, i: usize) {
        self.nodes[i] = Node::fresh(i, CounterKind::Rate);
    }

    /// Every other up node sends node `to` its whole book, as gossip does for a member that
    /// comes up.
    fn welcome(&mut self, to: usize) {
        for from in 0..self.nodes.len() {
            if from != to && self.nodes[from].up {
                let mut entries = Vec::new();
                self.nodes[from].book.whole(&mut entries);
                self.send(from, entries, |t| t == to);
            }
        }
    }

    /// Node `from` sends `entries` to each peer it can reach that `to` picks, over the links.
    fn send(&mut self, from: usize, mut entries: Vec<Entry>, to: impl Fn(usize) -> bool) {
        let now = self.now;
        let me = self.nodes[from].book.me();
        let mut datagrams = Vec::new();
        encode_entries(me, &mut entries, 1400, |p| {
            let mut d = Vec::new();
            self.secret.seal(Kind::Counters, p, &mut d);
            datagrams.push(d);
        });
        for d in datagrams {
            for t in 0..self.nodes.len() {
                if t == from || !self.reach[from][t] || !to(t) {
                    continue;
                }
                self.bytes_sent += d.len() as u64;
                if self.rng.chance(self.links.drop) {
                    continue;
                }
                let copies = if self.rng.chance(self.links.duplicate) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let span = self.links.max_delay - self.links.min_delay;
                    let at = now + self.links.min_delay + self.rng.below(span + 1);
                    self.seq += 1;
                    self.flight.push(InFlight {
                        at,
                        seq: self.seq,
                        to: t,
                        datagram: d.clone(),
                    });
                }
            }
        }
    }

    /// Delivers everything due by `now`.
    fn deliver(&mut self, now: u64) {
        while self.flight.peek().is_some_and(|f| f.at <= now) {
            let Some(f) = self.flight.pop() else { break };
            let node = &mut self.nodes[f.to];
            if !node.up {
                continue;
            }
            let (kind, payload) = self.secret.open(&f.datagram).expect("sealed by us");
            assert_eq!(kind, Kind::Counters);
            let mut entries = Vec::new();
            decode_entries(payload, &mut entries).expect("well formed");
            node.book.merge(&entries);
        }
    }

    fn totals(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| n.book.rate_total(COUNTER))
            .collect()
    }
}

/// Offers each node `demand[i]` requests per second against a cluster rate for `seconds`,
/// syncing every `c.sync_ns` (each node on its own phase, as nodes started at different
/// times are), and returns the admitted count of each second (cluster-wide).
fn run_rate(c: &mut Cluster, rate: ClusterRate, demand: &[f64], seconds: u64) -> Vec<u64> {
    let rate = rate.synced_every(c.sync_ns);
    for n in &mut c.nodes {
        n.book.set_rate(COUNTER, Some(rate));
    }
    let step = 100_000; // 0.1 ms
    let mut per_second = vec![0u64; seconds as usize];
    let mut owed = vec![0f64; demand.len()];
    let start = c.now;
    let n = c.nodes.len() as u64;
    let mut next_sync: Vec<u64> = (0..n).map(|i| start + c.sync_ns * i / n).collect();
    let mut now = start;
    while now < start + seconds * SECOND {
        c.now = now;
        c.deliver(now);
        for (i, next) in next_sync.iter_mut().enumerate() {
            if now >= *next {
                c.sync_node(i, 0);
                *next += c.sync_ns;
            }
        }
        for (i, d) in demand.iter().enumerate() {
            owed[i] += d * step as f64 / SECOND as f64;
            while owed[i] >= 1.0 {
                owed[i] -= 1.0;
                if c.nodes[i].up && c.nodes[i].cell.take_rate(&rate, now).is_ok() {
                    per_second[((now - start) / SECOND) as usize] += 1;
                }
            }
        }
        now += step;
    }
    c.now = now;
    per_second
}

fn lossy(max_delay_ms: u64) -> Links {
    Links {
        drop: 0.05,
        duplicate: 0.05,
        min_delay: 0,
        max_delay: max_delay_ms * MS,
    }
}

#[test]
fn merging_is_idempotent_commutative_and_order_free() {
    let mut rng = Rng(99);
    let entries: Vec<Entry> = (0..500)
        .map(|_| Entry {
            counter: rng.below(20),
            node: rng.below(4),
            word: rng.below(1_000),
        })
        .collect();
    let mut a = CounterBook::new(9);
    a.merge(&entries);
    let mut b = CounterBook::new(9);
    let mut shuffled = entries.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u64 + 1) as usize);
    }
    b.merge(&shuffled);
    b.merge(&shuffled[..200]);
    b.merge(&entries);
    assert_eq!(a.readings(), b.readings());
    assert_eq!(a.merge(&entries), 0, "a repeat changes nothing");
}

#[test]
fn views_converge_to_the_true_total_over_lossy_links() {
    let rate = ClusterRate::new(1e6, 1_000_000).expect("rate");
    let links = Links {
        drop: 0.3,
        duplicate: 0.2,
        min_delay: MS,
        max_delay: 40 * MS,
    };
    let mut c = Cluster::new(5, CounterKind::Rate, links, 10 * MS, 7);
    let admitted: u64 = run_rate(&mut c, rate, &[300.0, 10.0, 0.0, 1000.0, 55.0], 3)
        .iter()
        .sum();
    // Quiet: no more traffic, syncs go on (the round robin repairs every loss).
    for _ in 0..200 {
        c.deliver(c.now);
        c.sync(0);
        c.now += 10 * MS;
    }
    c.deliver(u64::MAX);
    assert!(admitted.abs_diff(1365 * 3) <= 5, "{admitted}");
    assert_eq!(c.totals(), vec![admitted; 5]);
}

fn check_rate_accuracy(nodes: usize, demand_share: &[f64], sync_ms: u64, worst: f64) {
    check_rate_accuracy_burst(nodes, demand_share, sync_ms, worst, 100);
}

fn check_rate_accuracy_burst(
    nodes: usize,
    demand_share: &[f64],
    sync_ms: u64,
    worst: f64,
    burst: u32,
) {
    let limit = 1000.0;
    let rate = ClusterRate::new(limit, burst).expect("rate");
    let mut c = Cluster::new(
        nodes,
        CounterKind::Rate,
        lossy(sync_ms / 2),
        sync_ms * MS,
        nodes as u64,
    );
    // Twice the limit offered, shared as given.
    let demand: Vec<f64> = demand_share.iter().map(|s| s * 2.0 * limit).collect();
    let seconds = 30;
    let per_second = run_rate(&mut c, rate, &demand, seconds);
    // The first second holds the burst.
    let steady = &per_second[1..];
    let total: u64 = steady.iter().sum();
    let long_run = total as f64 / (limit * steady.len() as f64) - 1.0;
    let max = *steady.iter().max().expect("seconds") as f64 / limit - 1.0;
    assert!(
        long_run.abs() < 0.005,
        "{nodes} nodes, sync {sync_ms} ms, shares {demand_share:?}: long-run error {long_run:.4} ({per_second:?})"
    );
    assert!(
        max <= worst + 1e-9,
        "{nodes} nodes, sync {sync_ms} ms: worst second {max:.4} over ({per_second:?})"
    );
    let min = *steady.iter().min().expect("seconds") as f64 / limit;
    eprintln!(
        "{nodes} nodes, sync {sync_ms} ms, shares {demand_share:?}: worst second {:+.2}%, \
         long-run {:+.3}%, least second {:.1}% of the limit",
        max * 100.0,
        long_run * 100.0,
        min * 100.0
    );
    let used = total as f64 / (limit * steady.len() as f64);
    assert!(used >= 0.97, "starved: {used:.4} of the limit used");
}

// The issue's goals: the worst second at most 1% over at a 10 ms sync and 3% at 100 ms,
// under links that drop and duplicate 5% and delay up to half a sync interval. Without the
// guess of the peers' unseen requests an even load is 5-8% over at 100 ms.

#[test]
fn rates_hold_across_nodes_even_load() {
    check_rate_accuracy(3, &[1.0 / 3.0; 3], 10, 0.01);
    check_rate_accuracy(5, &[0.2; 5], 10, 0.01);
    check_rate_accuracy(3, &[1.0 / 3.0; 3], 100, 0.03);
    check_rate_accuracy(5, &[0.2; 5], 100, 0.03);
}

#[test]
fn a_small_burst_does_not_starve_an_evenly_loaded_cluster() {
    // Between merges a node sees only its own share move: the idle cap must not take the
    // peers' unseen share for idleness.
    check_rate_accuracy_burst(3, &[1.0 / 3.0; 3], 100, 0.03, 1);
    check_rate_accuracy_burst(5, &[0.2; 5], 100, 0.03, 10);
    check_rate_accuracy_burst(3, &[1.0 / 3.0; 3], 10, 0.01, 1);
}

#[test]
fn rates_hold_across_nodes_skewed_load() {
    check_rate_accuracy(3, &[0.9, 0.05, 0.05], 10, 0.01);
    check_rate_accuracy(5, &[0.9, 0.025, 0.025, 0.025, 0.025], 10, 0.01);
    check_rate_accuracy(3, &[0.9, 0.05, 0.05], 100, 0.03);
    check_rate_accuracy(5, &[0.9, 0.025, 0.025, 0.025, 0.025], 100, 0.03);
}

#[test]
fn load_moving_to_a_node_that_admitted_nothing_finds_no_stale_credit() {
    // One node takes all the load, then another: the second never admitted, and its bucket
    // base must have followed the cluster's use (a stale base is the burst and the slack,
    // 30% of a second here, at once).
    let limit = 1000.0;
    let rate = ClusterRate::new(limit, 100).expect("rate");
    let mut c = Cluster::new(3, CounterKind::Rate, lossy(50), 100 * MS, 17);
    // The cluster is up before traffic comes: for its first two seconds a counter takes the
    // peers' first counts for past use (see the restart test below).
    run_rate(&mut c, rate, &[0.0; 3], 3);
    let before = run_rate(&mut c, rate, &[2.0 * limit, 0.0, 0.0], 5);
    let after = run_rate(&mut c, rate, &[0.0, 0.0, 2.0 * limit], 5);
    assert_eq!(before[1..], [1000; 4], "{before:?}");
    assert!(after[0] <= 1_030, "the node that took over: {after:?}");
    assert!(
        after[1..].iter().all(|&n| n.abs_diff(1000) <= 10),
        "{after:?}"
    );
}

#[test]
fn a_partition_lets_each_side_admit_its_own_limit_and_healing_merges() {
    let limit = 1000.0;
    let rate = ClusterRate::new(limit, 100).expect("rate");
    let mut c = Cluster::new(3, CounterKind::Rate, PERFECT, 10 * MS, 3);
    let demand = [1000.0; 3];
    let before = run_rate(&mut c, rate, &demand, 3);
    assert!(
        before[1..].iter().all(|&n| n.abs_diff(1000) <= 20),
        "{before:?}"
    );
    // Node 2 alone on one side: each side enforces its view.
    for (a, b) in [(0, 2), (1, 2), (2, 0), (2, 1)] {
        c.reach[a][b] = false;
    }
    let split = run_rate(&mut c, rate, &demand, 3);
    assert!(
        split[1..].iter().all(|&n| n.abs_diff(2000) <= 20),
        "two sides, twice the limit: {split:?}"
    );
    c.reach = vec![vec![true; 3]; 3];
    let healed = run_rate(&mut c, rate, &demand, 5);
    let t = c.totals();
    assert!(
        t.iter().all(|&x| x.abs_diff(t[0]) <= 30),
        "views merged: {t:?}"
    );
    // Each side's extra is paid back, at most one second of the rate.
    assert!(healed[0] < 100, "{healed:?}");
    assert!(healed[1] > 900, "{healed:?}");
    assert!(
        healed[2..].iter().all(|&n| n.abs_diff(1000) <= 20),
        "{healed:?}"
    );
}

#[test]
fn a_dead_node_still_counts_and_a_restarted_one_learns_its_count_back() {
    let rate = ClusterRate::new(1e6, 1_000_000).expect("rate");
    let mut c = Cluster::new(3, CounterKind::Rate, lossy(5), 10 * MS, 11);
    let first: u64 = run_rate(&mut c, rate, &[100.0, 100.0, 100.0], 2)
        .iter()
        .sum();
    let own2 = c.nodes[2].cell.own();
    c.nodes[2].up = false;
    let second: u64 = run_rate(&mut c, rate, &[100.0, 100.0, 0.0], 2).iter().sum();
    let all = first + second;
    run_rate(&mut c, rate, &[0.0; 3], 1);
    // What the dead node admitted after its last sync is lost with it: one request here.
    let t = c.totals();
    assert!(
        t[0] == t[1] && all - t[0] <= 1,
        "the dead node's {own2} still count: {t:?}"
    );
    let known = t[0];
    // Node 2 comes back with an empty book and learns its own 200 from the others.
    c.restart(2);
    run_rate(&mut c, rate, &[0.0; 3], 2);
    assert!(own2 - c.nodes[2].cell.own() <= 1);
    assert_eq!(c.totals(), vec![known; 3]);
}

#[test]
fn quotas_hold_across_nodes_and_windows_expire() {
    let q = QuotaSettings {
        limit: 500,
        period: QuotaPeriod::Day,
        offset: 0,
        scope: Default::default(),
    };
    let mut c = Cluster::new(3, CounterKind::Quota(q), lossy(5), 10 * MS, 5);
    let day_ms = 86_400_000u64;
    let epoch = 20_000 * day_ms;
    let window = q.period_number(epoch);
    let mut admitted = 0;
    // 3 nodes, each offering 1 request per ms for a second.
    for i in 0..1000u64 {
        c.now += MS;
        c.deliver(c.now);
        if i % 10 == 0 {
            c.sync(epoch);
        }
        for i in 0..3 {
            admitted += u64::from(c.nodes[i].cell.take_quota(window, q.limit));
        }
    }
    assert!((500..=520).contains(&admitted), "{admitted} admitted");
    // The next day starts from zero everywhere, and the old day's entries are dropped.
    let next = epoch + day_ms;
    c.sync(next);
    c.deliver(u64::MAX);
    assert!(c.nodes[0].cell.take_quota(window + 1, q.limit));
    for n in &c.nodes {
        let r = n.book.readings();
        assert_eq!(r.len(), 1);
        assert!(
            r[0].nodes[1..].iter().all(|&(_, w, _)| w == window + 1),
            "{r:?}"
        );
    }
}

#[test]
fn gossip_bytes_per_key_stay_small() {
    // 10,000 keys all moving on every sync: about 10 bytes per entry per peer.
    let mut book = CounterBook::new(1);
    let cells: Vec<_> = (0..10_000u64)
        .map(|k| book.register(k, "k", CounterKind::Rate))
        .collect();
    let rate = ClusterRate::new(1e9, 1_000_000).expect("rate");
    for c in &cells {
        c.take_rate(&rate, SECOND).expect("room");
    }
    let mut entries = Vec::new();
    book.sync(0, 0, 0, &mut entries);
    let mut bytes = 0;
    encode_entries(1, &mut entries, 1400, |p| {
        bytes += p.len() + HEADER_LEN + TAG_LEN
    });
    let peer_rounds = 100; // a 10 ms sync interval
    eprintln!(
        "10,000 moving keys: {bytes} bytes per sync per peer, {} bytes/s per peer at 10 ms",
        bytes * peer_rounds
    );
    assert!(bytes < 10_000 * 11, "{bytes} bytes");
}

#[test]
fn counts_restored_before_the_node_knows_its_key_become_its_own() {
    // A node loads its saved entries (its own and the peers') before gossip tells the book
    // which node it is: its own entry must not be taken for a peer's.
    let me = super::node_key("gw-1");
    let peer = super::node_key("gw-2");
    let mut book = CounterBook::new(0);
    let q = QuotaSettings {
        limit: 100,
        period: QuotaPeriod::Day,
        offset: 0,
        scope: Default::default(),
    };
    let cell = book.register(7, "plan/p/k/quota/DAY+0", CounterKind::Quota(q));
    book.merge(&[
        Entry {
            counter: 7,
            node: me,
            word: pack(20_000, 12),
        },
        Entry {
            counter: 7,
            node: peer,
            word: pack(20_000, 30),
        },
    ]);
    book.set_me(me);
    assert_eq!(unpack(cell.own()), (20_000, 12));
    assert_eq!(cell.quota_total(20_000), 42);
    assert_eq!(book.peer_words(7), vec![(peer, pack(20_000, 30))]);
}

#[test]
fn a_rate_guesses_what_busy_peers_admitted_until_they_stop() {
    let mut book = CounterBook::new(1);
    let cell = book.register(COUNTER, "r", CounterKind::Rate);
    let open = ClusterRate::new(1e9, u32::MAX).expect("rate");
    let take = |n| {
        for _ in 0..n {
            cell.take_rate(&open, SECOND).expect("open");
        }
    };
    let grow = |book: &mut CounterBook, word| {
        book.merge(&[Entry {
            counter: COUNTER,
            node: 2,
            word,
        }])
    };
    take(10);
    grow(&mut book, 10);
    assert_eq!(cell.rate_view(), 20, "nothing admitted here since");
    take(4);
    assert_eq!(
        cell.rate_view(),
        14 + 10 + 4,
        "a new peer is guessed as busy as this node"
    );
    // It grew by 2 while this node admitted 4: a half share, averaged with the last (one).
    grow(&mut book, 12);
    take(4);
    assert_eq!(cell.rate_view(), 18 + 12 + 3, "three quarters of 4");
    let mut out = Vec::new();
    for _ in 0..GUESS_SYNCS {
        book.sync(0, SECOND, 0, &mut out);
    }
    assert_eq!(
        cell.rate_view(),
        18 + 12,
        "a peer that stopped growing is not guessed"
    );
    grow(&mut book, 13);
    take(2);
    assert_eq!(cell.rate_view(), 20 + 13 + 1, "and is again once it grows");
}

#[test]
fn a_restarted_node_learning_the_counts_back_owes_nothing() {
    // A node restarts with an empty book and takes requests as its peers send it their whole
    // books (gossip does when a member comes up; one datagram in twenty is lost here) and
    // before the repair round would: what it learns is the cluster's past, not requests it
    // owes for. Under the limit nothing is refused; over it, the restart costs at most the
    // fresh bucket's burst and slack.
    for (demand, limit) in [(20.0, 100.0), (100.0, 100.0)] {
        let rate = ClusterRate::new(limit, 5).expect("rate");
        let mut c = Cluster::new(3, CounterKind::Rate, lossy(5), 10 * MS, 23);
        let before = run_rate(&mut c, rate, &[demand; 3], 10);
        c.restart(2);
        c.welcome(2);
        c.repair_slice = 0;
        let mut after = run_rate(&mut c, rate, &[demand; 3], 1);
        c.repair_slice = 4;
        after.extend(run_rate(&mut c, rate, &[demand; 3], 3));
        assert!(c.nodes[2].cell.own() >= 200, "learned back");
        if demand * 3.0 < limit {
            assert!(before[1..].iter().all(|&n| n == 60), "{before:?}");
            assert!(after.iter().all(|&n| n == 60), "{after:?}");
        } else {
            assert!(after[0] <= 100 + 5 + 2, "{after:?}");
            assert!(
                after[1..].iter().all(|&n| n.abs_diff(100) <= 2),
                "{after:?}"
            );
        }
    }
}

/// Each node's admissions over `seconds` of `demand` (its own count's growth).
fn per_node(c: &mut Cluster, rate: ClusterRate, demand: &[f64], seconds: u64) -> Vec<u64> {
    let before: Vec<u64> = c.nodes.iter().map(|n| n.cell.own()).collect();
    run_rate(c, rate, demand, seconds);
    c.nodes
        .iter()
        .zip(before)
        .map(|(n, b)| n.cell.own() - b)
        .collect()
}

#[test]
fn no_node_is_starved_when_load_comes_at_start_or_after_a_restart() {
    // Under saturation the node whose bucket holds the most credit takes what it is offered
    // while the others refuse theirs: buckets must agree on the line. Load right at start
    // (every node's first counts are new use), then a node restarted under that load.
    for sync_ms in [10, 100] {
        let limit = 1000.0;
        let rate = ClusterRate::new(limit, 100).expect("rate");
        let mut c = Cluster::new(3, CounterKind::Rate, lossy(sync_ms / 2), sync_ms * MS, 29);
        let demand = [2.0 * limit / 3.0; 3];
        let at_start = per_node(&mut c, rate, &demand, 10);
        // At least a fifth each (a third is even).
        let fair = |shares: &[u64], parts: u64| {
            let total: u64 = shares.iter().sum();
            shares.iter().all(|&n| n * parts >= total)
        };
        assert!(
            fair(&at_start, 5),
            "{sync_ms} ms, from the start: {at_start:?}"
        );
        c.restart(2);
        c.welcome(2);
        run_rate(&mut c, rate, &demand, 1);
        let after = per_node(&mut c, rate, &demand, 10);
        // Not yet even: the restarted node's line stays a little ahead of the others' and
        // it takes up to its whole demand (two thirds); but no node is starved.
        assert!(fair(&after, 10), "{sync_ms} ms, after a restart: {after:?}");
    }
}
