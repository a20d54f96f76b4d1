//! turnpike-core: everything the gateway decides without touching a socket or a clock.
//!
//! - [`access_log`]: access log destinations and line formats (`$context` templates).
//! - [`cors`]: CORS per API (AWS HTTP API semantics): checks, origin matching, header lines.
//! - [`context`]: the `$context` variables of a request, templates over them, request ids.
//! - [`cluster`]: cluster-wide throttles and quotas: per-node G-counters, their merge and wire
//!   format, the cumulative token bucket over the summed counters.
//! - [`config`]: the config document (file structs), its checks, and the checked model.
//! - [`route`]: route keys and the route table (AWS HTTP API matching rules).
//! - [`uri`]: integration URI templates (`${stageVariables.x}`, `{param}`).
//! - [`domain`]: custom domains: Host -> API + stage + base path.
//! - [`resolve`]: a request's host, method and path -> the route that serves it.
//! - [`h1`]: the HTTP/1.1 codec (strict request heads, upstream responses, chunked bodies),
//!   shared by the data plane and the admin server.
//! - [`metrics`]: per-core counters and the registry that merges them.
//! - [`gateway_response`]: AWS gateway response types and their per-API overrides.
//! - [`gcra`]: the lock-free token bucket rate limits are built from.
//! - [`usage`]: throttles, API keys, usage plans and quotas (tables, slots, request steps).
//! - [`auth`]: authorizers (JWT, SigV4, request authorizers) and resource policies.
//! - [`function`]: the Lambda proxy integration's event and the reading of its response.
//! - [`validation`]: request validation (models and request validators).
//! - [`mapping`]: parameter mapping of requests and responses (AWS HTTP API syntax).
//! - [`jsonpath`]: JSONPath for mapping templates and parameter mapping.
//! - [`template`]: mapping templates (API Gateway's subset of Velocity).
//! - [`transform`]: REST non-proxy integrations: request templates, passthrough behaviours,
//!   integration responses.
//! - [`cache`]: response caching (AWS stage cache and RFC 9111): keys, freshness, the store.
//!
//! Nothing here may do I/O, read the clock or allocate on the matching path.

pub mod access_log;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod context;
pub mod cors;
pub mod domain;
pub mod function;
pub mod gateway_response;
pub mod gcra;
pub mod h1;
pub mod jsonpath;
pub mod mapping;
pub mod metrics;
pub mod resolve;
pub mod route;
pub mod template;
pub mod tls;
pub mod transform;
pub mod uri;
pub mod usage;
pub mod validation;
pub mod websocket;
