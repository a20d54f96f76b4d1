//! `turnpike admin keys ...` and `turnpike admin plans ...`: API keys and usage plans.
//!
//! Flags take the AWS CLI's shorthand as the tutorials write it, so a command translates one
//! to one: `aws apigateway create-usage-plan --name basic --api-stages apiId=shop,stage=prod
//! --throttle burstLimit=100,rateLimit=50 --quota limit=10000,period=MONTH` is
//! `turnpike admin plans create --name basic --api-stages shop:prod --throttle
//! burstLimit=100,rateLimit=50 --quota limit=10000,period=MONTH`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::Reply;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// API keys, a page at a time (values hidden unless --include-values).
    List {
        #[arg(long)]
        include_values: bool,
        /// Keys per page (1-500, default 25).
        #[arg(long)]
        limit: Option<u32>,
        /// Start after this key id (the `position` of the previous page).
        #[arg(long)]
        position: Option<String>,
    },
    /// One key (its value with --include-value).
    Show {
        id: String,
        #[arg(long)]
        include_value: bool,
    },
    /// Create a key; prints it with its value. Keys are enabled unless --disabled.
    Create {
        #[arg(long)]
        name: String,
        /// 20-128 visible ASCII characters; generated (40 letters and digits) if absent.
        #[arg(long)]
        value: Option<String>,
        /// Accepted for the AWS CLI's spelling; keys are enabled by default.
        #[arg(long, conflicts_with = "disabled")]
        enabled: bool,
        #[arg(long)]
        disabled: bool,
        #[arg(long)]
        description: Option<String>,
        /// key=value, repeatable.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Change a key's name, description or tags.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Let a key through again (at once).
    Enable { id: String },
    /// Refuse a key (at once), keeping it and its usage.
    Disable { id: String },
    /// Delete a key with its plan associations and usage.
    Delete { id: String },
    /// Import keys from JSON lines (`-` for stdin): all or nothing.
    Import { file: PathBuf },
    /// Every key as JSON lines, with values and plan ids (what import takes).
    Export,
}

#[derive(Subcommand)]
pub enum PlansCommand {
    /// Every usage plan.
    List,
    /// One usage plan.
    Show { id: String },
    /// Create a usage plan.
    Create {
        #[command(flatten)]
        fields: PlanFields,
    },
    /// Change a usage plan: each field given replaces the plan's.
    Update {
        id: String,
        #[command(flatten)]
        fields: PlanFields,
        /// Remove the plan's throttle.
        #[arg(long, conflicts_with = "throttle")]
        no_throttle: bool,
        /// Remove the plan's quota.
        #[arg(long, conflicts_with = "quota")]
        no_quota: bool,
    },
    /// Delete a usage plan with its key associations and usage.
    Delete { id: String },
    /// Give a key this plan (one plan per key per API stage).
    AddKey {
        plan: String,
        #[arg(long = "key")]
        key: String,
    },
    /// Take a key out of this plan.
    RemoveKey {
        plan: String,
        #[arg(long = "key")]
        key: String,
    },
    /// The keys of a plan, a page at a time.
    Keys {
        plan: String,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        position: Option<String>,
    },
    /// Requests used and quota remaining per day (AWS get-usage).
    Usage {
        plan: String,
        #[arg(long = "key")]
        key: Option<String>,
        /// YYYY-MM-DD
        #[arg(long)]
        start_date: String,
        /// YYYY-MM-DD
        #[arg(long)]
        end_date: String,
    },
}

#[derive(clap::Args)]
pub struct PlanFields {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// API stages the plan covers: `api:stage` (or `apiId=api,stage=stage`), comma-separated
    /// or repeated.
    #[arg(long = "api-stages")]
    api_stages: Vec<String>,
    /// Each key's throttle: `burstLimit=100,rateLimit=50[,scope=cluster]`.
    #[arg(long)]
    throttle: Option<String>,
    /// Each key's quota: `limit=10000,period=MONTH[,offset=0][,scope=cluster]`.
    #[arg(long)]
    quota: Option<String>,
    /// A per-route throttle on one stage: `'shop:prod GET /pets=burstLimit=10,rateLimit=5'`;
    /// repeatable.
    #[arg(long = "route-throttle")]
    route_throttles: Vec<String>,
    #[arg(long = "tag")]
    tags: Vec<String>,
}

type Url<'a> = &'a dyn Fn(&str) -> String;

pub fn keys(agent: &ureq::Agent, url: Url, auth: &str, c: &KeysCommand) -> Result<Reply, String> {
    let get = |p: String| agent.get(url(&p)).header("Authorization", auth).call();
    let patch = |id: &str, body: Value| -> Result<Reply, String> {
        Ok(agent
            .patch(url(&format!("/v1/apikeys/{}", id_segment(id)?)))
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes()))
    };
    Ok(match c {
        KeysCommand::List {
            include_values,
            limit,
            position,
        } => {
            let mut q = vec![format!("include_value={include_values}")];
            q.extend(limit.map(|l| format!("limit={l}")));
            if let Some(p) = position {
                q.push(format!("position={}", id_segment(p)?));
            }
            get(format!("/v1/apikeys?{}", q.join("&")))
        }
        KeysCommand::Show { id, include_value } => get(format!(
            "/v1/apikeys/{}?include_value={include_value}",
            id_segment(id)?
        )),
        KeysCommand::Create {
            name,
            value,
            enabled: _,
            disabled,
            description,
            tags,
        } => {
            let mut body = json!({ "name": name, "enabled": !disabled });
            if let Some(v) = value {
                body["value"] = json!(v);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if !tags.is_empty() {
                body["tags"] = tag_map(tags)?;
            }
            agent
                .post(url("/v1/apikeys"))
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes())
        }
        KeysCommand::Update {
            id,
            name,
            description,
            tags,
        } => {
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            if !tags.is_empty() {
                body.insert("tags".into(), tag_map(tags)?);
            }
            patch(id, Value::Object(body))?
        }
        KeysCommand::Enable { id } => patch(id, json!({ "enabled": true }))?,
        KeysCommand::Disable { id } => patch(id, json!({ "enabled": false }))?,
        KeysCommand::Delete { id } => agent
            .delete(url(&format!("/v1/apikeys/{}", id_segment(id)?)))
            .header("Authorization", auth)
            .call(),
        KeysCommand::Import { file } => {
            let body = if file.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                    .map_err(|e| format!("reading stdin: {e}"))?;
                b
            } else {
                std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?
            };
            agent
                .post(url("/v1/apikeys/import"))
                .header("Authorization", auth)
                .header("Content-Type", "application/x-ndjson")
                .send(&body[..])
        }
        KeysCommand::Export => get("/v1/apikeys/export".into()),
    })
}

pub fn plans(agent: &ureq::Agent, url: Url, auth: &str, c: &PlansCommand) -> Result<Reply, String> {
    let get = |p: String| agent.get(url(&p)).header("Authorization", auth).call();
    let plan_url = |id: &str, rest: &str| -> Result<String, String> {
        Ok(url(&format!("/v1/usageplans/{}{rest}", id_segment(id)?)))
    };
    Ok(match c {
        PlansCommand::List => get("/v1/usageplans".into()),
        PlansCommand::Show { id } => get(format!("/v1/usageplans/{}", id_segment(id)?)),
        PlansCommand::Create { fields } => {
            if fields.name.is_none() {
                return Err("--name is required".into());
            }
            agent
                .post(url("/v1/usageplans"))
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(plan_body(fields)?.to_string().as_bytes())
        }
        PlansCommand::Update {
            id,
            fields,
            no_throttle,
            no_quota,
        } => {
            let mut body = plan_body(fields)?;
            if *no_throttle {
                body["throttle"] = Value::Null;
            }
            if *no_quota {
                body["quota"] = Value::Null;
            }
            agent
                .patch(plan_url(id, "")?)
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes())
        }
        PlansCommand::Delete { id } => agent
            .delete(plan_url(id, "")?)
            .header("Authorization", auth)
            .call(),
        PlansCommand::AddKey { plan, key } => agent
            .post(plan_url(plan, "/keys")?)
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .send(json!({ "key_id": key }).to_string().as_bytes()),
        PlansCommand::RemoveKey { plan, key } => agent
            .delete(plan_url(plan, &format!("/keys/{}", id_segment(key)?))?)
            .header("Authorization", auth)
            .call(),
        PlansCommand::Keys {
            plan,
            limit,
            position,
        } => {
            let mut q = Vec::new();
            q.extend(limit.map(|l| format!("limit={l}")));
            if let Some(p) = position {
                q.push(format!("position={}", id_segment(p)?));
            }
            agent
                .get(format!("{}?{}", plan_url(plan, "/keys")?, q.join("&")))
                .header("Authorization", auth)
                .call()
        }
        PlansCommand::Usage {
            plan,
            key,
            start_date,
            end_date,
        } => {
            let mut q = vec![
                format!("start_date={}", date(start_date)?),
                format!("end_date={}", date(end_date)?),
            ];
            if let Some(k) = key {
                q.push(format!("key={}", id_segment(k)?));
            }
            agent
                .get(format!("{}?{}", plan_url(plan, "/usage")?, q.join("&")))
                .header("Authorization", auth)
                .call()
        }
    })
}

/// The JSON of the plan fields given (a whole plan for create, a merge patch for update).
fn plan_body(f: &PlanFields) -> Result<Value, String> {
    let mut body = Map::new();
    if let Some(n) = &f.name {
        body.insert("name".into(), json!(n));
    }
    if let Some(d) = &f.description {
        body.insert("description".into(), json!(d));
    }
    let mut stages: Vec<Value> = Vec::new();
    for s in f.api_stages.iter().flat_map(|s| split_stages(s)) {
        let (api, stage) = api_stage(&s)?;
        stages.push(json!({ "api": api, "stage": stage }));
    }
    for rt in &f.route_throttles {
        let (target, limits) = rt.split_once('=').ok_or_else(|| {
            format!(
                "--route-throttle {rt:?}: expected 'api:stage ROUTE=burstLimit=..,rateLimit=..'"
            )
        })?;
        let (stage, route) = target
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("--route-throttle {rt:?}: expected 'api:stage ROUTE=...'"))?;
        let (api, stage) = api_stage(stage)?;
        let throttle = shorthand_throttle(limits)?;
        let entry = match stages
            .iter_mut()
            .find(|s| s["api"] == api && s["stage"] == stage)
        {
            Some(e) => e,
            None => {
                stages.push(json!({ "api": api, "stage": stage }));
                stages.last_mut().ok_or("no stage")?
            }
        };
        entry["throttle"][route.trim()] = throttle;
    }
    if !stages.is_empty() {
        body.insert("api_stages".into(), Value::Array(stages));
    }
    if let Some(t) = &f.throttle {
        body.insert("throttle".into(), shorthand_throttle(t)?);
    }
    if let Some(q) = &f.quota {
        body.insert("quota".into(), shorthand_quota(q)?);
    }
    if !f.tags.is_empty() {
        body.insert("tags".into(), tag_map(&f.tags)?);
    }
    Ok(Value::Object(body))
}

/// `shop:prod,shop:dev` -> each; `apiId=shop,stage=prod` stays whole.
fn split_stages(s: &str) -> Vec<String> {
    if s.contains('=') {
        vec![s.to_owned()]
    } else {
        s.split(',').map(|p| p.trim().to_owned()).collect()
    }
}

/// `shop:prod` or `apiId=shop,stage=prod`.
fn api_stage(s: &str) -> Result<(String, String), String> {
    if s.contains('=') {
        let pairs = pairs(s)?;
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match (get("apiId").or(get("api")), get("stage")) {
            (Some(a), Some(st)) => Ok((a, st)),
            _ => Err(format!("{s:?}: expected apiId=API,stage=STAGE")),
        }
    } else {
        s.split_once(':')
            .map(|(a, st)| (a.to_owned(), st.to_owned()))
            .filter(|(a, st)| !a.is_empty() && !st.is_empty())
            .ok_or_else(|| format!("{s:?}: expected API:STAGE"))
    }
}

fn pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("{p:?}: expected name=value"))
        })
        .collect()
}

/// `scope=cluster` or `scope=node` of a throttle or quota shorthand.
fn shorthand_scope(out: &mut Map<String, Value>, v: &str) -> Result<(), String> {
    match v {
        "cluster" | "node" => {
            out.insert("scope".into(), json!(v));
            Ok(())
        }
        _ => Err(format!("scope={v}: expected cluster or node")),
    }
}

/// `burstLimit=100,rateLimit=50[,scope=cluster]` (or rate_limit, burst_limit).
fn shorthand_throttle(s: &str) -> Result<Value, String> {
    let mut out = Map::new();
    for (k, v) in pairs(s)? {
        match k.as_str() {
            "rateLimit" | "rate_limit" => {
                let r: f64 = v
                    .parse()
                    .map_err(|_| format!("rateLimit={v}: not a number"))?;
                out.insert("rate_limit".into(), json!(r));
            }
            "burstLimit" | "burst_limit" => {
                let b: u32 = v
                    .parse()
                    .map_err(|_| format!("burstLimit={v}: not a count"))?;
                out.insert("burst_limit".into(), json!(b));
            }
            "scope" => shorthand_scope(&mut out, &v)?,
            _ => {
                return Err(format!(
                    "{k}: a throttle has rateLimit, burstLimit and scope"
                ));
            }
        }
    }
    Ok(Value::Object(out))
}

/// `limit=10000,period=MONTH,offset=0[,scope=cluster]`.
fn shorthand_quota(s: &str) -> Result<Value, String> {
    let mut out = Map::new();
    for (k, v) in pairs(s)? {
        match k.as_str() {
            "limit" | "offset" => {
                let n: u32 = v.parse().map_err(|_| format!("{k}={v}: not a count"))?;
                out.insert(k, json!(n));
            }
            "period" => {
                out.insert(k, json!(v.to_ascii_uppercase()));
            }
            "scope" => shorthand_scope(&mut out, &v)?,
            _ => {
                return Err(format!("{k}: a quota has limit, period, offset and scope"));
            }
        }
    }
    Ok(Value::Object(out))
}

fn tag_map(tags: &[String]) -> Result<Value, String> {
    let mut out = Map::new();
    for t in tags {
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| format!("--tag {t:?}: expected key=value"))?;
        out.insert(k.to_owned(), json!(v));
    }
    Ok(Value::Object(out))
}

/// An id as one URL path segment (ids are lower-case letters and digits).
fn id_segment(id: &str) -> Result<&str, String> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(format!("{id:?} is not an id"))
    }
}

fn date(d: &str) -> Result<&str, String> {
    if d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        Ok(d)
    } else {
        Err(format!("{d:?}: expected YYYY-MM-DD"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_shorthand() {
        let f = PlanFields {
            name: Some("basic".into()),
            description: None,
            api_stages: vec!["shop:prod".into(), "apiId=shop,stage=dev".into()],
            throttle: Some("burstLimit=100,rateLimit=50".into()),
            quota: Some("limit=10000,period=month".into()),
            route_throttles: vec!["shop:prod GET /pets=burstLimit=10,rateLimit=5".into()],
            tags: vec![],
        };
        let body = plan_body(&f).expect("body");
        assert_eq!(
            body,
            json!({
                "name": "basic",
                "api_stages": [
                    { "api": "shop", "stage": "prod", "throttle": { "GET /pets": { "burst_limit": 10, "rate_limit": 5.0 } } },
                    { "api": "shop", "stage": "dev" },
                ],
                "throttle": { "burst_limit": 100, "rate_limit": 50.0 },
                "quota": { "limit": 10000, "period": "MONTH" },
            })
        );
        assert!(shorthand_throttle("burst=1").is_err());
        assert!(api_stage("shop").is_err());
        assert_eq!(
            shorthand_quota("limit=5,period=DAY,scope=cluster"),
            Ok(json!({ "limit": 5, "period": "DAY", "scope": "cluster" }))
        );
        assert_eq!(
            shorthand_throttle("rateLimit=5,burstLimit=5,scope=cluster"),
            Ok(json!({ "rate_limit": 5.0, "burst_limit": 5, "scope": "cluster" }))
        );
        assert!(shorthand_quota("limit=5,period=DAY,scope=everywhere").is_err());
    }
}
