//! The config document's authorization sections, as written: an API's `authorizers` and
//! `resource_policy`, the gateway's `iam` credentials. [`crate::config::check`] turns them into
//! the checked model in [`super::model`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One authorizer of an API (AWS HTTP API `Authorizer`), keyed by its name in `authorizers:`.
/// One flat struct for both types so that errors name the exact field; the check refuses
/// fields that do not belong to the type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizerFile {
    #[serde(rename = "type")]
    pub kind: AuthorizerType,
    /// Where the caller's identity is read: one expression for `jwt`
    /// (default `$request.header.Authorization`), a list for `request` (`$request.header.X`,
    /// `$request.querystring.x`, `$context.x`, `$stageVariables.x`). A request missing one
    /// gets 401 without a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<IdentitySourceFile>,
    /// jwt: the token's `iss` must equal this; keys come from its OIDC discovery document
    /// (`{issuer}/.well-known/openid-configuration`) unless `jwks_uri` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// jwt: the token's `aud` (or `client_id`) must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// jwt: where the JSON Web Key Set is fetched, instead of discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// request: the authorizer endpoint the event is POSTed to (`http://host:port/path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// request: a function (a name in `functions`, or its Lambda ARN) invoked with the event,
    /// instead of `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// request: the event's shape, `"2.0"` (default) or `"1.0"` (AWS
    /// `AuthorizerPayloadFormatVersion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<String>,
    /// request, payload 2.0: the answer is `{isAuthorized, context}` instead of an IAM policy
    /// (AWS `EnableSimpleResponses`; default false as AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_simple_responses: Option<bool>,
    /// request: seconds an answer is reused for the same identity-source values, 0-3600
    /// (AWS `AuthorizerResultTtlInSeconds`, default 300; 0 calls every time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_ttl: Option<u64>,
    /// request: time allowed for the authorizer's answer (ms, default 10000, at most 30000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `jwt` or `request` (AWS `AuthorizerType` `JWT` / `REQUEST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizerType {
    Jwt,
    Request,
}

/// One expression or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IdentitySourceFile {
    One(String),
    Many(Vec<String>),
}

impl IdentitySourceFile {
    pub fn items(&self) -> &[String] {
        match self {
            IdentitySourceFile::One(s) => std::slice::from_ref(s),
            IdentitySourceFile::Many(v) => v,
        }
    }
}

/// How a route is authorized (AWS `AuthorizationType`). Written in lower case in routes:
/// `none`, `jwt`, `custom`, `aws_iam`; when a route names an `authorizer` the type follows
/// from it and may be omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationType {
    #[serde(alias = "NONE")]
    None,
    #[serde(alias = "JWT")]
    Jwt,
    #[serde(alias = "CUSTOM")]
    Custom,
    #[serde(alias = "AWS_IAM")]
    AwsIam,
}

impl AuthorizationType {
    /// The name as the config writes it.
    pub fn name(self) -> &'static str {
        match self {
            AuthorizationType::None => "none",
            AuthorizationType::Jwt => "jwt",
            AuthorizationType::Custom => "custom",
            AuthorizationType::AwsIam => "aws_iam",
        }
    }
}

/// An API's resource policy on the caller's source address (the `aws:SourceIp` condition of
/// an API Gateway resource policy): evaluated before any authorizer; deny wins; an empty
/// `allow` admits every address not denied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcePolicyFile {
    /// CIDRs (`10.0.0.0/8`, `2001:db8::/32`, or one address) allowed to invoke the API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// CIDRs refused even when allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// The gateway's IAM principals for `aws_iam` routes: who may sign requests (SigV4) and what
/// they may invoke.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<IamCredentialFile>,
}

/// `{ access_key_id: AKIA..., secret_file: /etc/turnpike/iam/ci.secret, principal: ci }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamCredentialFile {
    pub access_key_id: String,
    /// A file holding the secret access key (surrounding whitespace ignored); readable by the
    /// gateway only.
    pub secret_file: String,
    /// The caller's name: `$context.identity.caller` and `.user` (an IAM user or role ARN,
    /// or any name).
    pub principal: String,
    /// `execute-api:Invoke` resource ARN patterns (`*` and `?`) this principal may call;
    /// empty: every `aws_iam` route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

/// A map of authorizers by name, as the API section holds them.
pub type AuthorizersFile = BTreeMap<String, AuthorizerFile>;

impl IamFile {
    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }
}
