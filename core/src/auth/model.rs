//! The checked authorization model: what [`crate::config::check`] builds from
//! [`super::file`] and the data plane compiles into route plans.

use std::time::Duration;

use super::{
    policy::CidrSet,
    request_authorizer::{IdentitySource, PayloadFormat},
};
use crate::uri::UpstreamTarget;

/// One authorizer of an API.
#[derive(Debug, Clone)]
pub struct Authorizer {
    pub name: String,
    /// A fingerprint of the API name, the authorizer's name and every setting: keys the
    /// per-core result caches so that a reload keeps them for an unchanged authorizer and
    /// drops them for a changed one.
    pub uid: u64,
    pub kind: AuthorizerKind,
}

#[derive(Debug, Clone)]
pub enum AuthorizerKind {
    Jwt(JwtAuthorizer),
    Request(RequestAuthorizer),
}

/// A JWT authorizer (AWS HTTP API `JwtConfiguration`).
#[derive(Debug, Clone)]
pub struct JwtAuthorizer {
    /// The header the token is read from, lower-case (`authorization`).
    pub header: String,
    pub issuer: String,
    pub audience: Vec<String>,
    /// Where keys come from: the issuer's discovery document or an explicit JWKS URI.
    pub keys: KeyLocation,
}

/// Where a JWT authorizer's JSON Web Key Set is fetched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyLocation {
    /// `{issuer}/.well-known/openid-configuration` names the `jwks_uri` (OpenID Connect
    /// Discovery 1.0, section 4).
    Discovery(String),
    /// The key set itself.
    Jwks(String),
}

impl KeyLocation {
    pub fn url(&self) -> &str {
        match self {
            KeyLocation::Discovery(u) | KeyLocation::Jwks(u) => u,
        }
    }
}

/// A request ("Lambda") authorizer reached over HTTP.
#[derive(Debug, Clone)]
pub struct RequestAuthorizer {
    pub uri: String,
    /// Per stage (same index as the API's stages): where the event is POSTed, or why that
    /// stage cannot use the authorizer (requests there get 500). Empty for a function.
    pub targets: Vec<Result<UpstreamTarget, String>>,
    /// The function invoked instead of `uri`: its name and its index in
    /// [`crate::config::Config::functions`] (resolved after the functions are checked).
    pub function: Option<(String, u32)>,
    pub payload_format: PayloadFormat,
    /// Payload 2.0 `{isAuthorized, context}` answers instead of IAM policies.
    pub simple_responses: bool,
    /// The values that must be present and that key the result cache.
    pub identity_sources: Vec<IdentitySource>,
    /// How long an answer is reused for the same identity values; zero: never.
    pub result_ttl: Duration,
    pub timeout: Duration,
}

/// How a route is authorized.
#[derive(Debug, Clone, Default)]
pub enum RouteAuth {
    #[default]
    None,
    /// A JWT authorizer (index into the API's authorizers) and the route's scopes, at least
    /// one of which the token must carry (none: any valid token).
    Jwt {
        authorizer: u32,
        scopes: Vec<String>,
    },
    /// A request authorizer (index into the API's authorizers).
    Custom { authorizer: u32 },
    /// SigV4 against the gateway's IAM credentials.
    AwsIam,
}

/// A principal that may sign requests for `aws_iam` routes.
#[derive(Clone)]
pub struct IamCredential {
    pub access_key_id: String,
    pub secret_access_key: Box<[u8]>,
    pub principal: String,
    /// `execute-api` resource ARN patterns it may invoke; empty: any.
    pub resources: Vec<String>,
}

impl std::fmt::Debug for IamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamCredential")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

/// The gateway-wide authorization settings.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub region: String,
    pub account_id: String,
    pub trusted_proxies: CidrSet,
    pub iam: Vec<IamCredential>,
}
