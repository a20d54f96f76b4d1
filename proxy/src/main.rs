//! The `turnpike` binary: parses the command line and wires the crates together.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};
use turnpike_core::config::{self, ConfigErrors};
use turnpike_proxy::{
    server::{Options, Server},
    snapshot::Snapshot,
};
use turnpike_tuning::driver::DriverChoice;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "turnpike", version, about = "A self-hosted API gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (on the embedded demo config when no --config is given).
    Serve {
        /// Config file (YAML or JSON).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// I/O driver: auto (io_uring, else epoll), io_uring or epoll.
        #[arg(long, default_value = "auto")]
        driver: DriverChoice,
        /// Log filter (error, warn, info, debug, trace, or a tracing directive).
        #[arg(long, default_value = "info", env = "TURNPIKE_LOG")]
        log_level: String,
    },
    /// Validate a config file: print each problem with its field path; exit 1 if any.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Serve {
            config,
            driver,
            log_level,
        } => {
            init_logging(&log_level);
            match serve(config, driver) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn print_errors(source: &str, e: &ConfigErrors) {
    for err in &e.0 {
        eprintln!("{source}: {err}");
    }
}

fn check(path: &PathBuf) -> ExitCode {
    let source = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{source}: cannot read: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checked = config::load(&text).and_then(|(_, c)| Snapshot::build(c, 1));
    match checked {
        Ok(snap) => {
            for w in &snap.config.warnings {
                eprintln!("{source}: warning: {w}");
            }
            let routes: usize = snap.config.apis.iter().map(|a| a.routes.len()).sum();
            println!(
                "{source}: ok ({} APIs, {routes} routes)",
                snap.config.apis.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_errors(&source, &e);
            ExitCode::FAILURE
        }
    }
}

fn serve(path: Option<PathBuf>, driver: DriverChoice) -> anyhow::Result<()> {
    let (source, text) = match &path {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => (
            "embedded default config".to_owned(),
            config::EMBEDDED_DEFAULT.to_owned(),
        ),
    };
    let snapshot = config::load(&text)
        .and_then(|(_, c)| Snapshot::build(c, 1))
        .map_err(|e| {
            print_errors(&source, &e);
            anyhow::anyhow!("{source} is not a valid config ({} problems)", e.0.len())
        })?;
    for w in &snapshot.config.warnings {
        tracing::warn!("{source}: {w}");
    }
    let listen: Vec<String> = snapshot
        .config
        .gateway
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    let server = Server::start(snapshot, Options { driver }).map_err(|e| anyhow::anyhow!(e))?;
    tracing::info!(
        "turnpike {} serving {source} on {} with {} workers, driver {}",
        env!("CARGO_PKG_VERSION"),
        listen.join(", "),
        server.workers,
        server.driver,
    );
    server.run_until_signal()?;
    Ok(())
}
