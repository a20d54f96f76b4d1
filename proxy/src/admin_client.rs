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
    /// The admin API's address.
    #[arg(
        long,
        env = "TURNPIKE_ADMIN_URL",
        default_value = "http://127.0.0.1:9901"
    )]
    url: String,
    /// The admin token file (default: /etc/turnpike/admin.token as root, else
    /// ~/.local/state/turnpike/admin.token).
    #[arg(long, env = "TURNPIKE_ADMIN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Config version, workers and the version each runs, driver, uptime.
    Status,
    /// Print the running config (YAML unless --json).
    Get {
        #[arg(long)]
        json: bool,
    },
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
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
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
            let body = render(&args.command, status, body);
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

fn token_path(args: &AdminArgs) -> PathBuf {
    if let Some(p) = &args.token_file {
        return p.clone();
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from(turnpike_core::config::DEFAULT_TOKEN_FILE);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/turnpike/admin.token")
}

fn call(args: &AdminArgs) -> Result<(u16, String), String> {
    let path = token_path(args);
    let token = std::fs::read_to_string(&path)
        .map_err(|e| format!("reading the admin token {}: {e}", path.display()))?;
    let auth = format!("Bearer {}", token.trim());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = |p: &str| format!("{}{p}", args.url.trim_end_matches('/'));
    let response = match &args.command {
        AdminCommand::Status => agent
            .get(url("/v1/status"))
            .header("Authorization", &auth)
            .call(),
        AdminCommand::Get { json } => {
            let format = if *json { "" } else { "?format=yaml" };
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
    };
    let mut response = response.map_err(|e| format!("{}: {e}", args.url))?;
    let status = response.status().as_u16();
    if status == 401 {
        // Which token was sent is the first thing to know (root reads /etc/turnpike's, a user
        // ~/.local/state's; a gateway run by someone else wrote its own).
        return Err(format!(
            "{}: the token in {} was refused; give the gateway's own with --token-file (or              TURNPIKE_ADMIN_TOKEN_FILE): its admin.token_file",
            args.url,
            path.display()
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

/// What to print for a response: the body, except where a command asks for less.
fn render(command: &AdminCommand, status: u16, body: String) -> String {
    let ok = (200..300).contains(&status);
    match command {
        AdminCommand::ClientCerts(ClientCertsCommand::Show { json: false, .. }) if ok => {
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
        _ => body,
    }
}

/// `key=value` pairs as a JSON object; values that parse as JSON (numbers, true, lists) stay
/// typed, the rest are strings.
fn tuning_patch(settings: &[String]) -> Result<String, String> {
    let mut obj = serde_json::Map::new();
    for s in settings {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected key=value"))?;
        let value =
            serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
        obj.insert(k.to_owned(), value);
    }
    Ok(serde_json::Value::Object(obj).to_string())
}
