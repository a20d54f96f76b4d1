//! Scenario files: a weighted mix of requests, and optionally a list of credentials (API keys,
//! JWTs) injected into a named header, one drawn at random per request.
//!
//! ```yaml
//! requests:
//!   - { method: GET, path: /users, weight: 8 }
//!   - method: POST
//!     path: /orders
//!     headers: { content-type: application/json }
//!     body: '{"sku": 42}'          # or body_file: order.json (relative to this file)
//!     weight: 2
//!   - { path: /health, credentials: false }
//! credentials:
//!   header: authorization
//!   prefix: "Bearer "
//!   values: [token-a, token-b]    # and/or file: tokens.txt, one per line
//! ```
//!
//! This module owns reading and checking the file; every refusal names the field that is wrong
//! (`requests[1].method: ...`). It never touches sockets: [`crate::request`] turns the checked
//! result into bytes.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::request::{
    Credentials, RequestTemplate, check_header, check_method, check_path, read_values_file,
};

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario file {file}: {field}: {reason}")]
    Field {
        file: PathBuf,
        field: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    requests: Vec<RequestEntry>,
    #[serde(default)]
    credentials: Option<CredentialsEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestEntry {
    #[serde(default = "default_method")]
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_file: Option<PathBuf>,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default = "default_true")]
    credentials: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsEntry {
    header: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    file: Option<PathBuf>,
}

fn default_method() -> String {
    "GET".into()
}
fn default_weight() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

/// A checked scenario: the request mix and the credentials, with files already read.
#[derive(Debug)]
pub struct Scenario {
    pub requests: Vec<RequestTemplate>,
    pub credentials: Option<Credentials>,
}

/// Reads and checks a scenario file (YAML, or JSON when it starts with `{`).
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    })?;
    let field = |field: String, reason: String| ScenarioError::Field {
        file: path.to_owned(),
        field,
        reason,
    };
    let file = parse(&text).map_err(|(f, r)| field(f, r))?;
    let base = path.parent().unwrap_or(Path::new("."));
    check(file, base).map_err(|(f, r)| field(f, r))
}

/// Parses the text; errors carry the field path serde stopped at.
fn parse(text: &str) -> Result<ScenarioFile, (String, String)> {
    if text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        return serde_path_to_error::deserialize(&mut de).map_err(|e| {
            (
                path_or_root(e.path().to_string()),
                first_line(&e.inner().to_string()),
            )
        });
    }
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    let mut at = None;
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, ScenarioFile>(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            at = Some((path_or_root(path), first_line(&inner.to_string())));
            inner
        })
    });
    parsed.map_err(|e| at.unwrap_or_else(|| (".".into(), first_line(&e.to_string()))))
}

fn path_or_root(path: String) -> String {
    if path.is_empty() || path == "?" {
        ".".into()
    } else {
        path
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// Checks values serde cannot (header syntax, paths, weights) and reads the referenced files.
fn check(file: ScenarioFile, base: &Path) -> Result<Scenario, (String, String)> {
    if file.requests.is_empty() {
        return Err(("requests".into(), "at least one request is needed".into()));
    }
    let mut requests = Vec::with_capacity(file.requests.len());
    for (i, r) in file.requests.into_iter().enumerate() {
        let at = |f: &str| format!("requests[{i}].{f}");
        check_method(&r.method).map_err(|e| (at("method"), e))?;
        check_path(&r.path).map_err(|e| (at("path"), e))?;
        let mut headers = Vec::with_capacity(r.headers.len());
        for (name, value) in r.headers {
            check_header(&name, &value).map_err(|e| (at(&format!("headers.{name}")), e))?;
            headers.push((name, value));
        }
        if r.weight == 0 {
            return Err((at("weight"), "must be at least 1".into()));
        }
        let body = match (r.body, r.body_file) {
            (Some(_), Some(_)) => {
                return Err((
                    at("body_file"),
                    "give either body or body_file, not both".into(),
                ));
            }
            (Some(b), None) => b.into_bytes(),
            (None, Some(p)) => {
                let p = base.join(p);
                std::fs::read(&p)
                    .map_err(|e| (at("body_file"), format!("cannot read {}: {e}", p.display())))?
            }
            (None, None) => Vec::new(),
        };
        requests.push(RequestTemplate {
            method: r.method,
            path: r.path,
            headers,
            body,
            weight: r.weight,
            credentials: r.credentials,
        });
    }
    let credentials = match file.credentials {
        None => None,
        Some(c) => Some(check_credentials(c, base)?),
    };
    Ok(Scenario {
        requests,
        credentials,
    })
}

fn check_credentials(c: CredentialsEntry, base: &Path) -> Result<Credentials, (String, String)> {
    check_header(&c.header, &c.prefix).map_err(|e| ("credentials.header".into(), e))?;
    let mut values = Vec::new();
    for (i, v) in c.values.into_iter().enumerate() {
        check_header(&c.header, &v).map_err(|e| (format!("credentials.values[{i}]"), e))?;
        values.push(v);
    }
    if let Some(p) = c.file {
        let p = base.join(p);
        values.extend(
            read_values_file(&c.header, &p).map_err(|e| ("credentials.file".to_owned(), e))?,
        );
    }
    if values.is_empty() {
        return Err((
            "credentials".into(),
            "no credential values: give values: [...] or file: PATH".into(),
        ));
    }
    Ok(Credentials {
        header: c.header,
        prefix: c.prefix,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str) -> Result<Scenario, (String, String)> {
        check(parse(text)?, Path::new("."))
    }

    #[test]
    fn reads_a_mix_with_credentials() {
        let s = checked(
            "requests:\n  - { path: /a, weight: 3 }\n  - { method: POST, path: /b, body: hi, \
             credentials: false }\ncredentials: { header: x-api-key, values: [k1, k2] }\n",
        )
        .expect("valid");
        assert_eq!(s.requests.len(), 2);
        assert_eq!(s.requests[0].method, "GET");
        assert_eq!(s.requests[0].weight, 3);
        assert_eq!(s.requests[1].body, b"hi");
        assert!(!s.requests[1].credentials);
        assert_eq!(s.credentials.expect("creds").values, ["k1", "k2"]);
    }

    #[test]
    fn json_works_too() {
        let s = checked(r#"{"requests": [{"path": "/x", "headers": {"accept": "*/*"}}]}"#)
            .expect("valid");
        assert_eq!(s.requests[0].headers, [("accept".into(), "*/*".into())]);
    }

    #[test]
    fn names_the_wrong_field() {
        let field = |t: &str| checked(t).expect_err("invalid").0;
        assert_eq!(
            field("requests:\n  - { path: /a, wieght: 2 }\n"),
            "requests[0].wieght"
        );
        assert_eq!(
            field("requests:\n  - { path: /a, weight: -1 }\n"),
            "requests[0].weight"
        );
        assert_eq!(
            field("requests:\n  - { path: /a, weight: 0 }\n"),
            "requests[0].weight"
        );
        assert_eq!(
            field("requests:\n  - { path: /a }\n  - { path: a }\n"),
            "requests[1].path"
        );
        assert_eq!(
            field("requests:\n  - { method: 'G T', path: /a }\n"),
            "requests[0].method"
        );
        assert_eq!(
            field("requests:\n  - { path: /a, headers: { 'a b': c } }\n"),
            "requests[0].headers.a b"
        );
        assert_eq!(field("requests: []\n"), "requests");
        assert_eq!(
            field("requests: [{path: /}]\ncredentials: { header: k }\n"),
            "credentials"
        );
        assert_eq!(field(r#"{"requests": [{"path": 5}]}"#), "requests[0].path");
    }
}
