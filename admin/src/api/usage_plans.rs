//! `/v1/usageplans`: usage plans, their keys and their usage (AWS `usageplans`,
//! `usageplans/{id}/keys`, `usageplans/{id}/usage`), requests to responses.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/usageplans` | 200 `{"items": [..]}` |
//! | `POST /v1/usageplans` `{name, description?, api_stages?, throttle?, quota?, tags?}` | 201; 400 naming the field (`api_stages[0].stage`) |
//! | `GET /v1/usageplans/{id}` | 200; 404 |
//! | `PUT /v1/usageplans/{id}` (whole plan) / `PATCH` (JSON merge patch) | 200; 400; 404; 409 when a key of the plan would get two plans for a stage |
//! | `DELETE /v1/usageplans/{id}` | 204 (its associations and counters go too); 404 |
//! | `GET /v1/usageplans/{id}/keys?limit=&position=` | 200 `{"items": [{id, name, enabled}], "position"?}` |
//! | `POST /v1/usageplans/{id}/keys` `{key_id}` | 201; 404; 409 naming the plan that already covers a stage |
//! | `DELETE /v1/usageplans/{id}/keys/{key_id}` | 204; 404 |
//! | `GET /v1/usageplans/{id}/usage?key=&start_date=&end_date=` | 200 `{usage_plan_id, start_date, end_date, items: {key_id: [[used, remaining], ..]}}` |

use serde::Deserialize;
use serde_json::{Value, json};
use turnpike_core::config::ConfigError;

use super::{
    Response, State,
    api_keys::{invalid, no_key, page, query_param, remove_assoc_rows},
    certificates::{now_unix, store_failed},
};
use crate::{
    db::{
        Table,
        ids::{is_api_key_id, is_usage_plan_id, usage_plan_id},
    },
    plane::DataPlane,
    resources::merge_patch,
    usage_plans::{
        AssocError,
        persist::{AssocRecord, assoc_id},
        records::{
            ApiKeyRecord, PlanBody, UsagePlanRecord, check_plan, format_day, parse_body, parse_day,
            plan_body_json, plan_json,
        },
    },
};

/// Longest usage report, in days.
const MAX_REPORT_DAYS: u32 = 366;

/// `POST /v1/usageplans/{id}/keys`: AWS's `keyId` is accepted too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddKey {
    #[serde(alias = "keyId")]
    key_id: String,
    /// AWS's `keyType`: only `API_KEY` exists.
    #[serde(default, alias = "keyType")]
    key_type: Option<String>,
}

pub(super) fn usage_plans<P: DataPlane>(st: &mut State<P>, req: &super::Request) -> Response {
    let rest = req.path["/v1/usageplans".len()..]
        .strip_prefix('/')
        .unwrap_or("");
    let parts: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    if let Some(id) = parts.first()
        && (!is_usage_plan_id(id) || st.usage.plan(id).is_none())
    {
        return no_plan(id);
    }
    match (req.method, parts.as_slice()) {
        ("GET" | "HEAD", []) => {
            let items: Vec<Value> = st.usage.plans().map(|(id, r)| plan_json(id, r)).collect();
            Response::json(200, &json!({ "items": items }))
        }
        ("POST", []) => create(st, req),
        ("GET" | "HEAD", [id]) => show(st, id),
        ("PUT", [id]) => replace(st, id, req, false),
        ("PATCH", [id]) => replace(st, id, req, true),
        ("DELETE", [id]) => delete(st, id),
        ("GET" | "HEAD", [id, "keys"]) => keys(st, id, req),
        ("POST", [id, "keys"]) => add_key(st, id, req),
        ("DELETE", [id, "keys", key]) => remove_key(st, id, key),
        ("GET" | "HEAD", [id, "usage"]) => usage(st, id, req),
        (_, [] | [_] | [_, "keys" | "usage"] | [_, "keys", _]) => {
            Response::message(405, "Method Not Allowed")
        }
        _ => Response::message(404, "Not Found"),
    }
}

fn show<P: DataPlane>(st: &State<P>, id: &str) -> Response {
    match st.usage.plan(id) {
        Some(r) => Response::json(200, &plan_json(id, r)),
        None => no_plan(id),
    }
}

/// A body checked against the running config, as a record made at `created_at`.
fn checked<P: DataPlane>(
    st: &State<P>,
    body: PlanBody,
    created_at: i64,
) -> Result<UsagePlanRecord, Response> {
    let errors = check_plan(&body, &st.current);
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    Ok(UsagePlanRecord {
        name: body.name,
        description: body.description,
        api_stages: body.api_stages,
        throttle: body.throttle,
        quota: body.quota,
        tags: body.tags,
        created_at,
        updated_at: now_unix(),
    })
}

fn create<P: DataPlane>(st: &mut State<P>, req: &super::Request) -> Response {
    let body: PlanBody = match parse_body(req.body) {
        Ok(b) => b,
        Err(e) => return invalid(vec![e]),
    };
    let record = match checked(st, body, now_unix()) {
        Ok(r) => r,
        Err(r) => return r,
    };
    for _ in 0..5 {
        let id = match usage_plan_id() {
            Ok(id) => id,
            Err(e) => return Response::message(500, format!("no random id: {e}")),
        };
        match st.resources.insert_new(Table::UsagePlans, &id, &record) {
            Ok(true) => {
                let shown = plan_json(&id, &record);
                // A new plan has no keys: nothing to move, nothing to fail.
                let _ = st.usage.put_plan(&id, record);
                st.usage.publish();
                tracing::info!(id, "usage plan created");
                return Response::json(201, &shown);
            }
            Ok(false) => continue,
            Err(e) => return store_failed(&e),
        }
    }
    Response::message(500, "no unused usage plan id found")
}

/// `PUT` (the body is the whole plan) or `PATCH` (a JSON merge patch onto it).
fn replace<P: DataPlane>(
    st: &mut State<P>,
    id: &str,
    req: &super::Request,
    patch: bool,
) -> Response {
    let Some(old) = st.usage.plan(id).cloned() else {
        return no_plan(id);
    };
    let body: Result<PlanBody, ConfigError> = if patch {
        match parse_body::<Value>(req.body) {
            Ok(p @ Value::Object(_)) => {
                let mut doc = plan_body_json(&old);
                merge_patch(&mut doc, &p);
                serde_path_to_error::deserialize(doc)
                    .map_err(|e| ConfigError::new(e.path().to_string(), e.into_inner().to_string()))
            }
            Ok(_) => Err(ConfigError::new(".", "a PATCH body is a JSON object")),
            Err(e) => Err(e),
        }
    } else {
        parse_body(req.body)
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return invalid(vec![e]),
    };
    let record = match checked(st, body, old.created_at) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some((key, e)) = st.usage.check_plan_stages(id, &record) {
        return Response::json(409, &json!({ "message": format!("API key {key}: {e}") }));
    }
    if let Err(e) = st.resources.put(Table::UsagePlans, id, &record) {
        return store_failed(&e);
    }
    let shown = plan_json(id, &record);
    let recount = match (&old.quota, &record.quota) {
        (_, None) => false,
        (Some(o), Some(n)) => (o.period, o.offset) != (n.period, n.offset),
        (None, Some(_)) => true,
    };
    if let Err(e) = st.usage.put_plan(id, record) {
        return Response::message(500, format!("usage plan {id} stored, not applied: {e}"));
    }
    // A new period or offset: each key's count restarts from what it used in the new period
    // so far, not from zero.
    if recount
        && let Err(e) = st
            .usage
            .recount_quota(&st.resources, id, now_unix().max(0) as u64 * 1000)
    {
        return store_failed(&e);
    }
    st.usage.publish();
    tracing::info!(id, "usage plan changed");
    Response::json(200, &shown)
}

fn delete<P: DataPlane>(st: &mut State<P>, id: &str) -> Response {
    let prefix = format!("{id}/");
    let done = st.resources.batch().and_then(|mut b| {
        b.remove(Table::UsagePlans, id)?;
        for t in [Table::UsagePlanKeys, Table::UsageCounters, Table::UsageDays] {
            b.remove_prefix(t, &prefix)?;
        }
        b.commit()
    });
    if let Err(e) = done {
        return store_failed(&e);
    }
    st.usage.remove_plan(id);
    st.usage.publish();
    tracing::info!(id, "usage plan deleted");
    Response::no_content()
}

fn keys<P: DataPlane>(st: &State<P>, id: &str, req: &super::Request) -> Response {
    let (limit, position) = match page(req.query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let prefix = format!("{id}/");
    let after = position.map(|p| format!("{prefix}{p}"));
    let rows = match st.resources.scan::<AssocRecord>(
        Table::UsagePlanKeys,
        &prefix,
        after.as_deref(),
        limit,
    ) {
        Ok(r) => r,
        Err(e) => return store_failed(&e),
    };
    let mut items = Vec::with_capacity(rows.len());
    for (row, _) in &rows {
        let key = &row[prefix.len()..];
        match st.resources.get::<ApiKeyRecord>(Table::ApiKeys, key) {
            Ok(Some(r)) => items.push(
                json!({ "id": key, "name": r.name, "enabled": r.enabled, "type": "API_KEY" }),
            ),
            Ok(None) => {}
            Err(e) => return store_failed(&e),
        }
    }
    let mut v = json!({ "items": items });
    if rows.len() == limit
        && let Some((last, _)) = rows.last()
    {
        v["position"] = json!(&last[prefix.len()..]);
    }
    Response::json(200, &v)
}

fn add_key<P: DataPlane>(st: &mut State<P>, id: &str, req: &super::Request) -> Response {
    let body: AddKey = match parse_body(req.body) {
        Ok(b) => b,
        Err(e) => return invalid(vec![e]),
    };
    if body.key_type.as_deref().is_some_and(|t| t != "API_KEY") {
        return invalid(vec![ConfigError::new("key_type", "only API_KEY exists")]);
    }
    let key = body.key_id.as_str();
    match st.usage.check_assoc(id, key) {
        Ok(()) => {}
        Err(AssocError::NoKey) => return no_key(key),
        Err(AssocError::NoPlan) => return no_plan(id),
        Err(e @ AssocError::Conflict { .. }) => {
            let AssocError::Conflict { plan, stage } = &e else {
                unreachable!()
            };
            return Response::json(
                409,
                &json!({ "message": e.to_string(), "usage_plan_id": plan, "stage": stage }),
            );
        }
        Err(e) => return Response::message(409, e.to_string()),
    }
    let record = AssocRecord {
        created_at: now_unix(),
    };
    if let Err(e) = st
        .resources
        .put(Table::UsagePlanKeys, &assoc_id(id, key), &record)
    {
        return store_failed(&e);
    }
    if let Err(e) = st.usage.associate(id, key, None) {
        return Response::message(500, format!("association stored, not applied: {e}"));
    }
    st.usage.publish();
    tracing::info!(plan = id, key, "API key added to a usage plan");
    Response::json(
        201,
        &json!({ "usage_plan_id": id, "key_id": key, "type": "API_KEY" }),
    )
}

fn remove_key<P: DataPlane>(st: &mut State<P>, id: &str, key: &str) -> Response {
    if !is_api_key_id(key) || st.usage.assoc(id, key).is_none() {
        return Response::message(404, format!("API key {key:?} is not in usage plan {id}"));
    }
    let done = st.resources.batch().and_then(|mut b| {
        remove_assoc_rows(&mut b, id, key)?;
        b.commit()
    });
    if let Err(e) = done {
        return store_failed(&e);
    }
    st.usage.dissociate(id, key);
    st.usage.publish();
    tracing::info!(plan = id, key, "API key removed from a usage plan");
    Response::no_content()
}

fn usage<P: DataPlane>(st: &State<P>, id: &str, req: &super::Request) -> Response {
    let date = |field: &str| -> Result<u32, Response> {
        let given = query_param(req.query, field)
            .ok_or_else(|| Response::message(400, format!("{field}: required (YYYY-MM-DD)")))?;
        parse_day(given).ok_or_else(|| {
            Response::message(
                400,
                format!("{field}: {given:?} is not a date (YYYY-MM-DD)"),
            )
        })
    };
    let (first, last) = match (date("start_date"), date("end_date")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if last < first || last - first >= MAX_REPORT_DAYS {
        return Response::message(
            400,
            format!("end_date: from start_date to end_date is 1 to {MAX_REPORT_DAYS} days"),
        );
    }
    let key = query_param(req.query, "key").filter(|k| !k.is_empty());
    if let Some(k) = key
        && st.usage.assoc(id, k).is_none()
    {
        return Response::message(404, format!("API key {k:?} is not in usage plan {id}"));
    }
    match st.usage.usage_report(&st.resources, id, key, first, last) {
        Ok(items) => Response::json(
            200,
            &json!({
                "usage_plan_id": id,
                "start_date": format_day(first),
                "end_date": format_day(last),
                "items": items,
            }),
        ),
        Err(e) => store_failed(&e),
    }
}

fn no_plan(id: &str) -> Response {
    Response::message(404, format!("no usage plan {id:?}"))
}
