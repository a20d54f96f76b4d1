use serde_json::json;
use turnpike_core::config::{ConfigFile, parse};

use super::*;

fn doc() -> ConfigFile {
    parse(
        r#"
apis:
  - name: shop
    integrations:
      users: { type: http_proxy, uri: "http://127.0.0.1:9000" }
      hello: { type: mock, body: hi }
    routes:
      - { key: "GET /users", integration: users }
      - { key: "$default", integration: hello }
    stages:
      - { name: prod }
domains:
  - { name: api.example.com, mappings: [ { api: shop, stage: prod } ] }
"#,
    )
    .expect("doc")
}

fn r(path: &str) -> Resource {
    Resource::parse(path).unwrap_or_else(|| panic!("{path}"))
}

#[test]
fn parses_resource_paths_with_encoded_ids() {
    assert_eq!(r("/v1/config"), Resource::Config);
    assert_eq!(r("/v1/apis/shop"), Resource::Api("shop".into()));
    assert_eq!(
        r("/v1/apis/shop/routes/GET%20%2Fusers%2F%7Bid%7D"),
        Resource::Child("shop".into(), Kind::Routes, "GET /users/{id}".into())
    );
    assert_eq!(
        r("/v1/apis/shop/stages"),
        Resource::Children("shop".into(), Kind::Stages)
    );
    assert_eq!(
        r("/v1/domains/api.example.com"),
        Resource::Domain("api.example.com".into())
    );
    for bad in [
        "/v1",
        "/v1/",
        "/v1/apis/shop/things",
        "/v2/config",
        "/v1/apis//routes",
        "/v1/apis/a/routes/%zz",
    ] {
        assert_eq!(Resource::parse(bad), None, "{bad}");
    }
}

#[test]
fn reads_each_part() {
    let d = doc();
    assert_eq!(
        get(&d, &r("/v1/apis"))
            .expect("apis")
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        get(&d, &r("/v1/apis/shop/routes/%24default")).expect("route")["integration"],
        "hello"
    );
    assert_eq!(
        get(&d, &r("/v1/apis/shop/integrations/users")).expect("integ")["type"],
        "http_proxy"
    );
    assert_eq!(
        get(&d, &r("/v1/domains/api.example.com")).expect("domain")["mappings"][0]["api"],
        "shop"
    );
    assert_eq!(get(&d, &r("/v1/apis/nope")).map_err(|e| e.status), Err(404));
    assert_eq!(
        get(&d, &r("/v1/apis/shop/stages/beta")).map_err(|e| e.status),
        Err(404)
    );
}

#[test]
fn creates_replaces_patches_and_deletes() {
    let d = doc();
    let d = edit(
        &d,
        &r("/v1/apis/shop/routes"),
        Write::Create,
        Some(json!({"key": "POST /users", "integration": "users"})),
    )
    .expect("create route");
    assert_eq!(d.apis[0].routes.len(), 3);
    let err = edit(
        &d,
        &r("/v1/apis/shop/routes"),
        Write::Create,
        Some(json!({"key": "POST /users", "integration": "users"})),
    );
    assert_eq!(err.map_err(|e| e.status).err(), Some(409));

    let d = edit(
        &d,
        &r("/v1/apis/shop/integrations"),
        Write::Create,
        Some(json!({"name": "m2", "type": "mock", "status": 201})),
    )
    .expect("create integration");
    assert_eq!(d.apis[0].integrations["m2"].status, Some(201));

    let d = edit(
        &d,
        &r("/v1/apis/shop/stages/beta"),
        Write::Replace,
        Some(json!({"variables": {"x": "1"}})),
    )
    .expect("upsert stage");
    assert_eq!(d.apis[0].stages[1].name, "beta");

    let d = edit(
        &d,
        &r("/v1/apis/shop/integrations/users"),
        Write::Patch,
        Some(json!({"timeout_ms": 1000})),
    )
    .expect("patch integration");
    assert_eq!(d.apis[0].integrations["users"].timeout_ms, Some(1000));
    let d = edit(
        &d,
        &r("/v1/apis/shop/integrations/users"),
        Write::Patch,
        Some(json!({"timeout_ms": null})),
    )
    .expect("patch removes");
    assert_eq!(d.apis[0].integrations["users"].timeout_ms, None);

    let d = edit(
        &d,
        &r("/v1/apis/shop/routes/GET%20%2Fusers"),
        Write::Delete,
        None,
    )
    .expect("delete route");
    assert!(d.apis[0].routes.iter().all(|x| x.key != "GET /users"));
    let d =
        edit(&d, &r("/v1/domains/api.example.com"), Write::Delete, None).expect("delete domain");
    assert!(d.domains.is_empty());
    let d = edit(
        &d,
        &r("/v1/config"),
        Write::Patch,
        Some(json!({"gateway": {"idle_timeout_ms": 5000}})),
    )
    .expect("patch config");
    assert_eq!(d.gateway.idle_timeout_ms, 5000);
}

#[test]
fn shape_errors_name_the_document_path() {
    let d = doc();
    let e = edit(
        &d,
        &r("/v1/apis/shop/routes"),
        Write::Create,
        Some(json!({"key": "GET /x", "integraton": "users"})),
    )
    .expect_err("typo");
    assert_eq!(e.status, 400);
    assert_eq!(e.errors[0].path, "apis[0].routes[2].integraton");
    let e = edit(
        &d,
        &r("/v1/apis/shop/integrations/users"),
        Write::Patch,
        Some(json!({"timeout_ms": "soon"})),
    )
    .expect_err("type");
    assert_eq!(e.errors[0].path, "apis[0].integrations.users.timeout_ms");
}

#[test]
fn refuses_writes_that_do_not_fit_the_resource() {
    let d = doc();
    let status = |res: Result<ConfigFile, EditError>| res.map_err(|e| e.status).err();
    assert_eq!(
        status(edit(
            &d,
            &r("/v1/apis/shop"),
            Write::Create,
            Some(json!({}))
        )),
        Some(405)
    );
    assert_eq!(
        status(edit(&d, &r("/v1/apis"), Write::Delete, None)),
        Some(405)
    );
    assert_eq!(
        status(edit(
            &d,
            &r("/v1/apis/shop"),
            Write::Replace,
            Some(json!({"name": "other"}))
        )),
        Some(400)
    );
    assert_eq!(
        status(edit(
            &d,
            &r("/v1/apis/shop/routes"),
            Write::Create,
            Some(json!({"integration": "x"}))
        )),
        Some(400)
    );
    assert_eq!(
        status(edit(
            &d,
            &r("/v1/apis/nope/routes"),
            Write::Create,
            Some(json!({"key": "GET /"}))
        )),
        Some(404)
    );
    assert_eq!(
        status(edit(
            &d,
            &r("/v1/apis/shop/stages/nope"),
            Write::Delete,
            None
        )),
        Some(404)
    );
    assert_eq!(
        status(edit(&d, &r("/v1/apis/shop"), Write::Replace, None)),
        Some(400)
    );
}

#[test]
fn merge_patch_follows_rfc_7386() {
    let mut v = json!({"a": "b", "c": {"d": "e", "f": "g"}});
    merge_patch(&mut v, &json!({"a": "z", "c": {"f": null}}));
    assert_eq!(v, json!({"a": "z", "c": {"d": "e"}}));
    let mut v = json!({"a": [1]});
    merge_patch(&mut v, &json!({"a": [2, 3]}));
    assert_eq!(v, json!({"a": [2, 3]}));
}

#[test]
fn absent_collections_read_as_empty() {
    let d = parse("apis: [ { name: a } ]\n").expect("doc");
    assert_eq!(get(&d, &r("/v1/domains")).expect("domains"), json!([]));
    assert_eq!(get(&d, &r("/v1/apis/a/routes")).expect("routes"), json!([]));
    assert_eq!(
        get(&d, &r("/v1/apis/a/integrations")).expect("integrations"),
        json!({})
    );
}
