//! Request ("Lambda") authorizers: the event the authorizer function receives, its answer,
//! and the identity-source expressions that say which request values it needs.
//!
//! The shapes follow AWS "Working with AWS Lambda authorizers for HTTP APIs" (payload formats
//! 1.0 and 2.0) and "Working with AWS Lambda proxy integrations for HTTP APIs", whose 1.0
//! `requestContext` the 1.0 authorizer event shares. Where the documents are silent:
//!
//! - query names and values are percent-decoded; `+` stays `+` (HTTP APIs do not read the
//!   query as a form); a bad escape is kept as written and invalid UTF-8 becomes U+FFFD;
//! - 2.0 leaves out `cookies`, `queryStringParameters`, `pathParameters` and `stageVariables`
//!   when there are none (as the 2.0 integration event does); 1.0 sends `null` for the query,
//!   path-parameter and stage-variable maps (as the 1.0 integration event does);
//! - 2.0 `identitySource` is `[]` when the authorizer has no identity sources;
//! - 1.0 `headers` and `queryStringParameters` carry the last value of a repeated name, the
//!   `multiValue*` maps all of them; header names keep the spelling of their first occurrence.
//!
//! The event builders allocate freely: an authorizer's result is cached, so this is not the
//! per-request path. [`RequestFacts`] and the `*_v1`/`*_v2` helpers are shared with the Lambda
//! proxy integration event.

use serde_json::{Map, Value, json};

use crate::auth::policy::PolicyDocument;
use crate::context::RequestTime;
use crate::h1::head::is_tchar;

#[cfg(test)]
mod tests;

/// What an authorizer (or a function integration) is told about a request. Borrowed: the
/// caller owns the request head and the route match.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// The full raw path, stage prefix included, as AWS's `rawPath`.
    pub path: &'a str,
    /// The query without its `?`, as received.
    pub raw_query: &'a str,
    /// The request's headers as received (names in their original case, repeats kept).
    pub headers: &'a [(&'a str, &'a str)],
    pub path_parameters: &'a [(&'a str, &'a str)],
    pub stage_variables: &'a [(&'a str, &'a str)],
    /// `GET /pets/{id}` or `$default`.
    pub route_key: &'a str,
    pub stage: &'a str,
    pub api_id: &'a str,
    pub account_id: &'a str,
    pub domain_name: &'a str,
    pub request_id: &'a str,
    pub source_ip: &'a str,
    pub user_agent: &'a str,
    /// `HTTP/1.1`.
    pub protocol: &'a str,
    pub time_epoch_ms: u64,
    /// The ARN the request is authorized against ([`crate::auth::policy::method_arn`]).
    pub route_arn: &'a str,
}

/// The payload format version of an authorizer (`authorizerPayloadFormatVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    V1,
    V2,
}

/// The event a 2.0 request authorizer receives. `identity_source` holds the values of the
/// authorizer's identity sources, in their configured order.
pub fn event_v2(f: &RequestFacts, identity_source: &[&str]) -> Vec<u8> {
    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    event.insert("type".into(), "REQUEST".into());
    event.insert("routeArn".into(), f.route_arn.into());
    event.insert("identitySource".into(), json!(identity_source));
    insert_common_v2(&mut event, f);
    serde_json::to_vec(&Value::Object(event)).unwrap_or_default()
}

/// The fields the 2.0 authorizer event shares with the 2.0 integration event: `routeKey`,
/// `rawPath`, `rawQueryString`, `cookies`, `headers`, `queryStringParameters`,
/// `requestContext`, `pathParameters`, `stageVariables`.
pub fn insert_common_v2(event: &mut Map<String, Value>, f: &RequestFacts) {
    event.insert("routeKey".into(), f.route_key.into());
    event.insert("rawPath".into(), f.path.into());
    event.insert("rawQueryString".into(), f.raw_query.into());
    let cookies = cookies_v2(f.headers);
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), Value::Object(headers_v2(f.headers)));
    let query = query_v2(f.raw_query);
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), Value::Object(query));
    }
    event.insert("requestContext".into(), request_context_v2(f));
    if !f.path_parameters.is_empty() {
        event.insert("pathParameters".into(), pairs(f.path_parameters));
    }
    if !f.stage_variables.is_empty() {
        event.insert("stageVariables".into(), pairs(f.stage_variables));
    }
}

/// 2.0 `headers`: names lower-cased, repeats joined with `,`, `Cookie` left out (it goes to
/// `cookies`).
pub fn headers_v2(headers: &[(&str, &str)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("cookie") {
            continue;
        }
        let name = name.to_ascii_lowercase();
        match out.get_mut(&name) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            _ => {
                out.insert(name, Value::String((*value).to_owned()));
            }
        }
    }
    out
}

/// 2.0 `cookies`: every `Cookie` header split at `;`, each pair trimmed.
pub fn cookies_v2<'a>(headers: &[(&str, &'a str)]) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, value)| value.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// 2.0 `queryStringParameters`: decoded names and values, repeats joined with `,`.
pub fn query_v2(raw_query: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in query_pairs(raw_query) {
        match out.get_mut(&name) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                out.insert(name, Value::String(value));
            }
        }
    }
    out
}

/// 2.0 `requestContext` (without `authorizer` and `authentication`, which the integration
/// event adds when it has them).
pub fn request_context_v2(f: &RequestFacts) -> Value {
    json!({
        "accountId": f.account_id,
        "apiId": f.api_id,
        "domainName": f.domain_name,
        "domainPrefix": domain_prefix(f.domain_name),
        "http": {
            "method": f.method,
            "path": f.path,
            "protocol": f.protocol,
            "sourceIp": f.source_ip,
            "userAgent": f.user_agent,
        },
        "requestId": f.request_id,
        "routeKey": f.route_key,
        "stage": f.stage,
        "time": RequestTime::from_epoch_ms(f.time_epoch_ms).as_str(),
        "timeEpoch": f.time_epoch_ms,
    })
}

/// The event a 1.0 request authorizer receives. `identity_source` is the identity-source
/// values joined with `,`; it is also sent as `authorizationToken` (as AWS's example does)
/// unless it is empty.
pub fn event_v1(f: &RequestFacts, identity_source: &str) -> Vec<u8> {
    let mut event = Map::new();
    event.insert("version".into(), "1.0".into());
    event.insert("type".into(), "REQUEST".into());
    event.insert("methodArn".into(), f.route_arn.into());
    event.insert("identitySource".into(), identity_source.into());
    if !identity_source.is_empty() {
        event.insert("authorizationToken".into(), identity_source.into());
    }
    insert_common_v1(&mut event, f);
    serde_json::to_vec(&Value::Object(event)).unwrap_or_default()
}

/// The fields the 1.0 authorizer event shares with the 1.0 integration event: `resource`,
/// `path`, `httpMethod`, `headers`, `multiValueHeaders`, `queryStringParameters`,
/// `multiValueQueryStringParameters`, `requestContext`, `pathParameters`, `stageVariables`.
pub fn insert_common_v1(event: &mut Map<String, Value>, f: &RequestFacts) {
    event.insert("resource".into(), resource_v1(f).into());
    event.insert("path".into(), f.path.into());
    event.insert("httpMethod".into(), f.method.into());
    let (single, multi) = multi_map(
        f.headers.iter().map(|&(n, v)| (n.to_owned(), v.to_owned())),
        true,
    );
    event.insert("headers".into(), single);
    event.insert("multiValueHeaders".into(), multi);
    let (single, multi) = multi_map(query_pairs(f.raw_query), false);
    event.insert("queryStringParameters".into(), single);
    event.insert("multiValueQueryStringParameters".into(), multi);
    event.insert("requestContext".into(), request_context_v1(f));
    let or_null = |p: &[(&str, &str)]| if p.is_empty() { Value::Null } else { pairs(p) };
    event.insert("pathParameters".into(), or_null(f.path_parameters));
    event.insert("stageVariables".into(), or_null(f.stage_variables));
}

/// 1.0 `resource`: the route key's path (`/pets/{id}`), or the request path for `$default`
/// (AWS's 1.0 example shows `"resource": "/my/path"` for the `$default` route).
fn resource_v1<'a>(f: &RequestFacts<'a>) -> &'a str {
    match f.route_key.split_once(' ') {
        Some((_, path)) => path,
        None => f.path,
    }
}

/// 1.0 `requestContext`, as the 1.0 integration event has it, with the `identity` fields AWS
/// has no value for set to `null`.
pub fn request_context_v1(f: &RequestFacts) -> Value {
    json!({
        "accountId": f.account_id,
        "apiId": f.api_id,
        "domainName": f.domain_name,
        "domainPrefix": domain_prefix(f.domain_name),
        "extendedRequestId": f.request_id,
        "httpMethod": f.method,
        "identity": {
            "accessKey": null,
            "accountId": null,
            "caller": null,
            "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null,
            "cognitoIdentityId": null,
            "cognitoIdentityPoolId": null,
            "principalOrgId": null,
            "sourceIp": f.source_ip,
            "user": null,
            "userAgent": f.user_agent,
            "userArn": null,
        },
        "path": f.path,
        "protocol": f.protocol,
        "requestId": f.request_id,
        "requestTime": RequestTime::from_epoch_ms(f.time_epoch_ms).as_str(),
        "requestTimeEpoch": f.time_epoch_ms,
        "resourceId": null,
        "resourcePath": resource_v1(f),
        "stage": f.stage,
    })
}

/// (last value per name, all values per name) as JSON objects, `null` both when there are
/// none. With `fold_case`, names that differ only in case are one name, spelled as first seen.
fn multi_map(items: impl Iterator<Item = (String, String)>, fold_case: bool) -> (Value, Value) {
    let mut order: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in items {
        let slot = order.iter_mut().find(|(n, _)| {
            if fold_case {
                n.eq_ignore_ascii_case(&name)
            } else {
                *n == name
            }
        });
        match slot {
            Some((_, values)) => values.push(value),
            None => order.push((name, vec![value])),
        }
    }
    if order.is_empty() {
        return (Value::Null, Value::Null);
    }
    let mut single = Map::new();
    let mut multi = Map::new();
    for (name, values) in order {
        if let Some(last) = values.last() {
            single.insert(name.clone(), Value::String(last.clone()));
        }
        multi.insert(name, json!(values));
    }
    (Value::Object(single), Value::Object(multi))
}

fn pairs(p: &[(&str, &str)]) -> Value {
    Value::Object(
        p.iter()
            .map(|&(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect(),
    )
}

/// The first label of the domain name (`id` of `id.execute-api.us-east-1.amazonaws.com`).
fn domain_prefix(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}

/// The query's `name=value` pairs, decoded, in order; empty pieces (`a=1&&b=2`) are skipped
/// and a name without `=` has the value `""`.
pub fn query_pairs(raw: &str) -> impl Iterator<Item = (String, String)> + '_ {
    raw.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode(n), percent_decode(v))
    })
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits is kept; `+` is kept.
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let high = b.get(i + 1).and_then(|&c| hex(c));
            let low = b.get(i + 2).and_then(|&c| hex(c));
            if let (Some(h), Some(l)) = (high, low) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// An authorizer's `context` as (key, text) pairs, what `$context.authorizer.KEY` reads.
pub type AuthorizerContext = Box<[(Box<str>, Box<str>)]>;

/// What a request authorizer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerAnswer {
    pub allowed: bool,
    pub principal_id: Option<Box<str>>,
    /// `context` values as text: strings as they are, numbers and booleans as JSON text
    /// (`1`, `true`); with payload 2.0 also arrays and objects, as compact JSON.
    pub context: AuthorizerContext,
    pub usage_identifier_key: Option<Box<str>>,
}

/// Why an authorizer's answer could not be used; the client gets a 500
/// (`AUTHORIZER_CONFIGURATION_ERROR`), the log gets this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    #[error("the answer is not a JSON object")]
    NotAnObject,
    #[error("the simple response has no boolean isAuthorized")]
    NoIsAuthorized,
    #[error("the answer has no policyDocument")]
    NoPolicyDocument,
    #[error("policyDocument: {0}")]
    BadPolicy(String),
    #[error("{0} is not a string")]
    NotAString(&'static str),
    #[error("context is not an object")]
    ContextNotAnObject,
    #[error("context.{0}: only strings, numbers and booleans are allowed")]
    ContextValue(String),
}

/// Reads an authorizer's answer. Payload 1.0, and 2.0 without simple responses, answer with
/// an IAM policy: `{"principalId", "policyDocument", "context", "usageIdentifierKey"}`, and
/// the request is allowed when the policy allows `execute-api:Invoke` on `route_arn`. 2.0
/// with simple responses answers `{"isAuthorized": bool, "context"}`.
///
/// Context values: AWS documents that a REST (1.0) authorizer's context holds only strings,
/// numbers and booleans, so 1.0 refuses arrays and objects. AWS's HTTP API (2.0) examples
/// return an array and a map in `context`, so 2.0 takes them, as compact JSON text. `null`
/// values are left out.
pub fn parse_answer(
    body: &[u8],
    format: PayloadFormat,
    simple_responses: bool,
    route_arn: &str,
) -> Result<AuthorizerAnswer, AnswerError> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    let Value::Object(answer) = answer else {
        return Err(AnswerError::NotAnObject);
    };
    let context = context(answer.get("context"), format)?;
    if format == PayloadFormat::V2 && simple_responses {
        let Some(Value::Bool(allowed)) = answer.get("isAuthorized") else {
            return Err(AnswerError::NoIsAuthorized);
        };
        return Ok(AuthorizerAnswer {
            allowed: *allowed,
            principal_id: None,
            context,
            usage_identifier_key: None,
        });
    }
    let doc = answer
        .get("policyDocument")
        .ok_or(AnswerError::NoPolicyDocument)?;
    let doc = PolicyDocument::parse(doc).map_err(AnswerError::BadPolicy)?;
    Ok(AuthorizerAnswer {
        allowed: doc.allows("execute-api:Invoke", route_arn),
        principal_id: optional_string(answer.get("principalId"), "principalId")?,
        context,
        usage_identifier_key: optional_string(
            answer.get("usageIdentifierKey"),
            "usageIdentifierKey",
        )?,
    })
}

fn optional_string(
    v: Option<&Value>,
    field: &'static str,
) -> Result<Option<Box<str>>, AnswerError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str().into())),
        Some(_) => Err(AnswerError::NotAString(field)),
    }
}

fn context(v: Option<&Value>, format: PayloadFormat) -> Result<AuthorizerContext, AnswerError> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Box::new([])),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(AnswerError::ContextNotAnObject),
    };
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        let text: Box<str> = match value {
            Value::Null => continue,
            Value::String(s) => s.as_str().into(),
            Value::Number(_) | Value::Bool(_) => value.to_string().into(),
            Value::Array(_) | Value::Object(_) if format == PayloadFormat::V2 => {
                value.to_string().into()
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(AnswerError::ContextValue(key.clone()));
            }
        };
        out.push((key.as_str().into(), text));
    }
    Ok(out.into())
}

/// Where an authorizer's identity value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// A request header; the name is lower-cased (header names are case-insensitive).
    Header(Box<str>),
    /// A query parameter; the name is case-sensitive.
    Query(Box<str>),
    /// A `$context` variable, named without `$context.`.
    Context(Box<str>),
    /// A stage variable.
    StageVariable(Box<str>),
}

/// Expression prefixes: HTTP API (`$request...`), REST / 1.0 (`method.request...`) and
/// WebSocket (`route.request...`) spellings.
const PREFIXES: [(&str, Kind); 10] = [
    ("$request.header.", Kind::Header),
    ("$request.querystring.", Kind::Query),
    ("$context.", Kind::Context),
    ("$stageVariables.", Kind::StageVariable),
    ("method.request.header.", Kind::Header),
    ("method.request.querystring.", Kind::Query),
    ("route.request.header.", Kind::Header),
    ("route.request.querystring.", Kind::Query),
    ("context.", Kind::Context),
    ("stageVariables.", Kind::StageVariable),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Header,
    Query,
    Context,
    StageVariable,
}

impl IdentitySource {
    /// Parses `$request.header.Authorization`, `$request.querystring.token`,
    /// `$context.routeKey`, `$stageVariables.name`, and the same with the `method.request.`,
    /// `route.request.`, `context.` and `stageVariables.` spellings.
    pub fn parse(expr: &str) -> Result<IdentitySource, String> {
        let Some((name, kind)) = PREFIXES
            .iter()
            .find_map(|&(p, kind)| expr.strip_prefix(p).map(|n| (n, kind)))
        else {
            return Err(format!(
                "{expr:?} is not $request.header.NAME, $request.querystring.NAME, \
                 $context.NAME or $stageVariables.NAME"
            ));
        };
        if name.is_empty() {
            return Err(format!("{expr:?} names nothing"));
        }
        let ok = match kind {
            Kind::Header => name.bytes().all(is_tchar),
            Kind::Query => !name.bytes().any(|b| b.is_ascii_control() || b == b' '),
            Kind::Context => name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'),
            Kind::StageVariable => crate::uri::is_var_name(name),
        };
        if !ok {
            return Err(format!("{expr:?}: {name:?} is not a valid name there"));
        }
        Ok(match kind {
            Kind::Header => IdentitySource::Header(name.to_ascii_lowercase().into()),
            Kind::Query => IdentitySource::Query(name.into()),
            Kind::Context => IdentitySource::Context(name.into()),
            Kind::StageVariable => IdentitySource::StageVariable(name.into()),
        })
    }
}
