//! Config snapshots: a checked [`Config`] compiled into what workers run (upstream addresses
//! resolved, mock responses pre-rendered), published to every worker without locks.
//!
//! The admin side builds a [`Snapshot`] (DNS lookups happen here, never on a worker) and calls
//! [`SnapshotCell::publish`]. A worker checks one relaxed atomic per request; when the
//! generation moved it takes the new snapshot. A request holds the snapshot it started with
//! until it ends, so reloads never change a request midway.

use std::{
    cell::{Cell, RefCell},
    net::{SocketAddr, ToSocketAddrs},
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use turnpike_core::{
    config::{Config, ConfigError, ConfigErrors, IntegrationKind, Mock},
    metrics::{MetricsRegistry, RouteCounters, SeriesKey, WorkerGauges},
    uri::PathTemplate,
};

use crate::h1::{encode, request::Limits};

/// What one worker runs: the checked config and its compiled integrations.
pub struct Snapshot {
    pub generation: u64,
    pub config: Config,
    /// `[api][integration]`.
    pub integrations: Vec<Vec<Compiled>>,
    pub limits: Limits,
    /// `[api][stage * routes + route]`: one counter slot per worker.
    pub series: Vec<Vec<Arc<[RouteCounters]>>>,
    /// Requests refused before a route was found (400, 404, 408, 413, 431 ...).
    pub unrouted: Arc<[RouteCounters]>,
    /// Per-worker gauges (connections, config generation).
    pub gauges: Arc<[WorkerGauges]>,
}

pub enum Compiled {
    Proxy(ProxyIntegration),
    Mock(MockResponse),
}

pub struct ProxyIntegration {
    pub timeout: Duration,
    pub preserve_host: bool,
    /// Per stage: the target, or why the stage cannot use this integration.
    pub stages: Vec<Result<ProxyTarget, String>>,
}

pub struct ProxyTarget {
    pub addr: SocketAddr,
    pub host_header: Box<[u8]>,
    pub path: Option<PathTemplate>,
    pub query: Option<Box<[u8]>>,
}

/// A mock's response, rendered once: status line and headers up to (not including) the Date
/// and Connection lines, then the body.
pub struct MockResponse {
    pub status: u16,
    pub head: Box<[u8]>,
    pub body: Box<[u8]>,
}

impl Snapshot {
    /// Compiles a checked config, taking each route's metric series from `metrics`. Resolves
    /// upstream host names (blocking: call off the workers).
    pub fn build(
        config: Config,
        generation: u64,
        metrics: &mut MetricsRegistry,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut errors = Vec::new();
        if let Some(level) = &config.gateway.log_level
            && let Err(e) = tracing_subscriber::EnvFilter::try_new(level)
        {
            errors.push(ConfigError::new(
                "gateway.log_level",
                format!("{level:?}: {e}"),
            ));
        }
        let mut integrations = Vec::with_capacity(config.apis.len());
        for (a, api) in config.apis.iter().enumerate() {
            let mut compiled = Vec::with_capacity(api.integrations.len());
            for integ in &api.integrations {
                let at = format!("apis[{a}].integrations.{}", integ.name);
                compiled.push(match &integ.kind {
                    IntegrationKind::Mock(m) => Compiled::Mock(render_mock(m)),
                    IntegrationKind::HttpProxy(p) => {
                        let stages = p
                            .targets
                            .iter()
                            .zip(&api.stages)
                            .map(|(t, stage)| {
                                let t = t.as_ref().map_err(Clone::clone)?;
                                let addr = resolve(&t.host, t.port).map_err(|e| {
                                    errors.push(ConfigError::new(
                                        format!("{at}.uri"),
                                        format!("stage {:?}: {e}", stage.name),
                                    ));
                                    e
                                })?;
                                Ok(ProxyTarget {
                                    addr,
                                    host_header: t.host_header.as_bytes().into(),
                                    path: t.path.clone(),
                                    query: t.query.as_ref().map(|q| q.as_bytes().into()),
                                })
                            })
                            .collect();
                        Compiled::Proxy(ProxyIntegration {
                            timeout: p.timeout,
                            preserve_host: p.preserve_host,
                            stages,
                        })
                    }
                });
            }
            integrations.push(compiled);
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let limits = Limits {
            max_head_bytes: config.gateway.max_header_bytes,
            max_headers: config.gateway.max_headers,
        };
        let series = config
            .apis
            .iter()
            .map(|api| {
                api.stages
                    .iter()
                    .flat_map(|stage| api.routes.iter().map(move |route| (stage, route)))
                    .map(|(stage, route)| {
                        metrics.series(SeriesKey {
                            api: api.name.clone(),
                            stage: stage.name.clone(),
                            route: route.key.clone(),
                        })
                    })
                    .collect()
            })
            .collect();
        Ok(Snapshot {
            generation,
            config,
            integrations,
            limits,
            series,
            unrouted: metrics.unrouted(),
            gauges: metrics.gauges(),
        })
    }

    /// The counters of route `route` in stage `stage` of API `api`.
    #[inline]
    pub fn route_counters(&self, api: usize, stage: usize, route: usize) -> &Arc<[RouteCounters]> {
        let routes = self.config.apis[api].routes.len();
        &self.series[api][stage * routes + route]
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("upstream host {host:?} did not resolve: {e}"))?
        .collect::<Vec<_>>();
    // Prefer IPv4 where a name has both: loopback backends commonly listen on 127.0.0.1 only.
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs
        .first()
        .copied()
        .ok_or_else(|| format!("upstream host {host:?} has no address"))
}

fn render_mock(m: &Mock) -> MockResponse {
    let mut head = Vec::new();
    encode::status_line(&mut head, m.status, encode::reason(m.status).as_bytes());
    for (k, v) in &m.headers {
        encode::header(&mut head, k.as_bytes(), v.as_bytes());
    }
    if m.status != 204 && m.status != 304 {
        encode::content_length(&mut head, m.body.len() as u64);
    }
    MockResponse {
        status: m.status,
        head: head.into(),
        body: m.body.as_bytes().into(),
    }
}

/// The published snapshot, shared by all workers.
pub struct SnapshotCell {
    current: ArcSwap<Snapshot>,
    generation: AtomicU64,
}

impl SnapshotCell {
    pub fn new(first: Snapshot) -> SnapshotCell {
        let generation = AtomicU64::new(first.generation);
        SnapshotCell {
            current: ArcSwap::from_pointee(first),
            generation,
        }
    }

    /// Makes `next` the snapshot every worker picks up before its next request.
    pub fn publish(&self, next: Snapshot) {
        let generation = next.generation;
        self.current.store(Arc::new(next));
        self.generation.store(generation, Ordering::Release);
    }

    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A worker's hold on a published snapshot. Requests clone the `Rc` around it, never the
/// `Arc` inside: the per-request count stays on this core, no cross-core cache-line traffic.
pub struct WorkerHeld(Arc<Snapshot>);

impl std::ops::Deref for WorkerHeld {
    type Target = Snapshot;
    #[inline]
    fn deref(&self) -> &Snapshot {
        &self.0
    }
}

/// What a request holds for its whole life: the snapshot it started with.
pub type SnapshotRef = Rc<WorkerHeld>;

/// A worker's view of the published snapshot: one relaxed load per request in the common case.
pub struct LocalSnapshot {
    cell: Arc<SnapshotCell>,
    seen: Cell<u64>,
    current: RefCell<SnapshotRef>,
}

impl LocalSnapshot {
    pub fn new(cell: Arc<SnapshotCell>) -> LocalSnapshot {
        let snap = cell.load();
        LocalSnapshot {
            seen: Cell::new(snap.generation),
            current: RefCell::new(Rc::new(WorkerHeld(snap))),
            cell,
        }
    }

    /// The snapshot for a new request.
    #[inline]
    pub fn get(&self) -> SnapshotRef {
        if self.cell.generation.load(Ordering::Relaxed) != self.seen.get() {
            let snap = self.cell.load();
            self.seen.set(snap.generation);
            *self.current.borrow_mut() = Rc::new(WorkerHeld(snap));
        }
        self.current.borrow().clone()
    }

    /// Generation this worker last picked up.
    pub fn generation(&self) -> u64 {
        self.seen.get()
    }
}
