//! [`ConfigFile`] -> [`Config`]: every reference resolved, every value in range, every template
//! rendered. Collects all problems instead of stopping at the first, each with its field path.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use super::{
    AdminFile, ApiFile, Config, ConfigError, ConfigErrors, ConfigFile, GatewayFile,
    IntegrationFile, IntegrationType,
    model::{
        AccessLog, Admin, Api, DEFAULT_INTEGRATION_TIMEOUT, DEFAULT_STATE_DIR, DEFAULT_TOKEN_FILE,
        Gateway, HttpProxy, Integration, IntegrationKind, Listener, Mock, Route, Stage,
        UpstreamPolicy, UpstreamTls,
    },
};
use crate::{
    domain::{Domain, DomainTable, Mapping},
    gateway_response::{GatewayResponseFile, ResponseType},
    route::{RouteKey, RouteTable},
    uri::{UriTemplate, is_var_name},
};

/// Checks a parsed document that needs no files or stored certificates (no TLS settings) and
/// builds the model the data plane runs. See [`check_with`].
pub fn check(file: &ConfigFile) -> Result<Config, ConfigErrors> {
    check_with(file, &crate::tls::NoTlsSource)
}

/// Checks a parsed document and builds the model the data plane runs. Certificate and
/// truststore files, stored certificates and the time certificates are judged at come from
/// `tls`. Errors: every problem found, each with its field path.
pub fn check_with(
    file: &ConfigFile,
    tls: &dyn crate::tls::TlsSource,
) -> Result<Config, ConfigErrors> {
    let mut c = Checker::default();
    let gateway = c.gateway(&file.gateway);
    let admin = c.admin(&file.admin);
    let mut apis: Vec<Api> = file
        .apis
        .iter()
        .enumerate()
        .filter_map(|(i, a)| c.api(i, a))
        .collect();
    let mut seen = HashMap::new();
    for (i, a) in file.apis.iter().enumerate() {
        if let Some(first) = seen.insert(a.name.as_str(), i) {
            c.err(
                format!("apis[{i}].name"),
                format!("{:?} is already the name of apis[{first}]", a.name),
            );
        }
    }
    let defaults: Vec<usize> = file
        .apis
        .iter()
        .enumerate()
        .filter(|(_, a)| a.default)
        .map(|(i, _)| i)
        .collect();
    if defaults.len() > 1 {
        c.err(
            format!("apis[{}].default", defaults[1]),
            "only one API may be the default",
        );
    }
    let domains = c.domains(file);
    let auth = c.auth_settings(file, tls);
    let functions = c.functions(file, &mut apis, tls);
    let tls = c.tls(file, &gateway.listen, &mut apis, tls);
    let cluster = file.cluster.as_ref().and_then(|f| c.cluster(f));
    if file.cluster.is_none() {
        c.cluster_scope_alone(file);
    }
    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    let default_api = defaults
        .first()
        .copied()
        .or(if apis.is_empty() { None } else { Some(0) });
    Ok(Config {
        gateway,
        admin,
        apis,
        domains,
        default_api,
        tls,
        auth,
        functions,
        warnings: c.warnings,
        cluster,
    })
}

#[derive(Default)]
pub(super) struct Checker {
    pub(super) errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Names of APIs and integrations: what fits a metric label and a URL path segment.
pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Checker {
    pub(super) fn err(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError::new(path, reason));
    }

    pub(super) fn error_count(&self) -> usize {
        self.errors.len()
    }

    pub(super) fn warn(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.warnings.push(ConfigError::new(path, reason));
    }

    /// A number within `lo..=hi` (the unit and range of [`super::terms`] win when the field
    /// is there, so the parser's and the check's messages agree).
    pub(super) fn range(&mut self, path: &str, v: u64, lo: u64, hi: u64) {
        let (lo, hi) = super::terms::bounds(path).map_or((lo, hi), |(_, l, h)| (l, h));
        if v < lo || v > hi {
            self.err(
                path,
                format!("{}, not {v}", super::terms::whole_number(path, lo, hi)),
            );
        }
    }

    fn gateway(&mut self, g: &GatewayFile) -> Gateway {
        let mut listen = Vec::new();
        if g.listen.is_empty() {
            self.err("gateway.listen", "at least one address is needed");
        }
        for (i, a) in g.listen.iter().enumerate() {
            let (tls, addr) = match a.strip_prefix("https://") {
                Some(rest) => (true, rest),
                None => (false, a.strip_prefix("http://").unwrap_or(a)),
            };
            match parse_listen(addr) {
                Some(addr) => listen.push(Listener { addr, tls }),
                None => self.err(
                    format!("gateway.listen[{i}]"),
                    format!("{a:?} is not an IP:port address (or https://IP:port)"),
                ),
            }
        }
        const HOUR: u64 = 3_600_000;
        self.range("gateway.header_timeout_ms", g.header_timeout_ms, 100, HOUR);
        self.range("gateway.idle_timeout_ms", g.idle_timeout_ms, 100, 24 * HOUR);
        self.range("gateway.drain_timeout_ms", g.drain_timeout_ms, 0, HOUR);
        self.range(
            "gateway.max_header_bytes",
            g.max_header_bytes as u64,
            1024,
            1 << 20,
        );
        self.range("gateway.max_headers", g.max_headers as u64, 8, 1000);
        let u = &g.upstream;
        self.range(
            "gateway.upstream.connect_timeout_ms",
            u.connect_timeout_ms,
            1,
            HOUR,
        );
        self.range(
            "gateway.upstream.max_idle_per_core",
            u.max_idle_per_core as u64,
            0,
            100_000,
        );
        self.range(
            "gateway.upstream.idle_timeout_ms",
            u.idle_timeout_ms,
            100,
            24 * HOUR,
        );
        self.range(
            "gateway.upstream.max_response_header_bytes",
            u.max_response_header_bytes as u64,
            1024,
            1 << 20,
        );
        self.range(
            "gateway.upstream.max_response_headers",
            u.max_response_headers as u64,
            8,
            crate::h1::request::MAX_HEADERS_CAP as u64,
        );
        Gateway {
            listen,
            workers: g.workers,
            header_timeout: ms(g.header_timeout_ms),
            idle_timeout: ms(g.idle_timeout_ms),
            drain_timeout: ms(g.drain_timeout_ms),
            max_header_bytes: g.max_header_bytes,
            max_headers: g.max_headers,
            upstream: UpstreamPolicy {
                connect_timeout: ms(u.connect_timeout_ms),
                max_idle_per_core: u.max_idle_per_core,
                idle_timeout: ms(u.idle_timeout_ms),
                max_response_header_bytes: u.max_response_header_bytes,
                max_response_headers: u.max_response_headers,
            },
            log_level: g.log_level.clone(),
            throttle: g.throttle.and_then(|t| {
                if t.scope == crate::cluster::Scope::Cluster {
                    self.err(
                        "gateway.throttle.scope",
                        "the account-level throttle holds per node; scope: cluster is for a \
                         stage's or route's throttle",
                    );
                }
                self.throttle("gateway.throttle", &t)
            }),
        }
    }

    fn throttle(
        &mut self,
        path: &str,
        t: &crate::usage::ThrottleFile,
    ) -> Option<crate::usage::Limit> {
        t.check().map_err(|e| self.err(path, e)).ok()
    }

    fn admin(&mut self, a: &AdminFile) -> Admin {
        let listen = match parse_listen(&a.listen) {
            Some(addr) => addr,
            None => {
                self.err(
                    "admin.listen",
                    format!("{:?} is not an IP:port address", a.listen),
                );
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9901)
            }
        };
        if a.enabled && !listen.ip().is_loopback() && !a.allow_remote {
            self.err(
                "admin.listen",
                format!(
                    "{listen} is not a loopback address; the admin API has no TLS yet, so set \
                     admin.allow_remote: true to expose it anyway"
                ),
            );
        }
        self.range("admin.history", a.history as u64, 1, 1000);
        for (field, value) in [("token_file", &a.token_file), ("state_dir", &a.state_dir)] {
            if value.as_ref().is_some_and(|p| p.is_empty()) {
                self.err(format!("admin.{field}"), "must not be empty");
            }
        }
        Admin {
            enabled: a.enabled,
            listen,
            token_file: a.token_file.as_deref().unwrap_or(DEFAULT_TOKEN_FILE).into(),
            state_dir: a.state_dir.as_deref().unwrap_or(DEFAULT_STATE_DIR).into(),
            default_paths: a.token_file.is_none() && a.state_dir.is_none(),
            metrics_public: a.metrics_public,
            history: a.history,
        }
    }

    fn api(&mut self, i: usize, a: &ApiFile) -> Option<Api> {
        let at = format!("apis[{i}]");
        let before = self.errors.len();
        if !is_name(&a.name) {
            self.err(
                format!("{at}.name"),
                format!("{:?}: use 1-128 letters, digits, '_', '-' or '.'", a.name),
            );
        }
        if a.max_body_bytes == 0 {
            self.err(format!("{at}.max_body_bytes"), "must be at least 1");
        }
        let stages = self.stages(&at, a);
        let index: HashMap<&str, u32> = a
            .integrations
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i as u32))
            .collect();
        let integrations: Vec<Integration> = a
            .integrations
            .iter()
            .map(|(name, f)| {
                self.integration(&format!("{at}.integrations.{name}"), name, f, &stages)
            })
            .collect();
        let authorizers = self.authorizers(&at, a, &stages);
        let models = self.models(&at, a);
        let resource_policy = self.resource_policy(&at, a);
        let mut routes = Vec::new();
        // Beside `routes` (same index): the index in the file, for messages.
        let mut route_at: Vec<usize> = Vec::new();
        // Parsed, beside `routes` (same index): what `route_settings` keys are matched against.
        let mut route_keys: Vec<RouteKey> = Vec::new();
        let mut table = RouteTable::new();
        for (r, route) in a.routes.iter().enumerate() {
            let rat = format!("{at}.routes[{r}]");
            let websocket = a.protocol == super::file::Protocol::Websocket;
            // WebSocket route keys are not paths: check_websocket.rs checks them.
            let key = match RouteKey::parse(if websocket { "$default" } else { &route.key }) {
                Ok(k) => k,
                Err(e) => {
                    self.err(format!("{rat}.key"), format!("{:?}: {e}", route.key));
                    continue;
                }
            };
            let Some(&integration) = index.get(route.integration.as_str()) else {
                self.err(
                    format!("{rat}.integration"),
                    super::terms::unknown_name(
                        "integration",
                        &route.integration,
                        "in this API",
                        index.keys().copied(),
                    ),
                );
                continue;
            };
            if websocket {
                if let Some(rt) = self.websocket_route(&rat, route, a, integration, &authorizers) {
                    routes.push(rt);
                    route_at.push(r);
                    // Keeps `route_keys` beside `routes`, so stages get one throttle slot per
                    // route (the stage's `throttle`).
                    route_keys.push(key);
                }
                continue;
            }
            if let IntegrationKind::HttpProxy(p) = &integrations[integration as usize].kind
                && let Ok(t) = UriTemplate::parse(&p.uri)
            {
                let have = key.params();
                for need in t.params() {
                    if !have.contains(&need) {
                        self.err(
                            format!("{rat}.integration"),
                            format!("integration {:?} uses {{{need}}} but route {:?} has no such parameter", route.integration, route.key),
                        );
                    }
                }
            }
            let auth = self.route_auth(&rat, route, a, &authorizers);
            let validation = self.route_validation(&rat, route, &models, &key.params());
            let cache = self.route_cache(&rat, route, &key.params());
            match table.insert(&key, routes.len() as u32) {
                Ok(()) => {
                    routes.push(Route {
                        key: route.key.clone(),
                        integration,
                        api_key_required: route.api_key_required,
                        auth,
                        validation,
                        cache,
                    });
                    route_keys.push(key);
                    route_at.push(r);
                }
                Err(c) => {
                    let first = match (routes.get(c.0), route_at.get(c.0)) {
                        (Some(first), Some(i)) => {
                            format!("routes[{i}] ({:?})", first.key)
                        }
                        _ => "another route".to_owned(),
                    };
                    self.err(
                        format!("{rat}.key"),
                        format!(
                            "{:?} duplicates {first}: one route per method and path",
                            route.key
                        ),
                    );
                }
            }
        }
        let cors = a
            .cors
            .as_ref()
            .and_then(|f| crate::cors::check(f, &format!("{at}.cors"), &mut self.errors));
        let gateway_responses = self.gateway_responses(&at, a);
        let websocket = self.websocket_api(&at, a, &routes, &route_at);
        let mut stages = stages;
        self.route_settings(&at, a, &route_keys, &routes, &mut stages);
        if a.stages.is_empty() {
            self.warn(
                format!("{at}.stages"),
                "no stages: nothing of this API is reachable",
            );
        }
        if self.errors.len() > before {
            return None;
        }
        let default_stage = stages
            .iter()
            .position(|s| s.name == "$default")
            .map(|i| i as u32);
        let stage_by_name = stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name != "$default")
            .map(|(i, s)| (s.name.as_bytes().into(), i as u32))
            .collect();
        Some(Api {
            name: a.name.clone(),
            max_body_bytes: a.max_body_bytes,
            integrations,
            routes,
            table,
            stages,
            cors,
            gateway_responses,
            default_stage,
            stage_by_name,
            authorizers,
            resource_policy,
            api_key_source: a.api_key_source,
            websocket,
        })
    }

    /// Warns about each `scope: cluster` throttle of a config with no `cluster:` section: it
    /// holds, counting this node alone.
    fn cluster_scope_alone(&mut self, file: &ConfigFile) {
        let reason = "scope: cluster, but this config has no `cluster:` section: the limit \
                      counts this node's traffic alone";
        for (i, a) in file.apis.iter().enumerate() {
            for (j, stage) in a.stages.iter().enumerate() {
                let at = format!("apis[{i}].stages[{j}]");
                if stage
                    .throttle
                    .is_some_and(|t| t.scope == crate::cluster::Scope::Cluster)
                {
                    self.warn(format!("{at}.throttle.scope"), reason);
                }
                for (key, settings) in &stage.route_settings {
                    if settings
                        .throttle
                        .is_some_and(|t| t.scope == crate::cluster::Scope::Cluster)
                    {
                        self.warn(format!("{at}.route_settings.{key}.throttle.scope"), reason);
                    }
                }
            }
        }
    }

    /// Each route's throttle on each stage: its `route_settings` entry, else the stage's
    /// default. A route key that names no route of the API is refused. A WebSocket API's
    /// entries name its route keys as written (`$connect`, `sendmessage`), matched exactly.
    fn route_settings(
        &mut self,
        at: &str,
        a: &ApiFile,
        keys: &[RouteKey],
        routes: &[Route],
        stages: &mut [Stage],
    ) {
        let websocket = a.protocol == super::file::Protocol::Websocket;
        for (s, (file, stage)) in a.stages.iter().zip(stages.iter_mut()).enumerate() {
            let sat = format!("{at}.stages[{s}]");
            let default = file
                .throttle
                .and_then(|t| self.throttle(&format!("{sat}.throttle"), &t));
            stage.route_throttle = vec![default; keys.len()];
            let scope = file.throttle.map(|t| t.scope).unwrap_or_default();
            stage.route_throttle_scope = vec![scope; keys.len()];
            for (key, settings) in &file.route_settings {
                let path = format!("{sat}.route_settings.{key}");
                if websocket {
                    let Some(r) = routes.iter().position(|rt| rt.key == *key) else {
                        self.err(path, format!("no route {key:?} in this API"));
                        continue;
                    };
                    if let Some(t) = &settings.throttle {
                        stage.route_throttle[r] = self.throttle(&format!("{path}.throttle"), t);
                        stage.route_throttle_scope[r] = t.scope;
                    }
                    continue;
                }
                let Ok(parsed) = RouteKey::parse(key) else {
                    self.err(
                        path,
                        format!("{key:?} is not a route key (`GET /pets`, `$default`)"),
                    );
                    continue;
                };
                let Some(r) = keys.iter().position(|k| *k == parsed) else {
                    self.err(path, format!("no route {key:?} in this API"));
                    continue;
                };
                if let Some(t) = &settings.throttle {
                    stage.route_throttle[r] = self.throttle(&format!("{path}.throttle"), t);
                    stage.route_throttle_scope[r] = t.scope;
                }
            }
        }
    }

    fn gateway_responses(
        &mut self,
        at: &str,
        a: &ApiFile,
    ) -> Vec<(ResponseType, GatewayResponseFile)> {
        let mut out = Vec::new();
        for (name, r) in &a.gateway_responses {
            let rat = format!("{at}.gateway_responses.{name}");
            let Some(t) = ResponseType::parse(name) else {
                self.err(
                    rat,
                    format!(
                        "{name:?} is not a gateway response type (AWS's: {})",
                        ResponseType::names()
                    ),
                );
                continue;
            };
            if let Some(status) = r.status
                && !(100..=599).contains(&status)
            {
                self.err(
                    format!("{rat}.status"),
                    format!("{status}: expected 100 to 599"),
                );
            }
            self.mock_headers(&rat, &r.headers);
            if let Some(ct) = &r.content_type
                && (ct.is_empty() || ct.bytes().any(|b| b < 0x20 || b == 0x7f))
            {
                self.err(format!("{rat}.content_type"), "not a valid media type");
            }
            if let Some(body) = &r.body
                && let Err(e) = crate::context::Template::parse(body)
            {
                self.err(format!("{rat}.body"), e);
            }
            out.push((t, r.clone()));
        }
        out
    }

    fn stages(&mut self, at: &str, a: &ApiFile) -> Vec<Stage> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (s, st) in a.stages.iter().enumerate() {
            let sat = format!("{at}.stages[{s}]");
            let valid = st.name == "$default"
                || (!st.name.is_empty()
                    && st.name.len() <= 128
                    && st
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')));
            if !valid {
                self.err(
                    format!("{sat}.name"),
                    format!(
                        "{:?}: use \"$default\" or letters, digits, '_' and '-'",
                        st.name
                    ),
                );
            }
            if !seen.insert(st.name.as_str()) {
                self.err(
                    format!("{sat}.name"),
                    format!("stage {:?} is defined twice", st.name),
                );
            }
            for (k, v) in &st.variables {
                if !is_var_name(k) {
                    self.err(
                        format!("{sat}.variables.{k}"),
                        "variable names use letters, digits and '_'",
                    );
                }
                let ok_value = !v.is_empty()
                    && v.len() <= 2048
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&b));
                if !ok_value {
                    self.err(
                        format!("{sat}.variables.{k}"),
                        format!("{v:?}: values use letters, digits and -._~:/?#&=,"),
                    );
                }
            }
            let access_log = st.access_log.as_ref().and_then(|l| {
                let dest = crate::access_log::LogDestination::parse(&l.destination)
                    .map_err(|e| self.err(format!("{sat}.access_log.destination"), e))
                    .ok();
                let format = crate::access_log::AccessLogFormat::parse(&l.format)
                    .map_err(|e| self.err(format!("{sat}.access_log.format"), e))
                    .ok();
                Some(AccessLog {
                    destination: dest?,
                    format: format?,
                })
            });
            let cache = self.stage_cache(&sat, st.cache.as_ref());
            out.push(Stage {
                name: st.name.clone(),
                variables: st.variables.clone(),
                access_log,
                client_certificate: None,
                route_throttle: Vec::new(),
                cache,
                route_throttle_scope: Vec::new(),
            });
        }
        out
    }

    fn integration(
        &mut self,
        at: &str,
        name: &str,
        f: &IntegrationFile,
        stages: &[Stage],
    ) -> Integration {
        if !is_name(name) {
            self.err(
                at.to_owned(),
                format!("integration name {name:?}: use letters, digits, '_', '-' or '.'"),
            );
        }
        let misplaced = |field: &str, set: bool| {
            set.then(|| {
                (
                    format!("{at}.{field}"),
                    format!("not a field of type {}", type_name(f.kind)),
                )
            })
        };
        let templated = !f.request_templates.is_empty()
            || f.passthrough_behavior.is_some()
            || !f.integration_responses.is_empty();
        if !matches!(f.kind, IntegrationType::Http | IntegrationType::Mock) {
            for (p, r) in [
                misplaced("request_templates", !f.request_templates.is_empty()),
                misplaced("passthrough_behavior", f.passthrough_behavior.is_some()),
                misplaced("integration_responses", !f.integration_responses.is_empty()),
            ]
            .into_iter()
            .flatten()
            {
                self.err(
                    p,
                    format!("{r}: mapping templates need type http (or mock)"),
                );
            }
        }
        if f.kind != IntegrationType::Http
            && let Some(r) = misplaced("http_method", f.http_method.is_some())
        {
            self.err(r.0, r.1);
        }
        let kind = match f.kind {
            IntegrationType::HttpProxy | IntegrationType::Http => {
                for (p, r) in [
                    misplaced("status", f.status.is_some()),
                    misplaced("headers", f.headers.is_some()),
                    misplaced("body", f.body.is_some()),
                    misplaced("function", f.function.is_some()),
                    misplaced("payload_format", f.payload_format.is_some()),
                ]
                .into_iter()
                .flatten()
                {
                    self.err(p, r);
                }
                let uri = f.uri.clone().unwrap_or_default();
                let targets = match &f.uri {
                    None => {
                        self.err(format!("{at}.uri"), "http_proxy needs a uri");
                        Vec::new()
                    }
                    Some(_) => self.stage_targets(&format!("{at}.uri"), &uri, stages),
                };
                if let Some(t) = f.timeout_ms {
                    self.range(&format!("{at}.timeout_ms"), t, 50, 3_600_000);
                }
                let tls = UriTemplate::parse(&uri)
                    .is_ok_and(|t| t.tls)
                    .then(UpstreamTls::default);
                let method = f.http_method.as_ref().map(|m| {
                    let upper = m.to_ascii_uppercase();
                    if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
                        self.err(
                            format!("{at}.http_method"),
                            format!("{m:?} is not an HTTP method"),
                        );
                    }
                    upper
                });
                IntegrationKind::HttpProxy(HttpProxy {
                    tls,
                    uri,
                    method,
                    timeout: f.timeout_ms.map_or(DEFAULT_INTEGRATION_TIMEOUT, ms),
                    preserve_host: f.preserve_host.unwrap_or(false),
                    targets,
                })
            }
            IntegrationType::Function => {
                for (p, r) in [
                    misplaced("uri", f.uri.is_some()),
                    misplaced("preserve_host", f.preserve_host.is_some()),
                    misplaced("status", f.status.is_some()),
                    misplaced("headers", f.headers.is_some()),
                    misplaced("body", f.body.is_some()),
                    misplaced("tls_config", f.tls_config.is_some()),
                    misplaced("timeout_ms", f.timeout_ms.is_some()),
                ]
                .into_iter()
                .flatten()
                {
                    self.err(p, r);
                }
                let function = match &f.function {
                    Some(name) => match super::check_function::function_ref(name) {
                        Ok(name) => name.to_owned(),
                        Err(e) => {
                            self.err(format!("{at}.function"), e);
                            String::new()
                        }
                    },
                    None => {
                        self.err(
                            format!("{at}.function"),
                            "a function integration needs a function",
                        );
                        String::new()
                    }
                };
                let format = match f.payload_format.as_deref() {
                    None | Some("2.0") => crate::auth::request_authorizer::PayloadFormat::V2,
                    Some("1.0") => crate::auth::request_authorizer::PayloadFormat::V1,
                    Some(other) => {
                        self.err(
                            format!("{at}.payload_format"),
                            format!("{other:?}: expected \"1.0\" or \"2.0\""),
                        );
                        crate::auth::request_authorizer::PayloadFormat::V2
                    }
                };
                IntegrationKind::Function(super::model::FunctionIntegration {
                    function,
                    index: u32::MAX,
                    format,
                })
            }
            IntegrationType::Mock => {
                for (p, r) in [
                    misplaced("uri", f.uri.is_some()),
                    misplaced("timeout_ms", f.timeout_ms.is_some()),
                    misplaced("preserve_host", f.preserve_host.is_some()),
                    misplaced("function", f.function.is_some()),
                    misplaced("payload_format", f.payload_format.is_some()),
                ]
                .into_iter()
                .flatten()
                {
                    self.err(p, r);
                }
                if !f.integration_responses.is_empty() {
                    for (field, set) in [("status", f.status.is_some()), ("body", f.body.is_some())]
                    {
                        if set {
                            self.err(
                                format!("{at}.{field}"),
                                "a mock with integration_responses answers with them: the \
                                 request template's statusCode selects one, its template makes \
                                 the body",
                            );
                        }
                    }
                }
                let status = f.status.unwrap_or(200);
                if !(200..=599).contains(&status) {
                    self.err(
                        format!("{at}.status"),
                        format!("{status}: expected 200 to 599"),
                    );
                }
                let body = f.body.clone().unwrap_or_default();
                if matches!(status, 204 | 304) && !body.is_empty() {
                    self.err(
                        format!("{at}.body"),
                        format!("a {status} response has no body"),
                    );
                }
                let headers = f.headers.clone().unwrap_or_default();
                self.mock_headers(at, &headers);
                IntegrationKind::Mock(Mock {
                    status,
                    headers: headers.into_iter().collect(),
                    body,
                })
            }
        };
        let mapping = match f.kind {
            IntegrationType::Mock => {
                for (field, set) in [
                    ("request_parameters", !f.request_parameters.is_empty()),
                    ("response_parameters", !f.response_parameters.is_empty()),
                ] {
                    if set {
                        self.err(
                            format!("{at}.{field}"),
                            "a mock has no request or response to map: set its status, headers \
                             and body",
                        );
                    }
                }
                None
            }
            _ => self.mapping(at, f),
        };
        let transform = match f.kind {
            IntegrationType::Http => Some(self.transform(at, f)),
            IntegrationType::Mock if templated => Some(self.transform(at, f)),
            _ => None,
        };
        Integration {
            name: name.to_owned(),
            kind,
            mapping,
            transform,
        }
    }

    /// An `http` or templated `mock` integration's templates and integration responses.
    fn transform(
        &mut self,
        at: &str,
        f: &IntegrationFile,
    ) -> std::sync::Arc<crate::transform::Transform> {
        let specs: Vec<crate::transform::ResponseSpec<'_>> = f
            .integration_responses
            .iter()
            .map(|r| crate::transform::ResponseSpec {
                status: r.status,
                selection_pattern: r.selection_pattern.as_deref(),
                templates: &r.response_templates,
                parameters: &r.response_parameters,
            })
            .collect();
        match crate::transform::Transform::compile(
            &f.request_templates,
            f.passthrough_behavior.unwrap_or_default(),
            &specs,
        ) {
            Ok(t) => std::sync::Arc::new(t),
            Err(errors) => {
                for (field, why) in errors {
                    self.err(format!("{at}.{field}"), why);
                }
                std::sync::Arc::default()
            }
        }
    }

    /// The integration's parameter mapping; errors name the key (`request_parameters
    /// ["append:header.x"]`, `response_parameters["500"]["overwrite:statuscode"]`).
    fn mapping(
        &mut self,
        at: &str,
        f: &IntegrationFile,
    ) -> Option<std::sync::Arc<crate::mapping::ParameterMapping>> {
        match crate::mapping::ParameterMapping::compile(
            &f.request_parameters,
            &f.response_parameters,
        ) {
            Ok(m) => m.map(std::sync::Arc::new),
            Err(errors) => {
                for e in errors {
                    let path = match (&e.status, e.key.is_empty()) {
                        (Some(s), true) => format!("{at}.response_parameters[{s:?}]"),
                        (Some(s), false) => {
                            format!("{at}.response_parameters[{s:?}][{:?}]", e.key)
                        }
                        (None, _) => format!("{at}.request_parameters[{:?}]", e.key),
                    };
                    self.err(path, e.reason);
                }
                None
            }
        }
    }

    /// An upstream URI rendered for each stage (same index as `stages`): the target, or why
    /// that stage cannot use it (a stage variable it lacks: warned, requests there get 500).
    pub(super) fn stage_targets(
        &mut self,
        at: &str,
        uri: &str,
        stages: &[Stage],
    ) -> Vec<Result<crate::uri::UpstreamTarget, String>> {
        let t = match UriTemplate::parse(uri) {
            Ok(t) => t,
            Err(e) => {
                self.err(at, format!("{uri:?}: {e}"));
                return Vec::new();
            }
        };
        let mut targets = Vec::with_capacity(stages.len());
        for st in stages {
            let vars = |v: &str| st.variables.get(v).cloned();
            match t.for_stage(&st.name, &vars) {
                Ok(target) => targets.push(Ok(target)),
                Err(e @ crate::uri::UriError::MissingStageVar(..)) => {
                    self.warn(at, format!("{e}: requests in that stage get 500"));
                    targets.push(Err(e.to_string()));
                }
                Err(e) => self.err(at, format!("{uri:?} in stage {:?}: {e}", st.name)),
            }
        }
        targets
    }

    fn mock_headers(&mut self, at: &str, headers: &BTreeMap<String, String>) {
        for (k, v) in headers {
            let hat = format!("{at}.headers.{k}");
            if k.is_empty() || !k.bytes().all(is_tchar) {
                self.err(hat, "not a valid header name");
                continue;
            }
            let lower = k.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "content-length"
                    | "transfer-encoding"
                    | "connection"
                    | "keep-alive"
                    | "upgrade"
                    | "te"
                    | "trailer"
            ) {
                self.err(hat, "set by the gateway; remove it");
            } else if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                self.err(hat, "header values may not hold control characters");
            }
        }
    }

    fn domains(&mut self, file: &ConfigFile) -> DomainTable {
        let mut out = Vec::new();
        let mut seen = HashMap::new();
        for (d, dom) in file.domains.iter().enumerate() {
            let at = format!("domains[{d}]");
            let name = dom.name.to_ascii_lowercase();
            if !is_domain_name(&name) {
                self.err(
                    format!("{at}.name"),
                    format!("{:?} is not a host name or *.wildcard", dom.name),
                );
            }
            if let Some(first) = seen.insert(name.clone(), d) {
                self.err(
                    format!("{at}.name"),
                    format!("{:?} is already domains[{first}]", dom.name),
                );
            }
            if dom.mappings.is_empty() {
                self.warn(
                    format!("{at}.mappings"),
                    "no mappings: every request to this domain gets 404",
                );
            }
            let mut mappings = Vec::new();
            let mut bases = HashSet::new();
            for (m, map) in dom.mappings.iter().enumerate() {
                let mat = format!("{at}.mappings[{m}]");
                let base = map.base_path.trim_matches('/');
                if !base
                    .split('/')
                    .all(|s| !s.is_empty() && s.bytes().all(crate::route::is_pchar))
                    && !base.is_empty()
                {
                    self.err(
                        format!("{mat}.base_path"),
                        format!("{:?} is not a path", map.base_path),
                    );
                }
                if !bases.insert(base.to_owned()) {
                    self.err(
                        format!("{mat}.base_path"),
                        format!("base path {base:?} is mapped twice"),
                    );
                }
                let Some(api) = file.apis.iter().position(|a| a.name == map.api) else {
                    self.err(
                        format!("{mat}.api"),
                        super::terms::unknown_name(
                            "API",
                            &map.api,
                            "in apis",
                            file.apis.iter().map(|a| a.name.as_str()),
                        ),
                    );
                    continue;
                };
                let Some(stage) = file.apis[api]
                    .stages
                    .iter()
                    .position(|s| s.name == map.stage)
                else {
                    self.err(
                        format!("{mat}.stage"),
                        format!("API {:?} has no stage {:?}", map.api, map.stage),
                    );
                    continue;
                };
                mappings.push(Mapping {
                    base_path: base.into(),
                    api: api as u32,
                    stage: stage as u32,
                });
            }
            out.push((name, Domain::new(mappings)));
        }
        DomainTable::new(out)
    }
}

fn type_name(t: IntegrationType) -> &'static str {
    match t {
        IntegrationType::HttpProxy => "http_proxy",
        IntegrationType::Http => "http",
        IntegrationType::Mock => "mock",
        IntegrationType::Function => "function",
    }
}

/// RFC 9110 token character.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_domain_name(name: &str) -> bool {
    let host = name.strip_prefix("*.").unwrap_or(name);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn parse_listen(a: &str) -> Option<SocketAddr> {
    if let Ok(addr) = a.parse() {
        return Some(addr);
    }
    let port = a.strip_prefix("localhost:")?.parse().ok()?;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}
