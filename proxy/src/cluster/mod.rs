//! The cluster on the data plane's side: the process-wide [`turnpike_core::cluster::CounterBook`] every cluster-scoped
//! limit registers its counter in (while snapshots are built, never per request), the gossip
//! thread that runs SWIM membership (foca) and the counter exchange over one UDP socket
//! ([`gossip`]), and what `/v1/status`, `/v1/cluster` and `/metrics` show of it.
//!
//! Workers only ever touch the [`turnpike_core::cluster::SharedCounter`] atomics a route plan
//! holds; the book's lock is taken by snapshot builds and by the gossip thread.

pub mod gossip;

pub use turnpike_core::cluster::registry::{book, counter};

// A std Mutex: taken by the gossip thread and the status pages, never per request.
#[allow(clippy::disallowed_types)]
type Locked<T> = std::sync::Mutex<T>;

/// The cluster for `/v1/status` (`detail`: `/v1/cluster`, with each cluster-scoped counter's
/// usage per node). `None` when this node runs no cluster.
pub fn status(detail: bool) -> Option<serde_json::Value> {
    use serde_json::json;
    let v = gossip::view()?;
    let now = std::time::Instant::now();
    let members: Vec<_> = v
        .members
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "addr": m.addr.to_string(),
                "state": m.state,
                "last_seen_seconds_ago": m.last_seen.map(|t| thousandths(now.saturating_duration_since(t).as_secs_f64())),
            })
        })
        .collect();
    let c = gossip::counters();
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let mut out = json!({
        "node_name": v.node_name,
        "advertise": v.advertise.map(|a| a.to_string()),
        "members": members,
        "dropped_datagrams": {
            "bad_tag": ld(&c.dropped_bad_tag),
            "malformed": ld(&c.dropped_malformed),
            "name_conflict": ld(&c.dropped_name_conflict),
        },
        "sent_bytes": ld(&c.sent_bytes),
        "received_bytes": ld(&c.received_bytes),
    });
    if detail {
        let book = book();
        let me = book.me();
        let mut names: rustc_hash::FxHashMap<u64, &str> = Default::default();
        names.insert(me, &v.node_name);
        for m in &v.members {
            names.insert(turnpike_core::cluster::node_key(&m.name), &m.name);
        }
        let counters: Vec<_> = book
            .readings()
            .into_iter()
            .filter_map(|r| {
                let name = r.name.clone()?;
                // Rate counters are one cumulative word (window 0); quota words pack a
                // window, and only the latest one's counts add up to the total.
                let window = r.nodes.iter().map(|n| n.1).max().unwrap_or(0);
                let in_window = |w: u32, count: u32| if w == window { u64::from(count) } else { 0 };
                let total: u64 = r.nodes.iter().map(|&(_, w, n)| in_window(w, n)).sum();
                let mut nodes: Vec<_> = r
                    .nodes
                    .iter()
                    .map(|&(k, w, count)| {
                        let share = match total {
                            0 => 0.0,
                            t => thousandths(in_window(w, count) as f64 / t as f64),
                        };
                        json!({
                            "node": names.get(&k).map_or_else(|| format!("{k:016x}"), |n| (*n).to_owned()),
                            "window": w,
                            "count": count,
                            "share": share,
                        })
                    })
                    .collect();
                nodes.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
                Some(json!({ "name": name, "window": window, "total": total, "nodes": nodes }))
            })
            .collect();
        out["counters"] = json!(counters);
    }
    Some(out)
}

/// `x` rounded to three decimals, as the API shows seconds and shares.
fn thousandths(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The cluster's `/metrics` families (text exposition format); empty with no cluster.
pub fn metrics() -> String {
    use std::fmt::Write;
    let Some(v) = gossip::view() else {
        return String::new();
    };
    let c = gossip::counters();
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let now = std::time::Instant::now();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP turnpike_cluster_members Members of the cluster other than this node, by state."
    );
    let _ = writeln!(s, "# TYPE turnpike_cluster_members gauge");
    for state in ["alive", "suspect", "dead"] {
        let n = v.members.iter().filter(|m| m.state == state).count();
        let _ = writeln!(s, "turnpike_cluster_members{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        s,
        "# HELP turnpike_cluster_member_last_seen_seconds Seconds since a verified datagram from each member."
    );
    let _ = writeln!(s, "# TYPE turnpike_cluster_member_last_seen_seconds gauge");
    for m in &v.members {
        if let Some(t) = m.last_seen {
            let _ = writeln!(
                s,
                "turnpike_cluster_member_last_seen_seconds{{node=\"{}\",state=\"{}\"}} {:.3}",
                m.name,
                m.state,
                now.saturating_duration_since(t).as_secs_f64()
            );
        }
    }
    let _ = writeln!(
        s,
        "# HELP turnpike_cluster_dropped_datagrams Cluster datagrams dropped, by reason."
    );
    let _ = writeln!(s, "# TYPE turnpike_cluster_dropped_datagrams counter");
    for (reason, n) in [
        ("bad_tag", &c.dropped_bad_tag),
        ("malformed", &c.dropped_malformed),
        ("name_conflict", &c.dropped_name_conflict),
    ] {
        let _ = writeln!(
            s,
            "turnpike_cluster_dropped_datagrams_total{{reason=\"{reason}\"}} {}",
            ld(n)
        );
    }
    let _ = writeln!(
        s,
        "# HELP turnpike_cluster_gossip_bytes Bytes of cluster datagrams, by direction."
    );
    let _ = writeln!(s, "# TYPE turnpike_cluster_gossip_bytes counter");
    let _ = writeln!(
        s,
        "turnpike_cluster_gossip_bytes_total{{direction=\"sent\"}} {}",
        ld(&c.sent_bytes)
    );
    let _ = writeln!(
        s,
        "turnpike_cluster_gossip_bytes_total{{direction=\"received\"}} {}",
        ld(&c.received_bytes)
    );
    s
}

/// The step of a route throttle with `scope: cluster`: the shared counter named
/// `stage/<api>/<stage>/<route key>`, the same in every snapshot and on every node.
pub fn route_step(
    api: &str,
    stage: &str,
    route_key: &str,
    limit: turnpike_core::usage::Limit,
) -> turnpike_core::usage::RequestStep {
    let name = format!("stage/{api}/{stage}/{route_key}");
    turnpike_core::usage::RequestStep::ClusterThrottle(turnpike_core::cluster::registry::bucket(
        &name, &limit,
    ))
}
