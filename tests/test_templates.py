"""Mapping templates on REST non-proxy integrations (`type: http`, templated `mock`): request
templates by content type with AWS's passthrough behaviours, integration responses chosen by
selection pattern with their templates and header mappings, `$context.requestOverride` /
`responseOverride`, and templates ported from AWS's documentation (the PetStore examples)."""

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import BIN

PETS = [
    {"id": 1, "type": "dog", "price": 249.99},
    {"id": 2, "type": "cat", "price": 124.99},
    {"id": 3, "type": "fish", "price": 0.99},
]

# AWS, "Mapping template examples for API Gateway" (the PetStore integration response).
PETSTORE_RESPONSE = """#set($inputRoot = $input.path('$'))
[
#foreach($elem in $inputRoot)
  {
    "description" : "Item $elem.id is a $elem.type.",
    "askingPrice" : $elem.price
  }#if($foreach.hasNext),#end

#end
]"""


class Backend:
    """A backend that answers by path: /pets (the PetStore list), /echo (the request it got,
    as JSON), /status/N (status N with a JSON message and an X-Up header)."""

    def __init__(self):
        self.requests = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                seen = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body.decode("utf-8", "replace")}
                backend.requests.append(seen)
                parts = self.path.split("?")[0].strip("/").split("/")
                status, headers, out = 200, {"Content-Type": "application/json"}, b""
                if parts[0] == "pets":
                    out = json.dumps(PETS).encode()
                elif parts[0] == "status":
                    status = int(parts[1])
                    headers["X-Up"] = "from-backend"
                    out = json.dumps({"message": f"backend said {status}", "code": status}).encode()
                else:
                    out = json.dumps(seen).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.stop()


def api(backend, integrations, routes):
    return {
        "gateway": {"throttle": "off"},
        "apis": [
            {
                "name": "petstore",
                "integrations": integrations,
                "routes": routes,
                "stages": [{"name": "$default", "variables": {"env": "test"}}],
            }
        ],
    }


def test_the_petstore_response_template(gateway, backend):
    g = gateway(
        api(
            backend,
            {"pets": {"type": "http", "uri": f"http://{backend.addr}/pets", "integration_responses": [{"status": 200, "response_templates": {"application/json": PETSTORE_RESPONSE}}]}},
            [{"key": "GET /pets", "integration": "pets"}],
        )
    )
    r = requests.get(g.url("/pets"), timeout=10)
    assert r.status_code == 200, r.text
    assert "Content-Length" not in backend.requests[-1]["headers"], "a body-less GET says no length"
    assert r.headers["content-type"] == "application/json"
    assert r.json() == [
        {"description": "Item 1 is a dog.", "askingPrice": 249.99},
        {"description": "Item 2 is a cat.", "askingPrice": 124.99},
        {"description": "Item 3 is a fish.", "askingPrice": 0.99},
    ]


REQUEST_TEMPLATE = """#set($body = $input.path('$'))
{
  "petName": "$input.path('$.name')",
  "kind": $input.json('$.type'),
  "id": "$input.params('id')",
  "q": "$input.params('q')",
  "tenant": "$input.params().header.get('x-tenant')",
  "stage": "$context.stage",
  "env": "$stageVariables.env",
  "tags": [#foreach($t in $body.tags)"$util.escapeJavaScript($t)"#if($foreach.hasNext),#end#end],
  "encoded": "$util.urlEncode($body.name)",
  "b64": "$util.base64Encode($body.name)"
}
#set($context.requestOverride.header.X-Override = "from-template")
#set($context.requestOverride.querystring.added = "yes")
#set($context.requestOverride.path.id = "id-$input.params('id')")"""


def test_request_templates_params_context_util_and_request_overrides(gateway, backend):
    g = gateway(
        api(
            backend,
            {"echo": {"type": "http", "uri": f"http://{backend.addr}/echo/{{id}}", "http_method": "PUT", "request_templates": {"application/json": REQUEST_TEMPLATE}, "request_parameters": {"append:header.x-mapped": "$request.header.x-tenant"}}},
            [{"key": "POST /pets/{id}", "integration": "echo"}],
        )
    )
    body = {"name": "Rex & co", "type": "dog", "tags": ["good", 'say "hi"']}
    r = requests.post(g.url("/pets/42?q=find"), json=body, headers={"x-tenant": "acme"}, timeout=10)
    assert r.status_code == 200, r.text
    seen = backend.requests[-1]
    assert seen["method"] == "PUT", "http_method replaces the request's"
    assert seen["path"].startswith("/echo/id-42?") and "added=yes" in seen["path"] and "q=find" in seen["path"]
    assert seen["headers"]["X-Override"] == "from-template"
    assert seen["headers"]["x-mapped"] == "acme", "parameter mapping applies before the template"
    sent = json.loads(seen["body"])
    assert sent == {
        "petName": "Rex & co",
        "kind": "dog",
        "id": "42",
        "q": "find",
        "tenant": "acme",
        "stage": "$default",
        "env": "test",
        "tags": ["good", 'say "hi"'],
        "encoded": "Rex+%26+co",
        "b64": "UmV4ICYgY28=",
    }
    assert int(seen["headers"]["Content-Length"]) == len(seen["body"].encode())
    # No integration responses: the backend's status, content type and body pass.
    assert r.json()["method"] == "PUT"


def test_passthrough_behaviours(gateway, backend):
    tpl = {"application/json": '{"templated": true}'}

    def integ(behavior, templates=tpl):
        i = {"type": "http", "uri": f"http://{backend.addr}/echo", "request_templates": templates}
        if behavior:
            i["passthrough_behavior"] = behavior
        return i

    g = gateway(
        api(
            backend,
            {"match": integ(None), "templates": integ("when_no_templates"), "none": integ("WHEN_NO_TEMPLATES", {}), "never": integ("never")},
            [
                {"key": "POST /match", "integration": "match"},
                {"key": "POST /templates", "integration": "templates"},
                {"key": "POST /none", "integration": "none"},
                {"key": "POST /never", "integration": "never"},
            ],
        )
    )
    plain = {"Content-Type": "text/plain"}
    r = requests.post(g.url("/match"), data=b"raw text", headers=plain, timeout=10)
    assert r.status_code == 200 and backend.requests[-1]["body"] == "raw text"
    r = requests.post(g.url("/match"), data=b"{}", timeout=10)  # no content type: application/json
    assert r.status_code == 200 and backend.requests[-1]["body"] == '{"templated": true}'
    before = len(backend.requests)
    for path in ("/templates", "/never"):
        r = requests.post(g.url(path), data=b"raw", headers=plain, timeout=10)
        assert r.status_code == 415 and r.json() == {"message": "Unsupported Media Type"}, (path, r.text)
    assert len(backend.requests) == before, "a refused request reached the backend"
    r = requests.post(g.url("/none"), data=b"raw", headers=plain, timeout=10)
    assert r.status_code == 200 and backend.requests[-1]["body"] == "raw"


def test_integration_responses_by_selection_pattern(gateway, backend):
    responses = [
        {
            "status": 200,
            "response_parameters": {
                "method.response.header.X-Static": "'static value'",
                "method.response.header.Access-Control-Allow-Origin": "'*'",
            },
        },
        {
            "status": 400,
            "selection_pattern": "4\\d{2}",
            "response_templates": {"application/json": '{"error": $input.json(\'$.message\'), "backend": $context.responseOverride.status}'},
            "response_parameters": {
                "method.response.header.X-Up": "integration.response.header.X-Up",
                "method.response.header.X-Code": "integration.response.body.code",
            },
        },
        {
            "status": 502,
            "selection_pattern": "5\\d{2}",
            "response_templates": {
                "application/json": '#set($context.responseOverride.status = 503)#set($context.responseOverride.header.Retry-After = "7"){"error": "unavailable"}',
                "application/xml": "<error>unavailable</error>",
            },
        },
    ]
    g = gateway(
        api(
            backend,
            {"b": {"type": "http", "uri": f"http://{backend.addr}/status/{{code}}", "integration_responses": responses}},
            [{"key": "GET /status/{code}", "integration": "b"}],
        )
    )
    r = requests.get(g.url("/status/201"), timeout=10)
    assert r.status_code == 200 and r.headers["x-static"] == "static value"
    assert r.json() == {"message": "backend said 201", "code": 201}, "no template: the body passes"
    assert r.headers["access-control-allow-origin"] == "*"
    r = requests.get(g.url("/status/404"), timeout=10)
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "backend said 404", "backend": 404}
    assert r.headers["x-up"] == "from-backend" and r.headers["x-code"] == "404"
    r = requests.get(g.url("/status/500"), timeout=10)
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert r.json() == {"error": "unavailable"}
    r = requests.get(g.url("/status/500"), headers={"Accept": "application/xml"}, timeout=10)
    assert r.status_code == 502 and r.text == "<error>unavailable</error>"
    assert r.headers["content-type"] == "application/xml"


def test_no_matching_integration_response_is_a_500(gateway, backend):
    g = gateway(
        api(
            backend,
            {"b": {"type": "http", "uri": f"http://{backend.addr}/status/{{code}}", "integration_responses": [{"status": 200, "selection_pattern": "2\\d{2}"}]}},
            [{"key": "GET /status/{code}", "integration": "b"}],
        )
    )
    assert requests.get(g.url("/status/200"), timeout=10).status_code == 200
    r = requests.get(g.url("/status/404"), timeout=10)
    assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}


MOCK_REQUEST = """{"statusCode": #if($input.params('fail') == 'yes')500#else 200#end}"""


def test_a_templated_mock(gateway, backend):
    g = gateway(
        api(
            backend,
            {
                "m": {
                    "type": "mock",
                    "headers": {"x-mock": "yes"},
                    "request_templates": {"application/json": MOCK_REQUEST},
                    "integration_responses": [
                        {"status": 200, "response_templates": {"application/json": '{"id": "$input.params(\'id\')", "request": "$context.requestId"}'}},
                        {"status": 500, "selection_pattern": "5\\d{2}", "response_templates": {"application/json": '{"message": "mock failure"}'}},
                    ],
                }
            },
            [{"key": "GET /things/{id}", "integration": "m"}],
        )
    )
    r = requests.get(g.url("/things/7"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "7", "request": r.headers["apigw-requestid"]}
    assert r.headers["x-mock"] == "yes"
    r = requests.get(g.url("/things/7?fail=yes"), timeout=10)
    assert r.status_code == 500 and r.json() == {"message": "mock failure"}
    assert len(backend.requests) == 0


def test_templates_that_do_not_compile_are_refused_with_where(tmp_path, backend):
    doc = api(
        backend,
        {
            "b": {
                "type": "http",
                "uri": f"http://{backend.addr}/",
                "request_templates": {"application/json": "{\n  #if($x)\n}"},
                "integration_responses": [{"status": 200, "selection_pattern": "(", "response_templates": {"json": "{}"}}],
            },
            "p": {"type": "http_proxy", "uri": f"http://{backend.addr}/", "request_templates": {"application/json": "{}"}},
        },
        [{"key": "GET /", "integration": "b"}],
    )
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    out = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    for needle in [
        'apis[0].integrations.b.request_templates["application/json"]',
        "line 2",
        "apis[0].integrations.b.integration_responses[0].selection_pattern",
        'apis[0].integrations.b.integration_responses[0].response_templates["json"]',
        "apis[0].integrations.p.request_templates",
        "need type http",
    ]:
        assert needle in text, (needle, text)
