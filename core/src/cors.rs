//! CORS per API, with AWS API Gateway HTTP API semantics: the `cors:` section of an API
//! ([`CorsFile`]), its checks ([`check`]) and the compiled [`CorsPolicy`] the data plane asks.
//!
//! What AWS documents ("Configuring CORS for an HTTP API", API Gateway developer guide), and
//! what this module does about it:
//!
//! - with CORS configured, the gateway answers preflight `OPTIONS` requests itself, whether or
//!   not the API has an `OPTIONS` route ([`CorsPolicy::is_preflight`],
//!   [`CorsPolicy::write_preflight`]);
//! - it adds the configured CORS headers to an integration's answer to a request that carries
//!   `Origin` ([`CorsPolicy::write_actual`]) and ignores the CORS headers an integration sends
//!   ([`CorsPolicy::is_cors_header`]);
//! - CORS headers are returned only to requests with an `Origin` header; a preflight must also
//!   carry `Access-Control-Request-Method`;
//! - `allow_origins` takes exact origins, `*`, and `https://*` / `http://*` (every origin of that
//!   scheme); turnpike also takes a leftmost-label wildcard, `https://*.example.com`;
//! - `max_age` is AWS's `IntegerWithLengthBetweenMinus1And86400` (the apigatewayv2 model):
//!   -1..=86400 seconds.
//!
//! Where AWS is silent, the Fetch standard's CORS protocol (<https://fetch.spec.whatwg.org/>,
//! "CORS protocol", "CORS check", "CORS-preflight fetch", "CORS protocol and HTTP caches")
//! decides: how a browser compares the answer with its request, what `*` means with and without
//! credentials, and when `Vary: Origin` is needed.
//!
//! Sans-io: bytes in, header lines out. The `write_*` functions run per request; they only
//! push onto the caller's buffer and never allocate otherwise.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::h1::head::is_tchar;

#[cfg(test)]
mod tests;

/// The `cors:` section of an API, as written (AWS HTTP API `Cors` object, names in snake case).
///
/// ```yaml
/// cors:
///   allow_origins: ["https://myapp.com", "https://*.example.com"]
///   allow_methods: [GET, POST]          # or ["*"]
///   allow_headers: [content-type, authorization]   # or ["*"]
///   expose_headers: [x-request-id]
///   max_age: 86400                      # seconds, -1..=86400
///   allow_credentials: false
/// ```
///
/// Shape only; [`check`] gives it meaning. Empty lists and unset values are left out when
/// serialized, so the admin API returns what the operator wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsFile {
    /// `AllowOrigins`: `*`, `scheme://host[:port]`, `scheme://*` or `scheme://*.domain[:port]`.
    /// Must not be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    /// `AllowMethods`: method tokens, compared case-sensitively (RFC 9110 §9.1), or `*`.
    /// Empty: no preflight is allowed, only requests a browser sends without one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// `AllowHeaders`: request header names, compared case-insensitively, or `*` (the
    /// requested names are echoed, as AWS does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// `ExposeHeaders`: response header names a page's script may read, or `*` (only without
    /// credentials: the Fetch standard reads `*` as a literal name for credentialed requests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// `MaxAge`: seconds a browser may cache a preflight answer, -1..=86400 (AWS's range);
    /// -1 and 0 both mean "do not cache". Unset: no `Access-Control-Max-Age` header (browsers
    /// then cache for 5 seconds, per the Fetch standard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// `AllowCredentials`: answer `Access-Control-Allow-Credentials: true`, so pages may send
    /// cookies and `Authorization`. Refused together with the `*` origin.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_credentials: bool,
}

/// AWS's bounds on `MaxAge`, in seconds (apigatewayv2 `IntegerWithLengthBetweenMinus1And86400`).
pub const MAX_AGE_RANGE: std::ops::RangeInclusive<i64> = -1..=86_400;

/// Checks a `cors:` section found at field path `at` (e.g. `apis[0].cors`) and compiles it.
///
/// Every problem is pushed onto `errors` with its field path (`{at}.allow_origins[2]`);
/// returns `None` when there was any.
pub fn check(file: &CorsFile, at: &str, errors: &mut Vec<ConfigError>) -> Option<CorsPolicy> {
    let before = errors.len();
    let mut origins = OriginSet::default();

    if file.allow_origins.is_empty() {
        errors.push(ConfigError::new(
            format!("{at}.allow_origins"),
            "empty: a CORS policy that allows no origin answers every browser with a refusal; \
             list the origins (or \"*\"), or remove the cors section",
        ));
    }
    for (i, o) in file.allow_origins.iter().enumerate() {
        let path = format!("{at}.allow_origins[{i}]");
        match parse_origin(o) {
            Ok(OriginRule::Any) => {
                if file.allow_credentials {
                    errors.push(ConfigError::new(
                        path,
                        "\"*\" with allow_credentials: true: browsers refuse a credentialed \
                         answer whose Access-Control-Allow-Origin is \"*\" (Fetch standard, \
                         CORS check), and AWS refuses this configuration too; list the origins",
                    ));
                } else {
                    origins.any = true;
                }
            }
            Ok(OriginRule::Exact(e)) => origins.exact.push(e),
            Ok(OriginRule::Pattern(p)) => origins.patterns.push(p),
            Err(reason) => errors.push(ConfigError::new(path, reason)),
        }
    }

    let mut any_method = false;
    let mut methods: Vec<Box<[u8]>> = Vec::new();
    for (i, m) in file.allow_methods.iter().enumerate() {
        let path = format!("{at}.allow_methods[{i}]");
        if m == "*" {
            any_method = true;
        } else if m.is_empty() || !m.bytes().all(is_tchar) {
            errors.push(ConfigError::new(
                path,
                format!("{m:?} is not a method: a method is a token (RFC 9110 §9.1), or \"*\""),
            ));
        } else if let Some(n) = FETCH_NORMALIZED.iter().find(|n| n.eq_ignore_ascii_case(m)) {
            if m != n {
                errors.push(ConfigError::new(
                    path,
                    format!(
                        "write {n}: browsers send this method upper-case (the Fetch standard \
                         normalizes it) and methods are compared case-sensitively"
                    ),
                ));
            } else {
                methods.push(m.as_bytes().into());
            }
        } else {
            methods.push(m.as_bytes().into());
        }
    }

    let (any_header, allow_headers) =
        header_names(&file.allow_headers, &format!("{at}.allow_headers"), errors);
    let (any_expose, expose_headers) = header_names(
        &file.expose_headers,
        &format!("{at}.expose_headers"),
        errors,
    );
    if any_expose && file.allow_credentials {
        errors.push(ConfigError::new(
            format!("{at}.expose_headers"),
            "\"*\" with allow_credentials: true: for credentialed requests browsers read \"*\" \
             as a header literally named \"*\" (Fetch standard, Access-Control-Expose-Headers); \
             list the headers",
        ));
    }

    if let Some(age) = file.max_age.filter(|a| !MAX_AGE_RANGE.contains(a)) {
        errors.push(ConfigError::new(
            format!("{at}.max_age"),
            format!("{age}: must be -1..=86400 seconds (AWS's range for MaxAge)"),
        ));
    }

    if errors.len() > before {
        return None;
    }

    // The request-independent lines, rendered once.
    let mut allow_methods_line = Vec::new();
    if !any_method && !methods.is_empty() {
        header_line(&mut allow_methods_line, ALLOW_METHODS, &methods);
    }
    let mut allow_headers_line = Vec::new();
    if !any_header && !allow_headers.is_empty() {
        header_line(&mut allow_headers_line, ALLOW_HEADERS, &allow_headers);
    }
    let mut preflight_tail = Vec::new();
    if file.allow_credentials {
        preflight_tail.extend_from_slice(ALLOW_CREDENTIALS_LINE);
    }
    if let Some(age) = file.max_age {
        // -1 is AWS's "do not cache"; it is not a delta-seconds value, so a browser following
        // the Fetch standard would fall back to 5 seconds. 0 says the same thing to all.
        let age = age.max(0);
        preflight_tail.extend_from_slice(b"Access-Control-Max-Age: ");
        preflight_tail.extend_from_slice(age.to_string().as_bytes());
        preflight_tail.extend_from_slice(b"\r\n");
    }
    preflight_tail.extend_from_slice(PREFLIGHT_VARY_LINE);

    let mut actual_tail = Vec::new();
    if file.allow_credentials {
        actual_tail.extend_from_slice(ALLOW_CREDENTIALS_LINE);
    }
    if any_expose {
        actual_tail.extend_from_slice(b"Access-Control-Expose-Headers: *\r\n");
    } else if !expose_headers.is_empty() {
        header_line(&mut actual_tail, EXPOSE_HEADERS, &expose_headers);
    }
    if !origins.any {
        actual_tail.extend_from_slice(VARY_ORIGIN_LINE);
    }

    Some(CorsPolicy {
        origins,
        any_method,
        methods,
        any_header,
        allow_headers: allow_headers
            .iter()
            .map(|h| h.to_ascii_lowercase().into_boxed_slice())
            .collect(),
        allow_methods_line: allow_methods_line.into(),
        allow_headers_line: allow_headers_line.into(),
        preflight_tail: preflight_tail.into(),
        actual_tail: actual_tail.into(),
    })
}

/// An API's CORS policy, compiled once per snapshot from a checked [`CorsFile`].
///
/// Origins are matched against the request's `Origin` bytes; the answer's header lines that do
/// not depend on the request are pre-rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: OriginSet,
    any_method: bool,
    /// As configured; methods are case-sensitive.
    methods: Vec<Box<[u8]>>,
    any_header: bool,
    /// Lower case.
    allow_headers: Vec<Box<[u8]>>,
    /// `Access-Control-Allow-Methods: ...\r\n` for a listed set, else empty.
    allow_methods_line: Box<[u8]>,
    /// `Access-Control-Allow-Headers: ...\r\n` for a listed set, else empty.
    allow_headers_line: Box<[u8]>,
    /// Credentials, max age and `Vary` lines of a preflight answer.
    preflight_tail: Box<[u8]>,
    /// Credentials, expose-headers and `Vary` lines of any other answer.
    actual_tail: Box<[u8]>,
}

impl CorsPolicy {
    /// Whether `origin` (the `Origin` header's value, as sent) is allowed.
    ///
    /// Browsers send a serialized origin, `scheme://host[:port]` in lower case without a
    /// default port, or `null` (Fetch standard, `Origin` header). Exact entries compare
    /// ASCII-case-insensitively; `https://*.example.com` takes `https://a.example.com` and
    /// `https://a.b.example.com` but neither `https://example.com` nor
    /// `https://evil-example.com`; `https://*` takes every `https` origin. `null` is allowed
    /// only by `*`.
    pub fn allows_origin(&self, origin: &[u8]) -> bool {
        if origin.is_empty() {
            return false;
        }
        self.origins.any
            || self
                .origins
                .exact
                .iter()
                .any(|e| e.eq_ignore_ascii_case(origin))
            || self.origins.patterns.iter().any(|p| p.matches(origin))
    }

    /// Whether a request is a CORS preflight: `OPTIONS` with `Origin` and a non-empty
    /// `Access-Control-Request-Method` (AWS: "For the OPTIONS method, your request must contain
    /// an origin header and an Access-Control-Request-Method header"). Any other `OPTIONS`
    /// request goes to the API's routes like any request.
    pub fn is_preflight(
        method: &[u8],
        origin: Option<&[u8]>,
        request_method: Option<&[u8]>,
    ) -> bool {
        method == b"OPTIONS"
            && origin.is_some_and(|o| !o.is_empty())
            && request_method.is_some_and(|m| !m.is_empty())
    }

    /// Appends the header lines (`Name: value\r\n`) of the gateway's `204` answer to a
    /// preflight, and returns true, when the origin, the requested method and every requested
    /// header are allowed.
    ///
    /// - `origin`: the `Origin` value; `request_method`: `Access-Control-Request-Method`;
    ///   `request_headers`: `Access-Control-Request-Headers` (comma-separated names), if sent.
    /// - `Access-Control-Allow-Origin` echoes the request's origin, or is `*` when `*` is
    ///   configured (never with credentials: [`check`] refuses that).
    /// - `Access-Control-Allow-Methods` lists the configured methods; with `*` it echoes the
    ///   requested method (a literal `*` would mean nothing to a credentialed request).
    /// - `Access-Control-Allow-Headers` lists the configured headers; with `*` it echoes the
    ///   requested names, as AWS does (this also covers `authorization`, which the Fetch
    ///   standard never lets `*` cover).
    /// - then `Access-Control-Allow-Credentials`, `Access-Control-Max-Age` when configured,
    ///   and `Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers`.
    ///
    /// On false nothing is appended. AWS's page does not say what it answers then; turnpike
    /// still answers the preflight itself, with no CORS headers, so the browser refuses the
    /// request it was asking about and the integration is never called. Methods compare
    /// case-sensitively, header names case-insensitively; a requested method or header name
    /// that is not a token refuses the preflight (it is never echoed).
    pub fn write_preflight(
        &self,
        origin: &[u8],
        request_method: &[u8],
        request_headers: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> bool {
        if !self.allows_origin(origin) || !is_token(request_method) {
            return false;
        }
        if !self.any_method && !self.methods.iter().any(|m| **m == *request_method) {
            return false;
        }
        let mut requested_any = false;
        for name in list_items(request_headers.unwrap_or_default()) {
            if !is_token(name) {
                return false;
            }
            if !self.any_header
                && !self
                    .allow_headers
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name))
            {
                return false;
            }
            requested_any = true;
        }

        self.write_allow_origin(origin, out);
        if self.any_method {
            out.extend_from_slice(ALLOW_METHODS);
            out.extend_from_slice(b": ");
            out.extend_from_slice(request_method);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(&self.allow_methods_line);
        }
        if self.any_header {
            if requested_any {
                out.extend_from_slice(ALLOW_HEADERS);
                out.extend_from_slice(b": ");
                for (i, name) in list_items(request_headers.unwrap_or_default()).enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(name);
                }
                out.extend_from_slice(b"\r\n");
            }
        } else {
            out.extend_from_slice(&self.allow_headers_line);
        }
        out.extend_from_slice(&self.preflight_tail);
        true
    }

    /// Appends the CORS header lines of any answer other than a preflight to a request whose
    /// `Origin` is allowed, and returns true: `Access-Control-Allow-Origin` (the origin
    /// echoed, or `*`), `Access-Control-Allow-Credentials`, `Access-Control-Expose-Headers`,
    /// and `Vary: Origin` unless the answer is `*` for everyone.
    ///
    /// Appends nothing and returns false for an origin not allowed; that answer should carry
    /// [`CorsPolicy::write_vary`]'s line instead.
    pub fn write_actual(&self, origin: &[u8], out: &mut Vec<u8>) -> bool {
        if !self.allows_origin(origin) {
            return false;
        }
        self.write_allow_origin(origin, out);
        out.extend_from_slice(&self.actual_tail);
        true
    }

    /// Appends `Vary: Origin\r\n`, for an answer that gets no CORS headers (its request had no
    /// `Origin`, or one not allowed; AWS sends CORS headers only to requests with `Origin`).
    ///
    /// Without it a shared cache could store that answer and serve it, lacking
    /// `Access-Control-Allow-Origin`, to an allowed origin (Fetch standard, "CORS protocol and
    /// HTTP caches").
    pub fn write_vary(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(VARY_ORIGIN_LINE);
    }

    /// Whether a response header is one of the CORS headers (`Access-Control-*`, any case)
    /// that the proxy drops from an integration's answer: "If you configure CORS for an API,
    /// API Gateway ignores CORS headers returned from your backend integration" (AWS,
    /// "Configuring CORS for an HTTP API"). `Vary` is left alone: it may name other headers.
    pub fn is_cors_header(name: &[u8]) -> bool {
        const PREFIX: &[u8] = b"access-control-";
        name.len() > PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
    }

    fn write_allow_origin(&self, origin: &[u8], out: &mut Vec<u8>) {
        if self.origins.any {
            out.extend_from_slice(b"Access-Control-Allow-Origin: *\r\n");
        } else {
            // Echoed as sent: browsers compare it byte for byte with their own serialization,
            // and an origin that matched a checked entry or pattern is safe to echo.
            out.extend_from_slice(b"Access-Control-Allow-Origin: ");
            out.extend_from_slice(origin);
            out.extend_from_slice(b"\r\n");
        }
    }
}

const ALLOW_METHODS: &[u8] = b"Access-Control-Allow-Methods";
const ALLOW_HEADERS: &[u8] = b"Access-Control-Allow-Headers";
const EXPOSE_HEADERS: &[u8] = b"Access-Control-Expose-Headers";
const ALLOW_CREDENTIALS_LINE: &[u8] = b"Access-Control-Allow-Credentials: true\r\n";
const VARY_ORIGIN_LINE: &[u8] = b"Vary: Origin\r\n";
const PREFLIGHT_VARY_LINE: &[u8] =
    b"Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n";

/// Methods the Fetch standard upper-cases before sending (its "normalize a method").
const FETCH_NORMALIZED: [&str; 6] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OriginSet {
    any: bool,
    /// Lower case, as a browser serializes them.
    exact: Vec<Box<[u8]>>,
    patterns: Vec<OriginPattern>,
}

/// `scheme://*[:port]` or `scheme://*.suffix[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginPattern {
    /// Lower case, without `://`.
    scheme: Box<[u8]>,
    /// Lower case with its leading dot (`.example.com`); empty for any host.
    suffix: Box<[u8]>,
    port: PortRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortRule {
    /// No port in the origin (the scheme's default).
    Absent,
    /// Digits.
    Exact(Box<[u8]>),
    /// `scheme://*`: AWS's "every origin that begins with scheme://".
    Any,
}

impl OriginPattern {
    fn matches(&self, origin: &[u8]) -> bool {
        let Some(OriginParts { scheme, host, port }) = split_origin(origin) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(&self.scheme) || !is_origin_host(host) {
            return false;
        }
        let port_ok = match (&self.port, port) {
            (PortRule::Any, p) => p.is_none_or(is_port),
            (PortRule::Absent, None) => true,
            (PortRule::Exact(want), Some(p)) => **want == *p,
            _ => false,
        };
        if !port_ok {
            return false;
        }
        if self.suffix.is_empty() {
            return true;
        }
        // At least one whole label before the suffix: `a.example.com`, never `example.com`
        // nor `evil-example.com` (the suffix starts with its dot).
        host.len() > self.suffix.len()
            && host[host.len() - self.suffix.len()..].eq_ignore_ascii_case(&self.suffix)
            && !host.starts_with(b"[")
    }
}

enum OriginRule {
    Any,
    Exact(Box<[u8]>),
    Pattern(OriginPattern),
}

/// Parses a configured origin; the error says what is wrong and how to write it.
fn parse_origin(o: &str) -> Result<OriginRule, String> {
    if o == "*" {
        return Ok(OriginRule::Any);
    }
    if o.eq_ignore_ascii_case("null") {
        return Err(
            "\"null\" is the origin of sandboxed documents, file: pages and redirects: \
                    any site can produce it, so it cannot be allowed by name"
                .into(),
        );
    }
    let lower = o.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return Err(format!(
            "{o:?}: an origin is \"*\" or scheme://host[:port], like \"https://myapp.com\""
        ));
    };
    if !is_scheme(scheme.as_bytes()) {
        return Err(format!("{o:?}: {scheme:?} is not a URL scheme"));
    }
    if let Some(i) = rest.find(['/', '?', '#']) {
        let bare = format!("{scheme}://{}", &rest[..i]);
        return Err(format!(
            "{o:?}: an origin has no path, query or fragment (browsers send none): write {bare:?}"
        ));
    }
    if rest.contains('@') {
        return Err(format!("{o:?}: an origin has no user information"));
    }
    let (host, port) = split_host_port(rest.as_bytes())
        .ok_or_else(|| format!("{o:?}: expected scheme://host[:port]"))?;
    if let Some(p) = port {
        if !is_port(p) {
            return Err(format!("{o:?}: the port must be a number 0..=65535"));
        }
        if (scheme == "https" && p == b"443") || (scheme == "http" && p == b"80") {
            return Err(format!(
                "{o:?}: browsers leave the default port out of Origin: write \"{scheme}://{}\"",
                String::from_utf8_lossy(host)
            ));
        }
    }
    let port_rule = |any: bool| match port {
        Some(p) => PortRule::Exact(p.into()),
        None if any => PortRule::Any,
        None => PortRule::Absent,
    };
    if host == b"*" {
        return Ok(OriginRule::Pattern(OriginPattern {
            scheme: scheme.as_bytes().into(),
            suffix: Box::default(),
            port: port_rule(true),
        }));
    }
    if let Some(domain) = host.strip_prefix(b"*.") {
        if domain.contains(&b'*') || !is_domain(domain) {
            return Err(format!(
                "{o:?}: after \"*.\" comes a domain name, like \"https://*.example.com\""
            ));
        }
        let mut suffix = Vec::with_capacity(domain.len() + 1);
        suffix.push(b'.');
        suffix.extend_from_slice(domain);
        return Ok(OriginRule::Pattern(OriginPattern {
            scheme: scheme.as_bytes().into(),
            suffix: suffix.into(),
            port: port_rule(false),
        }));
    }
    if host.contains(&b'*') {
        return Err(format!(
            "{o:?}: a wildcard may only be the whole leftmost label (\"https://*.example.com\") \
             or the whole host (\"https://*\")"
        ));
    }
    if !is_origin_host(host) {
        return Err(format!(
            "{o:?}: {:?} is not a host name",
            String::from_utf8_lossy(host)
        ));
    }
    Ok(OriginRule::Exact(lower.into_bytes().into()))
}

/// A request's `Origin`, split; nothing is checked yet.
struct OriginParts<'a> {
    scheme: &'a [u8],
    host: &'a [u8],
    port: Option<&'a [u8]>,
}

/// Splits `scheme://host[:port]` (a request's `Origin`).
fn split_origin(origin: &[u8]) -> Option<OriginParts<'_>> {
    let i = origin.windows(3).position(|w| w == b"://")?;
    let (host, port) = split_host_port(&origin[i + 3..])?;
    Some(OriginParts {
        scheme: &origin[..i],
        host,
        port,
    })
}

/// Splits `host[:port]`, where host may be a bracketed IPv6 literal.
fn split_host_port(s: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let host_end = if s.starts_with(b"[") {
        s.iter().position(|&b| b == b']')? + 1
    } else {
        s.iter().position(|&b| b == b':').unwrap_or(s.len())
    };
    let (host, rest) = s.split_at(host_end);
    if host.is_empty() {
        return None;
    }
    match rest {
        [] => Some((host, None)),
        [b':', port @ ..] => Some((host, Some(port))),
        _ => None,
    }
}

/// RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
fn is_scheme(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_alphabetic)
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Dot-separated labels of letters, digits, `-` and `_`, none empty.
fn is_domain(s: &[u8]) -> bool {
    !s.is_empty()
        && s.split(|&b| b == b'.').all(|label| {
            !label.is_empty()
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A host as browsers serialize it in `Origin`: a domain (ASCII, punycoded), an IPv4 address
/// or a bracketed IPv6 literal.
fn is_origin_host(s: &[u8]) -> bool {
    match s {
        [b'[', inner @ .., b']'] => {
            !inner.is_empty()
                && inner
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        _ => is_domain(s),
    }
}

fn is_port(p: &[u8]) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.iter().all(u8::is_ascii_digit)
        && p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65_535
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The non-empty elements of a comma-separated list, optional whitespace trimmed
/// (RFC 9110 §5.6.1).
fn list_items(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b',')
        .map(|item| item.trim_ascii())
        .filter(|item| !item.is_empty())
}

/// Checks a list of header names; `(true, _)` when `*` is among them.
fn header_names(
    names: &[String],
    at: &str,
    errors: &mut Vec<ConfigError>,
) -> (bool, Vec<Box<[u8]>>) {
    let mut any = false;
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if n == "*" {
            any = true;
        } else if is_token(n.as_bytes()) {
            out.push(n.as_bytes().into());
        } else {
            errors.push(ConfigError::new(
                format!("{at}[{i}]"),
                format!("{n:?} is not a header name: a field name is a token (RFC 9110 §5.1)"),
            ));
        }
    }
    (any, out)
}

/// `Name: a, b, c\r\n`.
fn header_line(out: &mut Vec<u8>, name: &[u8], values: &[Box<[u8]>]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(v);
    }
    out.extend_from_slice(b"\r\n");
}
