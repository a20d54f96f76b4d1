//! What the control plane needs from the data plane, as a trait the proxy implements. The admin
//! never touches worker state: it hands over compiled snapshots and reads published numbers.

use turnpike_core::{
    config::{ConfigErrors, ConfigFile},
    metrics::MetricsRegistry,
    tls::StoredCertificates,
};

pub trait DataPlane: Send + Sync + 'static {
    /// A config compiled and ready to publish.
    type Prepared: Send;

    /// Checks `doc` exactly as `turnpike check` does (upstream names resolved) and compiles it
    /// as version `version`, taking its metric series from `metrics`.
    /// `stored`: the certificates of the admin's store, which the document may name.
    fn prepare(
        &self,
        doc: &ConfigFile,
        stored: &StoredCertificates,
        version: u64,
        metrics: &mut MetricsRegistry,
    ) -> Result<Self::Prepared, ConfigErrors>;

    /// Makes `prepared` the config every worker picks up before its next request; requests in
    /// flight finish on the one they started with.
    fn publish(&self, prepared: Self::Prepared);

    /// The I/O driver the workers run (`io_uring` or `epoll`).
    fn driver(&self) -> String;

    /// Changes the log filter at once.
    fn set_log_level(&self, filter: &str) -> Result<(), String>;

    /// Lines each access log destination has written and dropped (a writer that fell behind
    /// drops rather than stall a worker).
    fn access_logs(&self) -> Vec<AccessLogReading> {
        Vec::new()
    }
}

/// One access log destination's counters, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct AccessLogReading {
    /// The destination's stable name: a path, `stdout` or `syslog`.
    pub destination: String,
    pub written_lines: u64,
    pub dropped_lines: u64,
}
