//! The authorization parts of a config check: an API's `authorizers`, its routes'
//! `authorizer` / `authorization_type` / `authorization_scopes`, its `resource_policy`, and the
//! gateway's `region`, `account_id`, `trusted_proxies` and `iam` credentials (whose secret
//! files come from the caller's [`TlsSource`], which reads every file a config names).

use std::hash::{Hash, Hasher};

use super::{
    ApiFile, ConfigFile, GatewayFile, RouteFile, check::Checker, file::ApiKeySource, model::Stage,
};
use crate::{
    auth::{
        file::{AuthorizationType, AuthorizerFile, AuthorizerType},
        model::{
            AuthSettings, Authorizer, AuthorizerKind, IamCredential, JwtAuthorizer, KeyLocation,
            RequestAuthorizer, RouteAuth,
        },
        policy::{CidrSet, ResourcePolicy},
        request_authorizer::{IdentitySource, PayloadFormat},
    },
    tls::TlsSource,
};

/// AWS's limits on `AuthorizerResultTtlInSeconds`.
const MAX_RESULT_TTL_S: u64 = 3600;
const DEFAULT_RESULT_TTL_S: u64 = 300;
/// AWS waits 10 s for a Lambda authorizer; turnpike lets an operator choose up to 30 s.
const DEFAULT_AUTHORIZER_TIMEOUT_MS: u64 = 10_000;
const MAX_AUTHORIZER_TIMEOUT_MS: u64 = 30_000;

impl Checker {
    /// The gateway-wide settings: region, account, trusted proxies and IAM credentials.
    pub(super) fn auth_settings(&mut self, file: &ConfigFile, src: &dyn TlsSource) -> AuthSettings {
        let g: &GatewayFile = &file.gateway;
        if g.region.is_empty()
            || !g
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            self.err(
                "gateway.region",
                format!("{:?}: expected a Region name such as us-east-1", g.region),
            );
        }
        if g.account_id.len() != 12 || !g.account_id.bytes().all(|b| b.is_ascii_digit()) {
            self.err(
                "gateway.account_id",
                format!("{:?}: expected 12 digits", g.account_id),
            );
        }
        let trusted_proxies = self.cidrs("gateway.trusted_proxies", &g.trusted_proxies);
        let mut iam = Vec::with_capacity(file.iam.credentials.len());
        for (i, c) in file.iam.credentials.iter().enumerate() {
            let at = format!("iam.credentials[{i}]");
            if c.access_key_id.len() < 16
                || c.access_key_id.len() > 128
                || !c.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                self.err(
                    format!("{at}.access_key_id"),
                    "expected 16 to 128 letters and digits (AWS access key ids look like AKIAIOSFODNN7EXAMPLE)",
                );
            }
            if let Some(first) = file.iam.credentials[..i]
                .iter()
                .position(|o| o.access_key_id == c.access_key_id)
            {
                self.err(
                    format!("{at}.access_key_id"),
                    format!("already the key id of iam.credentials[{first}]"),
                );
            }
            if c.principal.trim().is_empty() {
                self.err(format!("{at}.principal"), "must not be empty");
            }
            for (r, pattern) in c.resources.iter().enumerate() {
                if !(pattern.starts_with("arn:") || pattern == "*") {
                    self.err(
                        format!("{at}.resources[{r}]"),
                        format!("{pattern:?}: expected an execute-api ARN pattern (arn:aws:execute-api:...) or *"),
                    );
                }
            }
            let secret = match src.read(&c.secret_file) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let secret = text.trim();
                    if secret.is_empty() {
                        self.err(format!("{at}.secret_file"), "the file is empty");
                    }
                    Box::from(secret.as_bytes())
                }
                Err(e) => {
                    self.err(format!("{at}.secret_file"), e);
                    Box::default()
                }
            };
            iam.push(IamCredential {
                access_key_id: c.access_key_id.clone(),
                secret_access_key: secret,
                principal: c.principal.clone(),
                resources: c.resources.clone(),
            });
        }
        AuthSettings {
            region: g.region.clone(),
            account_id: g.account_id.clone(),
            trusted_proxies,
            iam,
        }
    }

    fn cidrs(&mut self, at: &str, items: &[String]) -> CidrSet {
        CidrSet::parse(items).unwrap_or_else(|e| {
            self.err(at, e.to_string());
            CidrSet::default()
        })
    }

    /// An API's resource policy, if it has one.
    pub(super) fn resource_policy(&mut self, at: &str, a: &ApiFile) -> Option<ResourcePolicy> {
        let p = a.resource_policy.as_ref()?;
        let allow = self.cidrs(&format!("{at}.resource_policy.allow"), &p.allow);
        let deny = self.cidrs(&format!("{at}.resource_policy.deny"), &p.deny);
        Some(ResourcePolicy::new(allow, deny))
    }

    /// An API's authorizers, in name order.
    pub(super) fn authorizers(
        &mut self,
        at: &str,
        a: &ApiFile,
        stages: &[Stage],
    ) -> Vec<Authorizer> {
        a.authorizers
            .iter()
            .map(|(name, f)| {
                let at = format!("{at}.authorizers.{name}");
                if !super::check::is_name(name) {
                    self.err(
                        at.clone(),
                        format!("authorizer name {name:?}: use letters, digits, '_', '-' or '.'"),
                    );
                }
                let kind = match f.kind {
                    AuthorizerType::Jwt => AuthorizerKind::Jwt(self.jwt_authorizer(&at, f)),
                    AuthorizerType::Request => {
                        AuthorizerKind::Request(self.request_authorizer(&at, f, stages))
                    }
                };
                let mut h = std::collections::hash_map::DefaultHasher::new();
                a.name.hash(&mut h);
                name.hash(&mut h);
                serde_json::to_string(f).unwrap_or_default().hash(&mut h);
                Authorizer {
                    name: name.clone(),
                    uid: h.finish(),
                    kind,
                }
            })
            .collect()
    }

    fn misplaced(&mut self, at: &str, kind: &str, fields: &[(&str, bool)]) {
        for (field, set) in fields {
            if *set {
                self.err(
                    format!("{at}.{field}"),
                    format!("not a field of {kind} authorizers"),
                );
            }
        }
    }

    fn jwt_authorizer(&mut self, at: &str, f: &AuthorizerFile) -> JwtAuthorizer {
        self.misplaced(
            at,
            "jwt",
            &[
                ("uri", f.uri.is_some()),
                ("function", f.function.is_some()),
                ("payload_format", f.payload_format.is_some()),
                (
                    "enable_simple_responses",
                    f.enable_simple_responses.is_some(),
                ),
                ("result_ttl", f.result_ttl.is_some()),
                ("timeout_ms", f.timeout_ms.is_some()),
            ],
        );
        let header = match f.identity_source.as_ref().map(|s| s.items()) {
            None => "authorization".to_owned(),
            Some([one]) => match IdentitySource::parse(one) {
                Ok(IdentitySource::Header(h)) => h.to_ascii_lowercase(),
                Ok(_) => {
                    self.err(
                        format!("{at}.identity_source"),
                        format!("{one:?}: a JWT authorizer reads its token from a header ($request.header.Authorization)"),
                    );
                    String::new()
                }
                Err(e) => {
                    self.err(format!("{at}.identity_source"), format!("{one:?}: {e}"));
                    String::new()
                }
            },
            Some(_) => {
                self.err(
                    format!("{at}.identity_source"),
                    "a JWT authorizer takes exactly one identity source",
                );
                String::new()
            }
        };
        let issuer = f.issuer.clone().unwrap_or_default();
        if f.issuer.is_none() {
            self.err(format!("{at}.issuer"), "a JWT authorizer needs an issuer");
        } else if let Err(e) = fetchable_url(&issuer) {
            self.err(format!("{at}.issuer"), format!("{issuer:?}: {e}"));
        }
        if f.audience.is_empty() {
            self.err(
                format!("{at}.audience"),
                "a JWT authorizer needs at least one audience (AWS requires one)",
            );
        }
        let keys = match &f.jwks_uri {
            Some(u) => {
                if let Err(e) = fetchable_url(u) {
                    self.err(format!("{at}.jwks_uri"), format!("{u:?}: {e}"));
                }
                KeyLocation::Jwks(u.clone())
            }
            None => KeyLocation::Discovery(format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            )),
        };
        JwtAuthorizer {
            header,
            issuer,
            audience: f.audience.clone(),
            keys,
        }
    }

    fn request_authorizer(
        &mut self,
        at: &str,
        f: &AuthorizerFile,
        stages: &[Stage],
    ) -> RequestAuthorizer {
        self.misplaced(
            at,
            "request",
            &[
                ("issuer", f.issuer.is_some()),
                ("audience", !f.audience.is_empty()),
                ("jwks_uri", f.jwks_uri.is_some()),
            ],
        );
        let uri = f.uri.clone().unwrap_or_default();
        let targets = match (&f.uri, &f.function) {
            (None, None) => {
                self.err(
                    format!("{at}.uri"),
                    "a request authorizer needs a uri or a function",
                );
                Vec::new()
            }
            (Some(_), Some(_)) => {
                self.err(
                    format!("{at}.function"),
                    "give a uri or a function, not both",
                );
                Vec::new()
            }
            (None, Some(_)) => Vec::new(),
            (Some(_), None) => self.stage_targets(&format!("{at}.uri"), &uri, stages),
        };
        let function = f.function.as_deref().map(|name| {
            let name = super::check_function::function_ref(name).unwrap_or_else(|e| {
                self.err(format!("{at}.function"), e);
                ""
            });
            (name.to_owned(), u32::MAX)
        });
        let payload_format = match f.payload_format.as_deref() {
            None | Some("2.0") => PayloadFormat::V2,
            Some("1.0") => PayloadFormat::V1,
            Some(other) => {
                self.err(
                    format!("{at}.payload_format"),
                    format!("{other:?}: expected \"1.0\" or \"2.0\""),
                );
                PayloadFormat::V2
            }
        };
        let simple_responses = f.enable_simple_responses.unwrap_or(false);
        if simple_responses && payload_format == PayloadFormat::V1 {
            self.err(
                format!("{at}.enable_simple_responses"),
                "simple responses need payload format 2.0 (AWS)",
            );
        }
        let exprs: Vec<String> = f
            .identity_source
            .as_ref()
            .map_or(Vec::new(), |s| s.items().to_vec());
        let mut identity_sources = Vec::with_capacity(exprs.len());
        for (i, e) in exprs.iter().enumerate() {
            match IdentitySource::parse(e) {
                Ok(s) => identity_sources.push(s),
                Err(why) => self.err(
                    format!("{at}.identity_source[{i}]"),
                    format!("{e:?}: {why}"),
                ),
            }
        }
        let mut ttl = f.result_ttl.unwrap_or(DEFAULT_RESULT_TTL_S);
        if ttl > MAX_RESULT_TTL_S {
            self.range(&format!("{at}.result_ttl"), ttl, 0, MAX_RESULT_TTL_S);
        }
        if ttl > 0 && exprs.is_empty() {
            if f.result_ttl.is_some() {
                self.warn(
                    format!("{at}.result_ttl"),
                    "no identity_source to key cached answers by: every request calls the authorizer",
                );
            }
            ttl = 0;
        }
        let timeout_ms = f.timeout_ms.unwrap_or(DEFAULT_AUTHORIZER_TIMEOUT_MS);
        self.range(
            &format!("{at}.timeout_ms"),
            timeout_ms,
            1,
            MAX_AUTHORIZER_TIMEOUT_MS,
        );
        RequestAuthorizer {
            uri,
            targets,
            function,
            payload_format,
            simple_responses,
            identity_sources,
            result_ttl: std::time::Duration::from_secs(ttl.min(MAX_RESULT_TTL_S)),
            timeout: std::time::Duration::from_millis(timeout_ms),
        }
    }

    /// How a route is authorized: its `authorizer` and `authorization_type`, consistent with
    /// each other and with the API's authorizers.
    pub(super) fn route_auth(
        &mut self,
        rat: &str,
        route: &RouteFile,
        a: &ApiFile,
        authorizers: &[Authorizer],
    ) -> RouteAuth {
        let found = route
            .authorizer
            .as_ref()
            .map(|name| (name, authorizers.iter().position(|z| &z.name == name)));
        let auth = match (route.authorization_type, found) {
            (_, Some((name, None))) => {
                self.err(
                    format!("{rat}.authorizer"),
                    super::terms::unknown_name(
                        "authorizer",
                        name,
                        "in this API",
                        authorizers.iter().map(|z| z.name.as_str()),
                    ),
                );
                RouteAuth::None
            }
            (Some(AuthorizationType::None) | None, None) => RouteAuth::None,
            (Some(AuthorizationType::AwsIam), None) => RouteAuth::AwsIam,
            (Some(t @ (AuthorizationType::Jwt | AuthorizationType::Custom)), None) => {
                self.err(
                    format!("{rat}.authorizer"),
                    format!("authorization_type {} needs an authorizer", t.name()),
                );
                RouteAuth::None
            }
            (t, Some((name, Some(i)))) => {
                let is_jwt = matches!(authorizers[i].kind, AuthorizerKind::Jwt(_));
                let fits = match t {
                    None => true,
                    Some(AuthorizationType::Jwt) => is_jwt,
                    Some(AuthorizationType::Custom) => !is_jwt,
                    Some(AuthorizationType::None | AuthorizationType::AwsIam) => false,
                };
                if !fits {
                    self.err(
                        format!("{rat}.authorization_type"),
                        format!(
                            "does not fit authorizer {name:?}, a {} authorizer",
                            if is_jwt { "jwt" } else { "request" }
                        ),
                    );
                }
                if is_jwt {
                    RouteAuth::Jwt {
                        authorizer: i as u32,
                        scopes: route.authorization_scopes.clone(),
                    }
                } else {
                    RouteAuth::Custom {
                        authorizer: i as u32,
                    }
                }
            }
        };
        if !route.authorization_scopes.is_empty() && !matches!(auth, RouteAuth::Jwt { .. }) {
            self.err(
                format!("{rat}.authorization_scopes"),
                "scopes apply to routes with a JWT authorizer",
            );
        }
        if route.api_key_required
            && a.api_key_source == ApiKeySource::Authorizer
            && !matches!(auth, RouteAuth::Custom { .. })
        {
            self.err(
                format!("{rat}.api_key_required"),
                "the API reads keys from its authorizer (api_key_source: authorizer): this route needs a request authorizer",
            );
        }
        auth
    }
}

/// Keys are fetched over HTTPS; plain `http://` only from this machine (a local identity
/// provider or a test), where nobody on the network can swap the keys.
fn fetchable_url(url: &str) -> Result<(), &'static str> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("expected an https:// URL");
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err("keys must come over https:// (plain http:// is allowed on loopback only)")
    }
}
