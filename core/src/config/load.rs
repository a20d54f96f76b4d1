//! Text <-> [`ConfigFile`]: YAML (any YAML 1.2, so JSON too) in, YAML or JSON out.
//!
//! Parsing goes through `serde_path_to_error`, so a wrong type or an unknown field deep in the
//! document reports its field path, not only a line number.

use serde_saphyr::{DuplicateKeyPolicy, Options};

use super::{ConfigError, ConfigFile};

/// Parses a config document. JSON documents (first non-blank byte `{`) use the JSON parser for
/// exact JSON semantics; everything else is YAML. Duplicate keys are refused.
pub fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
    if text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        return serde_path_to_error::deserialize(&mut de)
            .map_err(|e| path_error(e.path().to_string(), e.inner().to_string()));
    }
    let options = yaml_options();
    let mut at: Option<(String, String)> = None;
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, ConfigFile>(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            at = Some((path, inner.to_string()));
            inner
        })
    });
    match parsed {
        Ok(file) => Ok(file),
        Err(e) => Err(match at {
            Some((path, reason)) => path_error(path, reason),
            None => ConfigError::new(".", first_line(&e.to_string())),
        }),
    }
}

/// YAML as the contract says: 1.2 Core, so only `true`/`false` are booleans. YAML 1.1's
/// `y`, `n`, `yes`, `no`, `on`, `off` stay strings, which matters wherever the document holds
/// free-form values: a model's `enum: [no, se, dk]` is three country codes, not `false`.
/// Duplicate keys are refused.
fn yaml_options() -> Options {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options.strict_booleans = true;
    options
}

fn path_error(path: String, reason: String) -> ConfigError {
    let path = if path.is_empty() || path == "?" {
        ".".to_owned()
    } else {
        path
    };
    let reason = super::terms::parse_reason(&path, first_line(&reason).as_str());
    ConfigError::new(path, reason)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// Parses any YAML or JSON text into a JSON value (for the admin API's resource bodies, which
/// are parts of a document rather than a whole one).
pub fn parse_value(text: &str) -> Result<serde_json::Value, ConfigError> {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return serde_json::from_str(text).map_err(|e| ConfigError::new(".", e.to_string()));
    }
    serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|e| ConfigError::new(".", first_line(&e.to_string())))
}

/// Renders a document as YAML.
pub fn to_yaml(file: &ConfigFile) -> String {
    serde_saphyr::to_string(file).unwrap_or_else(|e| format!("# unrepresentable config: {e}\n"))
}

/// Renders a document as pretty JSON.
pub fn to_json(file: &ConfigFile) -> String {
    serde_json::to_string_pretty(file).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
