"""API keys and usage plans as admin resources (`/v1/apikeys`, `/v1/usageplans`,
`turnpike admin keys|plans`): their records, checks, associations, bulk import and export,
the usage report's shape, and their survival across restarts.

The control plane only, except the `test_data_plane_*` tests at the end: they need the data
plane's `api_key_required` routes (the other half of the issue) and fail without it."""

import datetime
import json
import os
import re
import subprocess
import time

import pytest
import requests

from conftest import BIN

KEY_ID = re.compile(r"[a-z0-9]{10}")
PLAN_ID = re.compile(r"[a-z0-9]{6}")
VALUE = "partner-a-0123456789abcdef"


def shop_api():
    return {
        "name": "shop",
        "integrations": {"hello": {"type": "mock", "status": 200, "body": "hello"}},
        "routes": [
            {"key": "GET /pets", "integration": "hello"},
            {"key": "POST /pets", "integration": "hello"},
        ],
        "stages": [{"name": "prod"}, {"name": "dev"}],
    }


@pytest.fixture
def gw(gateway):
    return gateway({"apis": [shop_api()]})


def cli(g, *args, **kw):
    env = dict(
        os.environ,
        TURNPIKE_ADMIN_URL=g.admin_url(""),
        TURNPIKE_ADMIN_TOKEN_FILE=g.config["admin"]["token_file"],
    )
    return subprocess.run([BIN, "admin", "--json", *args], capture_output=True, text=True, env=env, timeout=60, **kw)


def create_key(g, **body):
    body.setdefault("name", "k")
    r = g.admin("POST", "/v1/apikeys", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def create_plan(g, **body):
    body.setdefault("name", "basic")
    body.setdefault("api_stages", [{"api": "shop", "stage": "prod"}])
    r = g.admin("POST", "/v1/usageplans", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def test_keys_are_created_listed_shown_patched_and_deleted(gw):
    made = create_key(gw, name="partner-a", description="first", tags={"team": "a"})
    assert KEY_ID.fullmatch(made["id"]), made
    assert made["enabled"] is True, "keys are enabled unless asked otherwise"
    assert re.fullmatch(r"[A-Za-z0-9]{40}", made["value"]), "a generated value, shown once on create"
    assert made["created_at"].endswith("Z") and made["usage_plan_ids"] == []
    given = create_key(gw, name="partner-b", value=VALUE, enabled=False)
    assert given["value"] == VALUE and given["enabled"] is False

    listed = gw.admin("GET", "/v1/apikeys").json()
    assert {k["id"] for k in listed["items"]} == {made["id"], given["id"]}
    assert all("value" not in k for k in listed["items"]), "values are hidden by default"
    shown = gw.admin("GET", "/v1/apikeys?include_value=true").json()["items"]
    assert {k["value"] for k in shown} == {made["value"], VALUE}

    one = gw.admin("GET", f"/v1/apikeys/{given['id']}").json()
    assert "value" not in one and one["name"] == "partner-b"
    assert gw.admin("GET", f"/v1/apikeys/{given['id']}?include_value=true").json()["value"] == VALUE

    r = gw.admin("PATCH", f"/v1/apikeys/{given['id']}", json={"enabled": True, "description": "now on", "tags": {"x": "y"}})
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["description"], r.json()["tags"]) == (True, "now on", {"x": "y"})
    r = gw.admin("PATCH", f"/v1/apikeys/{given['id']}", json={"description": None})
    assert r.json()["description"] is None

    assert gw.admin("DELETE", f"/v1/apikeys/{given['id']}").status_code == 204
    assert gw.admin("GET", f"/v1/apikeys/{given['id']}").status_code == 404
    assert gw.admin("DELETE", f"/v1/apikeys/{given['id']}").status_code == 404
    assert gw.admin("GET", "/v1/apikeys/nothere").status_code == 404


def test_key_listing_pages_by_position(gw):
    ids = sorted(create_key(gw, name=f"k{i}")["id"] for i in range(7))
    seen, position = [], None
    while True:
        q = "limit=3" + (f"&position={position}" if position else "")
        page = gw.admin("GET", f"/v1/apikeys?{q}").json()
        seen += [k["id"] for k in page["items"]]
        position = page.get("position")
        if not position:
            break
    assert seen == ids
    assert gw.admin("GET", "/v1/apikeys?limit=0").status_code == 400


def test_bad_key_fields_are_refused_with_their_names(gw):
    for body, field in [
        ({"name": "x", "value": "short"}, "value"),
        ({"name": "x", "value": "has a space in it, twenty+"}, "value"),
        ({"name": "x", "value": "é" * 25}, "value"),
        ({"name": ""}, "name"),
        ({"name": "x", "enabled": "yes"}, "enabled"),
        ({"name": "x", "id": "abcdefghij"}, "id"),
    ]:
        r = gw.admin("POST", "/v1/apikeys", json=body)
        assert r.status_code == 400, (body, r.text)
        assert field in [e["path"] for e in r.json()["errors"]], (body, r.json())
    r = gw.admin("POST", "/v1/apikeys", json={"name": "x", "colour": "red"})
    assert r.status_code == 400 and "colour" in r.text
    k = create_key(gw)
    r = gw.admin("PATCH", f"/v1/apikeys/{k['id']}", json={"value": VALUE})
    assert r.status_code == 400 and r.json()["errors"][0]["path"] == "value"
    r = gw.admin("PATCH", f"/v1/apikeys/{k['id']}", json={"enabled": 1})
    assert r.status_code == 400 and r.json()["errors"][0]["path"] == "enabled"


def test_a_duplicate_value_is_a_conflict(gw):
    first = create_key(gw, value=VALUE)
    r = gw.admin("POST", "/v1/apikeys", json={"name": "again", "value": VALUE})
    assert r.status_code == 409, r.text
    assert first["id"] in r.json()["message"]


def test_plans_are_created_shown_patched_and_deleted(gw):
    plan = create_plan(
        gw,
        description="the basic tier",
        api_stages=[{"api": "shop", "stage": "prod", "throttle": {"GET /pets": {"rate_limit": 5, "burst_limit": 10}}}],
        throttle={"rate_limit": 50, "burst_limit": 100},
        quota={"limit": 10000, "period": "MONTH"},
    )
    assert PLAN_ID.fullmatch(plan["id"]), plan
    assert plan["quota"] == {"limit": 10000, "period": "MONTH", "offset": 0}
    assert plan["api_stages"][0]["throttle"]["GET /pets"] == {"rate_limit": 5.0, "burst_limit": 10}
    assert [p["id"] for p in gw.admin("GET", "/v1/usageplans").json()["items"]] == [plan["id"]]

    r = gw.admin("PATCH", f"/v1/usageplans/{plan['id']}", json={"quota": None, "throttle": {"rate_limit": 1, "burst_limit": 2}})
    assert r.status_code == 200, r.text
    assert r.json()["quota"] is None and r.json()["throttle"] == {"rate_limit": 1.0, "burst_limit": 2}
    assert r.json()["description"] == "the basic tier", "a merge patch keeps what it does not name"
    r = gw.admin("PUT", f"/v1/usageplans/{plan['id']}", json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["api_stages"] == [] and r.json()["throttle"] is None

    assert gw.admin("DELETE", f"/v1/usageplans/{plan['id']}").status_code == 204
    assert gw.admin("GET", f"/v1/usageplans/{plan['id']}").status_code == 404


def test_bad_plan_fields_are_refused_with_their_paths(gw):
    cases = [
        ({"api_stages": [{"api": "shop", "stage": "staging"}]}, "api_stages[0].stage"),
        ({"api_stages": [{"api": "nope", "stage": "prod"}]}, "api_stages[0].api"),
        ({"api_stages": [{"api": "shop", "stage": "prod", "throttle": {"GET /cats": {"rate_limit": 1, "burst_limit": 1}}}]}, 'api_stages[0].throttle["GET /cats"]'),
        ({"quota": {"limit": 5, "period": "WEEK", "offset": 7}}, "quota.offset"),
        ({"quota": {"limit": 5, "period": "YEAR"}}, "quota.period"),
        ({"throttle": {"rate_limit": -1, "burst_limit": 1}}, "throttle.rate_limit"),
        ({"throttle": {"rate_limit": 1}}, "throttle"),
    ]
    for extra, path in cases:
        body = {"name": "p", **extra}
        r = gw.admin("POST", "/v1/usageplans", json=body)
        assert r.status_code == 400, (body, r.text)
        paths = [e["path"] for e in r.json()["errors"]]
        assert path in paths, (body, paths)


def test_one_plan_per_key_per_stage(gw):
    prod = create_plan(gw, name="prod")
    both = create_plan(gw, name="both", api_stages=[{"api": "shop", "stage": "dev"}, {"api": "shop", "stage": "prod"}])
    dev = create_plan(gw, name="dev", api_stages=[{"api": "shop", "stage": "dev"}])
    k = create_key(gw)
    r = gw.admin("POST", f"/v1/usageplans/{prod['id']}/keys", json={"key_id": k["id"]})
    assert r.status_code == 201, r.text
    r = gw.admin("POST", f"/v1/usageplans/{both['id']}/keys", json={"keyId": k["id"], "keyType": "API_KEY"})
    assert r.status_code == 409, r.text
    assert r.json()["usage_plan_id"] == prod["id"] and r.json()["stage"] == "shop:prod"
    assert prod["id"] in r.json()["message"]
    assert gw.admin("POST", f"/v1/usageplans/{dev['id']}/keys", json={"key_id": k["id"]}).status_code == 201
    # Moving the dev plan onto prod would give the key two plans there.
    r = gw.admin("PATCH", f"/v1/usageplans/{dev['id']}", json={"api_stages": [{"api": "shop", "stage": "prod"}]})
    assert r.status_code == 409, r.text
    assert sorted(gw.admin("GET", f"/v1/apikeys/{k['id']}").json()["usage_plan_ids"]) == sorted([prod["id"], dev["id"]])
    keys = gw.admin("GET", f"/v1/usageplans/{prod['id']}/keys").json()["items"]
    assert [x["id"] for x in keys] == [k["id"]]
    assert gw.admin("POST", f"/v1/usageplans/{prod['id']}/keys", json={"key_id": "nokey00000"}).status_code == 404

    assert gw.admin("DELETE", f"/v1/usageplans/{prod['id']}/keys/{k['id']}").status_code == 204
    assert gw.admin("DELETE", f"/v1/usageplans/{prod['id']}/keys/{k['id']}").status_code == 404
    assert gw.admin("POST", f"/v1/usageplans/{both['id']}/keys", json={"key_id": k["id"]}).status_code == 409, "dev still conflicts"
    # Deleting a key ends its associations.
    assert gw.admin("DELETE", f"/v1/apikeys/{k['id']}").status_code == 204
    assert gw.admin("GET", f"/v1/usageplans/{dev['id']}/keys").json()["items"] == []


def test_usage_report_shape(gw):
    plan = create_plan(gw, quota={"limit": 100, "period": "DAY"})
    k = create_key(gw)
    gw.admin("POST", f"/v1/usageplans/{plan['id']}/keys", json={"key_id": k["id"]})
    start = (today() - datetime.timedelta(days=2)).isoformat()
    end = today().isoformat()
    r = gw.admin("GET", f"/v1/usageplans/{plan['id']}/usage?key={k['id']}&start_date={start}&end_date={end}")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "usage_plan_id": plan["id"],
        "start_date": start,
        "end_date": end,
        "items": {k["id"]: [[0, 100], [0, 100], [0, 100]]},
    }
    noquota = create_plan(gw, name="free", api_stages=[{"api": "shop", "stage": "dev"}])
    gw.admin("POST", f"/v1/usageplans/{noquota['id']}/keys", json={"key_id": k["id"]})
    r = gw.admin("GET", f"/v1/usageplans/{noquota['id']}/usage?key={k['id']}&start_date={end}&end_date={end}")
    assert r.json()["items"] == {k["id"]: [[0, None]]}
    r = gw.admin("GET", f"/v1/usageplans/{plan['id']}/usage?start_date={end}&end_date={start}")
    assert r.status_code == 400 and "end_date" in r.json()["message"]
    r = gw.admin("GET", f"/v1/usageplans/{plan['id']}/usage?start_date=2026-13-01&end_date={end}")
    assert r.status_code == 400 and "start_date" in r.json()["message"]


def test_export_then_import_round_trip_and_a_bad_line_refuses_all(gw, gateway):
    plan = create_plan(gw)
    a = create_key(gw, name="a", value=VALUE, tags={"t": "1"})
    b = create_key(gw, name="b", enabled=False)
    gw.admin("POST", f"/v1/usageplans/{plan['id']}/keys", json={"key_id": a["id"]})
    r = gw.admin("GET", "/v1/apikeys/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert {x["id"]: x["value"] for x in lines} == {a["id"]: VALUE, b["id"]: b["value"]}
    assert {x["id"]: x["usage_plan_ids"] for x in lines} == {a["id"]: [plan["id"]], b["id"]: []}

    # Into a second gateway with the same plan id? Plans are not exported: drop the ids.
    other = gateway({"apis": [shop_api()]})
    for x in lines:
        x["usage_plan_ids"] = []
    body = "\n".join(json.dumps(x) for x in lines) + "\n"
    r = other.admin("POST", "/v1/apikeys/import", data=body)
    assert r.status_code == 200 and r.json()["imported"] == 2, r.text
    again = {x["id"]: x for x in (json.loads(line) for line in other.admin("GET", "/v1/apikeys/export").text.splitlines())}
    assert again[a["id"]]["value"] == VALUE and again[a["id"]]["tags"] == {"t": "1"}
    assert again[b["id"]]["enabled"] is False
    assert again[a["id"]]["created_at"] == a["created_at"], "import keeps the exported times"

    # All or nothing: one bad line and not one key goes in.
    bad = "\n".join(
        [
            json.dumps({"name": "fine", "value": "x" * 30}),
            json.dumps({"name": "short", "value": "tiny"}),
            "{not json",
            json.dumps({"name": "dup", "value": VALUE}),
            json.dumps({"name": "noplan", "usage_plan_ids": ["zzzzzz"]}),
        ]
    )
    r = gw.admin("POST", "/v1/apikeys/import", data=bad)
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 4", "line 5"], errors
    assert "value" in errors[0] and "usage_plan_ids[0]" in errors[3]
    assert errors[1].startswith("line 3: not a JSON object: "), errors[1]
    assert len(gw.admin("GET", "/v1/apikeys").json()["items"]) == 2, "nothing imported"


def test_keys_plans_and_associations_survive_a_restart(gw):
    plan = create_plan(gw, quota={"limit": 10, "period": "WEEK", "offset": 1})
    k = create_key(gw, value=VALUE)
    gw.admin("POST", f"/v1/usageplans/{plan['id']}/keys", json={"key_id": k["id"]})
    assert gw.terminate() == 0
    gw.start()
    shown = gw.admin("GET", f"/v1/apikeys/{k['id']}?include_value=true").json()
    assert shown["value"] == VALUE and shown["usage_plan_ids"] == [plan["id"]]
    assert gw.admin("GET", f"/v1/usageplans/{plan['id']}").json()["quota"] == {"limit": 10, "period": "WEEK", "offset": 1}
    assert "API keys loaded" in gw.logs()


def test_a_config_without_a_plans_stage_is_applied_with_a_warning(gw):
    plan = create_plan(gw, api_stages=[{"api": "shop", "stage": "dev"}])
    api = shop_api()
    api["stages"] = [{"name": "prod"}]
    r = gw.admin("PUT", "/v1/config", json={"apis": [api]})
    assert r.status_code == 200, r.text
    assert f"usage plan {plan['id']} names API stages" in gw.wait_log("names API stages")
    assert gw.admin("GET", f"/v1/usageplans/{plan['id']}").status_code == 200


def test_cli_speaks_the_tutorials_shorthand(gw, tmp_path):
    r = cli(gw, "plans", "create", "--name", "basic", "--api-stages", "shop:prod",
            "--throttle", "burstLimit=100,rateLimit=50", "--quota", "limit=10000,period=MONTH")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["throttle"] == {"rate_limit": 50.0, "burst_limit": 100}
    assert plan["quota"]["limit"] == 10000 and plan["api_stages"] == [{"api": "shop", "stage": "prod"}]
    r = cli(gw, "keys", "create", "--name", "partner-a", "--enabled")
    assert r.returncode == 0, r.stderr
    key = json.loads(r.stdout)
    assert key["enabled"] is True and len(key["value"]) == 40
    r = cli(gw, "plans", "add-key", plan["id"], "--key", key["id"])
    assert r.returncode == 0, r.stderr
    r = cli(gw, "plans", "keys", plan["id"])
    assert [x["id"] for x in json.loads(r.stdout)["items"]] == [key["id"]]
    d = today().isoformat()
    r = cli(gw, "plans", "usage", plan["id"], "--key", key["id"], "--start-date", d, "--end-date", d)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["items"] == {key["id"]: [[0, 10000]]}

    assert cli(gw, "keys", "disable", key["id"]).returncode == 0
    assert json.loads(cli(gw, "keys", "show", key["id"]).stdout)["enabled"] is False
    assert cli(gw, "keys", "enable", key["id"]).returncode == 0
    r = cli(gw, "keys", "show", key["id"], "--include-value")
    assert json.loads(r.stdout)["value"] == key["value"]
    r = cli(gw, "keys", "update", key["id"], "--name", "partner-a2", "--tag", "tier=basic")
    assert json.loads(r.stdout)["tags"] == {"tier": "basic"}
    r = cli(gw, "plans", "update", plan["id"], "--no-quota", "--route-throttle", "shop:prod GET /pets=burstLimit=10,rateLimit=5")
    assert r.returncode == 0, r.stderr
    updated = json.loads(r.stdout)
    assert updated["quota"] is None and updated["api_stages"][0]["throttle"]["GET /pets"]["burst_limit"] == 10

    export = cli(gw, "keys", "export")
    assert export.returncode == 0 and key["value"] in export.stdout
    lines = tmp_path / "keys.jsonl"
    lines.write_text(json.dumps({"name": "imported", "value": "y" * 24, "usage_plan_ids": [plan["id"]]}) + "\n")
    r = cli(gw, "keys", "import", str(lines))
    assert r.returncode == 0 and json.loads(r.stdout)["imported"] == 1, r.stderr
    r = cli(gw, "keys", "import", str(lines))
    assert r.returncode != 0 and "line 1: value" in r.stderr, "a refusal goes to stderr"

    assert cli(gw, "plans", "remove-key", plan["id"], "--key", key["id"]).stdout == f"removed {key['id']} from {plan['id']}\n"
    assert cli(gw, "keys", "delete", key["id"]).stdout == f"deleted {key['id']}\n"
    r = cli(gw, "plans", "create", "--name", "x", "--api-stages", "shop:staging")
    assert r.returncode != 0 and "api_stages[0].stage" in r.stderr
    r = cli(gw, "plans", "create", "--name", "x", "--throttle", "burst=1")
    assert r.returncode != 0 and "burst" in r.stderr
    assert cli(gw, "plans", "delete", plan["id"]).stdout == f"deleted {plan['id']}\n"


# -- DATA PLANE: these need the data plane's half of issue 9 (api_key_required routes,
# -- api_key_source: header) and fail on the control-plane branch alone.


def keyed_gateway(gateway):
    api = shop_api()
    api["api_key_source"] = "header"
    for r in api["routes"]:
        r["api_key_required"] = True
    api["stages"] = [{"name": "$default"}]
    return gateway({"apis": [api]})


def wait_status(g, value, status, timeout=1.0):
    """The first answer with `status` within `timeout` (or the last one). A refused connection
    (a gateway just restarted, its workers not listening yet) is tried again."""
    deadline = time.time() + timeout
    while True:
        try:
            r = requests.get(g.url("/pets"), headers={"x-api-key": value}, timeout=5)
        except requests.ConnectionError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)
            continue
        if r.status_code == status or time.time() > deadline:
            return r
        time.sleep(0.02)


def test_data_plane_a_key_works_and_a_disabled_key_is_refused_within_a_second(gateway):
    g = keyed_gateway(gateway)
    plan = create_plan(g, api_stages=[{"api": "shop", "stage": "$default"}], quota={"limit": 3, "period": "DAY"})
    k = create_key(g, value=VALUE)
    assert requests.get(g.url("/pets"), headers={"x-api-key": VALUE}, timeout=5).status_code == 403, "no plan yet"
    g.admin("POST", f"/v1/usageplans/{plan['id']}/keys", json={"key_id": k["id"]})
    assert wait_status(g, VALUE, 200).status_code == 200
    g.admin("PATCH", f"/v1/apikeys/{k['id']}", json={"enabled": False})
    started = time.time()
    r = wait_status(g, VALUE, 403)
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    assert time.time() - started < 1.0


def test_data_plane_used_quota_survives_a_restart_and_shows_in_usage(gateway):
    g = keyed_gateway(gateway)
    plan = create_plan(g, api_stages=[{"api": "shop", "stage": "$default"}], quota={"limit": 3, "period": "DAY"})
    k = create_key(g, value=VALUE)
    g.admin("POST", f"/v1/usageplans/{plan['id']}/keys", json={"key_id": k["id"]})
    for _ in range(2):
        assert wait_status(g, VALUE, 200).status_code == 200
    assert g.terminate() == 0
    g.start()
    assert wait_status(g, VALUE, 200).status_code == 200
    r = requests.get(g.url("/pets"), headers={"x-api-key": VALUE}, timeout=5)
    assert r.status_code == 429 and r.json() == {"message": "Limit Exceeded"}
    d = today().isoformat()
    usage = g.admin("GET", f"/v1/usageplans/{plan['id']}/usage?start_date={d}&end_date={d}").json()
    assert usage["items"] == {k["id"]: [[3, 0]]}


def test_data_plane_a_key_moved_to_another_plan_gets_its_limits_at_once(gateway):
    g = keyed_gateway(gateway)
    stages = [{"api": "shop", "stage": "$default"}]
    tight = create_plan(g, name="tight", api_stages=stages, quota={"limit": 1, "period": "DAY"})
    open_plan = create_plan(g, name="open", api_stages=stages)
    k = create_key(g, value=VALUE)
    g.admin("POST", f"/v1/usageplans/{tight['id']}/keys", json={"key_id": k["id"]})
    assert wait_status(g, VALUE, 200).status_code == 200
    assert requests.get(g.url("/pets"), headers={"x-api-key": VALUE}, timeout=5).status_code == 429
    assert g.admin("DELETE", f"/v1/usageplans/{tight['id']}/keys/{k['id']}").status_code == 204
    assert g.admin("POST", f"/v1/usageplans/{open_plan['id']}/keys", json={"key_id": k["id"]}).status_code == 201
    started = time.time()
    assert wait_status(g, VALUE, 200).status_code == 200
    assert time.time() - started < 1.0


def test_data_plane_counts_saved_each_second_survive_a_kill(gateway):
    g = keyed_gateway(gateway)
    plan = create_plan(g, api_stages=[{"api": "shop", "stage": "$default"}], quota={"limit": 5, "period": "DAY"})
    k = create_key(g, value=VALUE)
    g.admin("POST", f"/v1/usageplans/{plan['id']}/keys", json={"key_id": k["id"]})
    assert wait_status(g, VALUE, 200).status_code == 200
    for _ in range(2):
        assert requests.get(g.url("/pets"), headers={"x-api-key": VALUE}, timeout=5).status_code == 200
    time.sleep(1.5)  # the saver runs every second
    g.proc.kill()
    g.proc.wait()
    g.log.close()
    g.start()
    # The port can answer a moment before the workers listen on it: wait for a first answer.
    first = None
    deadline = time.time() + 5
    while first is None and time.time() < deadline:
        try:
            first = requests.get(g.url("/pets"), headers={"x-api-key": VALUE}, timeout=5).status_code
        except requests.ConnectionError:
            time.sleep(0.02)
    codes = [first] + [requests.get(g.url("/pets"), headers={"x-api-key": VALUE}, timeout=5).status_code for _ in range(2)]
    assert codes == [200, 200, 429], "3 used before the kill, 2 left after it"
