//! The checked model: what the data plane runs. Built only by [`super::check`], so every
//! reference in it resolves and every template renders (or carries the reason it cannot).

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use rustc_hash::FxHashMap;

use super::{ConfigError, Workers};
use crate::{
    domain::DomainTable,
    route::RouteTable,
    tls::{Certificate, SecurityPolicy, Truststore},
    uri::UpstreamTarget,
};

#[derive(Debug)]
pub struct Config {
    pub gateway: Gateway,
    pub admin: Admin,
    pub apis: Vec<Api>,
    pub domains: DomainTable,
    /// The API for requests whose Host matches no domain.
    pub default_api: Option<usize>,
    /// What `https://` listeners present, per server name.
    pub tls: TlsConfig,
    /// Region, account, trusted proxies and IAM credentials.
    pub auth: crate::auth::model::AuthSettings,
    /// The functions the gateway runs.
    pub functions: Vec<FunctionSpec>,
    /// Problems that do not stop the config from serving (shown by `turnpike check`).
    pub warnings: Vec<ConfigError>,
    /// The `cluster:` section, if any.
    pub cluster: Option<super::check_cluster::ClusterSettings>,
}

#[derive(Debug, Clone)]
pub struct Gateway {
    pub listen: Vec<Listener>,
    pub workers: Workers,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub upstream: UpstreamPolicy,
    pub log_level: Option<String>,
    /// The account-level throttle (`None`: off).
    pub throttle: Option<crate::usage::Limit>,
}

/// A listening address, and whether it speaks TLS (`https://` in `gateway.listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tls {
            write!(f, "https://{}", self.addr)
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

/// TLS for `https://` listeners, checked: every certificate parsed, matching its key, in date
/// and covering the names it serves.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// Certificates by the name the config uses (a `certificates[]` name or a stored id).
    pub certificates: Vec<(String, Arc<Certificate>)>,
    /// For server names no domain claims, and for clients that send none (`gateway.tls`).
    pub default: Option<DomainTls>,
    /// Domain name (exact, or `*.` wildcard) -> what its handshakes get.
    pub domains: Vec<(String, DomainTls)>,
}

/// What a handshake for one server name gets.
#[derive(Debug, Clone)]
pub struct DomainTls {
    /// Index into [`TlsConfig::certificates`].
    pub certificate: u32,
    pub policy: SecurityPolicy,
    /// Mutual TLS: the CAs a client certificate must chain to.
    pub truststore: Option<Arc<Truststore>>,
}

/// How an `https://` backend is verified and what the gateway presents to it.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTls {
    /// The name verified and sent as SNI; `None`: the URI's host.
    pub server_name: Option<String>,
    /// CAs trusted instead of the system roots.
    pub ca_bundle: Option<Arc<Truststore>>,
    /// Accept any certificate (test backends).
    pub insecure_skip_verification: bool,
}

/// The admin API's settings, checked.
#[derive(Debug, Clone)]
pub struct Admin {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub token_file: PathBuf,
    pub state_dir: PathBuf,
    /// Whether `token_file` and `state_dir` are the built-in defaults (a non-root run may
    /// then fall back to a directory it can write).
    pub default_paths: bool,
    pub metrics_public: bool,
    pub history: usize,
}

pub const DEFAULT_TOKEN_FILE: &str = "/etc/turnpike/admin.token";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/turnpike";

#[derive(Debug, Clone)]
pub struct UpstreamPolicy {
    pub connect_timeout: Duration,
    pub max_idle_per_core: usize,
    pub idle_timeout: Duration,
    /// Upstream response head limits (bytes, fields).
    pub max_response_header_bytes: usize,
    pub max_response_headers: usize,
}

pub struct Api {
    pub name: String,
    pub max_body_bytes: u64,
    pub integrations: Vec<Integration>,
    pub routes: Vec<Route>,
    /// Route key -> index into `routes`.
    pub table: RouteTable<u32>,
    pub stages: Vec<Stage>,
    pub cors: Option<crate::cors::CorsPolicy>,
    /// Overridden gateway responses, checked.
    pub gateway_responses: Vec<(
        crate::gateway_response::ResponseType,
        crate::gateway_response::GatewayResponseFile,
    )>,
    pub(crate) default_stage: Option<u32>,
    pub(crate) stage_by_name: FxHashMap<Box<[u8]>, u32>,
    /// The API's authorizers, in name order (routes point at them by index).
    pub authorizers: Vec<crate::auth::model::Authorizer>,
    /// Who may call the API by source address; `None`: anyone.
    pub resource_policy: Option<crate::auth::policy::ResourcePolicy>,
    /// Where `api_key_required` routes read the API key.
    pub api_key_source: super::file::ApiKeySource,
    /// A WebSocket API's routes and settings; `None`: an HTTP API.
    pub websocket: Option<Arc<crate::websocket::api::WebsocketApi>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("name", &self.name)
            .field("routes", &self.routes)
            .field("stages", &self.stages)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// The key as written (`GET /users/{id}`).
    pub key: String,
    pub integration: u32,
    /// AWS `apiKeyRequired`.
    pub api_key_required: bool,
    /// How requests to the route are authorized.
    pub auth: crate::auth::model::RouteAuth,
    /// Its request validation; `None`: nothing is validated.
    pub validation: Option<Arc<crate::validation::RequestValidation>>,
    /// Its own cache settings (`routes[].cache`); `None`: the stage's defaults.
    pub cache: Option<crate::cache::RouteCache>,
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub variables: BTreeMap<String, String>,
    pub access_log: Option<AccessLog>,
    /// The client certificate presented to `https://` backends: (id, certificate).
    pub client_certificate: Option<(String, Arc<Certificate>)>,
    /// Per route (same index as `Api::routes`): the route's throttle on this stage, from
    /// `route_settings` or else the stage's `throttle`; `None`: not throttled here.
    pub route_throttle: Vec<Option<crate::usage::Limit>>,
    /// The stage cache; `None`: not enabled. A TTL of 0 (the stage's or a route's) caches
    /// nothing on the routes it applies to.
    pub cache: Option<crate::cache::StageCache>,
    /// Per route (same index): whether its throttle holds per node or for the cluster.
    pub route_throttle_scope: Vec<crate::cluster::Scope>,
}

/// A stage's access log settings, checked.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub destination: crate::access_log::LogDestination,
    pub format: crate::access_log::AccessLogFormat,
}

#[derive(Debug, Clone)]
pub struct Integration {
    pub name: String,
    pub kind: IntegrationKind,
    /// Its parameter mapping; `None`: requests and responses pass unchanged.
    pub mapping: Option<Arc<crate::mapping::ParameterMapping>>,
    /// `http` and templated `mock` integrations: request templates and integration
    /// responses. `None`: a proxy integration (or a plain mock).
    pub transform: Option<Arc<crate::transform::Transform>>,
}

#[derive(Debug, Clone)]
pub enum IntegrationKind {
    HttpProxy(HttpProxy),
    Mock(Mock),
    Function(FunctionIntegration),
}

/// A `function` integration: which function, and the event's shape.
#[derive(Debug, Clone)]
pub struct FunctionIntegration {
    /// The function's name (an ARN in the document resolves to its last part).
    pub function: String,
    /// Index into [`Config::functions`].
    pub index: u32,
    pub format: crate::auth::request_authorizer::PayloadFormat,
}

/// A function the gateway runs (checked `functions[]` entry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionSpec {
    pub name: String,
    /// `arn:aws:lambda:{region}:{account}:function:{name}` (the gateway's region and account):
    /// what runtimes see as the invoked function's ARN.
    pub arn: String,
    /// The gateway's region (`AWS_REGION` of the runtimes).
    pub region: String,
    pub command: Vec<String>,
    pub working_dir: Option<String>,
    pub environment: Vec<(String, String)>,
    pub timeout: Duration,
    /// Data memory limit per process, bytes (`RLIMIT_DATA`).
    pub memory_bytes: u64,
    pub concurrency: u32,
    pub queue: u32,
    /// Set for a remote function (`invoke_uri`): no processes are run.
    pub remote: Option<RemoteFunction>,
}

/// A function reached over Lambda's Invoke API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteFunction {
    /// The endpoint (`path` and `query` unset).
    pub target: crate::uri::UpstreamTarget,
    /// The request-target: `/2015-03-31/functions/{FunctionName}/invocations`, encoded.
    pub path: String,
    /// What signs the calls, and the region they are signed for.
    pub signing: Option<(crate::auth::sigv4::SigningKey, String)>,
}

#[derive(Debug, Clone)]
pub struct HttpProxy {
    pub uri: String,
    /// `http` integrations: the method sent instead of the request's.
    pub method: Option<String>,
    pub timeout: Duration,
    pub preserve_host: bool,
    /// Set for `https://` URIs.
    pub tls: Option<UpstreamTls>,
    /// Per stage (same index as `Api::stages`): the rendered target, or why this stage cannot
    /// use the integration (a stage variable it does not define): requests there get a 500.
    pub targets: Vec<Result<UpstreamTarget, String>>,
}

#[derive(Debug, Clone)]
pub struct Mock {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub const DEFAULT_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);
