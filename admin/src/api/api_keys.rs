//! `/v1/apikeys`: API keys (AWS `apikeys`), requests to responses.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/apikeys?limit=25&position=<id>&include_value=false` | 200 `{"items": [..], "position": <next id>?}` (ids in order; `limit` 1..=500) |
//! | `POST /v1/apikeys` `{name, value?, enabled?, description?, tags?}` | 201 the key with its `value`; 400 naming the field; 409 value taken |
//! | `GET /v1/apikeys/{id}?include_value=true` | 200; 404 |
//! | `PATCH /v1/apikeys/{id}` `{name?, description?, enabled?, tags?}` | 200; 400; 404 |
//! | `DELETE /v1/apikeys/{id}` | 204 (its plan associations and counters go too); 404 |
//! | `GET /v1/apikeys/export` | 200 JSON lines, one key each, with `value` and `usage_plan_ids` |
//! | `POST /v1/apikeys/import` (JSON lines) | 200 `{"imported": n}`; 400 `{"errors": ["line N: reason", ..]}` and nothing imported |
//!
//! Every write is committed to the store, then applied to the model, then a new key table is
//! published: the data plane sees a created, disabled or deleted key before the answer is
//! sent.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};
use turnpike_core::config::ConfigError;

use super::{
    Response, State,
    certificates::{now_unix, store_failed},
};
use crate::{
    db::{
        Table,
        ids::{api_key_id, api_key_value, is_api_key_id},
    },
    plane::DataPlane,
    resources::EditError,
    usage_plans::{
        persist::{AssocRecord, assoc_id},
        records::{
            ApiKeyRecord, KeyBody, check_key_labels, check_value, key_json, parse_body,
            parse_iso_time,
        },
    },
};

/// Default and largest page of a listing (AWS: 25 and 500).
const PAGE: usize = 25;
const MAX_PAGE: usize = 500;
/// Refusals listed in a refused import; the count says how many more.
const MAX_LISTED: usize = 100;

pub(super) fn api_keys<P: DataPlane>(st: &mut State<P>, req: &super::Request) -> Response {
    let rest = req.path["/v1/apikeys".len()..].strip_prefix('/');
    match (req.method, rest) {
        ("GET" | "HEAD", None) => list(st, req),
        ("POST", None) => create(st, req),
        ("GET" | "HEAD", Some("export")) => export(st),
        ("POST", Some("import")) => import(st, req),
        (_, None | Some("export" | "import")) => Response::message(405, "Method Not Allowed"),
        (_, Some(id)) if !is_api_key_id(id) => no_key(id),
        ("GET" | "HEAD", Some(id)) => show(st, id, query_flag(req.query, "include_value")),
        ("PATCH", Some(id)) => patch(st, id, req),
        ("DELETE", Some(id)) => delete(st, id),
        _ => Response::message(405, "Method Not Allowed"),
    }
}

/// A query parameter's raw value (ids, numbers and dates need no decoding).
pub(super) fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_flag(query: &str, name: &str) -> bool {
    matches!(query_param(query, name), Some("true" | "1" | ""))
}

/// `limit` and `position` of a listing.
pub(super) fn page(query: &str) -> Result<(usize, Option<&str>), Response> {
    let limit = match query_param(query, "limit") {
        None => PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(Response::message(
                    400,
                    format!("limit: a number from 1 to {MAX_PAGE}, not {l:?}"),
                ));
            }
        },
    };
    Ok((
        limit,
        query_param(query, "position").filter(|p| !p.is_empty()),
    ))
}

fn list<P: DataPlane>(st: &State<P>, req: &super::Request) -> Response {
    let (limit, position) = match page(req.query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let with_value = query_flag(req.query, "include_value");
    match st
        .resources
        .scan::<ApiKeyRecord>(Table::ApiKeys, "", position, limit)
    {
        Ok(keys) => {
            let next = (keys.len() == limit).then(|| keys[keys.len() - 1].0.clone());
            let items: Vec<Value> = keys
                .iter()
                .map(|(id, r)| key_json(id, r, &st.usage.plans_of(id), with_value))
                .collect();
            let mut v = json!({ "items": items });
            if let Some(p) = next {
                v["position"] = json!(p);
            }
            Response::json(200, &v)
        }
        Err(e) => store_failed(&e),
    }
}

fn show<P: DataPlane>(st: &State<P>, id: &str, with_value: bool) -> Response {
    match st.resources.get::<ApiKeyRecord>(Table::ApiKeys, id) {
        Ok(Some(r)) => Response::json(200, &key_json(id, &r, &st.usage.plans_of(id), with_value)),
        Ok(None) => no_key(id),
        Err(e) => store_failed(&e),
    }
}

fn create<P: DataPlane>(st: &mut State<P>, req: &super::Request) -> Response {
    let body: KeyBody = match parse_body(req.body) {
        Ok(b) => b,
        Err(e) => return invalid(vec![e]),
    };
    let import_only = [
        ("id", body.id.is_some()),
        ("usage_plan_ids", !body.usage_plan_ids.is_empty()),
        ("created_at", body.created_at.is_some()),
        ("updated_at", body.updated_at.is_some()),
    ];
    let mut errors: Vec<ConfigError> = import_only
        .iter()
        .filter(|(_, given)| *given)
        .map(|(f, _)| ConfigError::new(*f, "only an import sets this"))
        .collect();
    errors.extend(check_key_labels(
        &body.name,
        body.description.as_deref(),
        &body.tags,
    ));
    let value = match body.value {
        Some(v) => {
            if let Err(e) = check_value(&v) {
                errors.push(ConfigError::new("value", e));
            }
            v
        }
        None => match api_key_value() {
            Ok(v) => v,
            Err(e) => return Response::message(500, format!("no random value: {e}")),
        },
    };
    if !errors.is_empty() {
        return invalid(errors);
    }
    if let Some(other) = st.usage.key_with_value(&value) {
        return Response::message(409, format!("API key {other} already has this value"));
    }
    let now = now_unix();
    let record = ApiKeyRecord {
        name: body.name,
        value,
        enabled: body.enabled.unwrap_or(true),
        description: body.description,
        tags: body.tags,
        created_at: now,
        updated_at: now,
    };
    for _ in 0..5 {
        let id = match api_key_id() {
            Ok(id) => id,
            Err(e) => return Response::message(500, format!("no random id: {e}")),
        };
        match st.resources.insert_new(Table::ApiKeys, &id, &record) {
            Ok(true) => {
                st.usage.insert_key(&id, &record.value, record.enabled);
                st.usage.publish();
                tracing::info!(id, name = record.name, "API key created");
                return Response::json(201, &key_json(&id, &record, &[], true));
            }
            Ok(false) => continue,
            Err(e) => return store_failed(&e),
        }
    }
    Response::message(500, "no unused API key id found")
}

fn patch<P: DataPlane>(st: &mut State<P>, id: &str, req: &super::Request) -> Response {
    let mut record: ApiKeyRecord = match st.resources.get(Table::ApiKeys, id) {
        Ok(Some(r)) => r,
        Ok(None) => return no_key(id),
        Err(e) => return store_failed(&e),
    };
    let patch: Map<String, Value> = match parse_body(req.body) {
        Ok(p) => p,
        Err(e) => return invalid(vec![e]),
    };
    let mut errors = Vec::new();
    for (field, v) in &patch {
        let wrong = |what: &str| ConfigError::new(field, format!("expected {what}, got {v}"));
        match (field.as_str(), v) {
            ("name", Value::String(s)) => record.name = s.clone(),
            ("description", Value::String(s)) => record.description = Some(s.clone()),
            ("description", Value::Null) => record.description = None,
            ("enabled", Value::Bool(b)) => record.enabled = *b,
            ("tags", Value::Null) => record.tags.clear(),
            ("tags", Value::Object(_)) => match serde_json::from_value(v.clone()) {
                Ok(t) => record.tags = t,
                Err(_) => errors.push(wrong("an object of strings")),
            },
            ("name", _) => errors.push(wrong("a string")),
            ("description", _) => errors.push(wrong("a string or null")),
            ("enabled", _) => errors.push(wrong("true or false")),
            ("tags", _) => errors.push(wrong("an object of strings")),
            ("value", _) => errors.push(ConfigError::new(
                "value",
                "a key's value cannot change: create a new key",
            )),
            _ => errors.push(ConfigError::new(
                field,
                "unknown field: name, description, enabled or tags",
            )),
        }
    }
    errors.extend(check_key_labels(
        &record.name,
        record.description.as_deref(),
        &record.tags,
    ));
    if !errors.is_empty() {
        return invalid(errors);
    }
    record.updated_at = now_unix();
    if let Err(e) = st.resources.put(Table::ApiKeys, id, &record) {
        return store_failed(&e);
    }
    if st
        .usage
        .key(id)
        .is_some_and(|k| k.enabled != record.enabled)
    {
        st.usage.set_enabled(id, record.enabled);
        st.usage.publish();
        tracing::info!(id, enabled = record.enabled, "API key switched");
    }
    Response::json(200, &key_json(id, &record, &st.usage.plans_of(id), false))
}

fn delete<P: DataPlane>(st: &mut State<P>, id: &str) -> Response {
    let plans: Vec<String> = st
        .usage
        .plans_of(id)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let removed = st.resources.batch().and_then(|mut b| {
        let removed = b.remove(Table::ApiKeys, id)?;
        for plan in &plans {
            remove_assoc_rows(&mut b, plan, id)?;
        }
        b.commit()?;
        Ok(removed)
    });
    match removed {
        Ok(true) => {
            st.usage.remove_key(id);
            st.usage.publish();
            tracing::info!(id, "API key deleted");
            Response::no_content()
        }
        Ok(false) => no_key(id),
        Err(e) => store_failed(&e),
    }
}

/// Removes an association's rows: the association, its counters and its daily usage.
pub(super) fn remove_assoc_rows(
    b: &mut crate::db::Batch<'_>,
    plan: &str,
    key: &str,
) -> Result<(), crate::db::DbError> {
    let id = assoc_id(plan, key);
    b.remove(Table::UsagePlanKeys, &id)?;
    b.remove(Table::UsageCounters, &id)?;
    b.remove_prefix(Table::UsageDays, &format!("{id}/"))?;
    Ok(())
}

/// Every key as one JSON line, with its value and plans: what `import` takes.
fn export<P: DataPlane>(st: &State<P>) -> Response {
    let keys = match st.resources.list::<ApiKeyRecord>(Table::ApiKeys) {
        Ok(k) => k,
        Err(e) => return store_failed(&e),
    };
    let mut body = Vec::with_capacity(keys.len() * 160);
    for (id, r) in &keys {
        let line = key_json(id, r, &st.usage.plans_of(id), true);
        // A Value always serializes.
        let _ = serde_json::to_writer(&mut body, &line);
        body.push(b'\n');
    }
    Response {
        status: 200,
        content_type: "application/x-ndjson",
        etag: None,
        body,
    }
}

/// A checked import line.
struct Line {
    id: String,
    record: ApiKeyRecord,
    plans: Vec<String>,
}

/// Imports JSON lines all or nothing: every line is checked (against the store and the lines
/// before it) before anything is written; then one transaction writes every key and
/// association and one table is published.
fn import<P: DataPlane>(st: &mut State<P>, req: &super::Request) -> Response {
    let Ok(text) = std::str::from_utf8(req.body) else {
        return Response::message(400, "the body is not UTF-8");
    };
    let now = now_unix();
    let mut lines: Vec<Line> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut refused = 0usize;
    let mut values: HashSet<String> = HashSet::new();
    let mut ids: HashSet<String> = HashSet::new();
    for (n, text) in text.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        match check_line(st, text, now, &ids) {
            Ok(line) if !values.insert(line.record.value.clone()) => {
                refused += 1;
                push_error(
                    &mut errors,
                    n + 1,
                    "value: the same value is on an earlier line",
                );
            }
            Ok(line) => {
                ids.insert(line.id.clone());
                lines.push(line);
            }
            Err(reason) => {
                refused += 1;
                push_error(&mut errors, n + 1, &reason);
            }
        }
    }
    if refused > 0 {
        let more = refused.saturating_sub(errors.len());
        return Response::json(
            400,
            &json!({
                "message": format!("nothing imported: {refused} lines refused"),
                "errors": errors,
                "more_errors": more,
            }),
        );
    }
    let started = std::time::Instant::now();
    // In id order: the store's B-tree then fills pages left to right instead of splitting
    // pages all over (random ids in file order wrote a million keys several times slower).
    lines.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let written = st.resources.batch().and_then(|mut b| {
        b.put_all(
            Table::ApiKeys,
            lines.iter().map(|l| (l.id.as_str(), &l.record)),
        )?;
        let assoc = AssocRecord { created_at: now };
        let mut rows: Vec<String> = lines
            .iter()
            .flat_map(|l| l.plans.iter().map(|p| assoc_id(p, &l.id)))
            .collect();
        rows.sort_unstable();
        b.put_all(
            Table::UsagePlanKeys,
            rows.iter().map(|r| (r.as_str(), &assoc)),
        )?;
        b.commit()
    });
    if let Err(e) = written {
        return store_failed(&e);
    }
    let stored = started.elapsed();
    st.usage.reserve(lines.len());
    for l in &lines {
        st.usage
            .insert_key(&l.id, &l.record.value, l.record.enabled);
        for p in &l.plans {
            if let Err(e) = st.usage.associate(p, &l.id, None) {
                tracing::error!(key = l.id, plan = p, "import: association not applied: {e}");
            }
        }
    }
    let published = st.usage.publish();
    tracing::info!(
        keys = lines.len(),
        stored_ms = stored.as_millis() as u64,
        table_ms = published.took.as_millis() as u64,
        "API keys imported"
    );
    Response::json(
        200,
        &json!({
            "imported": lines.len(),
            "stored_ms": stored.as_millis() as u64,
            "table_ms": published.took.as_millis() as u64,
        }),
    )
}

fn push_error(errors: &mut Vec<String>, line: usize, reason: &str) {
    if errors.len() < MAX_LISTED {
        errors.push(format!("line {line}: {reason}"));
    }
}

fn check_line<P: DataPlane>(
    st: &State<P>,
    text: &str,
    now: i64,
    ids: &HashSet<String>,
) -> Result<Line, String> {
    // A line that is not JSON at all has no field to name: say so, not `?: key must be ...`.
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(format!("not a JSON object: {e}"));
    }
    let body: KeyBody =
        parse_body(text.as_bytes()).map_err(|e| format!("{}: {}", e.path, e.reason))?;
    let errors = check_key_labels(&body.name, body.description.as_deref(), &body.tags);
    if let Some(e) = errors.first() {
        return Err(format!("{}: {}", e.path, e.reason));
    }
    let value = match body.value {
        Some(v) => {
            check_value(&v).map_err(|e| format!("value: {e}"))?;
            if let Some(other) = st.usage.key_with_value(&v) {
                return Err(format!("value: API key {other} already has this value"));
            }
            v
        }
        None => api_key_value().map_err(|e| format!("no random value: {e}"))?,
    };
    let id = match body.id {
        Some(id) => {
            if !is_api_key_id(&id) {
                return Err(format!("id: {id:?} is not an API key id (10 of a-z, 0-9)"));
            }
            if st.usage.key(&id).is_some() || ids.contains(&id) {
                return Err(format!("id: API key {id} exists already"));
            }
            id
        }
        None => loop {
            let id = api_key_id().map_err(|e| format!("no random id: {e}"))?;
            if st.usage.key(&id).is_none() && !ids.contains(&id) {
                break id;
            }
        },
    };
    let time = |field: &str, t: Option<String>| match t {
        None => Ok(now),
        Some(t) => {
            parse_iso_time(&t).ok_or(format!("{field}: not a time like 2026-01-02T03:04:05Z"))
        }
    };
    let created_at = time("created_at", body.created_at)?;
    let updated_at = time("updated_at", body.updated_at)?;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (i, p) in body.usage_plan_ids.iter().enumerate() {
        let plan = st
            .usage
            .plan(p)
            .ok_or(format!("usage_plan_ids[{i}]: no usage plan {p:?}"))?;
        for s in &plan.api_stages {
            let stage = format!("{}:{}", s.api, s.stage);
            if let Some(other) = seen.insert(stage.clone(), p.clone()) {
                return Err(format!(
                    "usage_plan_ids[{i}]: plans {other} and {p} both cover {stage}: a key has \
                     one usage plan per API stage"
                ));
            }
        }
    }
    let mut plans = body.usage_plan_ids;
    plans.dedup();
    Ok(Line {
        id,
        record: ApiKeyRecord {
            name: body.name,
            value,
            enabled: body.enabled.unwrap_or(true),
            description: body.description,
            tags: body.tags,
            created_at,
            updated_at,
        },
        plans,
    })
}

pub(super) fn invalid(errors: Vec<ConfigError>) -> Response {
    Response::edit_error(EditError {
        status: 400,
        message: "invalid request".into(),
        errors,
    })
}

pub(super) fn no_key(id: &str) -> Response {
    Response::message(404, format!("no API key {id:?}"))
}
