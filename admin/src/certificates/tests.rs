use turnpike_core::config::parse;

use super::*;
use crate::testing::{now, server_cert, valid_cert};

fn body(chain: &str, key: &str) -> ImportBody {
    ImportBody {
        certificate_chain: Some(chain.to_owned()),
        private_key: Some(key.to_owned()),
        ..ImportBody::default()
    }
}

#[test]
fn an_import_is_checked_and_described() {
    let (chain, key) = valid_cert(&["api.example.com", "*.api.example.com"]);
    let imported = check_import(body(&chain, &key), now()).expect("import");
    assert_eq!(imported.details.subject, "CN=api.example.com");
    assert_eq!(
        imported.details.sans,
        ["api.example.com", "*.api.example.com"]
    );
    assert_eq!(imported.details.key_type, "ECDSA-P256");
    assert!(imported.warnings.is_empty());
}

#[test]
fn aws_names_are_accepted_and_the_chain_joined() {
    let (leaf, key) = valid_cert(&["a.example.com"]);
    let (other, _) = valid_cert(&["ca.example.com"]);
    let aws: ImportBody = serde_json::from_value(json!({
        "certificateBody": leaf, "certificateChain": other, "privateKey": key,
        "certificateName": "a",
    }))
    .expect("aws body");
    let imported = check_import(aws, now()).expect("import");
    assert_eq!(imported.details.chain_len, 2);
    assert_eq!(imported.name.as_deref(), Some("a"));
    let both: ImportBody = serde_json::from_value(json!({
        "certificate_chain": leaf, "certificateBody": leaf, "private_key": key,
    }))
    .expect("body");
    assert!(check_import(both, now()).is_err());
    assert!(
        serde_json::from_value::<ImportBody>(json!({"certificate": leaf})).is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn expired_mismatched_and_missing_parts_are_refused_with_the_reason() {
    let now = now();
    let (chain, key) = server_cert(&["old.example.com"], now - 90 * 86_400, now - 86_400);
    let e = check_import(body(&chain, &key), now).expect_err("expired");
    assert!(e.starts_with("the certificate expired on "), "{e}");

    let (chain, _) = valid_cert(&["a.example.com"]);
    let (_, other_key) = valid_cert(&["b.example.com"]);
    let e = check_import(body(&chain, &other_key), now).expect_err("mismatch");
    assert!(e.contains("does not match"), "{e}");

    let e = check_import(body("garbage", &other_key), now).expect_err("garbage");
    assert!(e.contains("CERTIFICATE"), "{e}");
    let e = check_import(
        ImportBody {
            certificate_chain: Some(chain.clone()),
            ..ImportBody::default()
        },
        now,
    )
    .expect_err("no key");
    assert!(e.contains("private_key"), "{e}");
    let e = check_import(ImportBody::default(), now).expect_err("nothing");
    assert!(e.contains("certificate_chain"), "{e}");
}

#[test]
fn not_yet_valid_is_a_warning() {
    let now = now();
    let (chain, key) = server_cert(&["soon.example.com"], now + 86_400, now + 90 * 86_400);
    let imported = check_import(body(&chain, &key), now).expect("import");
    assert_eq!(imported.warnings.len(), 1, "{:?}", imported.warnings);
}

#[test]
fn the_views_never_show_the_key() {
    let (chain, key) = valid_cert(&["api.example.com"]);
    let record = CertificateRecord {
        chain_pem: chain.clone(),
        key_pem: key,
        name: Some("main".into()),
        tags: BTreeMap::new(),
        imported_at: 0,
        rotated_at: None,
    };
    let v = certificate_json("cert-abc", &record, &["api.example.com".into()], true);
    let text = v.to_string();
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert_eq!(v["certificate_chain"], chain.as_str());
    assert_eq!(v["imported_at"], "1970-01-01T00:00:00Z");
    assert_eq!(v["chain_len"], 1);
    assert!(
        v["fingerprint_sha256"]
            .as_str()
            .is_some_and(|f| f.len() == 95)
    );
    let listed = certificate_json("cert-abc", &record, &[], false);
    assert!(listed.get("certificate_chain").is_none());

    let client =
        generate_client_certificate("abcdefghij", GenerateBody::default(), now()).expect("gen");
    let text = client_certificate_json("abcdefghij", &client, &[]).to_string();
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
}

#[test]
fn a_client_certificate_is_p256_self_signed_for_its_id_for_a_year() {
    let now = now();
    let record = generate_client_certificate(
        "k3jd9s8a7q",
        GenerateBody {
            description: Some("for the billing backend".into()),
            tags: None,
        },
        now,
    )
    .expect("generate");
    let cert = parse_certificate(record.pem.as_bytes(), record.key_pem.as_bytes()).expect("parse");
    let d = cert.details;
    assert_eq!(d.subject, "CN=k3jd9s8a7q");
    assert_eq!(d.issuer, d.subject);
    assert_eq!(d.key_type, "ECDSA-P256");
    assert_eq!(d.not_before, now);
    assert_eq!(d.not_after - d.not_before, 365 * 86_400);
    assert_eq!(record.expires_at, d.not_after);
    assert_eq!(record.description, "for the billing backend");
    // 16 serial bytes, positive.
    assert_eq!(d.serial.len(), 16 * 3 - 1, "{}", d.serial);
    let again =
        generate_client_certificate("k3jd9s8a7q", GenerateBody::default(), now).expect("generate");
    assert_ne!(again.key_pem, record.key_pem, "a fresh key every time");
}

#[test]
fn long_labels_and_too_many_tags_are_refused() {
    let long = GenerateBody {
        description: Some("x".repeat(MAX_LABEL + 1)),
        tags: None,
    };
    assert!(generate_client_certificate("abcdefghij", long, now()).is_err());
    let tags: BTreeMap<String, String> = (0..=MAX_TAGS)
        .map(|i| (format!("k{i}"), "v".into()))
        .collect();
    let many = GenerateBody {
        description: None,
        tags: Some(tags),
    };
    assert!(generate_client_certificate("abcdefghij", many, now()).is_err());
}

#[test]
fn users_are_found_where_the_document_names_the_id() {
    let doc = parse(
        r#"
gateway: { tls: { certificate: cert-aaaaaaaaaaaa } }
apis:
  - name: shop
    integrations: { m: { type: mock } }
    routes: [ { key: "$default", integration: m } ]
    stages:
      - { name: prod, client_certificate: abcdefghij }
      - { name: beta }
domains:
  - { name: api.example.com, certificate: cert-aaaaaaaaaaaa, mappings: [ { api: shop, stage: prod } ] }
  - { name: other.example.com, certificate: cert-bbbbbbbbbbbb, mappings: [ { api: shop, stage: prod } ] }
"#,
    )
    .expect("doc");
    assert_eq!(
        certificate_users(&doc, "cert-aaaaaaaaaaaa"),
        ["gateway.tls", "api.example.com"]
    );
    assert_eq!(
        certificate_users(&doc, "cert-bbbbbbbbbbbb"),
        ["other.example.com"]
    );
    assert!(certificate_users(&doc, "cert-cccccccccccc").is_empty());
    assert_eq!(client_certificate_users(&doc, "abcdefghij"), ["shop/prod"]);
    assert!(client_certificate_users(&doc, "zzzzzzzzzz").is_empty());
    assert_eq!(
        stored_ids_named(&doc),
        (
            vec![
                "cert-aaaaaaaaaaaa".to_owned(),
                "cert-bbbbbbbbbbbb".to_owned()
            ],
            vec!["abcdefghij".to_owned()]
        )
    );
    let mut stored = StoredCertificates::default();
    let pem = StoredPem {
        chain_pem: String::new(),
        key_pem: String::new(),
    };
    stored
        .certificates
        .insert("cert-aaaaaaaaaaaa".into(), pem.clone());
    assert_eq!(
        unknown_ids(&doc, &stored),
        ["cert-bbbbbbbbbbbb", "abcdefghij"]
    );
}

#[test]
fn a_file_certificate_shadows_a_stored_id() {
    let doc = parse(
        r#"
certificates: [ { name: cert-aaaaaaaaaaaa, certificate_chain: /c.pem, private_key: /c.key } ]
domains:
  - { name: api.example.com, certificate: cert-aaaaaaaaaaaa, mappings: [ { api: shop, stage: prod } ] }
"#,
    )
    .expect("doc");
    assert!(certificate_users(&doc, "cert-aaaaaaaaaaaa").is_empty());
    assert_eq!(stored_ids_named(&doc), (vec![], vec![]));
}

#[test]
fn load_stored_reads_both_tables() {
    let state = tempfile::tempdir().expect("tempdir");
    let db = ResourceDb::open(state.path()).expect("db");
    let (chain, key) = valid_cert(&["a.example.com"]);
    let record = CertificateRecord {
        chain_pem: chain.clone(),
        key_pem: key.clone(),
        name: None,
        tags: BTreeMap::new(),
        imported_at: 1,
        rotated_at: None,
    };
    db.put(Table::Certificates, "cert-aaaaaaaaaaaa", &record)
        .expect("put");
    let client =
        generate_client_certificate("abcdefghij", GenerateBody::default(), now()).expect("gen");
    db.put(Table::ClientCertificates, "abcdefghij", &client)
        .expect("put");
    let stored = load_stored(&db).expect("load");
    assert_eq!(
        stored.certificates["cert-aaaaaaaaaaaa"],
        StoredPem {
            chain_pem: chain,
            key_pem: key
        }
    );
    assert_eq!(
        stored.client_certificates["abcdefghij"].chain_pem,
        client.pem
    );
}
