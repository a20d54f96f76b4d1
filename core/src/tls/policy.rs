//! Security policies: the TLS protocol versions and cipher suites a custom domain accepts,
//! named as AWS API Gateway names them ("Choosing a security policy for your custom domain").
//!
//! | policy | versions | cipher suites (IANA names) |
//! |---|---|---|
//! | `TLS_1_2`, `SecurityPolicy_TLS13_1_2_2021_06` | TLS 1.3, TLS 1.2 | TLS 1.3: `TLS_AES_128_GCM_SHA256`, `TLS_AES_256_GCM_SHA384`, `TLS_CHACHA20_POLY1305_SHA256`; TLS 1.2: `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`, `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`, `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256` |
//! | `SecurityPolicy_TLS13_1_3_2025_09` (alias `TLS_1_3`) | TLS 1.3 only | `TLS_AES_128_GCM_SHA256`, `TLS_AES_256_GCM_SHA384`, `TLS_CHACHA20_POLY1305_SHA256` |
//!
//! Where this differs from AWS: AWS's `TLS_1_2` also offers CBC and RSA-key-exchange suites
//! (`ECDHE-RSA-AES128-SHA256`, `AES128-GCM-SHA256`, ...). rustls implements none of them (they
//! lack forward secrecy or use MAC-then-encrypt), so here the policy offers only its AEAD,
//! ECDHE suites. `TLS_1_0` needs TLS 1.0 and 1.1, which rustls does not speak (RFC 8996
//! deprecates both): such a policy is refused with that reason.

use rustls::{
    SupportedCipherSuite, SupportedProtocolVersion,
    crypto::ring::cipher_suite as cs,
    version::{TLS12, TLS13},
};

/// A domain's TLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SecurityPolicy {
    /// TLS 1.2 and 1.3 (AWS `TLS_1_2`).
    #[default]
    Tls12,
    /// TLS 1.3 only (AWS `SecurityPolicy_TLS13_1_3_2025_09`).
    Tls13,
}

const TLS13_SUITES: [SupportedCipherSuite; 3] = [
    cs::TLS13_AES_128_GCM_SHA256,
    cs::TLS13_AES_256_GCM_SHA384,
    cs::TLS13_CHACHA20_POLY1305_SHA256,
];

const TLS12_SUITES: [SupportedCipherSuite; 6] = [
    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The names accepted, for error messages and docs.
pub const POLICY_NAMES: &str = "TLS_1_2, SecurityPolicy_TLS13_1_2_2021_06, \
     SecurityPolicy_TLS13_1_3_2025_09 (or TLS_1_3)";

impl SecurityPolicy {
    /// Parses an AWS policy name. `Err` says why: unknown, or needing TLS 1.0/1.1.
    pub fn parse(name: &str) -> Result<SecurityPolicy, String> {
        match name {
            "TLS_1_2" | "SecurityPolicy_TLS13_1_2_2021_06" => Ok(SecurityPolicy::Tls12),
            "TLS_1_3" | "SecurityPolicy_TLS13_1_3_2025_09" => Ok(SecurityPolicy::Tls13),
            "TLS_1_0" | "SecurityPolicy_TLS12_1_0_2021_06" | "SecurityPolicy_TLS13_1_0_2021_06" => {
                Err(format!(
                    "{name} needs TLS 1.0 and 1.1, which rustls does not implement (RFC 8996 \
                     deprecates both); use TLS_1_2"
                ))
            }
            _ => Err(format!(
                "unknown security policy {name:?}: expected {POLICY_NAMES}"
            )),
        }
    }

    /// The canonical AWS name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityPolicy::Tls12 => "TLS_1_2",
            SecurityPolicy::Tls13 => "SecurityPolicy_TLS13_1_3_2025_09",
        }
    }

    /// Protocol versions, newest first.
    pub fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static BOTH: [&SupportedProtocolVersion; 2] = [&TLS13, &TLS12];
        static ONLY_13: [&SupportedProtocolVersion; 1] = [&TLS13];
        match self {
            SecurityPolicy::Tls12 => &BOTH,
            SecurityPolicy::Tls13 => &ONLY_13,
        }
    }

    /// Cipher suites in preference order (TLS 1.3 suites first).
    pub fn cipher_suites(self) -> Vec<SupportedCipherSuite> {
        let mut v = TLS13_SUITES.to_vec();
        if self == SecurityPolicy::Tls12 {
            v.extend_from_slice(&TLS12_SUITES);
        }
        v
    }

    /// The ring crypto provider restricted to this policy's suites.
    pub fn provider(self) -> rustls::crypto::CryptoProvider {
        rustls::crypto::CryptoProvider {
            cipher_suites: self.cipher_suites(),
            ..rustls::crypto::ring::default_provider()
        }
    }
}
