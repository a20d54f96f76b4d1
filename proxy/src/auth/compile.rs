//! An API's authorizers compiled for its route plans: JWT authorizers bound to their key
//! slots, request authorizers to each stage's resolved target, IAM routes to the gateway's
//! credentials. Runs when a snapshot is built (DNS lookups happen here, never on a worker).

use std::sync::Arc;

use turnpike_core::{
    auth::{
        jwt::JwtRules,
        model::{AuthSettings, AuthorizerKind, RouteAuth},
    },
    config::{Api, ConfigError, Route},
    route::Params,
};

use super::{CustomPlan, IamPlan, JwtPlan, PlanAuth, jwks};
use crate::snapshot::proxy_target;

/// What an API's routes need to build their [`PlanAuth`].
pub struct ApiAuth {
    /// Per authorizer: the JWT parts, or per stage the request authorizer's plan.
    authorizers: Vec<Compiled>,
    iam: Option<Arc<IamPlan>>,
}

enum Compiled {
    Jwt {
        uid: u64,
        header: Box<[u8]>,
        issuer: String,
        audience: Vec<String>,
        keys: Arc<jwks::JwksSlot>,
    },
    /// One per stage.
    Custom(Vec<Arc<CustomPlan>>),
}

impl ApiAuth {
    pub fn compile(
        a: usize,
        api: &Api,
        settings: &AuthSettings,
        functions: &[turnpike_core::config::FunctionSpec],
        errors: &mut Vec<ConfigError>,
    ) -> ApiAuth {
        let authorizers = api
            .authorizers
            .iter()
            .map(|z| match &z.kind {
                AuthorizerKind::Jwt(j) => Compiled::Jwt {
                    uid: z.uid,
                    header: j.header.as_bytes().into(),
                    issuer: j.issuer.clone(),
                    audience: j.audience.clone(),
                    keys: jwks::slot(&j.keys),
                },
                AuthorizerKind::Request(r) => {
                    let at = format!("apis[{a}].authorizers.{}", z.name);
                    Compiled::Custom(
                        api.stages
                            .iter()
                            .enumerate()
                            .map(|(s, stage)| {
                                // A function authorizer has no HTTP target.
                                let target = match r.targets.get(s) {
                                    Some(Ok(t)) => proxy_target(&at, t, None, stage, errors),
                                    Some(Err(e)) => Err(Arc::from(e.as_str())),
                                    None => Err(Arc::from("no HTTP endpoint")),
                                };
                                let request_target = target.as_ref().map_or_else(
                                    |_| Box::from(&b"/"[..]),
                                    |t| {
                                        let mut line = Vec::new();
                                        match &t.path {
                                            Some(p) => p.render_into(&Params::EMPTY, &mut line),
                                            None => line.push(b'/'),
                                        }
                                        if let Some(q) = &t.query {
                                            line.push(b'?');
                                            line.extend_from_slice(q);
                                        }
                                        line.into_boxed_slice()
                                    },
                                );
                                Arc::new(CustomPlan {
                                    uid: z.uid,
                                    target,
                                    request_target,
                                    function: r.function.as_ref().and_then(|(_, i)| {
                                        functions
                                            .get(*i as usize)
                                            .map(|spec| crate::function::handle(spec, *i, errors))
                                    }),
                                    format: r.payload_format,
                                    simple_responses: r.simple_responses,
                                    sources: r.identity_sources.clone().into(),
                                    ttl_ms: r.result_ttl.as_millis() as u64,
                                    timeout: r.timeout,
                                })
                            })
                            .collect(),
                    )
                }
            })
            .collect();
        let iam = api
            .routes
            .iter()
            .any(|r| matches!(r.auth, RouteAuth::AwsIam))
            .then(|| {
                Arc::new(IamPlan {
                    credentials: settings.iam.clone().into(),
                    region: settings.region.as_str().into(),
                })
            });
        ApiAuth { authorizers, iam }
    }

    /// The authorization of `route` in stage `stage`.
    pub fn for_route(&self, stage: usize, route: &Route) -> PlanAuth {
        match &route.auth {
            RouteAuth::None => PlanAuth::None,
            RouteAuth::AwsIam => self.iam.clone().map_or(PlanAuth::Broken, PlanAuth::Iam),
            RouteAuth::Jwt { authorizer, scopes } => {
                match &self.authorizers[*authorizer as usize] {
                    Compiled::Jwt {
                        uid,
                        header,
                        issuer,
                        audience,
                        keys,
                    } => PlanAuth::Jwt(Arc::new(JwtPlan {
                        uid: *uid,
                        header: header.clone(),
                        rules: JwtRules {
                            issuer: issuer.clone(),
                            audience: audience.clone(),
                        },
                        keys: keys.clone(),
                        scopes: scopes.iter().map(|s| s.as_str().into()).collect(),
                    })),
                    Compiled::Custom(_) => PlanAuth::Broken,
                }
            }
            RouteAuth::Custom { authorizer } => match &self.authorizers[*authorizer as usize] {
                Compiled::Custom(per_stage) => PlanAuth::Custom(per_stage[stage].clone()),
                Compiled::Jwt { .. } => PlanAuth::Broken,
            },
        }
    }
}
