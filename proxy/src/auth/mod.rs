//! Authorization on the data plane: the I/O around `turnpike_core::auth`'s decisions, in
//! DESIGN.md's order: the API's resource policy (before CORS), then the route's authorizer
//! (after CORS, before throttles).
//!
//! - [`jwks`]: key sets for JWT authorizers, fetched by a thread of their own;
//! - [`cache`]: the per-core caches of verified tokens and authorizer answers;
//! - [`request`]: request ("Lambda") authorizers called over HTTP;
//! - [`iam`]: SigV4 against the gateway's IAM credentials;
//! - this file: what a route plan holds, the JWT step, the resource policy, and the refusals.
//!
//! Hot path: a cached JWT or authorizer answer costs a hash and a map lookup; nothing here
//! blocks or takes a lock. A route with no authorizer and an API with no resource policy run
//! none of this.

pub mod cache;
pub mod compile;
pub mod iam;
pub mod jwks;
pub mod request;

use std::{rc::Rc, sync::Arc};

use turnpike_core::auth::{
    jwt::{self, JwtRules, VerifiedJwt},
    policy::{self, CidrSet, ResourcePolicy},
    request_authorizer::AuthorizerAnswer,
};

use crate::{
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    plan::RoutePlan,
    worker::Worker,
};

pub use self::{iam::IamPlan, request::CustomPlan};

/// How a route plan authorizes its requests.
pub enum PlanAuth {
    None,
    Jwt(Arc<JwtPlan>),
    Custom(Arc<CustomPlan>),
    Iam(Arc<IamPlan>),
    /// The route names an authorizer that does not fit it (the config check prevents this):
    /// requests get 500 rather than pass unauthorized.
    Broken,
}

/// A JWT authorizer as one route uses it.
pub struct JwtPlan {
    /// [`turnpike_core::auth::model::Authorizer::uid`]: keys the verified-token cache.
    pub uid: u64,
    /// The header the token is read from, lower-case.
    pub header: Box<[u8]>,
    pub rules: JwtRules,
    pub keys: Arc<jwks::JwksSlot>,
    /// The route's scopes: the token needs one of them (none: any valid token).
    pub scopes: Box<[Box<str>]>,
}

/// Who the caller is, once an authorizer admitted them: `$context.authorizer.*` and
/// `$context.identity.*`.
pub enum Authorized {
    Jwt(Rc<VerifiedJwt>),
    Custom(Rc<AuthorizerAnswer>),
    Iam {
        access_key: Box<str>,
        principal: Arc<str>,
    },
}

impl turnpike_core::context::AuthorizerValues for Authorized {
    fn claim(&self, name: &str) -> Option<&str> {
        match self {
            Authorized::Jwt(v) => v.claim(name),
            _ => None,
        }
    }

    fn property(&self, name: &str) -> Option<&str> {
        match self {
            Authorized::Custom(a) => a
                .context
                .iter()
                .find(|(k, _)| &**k == name)
                .map(|(_, v)| &**v),
            _ => None,
        }
    }
}

impl Authorized {
    /// `$context.authorizer.principalId`.
    pub fn principal_id(&self) -> Option<&str> {
        match self {
            Authorized::Custom(a) => a.principal_id.as_deref(),
            Authorized::Jwt(v) => v.claim("sub"),
            Authorized::Iam { .. } => None,
        }
    }
}

/// A refused request: the error that answers it and, when AWS's body names details (a
/// SigV4 time window, a resource ARN), the message that replaces the built-in one.
pub struct Refused {
    pub error: GatewayError,
    pub message: Option<Box<str>>,
    pub challenge: Option<&'static str>,
    /// Who the caller is when that is known but not enough (a valid token without the
    /// route's scopes): their claims still reach the access log.
    pub who: Option<Authorized>,
}

impl Refused {
    pub(crate) fn new(kind: ErrorKind, reason: &'static str) -> Refused {
        Refused {
            error: GatewayError::client(kind, reason),
            message: None,
            challenge: None,
            who: None,
        }
    }

    fn unauthorized(reason: &'static str, token_sent: bool) -> Refused {
        Refused {
            challenge: Some(if token_sent {
                "Bearer error=\"invalid_token\""
            } else {
                "Bearer"
            }),
            ..Refused::new(ErrorKind::Unauthorized, reason)
        }
    }

    pub(crate) fn with_message(mut self, message: impl Into<Box<str>>) -> Refused {
        self.message = Some(message.into());
        self
    }
}

/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}` of this request
/// (AWS's `routeArn` / `methodArn`; the path below the stage, without its leading `/`). On a
/// WebSocket API, `.../{api}/{stage}/{route key}` (`.../chat/prod/$connect`), as AWS gives a
/// WebSocket `$connect` authorizer ("Control access to WebSocket APIs with Lambda REQUEST
/// authorizers"); its `@connections` calls keep the HTTP form
/// (`.../{stage}/POST/@connections/{id}`).
pub fn request_arn(worker: &Worker, st: &RequestState, plan: &RoutePlan, path: &[u8]) -> String {
    let snap = worker.snapshot();
    let auth = &snap.config.auth;
    let websocket = snap
        .config
        .apis
        .get(plan.api as usize)
        .is_some_and(|a| a.websocket.is_some())
        && !path.trim_ascii_start().starts_with(b"@connections/")
        && !path.starts_with(b"/@connections/");
    if websocket {
        return format!(
            "arn:aws:execute-api:{}:{}:{}/{}/{}",
            auth.region, auth.account_id, plan.api_name, plan.stage_name, plan.route_key
        );
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let path = text(path);
    policy::method_arn(
        &auth.region,
        &auth.account_id,
        &plan.api_name,
        &plan.stage_name,
        &text(st.head.method(&st.rbuf)),
        path.strip_prefix('/').unwrap_or(&path),
    )
}

/// The API's resource policy on the caller's address (the peer, or the client a trusted
/// proxy names in `X-Forwarded-For`).
pub fn check_resource_policy(
    worker: &Worker,
    c: &Client,
    st: &RequestState,
    plan: &RoutePlan,
    policy: &ResourcePolicy,
    trusted: &CidrSet,
    path: &[u8],
) -> Result<(), Refused> {
    let buf = &st.rbuf;
    // The last X-Forwarded-For line is the one the nearest proxy wrote or appended to.
    let xff = st
        .head
        .headers
        .iter()
        .rev()
        .find(|h| h.name.get(buf).eq_ignore_ascii_case(b"x-forwarded-for"))
        .map(|h| h.value.get(buf));
    let ip = policy::client_ip(c.info.ip, xff, trusted);
    if policy.admits(ip) {
        return Ok(());
    }
    let arn = request_arn(worker, st, plan, path);
    Err(Refused::new(
        ErrorKind::AccessDenied,
        "resource policy denies the source address",
    )
    .with_message(policy::anonymous_denied_message(&arn)))
}

/// A JWT authorizer's step: the token from its header, verified (or found in this core's
/// cache), then the route's scopes.
pub fn check_jwt(
    worker: &Worker,
    st: &RequestState,
    x: &RequestCtx,
    plan: &JwtPlan,
) -> Result<Authorized, Refused> {
    let buf = &st.rbuf;
    let Some(value) = st.head.find(buf, &plan.header) else {
        return Err(Refused::unauthorized("no token", false));
    };
    let Some(token) = jwt::token_from_header(value.get(buf)) else {
        return Err(Refused::unauthorized("no token", false));
    };
    let now_s = x.epoch_ms / 1000;
    let (keys, version) = plan.keys.keys();
    let verified = match worker.auth_cache.jwt(plan.uid, token, version, now_s) {
        Some(v) => v,
        None => {
            let Some(keys) = keys else {
                return Err(Refused::unauthorized(
                    "the issuer's keys are not fetched yet",
                    true,
                ));
            };
            match jwt::verify(token, &keys, &plan.rules, now_s) {
                Ok(v) => worker
                    .auth_cache
                    .keep_jwt(plan.uid, token, version, v, now_s),
                Err(e) => {
                    if e.is_unknown_kid() {
                        plan.keys.report_unknown_kid();
                    }
                    tracing::debug!(error = %e, "JWT refused");
                    return Err(Refused::unauthorized("invalid token", true));
                }
            }
        }
    };
    if !verified.has_scopes(&plan.scopes) {
        return Err(Refused {
            who: Some(Authorized::Jwt(verified)),
            ..Refused::new(
                ErrorKind::AccessDenied,
                "the token has none of the route's scopes",
            )
        });
    }
    Ok(Authorized::Jwt(verified))
}

/// Runs the route's authorizer: the authorization step's one entry point. `path`: where the
/// path below the stage is in the read buffer; `params`: the matched path parameters.
pub async fn authorize(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
    path: &std::ops::Range<usize>,
    params: &[(Box<str>, Box<str>)],
) -> Result<Authorized, Refused> {
    match &plan.auth {
        PlanAuth::None => Err(Refused::new(ErrorKind::AccessDenied, "no authorizer")),
        PlanAuth::Broken => Err(Refused::new(
            ErrorKind::AuthorizerConfiguration,
            "the route's authorizer does not fit it",
        )),
        PlanAuth::Jwt(p) => check_jwt(worker, st, x, p),
        PlanAuth::Custom(p) => {
            let input = request::CallInput {
                path: &st.rbuf[path.clone()],
                params,
            };
            request::check_custom(worker, c, st, x, plan, p, input).await
        }
        PlanAuth::Iam(p) => {
            let body = crate::body::read_whole(worker, c, st, plan.body_limit).await?;
            let body = body.map(|r| &st.rbuf[r]);
            iam::check_iam(worker, st, x, plan, p, &st.rbuf[path.clone()], body)
        }
    }
}
