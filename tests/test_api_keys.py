"""API keys and usage plans on the data plane: routes with api_key_required admit requests
whose x-api-key is an enabled key with a usage plan for the stage; the plan's throttle per key
(and per-route overrides) and its quota apply, shared by every worker; changes through the
admin API take effect within a second; quota used survives restarts."""

import datetime
import os
import subprocess
import json
import time

import requests

from conftest import BIN, hammer


def shop(stages=("prod",)):
    return {
        "gateway": {"throttle": "off"},
        "apis": [
            {
                "name": "shop",
                "api_key_source": "header",
                "integrations": {
                    "ok": {"type": "mock", "status": 200, "headers": {"content-type": "text/plain"}, "body": "ok"},
                },
                "routes": [
                    {"key": "GET /pets", "integration": "ok", "api_key_required": True},
                    {"key": "GET /slow", "integration": "ok", "api_key_required": True},
                    {"key": "GET /open", "integration": "ok"},
                ],
                "stages": [{"name": s} for s in stages],
            }
        ],
    }


def make_key(g, name="partner-a", **extra):
    r = g.admin("POST", "/v1/apikeys", json={"name": name, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def make_plan(g, name="basic", stages=(("shop", "prod"),), **extra):
    body = {"name": name, "api_stages": [{"api": a, "stage": s} for a, s in stages], **extra}
    r = g.admin("POST", "/v1/usageplans", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def attach(g, plan, key):
    r = g.admin("POST", f"/v1/usageplans/{plan['id']}/keys", json={"key_id": key["id"]})
    assert r.status_code == 201, r.text


def get(g, path, key=None):
    headers = {"x-api-key": key["value"]} if key else {}
    return requests.get(g.url(path), headers=headers)


def within_a_second(check):
    deadline = time.monotonic() + 1.0
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_a_key_with_a_plan_for_the_stage_is_admitted(gateway):
    g = gateway(shop(("prod", "beta")))
    key = make_key(g)
    assert get(g, "/prod/pets", key).status_code == 403, "a key with no plan"
    plan = make_plan(g)
    attach(g, plan, key)
    assert get(g, "/prod/pets", key).text == "ok"
    r = get(g, "/beta/pets", key)
    assert r.status_code == 403, "the plan does not cover beta"
    assert r.json() == {"message": "Forbidden"}
    assert get(g, "/prod/pets").status_code == 403, "no key"
    assert get(g, "/prod/pets", {"value": key["value"] + "x"}).status_code == 403
    assert get(g, "/prod/open").status_code == 200, "routes without api_key_required"


def test_a_disabled_or_deleted_key_is_refused_within_a_second(gateway):
    g = gateway(shop())
    plan = make_plan(g)
    key = make_key(g)
    attach(g, plan, key)
    assert get(g, "/prod/pets", key).status_code == 200
    # A keep-alive connection sees the change too.
    s = requests.Session()
    assert s.get(g.url("/prod/pets"), headers={"x-api-key": key["value"]}).status_code == 200
    assert g.admin("PATCH", f"/v1/apikeys/{key['id']}", json={"enabled": False}).status_code == 200
    assert within_a_second(lambda: s.get(g.url("/prod/pets"), headers={"x-api-key": key["value"]}).status_code == 403)
    assert g.admin("PATCH", f"/v1/apikeys/{key['id']}", json={"enabled": True}).status_code == 200
    assert within_a_second(lambda: get(g, "/prod/pets", key).status_code == 200)
    assert g.admin("DELETE", f"/v1/apikeys/{key['id']}").status_code == 204
    assert within_a_second(lambda: get(g, "/prod/pets", key).status_code == 403)


def test_a_key_moved_to_another_plan_gets_its_limits(gateway):
    g = gateway(shop())
    tight = make_plan(g, "tight", quota={"limit": 1, "period": "DAY"})
    loose = make_plan(g, "loose")
    key = make_key(g)
    attach(g, tight, key)
    assert get(g, "/prod/pets", key).status_code == 200
    assert get(g, "/prod/pets", key).status_code == 429
    # One plan per key per stage, as AWS enforces.
    r = g.admin("POST", f"/v1/usageplans/{loose['id']}/keys", json={"key_id": key["id"]})
    assert r.status_code == 409, r.text
    assert g.admin("DELETE", f"/v1/usageplans/{tight['id']}/keys/{key['id']}").status_code == 204
    attach(g, loose, key)
    assert within_a_second(lambda: get(g, "/prod/pets", key).status_code == 200)


def test_each_key_has_its_own_bucket_shared_by_every_worker(gateway):
    cfg = shop()
    cfg["gateway"]["workers"] = 2
    g = gateway(cfg)
    rate = burst = 100
    plan = make_plan(g, throttle={"rate_limit": rate, "burst_limit": burst})
    a, b = make_key(g, "a"), make_key(g, "b")
    attach(g, plan, a)
    attach(g, plan, b)
    counts, elapsed = hammer(g.port, "/prod/pets", 2.0, conns=8, headers={"x-api-key": a["value"]})
    expected = burst + rate * elapsed
    assert counts.get(429, 0) > 0, counts
    assert abs(counts.get(200, 0) - expected) <= max(0.01 * expected, 3), (counts, expected)
    # The bucket refills at 100 a second: drain it again and look at a refusal.
    s = requests.Session()
    r = next(r for r in (s.get(g.url("/prod/pets"), headers={"x-api-key": a["value"]}) for _ in range(1000)) if r.status_code != 200)
    assert r.status_code == 429 and r.json() == {"message": "Too Many Requests"}
    assert int(r.headers["Retry-After"]) >= 1
    assert get(g, "/prod/pets", b).status_code == 200, "another key's bucket is untouched"


def test_a_plans_per_route_throttle_overrides_its_own_on_that_route(gateway):
    g = gateway(shop())
    plan = make_plan(
        g,
        stages=(),
        api_stages=[{"api": "shop", "stage": "prod", "throttle": {"GET /slow": {"rate_limit": 0.1, "burst_limit": 2}}}],
        throttle={"rate_limit": 1000, "burst_limit": 1000},
    )
    key = make_key(g)
    attach(g, plan, key)
    assert [get(g, "/prod/slow", key).status_code for _ in range(3)] == [200, 200, 429]
    assert all(get(g, "/prod/pets", key).status_code == 200 for _ in range(10))


def test_a_quota_is_never_exceeded_across_workers(gateway):
    cfg = shop()
    cfg["gateway"]["workers"] = 2
    g = gateway(cfg)
    plan = make_plan(g, quota={"limit": 300, "period": "DAY"})
    key = make_key(g)
    attach(g, plan, key)
    counts, _ = hammer(g.port, "/prod/pets", 1.5, conns=8, headers={"x-api-key": key["value"]})
    assert counts.get(200, 0) == 300, counts
    r = get(g, "/prod/pets", key)
    assert r.status_code == 429
    assert r.json() == {"message": "Limit Exceeded"}
    assert r.headers["x-amzn-ErrorType"] == "LimitExceededException"
    now = datetime.datetime.now(datetime.timezone.utc)
    midnight = (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(int(r.headers["Retry-After"]) - (midnight - now).total_seconds()) <= 5
    text = g.admin("GET", "/metrics").text
    line = [l for l in text.splitlines() if l.startswith("turnpike_quota_exceeded_requests_total{") and 'route="GET /pets"' in l]
    assert line and int(line[0].rsplit(" ", 1)[1]) >= 1, line


def test_used_quota_survives_restarts_and_a_kill(gateway):
    g = gateway(shop())
    plan = make_plan(g, quota={"limit": 10, "period": "MONTH"})
    key = make_key(g)
    attach(g, plan, key)
    assert all(get(g, "/prod/pets", key).status_code == 200 for _ in range(4))
    assert g.terminate() == 0
    g.start()
    assert all(get(g, "/prod/pets", key).status_code == 200 for _ in range(3))
    # Counts are written every second: after that, even a kill keeps them.
    time.sleep(1.5)
    g.proc.kill()
    g.proc.wait()
    g.log.close()
    g.start()
    statuses = [get(g, "/prod/pets", key).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429], statuses


def test_usage_reports_used_and_remaining_per_day(gateway):
    g = gateway(shop())
    plan = make_plan(g, quota={"limit": 100, "period": "MONTH"})
    key = make_key(g)
    attach(g, plan, key)
    for _ in range(7):
        assert get(g, "/prod/pets", key).status_code == 200
    today = datetime.datetime.now(datetime.timezone.utc).date()
    start = today - datetime.timedelta(days=1)

    def usage():
        r = g.admin(
            "GET",
            f"/v1/usageplans/{plan['id']}/usage",
            params={"key": key["id"], "start_date": start.isoformat(), "end_date": today.isoformat()},
        )
        assert r.status_code == 200, r.text
        return r.json()

    # Written within a second or two (the counters are persisted every second).
    deadline = time.monotonic() + 3
    while usage()["items"].get(key["id"], [[0, 0], [0, 0]])[-1][0] != 7 and time.monotonic() < deadline:
        time.sleep(0.1)
    u = usage()
    days = u["items"][key["id"]]
    assert len(days) == 2
    assert days[-1] == [7, 93], u


def test_the_tutorials_commands(gateway):
    """The user's tutorial: create-usage-plan with throttle and quota, create-api-key
    --enabled, create-usage-plan-key; then a request with the key."""
    g = gateway(shop())
    env = {**os.environ, "TURNPIKE_ADMIN_URL": g.admin_url("").rstrip("/"), "TURNPIKE_ADMIN_TOKEN_FILE": g.config["admin"]["token_file"]}

    def cli(*args):
        p = subprocess.run([BIN, "admin", "--json", *args], capture_output=True, text=True, env=env, timeout=20)
        assert p.returncode == 0, p.stderr
        return p.stdout

    plan = json.loads(cli("plans", "create", "--name", "basic", "--api-stages", "shop:prod",
                          "--throttle", "burstLimit=100,rateLimit=50", "--quota", "limit=10000,period=MONTH"))
    key = json.loads(cli("keys", "create", "--name", "partner-a", "--enabled"))
    cli("plans", "add-key", plan["id"], "--key", key["id"])
    assert get(g, "/prod/pets", key).text == "ok"
    assert get(g, "/prod/pets").status_code == 403



def test_a_plans_new_quota_period_counts_what_was_used_in_it(gateway):
    """Moving a plan from DAY to WEEK (or adding a quota) must not hand every key a fresh
    quota: the new period's count starts from what the key used in it so far."""
    g = gateway(shop())
    plan = make_plan(g, quota={"limit": 7, "period": "DAY"})
    key = make_key(g)
    attach(g, plan, key)
    assert [get(g, "/prod/pets", key).status_code for _ in range(8)] == [200] * 7 + [429]
    r = g.admin("PATCH", f"/v1/usageplans/{plan['id']}", json={"quota": {"limit": 9, "period": "WEEK"}})
    assert r.status_code == 200, r.text
    assert [get(g, "/prod/pets", key).status_code for _ in range(4)] == [200, 200, 429, 429]
    # A plan that had no quota gains one: what the key used today counts.
    open_plan = make_plan(g, "open", stages=(("shop", "prod"),))
    other = make_key(g, "b")
    attach(g, open_plan, other)
    assert all(get(g, "/prod/pets", other).status_code == 200 for _ in range(5))
    r = g.admin("PATCH", f"/v1/usageplans/{open_plan['id']}", json={"quota": {"limit": 6, "period": "MONTH"}})
    assert r.status_code == 200, r.text
    assert [get(g, "/prod/pets", other).status_code for _ in range(3)] == [200, 429, 429]
