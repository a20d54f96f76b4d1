//! REST non-proxy integrations (see [`turnpike_core::transform`]): an `http` integration's
//! request rendered by its request template (or passed through), sent whole, and its
//! response chosen by integration response and rendered; a templated `mock`'s request
//! template naming the status that chooses the integration response. The answer is a whole
//! response the exchange writes like a function's.

use turnpike_core::{
    function::response::FunctionResponse,
    mapping::{Action, Edit},
    template::{MappingTemplate, Overrides, TemplateInput},
    transform::{IntegrationResponse, RequestBody, Transform},
};

use crate::{
    auth::Refused,
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError, Side},
    exchange::RequestCtx,
    plan::{ProxyPlan, RoutePlan},
    worker::Worker,
};

/// The largest backend response a template integration reads, bytes (API Gateway's payload
/// limit is 10 MB).
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// How a templated integration ended.
pub enum Outcome {
    /// The response to send.
    Answer(FunctionResponse),
    /// Refused before the integration was called (415, or a body that could not be read).
    Refused(Refused),
    /// The integration failed, or its templates did (500/502/504).
    Failed(GatewayError),
}

const fn config_error(reason: &'static str) -> GatewayError {
    GatewayError {
        kind: ErrorKind::ApiConfiguration,
        side: Side::Internal,
        reason,
    }
}

/// The request as templates read it (`$input.params()`, `$stageVariables`), owned: the body
/// may still be read into the buffer it would borrow.
struct Params {
    path: Vec<(Box<str>, Box<str>)>,
    query: Vec<(String, String)>,
    header: Vec<(String, String)>,
    vars: Vec<(String, String)>,
}

impl Params {
    fn of(
        worker: &Worker,
        st: &RequestState,
        plan: &RoutePlan,
        path: &[(Box<str>, Box<str>)],
    ) -> Params {
        let buf = &st.rbuf;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let raw_query = st.head.query.map_or(String::new(), |q| text(q.get(buf)));
        let snap = worker.snapshot();
        Params {
            path: path.to_vec(),
            query: turnpike_core::auth::request_authorizer::query_pairs(&raw_query).collect(),
            header: st
                .head
                .headers
                .iter()
                .map(|h| (text(h.name.get(buf)), text(h.value.get(buf))))
                .collect(),
            vars: snap.stage_of(plan).map_or(Vec::new(), |s| {
                s.variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        }
    }
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Renders `template` over `body` with the request's parameters and `$context`.
#[allow(clippy::too_many_arguments)]
fn render(
    c: &Client,
    st: &RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
    p: &Params,
    template: &MappingTemplate,
    body: &[u8],
    status: Option<u16>,
) -> Result<(Vec<u8>, Overrides), GatewayError> {
    let path: Vec<(&str, &str)> = p.path.iter().map(|(k, v)| (&**k, &**v)).collect();
    let (query, header, vars) = (pairs(&p.query), pairs(&p.header), pairs(&p.vars));
    let ctx = crate::exchange::context(c, st, x, plan);
    let input = TemplateInput {
        body,
        path: &path,
        querystring: &query,
        header: &header,
        stage_variables: &vars,
        context: &ctx,
        status,
    };
    let mut out = Vec::with_capacity(body.len() + 256);
    match template.render(&input, &mut out) {
        Ok(o) => Ok((out, o)),
        Err(e) => {
            tracing::debug!(error = %e, "mapping template failed");
            Err(config_error("a mapping template failed to render"))
        }
    }
}

/// Reads the request body whole and makes the integration request's body: the request
/// template for its content type rendered (with the overrides it set), or the body passed
/// through, or the 415 the passthrough behaviour gives.
async fn request_body(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    t: &Transform,
    path_params: &[(Box<str>, Box<str>)],
) -> Result<(Params, Vec<u8>, Overrides), Outcome> {
    let body = match crate::body::read_whole_any(worker, c, st, plan.body_limit).await {
        Ok(b) => b,
        Err(r) => return Err(Outcome::Refused(r)),
    };
    x.request_length = body.len() as u64;
    let params = Params::of(worker, st, plan, path_params);
    let content_type = st
        .head
        .find(&st.rbuf, b"content-type")
        .map(|s| s.get(&st.rbuf));
    let (out, overrides) = match t.request_body(content_type) {
        RequestBody::Template(_, template) => {
            render(c, st, x, plan, &params, template, &st.rbuf[body], None)
                .map_err(Outcome::Failed)?
        }
        RequestBody::Passthrough => (st.rbuf[body].to_vec(), Overrides::default()),
        RequestBody::Unsupported => {
            return Err(Outcome::Refused(Refused::new(
                ErrorKind::UnsupportedMediaType,
                "no request template for the content type and passthrough_behavior refuses it",
            )));
        }
    };
    Ok((params, out, overrides))
}

/// Calls an `http` integration: `head` is the upstream request head already written (and
/// parameter-mapped) for the client's request.
#[allow(clippy::too_many_arguments)]
pub async fn call_http(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    proxy: &ProxyPlan,
    t: &Transform,
    mut head: Vec<u8>,
    path_params: &[(Box<str>, Box<str>)],
) -> Outcome {
    let (params, request_body, overrides) =
        match request_body(worker, c, st, x, plan, t, path_params).await {
            Ok(r) => r,
            Err(o) => return o,
        };
    // The head says the rendered body's length, the integration's method, and what the
    // template overrode.
    let mut edits = vec![Edit {
        action: Action::Remove,
        name: "transfer-encoding".into(),
        value: String::new(),
    }];
    // A body-less GET (or HEAD, DELETE, OPTIONS) goes without a Content-Length, as a client
    // would send it; anything else says its length.
    let method = proxy
        .method
        .as_deref()
        .map_or_else(|| st.head.method(&st.rbuf), str::as_bytes);
    let bodiless = matches!(method, b"GET" | b"HEAD" | b"DELETE" | b"OPTIONS");
    edits.push(Edit {
        action: if request_body.is_empty() && bodiless {
            Action::Remove
        } else {
            Action::Overwrite
        },
        name: "Content-Length".into(),
        value: request_body.len().to_string(),
    });
    edits.extend(overrides.request_header.iter().map(|(k, v)| Edit {
        action: Action::Overwrite,
        name: k.as_str().into(),
        value: v.clone(),
    }));
    let query: Vec<Edit> = overrides
        .querystring
        .iter()
        .map(|(k, v)| Edit {
            action: Action::Overwrite,
            name: k.as_str().into(),
            value: v.clone(),
        })
        .collect();
    // `requestOverride.path.NAME` replaces a path parameter of the integration URI.
    let path = match (&proxy.target.path, overrides.path.is_empty()) {
        (Some(template), false) => {
            let mut raw = Vec::new();
            template.render_with(
                |name| {
                    overrides
                        .path
                        .iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.as_bytes())
                        .or_else(|| {
                            path_params
                                .iter()
                                .find(|(k, _)| &**k == name)
                                .map(|(_, v)| v.as_bytes())
                        })
                },
                &mut raw,
            );
            Some(turnpike_core::mapping::path_text(&raw))
        }
        _ => None,
    };
    crate::mapping::edit_upstream_head(
        &mut head,
        &turnpike_core::mapping::Edits {
            headers: edits,
            query,
            path,
            ..Default::default()
        },
    );
    if let Some(m) = &proxy.method {
        set_method(&mut head, m.as_bytes());
    }
    head.extend_from_slice(&request_body);

    let started = std::time::Instant::now();
    let called = crate::upstream::call::call(
        worker,
        c,
        &proxy.target,
        head,
        proxy.timeout,
        MAX_RESPONSE_BYTES,
    )
    .await;
    x.integration_micros = Some(started.elapsed().as_micros() as u64);
    let called = match called {
        Ok(called) => called,
        Err(e) => return Outcome::Failed(e),
    };
    x.integration_status = Some(called.status);
    let content_type = called.header(b"content-type").map(<[u8]>::to_vec);
    respond_with(
        c,
        st,
        x,
        plan,
        &params,
        t,
        called.status,
        &called.body,
        |name| {
            called
                .header(name.as_bytes())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        },
        content_type.as_deref(),
    )
}

/// Answers a templated `mock`: the request template's `statusCode` (200 without one) chooses
/// the integration response (AWS "Set up mock integrations").
#[allow(clippy::too_many_arguments)]
pub async fn call_mock(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    t: &Transform,
    headers: &[(String, String)],
    path_params: &[(Box<str>, Box<str>)],
) -> Outcome {
    let (params, rendered, _) = match request_body(worker, c, st, x, plan, t, path_params).await {
        Ok(r) => r,
        Err(o) => return o,
    };
    let status = if rendered.iter().all(u8::is_ascii_whitespace) {
        200
    } else {
        match serde_json::from_slice::<serde_json::Value>(&rendered)
            .ok()
            .and_then(|v| v.get("statusCode").and_then(status_of))
        {
            Some(s) => s,
            None => {
                return Outcome::Failed(config_error(
                    "a mock's request template must give {\"statusCode\": NNN}",
                ));
            }
        }
    };
    x.integration_status = Some(status);
    let found = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let outcome = respond_with(c, st, x, plan, &params, t, status, b"", found, None);
    match outcome {
        Outcome::Answer(mut a) => {
            for (k, v) in headers {
                if !a.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(k)) {
                    a.headers.push((k.clone(), v.clone()));
                }
            }
            Outcome::Answer(a)
        }
        other => other,
    }
}

/// `200` or `"200"`.
fn status_of(v: &serde_json::Value) -> Option<u16> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    u16::try_from(n).ok().filter(|s| (100..=599).contains(s))
}

/// The client's response for a backend answer (`status`, `body`; `header`: its headers by
/// name; `content_type`: its Content-Type): the integration response for the status, its
/// template for the client's Accept, its header mappings, and the template's overrides.
/// Without integration responses the backend's status, content type and body pass.
#[allow(clippy::too_many_arguments)]
fn respond_with(
    c: &Client,
    st: &RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
    params: &Params,
    t: &Transform,
    status: u16,
    body: &[u8],
    header: impl Fn(&str) -> Option<String>,
    content_type: Option<&[u8]>,
) -> Outcome {
    let passthrough = |status| {
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push((
                "Content-Type".to_owned(),
                String::from_utf8_lossy(ct).into_owned(),
            ));
        }
        FunctionResponse {
            status,
            headers,
            cookies: Vec::new(),
            body: body.to_vec(),
        }
    };
    if !t.has_responses() {
        return Outcome::Answer(passthrough(status));
    }
    let Some(r) = t.response_for(status) else {
        tracing::debug!(
            status,
            "no integration response matches and none is the default"
        );
        return Outcome::Failed(config_error(
            "no integration response matches the backend's status and none is the default",
        ));
    };
    let accept = st.head.find(&st.rbuf, b"accept").map(|s| s.get(&st.rbuf));
    let mut answer = match r.templates.for_accept(accept) {
        Some((ct, template)) => {
            match render(c, st, x, plan, params, template, body, Some(status)) {
                Ok((out, o)) => {
                    let mut a = FunctionResponse {
                        status: o
                            .status
                            .filter(|s| (200..=599).contains(s))
                            .unwrap_or(r.status),
                        headers: vec![("Content-Type".to_owned(), ct.to_owned())],
                        cookies: Vec::new(),
                        body: out,
                    };
                    mapped_headers(r, &mut a, &header, body);
                    for (k, v) in o.header {
                        set_header(&mut a, k, v);
                    }
                    return Outcome::Answer(a);
                }
                Err(e) => return Outcome::Failed(e),
            }
        }
        None => passthrough(r.status),
    };
    mapped_headers(r, &mut answer, &header, body);
    Outcome::Answer(answer)
}

fn mapped_headers(
    r: &IntegrationResponse,
    a: &mut FunctionResponse,
    header: &impl Fn(&str) -> Option<String>,
    body: &[u8],
) {
    let json = || serde_json::from_slice(body).ok();
    for (name, value) in &r.headers {
        if let Some(v) = value.resolve(header, body, json) {
            set_header(a, name.to_string(), v);
        }
    }
}

/// Sets a response header, replacing one of the same name; names and values that cannot go
/// on a header line are dropped.
fn set_header(a: &mut FunctionResponse, name: String, value: String) {
    if name.is_empty()
        || !name.bytes().all(turnpike_core::h1::head::is_tchar)
        || value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f)
        || turnpike_core::mapping::reserved(&name)
            .is_some_and(|r| !r.starts_with("access-control-"))
    {
        return;
    }
    a.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
    a.headers.push((name, value));
}

/// Replaces the method of a request head's request line.
fn set_method(head: &mut Vec<u8>, method: &[u8]) {
    if let Some(sp) = memchr::memchr(b' ', head) {
        head.splice(..sp, method.iter().copied());
    }
}
