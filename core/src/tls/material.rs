//! PEM in, checked TLS material out: a [`Certificate`] (chain + signing key that match, with
//! the details the checks and the admin API show), a [`Truststore`], and the client
//! certificate details of a mutual TLS connection ([`ClientCertificate`]).
//!
//! Keys accepted: RSA of 2048 bits or more, ECDSA P-256 and P-384, Ed25519 (what rustls with
//! ring can sign with, less short RSA).

use std::{fmt::Write as _, sync::Arc};

use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use x509_parser::{
    certificate::X509Certificate, extensions::GeneralName, prelude::FromDer, public_key::PublicKey,
    x509::X509Name,
};

/// A certificate chain with its private key, ready to serve.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// Chain and signing key, as rustls presents them.
    pub certified: Arc<CertifiedKey>,
    pub details: CertificateDetails,
}

/// What a certificate says about itself (the leaf's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateDetails {
    /// Subject DN in RFC 2253 order and form (`CN=api.example.com,O=Example`).
    pub subject: String,
    /// Issuer DN, same form.
    pub issuer: String,
    /// DNS names and IP addresses of the subjectAltName extension, lower-case.
    pub sans: Vec<String>,
    /// Serial number, upper-case hex bytes separated by ':'.
    pub serial: String,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the leaf's DER, upper-case hex bytes separated by ':'.
    pub fingerprint_sha256: String,
    /// `RSA-2048`, `ECDSA-P256`, `ECDSA-P384`, `Ed25519`.
    pub key_type: String,
    /// Certificates in the chain (leaf included).
    pub chain_len: usize,
}

/// CA certificates that client (or backend) certificates must chain to.
#[derive(Debug, Clone)]
pub struct Truststore {
    pub roots: Vec<CertificateDer<'static>>,
    /// Subject DNs of the roots, for messages.
    pub subjects: Vec<String>,
}

/// Parses a PEM chain (leaf first) and its PEM private key, and checks that they belong
/// together and that the key is of an accepted type and size. Validity dates are not judged
/// here (see [`CertificateDetails::not_after`]).
///
/// Errors: no certificate, no key, an unparsable certificate, an unsupported or short key, a
/// key that does not match the leaf.
pub fn parse_certificate(chain_pem: &[u8], key_pem: &[u8]) -> Result<Certificate, String> {
    let chain = parse_chain(chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PRIVATE KEY block in the key PEM".to_owned()
        }
        e => format!("the key PEM is malformed: {e:?}"),
    })?;
    let details = details(&chain)?;
    if let Some(bits) = details.key_type.strip_prefix("RSA-")
        && bits.parse::<u32>().unwrap_or(0) < 2048
    {
        return Err(format!(
            "the certificate's RSA key has {bits} bits; at least 2048 are needed"
        ));
    }
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        "unsupported private key type (expected RSA 2048+, ECDSA P-256/P-384 or Ed25519)".to_owned()
    })?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|_| "the private key does not match the certificate".to_owned())?;
    Ok(Certificate {
        certified: Arc::new(certified),
        details,
    })
}

/// Parses a PEM bundle of CA certificates. Errors: none found, or one unparsable.
pub fn parse_truststore(pem: &[u8]) -> Result<Truststore, String> {
    let roots = parse_chain(pem)?;
    let mut subjects = Vec::with_capacity(roots.len());
    for (i, der) in roots.iter().enumerate() {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("certificate {} of the bundle does not parse: {e}", i + 1))?;
        subjects.push(dn(cert.subject()));
    }
    Ok(Truststore { roots, subjects })
}

fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate PEM is malformed: {e:?}"))?;
    if chain.is_empty() {
        return Err("no CERTIFICATE block in the PEM".to_owned());
    }
    Ok(chain)
}

fn details(chain: &[CertificateDer<'static>]) -> Result<CertificateDetails, String> {
    let (_, leaf) = X509Certificate::from_der(&chain[0])
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = leaf.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(n) => sans.push(n.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from(b) {
                        sans.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let key_type = match leaf.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA-{}", rsa.key_size()),
        Ok(PublicKey::EC(ec)) => match ec.key_size() {
            256 => "ECDSA-P256".to_owned(),
            384 => "ECDSA-P384".to_owned(),
            n => format!("ECDSA-{n}"),
        },
        _ if leaf.public_key().algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            "Ed25519".to_owned()
        }
        _ => "unknown".to_owned(),
    };
    Ok(CertificateDetails {
        subject: dn(leaf.subject()),
        issuer: dn(leaf.issuer()),
        sans,
        serial: serial_hex(leaf.raw_serial()),
        not_before: leaf.validity().not_before.timestamp(),
        not_after: leaf.validity().not_after.timestamp(),
        fingerprint_sha256: hex_colons(
            ring::digest::digest(&ring::digest::SHA256, &chain[0]).as_ref(),
        ),
        key_type,
        chain_len: chain.len(),
    })
}

fn ip_from(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(<[u8; 4]>::try_from(b).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(b).ok()?.into()),
        _ => None,
    }
}

/// A serial number as OpenSSL prints it, in ':'-separated hex: without the 00 byte DER puts
/// before a serial whose first byte has its high bit set (the sign), which is not part of the
/// number.
fn serial_hex(raw: &[u8]) -> String {
    match raw {
        [0, rest @ ..] if !rest.is_empty() => hex_colons(rest),
        _ => hex_colons(raw),
    }
}

fn hex_colons(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// A distinguished name in RFC 2253 form: last RDN first, `,` between RDNs, `+` inside one,
/// special characters escaped.
pub fn dn(name: &X509Name) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            let key = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.9" => "STREET",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "0.9.2342.19200300.100.1.25" => "DC",
                "0.9.2342.19200300.100.1.1" => "UID",
                _ => oid.as_str(),
            };
            out.push_str(key);
            out.push('=');
            match atv.as_str() {
                Ok(v) => escape_dn_value(&mut out, v),
                Err(_) => {
                    out.push('#');
                    out.push_str(&hex_colons(atv.attr_value().data).replace(':', ""));
                }
            }
        }
    }
    out
}

fn escape_dn_value(out: &mut String, v: &str) {
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether a certificate with these subjectAltNames serves `host` (RFC 6125 §6.4: exact,
/// case-insensitive; a `*.` SAN matches exactly one leftmost label). A wildcard domain name
/// (`*.example.com`) is served by the same wildcard SAN.
pub fn covers(sans: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    sans.iter().any(|san| {
        if *san == host {
            return true;
        }
        match (san.strip_prefix("*."), host.split_once('.')) {
            (Some(suffix), Some((label, rest))) => {
                !label.is_empty() && label != "*" && rest == suffix
            }
            _ => false,
        }
    })
}

/// A client certificate's fields as `$context.identity.clientCert.*` shows them (AWS
/// "Configuring mutual TLS authentication for an HTTP API"): computed once per connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertificate {
    /// `clientCertPem`.
    pub pem: String,
    /// `subjectDN`, RFC 2253.
    pub subject_dn: String,
    /// `issuerDN`, RFC 2253.
    pub issuer_dn: String,
    /// `serialNumber`, upper-case hex bytes separated by ':'.
    pub serial_number: String,
    /// `validity.notBefore` / `notAfter`, as OpenSSL prints them (`May 28 12:30:02 2019 GMT`).
    pub not_before: String,
    pub not_after: String,
}

impl ClientCertificate {
    /// The fields of a client's leaf certificate (DER). `None` if it does not parse (the
    /// handshake verified it, so it does).
    pub fn from_der(der: &[u8]) -> Option<ClientCertificate> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some(ClientCertificate {
            pem: pem_encode("CERTIFICATE", der),
            subject_dn: dn(cert.subject()),
            issuer_dn: dn(cert.issuer()),
            serial_number: serial_hex(cert.raw_serial()),
            not_before: openssl_time(cert.validity().not_before.timestamp()),
            not_after: openssl_time(cert.validity().not_after.timestamp()),
        })
    }

    /// Borrowed view for a request's context.
    pub fn info(&self) -> crate::context::ClientCertInfo<'_> {
        crate::context::ClientCertInfo {
            pem: &self.pem,
            subject_dn: &self.subject_dn,
            issuer_dn: &self.issuer_dn,
            serial_number: &self.serial_number,
            not_before: &self.not_before,
            not_after: &self.not_after,
        }
    }
}

/// `May 28 12:30:02 2019 GMT` (OpenSSL's `ASN1_TIME_print` form, which AWS shows).
pub fn openssl_time(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = unix.max(0) as u64;
    let (y, m, d) = crate::context::civil_from_days(secs / 86_400);
    let t = secs % 86_400;
    format!(
        "{} {:>2} {:02}:{:02}:{:02} {y} GMT",
        MONTHS[(m - 1) as usize],
        d,
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// ISO 8601 UTC (`2026-11-29T21:33:32Z`), for the admin API.
pub fn iso_time(unix: i64) -> String {
    let secs = unix.max(0) as u64;
    let (y, m, d) = crate::context::civil_from_days(secs / 86_400);
    let t = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// PEM armour around DER (RFC 7468): base64 in 64-column lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}
