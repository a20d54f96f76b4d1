//! The event a function integration receives (payload formats 2.0 and 1.0), built on the
//! request-authorizer event's shared pieces ([`insert_common_v2`], [`insert_common_v1`]) so the
//! two events cannot drift apart.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::auth::request_authorizer::{RequestFacts, insert_common_v1, insert_common_v2};
use crate::context::ClientCertInfo;

/// Who the authorizer said the caller is, for `requestContext.authorizer`.
#[derive(Debug, Clone, Copy)]
pub enum EventAuthorizer<'a> {
    None,
    /// A JWT authorizer's verified claims (as text) and scopes.
    Jwt {
        claims: &'a [(Box<str>, Box<str>)],
        scopes: &'a [Box<str>],
    },
    /// A request authorizer's `context` and, from an IAM-policy answer, its `principalId`.
    Lambda {
        context: &'a [(Box<str>, Box<str>)],
        principal_id: Option<&'a str>,
    },
    /// A SigV4-signed request: the access key it was signed with and the configured principal
    /// (what `$context.identity.caller` shows).
    Iam {
        access_key: &'a str,
        caller: &'a str,
    },
}

/// Everything a function's event says about one request.
#[derive(Debug, Clone, Copy)]
pub struct ProxyEvent<'a> {
    pub facts: RequestFacts<'a>,
    /// The whole request body (the gateway buffers it before invoking).
    pub body: &'a [u8],
    /// The request's `Content-Type`, which decides [`is_binary`].
    pub content_type: Option<&'a str>,
    pub authorizer: EventAuthorizer<'a>,
    /// The client's certificate on a mutual-TLS connection.
    pub client_cert: Option<ClientCertInfo<'a>>,
}

/// Whether a request body with this `Content-Type` goes to the function base64-encoded, with
/// `isBase64Encoded: true`.
///
/// AWS documents only "if the content type of the request is binary, the body is
/// base64-encoded" and, unlike REST APIs, HTTP APIs have no `binaryMediaTypes` setting. The
/// split observed on HTTP APIs (payload 2.0, AWS_PROXY) is: text for `text/*`,
/// `application/json`, `application/xml` and `application/javascript`; binary for everything
/// else, a missing `Content-Type` and `application/x-www-form-urlencoded` included. That is
/// the rule here: the media type's essence (parameters dropped, case ignored) is compared;
/// `+json`/`+xml` suffixes are not treated as text, since the observations do not say so.
/// [`event_v2`] and [`event_v1`] also base64-encode any body that is not valid UTF-8.
pub fn is_binary(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    let text = essence
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("text/"))
        || [
            "application/json",
            "application/xml",
            "application/javascript",
        ]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t));
    !text
}

/// The body as the event carries it: `None` when empty, else the text and whether it is
/// base64.
fn body(e: &ProxyEvent) -> Option<(String, bool)> {
    if e.body.is_empty() {
        return None;
    }
    match std::str::from_utf8(e.body) {
        Ok(text) if !is_binary(e.content_type) => Some((text.to_owned(), false)),
        _ => Some((STANDARD.encode(e.body), true)),
    }
}

/// The payload format 2.0 event (AWS "Working with AWS Lambda proxy integrations for HTTP
/// APIs"). An empty body leaves `body` out (AWS's GET events have none) with
/// `isBase64Encoded: false`. `requestContext.authorizer` and `.authentication` are left out
/// when there is no authorizer or client certificate.
pub fn event_v2(e: &ProxyEvent) -> Vec<u8> {
    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    insert_common_v2(&mut event, &e.facts);
    if let Some(Value::Object(rc)) = event.get_mut("requestContext") {
        if let Some(cert) = &e.client_cert {
            rc.insert(
                "authentication".into(),
                json!({ "clientCert": client_cert(cert) }),
            );
        }
        if let Some(authorizer) = authorizer_v2(&e.authorizer, e.facts.account_id) {
            rc.insert("authorizer".into(), authorizer);
        }
    }
    let encoded = insert_body(&mut event, e);
    event.insert("isBase64Encoded".into(), encoded.into());
    serde_json::to_vec(&Value::Object(event)).unwrap_or_default()
}

fn insert_body(event: &mut Map<String, Value>, e: &ProxyEvent) -> bool {
    match body(e) {
        Some((text, encoded)) => {
            event.insert("body".into(), text.into());
            encoded
        }
        None => false,
    }
}

fn authorizer_v2(a: &EventAuthorizer, account_id: &str) -> Option<Value> {
    Some(match *a {
        EventAuthorizer::None => return None,
        EventAuthorizer::Jwt { claims, scopes } => json!({
            "jwt": { "claims": text_map(claims), "scopes": scopes_or_null(scopes) }
        }),
        EventAuthorizer::Lambda { context, .. } => json!({ "lambda": text_map(context) }),
        EventAuthorizer::Iam { access_key, caller } => json!({
            "iam": {
                "accessKey": access_key,
                "accountId": account_id,
                "callerId": caller,
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": user_arn(caller),
                "userId": caller,
            }
        }),
    })
}

/// The principal is configured as an IAM ARN or as any name; only an ARN is a `userArn`.
fn user_arn(caller: &str) -> Option<&str> {
    caller.starts_with("arn:").then_some(caller)
}

/// `null` when there are no scopes, as AWS sends for a token without `scope`.
fn scopes_or_null(scopes: &[Box<str>]) -> Value {
    if scopes.is_empty() {
        Value::Null
    } else {
        scopes.iter().map(|s| Value::from(&**s)).collect()
    }
}

fn text_map(pairs: &[(Box<str>, Box<str>)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(&**v)))
        .collect()
}

fn client_cert(c: &ClientCertInfo) -> Value {
    json!({
        "clientCertPem": c.pem,
        "subjectDN": c.subject_dn,
        "issuerDN": c.issuer_dn,
        "serialNumber": c.serial_number,
        "validity": { "notBefore": c.not_before, "notAfter": c.not_after },
    })
}

/// The payload format 1.0 event. An empty body is `"body": null`, as the 1.0 event's other
/// absent values are. `requestContext.authorizer` is `{"claims": null, "scopes": null}`
/// without an authorizer (AWS's example) and for IAM, whose caller is described in
/// `requestContext.identity` instead (`accessKey`, `accountId`, `caller`, `user`, `userArn`).
pub fn event_v1(e: &ProxyEvent) -> Vec<u8> {
    let mut event = Map::new();
    event.insert("version".into(), "1.0".into());
    insert_common_v1(&mut event, &e.facts);
    if let Some(Value::Object(rc)) = event.get_mut("requestContext") {
        rc.insert("authorizer".into(), authorizer_v1(&e.authorizer));
        if let Some(Value::Object(identity)) = rc.get_mut("identity") {
            if let EventAuthorizer::Iam { access_key, caller } = e.authorizer {
                identity.insert("accessKey".into(), access_key.into());
                identity.insert("accountId".into(), e.facts.account_id.into());
                identity.insert("caller".into(), caller.into());
                identity.insert("user".into(), caller.into());
                identity.insert("userArn".into(), json!(user_arn(caller)));
            }
            if let Some(cert) = &e.client_cert {
                identity.insert("clientCert".into(), client_cert(cert));
            }
        }
    }
    let encoded = insert_body(&mut event, e);
    if !event.contains_key("body") {
        event.insert("body".into(), Value::Null);
    }
    event.insert("isBase64Encoded".into(), encoded.into());
    serde_json::to_vec(&Value::Object(event)).unwrap_or_default()
}

fn authorizer_v1(a: &EventAuthorizer) -> Value {
    match *a {
        EventAuthorizer::None | EventAuthorizer::Iam { .. } => {
            json!({ "claims": null, "scopes": null })
        }
        EventAuthorizer::Jwt { claims, scopes } => {
            json!({ "claims": text_map(claims), "scopes": scopes_or_null(scopes) })
        }
        EventAuthorizer::Lambda {
            context,
            principal_id,
        } => {
            let mut map = text_map(context);
            if let Some(p) = principal_id {
                map.insert("principalId".into(), p.into());
            }
            Value::Object(map)
        }
    }
}
