//! The TLS parts of the config document, as written. Meaning is checked in
//! [`crate::config::check`].

use serde::{Deserialize, Serialize};

/// `gateway.tls`: what an `https://` listener presents when no custom domain claims the
/// handshake's server name (SNI), or when the client sends none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// The default certificate: a `certificates[]` name or a stored certificate's id. Without
    /// one, a handshake for a name no domain claims fails (alert `unrecognized_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The default security policy (AWS name, default `TLS_1_2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_policy: Option<String>,
}

/// `certificates[]`: a certificate kept in PEM files (the file-based counterpart of an
/// imported ACM certificate). Files are read when a config is checked, and again on SIGHUP or
/// when they change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFile {
    /// How domains and `gateway.tls` refer to it.
    pub name: String,
    /// PEM file: the leaf certificate first, then its intermediates.
    pub certificate_chain: String,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1): RSA 2048+, ECDSA P-256/P-384 or
    /// Ed25519.
    pub private_key: String,
}

/// `domains[].mutual_tls` (AWS `MutualTlsAuthentication`): clients must present a certificate
/// that chains to the truststore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutualTlsFile {
    /// PEM file of the CA certificates client certificates must chain to (AWS
    /// `truststoreUri`, here a local path).
    pub truststore: String,
}

/// An `http_proxy` integration's `tls_config` (AWS `TlsConfig`): how an `https://` backend is
/// verified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationTlsFile {
    /// The name the backend's certificate must carry, and the SNI sent (AWS
    /// `serverNameToVerify`); default the URI's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name_to_verify: Option<String>,
    /// PEM file of CAs to trust instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Accept any certificate (AWS REST `insecureSkipVerification`): for test backends only;
    /// logged as a warning at start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verification: bool,
}
