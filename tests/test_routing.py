"""Routing per the config contract: AWS HTTP API priority rules, path parameters, stages,
stage variables, custom domains, mock integrations, 404s."""

import requests

from conftest import parse_responses, raw


def shop(origin):
    o = origin.addr
    return {
        "apis": [
            {
                "name": "shop",
                "integrations": {
                    "users": {"type": "http_proxy", "uri": f"http://{o}/v2/users"},
                    "user": {"type": "http_proxy", "uri": f"http://{o}/v2/users/{{id}}/profile"},
                    "me": {"type": "mock", "status": 200, "body": "me"},
                    "any_items": {"type": "mock", "status": 200, "body": "any-items"},
                    "get_items": {"type": "mock", "status": 200, "body": "get-items"},
                    "catchall": {"type": "http_proxy", "uri": "http://${stageVariables.backend}/{proxy}"},
                    "passthrough": {"type": "http_proxy", "uri": f"http://{o}"},
                    "fallback": {
                        "type": "mock",
                        "status": 418,
                        "headers": {"content-type": "text/plain", "x-route": "default"},
                        "body": "fallback",
                    },
                },
                "routes": [
                    {"key": "GET /users", "integration": "users"},
                    {"key": "GET /users/me", "integration": "me"},
                    {"key": "GET /users/{id}", "integration": "user"},
                    {"key": "ANY /items", "integration": "any_items"},
                    {"key": "GET /items", "integration": "get_items"},
                    {"key": "ANY /raw/{rest+}", "integration": "passthrough"},
                    {"key": "ANY /{proxy+}", "integration": "catchall"},
                    {"key": "$default", "integration": "fallback"},
                ],
                "stages": [
                    {"name": "prod", "variables": {"backend": o}},
                    {"name": "beta", "variables": {"backend": "127.0.0.1:1"}},
                    {"name": "$default", "variables": {"backend": o}},
                ],
            }
        ]
    }


def test_static_beats_param_beats_greedy(gateway, origin):
    g = gateway(shop(origin))
    assert requests.get(g.url("/prod/users/me")).text == "me"
    r = requests.get(g.url("/prod/users/42"))
    assert r.json()["target"] == "/v2/users/42/profile"
    r = requests.get(g.url("/prod/users"))
    assert r.json()["target"] == "/v2/users"
    r = requests.get(g.url("/prod/users/42/orders?x=1"))
    assert r.json()["target"] == "/users/42/orders?x=1", "greedy route, {proxy} filled"


def test_exact_method_beats_any_and_falls_through(gateway, origin):
    g = gateway(shop(origin))
    assert requests.get(g.url("/prod/items")).text == "get-items"
    assert requests.delete(g.url("/prod/items")).text == "any-items"
    # POST /users/42 has no exact route: the greedy ANY route takes it.
    r = requests.post(g.url("/prod/users/42"), data=b"x")
    assert r.json()["target"] == "/users/42"
    assert r.json()["method"] == "POST"


def test_default_route_catches_the_rest(gateway, origin):
    g = gateway(shop(origin))
    r = requests.get(g.url("/prod/"))
    assert r.status_code == 418 and r.text == "fallback"
    assert r.headers["x-route"] == "default"


def test_uri_without_path_forwards_the_path_below_the_stage(gateway, origin):
    g = gateway(shop(origin))
    r = requests.get(g.url("/prod/raw/a/b%20c?q=%2F&z"))
    assert r.json()["target"] == "/raw/a/b%20c?q=%2F&z"


def test_stages_by_prefix_and_default_stage_at_root(gateway, origin):
    g = gateway(shop(origin))
    assert requests.get(g.url("/users/me")).text == "me", "$default stage at the root"
    r = requests.get(g.url("/anything/else"))
    assert r.json()["target"] == "/anything/else"
    r = requests.get(g.url("/production/x"))
    assert r.json()["target"] == "/production/x", "a prefix that is not a stage name"


def test_stage_variables_pick_the_backend(gateway, origin):
    g = gateway(shop(origin))
    assert requests.get(g.url("/prod/x")).status_code == 200
    # The beta stage points its backend at a closed port: the gateway answers 502 itself.
    r = requests.get(g.url("/beta/x"))
    assert r.status_code == 502
    assert r.json() == {"message": "Internal Server Error"}


def test_missing_stage_variable_is_a_500_not_a_crash(gateway, origin):
    cfg = {
        "apis": [
            {
                "name": "a",
                "integrations": {"c": {"type": "http_proxy", "uri": "http://${stageVariables.backend}/x"}},
                "routes": [{"key": "$default", "integration": "c"}],
                "stages": [{"name": "$default"}],
            }
        ]
    }
    g = gateway(cfg)
    r = requests.get(g.url("/x"))
    assert r.status_code == 500
    assert r.json() == {"message": "Internal Server Error"}
    assert "stage variable \"backend\" is not defined" in g.logs()


def test_unknown_route_is_an_aws_shaped_404(gateway, origin):
    cfg = shop(origin)
    cfg["apis"][0]["routes"] = [r for r in cfg["apis"][0]["routes"] if not r["key"].startswith(("ANY /{", "$"))]
    g = gateway(cfg)
    r = requests.get(g.url("/prod/nothing/here"))
    assert r.status_code == 404
    assert r.json() == {"message": "Not Found"}
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-amzn-errortype"] == "NotFoundException"
    assert requests.get(g.url("/nostage/users")).status_code == 404
    assert len(origin.requests) == 0


def test_mock_integration_status_headers_body_and_head(gateway, origin):
    cfg = {
        "apis": [
            {
                "name": "m",
                "integrations": {
                    "created": {
                        "type": "mock",
                        "status": 201,
                        "headers": {"content-type": "application/json", "x-mock": "yes"},
                        "body": '{"id":7}',
                    },
                    "empty": {"type": "mock", "status": 204},
                },
                "routes": [
                    {"key": "POST /things", "integration": "created"},
                    {"key": "HEAD /things", "integration": "created"},
                    {"key": "DELETE /things", "integration": "empty"},
                ],
                "stages": [{"name": "$default"}],
            }
        ]
    }
    g = gateway(cfg)
    r = requests.post(g.url("/things"), data=b"ignored")
    assert (r.status_code, r.headers["x-mock"], r.json()) == (201, "yes", {"id": 7})
    assert r.headers["content-length"] == "8"
    assert "date" in r.headers
    h = requests.head(g.url("/things"))
    assert h.status_code == 201 and h.headers["content-length"] == "8" and h.content == b""
    d = requests.delete(g.url("/things"))
    assert d.status_code == 204 and d.content == b""
    # A mock answers several pipelined requests on one connection, in order.
    reqs = b"POST /things HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiDELETE /things HTTP/1.1\r\nHost: a\r\n\r\n"
    rs = parse_responses(raw(g.port, reqs))
    assert [x.status for x in rs] == [201, 204]


def domains_config(origin):
    def api(name, body):
        return {
            "name": name,
            "integrations": {
                "m": {"type": "mock", "body": body},
                "p": {"type": "http_proxy", "uri": f"http://{origin.addr}"},
            },
            "routes": [{"key": "GET /who", "integration": "m"}, {"key": "ANY /{proxy+}", "integration": "p"}],
            "stages": [{"name": "prod"}, {"name": "v1"}],
        }

    return {
        "apis": [api("shop", "shop"), api("admin", "admin"), api("fallback", "fallback") | {"default": True}],
        "domains": [
            {"name": "api.example.com", "mappings": [{"api": "shop", "stage": "prod"}]},
            {"name": "*.example.com", "mappings": [{"api": "admin", "stage": "v1"}]},
            {
                "name": "multi.example.org",
                "mappings": [
                    {"api": "shop", "stage": "prod", "base_path": "shop"},
                    {"api": "admin", "stage": "v1", "base_path": "admin/v1"},
                ],
            },
        ],
    }


def test_domains_exact_wildcard_base_paths_and_default_api(gateway, origin):
    g = gateway(domains_config(origin))

    def who(host, path="/who"):
        r = requests.get(g.url(path), headers={"Host": host})
        return r.status_code, r.text

    assert who("api.example.com") == (200, "shop")
    assert who("API.Example.com:443") == (200, "shop"), "case and port do not matter"
    assert who("tenant.example.com") == (200, "admin"), "wildcard"
    assert who("a.b.example.com") == (200, "admin")
    assert who("multi.example.org", "/shop/who") == (200, "shop")
    assert who("multi.example.org", "/admin/v1/who") == (200, "admin")
    assert who("multi.example.org", "/admin/who")[0] == 404
    assert who("unknown.net", "/prod/who") == (200, "fallback"), "no domain: the default API"
    # The base path is stripped before forwarding.
    r = requests.get(g.url("/shop/deep/path?x=1"), headers={"Host": "multi.example.org"})
    assert r.json()["target"] == "/deep/path?x=1"


def test_absolute_form_target_routes_by_its_authority(gateway, origin):
    g = gateway(domains_config(origin))
    resp = raw(g.port, b"GET http://api.example.com/who HTTP/1.1\r\nHost: ignored.net\r\n\r\n")
    assert parse_responses(resp)[0].body == b"shop"


def test_encoded_slashes_and_dots_that_are_not_dot_segments_pass_byte_for_byte(gateway, origin):
    """The dot-segment refusal (see test_smuggling.py) reads %2F and %5C as separators only to
    find `.` and `..`: elsewhere they are data and reach the origin exactly as sent."""
    g = gateway(shop(origin))
    for path in [
        "/files/a%2Fb",
        "/files/a%2fb%2Fc",
        "/files/a%5Cb",
        "/files/..a%2F...",
        "/files/a%2F.b",
        "/files/%2e%2e%2e",
        "/files/100%25",
        "/files/%c3%a9t%C3%A9",
        "/files/a;b=..",
    ]:
        data = raw(g.port, f"GET /prod/raw{path}?q=..%2f HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
        (resp,) = parse_responses(data)
        assert resp.status == 200, (path, resp)
        assert origin.requests[-1].target == f"/raw{path}?q=..%2f", path
        assert resp.json()["target"] == f"/raw{path}?q=..%2f", path
