//! The `cluster:` section: how this node joins its peers (see [`crate::cluster`]).
//!
//! ```yaml
//! cluster: { node_name: gw-1, bind: "0.0.0.0:7946", seeds: ["10.0.0.2:7946"],
//!            secret_file: /etc/turnpike/cluster.secret, sync_interval_ms: 10 }
//! ```
//!
//! Read once at start: a change takes a restart (a config applied later through the admin
//! API may carry another section; the running gossip keeps the one it started with).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::check::Checker;

/// `cluster:` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// This node's name, unique in the cluster and the same across restarts: usage counted
    /// here is known by it.
    pub node_name: String,
    /// The UDP address gossip listens on (default `0.0.0.0:7946`).
    #[serde(default = "default_bind")]
    pub bind: String,
    /// The address peers reach this node at (default: `bind`; required when `bind` is a
    /// wildcard address such as `0.0.0.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// Where to find the cluster: `IP:port` of one or more other nodes. None for the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<String>,
    /// A file holding the shared secret that authenticates every datagram (at least 16
    /// bytes once surrounding white space is trimmed). The same on every node.
    pub secret_file: String,
    /// How often usage is sent to peers, in milliseconds (default 10).
    #[serde(default = "default_sync")]
    pub sync_interval_ms: u64,
}

fn default_bind() -> String {
    "0.0.0.0:7946".into()
}

fn default_sync() -> u64 {
    10
}

/// The checked section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    pub node_name: String,
    pub bind: SocketAddr,
    /// The address peers reach this node at.
    pub advertise: SocketAddr,
    pub seeds: Vec<SocketAddr>,
    pub secret_file: String,
    pub sync_interval: std::time::Duration,
}

impl Checker {
    pub(super) fn cluster(&mut self, c: &ClusterFile) -> Option<ClusterSettings> {
        let before = self.error_count();
        if !super::check::is_name(&c.node_name) {
            self.err(
                "cluster.node_name",
                format!(
                    "{:?} is not a node name (1 to 128 letters, digits, '-', '_', '.')",
                    c.node_name
                ),
            );
        }
        let bind = c.bind.parse::<SocketAddr>().map_err(|_| {
            self.err(
                "cluster.bind",
                format!("{:?} is not an IP:port address", c.bind),
            )
        });
        let advertise = match (&c.advertise, &bind) {
            (Some(a), _) => a
                .parse::<SocketAddr>()
                .ok()
                .filter(|a| !a.ip().is_unspecified())
                .or_else(|| {
                    self.err(
                        "cluster.advertise",
                        format!("{a:?} is not an IP:port address peers can reach"),
                    );
                    None
                }),
            (None, Ok(b)) if b.ip().is_unspecified() => {
                self.err(
                    "cluster.advertise",
                    format!("required: bind {b} does not say where peers reach this node"),
                );
                None
            }
            (None, b) => b.ok(),
        };
        let mut seeds = Vec::new();
        for (i, s) in c.seeds.iter().enumerate() {
            match s.parse::<SocketAddr>() {
                Ok(a) => seeds.push(a),
                Err(_) => self.err(
                    format!("cluster.seeds[{i}]"),
                    format!("{s:?} is not an IP:port address"),
                ),
            }
        }
        if c.secret_file.trim().is_empty() {
            self.err(
                "cluster.secret_file",
                "a file holding the cluster's shared secret is required",
            );
        } else if let Err(e) = read_secret(&c.secret_file) {
            self.err("cluster.secret_file", e);
        }
        self.range("cluster.sync_interval_ms", c.sync_interval_ms, 1, 10_000);
        if self.error_count() != before {
            return None;
        }
        Some(ClusterSettings {
            node_name: c.node_name.clone(),
            bind: bind.ok()?,
            advertise: advertise?,
            seeds,
            secret_file: c.secret_file.clone(),
            sync_interval: std::time::Duration::from_millis(c.sync_interval_ms),
        })
    }
}

/// Reads a cluster secret file: its content with surrounding white space (a final newline)
/// trimmed, at least 16 bytes (`openssl rand -hex 32 > cluster.secret` makes one). Errors say
/// what was wrong, for `cluster.secret_file`.
pub fn read_secret(path: &str) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let secret = raw.trim_ascii();
    if secret.len() < 16 {
        return Err(format!(
            "{path}: the cluster secret must be at least 16 bytes, not {}",
            secret.len()
        ));
    }
    Ok(secret.to_vec())
}
