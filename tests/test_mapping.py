"""Parameter mapping (AWS HTTP API requestParameters / responseParameters): every key and
value kind on http_proxy and function integrations, response mapping by status code, and
configs that cannot work refused with the field path and the reason."""

import json
import os
import subprocess
import sys

import requests

from conftest import BIN

HERE = os.path.join(os.path.dirname(__file__), "support", "functions")

REQUEST_PARAMETERS = {
    "append:header.x-from-header": "$request.header.x-tenant",
    "append:header.x-from-query": "$request.querystring.type",
    "append:header.x-from-body": "$request.body.owner.name",
    "append:header.x-from-body-list": "$request.body.tags[1]",
    "append:header.x-from-path": "$request.path",
    "append:header.x-from-param": "$request.path.id",
    "append:header.x-from-context": "$context.requestId",
    "append:header.x-from-stage": "$stageVariables.env",
    "append:header.x-static": "fixed value",
    "append:header.x-combined": "${request.path.id}/${stageVariables.env}/${request.header.x-tenant}",
    "append:header.x-missing": "$request.header.not-sent",
    "overwrite:header.x-over": "new",
    "remove:header.x-secret": "''",
    "append:header.x-multi": "second",
    "overwrite:querystring.limit": "5",
    "append:querystring.tenant": "$request.header.x-tenant",
    "remove:querystring.debug": "''",
    "overwrite:path": "/v2/pets/${request.path.id}",
}


def api(origin, **integration):
    return {
        "gateway": {"throttle": "off"},
        "apis": [
            {
                "name": "shop",
                "integrations": {
                    "mapped": {"type": "http_proxy", "uri": f"http://{origin.addr}", **integration},
                    "plain": {"type": "http_proxy", "uri": f"http://{origin.addr}"},
                },
                "routes": [
                    {"key": "POST /pets/{id}", "integration": "mapped"},
                    {"key": "GET /status/{code}", "integration": "mapped"},
                    {"key": "GET /chunked/{n}", "integration": "mapped"},
                    {"key": "GET /echo", "integration": "mapped"},
                    {"key": "$default", "integration": "plain"},
                ],
                "stages": [{"name": "$default", "variables": {"env": "prod"}}],
            }
        ],
    }


def header(seen, name):
    return [v for k, v in seen.headers if k.lower() == name]


def test_every_request_key_and_value_kind_on_http_proxy(gateway, origin):
    g = gateway(api(origin, request_parameters=REQUEST_PARAMETERS))
    body = {"owner": {"name": "Ann"}, "tags": ["a", "b"]}
    r = requests.post(
        g.url("/pets/42?type=dog&type=cat&limit=10&debug=1&keep=yes"),
        json=body,
        headers={"x-tenant": "acme", "x-over": "old", "x-secret": "s3cret", "x-multi": "first"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    seen = origin.requests[-1]
    path, _, query = seen.target.partition("?")
    assert path == "/v2/pets/42"
    pairs = [p.split("=", 1) for p in query.split("&")]
    assert ["keep", "yes"] in pairs and ["limit", "5"] in pairs and ["tenant", "acme"] in pairs
    assert ["type", "dog"] in pairs and ["type", "cat"] in pairs
    assert not any(k == "debug" for k, _ in pairs) and ["limit", "10"] not in pairs
    expect = {
        "x-from-header": ["acme"],
        "x-from-query": ["dog,cat"],
        "x-from-body": ["Ann"],
        "x-from-body-list": ["b"],
        "x-from-path": ["/pets/42"],
        "x-from-param": ["42"],
        "x-from-context": [r.headers["apigw-requestid"]],
        "x-from-stage": ["prod"],
        "x-static": ["fixed value"],
        "x-combined": ["42/prod/acme"],
        "x-missing": [],
        "x-over": ["new"],
        "x-secret": [],
        "x-multi": ["first", "second"],
    }
    got = {k: header(seen, k) for k in expect}
    assert got == expect
    # The body still reaches the backend whole.
    assert seen.body_len == len(json.dumps(body).encode())


def test_a_chunked_body_read_for_a_mapping_reaches_the_backend_framed_by_length(gateway, origin):
    g = gateway(api(origin, request_parameters={"append:header.x-name": "$request.body.owner.name"}))
    payload = b'{"owner": {"name": "Chunk"}}'
    r = requests.post(g.url("/pets/1"), data=iter([payload[:10], payload[10:]]), headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    seen = origin.requests[-1]
    assert header(seen, "x-name") == ["Chunk"]
    assert header(seen, "content-length") == [str(len(payload))]
    assert header(seen, "transfer-encoding") == []
    assert seen.body_len == len(payload)
    # A body that is not JSON: the value is missing, the request still goes through.
    r = requests.post(g.url("/pets/1"), data=b"not json", timeout=10)
    assert r.status_code == 200 and header(origin.requests[-1], "x-name") == []


def test_a_route_without_mapping_is_untouched(gateway, origin):
    g = gateway(api(origin, request_parameters=REQUEST_PARAMETERS))
    r = requests.get(g.url("/plain?debug=1"), headers={"x-secret": "s"}, timeout=10)
    assert r.status_code == 200
    seen = origin.requests[-1]
    assert seen.target == "/plain?debug=1" and header(seen, "x-secret") == ["s"]


def test_response_mapping_by_status_code(gateway, origin):
    responses = {
        "200": {
            "overwrite:statuscode": "202",
            "append:header.x-method": "$response.body.method",
            "append:header.x-type": "$response.header.content-type",
            "overwrite:header.x-stage": "$context.stage",
        },
        "500": {"overwrite:statuscode": "403", "append:header.header1": "$context.requestId"},
        "404": {"append:header.error": "$stageVariables.env"},
        "418": {"remove:header.content-type": "''"},
    }
    g = gateway(api(origin, response_parameters=responses))
    r = requests.get(g.url("/echo"), timeout=10)
    assert r.status_code == 202, r.text
    assert r.headers["x-method"] == "GET"
    assert r.headers["x-type"] == "application/json"
    assert r.headers["x-stage"] == "$default"
    assert r.json()["method"] == "GET", "the body passes unchanged"
    r = requests.get(g.url("/status/500"), timeout=10)
    assert r.status_code == 403 and r.headers["header1"] == r.headers["apigw-requestid"]
    assert r.text == "status"
    r = requests.get(g.url("/status/404"), timeout=10)
    assert r.status_code == 404 and r.headers["error"] == "prod"
    r = requests.get(g.url("/status/418"), timeout=10)
    assert r.status_code == 418 and "content-type" not in r.headers
    r = requests.get(g.url("/status/201"), timeout=10)
    assert r.status_code == 201 and "x-method" not in r.headers
    # Chunked responses keep streaming; a body value they would need is missing.
    r = requests.get(g.url("/chunked/100000"), timeout=10)
    assert r.status_code == 202 and len(r.content) == 100000 and "x-method" not in r.headers


def function_config(**integration):
    runtime = [sys.executable, "-m", "awslambdaric", "behaviours.handler"]
    return {
        "gateway": {"throttle": "off"},
        "functions": [{"name": "f", "command": runtime, "working_dir": HERE}],
        "apis": [
            {
                "name": "shop",
                "integrations": {"fn": {"type": "function", "function": "f", **integration}},
                "routes": [{"key": "ANY /{proxy+}", "integration": "fn"}],
                "stages": [{"name": "$default", "variables": {"env": "prod"}}],
            }
        ],
    }


def test_function_events_carry_the_mapped_request_and_responses_are_mapped(gateway):
    g = gateway(
        function_config(
            request_parameters={
                "overwrite:header.x-tenant": "${request.header.x-tenant}-${stageVariables.env}",
                "remove:header.x-secret": "''",
                "append:querystring.from": "$request.body.from",
                "remove:querystring.debug": "''",
                "overwrite:path": "/mapped/echo",
            },
            response_parameters={
                "201": {"overwrite:statuscode": "200", "append:header.x-seen": "$response.header.x-custom"},
                "200": {"append:header.x-function": "$response.body.function"},
            },
        )
    )
    r = requests.post(
        g.url("/anything/else?debug=1&keep=1"),
        json={"from": "body"},
        headers={"x-tenant": "acme", "x-secret": "s"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    event = r.json()["event"]
    assert event["rawPath"] == "/mapped/echo"
    assert event["headers"]["x-tenant"] == "acme-prod"
    assert "x-secret" not in event["headers"]
    assert event["queryStringParameters"] == {"keep": "1", "from": "body"}
    assert r.headers["x-function"] == "f"


def test_function_response_status_and_headers_are_mapped(gateway):
    g = gateway(
        function_config(
            response_parameters={"201": {"overwrite:statuscode": "200", "append:header.x-seen": "$response.header.x-custom", "remove:header.x-custom": "''"}},
        )
    )
    r = requests.get(g.url("/cookies"), timeout=30)
    assert r.status_code == 200 and r.text == "made"
    assert r.headers["x-seen"] == "yes" and "x-custom" not in r.headers
    assert r.headers.get("set-cookie"), "the function's cookies still reach the client"


def check(tmp_path, doc):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    return subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=30)


def test_mappings_that_cannot_work_are_refused_with_the_field_path_and_reason(tmp_path, origin):
    doc = api(
        origin,
        request_parameters={
            "append:header.Authorization": "x",
            "overwrite:header.x-forwarded-for": "1.2.3.4",
            "append:header.x": "$response.header.y",
            "append:header.y": "Bearer $request.header.t",
            "append:header.z": "$context.requestid",
            "overwrite:statuscode": "200",
        },
        response_parameters={"2xx": {}, "200": {"overwrite:statuscode": "999", "append:header.transfer-encoding": "x"}},
    )
    out = check(tmp_path, doc)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    at = "apis[0].integrations.mapped."
    for needle in [
        at + 'request_parameters["append:header.Authorization"]',
        "reserves it",
        at + 'request_parameters["overwrite:header.x-forwarded-for"]',
        at + 'request_parameters["append:header.x"]',
        "not available here",
        "enclosed in `${}`",
        "did you mean $context.requestId",
        "is a response parameter",
        at + 'response_parameters["2xx"]',
        at + 'response_parameters["200"]["overwrite:statuscode"]',
        at + 'response_parameters["200"]["append:header.transfer-encoding"]',
    ]:
        assert needle in text, (needle, text)
    # A mock has nothing to map.
    doc = api(origin)
    doc["apis"][0]["integrations"]["m"] = {"type": "mock", "request_parameters": {"append:header.x": "1"}}
    out = check(tmp_path, doc)
    assert out.returncode != 0 and "apis[0].integrations.m.request_parameters" in out.stdout + out.stderr


def test_a_refused_mapping_through_the_admin_api_keeps_the_old_config_serving(gateway, origin):
    g = gateway(api(origin, request_parameters={"append:header.x-ok": "yes"}))
    r = g.admin("PATCH", "/v1/apis/shop/integrations/mapped", json={"request_parameters": {"remove:header.content-length": "''"}})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["path"] == 'apis[0].integrations.mapped.request_parameters["remove:header.content-length"]'
    r = requests.post(g.url("/pets/1"), data=b"{}", timeout=10)
    assert r.status_code == 200 and header(origin.requests[-1], "x-ok") == ["yes"]


def test_a_header_value_cannot_inject_a_line(gateway, origin):
    g = gateway(api(origin, request_parameters={"append:header.x-name": "$request.body.name"}))
    r = requests.post(g.url("/pets/1"), data=json.dumps({"name": "a\r\nInjected: 1"}), timeout=10)
    assert r.status_code == 200
    seen = origin.requests[-1]
    assert header(seen, "injected") == []
    assert header(seen, "x-name") == ["a\\x0d\\x0aInjected: 1"]
