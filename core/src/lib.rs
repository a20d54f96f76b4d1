//! turnpike-core: everything the gateway decides without touching a socket or a clock.
//!
//! - [`config`]: the config document (file structs), its checks, and the checked model.
//! - [`route`]: route keys and the route table (AWS HTTP API matching rules).
//! - [`uri`]: integration URI templates (`${stageVariables.x}`, `{param}`).
//! - [`domain`]: custom domains: Host -> API + stage + base path.
//! - [`resolve`]: a request's host, method and path -> the route that serves it.
//!
//! Nothing here may do I/O, read the clock or allocate on the matching path.

pub mod config;
pub mod domain;
pub mod metrics;
pub mod resolve;
pub mod route;
pub mod uri;
