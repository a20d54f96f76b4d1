//! The config contract: document -> checked model.
//!
//! - [`file`](ConfigFile): the document's shape (serde, unknown fields refused);
//! - [`parse`]: text -> document, errors with field paths;
//! - [`check()`]: document -> [`Config`], every problem collected with its field path;
//! - the model ([`Config`], [`Api`], ...): what the data plane runs.

mod check;
mod check_auth;
mod check_cache;
pub mod check_cluster;
mod check_function;
mod check_tls;
mod check_validation;
mod check_websocket;
mod error;
mod file;
mod load;
mod model;
mod terms;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_websocket;

pub use check::{check, check_with};
pub use error::{ConfigError, ConfigErrors};
pub use file::*;
pub use load::{parse, parse_value, to_json, to_yaml};
pub use model::*;

/// The config `turnpike serve` runs when given none: a demo API with a mock at `/` and
/// `/health`, on 127.0.0.1:8080.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

/// Parses and checks in one step (what `turnpike check` and the admin API do).
pub fn load(text: &str) -> Result<(ConfigFile, Config), ConfigErrors> {
    let file = parse(text)?;
    let config = check(&file)?;
    Ok((file, config))
}
