"""Request validation (AWS REST request validators and models): required parameters, bodies
checked against JSON Schema models per content type, 400/415 answers through the gateway
responses, and a backend that never sees a refused request."""

import json
import os
import socket

import requests

from conftest import log_with

HERE = os.path.dirname(__file__)
CASES = json.load(open(os.path.join(HERE, "data", "validation", "pet-cases.json")))


def config(origin, tmp_path):
    return {
        "apis": [
            {
                "name": "shop",
                "models": {
                    "Pet": {"schema": CASES["schema"]},
                    "Note": {
                        "schema": {
                            "$schema": "https://json-schema.org/draft/2020-12/schema",
                            "type": "object",
                            "required": ["text"],
                            "properties": {"text": {"type": "string"}, "stars": {"exclusiveMinimum": 0}},
                        }
                    },
                },
                "integrations": {"origin": {"type": "http_proxy", "uri": f"http://{origin.addr}"}},
                "routes": [
                    {
                        "key": "POST /pets",
                        "integration": "origin",
                        "request_models": {"application/json": "Pet"},
                        "required_parameters": ["method.request.querystring.store", "header.x-request-token"],
                    },
                    {
                        "key": "PUT /pets/{id}",
                        "integration": "origin",
                        "request_models": {"application/json": "Pet"},
                        "required_parameters": ["querystring.store"],
                        "request_validator": "body",
                    },
                    {"key": "POST /notes", "integration": "origin", "request_models": {"$default": "Note"}},
                    {"key": "$default", "integration": "origin"},
                ],
                "stages": [
                    {
                        "name": "$default",
                        "access_log": {
                            "destination": str(tmp_path / "access.log"),
                            "format": "$context.requestId $context.status $context.error.responseType $context.error.validationErrorString",
                        },
                    }
                ],
                "gateway_responses": {
                    "BAD_REQUEST_BODY": {
                        "body": '{"message":$context.error.messageString,"errors":"$context.error.validationErrorString"}'
                    }
                },
            }
        ]
    }


def test_bodies_against_the_model(gateway, origin, tmp_path):
    g = gateway(config(origin, tmp_path))
    url = g.url("/pets?store=7")
    headers = {"x-request-token": "t"}
    for case in CASES["cases"]:
        before = len(origin.requests)
        r = requests.post(url, json=case["body"], headers=headers, timeout=10)
        if case["valid"]:
            assert r.status_code == 200, (case, r.text)
            assert len(origin.requests) == before + 1
        else:
            assert r.status_code == 400, (case, r.text)
            out = r.json()
            assert out["message"] == "Invalid request body", out
            assert case["why"] in out["errors"], (case, out)
            assert r.headers["x-amzn-errortype"] == "BadRequestException"
            assert len(origin.requests) == before, "a refused request reached the backend"
    # Not JSON at all, and an empty body.
    for data in (b"{not json", b""):
        r = requests.post(url, data=data, headers={**headers, "Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 400 and r.json()["message"] == "Invalid request body"
    # A chunked valid body reaches the backend whole, framed by its length.
    r = requests.post(url, data=iter([b'{"name": "Rex", ', b'"price": 5}']), headers={**headers, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    seen = origin.requests[-1]
    assert seen.body_len == len(b'{"name": "Rex", "price": 5}'), seen
    # No model for the content type: 415.
    r = requests.post(url, data=b"name=Rex", headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 415 and r.json() == {"message": "Unsupported Media Type"}
    # $default takes any content type; 2020-12's numeric exclusiveMinimum.
    ok = requests.post(g.url("/notes"), data=b'{"text": "hi", "stars": 1}', headers={"Content-Type": "text/plain"}, timeout=10)
    bad = requests.post(g.url("/notes"), data=b'{"text": "hi", "stars": 0}', headers={"Content-Type": "text/plain"}, timeout=10)
    assert (ok.status_code, bad.status_code) == (200, 400)
    needles = ("400 BAD_REQUEST_BODY [", "415 UNSUPPORTED_MEDIA_TYPE Unsupported Media Type")
    log = log_with(tmp_path / "access.log", *needles)
    assert all(n in log for n in needles), log


def test_required_parameters(gateway, origin, tmp_path):
    g = gateway(config(origin, tmp_path))
    pet = {"name": "Rex", "price": 3}
    r = requests.post(g.url("/pets"), json=pet, timeout=10)
    assert r.status_code == 400
    assert r.json() == {"message": "Missing required request parameters: [store, x-request-token]"}
    assert r.headers["x-amzn-errortype"] == "BadRequestException"
    r = requests.post(g.url("/pets?store="), json=pet, headers={"X-Request-Token": "t"}, timeout=10)
    assert r.status_code == 200, r.text  # an empty value is present, as AWS counts it
    r = requests.post(g.url("/pets?other=1"), json=pet, headers={"x-request-token": "t"}, timeout=10)
    assert r.json() == {"message": "Missing required request parameters: [store]"}
    # request_validator: body: parameters are not checked on this route.
    assert requests.put(g.url("/pets/1"), json=pet, timeout=10).status_code == 200
    assert requests.put(g.url("/pets/1"), json={"name": "Rex"}, timeout=10).status_code == 400
    # Nothing refused reached the backend.
    assert [(x.method, x.target.split("?")[0]) for x in origin.requests] == [("POST", "/pets"), ("PUT", "/pets/1")]
    needle = "400 BAD_REQUEST_PARAMETERS Missing required request parameters: [store, x-request-token]"
    assert needle in log_with(tmp_path / "access.log", needle)


def test_validation_config_is_checked(gateway, origin, tmp_path):
    g = gateway(config(origin, tmp_path))
    bad = config(origin, tmp_path)
    api = bad["apis"][0]
    api["models"]["Broken"] = {"schema": {"type": "nonsense"}}
    api["routes"][2]["request_models"] = {"$default": "Broken"}
    api["routes"][0]["request_models"] = {"application/json": "Pett"}
    api["routes"][1]["required_parameters"] = ["path.name", "cookie.x"]
    r = g.admin("PUT", "/v1/config", json=bad)
    assert r.status_code == 400
    text = r.text
    assert "apis[0].models.Broken.schema" in text and "not a usable JSON Schema" in text
    # The route naming it is not told the model does not exist: the schema's error says why.
    assert 'no model named \\"Broken\\"' not in text, text
    assert "apis[0].routes[0].request_models.application/json" in text and 'did you mean \\"Pet\\"' in text, text
    assert "apis[0].routes[1].required_parameters[0]" in text and "no path parameter {name}" in text
    assert "apis[0].routes[1].required_parameters[1]" in text
    # The old config keeps serving, validation and all.
    assert requests.post(g.url("/pets?store=1"), json={}, headers={"x-request-token": "t"}, timeout=10).status_code == 400
