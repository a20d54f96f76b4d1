//! Test certificates made with rcgen, for the admin's unit tests.

/// A certificate for `names` signed by its own key (ECDSA P-256), valid from `not_before` to
/// `not_after` (seconds since the Unix epoch): `(chain_pem, key_pem)`.
pub fn server_cert(names: &[&str], not_before: i64, not_after: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, names[0]);
    params.distinguished_name = dn;
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("time");
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("time");
    let cert = params.self_signed(&key).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// Now, in seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A certificate for `names` valid from an hour ago for 30 days.
pub fn valid_cert(names: &[&str]) -> (String, String) {
    let now = now();
    server_cert(names, now - 3600, now + 30 * 86_400)
}
