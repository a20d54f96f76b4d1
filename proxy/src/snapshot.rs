//! Config snapshots: a checked [`Config`] compiled into what workers run (one
//! [`RoutePlan`] per api, stage and route: upstream addresses resolved, mock responses
//! pre-rendered), published to every worker without locks.
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
};

use arc_swap::ArcSwap;
use turnpike_core::{
    access_log::LogDestination,
    config::{Api, Config, ConfigError, ConfigErrors, IntegrationKind, Mock, Stage, UpstreamTls},
    metrics::{MetricsRegistry, SeriesKey, WorkerGauges},
    uri::UpstreamTarget,
    usage::{stage_uid, steps},
};

use turnpike_core::config::ApiKeySource;

use crate::{
    access_log::LogSinks,
    auth::{PlanAuth, compile::ApiAuth},
    exchange::StageLog,
    h1::{encode, request::Limits},
    plan::{FunctionPlan, MockResponse, PlanIntegration, ProxyPlan, ProxyTarget, RoutePlan},
    respond::Policies,
    tls::{client::TlsClient, server::TlsServer},
    traffic::{account_bucket, route_bucket},
    upstream::pool::PoolKey,
};

/// What one worker runs: the checked config and its route plans.
pub struct Snapshot {
    pub generation: u64,
    pub config: Config,
    /// Every route plan: per API and stage, its routes' plans in route order, then the plan of
    /// requests that match no route there.
    plans: Vec<RoutePlan>,
    /// `[api][stage]`: where that stage's plans start in `plans`.
    plan_base: Vec<Vec<u32>>,
    /// Requests no API or stage serves (404), and requests refused before routing.
    pub unrouted: RoutePlan,
    /// Request head limits.
    pub limits: Limits,
    /// Upstream response head limits.
    pub upstream_limits: Limits,
    /// What `https://` listeners serve; `None` when no certificate is configured.
    pub tls: Option<Arc<TlsServer>>,
    /// Per-worker gauges (connections, config generation).
    pub gauges: Arc<[WorkerGauges]>,
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
        let account = config.gateway.throttle.map(account_bucket);
        let mut plans = Vec::new();
        let mut plan_base = Vec::with_capacity(config.apis.len());
        let mut api_policies = Vec::with_capacity(config.apis.len());
        for (a, api) in config.apis.iter().enumerate() {
            let policies = Arc::new(Policies::for_api(api));
            api_policies.push(policies.clone());
            let integrations = compile_integrations(a, api, &config.functions, &mut errors);
            let auths = ApiAuth::compile(a, api, &config.auth, &config.functions, &mut errors);
            let resource_policy = api.resource_policy.clone().map(Arc::new);
            let mut bases = Vec::with_capacity(api.stages.len());
            let api_name: Arc<str> = api.name.as_str().into();
            for (s, stage) in api.stages.iter().enumerate() {
                bases.push(plans.len() as u32);
                let stage_name: Arc<str> = stage.name.as_str().into();
                let stage_uid = stage_uid(&api.name, &stage.name);
                let workers = metrics.workers();
                let plan = |route: Option<u32>, integration, counters, steps, auth| RoutePlan {
                    api: a as u32,
                    stage: s as u32,
                    route,
                    route_key: match route {
                        Some(r) => api.routes[r as usize].key.as_str().into(),
                        None => "-".into(),
                    },
                    stage_name: stage_name.clone(),
                    api_name: api_name.clone(),
                    integration,
                    body_limit: api.max_body_bytes,
                    counters,
                    policies: policies.clone(),
                    access_log: None,
                    steps,
                    stage_uid,
                    auth,
                    resource_policy: resource_policy.clone(),
                    api_key_from_authorizer: api.api_key_source == ApiKeySource::Authorizer,
                    validation: route.and_then(|r| api.routes[r as usize].validation.clone()),
                    mapping: route.and_then(|r| {
                        api.integrations[api.routes[r as usize].integration as usize]
                            .mapping
                            .clone()
                    }),
                    transform: route.and_then(|r| {
                        api.integrations[api.routes[r as usize].integration as usize]
                            .transform
                            .clone()
                    }),
                    cache: route.zip(stage.cache.as_ref()).and_then(|(r, sc)| {
                        let own = api.routes[r as usize].cache.as_ref();
                        crate::cache::CachePlan::compile(&api.name, &stage.name, sc, own, workers)
                    }),
                };
                let mut stage_plans = Vec::with_capacity(api.routes.len() + 1);
                for (r, route) in api.routes.iter().enumerate() {
                    let integration = match &integrations[route.integration as usize] {
                        Compiled::Mock(m) => PlanIntegration::Mock(m.clone()),
                        Compiled::Function(f) => PlanIntegration::Function(f.clone()),
                        Compiled::Proxy(per_stage) => match &per_stage[s] {
                            Ok(p) => PlanIntegration::Proxy(p.clone()),
                            Err(why) => PlanIntegration::Misconfigured(why.clone()),
                        },
                    };
                    let counters = metrics.series(SeriesKey {
                        api: api.name.clone(),
                        stage: stage.name.clone(),
                        route: route.key.clone(),
                    });
                    let scope = stage
                        .route_throttle_scope
                        .get(r)
                        .copied()
                        .unwrap_or_default();
                    let route_step = stage.route_throttle[r].map(|limit| {
                        if scope == turnpike_core::cluster::Scope::Cluster {
                            crate::cluster::route_step(&api.name, &stage.name, &route.key, limit)
                        } else {
                            steps::RequestStep::Throttle(route_bucket(
                                &api.name,
                                &stage.name,
                                &route.key,
                                limit,
                            ))
                        }
                    });
                    let steps =
                        steps::compile_steps(route.api_key_required, account.as_ref(), route_step);
                    let auth = auths.for_route(s, route);
                    stage_plans.push(plan(Some(r as u32), integration, counters, steps, auth));
                }
                // Requests in this stage that match no route keep its API's policies; their
                // metrics go to the unrouted series, as before routing existed.
                stage_plans.push(plan(
                    None,
                    PlanIntegration::NoRoute,
                    metrics.unrouted(),
                    Box::default(),
                    PlanAuth::None,
                ));
                plans.extend(stage_plans);
            }
            plan_base.push(bases);
        }
        let tls = TlsServer::build(&config.tls)
            .map_err(|e| errors.push(ConfigError::new("gateway.tls", e)))
            .ok()
            .flatten()
            .map(Arc::new);
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let limits = Limits {
            max_head_bytes: config.gateway.max_header_bytes,
            max_headers: config.gateway.max_headers,
        };
        let upstream_limits = Limits {
            max_head_bytes: config.gateway.upstream.max_response_header_bytes,
            max_headers: config.gateway.upstream.max_response_headers,
        };
        // Requests no API's stage serves, and requests refused before they could be routed
        // (a head that does not parse, or arrives too slowly), are answered with the default
        // API's gateway responses (the API serving Hosts no domain matches) and logged in its
        // first stage's access log (see `open_access_logs`).
        let default = config.default_api;
        let unrouted = RoutePlan {
            api: u32::MAX,
            stage: 0,
            route: None,
            route_key: "-".into(),
            stage_name: default
                .and_then(|d| config.apis[d].stages.first())
                .map_or("-".into(), |s| s.name.as_str().into()),
            api_name: default.map_or("-".into(), |d| config.apis[d].name.as_str().into()),
            integration: PlanIntegration::NoRoute,
            body_limit: 0,
            counters: metrics.unrouted(),
            policies: default.map_or_else(
                || Arc::new(Policies::default()),
                |d| api_policies[d].clone(),
            ),
            access_log: None,
            steps: Box::default(),
            stage_uid: u32::MAX,
            auth: PlanAuth::None,
            resource_policy: None,
            api_key_from_authorizer: false,
            validation: None,
            mapping: None,
            transform: None,
            cache: None,
        };
        Ok(Snapshot {
            generation,
            tls,
            config,
            plans,
            plan_base,
            unrouted,
            limits,
            upstream_limits,
            gauges: metrics.gauges(),
        })
    }

    /// The stage a plan serves (`None` for the plan of requests no API serves).
    #[inline]
    pub fn stage_of(&self, plan: &RoutePlan) -> Option<&Stage> {
        self.config
            .apis
            .get(plan.api as usize)
            .and_then(|a| a.stages.get(plan.stage as usize))
    }

    /// The plan of route `route` (or of no route, `None`) in stage `stage` of API `api`.
    #[inline]
    pub fn plan(&self, api: usize, stage: usize, route: Option<usize>) -> &RoutePlan {
        let routes = self.config.apis[api].routes.len();
        let base = self.plan_base[api][stage] as usize;
        &self.plans[base + route.unwrap_or(routes)]
    }

    /// Connects each stage's access log to its writer, opening destinations not open yet
    /// (writers are kept by destination across reloads). Not done by [`Snapshot::build`], so
    /// `turnpike check` opens nothing.
    ///
    /// Errors: a destination this process cannot write (a missing directory, no permission,
    /// no syslog socket), with the field path, so a config that would drop every line is
    /// refused instead of served.
    pub fn open_access_logs(&mut self, sinks: &LogSinks) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut logs: Vec<Vec<Option<Arc<StageLog>>>> = Vec::new();
        for (a, api) in self.config.apis.iter().enumerate() {
            let mut per_stage = Vec::new();
            for (s, stage) in api.stages.iter().enumerate() {
                per_stage.push(stage.access_log.as_ref().and_then(|l| {
                    if let Err(e) = probe(&l.destination) {
                        errors.push(ConfigError::new(
                            format!("apis[{a}].stages[{s}].access_log.destination"),
                            e,
                        ));
                        return None;
                    }
                    Some(Arc::new(StageLog {
                        format: l.format.clone(),
                        sink: sinks.get_or_open(&l.destination),
                    }))
                }));
            }
            logs.push(per_stage);
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        for plan in &mut self.plans {
            plan.access_log = logs[plan.api as usize][plan.stage as usize].clone();
        }
        // Requests refused before routing are logged where the default API's first stage
        // logs (see `unrouted`).
        if let Some(d) = self.config.default_api
            && let Some(first) = logs[d].first()
        {
            self.unrouted.access_log = first.clone();
        }
        Ok(())
    }
}

/// An API's integrations compiled: mocks rendered, proxies resolved per stage.
enum Compiled {
    Proxy(Vec<Result<Arc<ProxyPlan>, Arc<str>>>),
    Mock(Arc<MockResponse>),
    Function(Arc<FunctionPlan>),
}

fn compile_integrations(
    a: usize,
    api: &Api,
    functions: &[turnpike_core::config::FunctionSpec],
    errors: &mut Vec<ConfigError>,
) -> Vec<Compiled> {
    let mut compiled = Vec::with_capacity(api.integrations.len());
    for integ in &api.integrations {
        let at = format!("apis[{a}].integrations.{}", integ.name);
        compiled.push(match &integ.kind {
            IntegrationKind::Mock(m) => Compiled::Mock(Arc::new(render_mock(m))),
            IntegrationKind::Function(f) => Compiled::Function(Arc::new(FunctionPlan {
                function: crate::function::handle(&functions[f.index as usize], f.index, errors),
                format: f.format,
            })),
            IntegrationKind::HttpProxy(p) => Compiled::Proxy(
                p.targets
                    .iter()
                    .zip(&api.stages)
                    .map(|(t, stage)| {
                        let t = t.as_ref().map_err(|e| Arc::from(e.as_str()))?;
                        let target = proxy_target(&at, t, p.tls.as_ref(), stage, errors)?;
                        Ok(Arc::new(ProxyPlan {
                            target,
                            timeout: p.timeout,
                            preserve_host: p.preserve_host,
                            method: p.method.as_deref().map(Box::from),
                        }))
                    })
                    .collect(),
            ),
        });
    }
    compiled
}

/// An upstream target of stage `stage` made ready to connect to: its address resolved and,
/// for `https://`, its TLS client built (`tls`: the integration's `tls_config`). Errors are
/// pushed with the field path (`at` names the integration or authorizer) and returned.
pub(crate) fn proxy_target(
    at: &str,
    t: &UpstreamTarget,
    tls: Option<&UpstreamTls>,
    stage: &Stage,
    errors: &mut Vec<ConfigError>,
) -> Result<ProxyTarget, Arc<str>> {
    let field = format!("{at}.uri");
    target_for(&field, t, tls, Some(stage), errors)
}

/// [`proxy_target`] for a target that belongs to no stage (a remote function's endpoint: no
/// client certificate); `field` names the URI's field.
pub(crate) fn target_for(
    field: &str,
    t: &UpstreamTarget,
    tls: Option<&UpstreamTls>,
    stage: Option<&Stage>,
    errors: &mut Vec<ConfigError>,
) -> Result<ProxyTarget, Arc<str>> {
    let label = |e: &str| match stage {
        Some(stage) => format!("stage {:?}: {e}", stage.name),
        None => e.to_owned(),
    };
    let addr = resolve(&t.host, t.port).map_err(|e| {
        errors.push(ConfigError::new(field, label(&e)));
        Arc::from(e.as_str())
    })?;
    let tls = match t.tls {
        false => None,
        true => {
            let settings = tls.cloned().unwrap_or_default();
            let cert = stage.and_then(|s| s.client_certificate.as_ref().map(|(_, c)| c));
            let client = TlsClient::build(&t.host, &settings, cert).map_err(|e| {
                let tls_field = match field.strip_suffix(".uri") {
                    Some(at) => format!("{at}.tls_config"),
                    None => field.to_owned(),
                };
                errors.push(ConfigError::new(tls_field, label(&e)));
                Arc::from(e.as_str())
            })?;
            Some((client, tls_identity(&t.host, &settings, stage)))
        }
    };
    let pool_key = PoolKey {
        addr,
        tls: tls.as_ref().map_or(0, |(_, id)| *id),
    };
    Ok(ProxyTarget {
        addr,
        tls: tls.map(|(client, _)| client),
        pool_key,
        host_header: t.host_header.as_bytes().into(),
        path: t.path.clone(),
        query: t.query.as_ref().map(|q| q.as_bytes().into()),
    })
}

/// A hash of what shapes a backend TLS handshake (name, trust, client certificate): the
/// upstream pool's key beside the address, stable across reloads. Never 0 (plain TCP's key).
fn tls_identity(host: &str, tls: &UpstreamTls, stage: Option<&Stage>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    tls.server_name.as_deref().unwrap_or(host).hash(&mut h);
    tls.insecure_skip_verification.hash(&mut h);
    if let Some(bundle) = &tls.ca_bundle {
        for root in &bundle.roots {
            root.as_ref().hash(&mut h);
        }
    }
    if let Some((_, cert)) = stage.and_then(|s| s.client_certificate.as_ref()) {
        cert.details.fingerprint_sha256.hash(&mut h);
    }
    h.finish() | 1
}

/// Whether this process can write to an access log destination: a file opened for append
/// (created if missing; a FIFO nobody reads yet is fine), or the syslog socket reachable.
fn probe(dest: &LogDestination) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    match dest {
        LogDestination::File(path) => {
            match std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
            {
                Ok(_) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(()),
                Err(e) => Err(format!("cannot open {} for appending: {e}", path.display())),
            }
        }
        LogDestination::Stdout => Ok(()),
        LogDestination::Syslog => {
            let sock =
                std::os::unix::net::UnixDatagram::unbound().map_err(|e| format!("syslog: {e}"))?;
            sock.connect(crate::access_log::SYSLOG_PATH).map_err(|e| {
                format!(
                    "syslog: cannot reach {}: {e}",
                    crate::access_log::SYSLOG_PATH
                )
            })
        }
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
        headers: m.headers.clone(),
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
