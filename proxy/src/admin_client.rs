//! `turnpike admin ...`: the common admin API calls for operators who would rather not curl.
//! The token is read from the token file, as the server wrote it.

use std::{path::PathBuf, process::ExitCode, time::Duration};

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
}

pub fn run(args: AdminArgs) -> ExitCode {
    match call(&args) {
        Ok((status, body)) => {
            print!("{body}");
            if !body.ends_with('\n') {
                println!();
            }
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
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
    };
    let mut response = response.map_err(|e| format!("{}: {e}", args.url))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
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
