//! The data plane as the control plane sees it: compile a document into a snapshot, publish
//! it to every worker, report the driver, change the log filter. The admin calls these from its
//! own threads; nothing here runs on a worker.

use std::sync::Arc;

use turnpike_admin::plane::{AccessLogReading, DataPlane};
use turnpike_core::{
    config::{ConfigErrors, ConfigFile, check},
    metrics::MetricsRegistry,
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
pub fn compile(
    doc: &ConfigFile,
    version: u64,
    metrics: &mut MetricsRegistry,
) -> Result<Snapshot, ConfigErrors> {
    Snapshot::build(check(doc)?, version, metrics)
}

impl DataPlane for Plane {
    type Prepared = Snapshot;

    fn prepare(
        &self,
        doc: &ConfigFile,
        version: u64,
        metrics: &mut MetricsRegistry,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut snapshot = compile(doc, version, metrics)?;
        snapshot.open_access_logs(&self.access_logs)?;
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
