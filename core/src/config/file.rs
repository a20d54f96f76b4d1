//! The configuration document as written by operators: YAML or JSON, names in AWS HTTP API terms.
//!
//! These structs only describe shape. Every field refuses unknown keys so a typo is an error,
//! not a silently ignored setting; meaning (references, ranges, templates) is checked in
//! [`super::check`], which turns a [`ConfigFile`] into the checked [`super::Config`].
//! The admin API takes and returns this same document, so everything here also serializes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub gateway: GatewayFile,
    #[serde(default, skip_serializing_if = "AdminFile::is_default")]
    pub admin: AdminFile,
    #[serde(default)]
    pub apis: Vec<ApiFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<DomainFile>,
    /// Certificates kept in PEM files, named for `gateway.tls` and `domains[]` to use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<crate::tls::CertificateFile>,
    /// IAM principals that may call `aws_iam` routes with SigV4-signed requests.
    #[serde(default, skip_serializing_if = "crate::auth::file::IamFile::is_empty")]
    pub iam: crate::auth::file::IamFile,
    /// Functions the gateway runs itself (the Lambda Runtime API on loopback), for `function`
    /// integrations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionFile>,
    /// Joining other nodes (gossip membership and cluster-wide limits); none: a lone node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::check_cluster::ClusterFile>,
}

/// A function turnpike runs: the processes of a Lambda runtime interface client, fed
/// invocations through the Lambda Runtime API.
/// `{ name: users, command: [python3, -m, awslambdaric, lambda_function.handler] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionFile {
    pub name: String,
    /// The program and its arguments; it finds the Runtime API in `AWS_LAMBDA_RUNTIME_API`.
    /// Exactly one of `command` and `invoke_uri`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// A remote function: an endpoint that speaks Lambda's Invoke API (AWS Lambda API
    /// reference, "Invoke": `POST /2015-03-31/functions/{FunctionName}/invocations`), such as
    /// `https://lambda.us-east-1.amazonaws.com` or a local emulator. Without a path the
    /// function's `name` is the FunctionName; with one (`http://127.0.0.1:9000/2015-03-31/
    /// functions/function/invocations`, the Runtime Interface Emulator's) the path is used
    /// as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoke_uri: Option<String>,
    /// Signs the calls to `invoke_uri` with SigV4 (service `lambda`; the region is the one in
    /// a `lambda.{region}.amazonaws.com` host, else the gateway's). Unsigned without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<FunctionCredentialsFile>,
    /// Where the processes start (default: the gateway's working directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Time one invocation may take (ms, default 3000 as AWS; at most 900000). A runtime that
    /// overruns it is killed and restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Data memory (heap) limit of each process (MiB, default 512; AWS's `MemorySize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Runtime processes, each serving one invocation at a time (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Invocations that may wait for a free process (default 64); more get 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
}

/// `{ access_key_id: AKIA..., secret_file: /etc/turnpike/lambda.secret }`: the key a remote
/// function's calls are signed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionCredentialsFile {
    pub access_key_id: String,
    /// A file holding the secret access key (surrounding whitespace ignored).
    pub secret_file: String,
    /// A file holding the session token of temporary credentials (`X-Amz-Security-Token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_file: Option<String>,
}

/// Listener and connection-level settings shared by every API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayFile {
    /// Addresses to listen on: `host:port` (plain HTTP) or `https://host:port` (TLS).
    pub listen: Vec<String>,
    /// What `https://` listeners present by default (certificate, security policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsFile>,
    /// `auto` (one per CPU) or a number.
    pub workers: Workers,
    /// Time allowed for a request's header block to arrive (slowloris guard).
    pub header_timeout_ms: u64,
    /// How long an idle keep-alive connection is kept open.
    pub idle_timeout_ms: u64,
    /// On SIGTERM, how long in-flight requests get to finish.
    pub drain_timeout_ms: u64,
    /// Largest request header block accepted; larger gets 431.
    pub max_header_bytes: usize,
    /// Most header fields accepted in one request; more gets 431.
    pub max_headers: usize,
    pub upstream: UpstreamFile,
    /// Log filter (`info`, `debug`, `turnpike_proxy=debug,info`); `--log-level` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// The account-level throttle every request of every API takes a token from (AWS's
    /// per-account, per-Region limit): `{ rate_limit: 10000, burst_limit: 5000 }` unless set;
    /// `off` (or `null`) for none.
    #[serde(with = "account_throttle")]
    pub throttle: Option<crate::usage::ThrottleFile>,
    /// The AWS Region the gateway stands for: SigV4 credential scopes and `execute-api` ARNs
    /// (`arn:aws:execute-api:{region}:{account_id}:{api}/{stage}/{METHOD}/{path}`).
    pub region: String,
    /// `$context.accountId` and the account in `execute-api` ARNs (12 digits).
    pub account_id: String,
    /// Peers whose `X-Forwarded-For` is believed when resource policies judge the source
    /// address (CIDRs): a load balancer in front of the gateway.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

/// AWS's default account-level throttle: 10,000 requests per second, bursts of 5,000.
pub const DEFAULT_ACCOUNT_THROTTLE: crate::usage::ThrottleFile = crate::usage::ThrottleFile {
    rate_limit: 10_000.0,
    burst_limit: 5_000,
    scope: crate::cluster::Scope::Node,
};

/// `gateway.throttle`: a throttle, or `off` / `null` / `false` for none (written back as
/// `off`, so a document read back never turns the default on again).
mod account_throttle {
    use std::fmt;

    use serde::{
        Deserialize, Deserializer, Serialize, Serializer,
        de::{self, MapAccess, Visitor, value::MapAccessDeserializer},
    };

    use crate::usage::ThrottleFile;

    pub fn serialize<S: Serializer>(t: &Option<ThrottleFile>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => t.serialize(s),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ThrottleFile>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<ThrottleFile>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("{ rate_limit, burst_limit } or off")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ThrottleFile::deserialize(MapAccessDeserializer::new(map)).map(Some)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "off" => Ok(None),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                match v {
                    false => Ok(None),
                    true => Err(E::invalid_value(de::Unexpected::Bool(v), &self)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V)
    }
}

impl Default for GatewayFile {
    fn default() -> Self {
        Self {
            listen: vec!["0.0.0.0:8080".to_owned()],
            tls: None,
            workers: Workers::Auto,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            drain_timeout_ms: 30_000,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            upstream: UpstreamFile::default(),
            log_level: None,
            throttle: Some(DEFAULT_ACCOUNT_THROTTLE),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// The admin API: where it listens and where it keeps its token and applied configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminFile {
    pub enabled: bool,
    /// Loopback only, unless `allow_remote` says otherwise.
    pub listen: String,
    /// Bearer token file, created (mode 0600) on first start if missing.
    /// Default `/etc/turnpike/admin.token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// Where applied configs are kept. Default `/var/lib/turnpike`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
    /// Serve the admin API on a non-loopback address (it has no TLS yet).
    pub allow_remote: bool,
    /// Serve `/metrics` without the token.
    pub metrics_public: bool,
    /// Applied config versions kept for rollback.
    pub history: usize,
}

impl Default for AdminFile {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9901".to_owned(),
            token_file: None,
            state_dir: None,
            allow_remote: false,
            metrics_public: false,
            history: 20,
        }
    }
}

impl AdminFile {
    pub fn is_default(&self) -> bool {
        *self == AdminFile::default()
    }
}

/// Upstream connection handling (per worker core).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamFile {
    pub connect_timeout_ms: u64,
    /// Idle keep-alive connections kept per worker and per upstream address.
    pub max_idle_per_core: usize,
    /// An idle pooled connection older than this is closed instead of reused.
    pub idle_timeout_ms: u64,
    /// Largest upstream response header block accepted (bytes); larger is a 502. Generous,
    /// and separate from the request limit: origins send long cookies and CSP headers.
    pub max_response_header_bytes: usize,
    /// Most header fields accepted in one upstream response; more is a 502.
    pub max_response_headers: usize,
}

impl Default for UpstreamFile {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5_000,
            max_idle_per_core: 128,
            idle_timeout_ms: 30_000,
            max_response_header_bytes: 64 * 1024,
            max_response_headers: 500,
        }
    }
}

/// `workers: auto` or `workers: 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Workers {
    #[default]
    Auto,
    Count(usize),
}

impl Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Workers::Auto => s.serialize_str("auto"),
            Workers::Count(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Workers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"auto\" or a number of workers from 1 to 1024")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Workers, E> {
                if (1..=1024).contains(&n) {
                    Ok(Workers::Count(n as usize))
                } else {
                    Err(E::custom(format!("{n} workers: expected 1 to 1024")))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Workers, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("{n} workers: expected 1 to 1024"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Workers, E> {
                match s {
                    "auto" => Ok(Workers::Auto),
                    _ => match s.parse::<u64>() {
                        Ok(n) => self.visit_u64(n),
                        Err(_) => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
                    },
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// One API: its integrations, routes and stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    pub name: String,
    #[serde(default)]
    pub protocol: Protocol,
    /// Requests whose Host matches no domain go to the API marked default (else the first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// Largest request body accepted; larger gets 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    #[serde(default)]
    pub integrations: BTreeMap<String, IntegrationFile>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    #[serde(default)]
    pub stages: Vec<StageFile>,
    /// CORS for every route of this API (AWS HTTP API `CorsConfiguration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<crate::cors::CorsFile>,
    /// Overridden gateway responses, keyed by AWS type (`RESOURCE_NOT_FOUND`, `DEFAULT_4XX`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gateway_responses: BTreeMap<String, crate::gateway_response::GatewayResponseFile>,
    /// Where routes with `api_key_required` read the API key (AWS REST `apiKeySource`):
    /// `header`, the `x-api-key` header.
    #[serde(default, skip_serializing_if = "ApiKeySource::is_default")]
    pub api_key_source: ApiKeySource,
    /// The API's authorizers by name (AWS HTTP API `Authorizer`): `jwt` or `request`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorizers: crate::auth::file::AuthorizersFile,
    /// Who may call the API at all, by source address (evaluated before authorizers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<crate::auth::file::ResourcePolicyFile>,
    /// Models by name: JSON Schemas that request validation checks bodies against (AWS REST
    /// `Model`; draft 4 unless the schema's `$schema` names a later draft).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelFile>,
    /// websocket: where a message's route key comes from (AWS `routeSelectionExpression`);
    /// default `$request.body.action`. See [`crate::websocket::route`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_selection_expression: Option<String>,
    /// websocket: connection limits and timeouts (AWS's quotas by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<crate::websocket::api::WebsocketFile>,
}

/// AWS's `ApiKeySourceType`. `AUTHORIZER` comes with authorizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeySource {
    /// The `x-api-key` request header.
    #[default]
    Header,
    /// The `usageIdentifierKey` a request authorizer returns.
    Authorizer,
}

impl ApiKeySource {
    pub fn is_default(&self) -> bool {
        *self == ApiKeySource::default()
    }
}

pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;

fn default_max_body_bytes() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Http,
    /// A WebSocket API: routes `$connect`, `$disconnect`, `$default` and route keys chosen by
    /// the API's route selection expression (see [`crate::websocket`]).
    Websocket,
}

/// An integration: where a matched route's request goes. One flat struct for every type so that
/// errors name the exact field; [`super::check`] refuses fields that do not belong to the type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationFile {
    #[serde(rename = "type")]
    pub kind: IntegrationType,
    /// http_proxy: `http://host:port[/path]`, with `${stageVariables.x}` and `{param}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// http_proxy: time allowed for the backend's response (default 30000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// http_proxy: send the client's Host header instead of the URI's authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_host: Option<bool>,
    /// mock: response status (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// mock: response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// mock: response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// http_proxy with an `https://` uri: how the backend's certificate is verified (AWS
    /// `tlsConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<crate::tls::IntegrationTlsFile>,
    /// function: the function's name in `functions`, or its ARN
    /// (`arn:aws:lambda:us-east-1:123456789012:function:my-function`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// function: the event's shape, `"2.0"` (default) or `"1.0"` (AWS
    /// `PayloadFormatVersion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<String>,
    /// http_proxy and function: changes to the request before it reaches the integration
    /// (AWS HTTP API `requestParameters`): `{"append:header.x-tenant":
    /// "$request.header.tenant", "overwrite:path": "/v2${request.path}"}`. See
    /// [`crate::mapping`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, String>,
    /// http_proxy and function: changes to the integration's response, per status code it
    /// returns (AWS HTTP API `responseParameters`): `{"500": {"overwrite:statuscode": "503",
    /// "append:header.x-error": "$response.header.x-reason"}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, BTreeMap<String, String>>,
    /// http: the method sent to the backend (AWS integration `httpMethod`); default the
    /// request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// http and mock: mapping templates by request content type (AWS `requestTemplates`),
    /// in API Gateway's Velocity subset (see [`crate::template`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_templates: BTreeMap<String, String>,
    /// http and mock: what a content type without a template gets (AWS
    /// `passthroughBehavior`): `when_no_match` (default), `when_no_templates`, `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<crate::transform::PassthroughBehavior>,
    /// http and mock: integration responses, chosen by `selection_pattern` (a regular
    /// expression over the backend's status code; the one without is the default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integration_responses: Vec<IntegrationResponseFile>,
}

/// `{ status: 400, selection_pattern: "4\\d{2}", response_templates: {...},
/// response_parameters: {"method.response.header.X-Error": "integration.response.header.X"} }`
/// (AWS `IntegrationResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationResponseFile {
    /// The status sent to the client (AWS `statusCode`).
    pub status: u16,
    /// A regular expression the whole backend status code must match (AWS
    /// `selectionPattern`); omitted: the default response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_pattern: Option<String>,
    /// Response mapping templates by content type (AWS `responseTemplates`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_templates: BTreeMap<String, String>,
    /// Response headers: `method.response.header.NAME` -> `'static'`,
    /// `integration.response.header.NAME` or `integration.response.body[.JSONPATH]` (AWS
    /// `responseParameters`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, String>,
}

/// An integration's type; AWS's upper-case names are accepted too (`HTTP_PROXY`, `MOCK`, and
/// `AWS_PROXY` for a function: Lambda proxy integration), as `authorization_type` accepts
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationType {
    #[serde(alias = "HTTP_PROXY")]
    HttpProxy,
    /// An HTTP backend reached through mapping templates and integration responses (AWS REST
    /// `HTTP`, the non-proxy "HTTP custom integration").
    #[serde(alias = "HTTP")]
    Http,
    #[serde(alias = "MOCK")]
    Mock,
    /// A function (AWS `AWS_PROXY` to Lambda).
    #[serde(alias = "AWS_PROXY")]
    Function,
}

/// `{ key: "GET /users/{id}", integration: users }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub key: String,
    pub integration: String,
    /// Requests must carry an enabled API key with a usage plan for the stage (AWS
    /// `apiKeyRequired`); others get 403 `INVALID_API_KEY`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_key_required: bool,
    /// The authorizer (a name in the API's `authorizers`) that admits requests to this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<String>,
    /// `none`, `jwt`, `custom` or `aws_iam` (AWS `AuthorizationType`); follows from
    /// `authorizer` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_type: Option<crate::auth::file::AuthorizationType>,
    /// jwt: the token must carry at least one of these scopes (`scope` or `scp` claim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
    /// The model (a name in the API's `models`) a request body must conform to, by content
    /// type (`application/json`, or `$default` for any other), AWS REST `requestModels`. A
    /// body that does not gets 400 `BAD_REQUEST_BODY`; a content type with no model 415.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_models: BTreeMap<String, String>,
    /// Parameters the request must carry: `querystring.NAME`, `header.NAME`, `path.NAME` (or
    /// AWS's `method.request.querystring.NAME`); missing ones get 400
    /// `BAD_REQUEST_PARAMETERS`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_parameters: Vec<String>,
    /// What is validated (AWS's request validator): `all`, `body`, `parameters` or `none`;
    /// by default, whatever `request_models` and `required_parameters` give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_validator: Option<RequestValidatorKind>,
    /// The route's caching on stages with a cache (AWS method cache settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache::RouteCacheFile>,
    /// websocket: `$default` makes the route two-way, the integration's answer going back to
    /// the client (AWS `RouteResponseSelectionExpression`; `$default` is the only value AWS
    /// supports for WebSocket APIs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_response_selection_expression: Option<String>,
}

/// `{ schema: { type: object, required: [name], ... } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// The JSON Schema.
    pub schema: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// AWS's request validators: which parts of a request are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestValidatorKind {
    /// Body and parameters (`validateRequestBody` and `validateRequestParameters`).
    All,
    Body,
    Parameters,
    None,
}

/// `{ name: prod, variables: { backend: "127.0.0.1:9000" } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageFile {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// The stage's access log (AWS `accessLogSettings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLogFile>,
    /// A client certificate (id from `/v1/clientcertificates`) presented to every `https://`
    /// backend of this stage (AWS REST `clientCertificateId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// The stage's default route throttle: each route of the stage gets a bucket with these
    /// limits (AWS HTTP API `DefaultRouteSettings`, REST method throttling `*/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<crate::usage::ThrottleFile>,
    /// Per-route settings on this stage, keyed by route key (`GET /pets`), overriding the
    /// stage's (AWS `RouteSettings`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub route_settings: BTreeMap<String, RouteSettingsFile>,
    /// The stage cache (AWS `cacheClusterEnabled` and its settings), kept per core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache::StageCacheFile>,
}

/// `{ throttle: { rate_limit: 5, burst_limit: 10 } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettingsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<crate::usage::ThrottleFile>,
}

/// `{ destination: /var/log/turnpike/access.log, format: json }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogFile {
    /// An absolute file path, `stdout` or `syslog`.
    pub destination: String,
    /// `clf`, `json`, `xml`, `csv` (AWS's example formats) or a template of `$context`
    /// variables. Default `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
}

fn default_log_format() -> String {
    "json".to_owned()
}

/// A custom domain: Host name (exact or `*.` wildcard) and its API mappings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainFile {
    pub name: String,
    #[serde(default)]
    pub mappings: Vec<MappingFile>,
    /// The certificate `https://` listeners present for this name (SNI): a `certificates[]`
    /// name or a stored certificate's id (AWS `certificateArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// AWS security policy name (`TLS_1_2`, `SecurityPolicy_TLS13_1_3_2025_09`); default
    /// `gateway.tls.security_policy`, else `TLS_1_2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_policy: Option<String>,
    /// Mutual TLS: clients must present a certificate chaining to this truststore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual_tls: Option<crate::tls::MutualTlsFile>,
}

/// `{ api: shop, stage: prod, base_path: "v1" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub api: String,
    pub stage: String,
    #[serde(default)]
    pub base_path: String,
}
