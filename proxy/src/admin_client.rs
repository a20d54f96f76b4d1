//! `turnpike admin ...`: the common admin API calls for operators who would rather not curl.
//! The token is read from the token file, as the server wrote it.
//!
//! Output is the API's JSON as it came, except `clientcerts show` (the PEM alone, to pipe to
//! a backend's trust store; `--json` for the rest) and deletes (a line saying what went).
//! API keys and usage plans (`keys`, `plans`) are in the `usage` submodule.

mod usage;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct AdminArgs {
    /// The admin API's address (default: from the config's admin.listen, else
    /// http://127.0.0.1:9901).
    #[arg(long, env = "TURNPIKE_ADMIN_URL")]
    url: Option<String>,
    /// The admin token file (default: the config's admin.token_file, else
    /// /etc/turnpike/admin.token as root, ~/.local/state/turnpike/admin.token otherwise).
    #[arg(long, env = "TURNPIKE_ADMIN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The gateway's config file, whose admin section says where the admin API listens and
    /// where its token is (default: /etc/turnpike/turnpike.yaml when it exists).
    #[arg(long, short, env = "TURNPIKE_CONFIG")]
    config: Option<PathBuf>,
    /// Print the API's JSON as it came instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

/// Where the admin API is and which token to send, and where each came from (for messages).
struct Target {
    url: String,
    token_file: PathBuf,
    /// How the token file was chosen: `--token-file`, `admin.token_file in FILE`, ...
    token_from: String,
}

/// The package's config file, read when no --config is given.
const DEFAULT_CONFIG: &str = "/etc/turnpike/turnpike.yaml";

fn target(args: &AdminArgs) -> Result<Target, String> {
    let config = match &args.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
    };
    let admin = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path);
            match (text, args.config.is_some()) {
                (Ok(text), _) => match turnpike_core::config::parse(&text) {
                    Ok(doc) => Some((path.clone(), doc.admin)),
                    Err(e) if args.config.is_some() => {
                        return Err(format!("{}: {}: {}", path.display(), e.path, e.reason));
                    }
                    Err(_) => None,
                },
                (Err(e), true) => return Err(format!("reading {}: {e}", path.display())),
                // The default file exists but cannot be read (not root): the defaults apply.
                (Err(_), false) => None,
            }
        }
        None => None,
    };
    let url = match (&args.url, &admin) {
        (Some(u), _) => u.clone(),
        (None, Some((_, a))) => format!("http://{}", a.listen),
        (None, None) => "http://127.0.0.1:9901".to_owned(),
    };
    let (token_file, token_from) = match (&args.token_file, &admin) {
        (Some(p), _) => (
            p.clone(),
            "--token-file (or TURNPIKE_ADMIN_TOKEN_FILE)".to_owned(),
        ),
        (None, Some((path, a))) => (
            crate::admin_paths(a).1,
            format!("admin.token_file of {}", path.display()),
        ),
        (None, None) => (
            crate::admin_paths(&turnpike_core::config::AdminFile::default()).1,
            "the default for this user".to_owned(),
        ),
    };
    Ok(Target {
        url,
        token_file,
        token_from,
    })
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Config version, workers and the version each runs, driver, uptime.
    Status,
    /// The cluster's members and, per cluster-scoped limit, each node's share of usage.
    Cluster,
    /// Print the running config (YAML unless --json).
    Get,
    /// Validate and apply a config file (YAML or JSON) as the new version.
    Put {
        file: PathBuf,
        /// Only apply if the running version is this one (If-Match).
        #[arg(long)]
        if_version: Option<u64>,
    },
    /// Stored config versions, newest first.
    Deployments,
    /// Apply a stored version again (as a new version).
    Rollback { version: u64 },
    /// Show the runtime knobs, or change some: `turnpike admin tuning idle_timeout_ms=5000`.
    Tuning { settings: Vec<String> },
    /// Certificates for https:// listeners and custom domains (domains[].certificate,
    /// gateway.tls.certificate name them by id).
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Client certificates the gateway presents to https:// backends (a stage's
    /// client_certificate names one by id).
    #[command(subcommand, name = "clientcerts")]
    ClientCerts(ClientCertsCommand),
    /// API keys (what clients send in x-api-key).
    #[command(subcommand)]
    Keys(usage::KeysCommand),
    /// Usage plans: throttles and quotas for API keys on API stages.
    #[command(subcommand)]
    Plans(usage::PlansCommand),
    /// Stage caches (AWS FlushStageCache).
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Empty a stage's cache on every core.
    Flush { api: String, stage: String },
    /// A stage cache's settings and the entries and bytes each core holds.
    Show { api: String, stage: String },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Every stored certificate, with its details.
    List,
    /// One certificate: subject, names, issuer, validity, fingerprint, chain, where it is used.
    Show { id: String },
    /// Store a certificate chain and its private key; prints the new id.
    Import {
        /// PEM: the certificate, then its intermediates.
        #[arg(long)]
        chain: PathBuf,
        /// PEM: the private key.
        #[arg(long)]
        key: PathBuf,
        /// A label to tell certificates apart.
        #[arg(long)]
        name: Option<String>,
    },
    /// Replace a certificate's chain and key under the same id; configs using it are
    /// republished, so new handshakes get the new certificate.
    Rotate {
        id: String,
        #[arg(long)]
        chain: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete a certificate the running config does not use.
    Delete { id: String },
}

#[derive(Subcommand)]
enum ClientCertsCommand {
    /// Every client certificate (with its PEM).
    List,
    /// One client certificate's PEM (what a backend trusts); --json for its details.
    Show { id: String },
    /// Generate a key pair and a self-signed certificate valid for 365 days.
    Generate {
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a client certificate no stage uses.
    Delete { id: String },
}

pub fn run(args: AdminArgs) -> ExitCode {
    match call(&args) {
        Ok((status, body)) => {
            let body = render(&args.command, args.json, status, body);
            let newline = if body.ends_with('\n') { "" } else { "\n" };
            // An answer on stdout, a refusal (the admin's JSON saying why) on stderr, so a
            // script that pipes the output never takes an error for a result.
            if (200..300).contains(&status) {
                print!("{body}{newline}");
                ExitCode::SUCCESS
            } else {
                eprint!("{body}{newline}");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("turnpike admin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn call(args: &AdminArgs) -> Result<(u16, String), String> {
    let target = target(args)?;
    let path = &target.token_file;
    let token = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "reading the admin token {} ({}): {e}",
            path.display(),
            target.token_from
        )
    })?;
    let auth = format!("Bearer {}", token.trim());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = |p: &str| format!("{}{p}", target.url.trim_end_matches('/'));
    let response = match &args.command {
        AdminCommand::Status => agent
            .get(url("/v1/status"))
            .header("Authorization", &auth)
            .call(),
        AdminCommand::Get => {
            let format = if args.json { "" } else { "?format=yaml" };
            agent
                .get(url(&format!("/v1/config{format}")))
                .header("Authorization", &auth)
                .call()
        }
        AdminCommand::Put { file, if_version } => {
            let body =
                std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
            let mut req = agent
                .put(url("/v1/config"))
                .header("Authorization", &auth)
                .header("Content-Type", "application/yaml");
            if let Some(v) = if_version {
                req = req.header("If-Match", &format!("\"{v}\""));
            }
            req.send(&body[..])
        }
        AdminCommand::Cluster => agent
            .get(url("/v1/cluster"))
            .header("Authorization", &auth)
            .call(),
        AdminCommand::Deployments => agent
            .get(url("/v1/deployments"))
            .header("Authorization", &auth)
            .call(),
        AdminCommand::Rollback { version } => agent
            .post(url(&format!("/v1/deployments/{version}/rollback")))
            .header("Authorization", &auth)
            .send_empty(),
        AdminCommand::Tuning { settings } if settings.is_empty() => agent
            .get(url("/v1/tuning"))
            .header("Authorization", &auth)
            .call(),
        AdminCommand::Tuning { settings } => {
            let body = tuning_patch(settings)?;
            agent
                .patch(url("/v1/tuning"))
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body.as_bytes())
        }
        AdminCommand::Certs(c) => certs(&agent, &url, &auth, c)?,
        AdminCommand::ClientCerts(c) => client_certs(&agent, &url, &auth, c)?,
        AdminCommand::Keys(c) => usage::keys(&agent, &url, &auth, c)?,
        AdminCommand::Plans(c) => usage::plans(&agent, &url, &auth, c)?,
        AdminCommand::Cache(CacheCommand::Flush { api, stage }) => agent
            .delete(url(&stage_cache_path(api, stage)))
            .header("Authorization", &auth)
            .call(),
        AdminCommand::Cache(CacheCommand::Show { api, stage }) => agent
            .get(url(&stage_cache_path(api, stage)))
            .header("Authorization", &auth)
            .call(),
    };
    let mut response = response.map_err(|e| {
        let hint = if e.to_string().contains("refused") {
            format!(
                " (no admin API listens there: is the gateway running? if it listens elsewhere, \
                 give its config file with --config, or --url; the token file tried is {}, {})",
                target.token_file.display(),
                target.token_from
            )
        } else {
            String::new()
        };
        format!("{}: {e}{hint}", target.url)
    })?;
    let status = response.status().as_u16();
    if status == 401 {
        // Which token was sent is the first thing to know (root reads /etc/turnpike's, a user
        // ~/.local/state's; a gateway run by someone else wrote its own).
        return Err(format!(
            "{}: the token in {} ({}) was refused; give the gateway's own: --config with its \
             config file, or --token-file (TURNPIKE_ADMIN_TOKEN_FILE) with its admin.token_file",
            target.url,
            path.display(),
            target.token_from
        ));
    }
    // An export of a million keys is a few hundred MB: no 10 MB cap here.
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

type Reply = Result<ureq::http::Response<ureq::Body>, ureq::Error>;

/// `/v1/apis/{api}/stages/{stage}/cache`, names percent-encoded (`$default` included).
fn stage_cache_path(api: &str, stage: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!("/v1/apis/{}/stages/{}/cache", enc(api), enc(stage))
}

fn certs(
    agent: &ureq::Agent,
    url: &dyn Fn(&str) -> String,
    auth: &str,
    command: &CertsCommand,
) -> Result<Reply, String> {
    Ok(match command {
        CertsCommand::List => agent
            .get(url("/v1/certificates"))
            .header("Authorization", auth)
            .call(),
        CertsCommand::Show { id } => agent
            .get(url(&format!("/v1/certificates/{}", segment(id)?)))
            .header("Authorization", auth)
            .call(),
        CertsCommand::Import { chain, key, name } => agent
            .post(url("/v1/certificates"))
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .send(import_body(chain, key, name.as_deref())?.as_bytes()),
        CertsCommand::Rotate {
            id,
            chain,
            key,
            name,
        } => agent
            .put(url(&format!("/v1/certificates/{}", segment(id)?)))
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .send(import_body(chain, key, name.as_deref())?.as_bytes()),
        CertsCommand::Delete { id } => agent
            .delete(url(&format!("/v1/certificates/{}", segment(id)?)))
            .header("Authorization", auth)
            .call(),
    })
}

fn client_certs(
    agent: &ureq::Agent,
    url: &dyn Fn(&str) -> String,
    auth: &str,
    command: &ClientCertsCommand,
) -> Result<Reply, String> {
    Ok(match command {
        ClientCertsCommand::List => agent
            .get(url("/v1/clientcertificates"))
            .header("Authorization", auth)
            .call(),
        ClientCertsCommand::Show { id, .. } => agent
            .get(url(&format!("/v1/clientcertificates/{}", segment(id)?)))
            .header("Authorization", auth)
            .call(),
        ClientCertsCommand::Generate { description } => {
            let mut body = serde_json::Map::new();
            if let Some(d) = description {
                body.insert("description".into(), d.clone().into());
            }
            agent
                .post(url("/v1/clientcertificates"))
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(serde_json::Value::Object(body).to_string().as_bytes())
        }
        ClientCertsCommand::Delete { id } => agent
            .delete(url(&format!("/v1/clientcertificates/{}", segment(id)?)))
            .header("Authorization", auth)
            .call(),
    })
}

/// An id as one URL path segment: ids are letters, digits and `-`, so anything else is a
/// typo (or a path) and is refused here rather than sent.
fn segment(id: &str) -> Result<&str, String> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(id)
    } else {
        Err(format!("{id:?} is not a certificate id"))
    }
}

/// The JSON body of an import or rotation, from PEM files.
fn import_body(chain: &Path, key: &Path, name: Option<&str>) -> Result<String, String> {
    let read =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let mut body = serde_json::json!({
        "certificate_chain": read(chain)?,
        "private_key": read(key)?,
    });
    if let Some(n) = name {
        body["name"] = n.into();
    }
    Ok(body.to_string())
}

/// What to print for a response: tables and `key: value` lines for people, the API's JSON
/// with `--json`, and less where a command asks for less.
fn render(command: &AdminCommand, json: bool, status: u16, body: String) -> String {
    let ok = (200..300).contains(&status);
    match command {
        AdminCommand::ClientCerts(ClientCertsCommand::Show { .. }) if ok && !json => {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["pemEncodedCertificate"].as_str().map(str::to_owned))
                .unwrap_or(body)
        }
        AdminCommand::Certs(CertsCommand::Delete { id })
        | AdminCommand::ClientCerts(ClientCertsCommand::Delete { id })
        | AdminCommand::Keys(usage::KeysCommand::Delete { id })
        | AdminCommand::Plans(usage::PlansCommand::Delete { id })
            if ok =>
        {
            format!("deleted {id}\n")
        }
        AdminCommand::Plans(usage::PlansCommand::RemoveKey { plan, key }) if ok => {
            format!("removed {key} from {plan}\n")
        }
        AdminCommand::Cluster if ok && !json => {
            match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(mut v) => {
                    shares_inline(&mut v);
                    human(&v)
                }
                Err(_) => body,
            }
        }
        // YAML, NDJSON: as they came.
        AdminCommand::Get | AdminCommand::Keys(usage::KeysCommand::Export) => body,
        _ if json => body,
        _ => match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(v) => human(&v),
            Err(_) => body,
        },
    }
}

/// `/v1/cluster`'s counters for a table: each counter's per-node usage as one cell,
/// `gw-1 1210 (50.4%), gw-2 1190 (49.6%)`.
fn shares_inline(v: &mut serde_json::Value) {
    let Some(counters) = v.get_mut("counters").and_then(|c| c.as_array_mut()) else {
        return;
    };
    for c in counters {
        let Some(nodes) = c.get("nodes").and_then(|n| n.as_array()) else {
            continue;
        };
        let parts: Vec<String> = nodes
            .iter()
            .map(|n| {
                format!(
                    "{} {} ({:.1}%)",
                    cell(&n["node"]),
                    cell(&n["count"]),
                    n["share"].as_f64().unwrap_or(0.0) * 100.0
                )
            })
            .collect();
        c["nodes"] = serde_json::Value::String(parts.join(", "));
    }
}

/// A JSON answer for people: scalars as `key: value` lines (nested objects as dotted keys,
/// lists of scalars comma-separated), lists of objects as tables.
fn human(v: &serde_json::Value) -> String {
    use serde_json::Value;
    let mut out = String::new();
    match v {
        Value::Object(_) => lines(&mut out, "", v),
        Value::Array(items) if items.iter().all(Value::is_object) => out.push_str(&table(items)),
        other => out.push_str(&cell(other)),
    }
    out
}

/// `prefix.key: value` lines for an object's scalars and nested objects, then its tables.
fn lines(out: &mut String, prefix: &str, v: &serde_json::Value) {
    use serde_json::Value;
    let Value::Object(o) = v else {
        return;
    };
    let name = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    for (k, x) in o {
        match x {
            Value::Object(_) => lines(out, &name(k), x),
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {}
            Value::Array(items) if items.is_empty() => {
                out.push_str(&format!("{}: (none)\n", name(k)))
            }
            Value::Array(items) => {
                let joined: Vec<String> = items.iter().map(cell).collect();
                out.push_str(&format!("{}: {}\n", name(k), joined.join(", ")));
            }
            _ => out.push_str(&format!("{}: {}\n", name(k), cell(x))),
        }
    }
    for (k, x) in o {
        if let Value::Array(items) = x
            && !items.is_empty()
            && items.iter().all(Value::is_object)
        {
            out.push_str(&format!("{}:\n", name(k)));
            out.push_str(&table(items));
        }
    }
}

/// One value in a cell: strings bare, epoch-millisecond fields never reach here (the API
/// gives RFC 3339 beside them), nested values as compact JSON.
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// Objects as an aligned table: a column per key (`id`, `version`, `name` first), `*_unix_ms` left out
/// where the API gives the same time in RFC 3339.
fn table(items: &[serde_json::Value]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for item in items {
        if let Some(o) = item.as_object() {
            for k in o.keys() {
                let shadowed = k
                    .strip_suffix("_unix_ms")
                    .is_some_and(|base| o.contains_key(base));
                if !shadowed && !columns.contains(&k.as_str()) {
                    columns.push(k);
                }
            }
        }
    }
    // Keys come sorted; what names a row goes first.
    for lead in ["name", "version", "id"] {
        if let Some(i) = columns.iter().position(|c| *c == lead) {
            let c = columns.remove(i);
            columns.insert(0, c);
        }
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| item.get(*c).map_or_else(|| "-".to_owned(), cell))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut l = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            l.push_str(c);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        l.push('\n');
        l
    };
    let mut out = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// `key=value` pairs as a JSON object; a dotted key (`upstream.connect_timeout_ms=1000`)
/// names a nested knob; values that parse as JSON (numbers, true, lists) stay typed, the rest
/// are strings.
fn tuning_patch(settings: &[String]) -> Result<String, String> {
    let mut root = serde_json::Map::new();
    for s in settings {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected key=value"))?;
        let value =
            serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
        let parts: Vec<&str> = k.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("{s:?}: an empty part in the key"));
        }
        let mut obj = &mut root;
        for part in &parts[..parts.len() - 1] {
            let next = obj
                .entry(part.to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            obj = next
                .as_object_mut()
                .ok_or_else(|| format!("{s:?}: {part} is set to a value above"))?;
        }
        obj.insert(parts[parts.len() - 1].to_owned(), value);
    }
    Ok(serde_json::Value::Object(root).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_tuning_keys_nest() {
        let p = tuning_patch(&[
            "upstream.connect_timeout_ms=1000".into(),
            "upstream.idle_timeout_ms=5000".into(),
            "log_level=debug".into(),
        ])
        .expect("patch");
        let v: serde_json::Value = serde_json::from_str(&p).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "upstream": {"connect_timeout_ms": 1000, "idle_timeout_ms": 5000},
                "log_level": "debug"
            })
        );
        assert!(tuning_patch(&["a..b=1".into()]).is_err());
        assert!(tuning_patch(&["a=1".into(), "a.b=2".into()]).is_err());
    }

    #[test]
    fn answers_become_tables() {
        let v = serde_json::json!({
            "config_version": 3,
            "deployments": [
                {"version": 3, "applied_at": "2026-11-30T06:00:00Z", "applied_at_unix_ms": 1, "source": "api", "current": true},
                {"version": 2, "applied_at": "2026-11-30T05:00:00Z", "applied_at_unix_ms": 1, "source": "seed", "current": false},
            ]
        });
        let text = human(&v);
        assert!(
            text.starts_with("config_version: 3\ndeployments:\n"),
            "{text}"
        );
        assert!(
            text.contains("VERSION  APPLIED_AT            CURRENT  SOURCE"),
            "{text}"
        );
        assert!(
            text.contains("3        2026-11-30T06:00:00Z  true     api"),
            "{text}"
        );
        assert!(!text.contains("UNIX_MS"), "{text}");
    }
}
