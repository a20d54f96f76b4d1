//! `/v1/certificates`, `/v1/clientcertificates` and the TLS file reload, with the fake plane
//! (which checks stored ids and reads files like the real one).

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::{AUTH, DOC, Fixture, call, fixture};
use crate::{
    api::TlsReload,
    db::ids::{is_certificate_id, is_client_certificate_id},
    testing::{now, server_cert, valid_cert},
};

fn import(f: &Fixture, names: &[&str]) -> (u16, Value) {
    let (chain, key) = valid_cert(names);
    let body = json!({ "certificate_chain": chain, "private_key": key, "name": names[0] });
    let (status, v, _) = call(f, "POST", "/v1/certificates", &[AUTH], &body.to_string());
    (status, v)
}

/// The fixture's document with a domain for `host` served with `certificate`.
fn doc_with_domain(host: &str, certificate: &str) -> String {
    format!(
        "{DOC}domains:\n  - {{ name: {host}, certificate: {certificate}, mappings: [ {{ api: shop, stage: prod }} ] }}\n"
    )
}

fn published(f: &Fixture) -> u64 {
    f.plane.published.load(Ordering::SeqCst)
}

#[test]
fn an_import_is_shown_listed_and_never_with_its_key() {
    let f = fixture();
    let (status, created) = import(&f, &["api.example.com"]);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(is_certificate_id(&id), "{id}");
    assert_eq!(created["subject"], "CN=api.example.com");
    assert_eq!(created["sans"], json!(["api.example.com"]));
    assert_eq!(created["name"], "api.example.com");
    assert_eq!(created["in_use_by"], json!([]));

    let (status, shown, _) = call(&f, "GET", &format!("/v1/certificates/{id}"), &[AUTH], "");
    assert_eq!(status, 200);
    for field in [
        "subject",
        "sans",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "fingerprint_sha256",
        "key_type",
        "chain_len",
        "certificate_chain",
    ] {
        assert!(shown.get(field).is_some(), "{field} missing: {shown}");
    }
    assert!(
        shown["not_after"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 20),
        "{shown}"
    );
    let (_, list, _) = call(&f, "GET", "/v1/certificates", &[AUTH], "");
    assert_eq!(list["certificates"][0]["id"], id.as_str());
    for v in [created, shown, list] {
        let text = v.to_string();
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("private_key"),
            "{text}"
        );
    }
    assert_eq!(published(&f), 0, "an import changes no config");
}

#[test]
fn bad_imports_are_refused_with_the_reason() {
    let f = fixture();
    let t = now();
    let (chain, key) = server_cert(&["old.example.com"], t - 90 * 86_400, t - 86_400);
    let expired = json!({ "certificate_chain": chain, "private_key": key });
    let (status, v, _) = call(
        &f,
        "POST",
        "/v1/certificates",
        &[AUTH],
        &expired.to_string(),
    );
    assert_eq!(status, 400);
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired on")),
        "{v}"
    );

    let (chain, _) = valid_cert(&["a.example.com"]);
    let (_, other_key) = valid_cert(&["a.example.com"]);
    let mismatch = json!({ "certificate_chain": chain, "private_key": other_key });
    let (status, v, _) = call(
        &f,
        "POST",
        "/v1/certificates",
        &[AUTH],
        &mismatch.to_string(),
    );
    assert_eq!(status, 400);
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not match")),
        "{v}"
    );

    for body in ["", "{", r#"{"certificate_chain": "x", "bogus": 1}"#] {
        let (status, _, _) = call(&f, "POST", "/v1/certificates", &[AUTH], body);
        assert_eq!(status, 400, "{body}");
    }
    let (_, list, _) = call(&f, "GET", "/v1/certificates", &[AUTH], "");
    assert_eq!(list["certificates"], json!([]));
}

#[test]
fn a_certificate_in_use_cannot_be_deleted() {
    let f = fixture();
    let (_, created) = import(&f, &["api.example.com"]);
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, body, _) = call(
        &f,
        "PUT",
        "/v1/config",
        &[AUTH],
        &doc_with_domain("api.example.com", &id),
    );
    assert_eq!(status, 200, "{body}");
    let path = format!("/v1/certificates/{id}");
    let (_, shown, _) = call(&f, "GET", &path, &[AUTH], "");
    assert_eq!(shown["in_use_by"], json!(["api.example.com"]));

    let (status, v, _) = call(&f, "DELETE", &path, &[AUTH], "");
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["in_use_by"], json!(["api.example.com"]));

    let (status, _, _) = call(&f, "DELETE", "/v1/domains/api.example.com", &[AUTH], "");
    assert_eq!(status, 200);
    let (status, _, _) = call(&f, "DELETE", &path, &[AUTH], "");
    assert_eq!(status, 204);
    assert_eq!(call(&f, "GET", &path, &[AUTH], "").0, 404);
    assert_eq!(call(&f, "DELETE", &path, &[AUTH], "").0, 404);
    assert_eq!(
        call(&f, "GET", "/v1/certificates/not-an-id", &[AUTH], "").0,
        404
    );
    assert_eq!(call(&f, "PATCH", &path, &[AUTH], "{}").0, 405);
}

#[test]
fn a_config_naming_an_unknown_id_is_refused_with_its_field_path() {
    let f = fixture();
    let (status, v, _) = call(
        &f,
        "PUT",
        "/v1/config",
        &[AUTH],
        &doc_with_domain("api.example.com", "cert-zzzzzzzzzzzz"),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errors"][0]["path"], "domains[0].certificate");
    assert_eq!(published(&f), 0);

    let stage = r#"{"name": "beta", "client_certificate": "zzzzzzzzzz"}"#;
    let (status, v, _) = call(&f, "POST", "/v1/apis/shop/stages", &[AUTH], stage);
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["errors"][0]["path"],
        "apis[0].stages[1].client_certificate"
    );
}

#[test]
fn rotation_republishes_the_running_config_when_it_uses_the_certificate() {
    let f = fixture();
    let (_, created) = import(&f, &["api.example.com"]);
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/certificates/{id}");

    // Not in use: stored, nothing published.
    let (chain, key) = valid_cert(&["api.example.com"]);
    let body = json!({ "certificate_chain": chain, "private_key": key }).to_string();
    let (status, v, _) = call(&f, "PUT", &path, &[AUTH], &body);
    assert_eq!(status, 200, "{v}");
    assert!(v.get("config_version").is_none(), "{v}");
    assert_eq!(v["name"], "api.example.com", "the name is kept");
    assert!(v["rotated_at"].is_string());
    assert_eq!(published(&f), 0);

    let (_, _, v2) = call(
        &f,
        "PUT",
        "/v1/config",
        &[AUTH],
        &doc_with_domain("api.example.com", &id),
    );
    let v2 = v2.expect("version");

    // In use: checked with the new certificate, published as a new version.
    let (chain, key) = valid_cert(&["api.example.com", "www.example.com"]);
    let body = json!({ "certificate_chain": chain, "private_key": key }).to_string();
    let (status, v, _) = call(&f, "PUT", &path, &[AUTH], &body);
    assert_eq!(status, 200, "{v}");
    let v3 = v["config_version"].as_u64().expect("republished");
    assert!(v3 > v2);
    assert_eq!(published(&f), v3);
    let fingerprint = v["fingerprint_sha256"].clone();
    let (_, deployments, _) = call(&f, "GET", "/v1/deployments", &[AUTH], "");
    assert_eq!(
        deployments["deployments"][0]["source"],
        format!("certificate:{id}")
    );

    // A certificate that no longer covers the domain: refused, nothing changes.
    let (chain, key) = valid_cert(&["elsewhere.example.com"]);
    let body = json!({ "certificate_chain": chain, "private_key": key }).to_string();
    let (status, v, _) = call(&f, "PUT", &path, &[AUTH], &body);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errors"][0]["path"], "domains[0].certificate");
    assert_eq!(published(&f), v3);
    let (_, shown, _) = call(&f, "GET", &path, &[AUTH], "");
    assert_eq!(shown["fingerprint_sha256"], fingerprint);

    assert_eq!(
        call(
            &f,
            "PUT",
            "/v1/certificates/cert-zzzzzzzzzzzz",
            &[AUTH],
            "{}"
        )
        .0,
        404
    );
}

#[test]
fn client_certificates_are_generated_shown_and_guarded() {
    let f = fixture();
    let (status, created, _) = call(
        &f,
        "POST",
        "/v1/clientcertificates",
        &[AUTH],
        r#"{"description": "billing backend"}"#,
    );
    assert_eq!(status, 201, "{created}");
    let id = created["clientCertificateId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(is_client_certificate_id(&id), "{id}");
    assert_eq!(created["description"], "billing backend");
    let pem = created["pemEncodedCertificate"].as_str().expect("pem");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(created["createdDate"].is_string() && created["expirationDate"].is_string());
    assert!(!created.to_string().contains("PRIVATE KEY"));

    // No body at all is fine too.
    let (status, _, _) = call(&f, "POST", "/v1/clientcertificates", &[AUTH], "");
    assert_eq!(status, 201);
    let (_, list, _) = call(&f, "GET", "/v1/clientcertificates", &[AUTH], "");
    assert_eq!(list["item"].as_array().map(Vec::len), Some(2));
    let path = format!("/v1/clientcertificates/{id}");
    let (_, shown, _) = call(&f, "GET", &path, &[AUTH], "");
    assert_eq!(shown["pemEncodedCertificate"], pem);

    let stage = format!(r#"{{"name": "beta", "client_certificate": "{id}"}}"#);
    let (status, v, _) = call(&f, "POST", "/v1/apis/shop/stages", &[AUTH], &stage);
    assert_eq!(status, 201, "{v}");
    let (status, v, _) = call(&f, "DELETE", &path, &[AUTH], "");
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["in_use_by"], json!(["shop/beta"]));
    call(&f, "DELETE", "/v1/apis/shop/stages/beta", &[AUTH], "");
    assert_eq!(call(&f, "DELETE", &path, &[AUTH], "").0, 204);
    assert_eq!(call(&f, "GET", &path, &[AUTH], "").0, 404);
    let (status, _, _) = call(
        &f,
        "POST",
        "/v1/clientcertificates",
        &[AUTH],
        r#"{"descr": 1}"#,
    );
    assert_eq!(status, 400);
}

#[test]
fn tls_files_are_reloaded_only_when_they_change_and_only_if_valid() {
    let f = fixture();
    assert_eq!(f.admin.reload_tls_files("test"), TlsReload::NoFiles);
    let chain_path = f.dir.path().join("api.pem");
    let key_path = f.dir.path().join("api.key");
    let write = |names: &[&str]| {
        let (chain, key) = valid_cert(names);
        std::fs::write(&chain_path, chain).expect("chain");
        std::fs::write(&key_path, key).expect("key");
    };
    write(&["api.example.com"]);
    let doc = format!(
        "{}certificates:\n  - {{ name: api, certificate_chain: {}, private_key: {} }}\n",
        doc_with_domain("api.example.com", "api"),
        chain_path.display(),
        key_path.display()
    );
    let (status, v, v2) = call(&f, "PUT", "/v1/config", &[AUTH], &doc);
    assert_eq!(status, 200, "{v}");
    let v2 = v2.expect("version");
    assert_eq!(f.admin.reload_tls_files("test"), TlsReload::Unchanged);
    assert_eq!(
        f.admin.tls_file_paths(),
        [
            key_path.display().to_string(),
            chain_path.display().to_string()
        ]
    );

    write(&["api.example.com"]);
    let TlsReload::Reloaded { version } = f.admin.reload_tls_files("test") else {
        panic!("not reloaded");
    };
    assert!(version > v2);
    assert_eq!(published(&f), version);
    let (_, deployments, _) = call(&f, "GET", "/v1/deployments", &[AUTH], "");
    assert_eq!(deployments["deployments"][0]["source"], "tls-files");
    assert_eq!(f.admin.reload_tls_files("test"), TlsReload::Unchanged);

    // A key of another certificate: refused with the field path, the old config serves.
    let (_, other_key) = valid_cert(&["api.example.com"]);
    std::fs::write(&key_path, other_key).expect("key");
    let TlsReload::Refused(errors) = f.admin.reload_tls_files("test") else {
        panic!("not refused");
    };
    assert_eq!(errors[0].path, "certificates[0]");
    assert!(errors[0].reason.contains("does not match"), "{errors:?}");
    assert_eq!(published(&f), version);
    // Still different from what serves: a second trigger tries again.
    assert!(matches!(
        f.admin.reload_tls_files("test"),
        TlsReload::Refused(_)
    ));
}
