//! What the control plane needs from the data plane, as a trait the proxy implements. The admin
//! never touches worker state: it hands over compiled snapshots and reads published numbers.

use turnpike_core::{
    config::{ConfigError, ConfigErrors, ConfigFile},
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

    /// What the check of `prepared` warned about (valid, but likely not what was meant).
    fn warnings(_prepared: &Self::Prepared) -> Vec<ConfigError> {
        Vec::new()
    }

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

    /// Empties the cache of stage `stage` of API `api` on every core (AWS `FlushStageCache`);
    /// each core drops its entries before it next serves from them. `false`: no running
    /// route caches on that stage.
    fn flush_stage_cache(&self, _api: &str, _stage: &str) -> bool {
        false
    }

    /// Entries and bytes each core's cache of the stage holds (as of its last tick); `None`
    /// when no running route caches on that stage.
    fn stage_cache_sizes(&self, _api: &str, _stage: &str) -> Option<Vec<(u64, u64)>> {
        None
    }

    /// The functions the gateway runs, with their counters.
    fn functions(&self) -> Vec<FunctionReading> {
        Vec::new()
    }

    /// A WebSocket API's `@connections` command (`POST` a message, `GET`, `DELETE`) for the
    /// connection `id`, carried to the core that holds it: the HTTP status and JSON body
    /// (410 for a connection that is not open).
    fn connection(&self, _method: &str, _id: &str, _body: &[u8]) -> (u16, Vec<u8>) {
        (410, br#"{"message":"Gone"}"#.to_vec())
    }

    /// The cluster's members for `/v1/status` (`None`: no cluster), and with each
    /// cluster-scoped counter's per-node usage for `/v1/cluster` (`detail`).
    fn cluster(&self, _detail: bool) -> Option<serde_json::Value> {
        None
    }

    /// Extra `/metrics` families in the text exposition format (the cluster's).
    fn extra_metrics(&self) -> String {
        String::new()
    }
}

/// One function's state and counters, for `/v1/functions` and `/metrics`. Times are summed
/// microseconds.
#[derive(Debug, Clone, Default)]
pub struct FunctionReading {
    pub name: String,
    /// A remote function's Invoke URL (`None`: the gateway runs it).
    pub invoke_uri: Option<String>,
    /// Runtime processes configured (`concurrency`).
    pub processes: u32,
    /// Invocations waiting for a process now.
    pub queued: u64,
    /// Invocations handed to a runtime.
    pub invocations: u64,
    /// Invocations that ended in the function's error or a runtime crash.
    pub errors: u64,
    /// Invocations refused because the queue was full (503).
    pub throttles: u64,
    /// Invocations that overran the timeout (504).
    pub timeouts: u64,
    /// Runtime processes started again after they exited or were killed.
    pub restarts: u64,
    /// Time runtimes spent on invocations (from hand-over to answer).
    pub duration_us: u64,
    /// Time invocations waited in the queue for a process.
    pub queue_wait_us: u64,
}

/// One access log destination's counters, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct AccessLogReading {
    /// The destination's stable name: a path, `stdout` or `syslog`.
    pub destination: String,
    pub written_lines: u64,
    pub dropped_lines: u64,
}
