//! Admin requests to responses: authentication, the config and its parts, versions and
//! rollback, tuning, status and metrics. No I/O here: [`crate::server`] parses requests off the
//! wire and writes what this returns.
//!
//! Every write builds a whole new document, validates it exactly as `turnpike check` does, stores
//! it durably as a new version, and only then publishes it; an invalid write changes nothing.
//! `If-Match` against the version's ETag keeps two operators from overwriting each other.
//!
//! Certificates and client certificates (`/v1/certificates`, `/v1/clientcertificates`) are
//! resources of the resource store ([`crate::db`]), not parts of the document: see
//! [`crate::certificates`] and the `certificates` submodule, which serves them. So are API
//! keys and usage plans (`/v1/apikeys`, `/v1/usageplans`): see [`crate::usage_plans`] and the
//! `api_keys` and `usage_plans` submodules.

use std::{collections::HashSet, sync::Arc, time::Instant};

use serde_json::{Value, json};
use turnpike_core::{
    config::{ConfigError, ConfigFile, parse, parse_value, to_yaml},
    metrics::{MetricsRegistry, SeriesKey},
    tls::StoredCertificates,
};

use crate::{
    db::ResourceDb,
    plane::DataPlane,
    prometheus,
    resources::{self, EditError, Resource, Write},
    store::{ConfigStore, VersionMeta},
    tls_files,
    token::AdminToken,
    usage_plans::{UsagePlans, records::missing_stages},
};

mod api_keys;
mod certificates;
mod stage_cache;
mod usage_plans;

/// A request as the server parsed it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, still percent-encoded, without the query.
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a [u8], &'a [u8])],
    pub body: &'a [u8],
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }

    fn wants_yaml(&self) -> bool {
        self.query.split('&').any(|p| p == "format=yaml")
            || self.header("accept").is_some_and(|a| contains(a, b"yaml"))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A response to write back.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// The config version, sent as `ETag: "<n>"`.
    pub etag: Option<u64>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &Value) -> Response {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            etag: None,
            body,
        }
    }

    /// 204, no body.
    pub fn no_content() -> Response {
        Response {
            status: 204,
            content_type: "application/json",
            etag: None,
            body: Vec::new(),
        }
    }

    /// A JSON body made elsewhere, sent as it is.
    pub fn raw_json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: "application/json",
            etag: None,
            body,
        }
    }

    pub fn message(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &json!({ "message": message.into() }))
    }

    fn edit_error(e: EditError) -> Response {
        if e.errors.is_empty() {
            return Response::message(e.status, e.message);
        }
        let errors: Vec<Value> = e
            .errors
            .iter()
            .map(|c| json!({ "path": c.path, "reason": c.reason }))
            .collect();
        Response::json(e.status, &json!({ "message": e.message, "errors": errors }))
    }

    fn with_etag(mut self, version: u64) -> Response {
        self.etag = Some(version);
        self
    }
}

/// The admin's state, shared by its connection threads.
pub struct Admin<P: DataPlane> {
    // The control plane's one lock: held by admin threads only, never by a worker.
    #[allow(clippy::disallowed_types)]
    state: std::sync::Mutex<State<P>>,
    token: AdminToken,
    metrics_public: bool,
    started: Instant,
}

struct State<P: DataPlane> {
    plane: Arc<P>,
    store: ConfigStore,
    metrics: MetricsRegistry,
    current: ConfigFile,
    version: u64,
    /// Settings changed since start that only take effect after a restart.
    pending_restart: Vec<String>,
    /// What the process started with, to tell which changes need a restart.
    started_with: ConfigFile,
    /// Certificates and client certificates (and, later, the other stored resources).
    resources: ResourceDb,
    /// The stored certificates as configs are checked with: `resources`' contents, kept in
    /// step with every write to it.
    stored: StoredCertificates,
    /// The TLS files the running config was built from, to tell whether a reload finds
    /// anything new.
    tls_files: tls_files::Contents,
    /// API keys, usage plans and their associations, kept in step with `resources`.
    usage: UsagePlans,
    /// The config file as it was last read (at start, or by a reload): a reload applies the
    /// file only when it differs from this, so an unedited file never undoes what was
    /// applied through the API since.
    file_seen: Option<ConfigFile>,
}

/// What starting the admin needs: the running config and where it came from.
pub struct Running<P: DataPlane> {
    pub plane: Arc<P>,
    pub store: ConfigStore,
    pub metrics: MetricsRegistry,
    pub current: ConfigFile,
    pub version: u64,
    /// The resource store, open.
    pub resources: ResourceDb,
    /// What `current` was checked with ([`crate::certificates::load_stored`] of `resources`).
    pub stored: StoredCertificates,
    /// API keys and usage plans, loaded from `resources` ([`UsagePlans::load`], which
    /// publishes the first key table for the workers).
    pub usage: UsagePlans,
    /// The config file's document as read at start (`None`: the embedded default).
    pub file: Option<ConfigFile>,
}

/// What [`Admin::reload_tls_files`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsReload {
    /// The running config names no TLS file.
    NoFiles,
    /// Every file holds what the running config was built from.
    Unchanged,
    /// The running config was built again from the new files and published as `version`.
    Reloaded { version: u64 },
    /// The new files do not make a valid config (each problem with its field path) or the
    /// version could not be stored; the running config keeps serving.
    Refused(Vec<ConfigError>),
}

/// What [`Admin::reload_config_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileReload {
    /// The file is unchanged since it was last read, or holds the running config.
    Unchanged,
    /// The file was applied as `version` (source `file`).
    Applied { version: u64 },
    /// The file cannot be read or is not a valid config (each problem with its field path);
    /// the running config keeps serving.
    Refused(Vec<ConfigError>),
}

impl<P: DataPlane> Admin<P> {
    pub fn new(running: Running<P>, token: AdminToken, metrics_public: bool) -> Admin<P> {
        // Read after the start-up check: a file changed in between is found different by
        // the first reload, which is the safe side.
        let tls_files = tls_files::read(&tls_files::paths(&running.current));
        #[allow(clippy::disallowed_types)]
        let state = std::sync::Mutex::new(State {
            plane: running.plane,
            store: running.store,
            metrics: running.metrics,
            started_with: running.current.clone(),
            current: running.current,
            version: running.version,
            pending_restart: Vec::new(),
            resources: running.resources,
            stored: running.stored,
            tls_files,
            usage: running.usage,
            file_seen: running.file,
        });
        Admin {
            state,
            token,
            metrics_public,
            started: Instant::now(),
        }
    }

    pub fn handle(&self, req: &Request) -> Response {
        if req.path == "/healthz" {
            return match req.method {
                "GET" | "HEAD" => Response::json(
                    200,
                    &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
                ),
                _ => Response::message(405, "Method Not Allowed"),
            };
        }
        let public = req.path == "/metrics" && self.metrics_public;
        if !public && !self.token.accepts(req.header("authorization")) {
            return Response::message(
                401,
                "Unauthorized: send Authorization: Bearer <admin token>",
            );
        }
        let mut st = self.lock();
        match (req.method, req.path) {
            ("GET", "/metrics") => self.metrics(&st, req),
            ("GET", "/v1/status") => self.status(&st),
            ("GET", "/v1/cluster") => match st.plane.cluster(true) {
                Some(v) => Response::json(200, &v),
                None => Response::message(404, "this node runs no cluster (no `cluster:` section)"),
            },
            ("GET", "/v1/functions") => functions(&st),
            ("GET", "/v1/tuning/host") => tuning_host(&st),
            (_, "/v1/deployments") if req.method == "GET" => deployments(&st),
            (_, "/v1/tuning") => match req.method {
                "GET" => tuning(&st),
                "PATCH" => self.patch_tuning(&mut st, req),
                _ => Response::message(405, "Method Not Allowed"),
            },
            (_, p) if p.starts_with("/v1/deployments/") => self.deployment(&mut st, req),
            (m, p) if p.starts_with("/v1/connections/") => {
                let id = &p["/v1/connections/".len()..];
                match m {
                    "POST" | "GET" | "DELETE" => {
                        let (status, body) = st.plane.connection(m, id, req.body);
                        Response::raw_json(status, body)
                    }
                    _ => Response::message(405, "Method Not Allowed"),
                }
            }
            (_, "/v1/config") if req.method == "PUT" => self.put_config(&mut st, req),
            (_, p) if in_collection(p, "/v1/certificates") => self.certificates(&mut st, req),
            (_, p) if in_collection(p, "/v1/clientcertificates") => {
                self.client_certificates(&mut st, req)
            }
            (_, p) if in_collection(p, "/v1/apikeys") => api_keys::api_keys(&mut st, req),
            (_, p) if in_collection(p, "/v1/usageplans") => usage_plans::usage_plans(&mut st, req),
            (_, p) if stage_cache::names(p).is_some() => stage_cache::stage_cache(&st, req),
            (_, p) if p.starts_with("/v1/") => self.resource(&mut st, req),
            _ => Response::message(404, "Not Found"),
        }
    }

    /// Whether an `Authorization` header value carries the admin token.
    pub fn accepts_token(&self, authorization: Option<&[u8]>) -> bool {
        self.token.accepts(authorization)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<P>> {
        // A poisoned lock means a handler panicked mid-change; the state itself is only
        // replaced whole after a successful apply, so it is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves the usage counters the data plane moved since the last save (one store
    /// transaction; see [`crate::usage_plans::persist`]). Called every second by
    /// [`crate::usage_plans::spawn_saver`] and once at shutdown, after the workers stopped.
    /// A failure is logged; the next call tries again with everything unsaved.
    pub fn save_usage(&self) {
        let mut st = self.lock();
        let st = &mut *st;
        match st.usage.save_counters(&st.resources) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(associations = n, "usage counters saved"),
            Err(e) => tracing::error!("usage counters not saved: {e}"),
        }
    }

    /// The TLS files the running config names (see [`tls_files::paths`]).
    pub fn tls_file_paths(&self) -> Vec<String> {
        tls_files::paths(&self.lock().current)
    }

    /// Builds the running config again if a TLS file it names (a certificate chain or key, a
    /// truststore, a CA bundle) holds something other than what it was built from, and
    /// publishes it as a new version (source `tls-files`) so new handshakes use the new
    /// files; connections already open are kept. The new version is a copy of the running
    /// document: the workers pick up a snapshot when its version moves, and the deployment
    /// list then shows when the files were taken.
    ///
    /// On failure (a key that does not match its certificate, an expired certificate, a file
    /// that cannot be read) each problem is logged as a warning with its field path and the
    /// running config keeps serving. `trigger` says why this was called, for the log.
    /// Reads the config file at `path` again and, when it was edited since it was last read,
    /// applies it as a new version (source `file`) through the same checks as `PUT
    /// /v1/config`, as nginx's reload does (`systemctl reload`, SIGHUP). An unedited file
    /// changes nothing (what the API applied since stays), and neither does one that cannot
    /// be read or is invalid: each problem is logged with its field path.
    pub fn reload_config_file(&self, path: &std::path::Path, trigger: &str) -> FileReload {
        let shown = path.display().to_string();
        let refused = |errors: Vec<ConfigError>| {
            for err in &errors {
                tracing::error!(
                    trigger,
                    "{shown} not applied, the running config keeps serving: {}: {}",
                    err.path,
                    err.reason
                );
            }
            FileReload::Refused(errors)
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return refused(vec![ConfigError::new(".", format!("cannot read it: {e}"))]),
        };
        let doc = match parse(&text) {
            Ok(d) => d,
            Err(e) => return refused(vec![e]),
        };
        let mut st = self.lock();
        if st.file_seen.as_ref() == Some(&doc) {
            tracing::info!(
                trigger,
                version = st.version,
                "{shown} is unchanged since it was last read: the running config stays"
            );
            return FileReload::Unchanged;
        }
        st.file_seen = Some(doc.clone());
        if doc == st.current {
            tracing::info!(
                trigger,
                version = st.version,
                "{shown} holds the running config"
            );
            return FileReload::Unchanged;
        }
        match self.apply(&mut st, doc, "file") {
            Ok(a) => {
                tracing::info!(trigger, version = a.meta.version, "{shown} applied");
                for item in &a.restart {
                    tracing::warn!("{item}: takes effect at the next restart");
                }
                FileReload::Applied {
                    version: a.meta.version,
                }
            }
            Err(e) => {
                drop(st);
                refused(if e.errors.is_empty() {
                    vec![ConfigError::new(".", e.message)]
                } else {
                    e.errors
                })
            }
        }
    }

    pub fn reload_tls_files(&self, trigger: &str) -> TlsReload {
        let mut st = self.lock();
        let paths = tls_files::paths(&st.current);
        if paths.is_empty() {
            return TlsReload::NoFiles;
        }
        if tls_files::read(&paths) == st.tls_files {
            tracing::debug!(trigger, "TLS files unchanged");
            return TlsReload::Unchanged;
        }
        let doc = st.current.clone();
        match self.apply(&mut st, doc, "tls-files") {
            Ok(a) => {
                tracing::info!(
                    trigger,
                    version = a.meta.version,
                    "TLS files reloaded: new handshakes use them"
                );
                TlsReload::Reloaded {
                    version: a.meta.version,
                }
            }
            Err(e) => {
                let errors = if e.errors.is_empty() {
                    vec![ConfigError::new(".", e.message)]
                } else {
                    e.errors
                };
                for err in &errors {
                    tracing::warn!(
                        trigger,
                        "TLS files not reloaded, the running config keeps serving: {}: {}",
                        err.path,
                        err.reason
                    );
                }
                TlsReload::Refused(errors)
            }
        }
    }

    fn metrics(&self, st: &State<P>, req: &Request) -> Response {
        let driver = st.plane.driver();
        let access_logs = st.plane.access_logs();
        let functions = st.plane.functions();
        let info = prometheus::Info {
            version: env!("CARGO_PKG_VERSION"),
            driver: &driver,
            config_version: st.version,
            workers: st.metrics.workers(),
            access_logs: &access_logs,
            functions: &functions,
        };
        let format = prometheus::Format::from_accept(
            req.header("accept")
                .and_then(|a| std::str::from_utf8(a).ok()),
        );
        let mut body = prometheus::encode(&st.metrics.read(), &info);
        let extra = st.plane.extra_metrics();
        if !extra.is_empty()
            && let Some(end) = body.rfind("# EOF")
        {
            body.insert_str(end, &extra);
        }
        let body = match format {
            prometheus::Format::OpenMetrics => body,
            prometheus::Format::Text => prometheus::to_text_format(&body),
        };
        Response {
            status: 200,
            content_type: format.content_type(),
            etag: None,
            body: body.into_bytes(),
        }
    }

    fn status(&self, st: &State<P>) -> Response {
        let reading = st.metrics.read();
        let workers: Vec<Value> = reading
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                json!({ "id": i, "config_version": w.config_generation, "connections": w.connections })
            })
            .collect();
        let all_current = reading
            .workers
            .iter()
            .all(|w| w.config_generation == st.version);
        Response::json(
            200,
            &json!({
                "version": env!("CARGO_PKG_VERSION"),
                "config_version": st.version,
                "workers_on_current_config": all_current,
                "driver": st.plane.driver(),
                "uptime_seconds": self.started.elapsed().as_secs(),
                "pid": std::process::id(),
                "workers": workers,
                "restart_required": st.pending_restart,
                "cluster": st.plane.cluster(false),
            }),
        )
        .with_etag(st.version)
    }

    fn put_config(&self, st: &mut State<P>, req: &Request) -> Response {
        if let Some(r) = precondition(st, req) {
            return r;
        }
        let text = match std::str::from_utf8(req.body) {
            Ok(t) if !t.trim().is_empty() => t,
            Ok(_) => return Response::message(400, "PUT /v1/config needs a document in the body"),
            Err(_) => return Response::message(400, "the body is not UTF-8"),
        };
        match parse(text) {
            Ok(mut doc) => {
                // A document without an admin section keeps the running one (it holds where
                // this very store lives).
                if doc.admin.is_default() {
                    doc.admin = st.current.admin.clone();
                }
                // Nor does one without a gateway section fall back to the defaults: that would
                // move the listen address to 0.0.0.0:8080 at the next restart, unasked.
                if !names_gateway(text) {
                    doc.gateway = st.current.gateway.clone();
                }
                written(self.apply(st, doc, "api"), 200)
            }
            Err(e) => Response::edit_error(EditError::invalid(vec![e])),
        }
    }

    fn resource(&self, st: &mut State<P>, req: &Request) -> Response {
        let Some(r) = Resource::parse(req.path) else {
            return Response::message(404, "Not Found");
        };
        let write = match req.method {
            "GET" | "HEAD" => {
                return match resources::get(&st.current, &r) {
                    Ok(_) if r == Resource::Config && req.wants_yaml() => Response {
                        status: 200,
                        content_type: "application/yaml",
                        etag: Some(st.version),
                        body: to_yaml(&st.current).into_bytes(),
                    },
                    Ok(v) => Response::json(200, &v).with_etag(st.version),
                    Err(e) => Response::edit_error(e),
                };
            }
            "POST" => Write::Create,
            "PUT" => Write::Replace,
            "PATCH" => Write::Patch,
            "DELETE" => Write::Delete,
            _ => return Response::message(405, "Method Not Allowed"),
        };
        if let Some(resp) = precondition(st, req) {
            return resp;
        }
        let body = if write == Write::Delete || req.body.is_empty() {
            None
        } else {
            match std::str::from_utf8(req.body)
                .map_err(|_| ConfigError::new(".", "the body is not UTF-8"))
                .and_then(parse_value)
            {
                Ok(v) => Some(v),
                Err(e) => return Response::edit_error(EditError::invalid(vec![e])),
            }
        };
        match resources::edit(&st.current, &r, write, body) {
            Ok(doc) => written(
                self.apply(st, doc, "api"),
                if write == Write::Create { 201 } else { 200 },
            ),
            Err(e) => Response::edit_error(e),
        }
    }

    fn deployment(&self, st: &mut State<P>, req: &Request) -> Response {
        let rest = req.path.trim_start_matches("/v1/deployments/");
        let (id, action) = match rest.split_once('/') {
            Some((id, action)) => (id, Some(action)),
            None => (rest, None),
        };
        let Ok(version) = id.parse::<u64>() else {
            return Response::message(404, format!("no deployment {id:?}"));
        };
        let stored = match st.store.get(version) {
            Ok(s) => s,
            Err(e) => return Response::message(404, format!("no deployment {version}: {e}")),
        };
        match (req.method, action) {
            ("GET", None) => Response::json(
                200,
                &json!({ "deployment": meta_json(&stored.meta, st.version), "config": serde_json::to_value(&stored.document).unwrap_or_default() }),
            ),
            ("POST", Some("rollback")) => {
                if let Some(r) = precondition(st, req) {
                    return r;
                }
                written(
                    self.apply(st, stored.document, &format!("rollback:{version}")),
                    200,
                )
            }
            _ => Response::message(405, "Method Not Allowed"),
        }
    }

    fn patch_tuning(&self, st: &mut State<P>, req: &Request) -> Response {
        if let Some(r) = precondition(st, req) {
            return r;
        }
        let patch = match std::str::from_utf8(req.body)
            .map_err(|_| ConfigError::new(".", "the body is not UTF-8"))
            .and_then(parse_value)
        {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Response::message(400, "PATCH /v1/tuning takes an object of knobs"),
            Err(e) => return Response::edit_error(EditError::invalid(vec![e])),
        };
        if patch.contains_key("driver") {
            return Response::message(
                400,
                "the I/O driver is chosen at start (turnpike serve --driver)",
            );
        }
        let mut doc = serde_json::to_value(&st.current).unwrap_or_default();
        resources::merge_patch(&mut doc["gateway"], &Value::Object(patch.clone()));
        let doc = match resources::from_value(doc) {
            Ok(d) => d,
            Err(e) => return Response::edit_error(e),
        };
        written(self.apply(st, doc, "tuning"), 200)
    }

    /// Validates, stores, publishes. The document only becomes current once all three worked.
    /// A write that changes nothing (`api`, `tuning`, `file`: the same document, over the same
    /// certificate files) stores no version: the history keeps the configs that differ.
    fn apply(
        &self,
        st: &mut State<P>,
        doc: ConfigFile,
        source: &str,
    ) -> Result<Applied, EditError> {
        // The certificate files it names count too: the same document over replaced files
        // is a change (new handshakes must get the new certificates).
        if doc == st.current
            && matches!(source, "api" | "tuning" | "file")
            && tls_files::read(&tls_files::paths(&doc)) == st.tls_files
            && let Some(meta) = st
                .store
                .list()
                .into_iter()
                .find(|m| m.version == st.version)
        {
            return Ok(Applied {
                meta,
                restart: st.pending_restart.clone(),
                warnings: Vec::new(),
                unchanged: true,
            });
        }
        let prepared = self.prepare(st, &doc, None)?;
        self.commit(st, doc, source, prepared)
    }

    /// Checks and compiles `doc` as the next version, with the stored certificates `stored`
    /// (default: the store's). Changes nothing.
    fn prepare(
        &self,
        st: &mut State<P>,
        doc: &ConfigFile,
        stored: Option<&StoredCertificates>,
    ) -> Result<Prepared<P::Prepared>, EditError> {
        if doc.admin.state_dir != st.current.admin.state_dir {
            return Err(EditError::invalid(vec![ConfigError::new(
                "admin.state_dir",
                "read from the config file at start; change it there and restart with --replace-state",
            )]));
        }
        // Read before the check reads them: a file that changes in between is seen as
        // changed by the next reload, never missed.
        let files = tls_files::read(&tls_files::paths(doc));
        let version = st.store.next_version();
        let snapshot = st
            .plane
            .prepare(doc, stored.unwrap_or(&st.stored), version, &mut st.metrics)
            .map_err(|e| EditError::invalid(e.0))?;
        Ok(Prepared { snapshot, files })
    }

    /// Stores `doc` as a new version and publishes what [`Self::prepare`] made of it.
    fn commit(
        &self,
        st: &mut State<P>,
        doc: ConfigFile,
        source: &str,
        prepared: Prepared<P::Prepared>,
    ) -> Result<Applied, EditError> {
        let meta = st.store.append(&doc, source).map_err(|e| EditError {
            status: 500,
            message: format!("the config could not be stored, so it was not applied: {e}"),
            errors: Vec::new(),
        })?;
        let warnings = P::warnings(&prepared.snapshot);
        st.plane.publish(prepared.snapshot);
        st.tls_files = prepared.files;
        st.metrics.retain(&series_of(&doc));
        if doc.gateway.log_level != st.current.gateway.log_level
            && let Err(e) = st
                .plane
                .set_log_level(doc.gateway.log_level.as_deref().unwrap_or("info"))
        {
            tracing::warn!("log level not changed: {e}");
        }
        let restart = restart_required(&st.started_with, &doc);
        tracing::info!(version = meta.version, source, "config applied");
        for w in &warnings {
            tracing::warn!(version = meta.version, "{}: {}", w.path, w.reason);
        }
        for (id, plan) in st.usage.plans() {
            let missing = missing_stages(plan, &doc);
            if !missing.is_empty() {
                tracing::warn!(
                    "usage plan {id} names API stages this config does not have ({}): it does \
                     not apply there",
                    missing.join(", ")
                );
            }
        }
        st.current = doc;
        st.version = meta.version;
        st.pending_restart = restart.clone();
        Ok(Applied {
            meta,
            restart,
            warnings,
            unchanged: false,
        })
    }
}

struct Applied {
    meta: VersionMeta,
    restart: Vec<String>,
    /// What the check warned about (the config was applied all the same).
    warnings: Vec<ConfigError>,
    /// The document was the running one: nothing was stored or published.
    unchanged: bool,
}

/// A compiled config waiting to be stored and published, with the TLS files it was built from.
struct Prepared<S> {
    snapshot: S,
    files: tls_files::Contents,
}

/// Whether `path` is `collection` or one of its members (`collection/...`).
fn in_collection(path: &str, collection: &str) -> bool {
    path.strip_prefix(collection)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn written(result: Result<Applied, EditError>, status: u16) -> Response {
    match result {
        Ok(a) => Response::json(
            status,
            &json!({
                "config_version": a.meta.version,
                "unchanged": a.unchanged,
                "restart_required": a.restart,
                "warnings": a.warnings.iter().map(|w| json!({ "path": w.path, "reason": w.reason })).collect::<Vec<_>>(),
            }),
        )
        .with_etag(a.meta.version),
        Err(e) => Response::edit_error(e),
    }
}

/// Whether a document's text has a `gateway` key (`gateway:` with no value is refused by the
/// parse before this is asked). The
/// parsed [`ConfigFile`] cannot tell: serde fills a missing section with its defaults. Text
/// that parses as a document but not as a value (which should not happen) counts as giving
/// one, so the document is taken as written.
fn names_gateway(text: &str) -> bool {
    parse_value(text).map_or(true, |v| v.get("gateway").is_some())
}

/// `If-Match`: `*`, or the current version's ETag (quoted or not). Anything else is stale.
fn precondition<P: DataPlane>(st: &State<P>, req: &Request) -> Option<Response> {
    let given = req.header("if-match")?;
    let given = String::from_utf8_lossy(given);
    let ok = given.split(',').map(str::trim).any(|tag| {
        let tag = tag.trim_start_matches("W/").trim_matches('"');
        tag == "*" || tag == st.version.to_string()
    });
    (!ok).then(|| {
        Response::message(
            412,
            format!(
                "the config is at version {}, not {}",
                st.version,
                given.trim()
            ),
        )
        .with_etag(st.version)
    })
}

/// Host findings as JSON: `[{name, status, found, want, fix}]`.
pub fn findings_json(findings: &[turnpike_tuning::host::Finding]) -> Value {
    findings
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "status": f.status.name(),
                "found": f.found,
                "want": f.want,
                "fix": f.fix,
            })
        })
        .collect()
}

/// `GET /v1/tuning/host`: what on this host holds the gateway back (`turnpike tune check`).
fn tuning_host<P: DataPlane>(st: &State<P>) -> Response {
    let findings = turnpike_tuning::host::check(st.metrics.workers());
    Response::json(200, &json!({ "findings": findings_json(&findings) }))
}

/// `GET /v1/functions`: each function, its processes (or, for a remote one, its Invoke URL)
/// and counters.
fn functions<P: DataPlane>(st: &State<P>) -> Response {
    let items: Vec<Value> = st
        .plane
        .functions()
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "invoke_uri": f.invoke_uri,
                "processes": f.processes,
                "queued": f.queued,
                "invocations": f.invocations,
                "errors": f.errors,
                "throttles": f.throttles,
                "timeouts": f.timeouts,
                "restarts": f.restarts,
                "duration_ms_total": f.duration_us / 1000,
                "queue_wait_ms_total": f.queue_wait_us / 1000,
            })
        })
        .collect();
    Response::json(200, &json!({ "items": items }))
}

fn deployments<P: DataPlane>(st: &State<P>) -> Response {
    let list: Vec<Value> = st
        .store
        .list()
        .iter()
        .map(|m| meta_json(m, st.version))
        .collect();
    Response::json(
        200,
        &json!({ "config_version": st.version, "deployments": list }),
    )
    .with_etag(st.version)
}

fn meta_json(m: &VersionMeta, current: u64) -> Value {
    json!({
        "version": m.version,
        "applied_at": turnpike_core::tls::iso_time((m.applied_at_unix_ms / 1000) as i64),
        "applied_at_unix_ms": m.applied_at_unix_ms,
        "source": m.source,
        "bytes": m.bytes,
        "current": m.version == current,
    })
}

fn tuning<P: DataPlane>(st: &State<P>) -> Response {
    let g = serde_json::to_value(&st.current.gateway).unwrap_or_default();
    let mut live = g.clone();
    if let Value::Object(o) = &mut live {
        o.remove("listen");
        o.remove("workers");
        o.entry("log_level").or_insert(Value::String("info".into()));
    }
    Response::json(
        200,
        &json!({
            "live": live,
            "restart": { "listen": g["listen"], "workers": g["workers"], "driver": st.plane.driver() },
            "restart_required": st.pending_restart,
        }),
    )
    .with_etag(st.version)
}

/// Settings that differ from what the process started with and only apply after a restart.
fn restart_required(started: &ConfigFile, now: &ConfigFile) -> Vec<String> {
    let mut out = Vec::new();
    if started.gateway.listen != now.gateway.listen {
        out.push("gateway.listen".to_owned());
    }
    if started.gateway.workers != now.gateway.workers {
        out.push("gateway.workers".to_owned());
    }
    if started.admin != now.admin {
        out.push("admin".to_owned());
    }
    out
}

/// The metric series a document's routes produce.
pub fn series_of(doc: &ConfigFile) -> HashSet<SeriesKey> {
    let mut out = HashSet::new();
    for api in &doc.apis {
        for stage in &api.stages {
            for route in &api.routes {
                out.insert(SeriesKey {
                    api: api.name.clone(),
                    stage: stage.name.clone(),
                    route: route.key.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
