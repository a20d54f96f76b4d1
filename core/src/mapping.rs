//! Parameter mapping: AWS HTTP API's `requestParameters` and `responseParameters` ("Transform
//! API requests and responses for HTTP APIs in API Gateway", AWS API Gateway Developer Guide).
//!
//! A request mapping is a map of keys to values:
//! - keys `append:header.NAME`, `overwrite:header.NAME`, `remove:header.NAME`, the same with
//!   `querystring.NAME`, and `overwrite:path`;
//! - values `$request.header.NAME`, `$request.querystring.NAME`, `$request.body` or
//!   `$request.body.PATH` (a JSONPath below `$`: `$request.body.items[0].id`),
//!   `$request.path`, `$request.path.NAME` (a path parameter), `$context.NAME`,
//!   `$stageVariables.NAME`, static text, or text with `${...}` references
//!   (`Bearer ${request.header.token}`).
//!
//! A response mapping is such a map per integration status code, with the keys for headers
//! and `overwrite:statuscode`, and `$response.header.NAME`, `$response.body[.PATH]` in place of
//! the `$request` values.
//!
//! Values are evaluated against the request (or response) as it arrived, then the edits apply:
//! removals, then overwrites, then appends. A value whose only reference is missing (no such
//! header, parameter or body field) skips its key; missing references inside text are empty.
//! Several values of a header or query parameter are joined with `,` (AWS's rule). Values are
//! made safe for where they go: control bytes in a header value are written `\xHH`, query
//! values are percent-encoded, a path keeps only path characters.
//!
//! Compiled once when a config is applied ([`ParameterMapping::compile`]); evaluated per
//! request through a [`Source`] the proxy implements over its parsed head.

use std::collections::BTreeMap;

use crate::{
    context::{Escape, RequestContext, Template},
    jsonpath::{JsonPath, Selection},
};

/// What a key does to its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Remove,
    Overwrite,
    Append,
}

/// What a key changes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Header(Box<str>),
    QueryString(Box<str>),
    Path,
    StatusCode,
}

/// Whether a mapping is of requests or of responses: which keys and `$request`/`$response`
/// values it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

/// One reference in a value.
#[derive(Debug, Clone)]
enum Ref {
    Header(Box<str>),
    QueryString(Box<str>),
    /// `$request.body` (`None`: the whole body) or a JSONPath into it.
    Body(Option<JsonPath>),
    Path,
    PathParameter(Box<str>),
    Context(Template),
    StageVariable(Box<str>),
}

#[derive(Debug, Clone)]
enum Part {
    Text(Box<str>),
    Ref(Ref),
}

/// A compiled value: text and references.
#[derive(Debug, Clone)]
struct Value {
    parts: Box<[Part]>,
}

#[derive(Debug, Clone)]
struct Op {
    action: Action,
    target: Target,
    value: Value,
}

/// The request and response mappings of one integration.
#[derive(Debug, Clone, Default)]
pub struct ParameterMapping {
    request: Box<[Op]>,
    /// Per integration status code.
    responses: Box<[(u16, Box<[Op]>)]>,
    request_body: bool,
}

/// A mapping error: the key it is about (`None`: the status code key) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    /// The status code map the key is in (response mappings).
    pub status: Option<String>,
    pub key: String,
    pub reason: String,
}

/// What a value reads: the request or response the mapping applies to. The proxy implements
/// this over its parsed head; "header" and "body" are the response's in a response mapping.
pub trait Source {
    /// Appends every value of header `name` (any case), joined by `,`; `false` if none.
    fn header(&self, name: &str, out: &mut Vec<u8>) -> bool;
    /// Appends every value of query parameter `name` (case-sensitive, decoded), joined by
    /// `,`; `false` if none.
    fn querystring(&self, name: &str, out: &mut Vec<u8>) -> bool;
    /// The body as received.
    fn body(&self) -> &[u8];
    /// The body parsed as JSON, if it is JSON (parsed at most once).
    fn json(&self) -> Option<&serde_json::Value>;
    /// The path below the stage (`$request.path`).
    fn path(&self) -> &[u8];
    /// A path parameter's value.
    fn path_parameter(&self, name: &str) -> Option<&str>;
    fn stage_variable(&self, name: &str) -> Option<&str>;
    fn context(&self) -> &RequestContext<'_>;
}

/// One header or query parameter change, evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub action: Action,
    /// The parameter's name as configured (headers compare ignoring ASCII case).
    pub name: Box<str>,
    /// The value (empty for a removal): safe for a header line, unencoded for a query.
    pub value: String,
}

/// The evaluated changes to one request or response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// `overwrite:statuscode` (responses).
    pub status: Option<u16>,
    /// `overwrite:path`: the new path, percent-encoded where needed, starting with `/`.
    pub path: Option<String>,
    /// Header changes, removals first, then overwrites, then appends.
    pub headers: Vec<Edit>,
    /// Query parameter changes, in the same order.
    pub query: Vec<Edit>,
}

/// Headers no mapping may set or remove (AWS's "Reserved headers" for HTTP API parameter
/// mapping), lower case; entries ending in `-` are prefixes. `x-authorizer-` is turnpike's:
/// only the gateway speaks for its request authorizers.
const RESERVED: &[&str] = &[
    "access-control-",
    "apigw-",
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-location",
    "forwarded",
    "keep-alive",
    "origin",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "x-amz-",
    "x-amzn-",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "via",
    "x-authorizer-",
];

/// Why header `name` cannot be mapped, if it cannot.
pub fn reserved(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    RESERVED
        .iter()
        .find(|r| {
            if r.ends_with('-') {
                lower.starts_with(**r)
            } else {
                lower == **r
            }
        })
        .copied()
}

impl ParameterMapping {
    /// Compiles an integration's `request_parameters` and `response_parameters` (keyed by
    /// status code, `"200"`..`"599"`). `None` when both are empty.
    ///
    /// Errors: every key or value that cannot be used, with the reason (an unknown key form,
    /// a reserved header, a `$response` value in a request mapping, an unknown `$context`
    /// variable, a JSONPath AWS does not allow, a status code out of range).
    pub fn compile(
        request: &BTreeMap<String, String>,
        responses: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Option<ParameterMapping>, Vec<MappingError>> {
        if request.is_empty() && responses.is_empty() {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let mut ops = compile_ops(request, Side::Request, None, &mut errors);
        ops.sort_by_key(|o| o.action);
        let mut by_status = Vec::with_capacity(responses.len());
        for (code, map) in responses {
            let status = match code.parse::<u16>() {
                Ok(s) if (100..=599).contains(&s) && code.len() == 3 => s,
                _ => {
                    errors.push(MappingError {
                        status: Some(code.clone()),
                        key: String::new(),
                        reason: format!("{code:?} is not a status code (100 to 599)"),
                    });
                    continue;
                }
            };
            let mut ops = compile_ops(map, Side::Response, Some(code), &mut errors);
            ops.sort_by_key(|o| o.action);
            by_status.push((status, ops.into_boxed_slice()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let request_body = ops.iter().any(|o| o.value.reads_body());
        Ok(Some(ParameterMapping {
            request: ops.into(),
            responses: by_status.into(),
            request_body,
        }))
    }

    /// Whether the request mapping changes anything.
    pub fn maps_requests(&self) -> bool {
        !self.request.is_empty()
    }

    /// Whether a request value reads the body, so the body must be read whole first.
    pub fn reads_request_body(&self) -> bool {
        self.request_body
    }

    /// Whether responses with integration status `status` are mapped.
    pub fn maps_response(&self, status: u16) -> bool {
        self.response_ops(status).is_some()
    }

    /// Whether the mapping of responses with status `status` reads their body.
    pub fn reads_response_body(&self, status: u16) -> bool {
        self.response_ops(status)
            .is_some_and(|ops| ops.iter().any(|o| o.value.reads_body()))
    }

    fn response_ops(&self, status: u16) -> Option<&[Op]> {
        self.responses
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, ops)| &**ops)
    }

    /// The request's edits.
    pub fn request_edits(&self, src: &dyn Source) -> Edits {
        evaluate(&self.request, src)
    }

    /// The edits of a response with integration status `status`; `None` when its status has
    /// no mapping.
    pub fn response_edits(&self, status: u16, src: &dyn Source) -> Option<Edits> {
        self.response_ops(status).map(|ops| evaluate(ops, src))
    }
}

fn compile_ops(
    map: &BTreeMap<String, String>,
    side: Side,
    status: Option<&String>,
    errors: &mut Vec<MappingError>,
) -> Vec<Op> {
    let mut ops = Vec::with_capacity(map.len());
    for (key, value) in map {
        let fail = |reason: String| MappingError {
            status: status.cloned(),
            key: key.clone(),
            reason,
        };
        let (action, target) = match parse_key(key, side) {
            Ok(k) => k,
            Err(reason) => {
                errors.push(fail(reason));
                continue;
            }
        };
        let value = if action == Action::Remove {
            Value {
                parts: Box::new([]),
            }
        } else {
            match parse_value(value, side) {
                Ok(v) => v,
                Err(reason) => {
                    errors.push(fail(reason));
                    continue;
                }
            }
        };
        if target == Target::StatusCode
            && let [Part::Text(t)] = &*value.parts
            && !t.parse::<u16>().is_ok_and(settable_status)
        {
            errors.push(fail(format!(
                "{t:?}: expected a status code from 200 to 599 other than 204 and 304 (the \
                 response keeps its body)"
            )));
            continue;
        }
        ops.push(Op {
            action,
            target,
            value,
        });
    }
    ops
}

/// Whether `overwrite:statuscode` may set `s`: a final status whose response may carry the
/// body the integration sent (not 1xx, 204 or 304, RFC 9110 sections 15.2, 15.3.5, 15.4.5).
fn settable_status(s: u16) -> bool {
    (200..=599).contains(&s) && s != 204 && s != 304
}

/// `append:header.x-id` -> (Append, Header("x-id")).
fn parse_key(key: &str, side: Side) -> Result<(Action, Target), String> {
    let (action, what) = key.split_once(':').ok_or_else(|| {
        "a key is ACTION:PARAMETER (`append:header.NAME`, `overwrite:querystring.NAME`, \
         `remove:header.NAME`, `overwrite:path`)"
            .to_owned()
    })?;
    let action = match action {
        "append" => Action::Append,
        "overwrite" => Action::Overwrite,
        "remove" => Action::Remove,
        other => {
            return Err(format!(
                "unknown action {other:?}: expected append, overwrite or remove"
            ));
        }
    };
    let target = if let Some(name) = what.strip_prefix("header.") {
        if name.is_empty() || !name.bytes().all(crate::h1::head::is_tchar) {
            return Err(format!("{name:?} is not a header name"));
        }
        if let Some(r) = reserved(name) {
            let what = if r.ends_with('-') {
                format!("headers starting with {r:?}")
            } else {
                format!("{r:?}")
            };
            return Err(format!(
                "{what} cannot be mapped: API Gateway reserves it (\"Reserved headers\" in AWS's \
                 parameter mapping guide); the gateway sets it itself"
            ));
        }
        Target::Header(name.into())
    } else if let Some(name) = what.strip_prefix("querystring.") {
        if side == Side::Response {
            return Err("a response has no query string: use header.NAME or statuscode".into());
        }
        if name.is_empty() {
            return Err("empty query string parameter name".into());
        }
        Target::QueryString(name.into())
    } else if what == "path" {
        if side == Side::Response {
            return Err("a response has no path: use header.NAME or statuscode".into());
        }
        if action != Action::Overwrite {
            return Err("the path can only be overwritten (`overwrite:path`)".into());
        }
        Target::Path
    } else if what == "statuscode" {
        if side == Side::Request {
            return Err(
                "`statuscode` is a response parameter: set it in response_parameters".into(),
            );
        }
        if action != Action::Overwrite {
            return Err("the status code can only be overwritten (`overwrite:statuscode`)".into());
        }
        Target::StatusCode
    } else {
        return Err(format!(
            "unknown parameter {what:?}: expected header.NAME, {}",
            match side {
                Side::Request => "querystring.NAME or path",
                Side::Response => "or statuscode",
            }
        ));
    };
    Ok((action, target))
}

/// A value: one bare reference (`$request.header.x`), or text with `${...}` references;
/// `''` is the empty string.
fn parse_value(src: &str, side: Side) -> Result<Value, String> {
    if src == "''" {
        return Ok(Value {
            parts: Box::new([Part::Text("".into())]),
        });
    }
    if src.starts_with('$') && !src.starts_with("${") && !src.contains("${") {
        let r = parse_ref(&src[1..], side)?;
        return Ok(Value {
            parts: Box::new([Part::Ref(r)]),
        });
    }
    let mut parts = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find("${") {
        if at > 0 {
            check_text(&rest[..at])?;
            parts.push(Part::Text(rest[..at].into()));
        }
        let inner = &rest[at + 2..];
        let close = inner
            .find('}')
            .ok_or_else(|| format!("`${{` at {:?} has no closing `}}`", &rest[at..]))?;
        parts.push(Part::Ref(parse_ref(&inner[..close], side)?));
        rest = &inner[close + 1..];
    }
    if !rest.is_empty() {
        check_text(rest)?;
        parts.push(Part::Text(rest.into()));
    }
    Ok(Value {
        parts: parts.into(),
    })
}

/// Text around `${...}` references may not hold a bare reference: AWS requires the braces
/// when a value has more than one part.
fn check_text(text: &str) -> Result<(), String> {
    for prefix in ["$request.", "$response.", "$context.", "$stageVariables."] {
        if let Some(at) = text.find(prefix) {
            let word = &text[at + 1..];
            let end = word
                .find(|c: char| c.is_whitespace() || c == '/' || c == ',')
                .unwrap_or(word.len());
            return Err(format!(
                "write `${{{}}}`: a reference inside text is enclosed in `${{}}`",
                &word[..end]
            ));
        }
    }
    Ok(())
}

/// A reference without its `$` (`request.header.x`).
fn parse_ref(name: &str, side: Side) -> Result<Ref, String> {
    let (own, other) = match side {
        Side::Request => ("request.", "response."),
        Side::Response => ("response.", "request."),
    };
    if name.starts_with(other) {
        return Err(format!(
            "${name} is not available here: a {} mapping reads ${}...",
            match side {
                Side::Request => "request",
                Side::Response => "response",
            },
            own.trim_end_matches('.')
        ));
    }
    if let Some(what) = name.strip_prefix(own) {
        let named = |n: &str, kind: &str| {
            if n.is_empty() {
                Err(format!("${name}: empty {kind} name"))
            } else {
                Ok(n.into())
            }
        };
        if let Some(n) = what.strip_prefix("header.") {
            return Ok(Ref::Header(named(n, "header")?));
        }
        if side == Side::Request {
            if let Some(n) = what.strip_prefix("querystring.") {
                return Ok(Ref::QueryString(named(n, "query string parameter")?));
            }
            if what == "path" {
                return Ok(Ref::Path);
            }
            if let Some(n) = what.strip_prefix("path.") {
                return Ok(Ref::PathParameter(named(n, "path parameter")?));
            }
        }
        if what == "body" {
            return Ok(Ref::Body(None));
        }
        if let Some(p) = what.strip_prefix("body") {
            if p.starts_with("..") || p.contains("..") {
                return Err(format!(
                    "${name}: recursive descent (`..`) is not supported in parameter mapping"
                ));
            }
            if p.contains("?(") || p.contains("[?") {
                return Err(format!(
                    "${name}: filter expressions are not supported in parameter mapping"
                ));
            }
            let path = JsonPath::parse(&format!("${p}"))
                .map_err(|e| format!("${name}: not a JSONPath: {e}"))?;
            return Ok(Ref::Body(Some(path)));
        }
        return Err(format!(
            "unknown value ${name}: expected ${own}header.NAME{}",
            match side {
                Side::Request =>
                    ", $request.querystring.NAME, $request.body[.PATH], \
                                  $request.path or $request.path.NAME",
                Side::Response => " or $response.body[.PATH]",
            }
        ));
    }
    if name.starts_with("context.") {
        let t = Template::parse(&format!("${name}"))?;
        return Ok(Ref::Context(t));
    }
    if let Some(n) = name.strip_prefix("stageVariables.") {
        if n.is_empty() {
            return Err(format!("${name}: empty stage variable name"));
        }
        return Ok(Ref::StageVariable(n.into()));
    }
    Err(format!(
        "unknown value ${name}: expected ${own}..., $context.NAME or $stageVariables.NAME"
    ))
}

impl Value {
    fn reads_body(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Ref(Ref::Body(_))))
    }

    /// Appends this value for `src`; `false` when it is one reference and that is missing.
    fn render(&self, src: &dyn Source, out: &mut Vec<u8>) -> bool {
        let single = self.parts.len() == 1;
        for part in self.parts.iter() {
            let found = match part {
                Part::Text(t) => {
                    out.extend_from_slice(t.as_bytes());
                    true
                }
                Part::Ref(r) => render_ref(r, src, out),
            };
            if single && !found {
                return false;
            }
        }
        true
    }
}

fn render_ref(r: &Ref, src: &dyn Source, out: &mut Vec<u8>) -> bool {
    match r {
        Ref::Header(n) => src.header(n, out),
        Ref::QueryString(n) => src.querystring(n, out),
        Ref::Body(None) => {
            out.extend_from_slice(src.body());
            !src.body().is_empty()
        }
        Ref::Body(Some(path)) => {
            let Some(json) = src.json() else {
                return false;
            };
            match path.select_aws(json) {
                Selection::Nothing => false,
                Selection::One(one) => {
                    write_json(one, out);
                    true
                }
                many => {
                    if let Some(all) = many.to_value() {
                        write_json(&all, out);
                    }
                    true
                }
            }
        }
        Ref::Path => {
            let p = src.path();
            out.extend_from_slice(if p.is_empty() { b"/" } else { p });
            true
        }
        Ref::PathParameter(n) => match src.path_parameter(n) {
            Some(v) => {
                out.extend_from_slice(v.as_bytes());
                true
            }
            None => false,
        },
        Ref::StageVariable(n) => match src.stage_variable(n) {
            Some(v) => {
                out.extend_from_slice(v.as_bytes());
                true
            }
            None => false,
        },
        Ref::Context(t) => {
            let start = out.len();
            t.render(src.context(), Escape::None, out);
            // A missing value renders `-` (the access log's convention); here it is absent.
            if &out[start..] == b"-" {
                out.truncate(start);
                false
            } else {
                true
            }
        }
    }
}

/// A selected JSON node as a parameter value: a string's text, anything else as JSON.
fn write_json(v: &serde_json::Value, out: &mut Vec<u8>) {
    match v {
        serde_json::Value::String(s) => out.extend_from_slice(s.as_bytes()),
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn evaluate(ops: &[Op], src: &dyn Source) -> Edits {
    let mut edits = Edits::default();
    let mut raw = Vec::new();
    for op in ops {
        raw.clear();
        if op.action != Action::Remove && !op.value.render(src, &mut raw) {
            continue;
        }
        match &op.target {
            Target::StatusCode => {
                edits.status = std::str::from_utf8(&raw)
                    .ok()
                    .and_then(|s| s.trim().parse::<u16>().ok())
                    .filter(|&s| settable_status(s));
            }
            Target::Path => edits.path = Some(path_text(&raw)),
            Target::Header(name) => {
                let mut value = Vec::with_capacity(raw.len());
                crate::context::escape::write_text(&mut value, Escape::None, &raw);
                edits.headers.push(Edit {
                    action: op.action,
                    name: name.clone(),
                    value: String::from_utf8_lossy(&value).into_owned(),
                });
            }
            Target::QueryString(name) => edits.query.push(Edit {
                action: op.action,
                name: name.clone(),
                value: String::from_utf8_lossy(&raw).into_owned(),
            }),
        }
    }
    edits
}

/// A mapped path as a request-target path: starts with `/`; bytes a path may not hold
/// unencoded (RFC 3986 section 3.3: other than unreserved, sub-delims, `:`, `@`, `/`, and
/// `%` escapes) are percent-encoded.
pub fn path_text(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() + 1);
    if raw.first() != Some(&b'/') {
        out.push('/');
    }
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b) {
            out.push(b as char);
        } else {
            push_pct(&mut out, b);
        }
    }
    out
}

fn push_pct(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 15) as usize] as char);
}

/// Percent-encodes a query name or value: everything but RFC 3986 unreserved characters.
fn query_encode(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            push_pct(out, b);
        }
    }
}

/// Applies query edits to a raw query (without `?`), appending the result to `out`. Names
/// compare after percent-decoding; kept pairs stay as they were sent.
pub fn edit_query(raw: &str, edits: &[Edit], out: &mut String) {
    let touched = |name: &str| {
        edits
            .iter()
            .any(|e| e.action != Action::Append && *e.name == *name)
    };
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        if touched(&crate::auth::request_authorizer::percent_decode(name)) {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(pair);
    }
    for e in edits.iter().filter(|e| e.action != Action::Remove) {
        if !out.is_empty() {
            out.push('&');
        }
        query_encode(&e.name, out);
        out.push('=');
        query_encode(&e.value, out);
    }
}

/// Applies header edits to a list of (name, value) pairs, as events carry them: removed and
/// overwritten names go (any case), then overwrites and appends are added in order.
pub fn edit_pairs<'a>(pairs: &mut Vec<(&'a str, &'a str)>, edits: &'a [Edit]) {
    pairs.retain(|(n, _)| {
        !edits
            .iter()
            .any(|e| e.action != Action::Append && e.name.eq_ignore_ascii_case(n))
    });
    pairs.extend(
        edits
            .iter()
            .filter(|e| e.action != Action::Remove)
            .map(|e| (&*e.name, e.value.as_str())),
    );
}

/// Applies header edits to HTTP header lines (`Name: value\r\n` each) in `head[from..]`, which
/// may end with the empty line that ends a head: removed and overwritten names' lines go,
/// new lines go at the end (before the empty line).
pub fn edit_header_lines(head: &mut Vec<u8>, from: usize, edits: &[Edit]) {
    let mut kept = Vec::with_capacity(head.len() - from + 64);
    let mut rest = &head[from..];
    let mut ended = false;
    while !rest.is_empty() {
        let end = memchr::memmem::find(rest, b"\r\n").map_or(rest.len(), |i| i + 2);
        let line = &rest[..end];
        rest = &rest[end..];
        if line == b"\r\n" {
            ended = true;
            break;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
        let drop = edits
            .iter()
            .any(|e| e.action != Action::Append && e.name.as_bytes().eq_ignore_ascii_case(name));
        if !drop {
            kept.extend_from_slice(line);
        }
    }
    for e in edits.iter().filter(|e| e.action != Action::Remove) {
        kept.extend_from_slice(e.name.as_bytes());
        kept.extend_from_slice(b": ");
        kept.extend_from_slice(e.value.as_bytes());
        kept.extend_from_slice(b"\r\n");
    }
    if ended {
        kept.extend_from_slice(b"\r\n");
    }
    head.truncate(from);
    head.extend_from_slice(&kept);
}

#[cfg(test)]
mod tests;
