use std::collections::BTreeMap;

use rcgen::{CertificateParams, KeyPair, date_time_ymd};

use super::{
    MapTlsSource, SecurityPolicy, StoredPem, covers,
    material::{ClientCertificate, openssl_time, parse_certificate, parse_truststore, pem_encode},
};
use crate::config::{ConfigErrors, check_with, parse};

/// 2026-06-01T00:00:00Z: every test certificate below is valid then unless said otherwise.
const NOW: i64 = 1_780_272_000;

fn cert_for(names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
    let key = KeyPair::generate_for(alg).expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn ec(names: &[&str]) -> (String, String) {
    cert_for(names, &rcgen::PKCS_ECDSA_P256_SHA256)
}

#[test]
fn parses_a_chain_and_its_key_with_details() {
    let (chain, key) = ec(&["api.example.com", "*.example.org"]);
    let c = parse_certificate(chain.as_bytes(), key.as_bytes()).expect("certificate");
    assert_eq!(c.details.sans, ["api.example.com", "*.example.org"]);
    assert_eq!(c.details.key_type, "ECDSA-P256");
    assert_eq!(c.details.chain_len, 1);
    assert_eq!(c.details.not_after, 1_893_456_000);
    assert_eq!(c.details.fingerprint_sha256.len(), 32 * 3 - 1);
    for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
        let (chain, key) = cert_for(&["a.example"], alg);
        parse_certificate(chain.as_bytes(), key.as_bytes()).expect("P-384 and Ed25519 load");
    }
}

#[test]
fn refuses_a_key_of_another_certificate_and_missing_blocks() {
    let (chain, _) = ec(&["a.example"]);
    let (_, other_key) = ec(&["a.example"]);
    let e = parse_certificate(chain.as_bytes(), other_key.as_bytes()).expect_err("mismatch");
    assert!(e.contains("does not match"), "{e}");
    let e = parse_certificate(b"", other_key.as_bytes()).expect_err("no cert");
    assert!(e.contains("no CERTIFICATE"), "{e}");
    let e = parse_certificate(chain.as_bytes(), b"nothing").expect_err("no key");
    assert!(e.contains("no PRIVATE KEY"), "{e}");
}

#[test]
fn san_coverage_follows_rfc_6125() {
    let sans = vec!["api.example.com".to_owned(), "*.example.org".to_owned()];
    assert!(covers(&sans, "api.example.com"));
    assert!(covers(&sans, "API.Example.com"));
    assert!(covers(&sans, "a.example.org"));
    assert!(
        covers(&sans, "*.example.org"),
        "a wildcard domain by the same wildcard"
    );
    assert!(!covers(&sans, "a.b.example.org"), "one label only");
    assert!(!covers(&sans, "example.org"));
    assert!(!covers(&sans, "www.example.com"));
}

#[test]
fn policies_by_aws_name() {
    assert_eq!(SecurityPolicy::parse("TLS_1_2"), Ok(SecurityPolicy::Tls12));
    assert_eq!(
        SecurityPolicy::parse("SecurityPolicy_TLS13_1_3_2025_09"),
        Ok(SecurityPolicy::Tls13)
    );
    let e = SecurityPolicy::parse("TLS_1_0").expect_err("1.0");
    assert!(e.contains("rustls does not implement"), "{e}");
    assert!(SecurityPolicy::parse("tls12").is_err());
    assert_eq!(SecurityPolicy::Tls13.versions().len(), 1);
    assert_eq!(SecurityPolicy::Tls13.cipher_suites().len(), 3);
    assert_eq!(SecurityPolicy::Tls12.cipher_suites().len(), 9);
}

#[test]
fn client_certificate_fields_as_aws_shows_them() {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "client one");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example, Inc");
    params.serial_number = Some(vec![0x0a, 0x1b].into());
    params.not_before = date_time_ymd(2019, 5, 28);
    params.not_after = date_time_ymd(2031, 8, 5);
    let cert = params.self_signed(&key).expect("cert");
    let c = ClientCertificate::from_der(cert.der()).expect("parses");
    assert_eq!(c.subject_dn, r"O=Example\, Inc,CN=client one");
    assert_eq!(c.serial_number, "0A:1B");
    assert_eq!(c.not_before, "May 28 00:00:00 2019 GMT");
    assert_eq!(c.not_after, "Aug  5 00:00:00 2031 GMT");
    assert_eq!(c.pem.trim(), cert.pem().trim(), "PEM round trip");
    params.serial_number = Some(vec![0x80, 0xff, 0x01].into());
    let high = params.self_signed(&key).expect("cert");
    let c = ClientCertificate::from_der(high.der()).expect("parses");
    assert_eq!(
        c.serial_number, "80:FF:01",
        "DER's sign byte is not part of the number"
    );
}

#[test]
fn pem_and_time_formats() {
    assert_eq!(openssl_time(0), "Jan  1 00:00:00 1970 GMT");
    let pem = pem_encode("CERTIFICATE", b"\x01\x02\x03\x04");
    assert_eq!(
        pem,
        "-----BEGIN CERTIFICATE-----\nAQIDBA==\n-----END CERTIFICATE-----\n"
    );
    assert!(parse_truststore(b"junk").is_err());
}

fn source(files: &[(&str, &str)]) -> MapTlsSource {
    MapTlsSource {
        files: files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect(),
        now: NOW,
        ..MapTlsSource::default()
    }
}

fn errors(doc: &str, src: &MapTlsSource) -> Vec<String> {
    let file = parse(doc).expect("parses");
    match check_with(&file, src) {
        Ok(_) => Vec::new(),
        Err(ConfigErrors(e)) => e.iter().map(ToString::to_string).collect(),
    }
}

const API: &str = "apis: [{ name: a, routes: [{ key: $default, integration: m }], \
                   integrations: { m: { type: mock } }, stages: [{ name: $default }] }]";

#[test]
fn a_config_with_https_listeners_domains_and_mutual_tls_checks() {
    let (chain, key) = ec(&["api.example.com", "*.example.net"]);
    let (ca, _) = ec(&["ca.example"]);
    let src = source(&[("/c.pem", &chain), ("/k.pem", &key), ("/ca.pem", &ca)]);
    let doc = format!(
        "gateway: {{ listen: ['127.0.0.1:1', 'https://127.0.0.1:2'], tls: {{ certificate: main }} }}
certificates: [{{ name: main, certificate_chain: /c.pem, private_key: /k.pem }}]
domains:
  - {{ name: api.example.com, certificate: main, security_policy: SecurityPolicy_TLS13_1_3_2025_09,
      mutual_tls: {{ truststore: /ca.pem }}, mappings: [{{ api: a, stage: $default }}] }}
  - {{ name: '*.example.net', certificate: main, mappings: [{{ api: a, stage: $default }}] }}
{API}"
    );
    let file = parse(&doc).expect("parses");
    let c = check_with(&file, &src).expect("valid");
    assert!(c.gateway.listen[1].tls && !c.gateway.listen[0].tls);
    assert_eq!(c.gateway.listen[1].to_string(), "https://127.0.0.1:2");
    assert_eq!(c.tls.certificates.len(), 1, "one certificate, used thrice");
    assert_eq!(c.tls.domains.len(), 2);
    assert_eq!(c.tls.domains[0].1.policy, SecurityPolicy::Tls13);
    assert!(c.tls.domains[0].1.truststore.is_some());
    assert_eq!(c.tls.domains[1].1.policy, SecurityPolicy::Tls12);
}

#[test]
fn tls_mistakes_are_refused_with_their_field_paths() {
    let (chain, key) = ec(&["api.example.com"]);
    let (_, other_key) = ec(&["x"]);
    let src = source(&[
        ("/c.pem", &chain),
        ("/k.pem", &key),
        ("/other.pem", &other_key),
    ]);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "gateway: { listen: ['https://127.0.0.1:2'] }".into(),
            "gateway.listen[0]",
            "needs a certificate",
        ),
        (
            "gateway: { listen: ['https://127.0.0.1:2'], tls: { certificate: nope } }".into(),
            "gateway.tls.certificate",
            "no certificate \"nope\"",
        ),
        (
            "certificates: [{ name: m, certificate_chain: /c.pem, private_key: /other.pem }]".into(),
            "certificates[0]",
            "does not match",
        ),
        (
            "certificates: [{ name: m, certificate_chain: /missing.pem, private_key: /k.pem }]"
                .into(),
            "certificates[0].certificate_chain",
            "No such file",
        ),
        (
            "gateway: { listen: ['https://127.0.0.1:2'], tls: { certificate: m, security_policy: TLS_1_0 } }
certificates: [{ name: m, certificate_chain: /c.pem, private_key: /k.pem }]"
                .into(),
            "gateway.tls.security_policy",
            "TLS 1.0 and 1.1",
        ),
        (
            "gateway: { listen: ['https://127.0.0.1:2'] }
certificates: [{ name: m, certificate_chain: /c.pem, private_key: /k.pem }]
domains: [{ name: www.example.com, certificate: m, mappings: [{ api: a, stage: $default }] }]"
                .into(),
            "domains[0].certificate",
            "does not cover \"www.example.com\"",
        ),
        (
            "gateway: { listen: ['https://127.0.0.1:2'], tls: { certificate: m } }
certificates: [{ name: m, certificate_chain: /c.pem, private_key: /k.pem }]
domains: [{ name: api.example.com, mutual_tls: { truststore: /k.pem }, mappings: [{ api: a, stage: $default }] }]"
                .into(),
            "domains[0].mutual_tls.truststore",
            "no CERTIFICATE",
        ),
    ];
    for (doc, path, reason) in cases {
        let e = errors(&format!("{doc}\n{API}"), &src);
        assert!(
            e.iter().any(|e| e.contains(path) && e.contains(reason)),
            "{doc}\nwanted {path}: {reason}\ngot {e:?}"
        );
    }
}

#[test]
fn expired_certificates_are_refused_and_stored_ones_resolve() {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["old.example".to_owned()]).expect("params");
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2021, 1, 1);
    let old = params.self_signed(&key).expect("cert");
    let (chain, k) = ec(&["api.example.com"]);
    let mut src = source(&[("/old.pem", &old.pem()), ("/old.key", &key.serialize_pem())]);
    src.certificates = BTreeMap::from([(
        "cert-1".to_owned(),
        StoredPem {
            chain_pem: chain,
            key_pem: k,
        },
    )]);
    let e = errors(
        &format!(
            "certificates: [{{ name: old, certificate_chain: /old.pem, private_key: /old.key }}]\n{API}"
        ),
        &src,
    );
    assert!(
        e.iter()
            .any(|e| e.contains("certificates[0]") && e.contains("expired on 2021-01-01T00:00:00Z")),
        "{e:?}"
    );
    let doc = format!(
        "gateway: {{ listen: ['https://127.0.0.1:2'], tls: {{ certificate: cert-1 }} }}\n{API}"
    );
    let c = check_with(&parse(&doc).expect("parses"), &src).expect("a stored certificate");
    assert_eq!(c.tls.certificates[0].0, "cert-1");
}

#[test]
fn backend_tls_settings() {
    let (ca, _) = ec(&["ca.example"]);
    let src = source(&[("/ca.pem", &ca)]);
    let api = |uri: &str, tls: &str| {
        format!(
            "apis: [{{ name: a, routes: [{{ key: $default, integration: p }}], stages: [{{ name: $default }}],
  integrations: {{ p: {{ type: http_proxy, uri: '{uri}', tls_config: {tls} }} }} }}]"
        )
    };
    let c = check_with(
        &parse(&api(
            "https://backend.internal:8443/x",
            "{ ca_bundle: /ca.pem, server_name_to_verify: backend.example }",
        ))
        .expect("parses"),
        &src,
    )
    .expect("valid");
    let crate::config::IntegrationKind::HttpProxy(p) = &c.apis[0].integrations[0].kind else {
        panic!("http_proxy")
    };
    let tls = p.tls.as_ref().expect("https");
    assert_eq!(tls.server_name.as_deref(), Some("backend.example"));
    assert!(tls.ca_bundle.is_some());
    let target = p.targets[0].as_ref().expect("target");
    assert!(target.tls);
    assert_eq!(target.port, 8443);
    let c = check_with(
        &parse(&api("https://b", "{ insecure_skip_verification: true }")).expect("parses"),
        &src,
    )
    .expect("valid");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.to_string().contains("insecure_skip_verification")
                && w.to_string().contains("not verified")),
        "a warning at start: {:?}",
        c.warnings
    );
    let e = errors(
        &api("http://backend:80", "{ insecure_skip_verification: true }"),
        &src,
    );
    assert!(
        e.iter()
            .any(|e| e.contains("tls_config") && e.contains("https:// URIs only")),
        "{e:?}"
    );
    let e = errors(
        &format!(
            "{}\n",
            api("https://b", "{}").replace(
                "stages: [{ name: $default }]",
                "stages: [{ name: $default, client_certificate: cc-1 }]"
            )
        ),
        &src,
    );
    assert!(
        e.iter()
            .any(|e| e.contains("stages[0].client_certificate") && e.contains("cc-1")),
        "{e:?}"
    );
}

#[test]
fn a_refused_certificate_file_is_reported_once_and_unreadable_stores_warn() {
    let (chain, _) = ec(&["api.example.com"]);
    let (_, other_key) = ec(&["x"]);
    let src = source(&[("/c.pem", &chain), ("/other.pem", &other_key)]);
    let doc = format!(
        "gateway: {{ listen: ['https://127.0.0.1:2'], tls: {{ certificate: m }} }}
certificates: [{{ name: m, certificate_chain: /c.pem, private_key: /other.pem }}]
domains: [{{ name: api.example.com, certificate: m, mappings: [{{ api: a, stage: $default }}] }}]
{API}"
    );
    let e = errors(&doc, &src);
    assert!(
        e.iter()
            .any(|e| e.contains("certificates[0]") && e.contains("does not match")),
        "{e:?}"
    );
    assert!(
        !e.iter().any(|e| e.contains("no certificate \"m\"")),
        "no follow-on error for a certificate already refused: {e:?}"
    );

    struct Locked(MapTlsSource);
    impl super::TlsSource for Locked {
        fn read(&self, path: &str) -> Result<Vec<u8>, String> {
            self.0.read(path)
        }
        fn certificate(&self, _: &str) -> Option<StoredPem> {
            None
        }
        fn client_certificate(&self, _: &str) -> Option<StoredPem> {
            None
        }
        fn now(&self) -> i64 {
            NOW
        }
        fn stored_unreadable(&self) -> Option<&str> {
            Some("locked by another process")
        }
    }
    let doc = format!(
        "gateway: {{ listen: ['https://127.0.0.1:2'], tls: {{ certificate: cert-1 }} }}\n{API}"
    );
    let c =
        check_with(&parse(&doc).expect("parses"), &Locked(source(&[]))).expect("only a warning");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.to_string().contains("cert-1") && w.to_string().contains("locked")),
        "{:?}",
        c.warnings
    );
}
