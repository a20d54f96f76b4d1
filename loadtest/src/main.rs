//! turnpike-load: an HTTP/1.1 load generator on the same thread-per-core monoio runtime as the
//! gateway, over plain HTTP or TLS (rustls). Closed loop for maximum throughput (like wrk), constant-rate open loop with
//! coordinated-omission correction (like wrk2), HDR histograms, text/JSON/SVG reports.
//!
//! Module map:
//! - [`cli`]: flags -> checked [`run::Plan`];
//! - [`target`], [`scenario`], [`request`]: what to send, serialized once before the run;
//! - [`run`]: the main thread (threads, progress, fail-fast, merge);
//! - [`worker`]: one load thread (runtime, connection tasks, timeout watchdog);
//! - [`tls`]: the TLS client configuration from the flags (`https://` targets);
//! - [`conn`]: one connection's closed/open loop (the hot path);
//! - [`stream`]: a connection's bytes, plain or through rustls;
//! - [`response`]: response framing, bytes in, positions out;
//! - [`stats`], [`report`], [`svg`]: measurements and how they are shown.
//!
//! `main` only wires these together.

mod cli;
mod conn;
mod report;
mod request;
mod response;
mod run;
mod scenario;
mod stats;
mod stream;
mod svg;
mod target;
mod tls;
mod worker;

use anyhow::Context;
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(e) = real_main() {
        eprintln!("turnpike-load: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    let (json, svg_path) = (args.json.clone(), args.svg.clone());
    let plan = args.into_plan()?;
    let _ = turnpike_tuning::rlimit::raise_nofile();
    // The plan is read by every load thread for the whole process lifetime.
    let plan: &'static run::Plan = Box::leak(Box::new(plan));
    let outcome = run::run(plan)?;
    let report = report::Report::new(plan, outcome);
    print!("{}", report.text());
    if let Some(path) = json {
        std::fs::write(&path, report.json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = svg_path {
        std::fs::write(&path, svg::render(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
