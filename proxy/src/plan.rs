//! Route plans: what a request runs once it is routed, compiled per (api, stage, route) when a
//! snapshot is built. A plan holds the integration, the body limit, the counters and the API's
//! policies (gateway responses, CORS) and the stage's access log, so the request path looks
//! nothing up by name and a route with no policy configured pays nothing for policies.
//!
//! State that must outlive a reload is never owned by a plan: counters come from the metrics
//! registry by (api, stage, route) names, access log writers from the sink registry by
//! destination. A plan only points at them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use turnpike_core::{metrics::RouteCounters, uri::PathTemplate, usage::RequestStep};

use crate::respond::Policies;

/// What one route of one stage runs.
pub struct RoutePlan {
    /// Index of the API in the config; `u32::MAX` for requests no API serves.
    pub api: u32,
    pub stage: u32,
    /// The route, or `None` for requests in this API and stage that match no route.
    pub route: Option<u32>,
    /// `$context.routeKey` (`GET /users/{id}`; `-` when no route matched), `$context.stage`,
    /// `$context.apiId`.
    pub route_key: Box<str>,
    pub stage_name: Arc<str>,
    pub api_name: Arc<str>,
    pub integration: PlanIntegration,
    /// Largest request body accepted (bytes); larger gets 413.
    pub body_limit: u64,
    /// One counter slot per worker.
    pub counters: Arc<[RouteCounters]>,
    /// The API's gateway responses and CORS policy.
    pub policies: Arc<Policies>,
    /// The stage's access log, if it has one.
    pub access_log: Option<Arc<crate::exchange::StageLog>>,
    /// Traffic control (API key, throttles, usage plan), in order; empty when none applies.
    pub steps: Box<[RequestStep]>,
    /// [`turnpike_core::usage::stage_uid`] of the API stage, which usage plans name.
    pub stage_uid: u32,
    /// The route's authorizer (JWT, request, SigV4), run after CORS preflight.
    pub auth: crate::auth::PlanAuth,
    /// The API's resource policy, run before anything else.
    pub resource_policy: Option<Arc<turnpike_core::auth::policy::ResourcePolicy>>,
    /// Usage plans read the API key from the request authorizer's `usageIdentifierKey`
    /// (`api_key_source: authorizer`) instead of `x-api-key`.
    pub api_key_from_authorizer: bool,
    /// The route's request validation; `None`: nothing to validate.
    pub validation: Option<Arc<turnpike_core::validation::RequestValidation>>,
    /// The integration's parameter mapping; `None`: requests and responses pass unchanged.
    pub mapping: Option<Arc<turnpike_core::mapping::ParameterMapping>>,
    /// An `http` or templated `mock` integration's templates and integration responses;
    /// `None`: a proxy integration (or a plain mock).
    pub transform: Option<Arc<turnpike_core::transform::Transform>>,
    /// The route's use of its stage cache; `None`: nothing cached (no lookup, no store).
    pub cache: Option<Arc<crate::cache::CachePlan>>,
}

/// A plan's integration.
pub enum PlanIntegration {
    Proxy(Arc<ProxyPlan>),
    Mock(Arc<MockResponse>),
    /// A function the gateway runs.
    Function(Arc<FunctionPlan>),
    /// The integration cannot serve this stage (the reason): requests get 500.
    Misconfigured(Arc<str>),
    /// No route matched: 404.
    NoRoute,
}

/// A `function` integration: the function's queue and the event's shape.
pub struct FunctionPlan {
    pub function: Arc<crate::function::FunctionHandle>,
    pub format: turnpike_core::auth::request_authorizer::PayloadFormat,
}

/// An `http_proxy` integration for one stage.
pub struct ProxyPlan {
    pub target: ProxyTarget,
    /// Time allowed for the upstream exchange: connect, send, and the response head.
    pub timeout: Duration,
    pub preserve_host: bool,
    /// `http` integrations: the method sent instead of the request's.
    pub method: Option<Box<str>>,
}

/// Where an `http_proxy` integration sends a stage's requests.
pub struct ProxyTarget {
    pub addr: SocketAddr,
    /// `https://` backends: the handshake's settings.
    pub tls: Option<crate::tls::client::TlsClient>,
    /// The upstream pool's key for this target.
    pub pool_key: crate::upstream::pool::PoolKey,
    pub host_header: Box<[u8]>,
    pub path: Option<PathTemplate>,
    pub query: Option<Box<[u8]>>,
}

/// A mock's response, rendered once: status line and headers up to (not including) the Date
/// and Connection lines, then the body.
pub struct MockResponse {
    pub status: u16,
    /// The configured headers (a templated mock adds them to its answers).
    pub headers: Vec<(String, String)>,
    pub head: Box<[u8]>,
    pub body: Box<[u8]>,
}
