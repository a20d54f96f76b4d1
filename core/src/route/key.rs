//! Route keys: `METHOD /path/{param}/{greedy+}` or `$default`.

use std::fmt;

/// Most path parameters one route may capture (the greedy one included).
pub const MAX_PARAMS: usize = 16;

/// The methods a route key may name (AWS HTTP API's set). Other request methods only match
/// `ANY` routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get = 0,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub const COUNT: usize = 7;

    /// Parses a request method exactly (methods are case-sensitive).
    #[inline]
    pub fn from_bytes(m: &[u8]) -> Option<Method> {
        Some(match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"PATCH" => Method::Patch,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodMatch {
    Any,
    Exact(Method),
}

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    Static(Box<str>),
    Param(Box<str>),
    /// `{name+}`: the rest of the path, one or more segments; only last.
    Greedy(Box<str>),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteKey {
    /// `$default`: requests no other route matches.
    Default,
    Route {
        method: MethodMatch,
        path: Vec<PathSegment>,
    },
}

/// Why a route key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("expected \"METHOD /path\" or \"$default\"")]
    Shape,
    #[error("unknown method {0:?}: expected ANY, GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS")]
    Method(String),
    #[error("path must start with '/'")]
    NoLeadingSlash,
    #[error("empty path segment (\"//\" or a trailing '/')")]
    EmptySegment,
    #[error("segment {0:?}: a parameter must be a whole segment like {{name}}")]
    PartialParam(String),
    #[error("parameter name {0:?}: use letters, digits, '_', '-' or '.'")]
    ParamName(String),
    #[error("greedy parameter {{{0}+}} must be the last segment")]
    GreedyNotLast(String),
    #[error("parameter {{{0}}} appears twice")]
    DuplicateParam(String),
    #[error("more than {MAX_PARAMS} parameters")]
    TooManyParams,
    #[error("segment {0:?} has a character not allowed in a path")]
    BadChar(String),
}

impl RouteKey {
    pub fn parse(s: &str) -> Result<RouteKey, KeyError> {
        if s == "$default" {
            return Ok(RouteKey::Default);
        }
        let (method, path) = s.split_once(' ').ok_or(KeyError::Shape)?;
        if path.contains(' ') || method.is_empty() {
            return Err(KeyError::Shape);
        }
        let method = match method {
            "ANY" => MethodMatch::Any,
            m => MethodMatch::Exact(
                Method::from_bytes(m.as_bytes()).ok_or_else(|| KeyError::Method(m.to_owned()))?,
            ),
        };
        let rest = path.strip_prefix('/').ok_or(KeyError::NoLeadingSlash)?;
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let seg = parse_segment(part)?;
                if let PathSegment::Param(n) | PathSegment::Greedy(n) = &seg {
                    if names.contains(&&**n) {
                        return Err(KeyError::DuplicateParam(n.to_string()));
                    }
                    if let PathSegment::Greedy(n) = &seg
                        && i + 1 != parts.len()
                    {
                        return Err(KeyError::GreedyNotLast(n.to_string()));
                    }
                    names.push(part.trim_matches(['{', '}', '+']));
                }
                segments.push(seg);
            }
        }
        if names.len() > MAX_PARAMS {
            return Err(KeyError::TooManyParams);
        }
        Ok(RouteKey::Route {
            method,
            path: segments,
        })
    }

    /// Parameter names in path order.
    pub fn params(&self) -> Vec<&str> {
        match self {
            RouteKey::Default => Vec::new(),
            RouteKey::Route { path, .. } => path
                .iter()
                .filter_map(|s| match s {
                    PathSegment::Param(n) | PathSegment::Greedy(n) => Some(&**n),
                    PathSegment::Static(_) => None,
                })
                .collect(),
        }
    }
}

fn parse_segment(part: &str) -> Result<PathSegment, KeyError> {
    if part.is_empty() {
        return Err(KeyError::EmptySegment);
    }
    if let Some(inner) = part.strip_prefix('{') {
        let inner = inner
            .strip_suffix('}')
            .ok_or_else(|| KeyError::PartialParam(part.into()))?;
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(n) => (n, true),
            None => (inner, false),
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(KeyError::ParamName(name.into()));
        }
        return Ok(if greedy {
            PathSegment::Greedy(name.into())
        } else {
            PathSegment::Param(name.into())
        });
    }
    if part.contains(['{', '}']) {
        return Err(KeyError::PartialParam(part.into()));
    }
    if !part.bytes().all(is_pchar) {
        return Err(KeyError::BadChar(part.into()));
    }
    Ok(PathSegment::Static(part.into()))
}

/// RFC 3986 `pchar` (percent-escapes allowed as raw `%`; they are matched byte for byte).
pub(crate) fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Default => f.write_str("$default"),
            RouteKey::Route { method, path } => {
                match method {
                    MethodMatch::Any => f.write_str("ANY ")?,
                    MethodMatch::Exact(m) => write!(f, "{} ", m.as_str())?,
                }
                if path.is_empty() {
                    return f.write_str("/");
                }
                for seg in path {
                    match seg {
                        PathSegment::Static(s) => write!(f, "/{s}")?,
                        PathSegment::Param(n) => write!(f, "/{{{n}}}")?,
                        PathSegment::Greedy(n) => write!(f, "/{{{n}+}}")?,
                    }
                }
                Ok(())
            }
        }
    }
}
