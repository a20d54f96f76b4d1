//! Integration URI templates: `http://${stageVariables.backend}/users/{id}`.
//!
//! A template is checked once when the config is loaded, rendered once per stage (stage
//! variables are known then), and what remains — `{param}` slots in the path — is filled per
//! request from the matched route's parameters without allocating.

use crate::route::{Params, is_pchar};

/// A part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    StageVar(String),
    Param(String),
}

/// A parsed `http_proxy` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    /// `https://`.
    pub tls: bool,
    authority: Vec<Part>,
    /// `None`: the URI has no path; the request path is forwarded unchanged.
    path: Option<Vec<Part>>,
    query: Option<Vec<Part>>,
}

/// Why a URI template was refused (or could not be rendered for a stage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("expected an absolute http:// or https:// URI")]
    Scheme,
    #[error("unterminated {0:?}")]
    Unterminated(String),
    #[error("{0:?}: only ${{stageVariables.NAME}} and {{param}} are substituted")]
    BadPlaceholder(String),
    #[error("{{{0}}}: path parameters may only appear in the path")]
    ParamOutsidePath(String),
    #[error("the URI has a user-info part (user@host); put credentials in headers instead")]
    UserInfo,
    #[error("fragment (#) not allowed")]
    Fragment,
    #[error("stage variable {0:?} is not defined in stage {1:?}")]
    MissingStageVar(String, String),
    #[error("host {0:?} is not a valid host[:port]")]
    BadAuthority(String),
    #[error("path {0:?} has a character not allowed in a URI path")]
    BadPath(String),
}

impl UriTemplate {
    pub fn parse(uri: &str) -> Result<UriTemplate, UriError> {
        let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
        let (tls, rest) = if lower.starts_with("https://") {
            (true, &uri[8..])
        } else if lower.starts_with("http://") {
            (false, &uri[7..])
        } else {
            return Err(UriError::Scheme);
        };
        if rest.contains('#') {
            return Err(UriError::Fragment);
        }
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(auth_end);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let authority = tokenize(authority)?;
        if let Some(Part::Param(p)) = authority.iter().find(|p| matches!(p, Part::Param(_))) {
            return Err(UriError::ParamOutsidePath(p.clone()));
        }
        if authority.is_empty() {
            return Err(UriError::BadAuthority(String::new()));
        }
        let query = query.map(tokenize).transpose()?;
        if let Some(Part::Param(p)) = query.iter().flatten().find(|p| matches!(p, Part::Param(_))) {
            return Err(UriError::ParamOutsidePath(p.clone()));
        }
        let path = if path.is_empty() {
            None
        } else {
            Some(tokenize(path)?)
        };
        Ok(UriTemplate {
            tls,
            authority,
            path,
            query,
        })
    }

    /// Stage variable names used anywhere in the template.
    pub fn stage_vars(&self) -> impl Iterator<Item = &str> {
        self.parts().filter_map(|p| match p {
            Part::StageVar(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Path parameter names used in the path.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.parts().filter_map(|p| match p {
            Part::Param(v) => Some(v.as_str()),
            _ => None,
        })
    }

    fn parts(&self) -> impl Iterator<Item = &Part> {
        self.authority
            .iter()
            .chain(self.path.iter().flatten())
            .chain(self.query.iter().flatten())
    }

    /// Renders the template for one stage: authority and query become fixed strings, the path
    /// keeps only its `{param}` slots.
    pub fn for_stage(
        &self,
        stage: &str,
        vars: &dyn Fn(&str) -> Option<String>,
    ) -> Result<UpstreamTarget, UriError> {
        let render = |parts: &[Part]| -> Result<String, UriError> {
            let mut out = String::new();
            for p in parts {
                match p {
                    Part::Lit(s) => out.push_str(s),
                    Part::StageVar(v) => out.push_str(
                        &vars(v)
                            .ok_or_else(|| UriError::MissingStageVar(v.clone(), stage.into()))?,
                    ),
                    // parse() refuses {param} outside the path.
                    Part::Param(_) => {}
                }
            }
            Ok(out)
        };
        let authority = render(&self.authority)?;
        let default_port = if self.tls { 443 } else { 80 };
        let (host, port) = split_authority(&authority, default_port)?;
        let path =
            match &self.path {
                None => None,
                Some(parts) => {
                    let mut slots = Vec::new();
                    let mut lit = String::new();
                    for p in parts {
                        match p {
                            Part::Lit(s) => lit.push_str(s),
                            Part::StageVar(v) => lit.push_str(&vars(v).ok_or_else(|| {
                                UriError::MissingStageVar(v.clone(), stage.into())
                            })?),
                            Part::Param(name) => {
                                slots.push(PathPart::Lit(std::mem::take(&mut lit)));
                                slots.push(PathPart::Param(name.clone()));
                            }
                        }
                    }
                    slots.push(PathPart::Lit(lit));
                    slots.retain(|p| !matches!(p, PathPart::Lit(s) if s.is_empty()));
                    for p in &slots {
                        if let PathPart::Lit(s) = p
                            && !s.bytes().all(|b| b == b'/' || is_pchar(b))
                        {
                            return Err(UriError::BadPath(s.clone()));
                        }
                    }
                    Some(PathTemplate { parts: slots })
                }
            };
        let query = match &self.query {
            Some(q) => {
                let q = render(q)?;
                if !q.bytes().all(|b| is_pchar(b) || b == b'/' || b == b'?') {
                    return Err(UriError::BadPath(q));
                }
                Some(q)
            }
            None => None,
        };
        let host_header = if port == default_port {
            host.clone()
        } else {
            format!("{}:{port}", bracket(&host))
        };
        Ok(UpstreamTarget {
            tls: self.tls,
            host,
            port,
            host_header,
            path,
            query,
        })
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn tokenize(s: &str) -> Result<Vec<Part>, UriError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(['$', '{', '}']) {
        lit.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| UriError::Unterminated(tail.into()))?;
            let name = after[..end]
                .strip_prefix("stageVariables.")
                .filter(|n| is_var_name(n))
                .ok_or_else(|| UriError::BadPlaceholder(format!("${{{}}}", &after[..end])))?;
            flush(&mut parts, &mut lit);
            parts.push(Part::StageVar(name.to_owned()));
            rest = &after[end + 1..];
        } else if let Some(after) = tail.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| UriError::Unterminated(tail.into()))?;
            let name = after[..end].trim_end_matches('+');
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return Err(UriError::BadPlaceholder(format!("{{{}}}", &after[..end])));
            }
            flush(&mut parts, &mut lit);
            parts.push(Part::Param(name.to_owned()));
            rest = &after[end + 1..];
        } else if let Some(after) = tail.strip_prefix('$') {
            lit.push('$');
            rest = after;
        } else {
            return Err(UriError::BadPlaceholder(tail.chars().take(16).collect()));
        }
    }
    lit.push_str(rest);
    flush(&mut parts, &mut lit);
    Ok(parts)
}

fn flush(parts: &mut Vec<Part>, lit: &mut String) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

/// Stage variable names: letters, digits and '_' (AWS's rule).
pub fn is_var_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `host[:port]` (IPv6 in brackets), refusing anything that is not a plain host.
fn split_authority(a: &str, default_port: u16) -> Result<(String, u16), UriError> {
    let bad = || UriError::BadAuthority(a.to_owned());
    if a.contains('@') {
        return Err(UriError::UserInfo);
    }
    let (host, port) = if let Some(v6) = a.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').ok_or_else(bad)?;
        h.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let port = match rest {
            "" => None,
            r => Some(r.strip_prefix(':').ok_or_else(bad)?),
        };
        (h.to_owned(), port)
    } else {
        let (h, port) = match a.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        };
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            return Err(bad());
        }
        (h.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?,
    };
    Ok((host, port))
}

/// Where an integration sends requests for one stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamTarget {
    /// `https://`: the connection speaks TLS.
    pub tls: bool,
    /// Host name or IP literal (no brackets), lower-case.
    pub host: String,
    pub port: u16,
    /// The Host header value for this upstream (`host` or `host:port`).
    pub host_header: String,
    /// `None`: forward the request path unchanged.
    pub path: Option<PathTemplate>,
    /// Fixed query string from the URI (without '?'); the request's query is appended.
    pub query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PathPart {
    Lit(String),
    Param(String),
}

/// An upstream path with `{param}` slots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathTemplate {
    parts: Vec<PathPart>,
}

impl PathTemplate {
    /// Appends the path with `params` substituted. A parameter the route did not capture
    /// renders empty (the config check refuses such pairings, so this is only defensive).
    /// Appends the path with each `{param}` replaced by `value(name)` (empty when `None`), as
    /// given: the caller encodes values.
    pub fn render_with<'v>(&self, value: impl Fn(&str) -> Option<&'v [u8]>, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                PathPart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                PathPart::Param(name) => out.extend_from_slice(value(name).unwrap_or(b"")),
            }
        }
    }

    #[inline]
    pub fn render_into(&self, params: &Params<'_, '_>, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                PathPart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                PathPart::Param(name) => out.extend_from_slice(params.get(name).unwrap_or(b"")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{RouteKey, RouteTable};

    fn vars(v: &str) -> Option<String> {
        (v == "backend").then(|| "10.0.0.1:9000".to_owned())
    }

    #[test]
    fn renders_stage_variables_and_params() {
        let t =
            UriTemplate::parse("http://${stageVariables.backend}/v2/{proxy}?src=gw").expect("uri");
        assert_eq!(t.stage_vars().collect::<Vec<_>>(), ["backend"]);
        assert_eq!(t.params().collect::<Vec<_>>(), ["proxy"]);
        let target = t.for_stage("prod", &vars).expect("render");
        assert_eq!((target.host.as_str(), target.port), ("10.0.0.1", 9000));
        assert_eq!(target.host_header, "10.0.0.1:9000");
        assert_eq!(target.query.as_deref(), Some("src=gw"));
        let mut table = RouteTable::new();
        table
            .insert(&RouteKey::parse("ANY /{proxy+}").expect("key"), ())
            .expect("insert");
        let m = table.find(b"GET", b"/a/b").expect("match");
        let mut out = Vec::new();
        target.path.expect("path").render_into(&m.params, &mut out);
        assert_eq!(out, b"/v2/a/b");
    }

    #[test]
    fn no_path_means_forward_unchanged_and_port_80_is_implicit() {
        let t = UriTemplate::parse("http://Example.com").expect("uri");
        let target = t.for_stage("$default", &|_| None).expect("render");
        assert_eq!(target.path, None);
        assert_eq!((target.host.as_str(), target.port), ("example.com", 80));
        assert_eq!(target.host_header, "example.com");
        let v6 = UriTemplate::parse("http://[::1]:81/x").expect("uri");
        assert_eq!(
            v6.for_stage("s", &|_| None).expect("render").host_header,
            "[::1]:81"
        );
    }

    #[test]
    fn refuses_bad_templates() {
        let cases = [
            ("ftp://a", UriError::Scheme),
            ("http://{id}/x", UriError::ParamOutsidePath("id".into())),
            (
                "http://a/${stage.x}",
                UriError::BadPlaceholder("${stage.x}".into()),
            ),
            ("http://a/{x", UriError::Unterminated("{x".into())),
            ("http://a/x}", UriError::BadPlaceholder("}".into())),
            ("http://a/x#f", UriError::Fragment),
        ];
        for (uri, want) in cases {
            assert_eq!(UriTemplate::parse(uri), Err(want), "{uri}");
        }
        let t = UriTemplate::parse("http://${stageVariables.nope}").expect("uri");
        assert_eq!(
            t.for_stage("prod", &vars),
            Err(UriError::MissingStageVar("nope".into(), "prod".into()))
        );
        for bad in [
            "http://a:0",
            "http://a:99999",
            "http://a b",
            "http://u@h",
            "http://:80",
        ] {
            let t = UriTemplate::parse(bad).expect("parses");
            assert!(t.for_stage("s", &|_| None).is_err(), "{bad}");
        }
    }
}
