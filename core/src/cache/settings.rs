//! A stage's and a route's cache settings: the document's shape (`stages[].cache`,
//! `routes[].cache`) and the checked values the data plane runs (AWS API Gateway stage cache:
//! `cacheClusterEnabled`, `cacheTtlInSeconds`, `cachingEnabled`, `cacheKeyParameters`,
//! `requireAuthorizationForCacheControl`, `unauthorizedCacheControlHeaderStrategy`).

use serde::{Deserialize, Serialize};

use super::key::KeyParam;

/// AWS's default TTL (seconds).
pub const DEFAULT_TTL_SECONDS: u32 = 300;
/// AWS's longest TTL (seconds).
pub const MAX_TTL_SECONDS: u32 = 3600;
/// Default capacity of one core's cache: 64 MiB.
pub const DEFAULT_CAPACITY_BYTES: u64 = 64 << 20;
/// AWS caches responses up to 1 MB (1,048,576 bytes).
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 1 << 20;
/// Smallest and largest `capacity_bytes`: 64 KiB to 64 GiB per core.
pub const MIN_CAPACITY_BYTES: u64 = 64 << 10;
pub const MAX_CAPACITY_BYTES: u64 = 64 << 30;
/// Largest `max_entry_bytes`: 256 MiB.
pub const MAX_ENTRY_BYTES: u64 = 256 << 20;

/// `stages[].cache`: the stage cache (every worker keeps its own, of `capacity_bytes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageCacheFile {
    /// AWS `cacheClusterEnabled`; default false.
    #[serde(default)]
    pub enabled: bool,
    /// Bytes one core's cache holds (stored heads and bodies); default 64 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
    /// Seconds a response is served from the cache (AWS `ttlInSeconds`, 0 to 3600, default
    /// 300; 0 caches nothing). In `http` mode: the longest an entry is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// `aws` (default): AWS's TTL cache; `http`: an RFC 9111 shared cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// The largest response (head and body) stored; default 1 MiB, as AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entry_bytes: Option<u64>,
    /// Only an authorized caller may bypass an entry with `Cache-Control: max-age=0` (AWS
    /// `requireAuthorizationForCacheControl`, default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_authorization_for_cache_control: Option<bool>,
    /// What an unauthorized `max-age=0` gets (AWS `unauthorizedCacheControlHeaderStrategy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unauthorized_cache_control: Option<UnauthorizedStrategy>,
}

/// `routes[].cache`: the route's own caching (AWS method settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCacheFile {
    /// `true` caches methods other than GET too; `false` turns the route's caching off.
    /// Unset: GET is cached when the stage cache is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The route's TTL in seconds (0 to 3600); default the stage's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// Request parameters that are part of the key besides method and path:
    /// `querystring.NAME`, `header.NAME`, `path.NAME` (or AWS's
    /// `method.request.querystring.NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_parameters: Vec<String>,
}

/// How a stage cache decides what to keep and for how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// AWS API Gateway: 2xx integration responses are kept for the TTL, whatever their
    /// `Cache-Control` says.
    #[default]
    Aws,
    /// RFC 9111 shared cache: the origin's `Cache-Control`, `Expires`, `Vary` and validators
    /// decide.
    Http,
}

/// AWS `unauthorizedCacheControlHeaderStrategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnauthorizedStrategy {
    /// 403 `{"message": "..."}` (`ACCESS_DENIED`).
    #[serde(rename = "fail_with_403", alias = "FAIL_WITH_403")]
    FailWith403,
    /// Served as if the header were absent, with AWS's `Warning: 199 ...` header.
    #[default]
    #[serde(alias = "SUCCEED_WITH_RESPONSE_HEADER")]
    SucceedWithResponseHeader,
    /// Served as if the header were absent.
    #[serde(alias = "SUCCEED_WITHOUT_RESPONSE_HEADER")]
    SucceedWithoutResponseHeader,
}

/// A stage's checked cache settings (present only when the cache is enabled).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StageCache {
    /// Bytes per core.
    pub capacity_bytes: u64,
    /// Seconds; 0 stores nothing.
    pub ttl_seconds: u32,
    pub mode: CacheMode,
    /// Largest stored response, head and body, in bytes.
    pub max_entry_bytes: u64,
    pub require_authorization_for_cache_control: bool,
    pub unauthorized: UnauthorizedStrategy,
}

/// A route's checked cache settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RouteCache {
    pub enabled: Option<bool>,
    pub ttl_seconds: Option<u32>,
    pub key_parameters: Vec<KeyParam>,
}

impl RouteCache {
    /// Whether a request with `method` on this route uses the stage cache (AWS: GET by
    /// default, other methods only when the route enables caching, nothing when it disables
    /// it). HEAD counts as GET: it is answered from the stored GET.
    pub fn caches(route: Option<&RouteCache>, method: &[u8]) -> bool {
        let enabled = route.and_then(|r| r.enabled);
        match enabled {
            Some(false) => false,
            Some(true) => true,
            None => method == b"GET" || method == b"HEAD",
        }
    }
}
