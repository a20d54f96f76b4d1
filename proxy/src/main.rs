//! The `turnpike` binary: parses the command line and wires the crates together.

mod admin_client;

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, reload, util::SubscriberInitExt};
use turnpike_admin::{
    api::{Admin, FileReload, Running},
    certificates::{load_stored, stored_ids_named, unknown_ids},
    db::ResourceDb,
    server as admin_server, startup,
    store::ConfigStore,
    tls_files,
    token::AdminToken,
    usage_plans::{self, UsagePlans},
};
use turnpike_core::{
    config::{self, ConfigErrors, ConfigFile},
    metrics::MetricsRegistry,
    tls::StoredCertificates,
    usage::UsageState,
};
use turnpike_proxy::{
    access_log::{self, LogSinks},
    control::{self, LogControl, Plane},
    server::{self, Options, Server},
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
enum TuneCommand {
    /// Report io_uring, limits, sysctls, the CPU governor and NIC interrupts, each with its
    /// fix. Exit 0 whatever is found.
    Check {
        /// The API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Worker cores to judge interrupt placement against (default: this host's CPUs).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Write the sysctl drop-in (/etc/sysctl.d/60-turnpike.conf) and apply it now; say what
    /// needs a restart or a reboot.
    Apply {
        /// Where to write the drop-in.
        #[arg(long, default_value = turnpike_tuning::host::DROP_IN)]
        file: PathBuf,
        /// Write the drop-in only; the kernel reads it at the next boot (or `sysctl --system`).
        #[arg(long)]
        no_sysctl: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (on the embedded demo config when no --config is given).
    Serve {
        /// Config file (YAML or JSON). It seeds the first start; once a config has been
        /// applied through the admin API, the state directory holds the truth.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Set the stored configs aside and start over from --config.
        #[arg(long)]
        replace_state: bool,
        /// I/O driver: auto (io_uring, else epoll), io_uring or epoll.
        #[arg(long, default_value = "auto")]
        driver: DriverChoice,
        /// Log filter (error, warn, info, debug, trace, or a tracing directive); overrides
        /// gateway.log_level.
        #[arg(long, env = "TURNPIKE_LOG")]
        log_level: Option<String>,
    },
    /// Validate a config file: print each problem with its field path; exit 1 if any.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// Where to find the certificates the config names by id (default: the config's
        /// admin.state_dir). Read only when the config names one; a running gateway holds
        /// the store, so stop it or check through the admin API.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Fail (exit 1) on warnings too, for CI: a stage variable an integration needs and a
        /// stage lacks, an API no stage serves, ...
        #[arg(long)]
        strict: bool,
    },
    /// What on this host holds the gateway back, and the fixes.
    #[command(subcommand)]
    Tune(TuneCommand),
    /// Talk to a running gateway's admin API.
    Admin(Box<admin_client::AdminArgs>),
}

fn main() -> ExitCode {
    // No transparent huge pages for this process: mimalloc asks for them on its arenas
    // (madvise), and on a kernel with THP on madvise (Debian's default) a gateway holding
    // 10,000 idle connections then grew by ~1.5 KiB of RSS each instead of ~0.6 KiB, and
    // started 8 MiB larger. mimalloc's own switch (MIMALLOC_ALLOW_THP=0) is read before main
    // runs; the process flag applies to every page faulted in from here on.
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes integers and changes only this process's flag.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            config,
            state_dir,
            strict,
        } => check(&config, state_dir, strict),
        Command::Admin(args) => admin_client::run(*args),
        Command::Tune(t) => tune(t),
        Command::Serve {
            config,
            replace_state,
            driver,
            log_level,
        } => {
            let log = init_logging(log_level.as_deref().unwrap_or("info"));
            match serve(config, replace_state, driver, log_level.is_some(), log) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Logs to stderr with a filter that can be changed while running.
fn init_logging(filter: &str) -> LogControl {
    let initial = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::new(initial);
    tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .init();
    Box::new(move |filter| {
        let next = EnvFilter::try_new(filter).map_err(|e| format!("{filter:?}: {e}"))?;
        handle.reload(next).map_err(|e| e.to_string())
    })
}

fn print_errors(source: &str, e: &ConfigErrors) {
    for err in &e.0 {
        eprintln!("{source}: {err}");
    }
}

fn tune(command: TuneCommand) -> ExitCode {
    use turnpike_tuning::host;
    match command {
        TuneCommand::Check { json, workers } => {
            let workers = workers.unwrap_or_else(|| turnpike_tuning::cpu::available_cpus().len());
            let findings = host::check(workers);
            if json {
                println!("{}", host_json(&findings));
            } else {
                for f in &findings {
                    println!("{:<8} {:<30} {}", f.status, f.name, f.found);
                    if !f.fix.is_empty() {
                        println!("{:<8} {:<30} want: {}", "", "", f.want);
                        println!("{:<8} {:<30} fix:  {}", "", "", f.fix);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        TuneCommand::Apply { file, no_sysctl } => match host::apply(&file, !no_sysctl) {
            Ok(failed) => {
                println!("wrote {}", file.display());
                for (key, e) in &failed {
                    eprintln!("{key}: not applied now ({e}); the drop-in applies it at boot");
                }
                println!(
                    "sysctls {}{}; LimitNOFILE/LimitMEMLOCK take effect when the service \
                     restarts; the CPU governor and NIC interrupts are not changed (see `turnpike \
                     tune check`)",
                    if no_sysctl && file.starts_with("/etc/sysctl.d") {
                        "apply at the next boot (or `sysctl --system`)"
                    } else if no_sysctl {
                        "are not applied (the file is outside /etc/sysctl.d: copy it there)"
                    } else {
                        "apply now"
                    },
                    if failed.is_empty() || no_sysctl {
                        ""
                    } else {
                        " where the kernel allowed it (the rest at the next boot)"
                    }
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("writing {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}

/// The findings as `GET /v1/tuning/host` gives them.
fn host_json(findings: &[turnpike_tuning::host::Finding]) -> String {
    serde_json::json!({ "findings": turnpike_admin::api::findings_json(findings) }).to_string()
}

fn check(path: &Path, state_dir: Option<PathBuf>, strict: bool) -> ExitCode {
    let source = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{source}: cannot read: {e}");
            return ExitCode::FAILURE;
        }
    };
    let doc = match config::parse(&text) {
        Ok(doc) => doc,
        Err(e) => {
            print_errors(&source, &ConfigErrors::from(e));
            return ExitCode::FAILURE;
        }
    };
    let (stored, not_read) = stored_for_check(&doc, state_dir);
    let mut metrics = MetricsRegistry::new(1);
    let checked = control::compile(&doc, &stored, 1, &mut metrics);
    if checked.is_err()
        && let Some(why) = not_read
        && !unknown_ids(&doc, &stored).is_empty()
    {
        eprintln!("{source}: note: stored certificates were not read: {why}");
    }
    match checked {
        Ok(snap) => {
            for w in &snap.config.warnings {
                eprintln!("{source}: warning: {w}");
            }
            let warnings = snap.config.warnings.len();
            if strict && warnings > 0 {
                eprintln!("{source}: {warnings} warning(s), refused by --strict");
                return ExitCode::FAILURE;
            }
            let routes: usize = snap.config.apis.iter().map(|a| a.routes.len()).sum();
            println!(
                "{source}: ok ({} APIs, {routes} routes{})",
                snap.config.apis.len(),
                if warnings > 0 {
                    format!(", {warnings} warning(s)")
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_errors(&source, &e);
            ExitCode::FAILURE
        }
    }
}

/// The stored certificates a `turnpike check` resolves ids with, and why they could not be
/// read. The store is opened only if the document names a stored id, and never created.
fn stored_for_check(
    doc: &ConfigFile,
    state_dir: Option<PathBuf>,
) -> (StoredCertificates, Option<String>) {
    let (certs, clients) = stored_ids_named(doc);
    if certs.is_empty() && clients.is_empty() {
        return (StoredCertificates::default(), None);
    }
    let dir = state_dir.unwrap_or_else(|| admin_paths(&doc.admin).0);
    match ResourceDb::open_existing(&dir) {
        Ok(Some(db)) => match load_stored(&db) {
            Ok(stored) => (stored, None),
            Err(e) => unreadable(e.to_string()),
        },
        Ok(None) => (
            StoredCertificates::default(),
            Some(format!(
                "{} has no resource store (pass --state-dir)",
                dir.display()
            )),
        ),
        // There, but not readable now (a running gateway holds it): ids are not judged.
        Err(e) => unreadable(e.to_string()),
    }
}

fn unreadable(why: String) -> (StoredCertificates, Option<String>) {
    let stored = StoredCertificates {
        unreadable: Some(why.clone()),
        ..StoredCertificates::default()
    };
    (stored, Some(why))
}

fn serve(
    path: Option<PathBuf>,
    replace_state: bool,
    driver: DriverChoice,
    log_level_given: bool,
    log: LogControl,
) -> anyhow::Result<()> {
    let (source, text) = match &path {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => (
            "the embedded default config".to_owned(),
            config::EMBEDDED_DEFAULT.to_owned(),
        ),
    };
    // Sockets (and a pipe) handed over by the process this one replaces (a SIGUSR2 upgrade).
    let mut inherited = server::Inherited::from_env();
    let exe = std::env::current_exe().ok();
    let seed = parse_and_check(&source, &text)?;
    let (state_dir, token_file) = admin_paths(&seed.admin);
    // A file that names no stored certificate is checked before the state directory is
    // touched: a bad file then fails the start on its own.
    let (certs, clients) = stored_ids_named(&seed);
    let needs_store = !certs.is_empty() || !clients.is_empty();
    if !needs_store {
        config::check_with(
            &seed,
            &control::FsTlsSource {
                stored: &StoredCertificates::default(),
            },
        )
        .map_err(|e| invalid(&source, &e))?;
    }

    // An upgrade's new process: the config checks, so the old process may stop accepting and
    // drain; it releases the state directory as it exits. systemd learns first that this
    // process is the main one now: the old one's exit must not read as the service's end.
    if inherited.is_upgrade() {
        sd_notify(&format!("MAINPID={}", std::process::id()));
    }
    inherited.signal_ready();
    // Without the admin API nothing can apply a config, so nothing is stored: the file rules.
    let (store, resources, stored, chosen) = if seed.admin.enabled {
        let mut store = open_store(&state_dir, seed.admin.history, inherited.is_upgrade())
            .with_context(|| format!("opening the config store in {}", state_dir.display()))?;
        let resources = ResourceDb::open(&state_dir)
            .with_context(|| format!("opening the resource store in {}", state_dir.display()))?;
        let stored = load_stored(&resources).context("reading the stored certificates")?;
        if needs_store {
            config::check_with(&seed, &control::FsTlsSource { stored: &stored })
                .map_err(|e| invalid(&source, &e))?;
        }
        let chosen = startup::choose(&mut store, &seed, &source, replace_state)?;
        (Some(store), Some(resources), stored, chosen)
    } else {
        // Certificates stored while the admin API was on can still be named; none can be
        // added.
        let stored = match ResourceDb::open_existing(&state_dir) {
            Ok(Some(db)) => load_stored(&db).unwrap_or_else(|e| {
                tracing::warn!("stored certificates not read: {e}");
                StoredCertificates::default()
            }),
            Ok(None) => StoredCertificates::default(),
            Err(e) => {
                tracing::warn!("stored certificates not read: {e}");
                StoredCertificates::default()
            }
        };
        if needs_store {
            config::check_with(&seed, &control::FsTlsSource { stored: &stored })
                .map_err(|e| invalid(&source, &e))?;
        }
        let chosen = startup::Startup {
            document: seed.clone(),
            version: 1,
            note: None,
        };
        (None, None, stored, chosen)
    };
    if let Some(note) = &chosen.note {
        // The file given was not used: worth more than an info line.
        tracing::warn!("{note}");
    }
    let serving = format!(
        "config version {} from {}",
        chosen.version,
        state_dir.display()
    );
    let doc: ConfigFile = chosen.document;
    let checked = config::check_with(&doc, &control::FsTlsSource { stored: &stored })
        .map_err(|e| invalid(&serving, &e))?;
    // Cluster gossip starts before the first snapshot registers its counters.
    if let Some(cluster) = &checked.cluster {
        turnpike_proxy::cluster::gossip::start(cluster, inherited.gossip.take())
            .map_err(|e| anyhow::anyhow!("{serving}: {e}"))?;
    }
    let workers = server::worker_count(checked.gateway.workers);
    let mut metrics = MetricsRegistry::new(workers);
    let mut snapshot =
        turnpike_proxy::snapshot::Snapshot::build(checked, chosen.version, &mut metrics)
            .map_err(|e| invalid(&serving, &e))?;
    // Access log writers live as long as the process; a reload keeps them by destination.
    let access_logs = Arc::new(LogSinks::new(workers));
    snapshot
        .open_access_logs(&access_logs)
        .map_err(|e| invalid(&serving, &e))?;
    turnpike_proxy::function::start_all(&snapshot.config.functions)
        .map_err(|e| anyhow::anyhow!("{serving}: {e}"))?;
    access_log::spawn_sighup_listener(access_logs.clone())
        .context("installing the SIGHUP handler (access log reopen)")?;
    for w in &snapshot.config.warnings {
        tracing::warn!("{source}: {w}");
    }
    if !log_level_given
        && let Some(level) = &snapshot.config.gateway.log_level
        && let Err(e) = log(level)
    {
        tracing::warn!("gateway.log_level: {e}");
    }
    let admin = snapshot.config.admin.clone();
    // Token first, then the port: whoever can connect can also read the token file.
    let admin_listener = if admin.enabled && store.is_some() {
        let (token, created) = AdminToken::load_or_create(&token_file)?;
        if created {
            tracing::info!("created the admin token in {}", token_file.display());
        }
        let listener = match inherited.admin.take() {
            // SAFETY: the admin socket handed over at exec, owned by this process alone.
            Some(fd) => unsafe {
                <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd)
            },
            None => admin_server::bind(admin.listen)
                .with_context(|| format!("admin listen {}", admin.listen))?,
        };
        Some((listener, token))
    } else {
        None
    };
    let listen: Vec<String> = snapshot
        .config
        .gateway
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    // API keys and usage plans: the admin builds key tables into it, workers read them.
    let usage = Arc::new(UsageState::new());
    // Loaded (counters restored, first key table published) before a worker takes a request.
    let usage_plans = resources
        .as_ref()
        .map(|db| UsagePlans::load(db, usage.clone()))
        .transpose()
        .context("reading the API keys and usage plans")?;
    let server = Server::start(
        snapshot,
        Options {
            driver,
            usage: usage.clone(),
            inherited: inherited.clone(),
            exe,
        },
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(fd) = inherited.admin {
        // Handed over but not used (the admin API is off now): closed.
        // SAFETY: an inherited descriptor nothing else uses.
        unsafe { libc::close(fd) };
    }
    tracing::info!(
        "turnpike {} serving {} (config version {}) on {} with {} workers, driver {}",
        env!("CARGO_PKG_VERSION"),
        if chosen.note.is_some() {
            "the config applied through the admin API"
        } else {
            source.as_str()
        },
        chosen.version,
        listen.join(", "),
        server.workers,
        server.driver,
    );
    let mut admin_api = None;
    if let (Some((listener, token)), Some(store), Some(resources), Some(usage_plans)) =
        (admin_listener, store, resources, usage_plans)
    {
        let plane = Arc::new(Plane::new(
            server.state.clone(),
            server.driver,
            log,
            access_logs.clone(),
        ));
        let running = Running {
            plane,
            store,
            metrics,
            current: doc,
            version: chosen.version,
            resources,
            stored,
            usage: usage_plans,
            file: path.is_some().then(|| seed.clone()),
        };
        let api = Arc::new(Admin::new(running, token, admin.metrics_public));
        usage_plans::spawn_saver(api.clone(), usage_plans::SAVE_PERIOD)
            .context("starting the usage counter saver")?;
        // Certificate files are read again on SIGHUP and when they change on disk.
        tls_files::spawn_watch(api.clone(), tls_files::WATCH_PERIOD)
            .context("starting the TLS file watch")?;
        spawn_reload_listener(api.clone(), path.clone())
            .context("installing the SIGHUP handler (config reload)")?;
        server.state.admin_fd.store(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            std::sync::atomic::Ordering::Release,
        );
        let bound = admin_server::spawn(api.clone(), listener)?;
        admin_api = Some(api);
        tracing::info!(
            "admin API on http://{bound} (token in {})",
            token_file.display()
        );
    }
    if admin_api.is_none() {
        spawn_reload_refusal().context("installing the SIGHUP handler")?;
    }
    // systemd (Type=notify): serving now; after an upgrade this process is the main one.
    sd_notify(&format!("READY=1\nMAINPID={}", std::process::id()));
    server.run_until_signal()?;
    // In-flight requests have drained: the function runtimes hold nothing now.
    turnpike_proxy::function::stop_all(std::time::Duration::from_secs(5));
    // The workers have stopped counting: save what they counted since the last save.
    if let Some(admin) = &admin_api {
        admin.save_usage();
    }
    // Workers flushed their staged lines on the way out; write what is queued.
    if !access_logs.shutdown(std::time::Duration::from_secs(5)) {
        tracing::warn!("access log writers did not finish in 5 s; queued lines may be lost");
    }
    Ok(())
}

fn parse_and_check(source: &str, text: &str) -> anyhow::Result<ConfigFile> {
    let doc = config::parse(text).map_err(|e| invalid(source, &ConfigErrors::from(e)))?;
    Ok(doc)
}

fn invalid(source: &str, e: &ConfigErrors) -> anyhow::Error {
    print_errors(source, e);
    let n = e.0.len();
    anyhow::anyhow!(
        "{source} is not a valid config ({n} problem{})",
        if n == 1 { "" } else { "s" }
    )
}

/// On each SIGHUP (`systemctl reload turnpike`): the config file (`path`; none for the
/// embedded default) is read again and applied when it changed, and the running config's TLS
/// files are read again. A listener of its own beside the access log's (signal-hook delivers
/// a signal to every listener), so the reloads never wait on each other.
fn spawn_reload_listener(admin: Arc<Admin<Plane>>, path: Option<PathBuf>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("turnpike-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                let applied = path
                    .as_deref()
                    .map(|p| admin.reload_config_file(p, "SIGHUP"));
                // A new version read the TLS files already.
                if !matches!(applied, Some(FileReload::Applied { .. })) {
                    admin.reload_tls_files("SIGHUP");
                }
            }
        })?;
    Ok(())
}

/// Opens the config store. An upgrade's new process waits (up to 2 minutes) while the old
/// one drains and still holds the state directory.
fn open_store(dir: &Path, history: usize, upgrade: bool) -> anyhow::Result<ConfigStore> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut said = false;
    loop {
        match ConfigStore::open(dir, history) {
            Err(turnpike_admin::store::StoreError::Locked { .. })
                if upgrade && std::time::Instant::now() < until =>
            {
                if !said {
                    tracing::info!(
                        "upgrade: waiting for the old process to drain and release the state directory"
                    );
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// Sends `state` to systemd's notification socket (`NOTIFY_SOCKET`, sd_notify(3)): a path, or
/// an abstract name after `@`. Nothing when not run by systemd with `Type=notify`.
fn sd_notify(state: &str) {
    use std::os::{linux::net::SocketAddrExt, unix::net::UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()),
        None => std::os::unix::net::SocketAddr::from_pathname(&path),
    };
    let sent = UnixDatagram::unbound()
        .and_then(|sock| addr.and_then(|a| sock.send_to_addr(state.as_bytes(), &a)));
    if let Err(e) = sent {
        tracing::warn!(socket = %path, error = %e, "cannot notify systemd");
    }
}

/// Without the admin API no version can be stored, so SIGHUP does not re-read the config
/// file: it says so (access logs are still reopened by their own listener).
fn spawn_reload_refusal() -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("turnpike-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                tracing::warn!(
                    "SIGHUP: access logs reopened; the config file is not re-read while the \
                     admin API is off (admin.enabled: false): restart to apply it"
                );
            }
        })?;
    Ok(())
}

/// The admin's state directory and token file. The built-in defaults (/var/lib/turnpike,
/// /etc/turnpike/admin.token) need root; run as anyone else, they move to
/// ~/.local/state/turnpike so `turnpike serve` works out of the box.
pub(crate) fn admin_paths(admin: &config::AdminFile) -> (PathBuf, PathBuf) {
    let default_paths = admin.token_file.is_none() && admin.state_dir.is_none();
    if default_paths && !is_root() {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        let dir = home.join(".local/state/turnpike");
        return (dir.clone(), dir.join("admin.token"));
    }
    (
        PathBuf::from(
            admin
                .state_dir
                .as_deref()
                .unwrap_or(config::DEFAULT_STATE_DIR),
        ),
        PathBuf::from(
            admin
                .token_file
                .as_deref()
                .unwrap_or(config::DEFAULT_TOKEN_FILE),
        ),
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
