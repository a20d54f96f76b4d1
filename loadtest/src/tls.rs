//! TLS for `https://` targets: the rustls client configuration made from the flags (`--cacert`,
//! `--insecure`, `--sni`, `--tls-resume`), checked before the run so that an unreadable CA file
//! or a bad server name is refused naming the flag, not discovered by every connection.
//!
//! rustls with the ring provider only. Each load thread gets its own copy of the configuration
//! and, with `--tls-resume`, its own session cache, so resumption never takes a lock another
//! thread also takes. Driving a connection's records over a monoio socket is [`crate::stream`]'s
//! job.

use std::{path::PathBuf, sync::Arc};

use rustls::{
    ClientConfig, ClientConnection, RootCertStore,
    client::Resumption,
    pki_types::{CertificateDer, ServerName, pem::PemObject},
};
// `--insecure`: any certificate chain is accepted, for benchmarks against a self-signed
// certificate; the handshake signature is still verified, so the client does the same
// public-key work per handshake as a verifying one, bar the chain.
use turnpike_core::tls::verify::AcceptAnyCertificate;

/// Sessions (per server name, a few TLS 1.3 tickets each) a load thread remembers with
/// `--tls-resume`. Every connection of a run talks to the same server name, so one is plenty;
/// rustls keeps a handful of tickets per name, and each connection takes one and is sent new
/// ones.
const SESSIONS: usize = 64;

/// The TLS flags, as given.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file with the certificates to trust.
    pub cacert: Option<PathBuf>,
    /// Accept any certificate (handshake signatures are still checked).
    pub insecure: bool,
    /// Server name to send and verify against, instead of the URL's host.
    pub sni: Option<String>,
    /// Keep a session cache so that new connections are resumed.
    pub resume: bool,
}

/// Why the TLS flags do not make a client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "https:// needs --cacert PATH (the certificate, or the CA, to trust) or --insecure (trust any)"
    )]
    NoTrust,
    #[error("--cacert: cannot read {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("--cacert: {path} holds no usable PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("--sni: {name:?} is not a DNS name (an IP address is never sent as SNI)")]
    Sni { name: String },
    #[error("bad URL: host {host:?} is not a valid TLS server name")]
    Host { host: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Everything a load thread needs to open TLS connections to the target.
#[derive(Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    /// Verified against the certificate; sent as SNI when it is a DNS name.
    pub server_name: ServerName<'static>,
    pub resume: bool,
    pub insecure: bool,
}

impl TlsClient {
    /// Builds and checks the configuration for connections to `host` (the URL's host).
    pub fn new(host: &str, opts: &TlsOptions) -> Result<Self, TlsError> {
        let server_name = server_name(host, opts.sni.as_deref())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = match (&opts.cacert, opts.insecure) {
            (_, true) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth(),
            (Some(path), false) => builder
                .with_root_certificates(load_roots(path)?)
                .with_no_client_auth(),
            (None, false) => return Err(TlsError::NoTrust),
        };
        // What a browser or curl offers for HTTP/1.1; a proxy that insists on ALPN (HAProxy
        // with `alpn`) then picks the protocol this generator speaks.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = Resumption::disabled();
        Ok(Self {
            config: Arc::new(config),
            server_name,
            resume: opts.resume,
            insecure: opts.insecure,
        })
    }

    /// What one load thread starts its connections with: with `--tls-resume`, a session cache
    /// of its own; without, none, so every connection makes a full handshake.
    pub fn for_thread(&self) -> ThreadTls {
        let mut config = (*self.config).clone();
        if self.resume {
            config.resumption = Resumption::in_memory_sessions(SESSIONS);
        }
        ThreadTls {
            config: Arc::new(config),
            server_name: self.server_name.clone(),
        }
    }

    /// The SNI sent: the server name when it is a DNS name, else none.
    pub fn sni(&self) -> Option<String> {
        match &self.server_name {
            ServerName::DnsName(name) => Some(name.as_ref().to_owned()),
            _ => None,
        }
    }
}

/// One load thread's TLS client side.
#[derive(Debug)]
pub struct ThreadTls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl ThreadTls {
    /// A new client connection, its handshake not started.
    pub fn connection(&self) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(self.config.clone(), self.server_name.clone())
    }

    #[cfg(test)]
    fn config(&self) -> &ClientConfig {
        &self.config
    }
}

/// `--sni` when given (a DNS name only), else the URL's host: a DNS name is sent as SNI, an IP
/// address is not (rustls sends none for one) and is verified against the certificate's IP SANs.
fn server_name(host: &str, sni: Option<&str>) -> Result<ServerName<'static>, TlsError> {
    match sni {
        Some(name) => match ServerName::try_from(name.to_owned()) {
            Ok(n @ ServerName::DnsName(_)) => Ok(n),
            _ => Err(TlsError::Sni { name: name.into() }),
        },
        None => {
            ServerName::try_from(host.to_owned()).map_err(|_| TlsError::Host { host: host.into() })
        }
    }
}

fn load_roots(path: &PathBuf) -> Result<RootCertStore, TlsError> {
    let unreadable = |reason: String| TlsError::CaFile {
        path: path.clone(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::NoCertificate { path: path.clone() });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_host_sends_no_sni_unless_asked() {
        let ip = server_name("127.0.0.1", None).expect("ip");
        assert!(matches!(ip, ServerName::IpAddress(_)));
        let v6 = server_name("::1", None).expect("ipv6");
        assert!(matches!(v6, ServerName::IpAddress(_)));
        let named = server_name("127.0.0.1", Some("bench.turnpike.test")).expect("sni");
        assert_eq!(
            named,
            ServerName::try_from("bench.turnpike.test").expect("dns")
        );
        let host = server_name("bench.turnpike.test", None).expect("host");
        assert!(matches!(host, ServerName::DnsName(_)));
    }

    #[test]
    fn bad_server_names_are_refused() {
        assert!(matches!(
            server_name("h", Some("10.0.0.1")),
            Err(TlsError::Sni { .. })
        ));
        assert!(matches!(
            server_name("h", Some("not a name")),
            Err(TlsError::Sni { .. })
        ));
        assert!(matches!(
            server_name("bad_host!", None),
            Err(TlsError::Host { .. })
        ));
    }

    #[test]
    fn trust_must_be_chosen_and_readable() {
        let none = TlsOptions::default();
        assert!(matches!(
            TlsClient::new("127.0.0.1", &none),
            Err(TlsError::NoTrust)
        ));
        let missing = TlsOptions {
            cacert: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        assert!(matches!(
            TlsClient::new("127.0.0.1", &missing),
            Err(TlsError::CaFile { .. })
        ));
        let dir = std::env::temp_dir().join(format!("turnpike-load-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").expect("write");
        let empty = TlsOptions {
            cacert: Some(empty),
            ..TlsOptions::default()
        };
        assert!(matches!(
            TlsClient::new("127.0.0.1", &empty),
            Err(TlsError::NoCertificate { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn insecure_config_offers_http11_and_the_sni_asked_for() {
        let insecure = TlsOptions {
            insecure: true,
            sni: Some("bench.turnpike.test".into()),
            ..TlsOptions::default()
        };
        let client = TlsClient::new("127.0.0.1", &insecure).expect("config");
        assert_eq!(client.sni().as_deref(), Some("bench.turnpike.test"));
        assert_eq!(
            client.for_thread().config().alpn_protocols,
            [b"http/1.1".to_vec()]
        );
        let by_ip = TlsClient::new(
            "127.0.0.1",
            &TlsOptions {
                insecure: true,
                ..TlsOptions::default()
            },
        )
        .expect("config");
        assert_eq!(by_ip.sni(), None);
    }
}
