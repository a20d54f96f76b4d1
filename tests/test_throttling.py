"""Throttling as AWS applies it: the account-level limit, a stage's default route throttle and
per-route settings, each a token bucket shared by every worker, with 429 THROTTLED answers
(Retry-After from the bucket) through the gateway responses; and routes that require an API
key refusing requests without one (403 INVALID_API_KEY)."""

import time

import pytest
import requests

from conftest import hammer


def mock_api(stage=None, routes=None, **extra):
    a = {
        "name": "shop",
        "integrations": {
            "ok": {"type": "mock", "status": 200, "headers": {"content-type": "text/plain"}, "body": "ok"},
        },
        "routes": routes
        or [
            {"key": "GET /fast", "integration": "ok"},
            {"key": "GET /slow", "integration": "ok"},
            {"key": "GET /other", "integration": "ok"},
        ],
        "stages": [stage or {"name": "$default"}],
    }
    a.update(extra)
    return a


def config(stage=None, throttle="off", **extra):
    return {"gateway": {"throttle": throttle}, "apis": [mock_api(stage, **extra)]}


def test_a_stage_throttle_admits_burst_plus_rate_times_time(gateway):
    # A burst of a second's worth: a client stalled for a moment (a busy machine) loses no
    # tokens, so the count measures the gateway, not the client.
    rate, burst = 200, 200
    g = gateway(config({"name": "$default", "throttle": {"rate_limit": rate, "burst_limit": burst}}))
    counts, elapsed = hammer(g.port, "/fast", 2.0)
    admitted = counts.get(200, 0)
    expected = burst + rate * elapsed
    assert counts.get(429, 0) > 0, counts
    # The client's clock starts a little before the gateway's first token and stops a little
    # after its last: a few requests of slack, far inside 1%.
    assert abs(admitted - expected) <= max(0.01 * expected, 3), (admitted, expected, counts)
    assert counts.get(429, 0) > 0, counts


def test_two_workers_share_one_bucket(gateway):
    rate, burst = 100, 100
    cfg = config({"name": "$default", "throttle": {"rate_limit": rate, "burst_limit": burst}})
    cfg["gateway"]["workers"] = 2
    g = gateway(cfg)
    # Many connections, so both workers take some (SO_REUSEPORT spreads them).
    counts, elapsed = hammer(g.port, "/fast", 2.0, conns=8)
    admitted = counts.get(200, 0)
    expected = burst + rate * elapsed
    assert abs(admitted - expected) <= max(0.01 * expected, 3), (admitted, expected, counts)


def test_route_settings_override_the_stage_default_per_route(gateway):
    stage = {
        "name": "$default",
        "throttle": {"rate_limit": 1000, "burst_limit": 1000},
        "route_settings": {"GET /slow": {"throttle": {"rate_limit": 1, "burst_limit": 3}}},
    }
    g = gateway(config(stage))
    slow = [requests.get(g.url("/slow")).status_code for _ in range(6)]
    assert slow[:3] == [200, 200, 200] and slow[3:] == [429, 429, 429], slow
    # Other routes have buckets of their own, at the stage's default.
    assert all(requests.get(g.url("/fast")).status_code == 200 for _ in range(20))
    assert requests.get(g.url("/other")).status_code == 200


def test_the_throttled_answer_is_awss_with_a_retry_after(gateway):
    stage = {"name": "$default", "route_settings": {"GET /slow": {"throttle": {"rate_limit": 0.25, "burst_limit": 1}}}}
    g = gateway(config(stage))
    assert requests.get(g.url("/slow")).status_code == 200
    r = requests.get(g.url("/slow"))
    assert r.status_code == 429
    assert r.json() == {"message": "Too Many Requests"}
    assert r.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert r.headers["Content-Type"] == "application/json"
    # One token every 4 s: the next frees up in just under 4 s, rounded up.
    assert r.headers["Retry-After"] == "4"
    assert "apigw-requestid" in r.headers
    # Unthrottled routes carry no Retry-After.
    assert "Retry-After" not in requests.get(g.url("/fast")).headers


def test_a_custom_throttled_gateway_response(gateway):
    stage = {"name": "$default", "route_settings": {"GET /slow": {"throttle": {"rate_limit": 1, "burst_limit": 1}}}}
    g = gateway(
        config(
            stage,
            gateway_responses={
                "THROTTLED": {
                    "status": 503,
                    "headers": {"x-slow-down": "yes"},
                    "body": '{"error":"slow down","id":"$context.requestId"}',
                }
            },
        )
    )
    requests.get(g.url("/slow"))
    r = requests.get(g.url("/slow"))
    assert r.status_code == 503
    assert r.headers["x-slow-down"] == "yes"
    assert r.json()["error"] == "slow down"
    assert r.json()["id"] == r.headers["apigw-requestid"]
    assert r.headers["Retry-After"] == "1"


def test_a_zero_rate_refuses_every_request_without_a_retry_after(gateway):
    stage = {"name": "$default", "route_settings": {"GET /slow": {"throttle": {"rate_limit": 0, "burst_limit": 0}}}}
    g = gateway(config(stage))
    r = requests.get(g.url("/slow"))
    assert r.status_code == 429
    assert "Retry-After" not in r.headers
    assert requests.get(g.url("/fast")).status_code == 200


def test_the_account_limit_spans_every_route_and_api(gateway):
    cfg = config(throttle={"rate_limit": 1, "burst_limit": 5})
    second = mock_api(name="other")
    second["name"] = "other"
    cfg["apis"].append(second)
    cfg["domains"] = [{"name": "other.test", "mappings": [{"api": "other", "stage": "$default"}]}]
    g = gateway(cfg)
    statuses = []
    for path, host in [("/fast", None), ("/slow", None), ("/other", None), ("/fast", "other.test"), ("/slow", "other.test"), ("/fast", None), ("/other", "other.test")]:
        headers = {"Host": host} if host else {}
        statuses.append(requests.get(g.url(path), headers=headers).status_code)
    assert statuses[:5] == [200] * 5, statuses
    assert statuses[5:] == [429, 429], statuses


def test_a_reload_keeps_the_buckets(gateway):
    stage = {"name": "$default", "route_settings": {"GET /slow": {"throttle": {"rate_limit": 0.1, "burst_limit": 1}}}}
    cfg = config(stage)
    g = gateway(cfg)
    assert requests.get(g.url("/slow")).status_code == 200
    assert requests.get(g.url("/slow")).status_code == 429
    doc = g.admin("GET", "/v1/config", headers={"Accept": "application/json"}).json()
    doc["apis"][0]["integrations"]["ok"]["body"] = "changed"
    assert g.admin("PUT", "/v1/config", json=doc).status_code == 200
    assert requests.get(g.url("/fast")).text == "changed"
    # The route's bucket outlived the reload: a config change is no way around a throttle.
    assert requests.get(g.url("/slow")).status_code == 429


def test_throttled_requests_are_counted_per_route(gateway):
    stage = {"name": "$default", "route_settings": {"GET /slow": {"throttle": {"rate_limit": 0.1, "burst_limit": 1}}}}
    g = gateway(config(stage))
    for _ in range(4):
        requests.get(g.url("/slow"))
    text = g.admin("GET", "/metrics").text
    line = [l for l in text.splitlines() if l.startswith("turnpike_throttled_requests_total{") and 'route="GET /slow"' in l]
    assert line and line[0].endswith(" 3"), line
    assert any(l.startswith("turnpike_quota_exceeded_requests_total{") for l in text.splitlines())


def test_the_account_throttle_is_on_by_default_and_off_stays_off(gateway):
    g = gateway({"apis": [mock_api()]})
    doc = g.admin("GET", "/v1/config", headers={"Accept": "application/json"}).json()
    assert doc["gateway"]["throttle"] == {"rate_limit": 10000.0, "burst_limit": 5000}
    doc["gateway"]["throttle"] = "off"
    assert g.admin("PUT", "/v1/config", json=doc).status_code == 200
    again = g.admin("GET", "/v1/config", headers={"Accept": "application/json"}).json()
    assert again["gateway"]["throttle"] == "off"
    doc["gateway"]["throttle"] = None
    assert g.admin("PUT", "/v1/config", json=doc).status_code == 200
    assert g.admin("GET", "/v1/config", headers={"Accept": "application/json"}).json()["gateway"]["throttle"] == "off"


@pytest.mark.parametrize(
    "stage, path, reason",
    [
        ({"name": "$default", "route_settings": {"GET /nowhere": {"throttle": {"rate_limit": 1, "burst_limit": 1}}}},
         "apis[0].stages[0].route_settings.GET /nowhere", "no route"),
        ({"name": "$default", "route_settings": {"GET": {}}}, "apis[0].stages[0].route_settings.GET", "not a route key"),
        ({"name": "$default", "throttle": {"rate_limit": -1, "burst_limit": 1}}, "apis[0].stages[0].throttle", "non-negative"),
        ({"name": "$default", "throttle": {"rate_limit": 1}}, "apis[0].stages[0].throttle", "burst_limit"),
    ],
)
def test_bad_throttles_are_refused_with_their_field_path(gateway, stage, path, reason):
    g = gateway(config())
    doc = config(stage)
    r = g.admin("PUT", "/v1/config", json={**doc, "gateway": {**doc["gateway"], "listen": [f"127.0.0.1:{g.port}"]}})
    assert r.status_code == 400, r.text
    assert path in r.text and reason in r.text, r.text
    assert requests.get(g.url("/fast")).text == "ok", "the old config keeps serving"


def test_a_route_that_requires_an_api_key_refuses_requests_without_a_valid_one(gateway):
    routes = [
        {"key": "GET /fast", "integration": "ok", "api_key_required": True},
        {"key": "GET /slow", "integration": "ok"},
    ]
    g = gateway(config(routes=routes, api_key_source="header"))
    for headers in [{}, {"x-api-key": "k" * 40}, {"x-api-key": ""}]:
        r = requests.get(g.url("/fast"), headers=headers)
        assert r.status_code == 403, headers
        assert r.json() == {"message": "Forbidden"}
        assert r.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert requests.get(g.url("/slow")).status_code == 200


def test_a_custom_invalid_api_key_response(gateway):
    routes = [{"key": "GET /fast", "integration": "ok", "api_key_required": True}]
    g = gateway(config(routes=routes, gateway_responses={"INVALID_API_KEY": {"status": 401, "body": '{"error":"$context.error.message"}'}}))
    r = requests.get(g.url("/fast"))
    assert r.status_code == 401
    assert r.json() == {"error": "Forbidden"}
