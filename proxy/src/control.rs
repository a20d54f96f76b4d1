//! The data plane as the control plane sees it: compile a document into a snapshot, publish
//! it to every worker, report the driver, change the log filter. The admin calls these from its
//! own threads; nothing here runs on a worker.

use std::sync::Arc;

use turnpike_admin::plane::{AccessLogReading, DataPlane};
use turnpike_core::{
    config::{ConfigErrors, ConfigFile, check_with},
    metrics::MetricsRegistry,
    tls::{StoredCertificates, StoredPem, TlsSource},
};
use turnpike_tuning::driver::DriverKind;

use crate::{access_log::LogSinks, server::ServerState, snapshot::Snapshot};

/// Changes the process's log filter (a `tracing` reload handle, in `main`).
pub type LogControl = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

pub struct Plane {
    state: Arc<ServerState>,
    driver: DriverKind,
    log: LogControl,
    access_logs: Arc<LogSinks>,
}

impl Plane {
    pub fn new(
        state: Arc<ServerState>,
        driver: DriverKind,
        log: LogControl,
        access_logs: Arc<LogSinks>,
    ) -> Plane {
        Plane {
            state,
            driver,
            log,
            access_logs,
        }
    }
}

/// Checks and compiles a document: what `turnpike check`, start-up and the admin API all do.
/// Certificate files are read here (blocking: call off the workers); `stored` holds the
/// admin store's certificates the document may name.
pub fn compile(
    doc: &ConfigFile,
    stored: &StoredCertificates,
    version: u64,
    metrics: &mut MetricsRegistry,
) -> Result<Snapshot, ConfigErrors> {
    Snapshot::build(check_with(doc, &FsTlsSource { stored })?, version, metrics)
}

/// TLS material for a config check: files from the file system, stored certificates from
/// the admin's store, the wall clock for expiry.
pub struct FsTlsSource<'a> {
    pub stored: &'a StoredCertificates,
}

impl TlsSource for FsTlsSource<'_> {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| format!("{path}: {e}"))
    }

    fn certificate(&self, id: &str) -> Option<StoredPem> {
        self.stored.certificates.get(id).cloned()
    }

    fn client_certificate(&self, id: &str) -> Option<StoredPem> {
        self.stored.client_certificates.get(id).cloned()
    }

    fn stored_unreadable(&self) -> Option<&str> {
        self.stored.unreadable.as_deref()
    }

    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

impl DataPlane for Plane {
    type Prepared = Snapshot;

    fn warnings(prepared: &Snapshot) -> Vec<turnpike_core::config::ConfigError> {
        prepared.config.warnings.clone()
    }

    fn prepare(
        &self,
        doc: &ConfigFile,
        stored: &StoredCertificates,
        version: u64,
        metrics: &mut MetricsRegistry,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut snapshot = compile(doc, stored, version, metrics)?;
        snapshot.open_access_logs(&self.access_logs)?;
        crate::function::start_all(&snapshot.config.functions).map_err(|e| {
            ConfigErrors(vec![turnpike_core::config::ConfigError::new(
                "functions",
                e,
            )])
        })?;
        Ok(snapshot)
    }

    fn publish(&self, snapshot: Snapshot) {
        self.state.snapshots.publish(snapshot);
    }

    fn driver(&self) -> String {
        self.driver.name().to_owned()
    }

    fn set_log_level(&self, filter: &str) -> Result<(), String> {
        (self.log)(filter)
    }

    fn flush_stage_cache(&self, api: &str, stage: &str) -> bool {
        crate::cache::find_stage(api, stage)
            .map(|s| s.flush())
            .is_some()
    }

    fn stage_cache_sizes(&self, api: &str, stage: &str) -> Option<Vec<(u64, u64)>> {
        crate::cache::find_stage(api, stage).map(|s| s.sizes())
    }

    fn functions(&self) -> Vec<turnpike_admin::plane::FunctionReading> {
        crate::function::readings()
    }

    fn connection(&self, method: &str, id: &str, body: &[u8]) -> (u16, Vec<u8>) {
        use crate::websocket::manage::{self, Command};
        let command = match method {
            "POST" => Command::Post(body.to_vec()),
            "DELETE" => Command::Delete,
            _ => Command::Get,
        };
        let reply = manage::command_blocking(id.as_bytes(), command);
        manage::http_answer(&reply, method == "DELETE")
    }

    fn cluster(&self, detail: bool) -> Option<serde_json::Value> {
        crate::cluster::status(detail)
    }

    fn extra_metrics(&self) -> String {
        crate::cluster::metrics()
    }

    fn access_logs(&self) -> Vec<AccessLogReading> {
        self.access_logs
            .sinks()
            .iter()
            .map(|s| AccessLogReading {
                destination: s.key().to_owned(),
                written_lines: s.written_lines(),
                dropped_lines: s.dropped_lines(),
            })
            .collect()
    }
}
