//! What `https://` listeners serve: one rustls server config per distinct (certificate,
//! security policy, truststore) of the config's `gateway.tls` and `domains[]`, and the choice
//! among them by the ClientHello's server name (SNI): the exact domain name, then the longest
//! `*.` wildcard, then `gateway.tls`'s default; a client without SNI gets the default.
//!
//! The handshake reads the ClientHello first (rustls's `Acceptor`), so a domain's own policy
//! (versions, suites) and mutual TLS apply to its handshakes only. A plain HTTP request sent
//! to the TLS port is recognised by its first byte and answered with a plain-text 400, as
//! nginx does, instead of a hang or a bare reset.

use std::{
    io::{self, Write},
    os::fd::AsRawFd,
    sync::Arc,
};

use rustls::{
    ServerConfig,
    server::{Acceptor, ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};
use turnpike_core::{
    config::{DomainTls, TlsConfig},
    domain::NameTable,
};

use super::sessions::{PerCoreSessions, ticketer};
use crate::{
    rt::TcpStream,
    stream::{self, FdIo, TlsStream},
};

/// One server config and what it stands for.
pub struct Served {
    pub config: Arc<ServerConfig>,
    /// A hash of its certificate's names, policy and truststore: the same in every snapshot
    /// with the same settings.
    pub identity: u64,
    /// It requires client certificates.
    pub mutual_tls: bool,
}

/// The compiled TLS side of a snapshot.
pub struct TlsServer {
    /// Each config with its identity: a hash of its certificate's names, policy and truststore,
    /// the same in every snapshot that has the same settings.
    configs: Vec<Served>,
    /// Domain name -> config, matched exactly as Host headers are matched to domains.
    names: NameTable<u32>,
    default: Option<u32>,
    /// Some domain requires client certificates.
    any_mutual_tls: bool,
}

impl TlsServer {
    /// Builds the server configs of a checked config; `None` when it serves no certificate.
    /// Errors: a truststore rustls refuses (the message says why).
    pub fn build(tls: &TlsConfig) -> Result<Option<TlsServer>, String> {
        if tls.default.is_none() && tls.domains.is_empty() {
            return Ok(None);
        }
        let mut configs = Vec::new();
        let mut built = Vec::new();
        let default = match &tls.default {
            Some(d) => Some(intern(tls, d, &mut built, &mut configs)?),
            None => None,
        };
        let mut names = Vec::with_capacity(tls.domains.len());
        for (name, d) in &tls.domains {
            names.push((name.clone(), intern(tls, d, &mut built, &mut configs)?));
        }
        Ok(Some(TlsServer {
            configs,
            names: NameTable::new(names),
            default,
            any_mutual_tls: tls.domains.iter().any(|(_, d)| d.truststore.is_some()),
        }))
    }

    /// The config (and its identity) for a ClientHello's server name.
    pub fn config_for(&self, sni: Option<&str>) -> Option<&Served> {
        let pick = match sni {
            None => self.default,
            Some(name) => self.pick(name.as_bytes()),
        };
        pick.map(|i| &self.configs[i as usize])
    }

    /// Whether a request for this Host may be served on a plain (non-TLS) connection: not
    /// when its domain requires client certificates, which a plain connection cannot carry.
    #[inline]
    pub fn allows_plain(&self, host: &[u8]) -> bool {
        !self.any_mutual_tls
            || self
                .pick(host)
                .is_none_or(|i| !self.configs[i as usize].mutual_tls)
    }

    /// The identity of the TLS settings a handshake for the name in a Host header value
    /// (`name[:port]`, any case) would get; compared with the connection's own so that a
    /// request cannot reach a domain with other TLS settings than those it shook hands with.
    pub fn identity_for(&self, host: &[u8]) -> Option<u64> {
        self.pick(host).map(|i| self.configs[i as usize].identity)
    }

    /// The config for a name (Host value or SNI): its domain's, else the default.
    fn pick(&self, name: &[u8]) -> Option<u32> {
        self.names.lookup(name).copied().or(self.default)
    }
}

/// The config for `d`, built once per distinct (certificate, policy, truststore).
fn intern<'a>(
    tls: &'a TlsConfig,
    d: &'a DomainTls,
    built: &mut Vec<(&'a DomainTls, u32)>,
    configs: &mut Vec<Served>,
) -> Result<u32, String> {
    if let Some((_, i)) = built.iter().find(|(b, _)| same(b, d)) {
        return Ok(*i);
    }
    let i = configs.len() as u32;
    let identity = identity(tls, d);
    configs.push(Served {
        config: Arc::new(server_config(tls, d, identity)?),
        identity,
        mutual_tls: d.truststore.is_some(),
    });
    built.push((d, i));
    Ok(i)
}

fn same(a: &DomainTls, b: &DomainTls) -> bool {
    a.certificate == b.certificate
        && a.policy == b.policy
        && match (&a.truststore, &b.truststore) {
            (None, None) => true,
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            _ => false,
        }
}

/// A hash of what a handshake with these settings proves: the names the certificate covers
/// (not the certificate itself, so a rotated certificate for the same names keeps open
/// connections and sessions valid), the policy and the truststore. Stable across snapshots;
/// never 0.
fn identity(tls: &TlsConfig, d: &DomainTls) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    let mut names = tls.certificates[d.certificate as usize]
        .1
        .details
        .sans
        .clone();
    names.sort();
    names.hash(&mut h);
    d.policy.hash(&mut h);
    if let Some(store) = &d.truststore {
        for root in &store.roots {
            root.as_ref().hash(&mut h);
        }
    }
    h.finish() | 1
}

/// `identity` scopes the config's sessions: a session (ticket or id) made under other TLS
/// settings (before mutual TLS was required, say) never resumes under these.
fn server_config(tls: &TlsConfig, d: &DomainTls, identity: u64) -> Result<ServerConfig, String> {
    let provider = Arc::new(d.policy.provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(d.policy.versions())
        .map_err(|e| format!("security policy {}: {e}", d.policy.name()))?;
    let builder = match &d.truststore {
        None => builder.with_no_client_auth(),
        Some(store) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in &store.roots {
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("truststore certificate refused: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("truststore: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let certified = tls.certificates[d.certificate as usize].1.certified.clone();
    let mut config = builder.with_cert_resolver(Arc::new(Fixed(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.session_storage = Arc::new(PerCoreSessions::scoped(identity));
    if let Some(t) = ticketer(identity) {
        config.ticketer = t;
    }
    Ok(config)
}

/// Always the same certificate: the choice by name was made before this config was picked.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Why a client's handshake did not complete, as counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The client closed (or the handshake timed out) before finishing.
    Closed,
    /// A plain HTTP request arrived on the TLS port.
    PlainHttp,
    /// Bytes that are not TLS at all.
    NotTls,
    /// The server name matches no domain and there is no default certificate.
    UnknownName,
    /// The client's certificate was missing or did not verify (mutual TLS).
    ClientCertificate,
    /// Any other TLS-level refusal (no common version or suite, a bad message).
    Refused,
}

impl HandshakeFailure {
    /// The index of its `result` label in [`turnpike_core::metrics::HANDSHAKE_OUTCOMES`].
    pub fn outcome(self) -> usize {
        match self {
            HandshakeFailure::Closed => 2,
            HandshakeFailure::PlainHttp => 3,
            HandshakeFailure::NotTls => 4,
            HandshakeFailure::UnknownName => 5,
            HandshakeFailure::ClientCertificate => 6,
            HandshakeFailure::Refused => 7,
        }
    }

    fn of(e: &io::Error) -> HandshakeFailure {
        if e.kind() != io::ErrorKind::InvalidData {
            return HandshakeFailure::Closed;
        }
        match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            Some(
                rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::InappropriateHandshakeMessage { .. },
            ) => HandshakeFailure::ClientCertificate,
            _ => HandshakeFailure::Refused,
        }
    }
}

/// Runs the server side of a handshake on a new connection. The caller bounds it in time
/// (the watchdog shuts the socket down). On failure the socket is handed back, so a plain
/// HTTP request can still be answered.
pub async fn accept(
    tcp: TcpStream,
    server: &TlsServer,
) -> Result<TlsStream, (HandshakeFailure, TcpStream)> {
    let fd = tcp.as_raw_fd();
    match first_byte(&tcp).await {
        Ok(Some(0x16)) => {}
        Ok(Some(b)) if b.is_ascii_uppercase() => return Err((HandshakeFailure::PlainHttp, tcp)),
        Ok(Some(_)) => return Err((HandshakeFailure::NotTls, tcp)),
        Ok(None) | Err(_) => return Err((HandshakeFailure::Closed, tcp)),
    }
    let mut acceptor = Acceptor::default();
    let accepted = loop {
        match acceptor.read_tls(&mut FdIo(fd)) {
            Ok(0) => return Err((HandshakeFailure::Closed, tcp)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if tcp.readable(false).await.is_err() {
                    return Err((HandshakeFailure::Closed, tcp));
                }
                continue;
            }
            Err(_) => return Err((HandshakeFailure::Closed, tcp)),
        }
        match acceptor.accept() {
            Ok(None) => {}
            Ok(Some(accepted)) => break accepted,
            Err((_, mut alert)) => {
                let _ = alert.write_all(&mut FdIo(fd));
                return Err((HandshakeFailure::Refused, tcp));
            }
        }
    };
    let Some(served) = server.config_for(accepted.client_hello().server_name()) else {
        // A fatal unrecognized_name alert (RFC 6066 section 3), written by hand: rustls has
        // no way to send one from here. Best effort; the connection closes either way.
        let _ = FdIo(fd).write(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112]);
        return Err((HandshakeFailure::UnknownName, tcp));
    };
    let conn = match accepted.into_connection(served.config.clone()) {
        Ok(c) => c,
        Err((_, mut alert)) => {
            let _ = alert.write_all(&mut FdIo(fd));
            return Err((HandshakeFailure::Refused, tcp));
        }
    };
    let mut conn = rustls::Connection::Server(conn);
    if let Err(e) = stream::handshake(&tcp, &mut conn).await {
        return Err((HandshakeFailure::of(&e), tcp));
    }
    Ok(TlsStream::new(tcp, conn, served.identity))
}

/// The first byte the client sent, without taking it; `None` if it closed first.
async fn first_byte(tcp: &TcpStream) -> io::Result<Option<u8>> {
    loop {
        let mut byte = 0u8;
        // SAFETY: recv into one local byte; MSG_PEEK leaves it in the socket.
        let n = unsafe {
            libc::recv(
                tcp.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n == 1 {
            return Ok(Some(byte));
        }
        if n == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => tcp.readable(false).await?,
            io::ErrorKind::Interrupted => {}
            _ => return Err(e),
        }
    }
}

/// nginx's answer to plain HTTP on a TLS port.
pub const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: application/json\r\nContent-Length: 60\r\nConnection: close\r\n\r\n\
{\"message\":\"The plain HTTP request was sent to HTTPS port\"}\n";
