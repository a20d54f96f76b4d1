//! The gossip thread: one UDP socket carrying SWIM membership (foca, sans-io: it is handed
//! datagrams and timer events here and answers with datagrams to send and timers to set) and
//! the counter exchange (every `sync_interval`, this node's moved counters plus a slice of
//! the whole book, to every live member). Every datagram is sealed with the cluster secret;
//! one that does not verify is dropped and counted before anything reads it.
//!
//! Not a worker: it may block on its socket. It takes the book's lock once per sync and per
//! counter datagram.

use std::{
    net::{SocketAddr, UdpSocket},
    os::fd::RawFd,
    sync::{
        OnceLock,
        atomic::{AtomicI32, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use foca::{Foca, Identity, Notification, PostcardCodec, Runtime, State, Timer};
use serde::{Deserialize, Serialize};
use turnpike_core::{
    cluster::{Kind, Secret, WireError, node_key, wire},
    config::check_cluster::{ClusterSettings, read_secret},
};

use super::Locked;

/// A member as SWIM knows it: its name, where it listens, and when it started (a restarted
/// node is a new identity at the same address, and the newer one wins).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId {
    pub name: String,
    pub addr: SocketAddr,
    /// Milliseconds since 1970 when the process started (or renewed its identity).
    pub boot: u64,
}

impl Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(NodeId {
            boot: self.boot + 1,
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, other: &Self) -> bool {
        self.boot > other.boot
    }
}

/// What the status and metrics show of one member.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub name: String,
    pub addr: SocketAddr,
    /// `alive`, `suspect` or `dead`.
    pub state: &'static str,
    /// When a datagram from it last verified (`None`: never).
    pub last_seen: Option<Instant>,
}

/// The cluster's state for `/v1/status`, `/v1/cluster` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub node_name: String,
    pub advertise: Option<SocketAddr>,
    pub members: Vec<MemberView>,
}

/// Datagram counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent_datagrams: AtomicU64,
    pub sent_bytes: AtomicU64,
    pub received_datagrams: AtomicU64,
    pub received_bytes: AtomicU64,
    /// Dropped: the tag did not verify (wrong or no secret).
    pub dropped_bad_tag: AtomicU64,
    /// Dropped: not a cluster datagram, an unknown version, or a malformed payload.
    pub dropped_malformed: AtomicU64,
    /// Dropped: counts sent by another node under this node's `node_name` (two nodes with one
    /// name would add up to one node's usage).
    pub dropped_name_conflict: AtomicU64,
    /// Counter entries sent.
    pub sent_entries: AtomicU64,
}

pub fn counters() -> &'static Counters {
    static C: OnceLock<Counters> = OnceLock::new();
    C.get_or_init(Counters::default)
}

fn view_cell() -> &'static Locked<Option<ClusterView>> {
    static V: OnceLock<Locked<Option<ClusterView>>> = OnceLock::new();
    V.get_or_init(|| Locked::new(None))
}

/// The cluster's state; `None` when this node runs no cluster.
pub fn view() -> Option<ClusterView> {
    view_cell()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// A small PRNG for foca's random member picks, seeded from the operating system.
struct Rng(u64);

impl rand::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// What foca asked for while handling one event.
#[derive(Default)]
struct Asked {
    send: Vec<(SocketAddr, Vec<u8>)>,
    timers: Vec<(Instant, Timer<NodeId>)>,
    /// This node's name and address: another member under the same name is a mistake.
    me: Option<(String, SocketAddr)>,
    /// Members that came up: each is sent the whole book at once.
    up: Vec<SocketAddr>,
}

impl Runtime<NodeId> for Asked {
    fn notify(&mut self, n: Notification<'_, NodeId>) {
        match n {
            Notification::MemberUp(id) => match &self.me {
                Some((name, addr)) if *name == id.name && *addr != id.addr => {
                    tracing::error!(
                        node = %id.name, addr = %id.addr,
                        "another node uses this node's node_name: its counts are dropped \
                         here; give every node its own cluster.node_name"
                    )
                }
                _ => {
                    tracing::info!(node = %id.name, addr = %id.addr, "cluster member up");
                    self.up.push(id.addr);
                }
            },
            Notification::MemberDown(id) => {
                tracing::warn!(node = %id.name, addr = %id.addr, "cluster member down")
            }
            Notification::Defunct => tracing::warn!("this node was declared down by the cluster"),
            _ => {}
        }
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.send.push((to.addr, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.timers.push((Instant::now() + after, event));
    }
}

/// SWIM timings for a LAN: a dead node is suspected within about a second and declared dead
/// about two seconds later.
fn foca_config(seeds: usize) -> foca::Config {
    let mut c = foca::Config::simple();
    c.probe_period = Duration::from_millis(500);
    c.probe_rtt = Duration::from_millis(200);
    c.suspect_to_down_after = Duration::from_millis(1500);
    c.max_transmissions = std::num::NonZeroU8::new(6).unwrap_or(std::num::NonZeroU8::MIN);
    c.notify_down_members = true;
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: Duration::from_millis(200),
        num_members: std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN),
    });
    // Keeps knocking on seeds until someone answers (a seed that starts later is found).
    c.periodic_announce = Some(foca::PeriodicParams {
        frequency: Duration::from_secs(2),
        num_members: std::num::NonZeroUsize::new(seeds.max(1))
            .unwrap_or(std::num::NonZeroUsize::MIN),
    });
    c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: Duration::from_secs(5),
        num_members: std::num::NonZeroUsize::new(2).unwrap_or(std::num::NonZeroUsize::MIN),
    });
    c
}

/// Counters whose whole state (every node's word) one sync repeats at most, per second of
/// sync interval: what bounds the repair traffic of a large book.
const REPAIR_COUNTERS_PER_SECOND: usize = 2_000;

/// How many counters' whole state a sync of a book of `len` counters repeats: a full round
/// about once a second, or slower for books over [`REPAIR_COUNTERS_PER_SECOND`] counters (a
/// round of 10,000 counters takes 5 s). Deltas carry a node's whole word, so a lost one is
/// repaired by the next; the round repairs the last delta of a counter that stopped moving
/// and tells a (re)joining node the others' counts.
fn repair_slice(len: usize, interval: Duration) -> usize {
    let ms = interval.as_millis().clamp(1, 1_000) as usize;
    let per_second = len.div_ceil(1_000 / ms);
    let cap = (REPAIR_COUNTERS_PER_SECOND * ms).div_ceil(1_000);
    per_second.min(cap)
}

/// The gossip socket's descriptor while this process gossips (-1: none).
static SOCKET_FD: AtomicI32 = AtomicI32::new(-1);

/// The gossip socket, for a binary upgrade to hand to the new process. This process keeps
/// gossiping while it drains (its counts keep reaching the peers); the new one starts on the
/// same socket once it has the state directory, which is when this one has exited (without
/// the admin API, at once: then both read the socket for the drain's length, and a datagram
/// goes to either).
pub fn socket_fd() -> Option<RawFd> {
    let fd = SOCKET_FD.load(Relaxed);
    (fd >= 0).then_some(fd)
}

/// Binds the socket (or takes `inherited`, the socket of the process this one replaces, if it
/// is bound to `cluster.bind`), reads the secret and starts the gossip thread. Errors name the
/// field.
pub fn start(s: &ClusterSettings, inherited: Option<RawFd>) -> Result<(), String> {
    let secret_bytes =
        read_secret(&s.secret_file).map_err(|e| format!("cluster.secret_file: {e}"))?;
    let secret = Secret::new(&secret_bytes);
    // SAFETY: a descriptor handed over at exec, owned by this process alone.
    let taken =
        inherited.map(|fd| unsafe { <UdpSocket as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    let socket = match taken {
        Some(socket) if socket.local_addr().is_ok_and(|a| a == s.bind) => {
            tracing::info!(bind = %s.bind, "cluster: took the gossip socket over");
            socket
        }
        // Another address now: the old socket closes as it drops.
        _ => UdpSocket::bind(s.bind).map_err(|e| format!("cluster.bind: {}: {e}", s.bind))?,
    };
    SOCKET_FD.store(std::os::fd::AsRawFd::as_raw_fd(&socket), Relaxed);
    turnpike_core::cluster::registry::join(
        node_key(&s.node_name),
        s.sync_interval.as_nanos() as u64,
        &secret_bytes,
    );
    let boot = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let me = NodeId {
        name: s.node_name.clone(),
        addr: s.advertise,
        boot,
    };
    *view_cell().lock().unwrap_or_else(|p| p.into_inner()) = Some(ClusterView {
        node_name: s.node_name.clone(),
        advertise: Some(s.advertise),
        members: Vec::new(),
    });
    let settings = s.clone();
    std::thread::Builder::new()
        .name("turnpike-gossip".into())
        .spawn(move || run(settings, me, secret, socket))
        .map_err(|e| format!("cluster: cannot start the gossip thread: {e}"))?;
    tracing::info!(node = %s.node_name, bind = %s.bind, seeds = s.seeds.len(), "cluster gossip started");
    Ok(())
}

fn run(s: ClusterSettings, me: NodeId, secret: Secret, socket: UdpSocket) {
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let rng = Rng(u64::from_le_bytes(seed) | 1);
    let mut foca = Foca::new(me.clone(), foca_config(s.seeds.len()), rng, PostcardCodec);
    let mut asked = Asked {
        me: Some((me.name.clone(), me.addr)),
        ..Asked::default()
    };
    let my_key = node_key(&me.name);
    // When the last warnings about dropped datagrams were logged (at most one a minute each).
    let mut warned_bad_tag: Option<Instant> = None;
    let mut warned_conflict: Option<Instant> = None;
    let mut timers: Vec<(Instant, Timer<NodeId>)> = Vec::new();
    let mut last_seen: rustc_hash::FxHashMap<SocketAddr, Instant> = Default::default();
    let c = counters();
    let mut sealed = Vec::with_capacity(2048);
    let mut buf = vec![0u8; 65_536];
    let mut entries = Vec::new();
    let mut incoming = Vec::new();
    let mut next_sync = Instant::now();
    let mut next_view = Instant::now();
    // The seeds are knocked on at once, then every second until one answers.
    let mut next_announce = Instant::now();
    loop {
        // What foca asked for.
        for (addr, data) in asked.send.drain(..) {
            secret.seal(Kind::Membership, &data, &mut sealed);
            send(&socket, c, addr, &sealed);
        }
        timers.append(&mut asked.timers);
        let now = Instant::now();
        // Timers that are due.
        let mut i = 0;
        while i < timers.len() {
            if timers[i].0 <= now {
                let (_, t) = timers.swap_remove(i);
                let _ = foca.handle_timer(t, &mut asked);
            } else {
                i += 1;
            }
        }
        // Until a seed answers, knock (again).
        if now >= next_announce {
            next_announce = now + Duration::from_secs(1);
            if foca.num_members() == 0 {
                for &addr in &s.seeds {
                    if addr != me.addr {
                        let seed = NodeId {
                            name: String::new(),
                            addr,
                            boot: 0,
                        };
                        let _ = foca.announce(seed, &mut asked);
                    }
                }
            }
        }
        if now >= next_sync {
            next_sync = (next_sync + s.sync_interval).max(now);
            let epoch_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let me_key;
            {
                let mut book = super::book();
                me_key = book.me();
                let slice = repair_slice(book.len(), s.sync_interval);
                entries.clear();
                book.sync(epoch_ms, crate::traffic::mono_ns(now), slice, &mut entries);
            }
            if !entries.is_empty() {
                c.sent_entries.fetch_add(entries.len() as u64, Relaxed);
                let peers: Vec<SocketAddr> = foca.iter_members().map(|m| m.id().addr).collect();
                wire::encode_entries(me_key, &mut entries, 1400, |p| {
                    secret.seal(Kind::Counters, p, &mut sealed);
                    for &addr in &peers {
                        send(&socket, c, addr, &sealed);
                    }
                });
            }
        }
        // A member that came up (a restart, a new node) gets the whole book now: its own
        // count from before a restart and every peer's, before it admits much without them.
        for addr in std::mem::take(&mut asked.up) {
            let me_key;
            {
                let book = super::book();
                me_key = book.me();
                entries.clear();
                book.whole(&mut entries);
            }
            c.sent_entries.fetch_add(entries.len() as u64, Relaxed);
            wire::encode_entries(me_key, &mut entries, 1400, |p| {
                secret.seal(Kind::Counters, p, &mut sealed);
                send(&socket, c, addr, &sealed);
            });
        }
        if now >= next_view {
            next_view = now + Duration::from_millis(100);
            publish_view(&foca, &me, &last_seen);
        }
        // Wait for a datagram until the next sync or timer.
        let mut until = next_sync.min(next_view);
        if let Some(t) = timers.iter().map(|t| t.0).min() {
            until = until.min(t);
        }
        let wait = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_micros(200));
        let _ = socket.set_read_timeout(Some(wait));
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::debug!("cluster socket: {e}");
                continue;
            }
        };
        c.received_datagrams.fetch_add(1, Relaxed);
        c.received_bytes.fetch_add(n as u64, Relaxed);
        match secret.open(&buf[..n]) {
            Err(WireError::BadTag) => {
                c.dropped_bad_tag.fetch_add(1, Relaxed);
                if due(&mut warned_bad_tag) {
                    tracing::warn!(
                        %from,
                        "cluster datagrams that fail the secret check are dropped: does every \
                         node read the same secret (cluster.secret_file)?"
                    );
                }
            }
            Err(_) => {
                c.dropped_malformed.fetch_add(1, Relaxed);
            }
            Ok((Kind::Membership, payload)) => {
                last_seen.insert(from, Instant::now());
                if foca.handle_data(payload, &mut asked).is_err() {
                    c.dropped_malformed.fetch_add(1, Relaxed);
                }
            }
            Ok((Kind::Counters, payload)) => {
                last_seen.insert(from, Instant::now());
                incoming.clear();
                match wire::decode_entries(payload, &mut incoming) {
                    Ok(sender) if sender == my_key && from != me.addr => {
                        c.dropped_name_conflict.fetch_add(1, Relaxed);
                        if due(&mut warned_conflict) {
                            tracing::error!(
                                %from,
                                node = %me.name,
                                "counts from another node under this node's node_name dropped: \
                                 give every node its own cluster.node_name"
                            );
                        }
                    }
                    Ok(_) => {
                        super::book().merge(&incoming);
                    }
                    Err(_) => {
                        c.dropped_malformed.fetch_add(1, Relaxed);
                    }
                }
            }
        }
    }
}

/// Whether a warning last logged at `last` may be logged again (once a minute), marking it.
fn due(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)) {
        return false;
    }
    *last = Some(now);
    true
}

fn send(socket: &UdpSocket, c: &Counters, addr: SocketAddr, datagram: &[u8]) {
    if socket.send_to(datagram, addr).is_ok() {
        c.sent_datagrams.fetch_add(1, Relaxed);
        c.sent_bytes.fetch_add(datagram.len() as u64, Relaxed);
    }
}

fn publish_view(
    foca: &Foca<NodeId, PostcardCodec, Rng, foca::NoCustomBroadcast>,
    me: &NodeId,
    last_seen: &rustc_hash::FxHashMap<SocketAddr, Instant>,
) {
    let mut members: Vec<MemberView> = foca
        .iter_membership_state()
        .filter(|m| m.id().addr != me.addr)
        .map(|m| MemberView {
            name: m.id().name.clone(),
            addr: m.id().addr,
            state: match m.state() {
                State::Alive => "alive",
                State::Suspect => "suspect",
                State::Down => "dead",
            },
            last_seen: last_seen.get(&m.id().addr).copied(),
        })
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    // A restarted node shows once: its newest identity.
    members.dedup_by(|a, b| a.addr == b.addr);
    let mut v = view_cell().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = v.as_mut() {
        v.members = members;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_book_repeats_whole_each_second_and_a_large_one_within_its_budget() {
        let ms = Duration::from_millis;
        assert_eq!(repair_slice(0, ms(10)), 0);
        assert_eq!(repair_slice(150, ms(10)), 2, "150 counters in 100 syncs");
        assert_eq!(
            repair_slice(10_000, ms(10)),
            20,
            "2,000 a second: a 5 s round"
        );
        assert_eq!(repair_slice(10_000, ms(100)), 200);
        assert_eq!(repair_slice(500, ms(1_000)), 500);
        assert_eq!(repair_slice(1_000_000, ms(5_000)), 2_000);
    }
}
