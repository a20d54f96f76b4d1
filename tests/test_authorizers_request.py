"""Request ("Lambda") authorizers called over HTTP with AWS's event (payload 2.0 and 1.0):
simple and IAM-policy answers, the context reaching the backend, 401 without a call when an
identity source is missing, answers cached per identity for `result_ttl`, and 500 when the
authorizer fails, is slow or answers nonsense."""

import time

import pytest
import requests

from conftest import free_port
from support.authorizer import Authorizer


@pytest.fixture
def authorizer():
    a = Authorizer()
    yield a
    a.stop()


def config(authorizer, origin, **extra):
    return {
        "gateway": {"throttle": "off"},
        "apis": [
            {
                "name": "shop",
                "authorizers": {
                    "simple": {
                        "type": "request",
                        "uri": authorizer.uri,
                        "enable_simple_responses": True,
                        "identity_source": ["$request.header.Authorization"],
                        "result_ttl": 300,
                        "timeout_ms": 700,
                    },
                    "gone": {"type": "request", "uri": f"http://127.0.0.1:{free_port()}/authorize"},
                    "policy": {
                        "type": "request",
                        "uri": authorizer.uri,
                        "payload_format": "1.0",
                        "identity_source": "$request.header.Authorization",
                        "result_ttl": 0,
                    },
                },
                "integrations": {"users": {"type": "http_proxy", "uri": f"http://{origin.addr}"}},
                "routes": [
                    {"key": "GET /users/{id}", "integration": "users", "authorizer": "simple"},
                    {"key": "GET /pets", "integration": "users", "authorizer": "policy"},
                    {"key": "GET /other", "integration": "users", "authorizer": "policy"},
                    {"key": "GET /gone", "integration": "users", "authorizer": "gone"},
                ],
                "stages": [{"name": "prod"}],
                **extra,
            }
        ],
    }


def get(g, path, token=None, **headers):
    if token is not None:
        headers["Authorization"] = token
    return requests.get(g.url(path), headers=headers, timeout=10)


def test_simple_answers_and_the_context_reaching_the_backend(gateway, origin, authorizer):
    g = gateway(config(authorizer, origin))
    # Missing identity source: 401 and no call.
    r = get(g, "/prod/users/7")
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}
    assert authorizer.events == []

    r = get(g, "/prod/users/7?x=1", "allow", **{"x-authorizer-role": "forged"})
    assert r.status_code == 200, r.text
    seen = origin.requests[-1]
    assert seen.header("x-authorizer-userid") == ["user_123"]
    assert seen.header("x-authorizer-role") == ["admin"]

    event = authorizer.events[-1]
    assert event["version"] == "2.0" and event["type"] == "REQUEST"
    assert event["identitySource"] == ["allow"]
    assert event["routeKey"] == "GET /users/{id}"
    assert event["rawPath"] == "/prod/users/7"
    assert event["pathParameters"] == {"id": "7"}
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["stage"] == "prod"
    assert event["routeArn"].startswith("arn:aws:execute-api:us-east-1:")
    assert event["routeArn"].endswith(":shop/prod/GET/users/7")

    r = get(g, "/prod/users/7", "deny")
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    assert not any(req.header("authorization") == ["deny"] for req in origin.requests)


def test_answers_are_cached_per_identity_for_result_ttl(gateway, origin, authorizer):
    g = gateway(config(authorizer, origin))
    for _ in range(5):
        assert get(g, "/prod/users/1", "allow").status_code == 200
        assert get(g, "/prod/users/2", "deny").status_code == 403
    assert authorizer.calls("allow") == 1
    assert authorizer.calls("deny") == 1
    # Another identity is another entry.
    assert get(g, "/prod/users/1", "allow-2").status_code == 200
    assert authorizer.calls("allow-2") == 1
    # result_ttl 0 calls every time.
    for _ in range(3):
        assert get(g, "/prod/pets", "iam-allow").status_code == 200
    assert authorizer.calls("iam-allow") == 3
    # An unrelated change to the config keeps the cache.
    doc = config(authorizer, origin)
    doc["apis"][0]["routes"].append({"key": "GET /new", "integration": "users"})
    assert g.admin("PUT", "/v1/config", json=doc).status_code in (200, 201)
    time.sleep(0.3)
    assert get(g, "/prod/users/1", "allow").status_code == 200
    assert authorizer.calls("allow") == 1


def test_iam_policy_answers_are_judged_against_the_route_arn(gateway, origin, authorizer):
    g = gateway(config(authorizer, origin))
    token = "iam-allow:arn:aws:execute-api:*:*:shop/prod/GET/pets*"
    assert get(g, "/prod/pets", token).status_code == 200
    seen = origin.requests[-1]
    assert seen.header("x-authorizer-principal-id") == ["user_123"]
    assert seen.header("x-authorizer-level") == ["3"]
    assert seen.header("x-authorizer-beta") == ["true"]
    assert get(g, "/prod/other", token).status_code == 403
    assert get(g, "/prod/pets", "iam-deny").status_code == 403
    event = authorizer.events[-1]
    assert event["version"] == "1.0" and event["type"] == "REQUEST"
    assert event["methodArn"].endswith(":shop/prod/GET/pets")


def test_failing_slow_and_nonsense_authorizers_get_500(gateway, origin, authorizer):
    g = gateway(config(authorizer, origin))
    started = time.time()
    r = get(g, "/prod/users/1", "slow")
    assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}
    assert r.headers["x-amzn-errortype"] == "AuthorizerConfigurationException"
    assert time.time() - started < 1.8
    for token in ("crash", "garbage", "wrong-type"):
        r = get(g, "/prod/users/1", token)
        assert r.status_code == 500, (token, r.text)
    # Nobody listening: 500 at once.
    assert get(g, "/prod/gone", "allow").status_code == 500
    # The operator is told why (one line per worker per interval; the rest are counted).
    log = g.wait_log("authorizer failed")
    assert 'authorizer failed worker=0 request_id=' in log, log
    assert 'api=shop stage=prod route="GET /users/{id}" upstream=- status=500 reason="authorizer timed out"' in log, log
    assert len(origin.requests) == 0


def test_usage_identifier_key_feeds_usage_plans(gateway, origin, authorizer):
    doc = config(authorizer, origin, api_key_source="authorizer")
    doc["apis"][0]["routes"].append(
        {"key": "GET /metered", "integration": "users", "authorizer": "policy", "api_key_required": True}
    )
    g = gateway(doc)
    key = g.admin("POST", "/v1/apikeys", json={"name": "partner", "value": "partner-key-0123456789"})
    assert key.status_code == 201, key.text
    plan = g.admin(
        "POST",
        "/v1/usageplans",
        json={"name": "basic", "api_stages": [{"api": "shop", "stage": "prod"}], "quota": {"limit": 2, "period": "DAY"}},
    )
    assert plan.status_code == 201, plan.text
    r = g.admin("POST", f"/v1/usageplans/{plan.json()['id']}/keys", json={"key_id": key.json()["id"]})
    assert r.status_code == 201, r.text
    deadline = time.time() + 5
    while get(g, "/prod/metered", "key:partner-key-0123456789").status_code != 200:
        assert time.time() < deadline
        time.sleep(0.1)
    assert get(g, "/prod/metered", "key:partner-key-0123456789").status_code == 200
    assert get(g, "/prod/metered", "key:partner-key-0123456789").status_code == 429
    assert get(g, "/prod/metered", "key:unknown-key-0123456789").status_code == 403
