use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde_json::Value;
use turnpike_core::{
    config::{ConfigErrors, ConfigFile, check_with, parse},
    metrics::MetricsRegistry,
    tls::MapTlsSource,
};

use super::*;
use crate::{plane::DataPlane, store::ConfigStore, token::AdminToken};

/// A data plane that checks like the real one and remembers what it was given.
#[derive(Default)]
struct FakePlane {
    published: AtomicU64,
}

impl DataPlane for FakePlane {
    type Prepared = u64;

    fn prepare(
        &self,
        doc: &ConfigFile,
        stored: &turnpike_core::tls::StoredCertificates,
        version: u64,
        metrics: &mut MetricsRegistry,
    ) -> Result<u64, ConfigErrors> {
        // Files as the real plane reads them; stored certificates as given.
        struct Src(MapTlsSource);
        impl turnpike_core::tls::TlsSource for Src {
            fn read(&self, path: &str) -> Result<Vec<u8>, String> {
                std::fs::read(path).map_err(|e| format!("{path}: {e}"))
            }
            fn certificate(&self, id: &str) -> Option<turnpike_core::tls::StoredPem> {
                self.0.certificate(id)
            }
            fn client_certificate(&self, id: &str) -> Option<turnpike_core::tls::StoredPem> {
                self.0.client_certificate(id)
            }
            fn now(&self) -> i64 {
                self.0.now
            }
        }
        let src = Src(MapTlsSource {
            certificates: stored.certificates.clone(),
            client_certificates: stored.client_certificates.clone(),
            now: crate::testing::now(),
            ..MapTlsSource::default()
        });
        check_with(doc, &src)?;
        for key in series_of(doc) {
            metrics.series(key);
        }
        Ok(version)
    }

    fn publish(&self, version: u64) {
        self.published.store(version, Ordering::SeqCst);
    }

    fn driver(&self) -> String {
        "epoll".into()
    }

    fn set_log_level(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
}

const DOC: &str = r#"
apis:
  - name: shop
    integrations:
      hello: { type: mock, body: hi }
    routes:
      - { key: "GET /hello", integration: hello }
    stages:
      - { name: prod }
"#;

struct Fixture {
    dir: tempfile::TempDir,
    plane: Arc<FakePlane>,
    admin: Admin<FakePlane>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = ConfigStore::open(dir.path(), 5).expect("store");
    let plane = Arc::new(FakePlane::default());
    let current = parse(DOC).expect("doc");
    let seed = store.append(&current, "seed").expect("seed");
    assert_eq!(seed.version, 1);
    let running = Running {
        plane: plane.clone(),
        store,
        metrics: MetricsRegistry::new(2),
        current,
        version: 1,
        resources: crate::db::ResourceDb::open(dir.path()).expect("resource store"),
        stored: turnpike_core::tls::StoredCertificates::default(),
        usage: Default::default(),
        file: None,
    };
    let admin = Admin::new(running, AdminToken::from_secret("tok"), false);
    Fixture { dir, plane, admin }
}

const AUTH: (&[u8], &[u8]) = (b"Authorization", b"Bearer tok");

fn call(
    f: &Fixture,
    method: &str,
    path: &str,
    headers: &[(&[u8], &[u8])],
    body: &str,
) -> (u16, Value, Option<u64>) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let req = Request {
        method,
        path,
        query,
        headers,
        body: body.as_bytes(),
    };
    let resp = f.admin.handle(&req);
    let value = serde_json::from_slice(&resp.body).unwrap_or(Value::String(
        String::from_utf8_lossy(&resp.body).into_owned(),
    ));
    (resp.status, value, resp.etag)
}

mod api_keys;
mod certificates;

#[test]
fn the_token_is_required_except_for_healthz() {
    let f = fixture();
    assert_eq!(call(&f, "GET", "/healthz", &[], "").0, 200);
    assert_eq!(call(&f, "GET", "/v1/config", &[], "").0, 401);
    assert_eq!(
        call(
            &f,
            "GET",
            "/v1/config",
            &[(b"Authorization", b"Bearer nope")],
            ""
        )
        .0,
        401
    );
    assert_eq!(call(&f, "GET", "/metrics", &[], "").0, 401);
    let (status, body, etag) = call(&f, "GET", "/v1/config", &[AUTH], "");
    assert_eq!((status, etag), (200, Some(1)));
    assert_eq!(body["apis"][0]["name"], "shop");
}

#[test]
fn a_valid_write_is_stored_published_and_versioned() {
    let f = fixture();
    let route = r#"{"key": "POST /hello", "integration": "hello"}"#;
    let (status, body, etag) = call(&f, "POST", "/v1/apis/shop/routes", &[AUTH], route);
    assert_eq!(status, 201, "{body}");
    assert_eq!(etag, Some(f.plane.published.load(Ordering::SeqCst)));
    let (_, routes, _) = call(&f, "GET", "/v1/apis/shop/routes", &[AUTH], "");
    assert_eq!(routes.as_array().map(Vec::len), Some(2));
    let (_, deployments, _) = call(&f, "GET", "/v1/deployments", &[AUTH], "");
    assert_eq!(deployments["deployments"][0]["source"], "api");
}

#[test]
fn an_invalid_write_is_refused_whole_with_field_paths() {
    let f = fixture();
    let (status, body, _) = call(
        &f,
        "POST",
        "/v1/apis/shop/routes",
        &[AUTH],
        r#"{"key": "GET /x", "integration": "missing"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["path"], "apis[0].routes[1].integration");
    assert_eq!(
        f.plane.published.load(Ordering::SeqCst),
        0,
        "nothing published"
    );
    let (_, config, etag) = call(&f, "GET", "/v1/config", &[AUTH], "");
    assert_eq!(etag, Some(1));
    assert_eq!(
        config["apis"][0]["routes"].as_array().map(Vec::len),
        Some(1)
    );
    let (status, body, _) = call(
        &f,
        "PUT",
        "/v1/config",
        &[AUTH],
        "apis: [ {name: x, nonsense: 1} ]",
    );
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["path"], "apis[0].nonsense");
}

#[test]
fn stale_if_match_gets_412() {
    let f = fixture();
    let hdrs = |tag: &'static [u8]| [AUTH, (&b"If-Match"[..], tag)];
    let patch = r#"{"stages": [{"name": "prod"}, {"name": "beta"}]}"#;
    let (status, _, etag) = call(&f, "PATCH", "/v1/apis/shop", &hdrs(b"\"1\""), patch);
    assert_eq!(status, 200);
    let v2 = etag.expect("etag");
    assert!(v2 > 1);
    let (status, body, _) = call(&f, "PATCH", "/v1/apis/shop", &hdrs(b"\"1\""), patch);
    assert_eq!(status, 412, "{body}");
    assert_eq!(
        call(&f, "DELETE", "/v1/apis/shop/stages/beta", &hdrs(b"*"), "").0,
        200
    );
}

#[test]
fn rollback_restores_an_earlier_version_as_a_new_one() {
    let f = fixture();
    let (_, _, v2) = call(
        &f,
        "PUT",
        "/v1/apis/shop/integrations/hello",
        &[AUTH],
        r#"{"type": "mock", "body": "v2"}"#,
    );
    let (_, _, v3) = call(
        &f,
        "PUT",
        "/v1/apis/shop/integrations/hello",
        &[AUTH],
        r#"{"type": "mock", "body": "v3"}"#,
    );
    let (v2, v3) = (v2.expect("v2"), v3.expect("v3"));
    let path = format!("/v1/deployments/{v2}/rollback");
    let (status, _, v4) = call(&f, "POST", &path, &[AUTH], "");
    assert_eq!(status, 200);
    assert!(v4.expect("v4") > v3);
    let (_, integ, _) = call(&f, "GET", "/v1/apis/shop/integrations/hello", &[AUTH], "");
    assert_eq!(integ["body"], "v2");
    assert_eq!(
        call(&f, "POST", "/v1/deployments/999/rollback", &[AUTH], "").0,
        404
    );
}

#[test]
fn tuning_reads_and_patches_the_gateway_knobs() {
    let f = fixture();
    let (_, t, _) = call(&f, "GET", "/v1/tuning", &[AUTH], "");
    assert_eq!(t["live"]["idle_timeout_ms"], 60000);
    assert!(t["restart"]["listen"].is_array());
    let (status, body, _) = call(
        &f,
        "PATCH",
        "/v1/tuning",
        &[AUTH],
        r#"{"idle_timeout_ms": 5000, "workers": 3}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["restart_required"],
        serde_json::json!(["gateway.workers"])
    );
    let (_, t, _) = call(&f, "GET", "/v1/tuning", &[AUTH], "");
    assert_eq!(t["live"]["idle_timeout_ms"], 5000);
    let (status, body, _) = call(
        &f,
        "PATCH",
        "/v1/tuning",
        &[AUTH],
        r#"{"idle_timout_ms": 1}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["path"], "gateway.idle_timout_ms");
    assert_eq!(
        call(&f, "PATCH", "/v1/tuning", &[AUTH], r#"{"driver": "epoll"}"#).0,
        400
    );
}

#[test]
fn metrics_and_status() {
    let f = fixture();
    let req = Request {
        method: "GET",
        path: "/metrics",
        query: "",
        headers: &[AUTH],
        body: b"",
    };
    let resp = f.admin.handle(&req);
    assert_eq!(resp.status, 200);
    let text = String::from_utf8(resp.body).expect("utf8");
    assert!(text.contains("turnpike_config_version 1"), "{text}");
    let (status, body, _) = call(&f, "GET", "/v1/status", &[AUTH], "");
    assert_eq!(status, 200);
    assert_eq!(body["workers"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["driver"], "epoll");
}

#[test]
fn unknown_paths_and_methods() {
    let f = fixture();
    assert_eq!(call(&f, "GET", "/v1/nothing", &[AUTH], "").0, 404);
    assert_eq!(call(&f, "GET", "/elsewhere", &[AUTH], "").0, 404);
    assert_eq!(call(&f, "DELETE", "/v1/config", &[AUTH], "").0, 405);
    assert_eq!(call(&f, "POST", "/v1/tuning", &[AUTH], "").0, 405);
    assert_eq!(call(&f, "GET", "/v1/apis/nope", &[AUTH], "").0, 404);
}

#[test]
fn yaml_out_on_request() {
    let f = fixture();
    let req = Request {
        method: "GET",
        path: "/v1/config",
        query: "format=yaml",
        headers: &[AUTH],
        body: b"",
    };
    let resp = f.admin.handle(&req);
    assert_eq!(resp.content_type, "application/yaml");
    let text = String::from_utf8(resp.body).expect("utf8");
    assert_eq!(parse(&text).expect("yaml parses"), parse(DOC).expect("doc"));
}

#[test]
fn a_whole_document_without_a_gateway_section_keeps_the_running_one() {
    let f = fixture();
    let with_gateway = format!(
        "gateway: {{ listen: [\"127.0.0.1:18080\"], workers: 2, idle_timeout_ms: 7000 }}\n{DOC}"
    );
    let (status, body, _) = call(&f, "PUT", "/v1/config", &[AUTH], &with_gateway);
    assert_eq!(status, 200, "{body}");
    let running = |f: &Fixture| call(f, "GET", "/v1/config", &[AUTH], "").1["gateway"].clone();
    let before = running(&f);
    assert_eq!(before["listen"], serde_json::json!(["127.0.0.1:18080"]));

    // YAML and JSON documents without the key.
    let json_doc = serde_json::to_string(&parse(DOC).expect("doc")).expect("json");
    let json_doc = {
        let mut v: Value = serde_json::from_str(&json_doc).expect("value");
        v.as_object_mut().map(|o| o.remove("gateway"));
        v.to_string()
    };
    for doc in [DOC.to_owned(), json_doc] {
        let (status, body, _) = call(&f, "PUT", "/v1/config", &[AUTH], &doc);
        assert_eq!(status, 200, "{doc}: {body}");
        assert_eq!(running(&f), before, "{doc}");
    }

    // A merge patch that does not name the gateway leaves it alone too.
    let patch = r#"{"apis": [{"name": "shop", "integrations": {"hello": {"type": "mock"}},
        "routes": [{"key": "GET /hello", "integration": "hello"}], "stages": [{"name": "prod"}]}]}"#;
    let (status, body, _) = call(&f, "PATCH", "/v1/config", &[AUTH], patch);
    assert_eq!(status, 200, "{body}");
    assert_eq!(running(&f), before);

    // A document that has the section is taken as written, defaults included.
    let other = format!("gateway: {{ listen: [\"127.0.0.1:18081\"] }}\n{DOC}");
    let (status, body, _) = call(&f, "PUT", "/v1/config", &[AUTH], &other);
    assert_eq!(status, 200, "{body}");
    let now = running(&f);
    assert_eq!(now["listen"], serde_json::json!(["127.0.0.1:18081"]));
    assert_eq!(now["workers"], "auto");
    assert_eq!(now["idle_timeout_ms"], 60000);
}
