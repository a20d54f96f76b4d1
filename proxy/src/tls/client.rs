//! How `https://` backends are reached: a rustls client config per integration and stage
//! (the roots it trusts, the name it verifies and sends as SNI, the stage's client
//! certificate), kept in the route plan. Each config keeps its own session cache, so pooled
//! and new connections to the same backend resume their TLS sessions.
//!
//! Roots: the integration's `tls_config.ca_bundle`, else the system's (loaded once per
//! process with `rustls-native-certs` from the usual OpenSSL locations). With
//! `insecure_skip_verification` any certificate is accepted, but the handshake's signatures are
//! still checked, so the connection is still encrypted to whoever holds the key.

use std::{
    io,
    sync::{Arc, OnceLock},
};

use rustls::{
    ClientConfig, RootCertStore, SignatureScheme, client::ResolvesClientCert,
    pki_types::ServerName, sign::CertifiedKey,
};
use turnpike_core::{
    config::UpstreamTls,
    tls::{Certificate, verify::AcceptAnyCertificate},
};

use crate::{
    rt::TcpStream,
    stream::{self, TlsStream},
};

/// What a connection to one `https://` backend needs.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Builds the client side for backend `host` (the URI's host). Errors: an invalid server
    /// name, no usable roots.
    pub fn build(
        host: &str,
        tls: &UpstreamTls,
        client_cert: Option<&Arc<Certificate>>,
    ) -> Result<TlsClient, String> {
        let name = tls.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| format!("{name:?} is not a DNS name or IP address"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = if tls.insecure_skip_verification {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                    provider.signature_verification_algorithms,
                )))
        } else {
            let roots = match &tls.ca_bundle {
                Some(bundle) => {
                    let mut roots = RootCertStore::empty();
                    for cert in &bundle.roots {
                        roots
                            .add(cert.clone())
                            .map_err(|e| format!("ca_bundle certificate refused: {e}"))?;
                    }
                    Arc::new(roots)
                }
                None => system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let mut config = match client_cert {
            Some(cert) => {
                builder.with_client_cert_resolver(Arc::new(Present(cert.certified.clone())))
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// Runs the client side of a handshake over a connected socket. The caller bounds it in time.
/// Errors carry rustls's reason (an unknown issuer, a name mismatch, an expired certificate).
pub async fn connect(tcp: TcpStream, client: &TlsClient) -> io::Result<TlsStream> {
    let conn = rustls::ClientConnection::new(client.config.clone(), client.server_name.clone())
        .map_err(io::Error::other)?;
    let mut conn = rustls::Connection::Client(conn);
    stream::handshake(&tcp, &mut conn).await?;
    Ok(TlsStream::new(tcp, conn, 0))
}

/// The system's CA certificates, loaded once.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "no system CA certificates found ({}); install ca-certificates or set \
                     tls_config.ca_bundle",
                    found
                        .errors
                        .first()
                        .map_or_else(|| "none in the usual places".to_owned(), |e| e.to_string())
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// The stage's client certificate, presented whenever a backend asks.
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
