//! The data plane as the control plane sees it: compile a document into a snapshot, publish
//! it to every worker, report the driver, change the log filter. The admin calls these from its
//! own threads; nothing here runs on a worker.

use std::sync::Arc;

use turnpike_admin::plane::DataPlane;
use turnpike_core::{
    config::{ConfigErrors, ConfigFile, check},
    metrics::MetricsRegistry,
};
use turnpike_tuning::driver::DriverKind;

use crate::{server::ServerState, snapshot::Snapshot};

/// Changes the process's log filter (a `tracing` reload handle, in `main`).
pub type LogControl = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

pub struct Plane {
    state: Arc<ServerState>,
    driver: DriverKind,
    log: LogControl,
}

impl Plane {
    pub fn new(state: Arc<ServerState>, driver: DriverKind, log: LogControl) -> Plane {
        Plane { state, driver, log }
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
        compile(doc, version, metrics)
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
}
