//! The target: an `http://` or `https://host[:port][/path]` URL turned into a socket address,
//! the `Host` header value, the host for TLS (server name) and the request path.
//!
//! Resolution happens once, before any load thread starts, so no thread ever blocks on DNS.

use std::net::{SocketAddr, ToSocketAddrs};

/// Why a target URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("bad URL {url:?}: {reason}")]
    Malformed { url: String, reason: &'static str },
    #[error("bad URL {url:?}: unsupported scheme {scheme:?}; use http:// or https://")]
    Scheme { url: String, scheme: String },
    #[error("bad URL {url:?}: port {port:?} is not a number from 1 to 65535")]
    Port { url: String, port: String },
    #[error("cannot resolve {host:?}: {reason}")]
    Resolve { host: String, reason: String },
}

/// A parsed and resolved target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, for reports.
    pub url: String,
    /// Where connections go.
    pub addr: SocketAddr,
    /// The `Host` header value: the URL's authority as written.
    pub authority: String,
    /// The host as written, without IPv6 brackets: the TLS server name unless `--sni` says
    /// otherwise.
    pub host: String,
    /// `https://`: every connection speaks TLS.
    pub https: bool,
    /// Path and query, `/` when the URL has none.
    pub path: String,
}

impl Target {
    /// Parses and resolves `url`.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let Parts {
            https,
            authority,
            host,
            port,
            path,
        } = split(url)?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| TargetError::Resolve {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| TargetError::Resolve {
                host: host.clone(),
                reason: "no address found".into(),
            })?;
        Ok(Self {
            url: url.to_owned(),
            addr,
            authority,
            host,
            https,
            path,
        })
    }
}

/// A URL taken apart, not resolved.
#[derive(Debug, PartialEq, Eq)]
struct Parts {
    https: bool,
    authority: String,
    host: String,
    port: u16,
    path: String,
}

/// Splits a URL into its parts without resolving it.
fn split(url: &str) -> Result<Parts, TargetError> {
    let malformed = |reason| TargetError::Malformed {
        url: url.to_owned(),
        reason,
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(malformed("expected http://host[:port][/path]"));
    };
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => {
            return Err(TargetError::Scheme {
                url: url.into(),
                scheme: scheme.into(),
            });
        }
    };
    let default_port = if https { 443 } else { 80 };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let path = match path.split_once('#') {
        Some((p, _)) => p.to_owned(),
        None => path,
    };
    if authority.is_empty() {
        return Err(malformed("missing host"));
    }
    if authority.contains('@') {
        return Err(malformed("user:password@ in the URL is not supported"));
    }
    if authority
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(malformed("whitespace in host"));
    }
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(malformed("whitespace in path (percent-encode it)"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return Err(malformed("unclosed [ in IPv6 host"));
        };
        match after.strip_prefix(':') {
            Some(p) => (h.to_owned(), parse_port(url, p)?),
            None if after.is_empty() => (h.to_owned(), default_port),
            None => return Err(malformed("junk after IPv6 host")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), parse_port(url, p)?),
            None => (authority.to_owned(), default_port),
        }
    };
    if host.is_empty() {
        return Err(malformed("missing host"));
    }
    Ok(Parts {
        https,
        authority: authority.to_owned(),
        host,
        port,
        path,
    })
}

fn parse_port(url: &str, p: &str) -> Result<u16, TargetError> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(TargetError::Port {
            url: url.to_owned(),
            port: p.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(https: bool, authority: &str, host: &str, port: u16, path: &str) -> Parts {
        Parts {
            https,
            authority: authority.into(),
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            split("http://127.0.0.1:8080/a/b?x=1"),
            Ok(parts(
                false,
                "127.0.0.1:8080",
                "127.0.0.1",
                8080,
                "/a/b?x=1"
            ))
        );
        assert_eq!(
            split("http://localhost"),
            Ok(parts(false, "localhost", "localhost", 80, "/"))
        );
        assert_eq!(
            split("http://[::1]:9000?q"),
            Ok(parts(false, "[::1]:9000", "::1", 9000, "/?q"))
        );
        assert_eq!(split("HTTP://h/p#frag").map(|p| p.path), Ok("/p".into()));
    }

    #[test]
    fn https_urls_default_to_port_443() {
        assert_eq!(
            split("https://bench.turnpike.test/x"),
            Ok(parts(
                true,
                "bench.turnpike.test",
                "bench.turnpike.test",
                443,
                "/x"
            ))
        );
        assert_eq!(
            split("HTTPS://[::1]"),
            Ok(parts(true, "[::1]", "::1", 443, "/"))
        );
        assert_eq!(
            split("https://127.0.0.1:18443/"),
            Ok(parts(true, "127.0.0.1:18443", "127.0.0.1", 18443, "/"))
        );
    }

    #[test]
    fn refuses_bad_urls() {
        assert!(matches!(split("ftp://h/"), Err(TargetError::Scheme { .. })));
        assert!(matches!(split("h:80/"), Err(TargetError::Malformed { .. })));
        assert!(matches!(
            split("http:///x"),
            Err(TargetError::Malformed { .. })
        ));
        assert!(matches!(
            split("http://h:0/"),
            Err(TargetError::Port { .. })
        ));
        assert!(matches!(
            split("http://h:99999/"),
            Err(TargetError::Port { .. })
        ));
        assert!(matches!(
            split("http://h:x/"),
            Err(TargetError::Port { .. })
        ));
        assert!(matches!(
            split("http://h/a b"),
            Err(TargetError::Malformed { .. })
        ));
    }
}
