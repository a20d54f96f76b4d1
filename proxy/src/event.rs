//! The facts of a request as AWS events carry them (a request authorizer's event, a function's
//! proxy event), read from the parsed head, the route plan and the connection. Borrowed
//! views are built here once so both event builders take the same values.

use turnpike_core::auth::request_authorizer::RequestFacts;

use crate::{
    conn::{Client, RequestState},
    exchange::RequestCtx,
    plan::RoutePlan,
    worker::Worker,
};

fn text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// A Host header's name without its port (`api.example.com:8080` -> `api.example.com`), as
/// AWS's `domainName` carries it.
fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            if name.starts_with('[') || !name.contains(':') {
                name
            } else {
                host
            }
        }
        _ => host,
    }
}

/// Calls `f` with the request's facts. `path`: the path below the stage (for the ARN);
/// `params`: the matched path parameters; `edits`: the parameter mapping's changes to the
/// headers, query and path (a function's event carries the mapped request). Allocates the
/// header and variable lists: for authorizer calls and function invocations only, never the
/// plain proxy path.
#[allow(clippy::too_many_arguments)]
pub fn with_facts<R>(
    worker: &Worker,
    c: &Client,
    st: &RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
    path: &[u8],
    params: &[(Box<str>, Box<str>)],
    edits: Option<&turnpike_core::mapping::Edits>,
    f: impl FnOnce(&RequestFacts<'_>) -> R,
) -> R {
    let snap = worker.snapshot();
    let stage = snap.stage_of(plan);
    let buf = &st.rbuf;
    let mut headers: Vec<(&str, &str)> = st
        .head
        .headers
        .iter()
        .filter_map(|h| Some((text(h.name.get(buf))?, text(h.value.get(buf))?)))
        .collect();
    let raw_query = st.head.query.and_then(|q| text(q.get(buf))).unwrap_or("");
    let mut mapped_query = String::new();
    let mut mapped_path = None;
    if let Some(e) = edits {
        turnpike_core::mapping::edit_pairs(&mut headers, &e.headers);
        if !e.query.is_empty() {
            turnpike_core::mapping::edit_query(raw_query, &e.query, &mut mapped_query);
        }
        mapped_path = e.path.as_deref();
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (&**k, &**v)).collect();
    let stage_vars: Vec<(&str, &str)> = stage.map_or(Vec::new(), |s| {
        s.variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    });
    let ip = String::from_utf8_lossy(c.info.ip_text()).into_owned();
    let arn = crate::auth::request_arn(worker, st, plan, path);
    let facts = RequestFacts {
        method: text(st.head.method(buf)).unwrap_or("GET"),
        path: mapped_path.unwrap_or_else(|| {
            text(if st.head.path.is_empty() {
                b"/"
            } else {
                st.head.path.get(buf)
            })
            .unwrap_or("/")
        }),
        raw_query: if edits.is_some_and(|e| !e.query.is_empty()) {
            &mapped_query
        } else {
            raw_query
        },
        headers: &headers,
        path_parameters: &params,
        stage_variables: &stage_vars,
        route_key: &plan.route_key,
        stage: &plan.stage_name,
        api_id: &plan.api_name,
        account_id: &snap.config.auth.account_id,
        domain_name: st
            .head
            .host
            .and_then(|h| text(h.get(buf)))
            .map_or("", without_port),
        request_id: x.request_id.as_str(),
        source_ip: &ip,
        user_agent: st
            .head
            .find(buf, b"user-agent")
            .and_then(|s| text(s.get(buf)))
            .unwrap_or(""),
        protocol: if st.head.minor_version == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        },
        time_epoch_ms: x.epoch_ms,
        route_arn: &arn,
    };
    f(&facts)
}
