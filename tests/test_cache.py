"""Response caching: the AWS stage cache (mode aws) and the RFC 9111 shared cache (mode http),
per core, with hits that never reach the origin, key parameters, TTLs, capacity, the
Cache-Control: max-age=0 invalidation rules, the admin flush on every core, reloads, metrics and
the access log."""

import json
import socket
import time

import pytest
import requests

from conftest import log_with
from support.cache_origin import CacheOrigin


@pytest.fixture
def co():
    o = CacheOrigin()
    yield o
    o.stop()


def config(co, tmp_path, cache=None, routes=None, workers=1, **stage):
    return {
        "gateway": {"throttle": "off", "workers": workers},
        "apis": [
            {
                "name": "shop",
                "integrations": {
                    "origin": {"type": "http_proxy", "uri": f"http://{co.addr}"},
                    "hello": {"type": "mock", "status": 200, "headers": {"content-type": "text/plain"}, "body": "hello"},
                },
                "routes": routes
                or [
                    {"key": "GET /pets", "integration": "origin"},
                    {"key": "GET /pets/{id}", "integration": "origin"},
                    {"key": "POST /pets", "integration": "origin"},
                    {"key": "GET /hello", "integration": "hello"},
                    {"key": "ANY /{proxy+}", "integration": "origin"},
                ],
                "stages": [
                    {
                        "name": "prod",
                        "cache": cache if cache is not None else {"enabled": True},
                        "access_log": {
                            "destination": str(tmp_path / "access.log"),
                            "format": "$context.requestId $context.routeKey $context.status cache=$context.cacheStatus",
                        },
                        **stage,
                    }
                ],
            }
        ],
    }


def n_of(r):
    return r.json()["n"]


def test_hits_never_reach_the_origin_and_misses_always_do(gateway, co, tmp_path):
    g = gateway(config(co, tmp_path))
    s = requests.Session()
    first = s.get(g.url("/prod/pets"), timeout=5)
    assert first.status_code == 200 and co.count() == 1
    for _ in range(5):
        again = s.get(g.url("/prod/pets"), timeout=5)
        assert again.status_code == 200
        assert again.content == first.content
        assert again.headers["content-type"] == "application/json"
        assert again.headers["apigw-requestid"] != first.headers["apigw-requestid"]
        assert "date" in again.headers
    assert co.count() == 1, "a hit reached the origin"
    # Other paths (path parameters included) are other entries.
    assert n_of(s.get(g.url("/prod/pets/1"), timeout=5)) == 2
    assert n_of(s.get(g.url("/prod/pets/2"), timeout=5)) == 3
    assert n_of(s.get(g.url("/prod/pets/1"), timeout=5)) == 2
    # The query string is not part of the key unless a key parameter names it.
    assert n_of(s.get(g.url("/prod/pets?type=dog"), timeout=5)) == 1
    # HEAD is answered from the stored GET.
    h = s.head(g.url("/prod/pets"), timeout=5)
    assert h.status_code == 200 and h.headers["content-length"] == str(len(first.content))
    assert co.count() == 3
    # Mock answers are cached too; errors are not.
    assert s.get(g.url("/prod/hello"), timeout=5).text == "hello"
    assert s.get(g.url("/prod/other?status=503"), timeout=5).status_code == 503
    assert s.get(g.url("/prod/other?status=503"), timeout=5).status_code == 503
    assert co.count() == 5
    log = log_with(tmp_path / "access.log", "GET /hello 200 cache=hit")
    lines = log.splitlines()
    assert lines[0].endswith("GET /pets 200 cache=miss"), lines
    assert lines[1].endswith("GET /pets 200 cache=hit"), lines


def test_ttl_expiry(gateway, co, tmp_path):
    g = gateway(config(co, tmp_path, {"enabled": True, "ttl_seconds": 1}))
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == 1
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == 1
    time.sleep(1.2)
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == 2
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == 2


def test_route_ttl_and_disable_and_methods(gateway, co, tmp_path):
    routes = [
        {"key": "GET /pets", "integration": "origin", "cache": {"ttl_seconds": 1}},
        {"key": "GET /live", "integration": "origin", "cache": {"enabled": False}},
        {"key": "POST /pets", "integration": "origin"},
        {"key": "POST /search", "integration": "origin", "cache": {"enabled": True}},
    ]
    g = gateway(config(co, tmp_path, {"enabled": True, "ttl_seconds": 300}, routes=routes))
    # A route's own TTL wins over the stage's.
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == 1
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == 1
    time.sleep(1.2)
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == 2
    # enabled: false turns the route off.
    a = n_of(requests.get(g.url("/prod/live"), timeout=5))
    assert n_of(requests.get(g.url("/prod/live"), timeout=5)) == a + 1
    # Other methods are not cached by default ...
    a = n_of(requests.post(g.url("/prod/pets"), data=b"{}", timeout=5))
    assert n_of(requests.post(g.url("/prod/pets"), data=b"{}", timeout=5)) == a + 1
    # ... only where the route enables caching.
    a = n_of(requests.post(g.url("/prod/search"), data=b"{}", timeout=5))
    assert n_of(requests.post(g.url("/prod/search"), data=b"{}", timeout=5)) == a


def test_key_parameters_split_entries_other_parameters_do_not(gateway, co, tmp_path):
    routes = [
        {
            "key": "GET /pets",
            "integration": "origin",
            "cache": {"key_parameters": ["method.request.querystring.type", "header.accept"]},
        }
    ]
    g = gateway(config(co, tmp_path, routes=routes))
    get = lambda q, accept="application/json": requests.get(g.url("/prod/pets" + q), headers={"Accept": accept}, timeout=5)
    dog = n_of(get("?type=dog"))
    cat = n_of(get("?type=cat"))
    assert dog != cat
    assert n_of(get("?type=dog")) == dog
    assert n_of(get("?type=dog&page=2")) == dog, "a parameter that is not a key parameter split the entry"
    assert n_of(get("?type=cat&x=1")) == cat
    xml = n_of(get("?type=dog", "application/xml"))
    assert xml not in (dog, cat)
    assert n_of(get("?type=dog", "application/xml")) == xml
    # No type at all is another entry, and so is an empty one.
    none = n_of(get(""))
    empty = n_of(get("?type="))
    assert len({dog, cat, xml, none, empty}) == 5
    assert co.count() == 5


def test_capacity_evicts_and_max_entry_bytes_is_not_stored(gateway, co, origin, tmp_path):
    cfg = config(co, tmp_path, {"enabled": True, "capacity_bytes": 65536, "max_entry_bytes": 20000})
    cfg["apis"][0]["integrations"]["echo"] = {"type": "http_proxy", "uri": f"http://{origin.addr}"}
    cfg["apis"][0]["routes"].append({"key": "GET /chunked/{n}", "integration": "echo"})
    g = gateway(cfg)
    # 10 entries of ~16 KiB in a 64 KiB cache: the first ones are evicted.
    for i in range(10):
        requests.get(g.url(f"/prod/pets/{i}?size=16000"), timeout=5)
    assert co.count() == 10
    r = g.admin("GET", "/v1/apis/shop/stages/prod/cache")
    time.sleep(0.2)
    r = g.admin("GET", "/v1/apis/shop/stages/prod/cache")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["capacity_bytes"] == 65536 and body["mode"] == "aws"
    assert 1 <= body["entries"] <= 4 and body["bytes"] <= 65536, body
    # At most 4 of the 10 are still there (which ones is the eviction policy's choice).
    for i in range(10):
        requests.get(g.url(f"/prod/pets/{i}?size=16000"), timeout=5)
    assert co.count() >= 16, "entries were not evicted"
    # Over max_entry_bytes: never stored (Content-Length known, or chunked and given up midway).
    before = co.count()
    for _ in range(2):
        assert len(requests.get(g.url("/prod/pets/big?size=30000"), timeout=5).content) == 30000
    assert co.count() == before + 2
    before = len(origin.requests)
    for _ in range(2):
        assert len(requests.get(g.url("/prod/chunked/30000"), timeout=5).content) == 30000
    assert len(origin.requests) == before + 2
    for _ in range(2):
        assert len(requests.get(g.url("/prod/chunked/3000"), timeout=5).content) == 3000
    assert len(origin.requests) == before + 3, "a small chunked response was not stored"


@pytest.mark.parametrize(
    "strategy,status,warning",
    [
        ("fail_with_403", 403, None),
        ("SUCCEED_WITH_RESPONSE_HEADER", 200, "199 Cache-control headers were ignored because the caller was unauthorized."),
        ("succeed_without_response_header", 200, None),
    ],
)
def test_max_age_0_from_an_unauthorized_caller(gateway, co, tmp_path, strategy, status, warning):
    g = gateway(config(co, tmp_path, {"enabled": True, "unauthorized_cache_control": strategy}))
    n = n_of(requests.get(g.url("/prod/pets"), timeout=5))
    r = requests.get(g.url("/prod/pets"), headers={"Cache-Control": "max-age=0"}, timeout=5)
    assert r.status_code == status, r.text
    assert r.headers.get("warning") == warning
    if status == 403:
        assert r.json()["message"].startswith(
            "User: anonymous is not authorized to perform: execute-api:InvalidateCache on resource: arn:aws:execute-api:"
        ), r.text
        assert r.json()["message"].endswith("shop/prod/GET/pets")
    else:
        assert n_of(r) == n, "an unauthorized max-age=0 reached the origin"
    assert co.count() == 1


def test_max_age_0_from_an_authorized_caller_refreshes(gateway, co, tmp_path):
    g = gateway(config(co, tmp_path, {"enabled": True, "require_authorization_for_cache_control": False}))
    n = n_of(requests.get(g.url("/prod/pets"), timeout=5))
    fresh = requests.get(g.url("/prod/pets"), headers={"Cache-Control": "max-age=0"}, timeout=5)
    assert n_of(fresh) == n + 1 and "warning" not in fresh.headers
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == n + 1, "the refreshed answer was not stored"
    assert "cache=bypass" in log_with(tmp_path / "access.log", "cache=bypass")


def test_max_age_0_after_an_authorizer_refreshes(gateway, co, tmp_path):
    from support.authorizer import Authorizer

    a = Authorizer()
    try:
        cfg = config(
            co,
            tmp_path,
            {"enabled": True, "unauthorized_cache_control": "fail_with_403"},
            routes=[
                {"key": "GET /pets", "integration": "origin", "authorizer": "simple"},
                {"key": "GET /open", "integration": "origin"},
            ],
        )
        cfg["apis"][0]["authorizers"] = {
            "simple": {
                "type": "request",
                "uri": a.uri,
                "enable_simple_responses": True,
                "identity_source": ["$request.header.Authorization"],
            }
        }
        g = gateway(cfg)
        auth = {"Authorization": "allow"}
        n = n_of(requests.get(g.url("/prod/pets"), headers=auth, timeout=5))
        assert n_of(requests.get(g.url("/prod/pets"), headers=auth, timeout=5)) == n
        r = requests.get(g.url("/prod/pets"), headers={**auth, "Cache-Control": "max-age=0"}, timeout=5)
        assert n_of(r) == n + 1
        # A route without an authorizer has no authorized callers.
        requests.get(g.url("/prod/open"), timeout=5)
        assert requests.get(g.url("/prod/open"), headers={"Cache-Control": "max-age=0"}, timeout=5).status_code == 403
    finally:
        a.stop()


def test_flush_on_every_core(gateway, co, tmp_path):
    g = gateway(config(co, tmp_path, workers=2))

    def fill():
        # A new connection each time: the kernel spreads them over both workers.
        for _ in range(40):
            with requests.Session() as s:
                s.get(g.url("/prod/pets"), timeout=5)

    def sizes():
        time.sleep(0.15)  # workers publish their sizes every tick (50 ms)
        r = g.admin("GET", "/v1/apis/shop/stages/prod/cache")
        assert r.status_code == 200, r.text
        return [w["entries"] for w in r.json()["workers"]]

    fill()
    assert co.count() == 2, "each worker should have missed once"
    assert sizes() == [1, 1]
    r = g.admin("DELETE", "/v1/apis/shop/stages/prod/cache")
    assert r.status_code == 202, r.text
    assert sizes() == [0, 0]
    fill()
    assert co.count() == 4
    # Unknown API, stage, or a stage without a cache: 404.
    assert g.admin("DELETE", "/v1/apis/nope/stages/prod/cache").status_code == 404
    assert g.admin("DELETE", "/v1/apis/shop/stages/nope/cache").status_code == 404
    # The CLI does the same.
    import subprocess

    from conftest import BIN

    out = subprocess.run(
        [BIN, "admin", "--url", g.admin_url(""), "--token-file", g.config["admin"]["token_file"], "cache", "flush", "shop", "prod"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.returncode == 0, out.stderr
    assert sizes() == [0, 0]


def test_reload_keeps_entries_unless_the_cache_settings_change(gateway, co, tmp_path):
    cfg = config(co, tmp_path)
    g = gateway(cfg)
    n = n_of(requests.get(g.url("/prod/pets"), timeout=5))
    # Another change (a stage variable): the entries stay.
    doc = json.loads(json.dumps(cfg))
    doc["apis"][0]["stages"][0]["variables"] = {"color": "blue"}
    assert g.admin("PUT", "/v1/config", json=doc).status_code == 200
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == n
    # The cache's settings change: it starts empty.
    doc["apis"][0]["stages"][0]["cache"] = {"enabled": True, "ttl_seconds": 60}
    assert g.admin("PUT", "/v1/config", json=doc).status_code == 200
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == n + 1
    assert n_of(requests.get(g.url("/prod/pets"), timeout=5)) == n + 1


def test_metrics_count_hits_and_misses_per_route(gateway, co, tmp_path):
    g = gateway(config(co, tmp_path))
    for _ in range(3):
        requests.get(g.url("/prod/pets"), timeout=5)
    requests.get(g.url("/prod/pets/1"), timeout=5)
    text = g.admin("GET", "/metrics").text
    assert 'turnpike_cache_hits_total{api="shop",stage="prod",route="GET /pets"} 2' in text, text
    assert 'turnpike_cache_misses_total{api="shop",stage="prod",route="GET /pets"} 1' in text
    assert 'turnpike_cache_misses_total{api="shop",stage="prod",route="GET /pets/{id}"} 1' in text


def test_config_is_checked(gateway, co, tmp_path):
    g = gateway(config(co, tmp_path))
    doc = config(co, tmp_path, {"enabled": True, "ttl_seconds": 7200, "mode": "lru"})
    r = g.admin("PUT", "/v1/config", json=doc)
    assert r.status_code == 400
    assert "apis[0].stages[0].cache.mode" in r.text, r.text


# --- mode: http (RFC 9111) ---------------------------------------------------------------


def http_config(co, tmp_path, **cache):
    return config(co, tmp_path, {"enabled": True, "mode": "http", **cache}, routes=[{"key": "ANY /{proxy+}", "integration": "origin"}])


def test_http_mode_freshness_and_age(gateway, co, tmp_path):
    g = gateway(http_config(co, tmp_path))
    url = g.url("/prod/a?cc=max-age%3D60")
    first = requests.get(url, timeout=5)
    assert first.headers["cache-status"] == "turnpike; fwd=uri-miss"
    time.sleep(1.1)
    hit = requests.get(url, timeout=5)
    assert n_of(hit) == n_of(first) and hit.headers["cache-status"] == "turnpike; hit"
    assert int(hit.headers["age"]) >= 1
    assert hit.headers["date"] == first.headers["date"], "a hit carries the origin's Date"
    # Nothing said about freshness, no validator: not stored.
    assert n_of(requests.get(g.url("/prod/b"), timeout=5)) != n_of(requests.get(g.url("/prod/b"), timeout=5))
    # The query is part of the key in http mode.
    assert n_of(requests.get(g.url("/prod/a?cc=max-age%3D60&x=1"), timeout=5)) != n_of(first)
    # A request's no-cache makes it go to the origin.
    r = requests.get(url, headers={"Cache-Control": "no-cache"}, timeout=5)
    assert n_of(r) != n_of(first)
    # HEAD from the stored GET.
    assert requests.head(url, timeout=5).headers["cache-status"] == "turnpike; hit"


@pytest.mark.parametrize("cc", ["no-store", "private, max-age=60", "max-age=0"])
def test_http_mode_does_not_reuse(gateway, co, tmp_path, cc):
    g = gateway(http_config(co, tmp_path))
    url = g.url("/prod/x?cc=" + requests.utils.quote(cc))
    assert n_of(requests.get(url, timeout=5)) != n_of(requests.get(url, timeout=5))


def test_http_mode_vary(gateway, co, tmp_path):
    g = gateway(http_config(co, tmp_path))
    url = g.url("/prod/v?cc=max-age%3D60&vary=Accept")
    get = lambda accept: requests.get(url, headers={"Accept": accept}, timeout=5)
    j = n_of(get("application/json"))
    x = n_of(get("application/xml"))
    assert j != x
    assert n_of(get("application/json")) == j
    assert n_of(get("application/xml")) == x
    miss = get("text/plain")
    assert miss.headers["cache-status"] == "turnpike; fwd=vary-miss"


def test_http_mode_revalidates_with_etag(gateway, co, tmp_path):
    g = gateway(http_config(co, tmp_path))
    url = g.url('/prod/e?cc=max-age%3D0&etag="v1"')
    first = requests.get(url, timeout=5)
    assert first.status_code == 200
    again = requests.get(url, timeout=5)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["cache-status"] == "turnpike; fwd=stale; fwd-status=304"
    assert "x-revalidated" in again.headers, "the 304's fields were not merged"
    seen = co.requests[-1]
    assert seen["headers"].get("if-none-match") == '"v1"', seen
    # A client's own conditional request on a fresh entry gets 304 from the cache.
    url2 = g.url('/prod/f?cc=max-age%3D60&etag="v2"')
    requests.get(url2, timeout=5)
    r = requests.get(url2, headers={"If-None-Match": '"v2"'}, timeout=5)
    assert r.status_code == 304 and r.headers["etag"] == '"v2"'
    # only-if-cached with nothing stored: 504.
    assert requests.get(g.url("/prod/none"), headers={"Cache-Control": "only-if-cached"}, timeout=5).status_code == 504


def test_http_mode_serves_stale_when_revalidation_fails(gateway, co, tmp_path):
    g = gateway(http_config(co, tmp_path))
    url = g.url('/prod/s?cc=max-age%3D1&etag="s1"&inm_status=503')
    n = n_of(requests.get(url, timeout=5))
    time.sleep(1.2)
    r = requests.get(url, timeout=5)
    assert r.status_code == 200 and n_of(r) == n, r.text
    assert r.headers["cache-status"] == "turnpike; hit; fwd=stale; detail=origin-error"
    assert co.requests[-1]["headers"].get("if-none-match") == '"s1"'
    assert "cache=stale" in log_with(tmp_path / "access.log", "cache=stale")
    # must-revalidate forbids it: the origin's 503 goes through.
    url = g.url('/prod/t?cc=max-age%3D1%2C%20must-revalidate&etag="t1"&inm_status=503')
    requests.get(url, timeout=5)
    time.sleep(1.2)
    assert requests.get(url, timeout=5).status_code == 503


def test_http_mode_unsafe_methods_invalidate(gateway, co, tmp_path):
    g = gateway(http_config(co, tmp_path))
    url = g.url("/prod/p?cc=max-age%3D60")
    n = n_of(requests.get(url, timeout=5))
    assert n_of(requests.get(url, timeout=5)) == n
    other = g.url("/prod/q?cc=max-age%3D60")
    m = n_of(requests.get(other, timeout=5))
    # A POST to p, whose Location names q: both entries go.
    requests.post(g.url("/prod/p?cc=max-age%3D60&location=/prod/q%3Fcc%3Dmax-age%253D60"), data=b"x", timeout=5)
    requests.post(url, data=b"x", timeout=5)
    assert n_of(requests.get(url, timeout=5)) != n
    assert n_of(requests.get(other, timeout=5)) != m
