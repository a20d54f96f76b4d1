//! API keys and usage plans as stored (tables `api_keys` and `usage_plans`), the bodies the
//! admin API takes for them, the checks a write must pass, and what the API shows.
//!
//! Shapes follow API Gateway's `ApiKey` and `UsagePlan` in snake_case. Two decisions where AWS
//! and we part:
//! - A key is created **enabled** unless the body says `"enabled": false`. AWS's CLI makes a
//!   disabled key unless `--enabled` is given; an admin API whose new key does nothing until a
//!   second call surprised every operator we asked, and `turnpike admin keys create --enabled`
//!   (the tutorial's spelling) still works.
//! - A plan's `api_stages` must name an API and a stage of the running config when written (a
//!   400 naming `api_stages[i].stage` otherwise), as AWS refuses a stage that does not exist.
//!   A later config change that removes the stage is not refused: the plan then just does not
//!   apply there (a warning is logged).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, json};
use turnpike_core::{
    config::{ConfigError, ConfigFile},
    tls::iso_time,
    usage::{QuotaSettings, ThrottleFile},
};

/// Longest `name` or `description`, in bytes.
const MAX_LABEL: usize = 1024;
/// Most tags on one resource (AWS's limit).
const MAX_TAGS: usize = 50;
/// Shortest and longest API key value, in characters (AWS: at least 20, at most 128).
pub const VALUE_LEN: std::ops::RangeInclusive<usize> = 20..=128;

/// An API key as stored (table `api_keys`, key = its id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub name: String,
    /// What clients send in `x-api-key`. Shown only when asked for (`include_value=true`).
    pub value: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A usage plan as stored (table `usage_plans`, key = its id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsagePlanRecord {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub api_stages: Vec<ApiStage>,
    /// Each key's throttle (AWS `throttle`), if the plan has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleFile>,
    /// Each key's quota (AWS `quota`), if the plan has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSettings>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An API stage a plan covers, with its per-route throttles (AWS `ApiStage`, whose
/// `throttle` is keyed by `"{resourcePath}/{httpMethod}"`; ours by route key, `GET /pets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiStage {
    pub api: String,
    pub stage: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttle: BTreeMap<String, ThrottleFile>,
}

/// `POST /v1/apikeys` (and one line of an import).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// Import only: keep this id (moving keys between gateways).
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// Given, or 40 random letters and digits.
    #[serde(default)]
    pub value: Option<String>,
    /// Default `true` (see the module docs).
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Import only: the plans to associate the key with.
    #[serde(default)]
    pub usage_plan_ids: Vec<String>,
    /// Import only: keeps the exported times.
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `POST /v1/usageplans`, `PUT /v1/usageplans/{id}`, and what a `PATCH` makes of a plan.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub api_stages: Vec<ApiStage>,
    #[serde(default)]
    pub throttle: Option<ThrottleFile>,
    #[serde(default)]
    pub quota: Option<QuotaSettings>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Parses a JSON body as `T`: errors carry serde's reason at its field path.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::new(
            if path.is_empty() { ".".into() } else { path },
            e.into_inner().to_string(),
        )
    })
}

/// Checks a key value: 20 to 128 visible ASCII characters (no space, no control).
pub fn check_value(value: &str) -> Result<(), String> {
    if !VALUE_LEN.contains(&value.len()) {
        return Err(format!(
            "an API key value is 20 to 128 characters long, not {}",
            value.len()
        ));
    }
    if let Some(c) = value.bytes().find(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "an API key value is visible ASCII characters only; found byte {c:#04x}"
        ));
    }
    Ok(())
}

/// Checks the labels of a key body (the value is checked apart).
pub fn check_key_labels(
    name: &str,
    description: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    label(&mut errors, "name", Some(name), true);
    label(&mut errors, "description", description, false);
    check_tags(&mut errors, tags);
    errors
}

/// Checks a plan body against the running config `doc`: each error names its field
/// (`api_stages[0].stage`, `api_stages[0].throttle["GET /x"].rate_limit`, `quota.offset`).
pub fn check_plan(body: &PlanBody, doc: &ConfigFile) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    label(&mut errors, "name", Some(&body.name), true);
    label(
        &mut errors,
        "description",
        body.description.as_deref(),
        false,
    );
    check_tags(&mut errors, &body.tags);
    if let Some(t) = &body.throttle
        && let Err(e) = t.check()
    {
        errors.push(ConfigError::new("throttle.rate_limit", e));
    }
    if let Some(q) = &body.quota
        && let Err(e) = q.check()
    {
        errors.push(ConfigError::new("quota.offset", e));
    }
    for (i, s) in body.api_stages.iter().enumerate() {
        let at = format!("api_stages[{i}]");
        if body.api_stages[..i]
            .iter()
            .any(|o| o.api == s.api && o.stage == s.stage)
        {
            errors.push(ConfigError::new(
                &at,
                format!("{}:{} is listed twice", s.api, s.stage),
            ));
        }
        let Some(api) = doc.apis.iter().find(|a| a.name == s.api) else {
            errors.push(ConfigError::new(
                format!("{at}.api"),
                format!("the running config has no API {:?}", s.api),
            ));
            continue;
        };
        if !api.stages.iter().any(|st| st.name == s.stage) {
            errors.push(ConfigError::new(
                format!("{at}.stage"),
                format!("API {:?} has no stage {:?}", s.api, s.stage),
            ));
        }
        for (route, t) in &s.throttle {
            let path = format!("{at}.throttle[{route:?}]");
            if !api.routes.iter().any(|r| r.key == *route) {
                errors.push(ConfigError::new(
                    &path,
                    format!("API {:?} has no route {route:?}", s.api),
                ));
            }
            if let Err(e) = t.check() {
                errors.push(ConfigError::new(format!("{path}.rate_limit"), e));
            }
        }
    }
    errors
}

/// The stages of the running config that `record` names but `doc` no longer has, as
/// `api:stage`: the plan does not apply there (worth a warning, never a refusal).
pub fn missing_stages(record: &UsagePlanRecord, doc: &ConfigFile) -> Vec<String> {
    record
        .api_stages
        .iter()
        .filter(|s| {
            !doc.apis
                .iter()
                .any(|a| a.name == s.api && a.stages.iter().any(|st| st.name == s.stage))
        })
        .map(|s| format!("{}:{}", s.api, s.stage))
        .collect()
}

fn label(errors: &mut Vec<ConfigError>, field: &str, value: Option<&str>, required: bool) {
    match value {
        Some(v) if v.len() > MAX_LABEL => errors.push(ConfigError::new(
            field,
            format!("{} bytes long; at most {MAX_LABEL}", v.len()),
        )),
        Some("") if required => errors.push(ConfigError::new(field, "must not be empty")),
        _ => {}
    }
}

fn check_tags(errors: &mut Vec<ConfigError>, tags: &BTreeMap<String, String>) {
    if tags.len() > MAX_TAGS {
        errors.push(ConfigError::new(
            "tags",
            format!("{} tags; at most {MAX_TAGS}", tags.len()),
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            errors.push(ConfigError::new(
                format!("tags[{k:?}]"),
                "a tag key is 1 to 128 bytes, its value at most 256",
            ));
        }
    }
}

/// What `/v1/apikeys` shows of a key: AWS's `ApiKey` in snake_case, times as ISO 8601, the
/// value only `with_value`.
pub fn key_json(id: &str, r: &ApiKeyRecord, plan_ids: &[&str], with_value: bool) -> Value {
    let mut v = json!({
        "id": id,
        "name": r.name,
        "description": r.description,
        "enabled": r.enabled,
        "created_at": iso_time(r.created_at),
        "updated_at": iso_time(r.updated_at),
        "tags": r.tags,
        "usage_plan_ids": plan_ids,
    });
    if with_value {
        v["value"] = json!(r.value);
    }
    v
}

/// What `/v1/usageplans` shows of a plan: AWS's `UsagePlan` in snake_case.
pub fn plan_json(id: &str, r: &UsagePlanRecord) -> Value {
    json!({
        "id": id,
        "name": r.name,
        "description": r.description,
        "api_stages": r.api_stages,
        "throttle": r.throttle,
        "quota": r.quota,
        "tags": r.tags,
        "created_at": iso_time(r.created_at),
        "updated_at": iso_time(r.updated_at),
    })
}

/// A plan's editable fields as JSON, for a merge patch to apply onto.
pub fn plan_body_json(r: &UsagePlanRecord) -> Value {
    let mut v = Map::new();
    v.insert("name".into(), json!(r.name));
    if let Some(d) = &r.description {
        v.insert("description".into(), json!(d));
    }
    v.insert("api_stages".into(), json!(r.api_stages));
    if let Some(t) = &r.throttle {
        v.insert("throttle".into(), json!(t));
    }
    if let Some(q) = &r.quota {
        v.insert("quota".into(), json!(q));
    }
    v.insert("tags".into(), json!(r.tags));
    Value::Object(v)
}

/// `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_day(s: &str) -> Option<u32> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    u32::try_from(date.to_julian_day() - UNIX_JULIAN_DAY).ok()
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
pub fn format_day(day: u32) -> String {
    match time::Date::from_julian_day(day as i32 + UNIX_JULIAN_DAY) {
        Ok(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        Err(_) => day.to_string(),
    }
}

/// The Julian day number of 1970-01-01.
const UNIX_JULIAN_DAY: i32 = 2_440_588;

/// An ISO 8601 time as written by [`iso_time`] (`2026-01-02T03:04:05Z`), as seconds since
/// the Unix epoch.
pub fn parse_iso_time(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let day = i64::from(parse_day(date)?);
    let rest = rest.strip_suffix('Z')?;
    let mut hms = rest.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&sec) {
        return None;
    }
    Some(day * 86_400 + h * 3600 + m * 60 + sec)
}
