use super::*;

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn has(errs: &[String], path: &str, needle: &str) -> bool {
    errs.iter()
        .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(needle))
}

const SHOP: &str = r#"
gateway: { listen: ["127.0.0.1:8080"], workers: 2 }
apis:
  - name: shop
    integrations:
      users:    { type: http_proxy, uri: "http://127.0.0.1:9000/users", timeout_ms: 3000 }
      user:     { type: http_proxy, uri: "http://127.0.0.1:9000/users/{id}" }
      catchall: { type: http_proxy, uri: "http://${stageVariables.backend}/{proxy}" }
      hello:    { type: mock, status: 200, headers: { content-type: text/plain }, body: "hello" }
    routes:
      - { key: "GET /users",        integration: users }
      - { key: "GET /users/{id}",   integration: user }
      - { key: "ANY /{proxy+}",     integration: catchall }
      - { key: "$default",          integration: hello }
    stages:
      - { name: prod, variables: { backend: "127.0.0.1:9000" } }
      - { name: $default }
  - name: admin
    default: true
    integrations:
      ok: { type: mock, body: "admin" }
    routes:
      - { key: "GET /ping", integration: ok }
    stages:
      - { name: v1 }
domains:
  - { name: api.example.com, mappings: [ { api: shop, stage: prod } ] }
  - { name: "*.example.org", mappings: [ { api: shop, stage: prod, base_path: shop }, { api: admin, stage: v1, base_path: "/adm/" } ] }
"#;

#[test]
fn the_shop_example_loads_with_one_warning() {
    let (file, config) = load(SHOP).expect("valid");
    assert_eq!(config.gateway.workers, Workers::Count(2));
    assert_eq!(config.apis.len(), 2);
    assert_eq!(config.default_api, Some(1));
    // catchall needs ${stageVariables.backend}, which $default lacks: served as 500, warned.
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(
        config.warnings[0]
            .path
            .starts_with("apis[0].integrations.catchall.uri")
    );
    // Round trip: what we print parses back to the same document.
    assert_eq!(parse(&to_yaml(&file)).expect("yaml"), file);
    assert_eq!(parse(&to_json(&file)).expect("json"), file);
}

#[test]
fn json_documents_load_too() {
    let text = r#"{"apis":[{"name":"a","integrations":{"m":{"type":"mock"}},
        "routes":[{"key":"$default","integration":"m"}],"stages":[{"name":"$default"}]}]}"#;
    let (_, config) = load(text).expect("json");
    assert_eq!(config.apis[0].name, "a");
}

#[test]
fn shape_errors_name_the_field() {
    let e = errors("apis:\n  - name: a\n    routes:\n      - { key: x, integraton: y }\n");
    assert!(
        has(
            &e,
            "apis[0].routes[0].integraton",
            "unknown field `integraton`"
        ),
        "{e:?}"
    );
    let e = errors("gateway:\n  header_timeout_ms: soon\n");
    assert!(
        has(
            &e,
            "gateway.header_timeout_ms",
            "must be a whole number of milliseconds, 100 to 3600000"
        ),
        "{e:?}"
    );
    // A negative number, in the user's terms (not the parser's "invalid u64"), in YAML and
    // in JSON.
    for doc in [
        "apis:\n  - name: a\n    integrations:\n      x: { type: http_proxy, uri: 'http://h', timeout_ms: -1 }\n",
        r#"{"apis": [{"name": "a", "integrations": {"x": {"type": "http_proxy", "uri": "http://h", "timeout_ms": -1}}}]}"#,
    ] {
        let e = errors(doc);
        assert!(
            has(
                &e,
                "apis[0].integrations.x.timeout_ms",
                "must be a whole number of milliseconds, 50 to 3600000"
            ),
            "{e:?}"
        );
    }
    let e = errors("gateway:\n  workers: 0\n");
    assert!(has(&e, "gateway.workers", "expected 1 to 1024"), "{e:?}");
    let e = errors("apis:\n  - name: a\n    integrations:\n      x: { type: lambda }\n");
    assert!(
        has(
            &e,
            "apis[0].integrations.x.type",
            "unknown variant `lambda`"
        ),
        "{e:?}"
    );
    let e = errors("gateway: {}\ngateway: {}\n");
    assert!(e.iter().any(|e| e.contains("duplicate")), "{e:?}");
    let e = errors(r#"{"gateway": {"listen": 5}}"#);
    assert!(has(&e, "gateway.listen", "invalid type"), "{e:?}");
    let e = errors("apis: [\n");
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn meaning_errors_are_all_collected_with_paths() {
    let text = r#"
gateway: { listen: ["nope", "127.0.0.1:1"], header_timeout_ms: 1 }
apis:
  - name: "bad name"
    integrations:
      p: { type: http_proxy, uri: "ftp://x", body: "no" }
      q: { type: http_proxy }
      r: { type: http_proxy, uri: "http://h/{id}" }
      m: { type: mock, status: 99, uri: "http://x", headers: { Content-Length: "1", "bad name": x } }
      n: { type: mock, status: 204, body: "x" }
    routes:
      - { key: "GETT /x", integration: m }
      - { key: "GET /x", integration: missing }
      - { key: "GET /y", integration: r }
      - { key: "GET /z", integration: m }
      - { key: "GET /z", integration: m }
    stages:
      - { name: "a/b" }
      - { name: s, variables: { "x-y": "v", ok: "bad value" } }
      - { name: s }
  - name: two
    default: true
  - name: two
    default: true
domains:
  - { name: "Bad_Domain", mappings: [ { api: nope, stage: s }, { api: two, stage: nope } ] }
  - { name: "a.example.com", mappings: [ { api: two, stage: x, base_path: "a b" } ] }
"#;
    let e = errors(text);
    for (path, needle) in [
        ("gateway.listen[0]", "not an IP:port"),
        ("gateway.header_timeout_ms", "100 to 3600000, not 1"),
        ("apis[0].name", "use 1-128"),
        (
            "apis[0].integrations.p.uri",
            "expected an absolute http:// or https:// URI",
        ),
        (
            "apis[0].integrations.p.body",
            "not a field of type http_proxy",
        ),
        ("apis[0].integrations.q.uri", "needs a uri"),
        ("apis[0].integrations.m.status", "expected 200 to 599"),
        ("apis[0].integrations.m.uri", "not a field of type mock"),
        (
            "apis[0].integrations.m.headers.Content-Length",
            "set by the gateway",
        ),
        (
            "apis[0].integrations.m.headers.bad name",
            "not a valid header name",
        ),
        ("apis[0].integrations.n.body", "a 204 response has no body"),
        ("apis[0].routes[0].key", "unknown method"),
        (
            "apis[0].routes[1].integration",
            "no integration named \"missing\" in this API (defined: ",
        ),
        ("apis[0].routes[2].integration", "uses {id}"),
        ("apis[0].routes[4].key", "duplicates routes[3] (\"GET /z\")"),
        ("apis[0].stages[0].name", "use \"$default\""),
        ("apis[0].stages[1].variables.x-y", "variable names"),
        ("apis[0].stages[1].variables.ok", "values use"),
        ("apis[0].stages[2].name", "defined twice"),
        ("apis[2].name", "already the name of apis[1]"),
        ("apis[2].default", "only one API"),
        ("domains[0].name", "not a host name"),
        ("domains[0].mappings[0].api", "no API named \"nope\""),
        ("domains[0].mappings[1].stage", "has no stage \"nope\""),
        ("domains[1].mappings[0].base_path", "not a path"),
    ] {
        assert!(
            has(&e, path, needle),
            "missing {path}: {needle} in\n{}",
            e.join("\n")
        );
    }
}

#[test]
fn the_embedded_default_is_valid() {
    let (_, config) = load(EMBEDDED_DEFAULT).expect("embedded default");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.gateway.listen[0].to_string(), "127.0.0.1:8080");
}

#[test]
fn features_not_built_yet_are_refused_not_ignored() {
    let e =
        errors("apis:\n  - name: a\n    stages:\n      - { name: prod, caching: { ttl: 5 } }\n");
    assert!(
        has(&e, "apis[0].stages[0].caching", "unknown field `caching`"),
        "{e:?}"
    );
}

#[test]
fn policies_are_checked_with_field_paths() {
    let e = errors(
        r#"
apis:
  - name: a
    cors: { allow_origins: ["*"], allow_credentials: true }
    gateway_responses:
      NOPE: {}
      THROTTLED: { status: 700, headers: { "bad name": x }, body: "$context.nope" }
    stages:
      - { name: prod, access_log: { destination: relative.log, format: "$context.status" } }
"#,
    );
    for (path, needle) in [
        ("apis[0].cors.allow_origins[0]", "credentials"),
        (
            "apis[0].gateway_responses.NOPE",
            "not a gateway response type",
        ),
        ("apis[0].gateway_responses.THROTTLED.status", "700"),
        (
            "apis[0].gateway_responses.THROTTLED.headers.bad name",
            "header name",
        ),
        ("apis[0].gateway_responses.THROTTLED.body", "$context.nope"),
        ("apis[0].stages[0].access_log.destination", "absolute"),
        ("apis[0].stages[0].access_log.format", "requestId"),
    ] {
        assert!(
            has(&e, path, needle),
            "missing {path}: {needle} in\n{}",
            e.join("\n")
        );
    }
    let (_, config) = load(
        r#"
apis:
  - name: a
    cors: { allow_origins: ["https://app.example.com"] }
    gateway_responses: { DEFAULT_4XX: { status: 400 } }
    stages: [ { name: prod, access_log: { destination: stdout } } ]
"#,
    )
    .expect("valid policies");
    let api = &config.apis[0];
    assert!(api.cors.is_some());
    assert_eq!(api.gateway_responses.len(), 1);
    assert!(
        api.stages[0].access_log.is_some(),
        "format defaults to json"
    );
}

fn route(
    config: &Config,
    host: &str,
    method: &str,
    path: &str,
) -> Option<(String, String, String, String)> {
    config
        .resolve(host.as_bytes(), method.as_bytes(), path.as_bytes())
        .map(|r| {
            (
                r.api.name.clone(),
                r.stage.name.clone(),
                r.route.key.clone(),
                String::from_utf8(r.path.to_vec()).expect("utf8"),
            )
        })
}

#[test]
fn resolves_domains_stages_and_routes() {
    let (_, c) = load(SHOP).expect("valid");
    let r = |h: &str, m: &str, p: &str| {
        route(&c, h, m, p).map(|(a, s, k, p)| format!("{a} {s} {k} {p}"))
    };
    // Custom domain: API and stage fixed, no stage prefix.
    assert_eq!(
        r("api.example.com", "GET", "/users").as_deref(),
        Some("shop prod GET /users /users")
    );
    assert_eq!(
        r("API.EXAMPLE.COM:443", "GET", "/users/7").as_deref(),
        Some("shop prod GET /users/{id} /users/7")
    );
    // Wildcard domain with base paths.
    assert_eq!(
        r("x.example.org", "GET", "/shop/users").as_deref(),
        Some("shop prod GET /users /users")
    );
    assert_eq!(
        r("x.example.org", "GET", "/adm/ping").as_deref(),
        Some("admin v1 GET /ping /ping")
    );
    assert_eq!(r("x.example.org", "GET", "/other"), None);
    // Unknown host -> the default API (admin), stage from the first segment.
    assert_eq!(
        r("localhost", "GET", "/v1/ping").as_deref(),
        Some("admin v1 GET /ping /ping")
    );
    assert_eq!(
        r("localhost", "GET", "/ping"),
        None,
        "admin has no $default stage"
    );
    assert_eq!(r("localhost", "GET", "/v1/nope"), None);
}

#[test]
fn stage_prefix_and_default_stage() {
    let text = SHOP.replace("    default: true\n", "");
    let (_, c) = load(&text).expect("valid");
    let r = |p: &str| route(&c, "h", "GET", p).map(|(_, s, k, p)| format!("{s} {k} {p}"));
    assert_eq!(r("/prod/users").as_deref(), Some("prod GET /users /users"));
    assert_eq!(r("/prod/a/b").as_deref(), Some("prod ANY /{proxy+} /a/b"));
    assert_eq!(r("/prod").as_deref(), Some("prod $default "));
    assert_eq!(r("/users").as_deref(), Some("$default GET /users /users"));
    assert_eq!(
        r("/production/x").as_deref(),
        Some("$default ANY /{proxy+} /production/x")
    );
    assert_eq!(r("/").as_deref(), Some("$default $default /"));
}

#[test]
fn admin_section_defaults_and_checks() {
    let (file, c) = load("apis: []\n").expect("valid");
    assert!(c.admin.enabled && c.admin.default_paths);
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9901");
    assert_eq!(c.admin.state_dir.to_str(), Some("/var/lib/turnpike"));
    assert_eq!(
        c.admin.token_file.to_str(),
        Some("/etc/turnpike/admin.token")
    );
    assert!(
        !to_yaml(&file).contains("admin"),
        "a default admin section is not written out"
    );

    let e = errors("admin: { listen: '0.0.0.0:9901' }\n");
    assert!(has(&e, "admin.listen", "not a loopback address"), "{e:?}");
    let (_, c) = load("admin: { listen: '0.0.0.0:9901', allow_remote: true, state_dir: /tmp/x }\n")
        .expect("remote");
    assert!(!c.admin.default_paths);
    assert!(
        errors("admin: { listen: '0.0.0.0:9901', enabled: false }\n").is_empty(),
        "disabled: no check"
    );
    let e = errors("admin: { history: 0, token_file: '' }\n");
    assert!(
        has(
            &e,
            "admin.history",
            "must be a whole number of versions, 1 to 1000, not 0"
        ),
        "{e:?}"
    );
    assert!(has(&e, "admin.token_file", "must not be empty"), "{e:?}");
    let e = errors("admin: { listn: x }\n");
    assert!(has(&e, "admin.listn", "unknown field"), "{e:?}");
}

#[test]
fn parts_of_a_document_parse_from_yaml_or_json() {
    let v = parse_value("key: GET /x\nintegration: m\n").expect("yaml");
    assert_eq!(v["key"], "GET /x");
    let v = parse_value(r#"{"key": "GET /x"}"#).expect("json");
    assert_eq!(v["key"], "GET /x");
    let v = parse_value("[1, 2]").expect("array");
    assert_eq!(v[1], 2);
    assert!(parse_value("{").is_err());
    assert!(parse_value("a: [").is_err());
}

#[test]
fn the_account_throttle_is_on_by_default_and_turns_off_three_ways() {
    use crate::usage::Limit;
    let (_, c) = load("apis: []\n").expect("default");
    assert!(matches!(c.gateway.throttle, Some(Limit::Rate(_))));
    for off in ["off", "null", "false", "~"] {
        let (file, c) = load(&format!("gateway: {{ throttle: {off} }}\n")).expect(off);
        assert!(c.gateway.throttle.is_none(), "{off}");
        // Written back as `off`, which reads back as off: never the default again.
        let text = serde_json::to_string(&file).expect("json");
        assert!(text.contains(r#""throttle":"off""#), "{text}");
    }
    let e = errors("gateway: { throttle: on }\n");
    assert!(has(&e, "gateway.throttle", "off"), "{e:?}");
    let e = errors("gateway: { throttle: { rate_limit: 5 } }\n");
    assert!(has(&e, "gateway.throttle", "burst_limit"), "{e:?}");
    let e = errors("gateway: { throttle: { rate_limit: -5, burst_limit: 1 } }\n");
    assert!(has(&e, "gateway.throttle", "non-negative"), "{e:?}");
}

#[test]
fn route_settings_resolve_per_route_over_the_stage_default() {
    use crate::usage::Limit;
    let (_, c) = load(
        r#"
apis:
  - name: a
    integrations: { m: { type: mock } }
    routes:
      - { key: "GET /a", integration: m, api_key_required: true }
      - { key: "GET /b/{id}", integration: m }
      - { key: "GET /c", integration: m }
    stages:
      - name: prod
        throttle: { rate_limit: 10, burst_limit: 20 }
        route_settings:
          "GET /b/{id}": { throttle: { rate_limit: 0, burst_limit: 0 } }
          "GET /c": {}
      - name: beta
"#,
    )
    .expect("config");
    let api = &c.apis[0];
    assert!(api.routes[0].api_key_required && !api.routes[1].api_key_required);
    let prod = &api.stages[0].route_throttle;
    assert!(matches!(prod[0], Some(Limit::Rate(_))));
    assert_eq!(prod[1], Some(Limit::Closed));
    assert_eq!(
        prod[2], prod[0],
        "a setting without a throttle keeps the stage's"
    );
    assert_eq!(api.stages[1].route_throttle, vec![None, None, None]);
}

#[test]
fn yaml_is_1_2_core_so_yes_no_on_off_stay_strings() {
    let doc = parse(
        "apis:\n  - name: a\n    models:\n      C: { schema: { enum: [no, se, dk], required: [y, n, on, off] } }\n",
    )
    .expect("parses");
    let schema = &doc.apis[0].models["C"].schema;
    assert_eq!(schema["enum"], serde_json::json!(["no", "se", "dk"]));
    assert_eq!(
        schema["required"],
        serde_json::json!(["y", "n", "on", "off"])
    );
    // true/false are still booleans.
    let e = errors(
        "apis:\n  - name: a\n    routes: [ { key: 'GET /', integration: m, api_key_required: yes } ]\n",
    );
    assert!(!e.is_empty(), "yes is not a YAML 1.2 boolean");
}

#[test]
fn aws_integration_type_names_are_accepted() {
    for (name, want) in [
        ("HTTP_PROXY", IntegrationType::HttpProxy),
        ("MOCK", IntegrationType::Mock),
        ("AWS_PROXY", IntegrationType::Function),
        ("http_proxy", IntegrationType::HttpProxy),
    ] {
        let doc = parse(&format!(
            "apis:\n  - name: a\n    integrations: {{ x: {{ type: {name} }} }}\n"
        ))
        .expect(name);
        assert_eq!(doc.apis[0].integrations["x"].kind, want, "{name}");
    }
}
