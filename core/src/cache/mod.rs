//! Response caching, sans I/O: what the data plane's per-core caches are made of.
//!
//! - [`settings`]: `stages[].cache` and `routes[].cache` as written and as checked (AWS API
//!   Gateway's stage cache settings);
//! - [`key`]: cache keys as keyed 128-bit fingerprints of method, path and key parameters;
//! - [`http`]: RFC 9111 for the opt-in `http` mode: directives, storability, freshness,
//!   age, reuse;
//! - [`store`]: one core's byte-bounded store (quick_cache's S3-FIFO) of responses ready to
//!   write.
//!
//! Nothing here reads a clock, a socket or a random source: callers pass `now` and the
//! fingerprint secret.

pub mod http;
pub mod key;
pub mod settings;
pub mod store;

pub use key::{Fingerprint, KeyBuilder, KeyParam, ParamAt};
pub use settings::{
    CacheMode, RouteCache, RouteCacheFile, StageCache, StageCacheFile, UnauthorizedStrategy,
};
pub use store::{ResponseStore, Slot, StoredResponse, VaryEntry};
