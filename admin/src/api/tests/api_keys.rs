//! `/v1/apikeys` and `/v1/usageplans` through the admin's request handling, with the key
//! table the workers would read.

use serde_json::{Value, json};
use turnpike_core::usage::stage_uid;

use super::{AUTH, Fixture, call, fixture};

fn post(f: &Fixture, path: &str, body: Value) -> (u16, Value) {
    let (status, v, _) = call(f, "POST", path, &[AUTH], &body.to_string());
    (status, v)
}

fn table_has(f: &Fixture, value: &str) -> Option<(bool, bool)> {
    let st = f.admin.lock();
    let table = st.usage.usage().table();
    table
        .find(value.as_bytes())
        .map(|k| (k.enabled(), k.plan_for(stage_uid("shop", "prod")).is_some()))
}

#[test]
fn a_key_reaches_the_table_at_once_and_leaves_it_with_its_plan() {
    let f = fixture();
    let (status, plan) = post(
        &f,
        "/v1/usageplans",
        json!({ "name": "basic", "api_stages": [{ "api": "shop", "stage": "prod" }],
                "quota": { "limit": 10, "period": "DAY" } }),
    );
    assert_eq!(status, 201, "{plan}");
    let value = "0123456789abcdefghij";
    let (status, key) = post(&f, "/v1/apikeys", json!({ "name": "a", "value": value }));
    assert_eq!(status, 201, "{key}");
    assert_eq!(table_has(&f, value), Some((true, false)));
    let plan_id = plan["id"].as_str().expect("id");
    let key_id = key["id"].as_str().expect("id");
    let (status, v) = post(
        &f,
        &format!("/v1/usageplans/{plan_id}/keys"),
        json!({ "key_id": key_id }),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(table_has(&f, value), Some((true, true)));
    let (status, _, _) = call(
        &f,
        "PATCH",
        &format!("/v1/apikeys/{key_id}"),
        &[AUTH],
        r#"{"enabled": false}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(table_has(&f, value), Some((false, true)));
    let (status, _, _) = call(
        &f,
        "DELETE",
        &format!("/v1/usageplans/{plan_id}"),
        &[AUTH],
        "",
    );
    assert_eq!(status, 204);
    assert_eq!(table_has(&f, value), Some((false, false)));
    let (status, _, _) = call(&f, "DELETE", &format!("/v1/apikeys/{key_id}"), &[AUTH], "");
    assert_eq!(status, 204);
    assert_eq!(table_has(&f, value), None);
}

#[test]
fn an_import_is_all_or_nothing_and_one_table() {
    let f = fixture();
    let good: String = (0..50)
        .map(|i| {
            format!(
                "{}\n",
                json!({ "name": format!("k{i}"), "value": format!("value-{i:020}") })
            )
        })
        .collect();
    let bad = format!("{good}{{\"name\": \"x\", \"value\": \"short\"}}\n");
    let (status, v, _) = call(&f, "POST", "/v1/apikeys/import", &[AUTH], &bad);
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["errors"],
        json!(["line 51: value: an API key value is 20 to 128 characters long, not 5"])
    );
    assert_eq!(f.admin.lock().usage.usage().table().len(), 0);
    let generation = f.admin.lock().usage.usage().generation();
    let (status, v, _) = call(&f, "POST", "/v1/apikeys/import", &[AUTH], &good);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["imported"], 50);
    let st = f.admin.lock();
    assert_eq!(st.usage.usage().table().len(), 50);
    assert_eq!(
        st.usage.usage().generation(),
        generation + 1,
        "one table for the lot"
    );
}
