"""Function integrations run by the gateway: the tutorial's Lambda handler, unchanged, behind
awslambdaric (AWS's runtime interface client) polling turnpike's Lambda Runtime API; the
payload 2.0 and 1.0 events; AWS's response rules; failures, timeouts and crashes answered
and recovered from; concurrency and queue bounds; a graceful shutdown."""

import base64
import concurrent.futures
import json
import os
import sys
import threading
import time

import requests

HERE = os.path.join(os.path.dirname(__file__), "support", "functions")


def runtime(handler):
    return [sys.executable, "-m", "awslambdaric", handler]


def config(**function):
    fn = {"name": "my-function", "command": runtime("behaviours.handler"), "working_dir": HERE}
    fn.update(function)
    return {
        "gateway": {"throttle": "off"},
        "functions": [fn],
        "apis": [
            {
                "name": "shop",
                "integrations": {
                    "fn": {"type": "function", "function": "arn:aws:lambda:us-east-1:123456789012:function:my-function"},
                    "v1": {"type": "function", "function": "my-function", "payload_format": "1.0"},
                },
                "routes": [
                    {"key": "GET /users", "integration": "fn"},
                    {"key": "ANY /items/{id}/{what}", "integration": "fn"},
                    {"key": "GET /old/{what}", "integration": "v1"},
                    {"key": "ANY /{proxy+}", "integration": "fn"},
                ],
                "stages": [{"name": "$default", "variables": {"color": "blue"}}],
            }
        ],
    }


def test_the_tutorial_handler_runs_unchanged(gateway):
    g = gateway(config(command=runtime("lambda_function.handler")))
    r = requests.get(g.url("/users"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1, "name": "Alice"}, {"id": 2, "name": "Bob"}]
    for path in ("/orders", "/users/7"):
        r = requests.get(g.url(path), timeout=30)
        assert r.status_code == 404, path
        assert r.json() == {"error": "Not found"}
    assert requests.post(g.url("/users"), timeout=30).status_code == 404


def test_the_payload_2_0_event(gateway):
    g = gateway(config())
    r = requests.post(
        g.url("/items/42/echo?a=1&a=2&b=x%20y"),
        headers={"X-Repeat": "one", "Cookie": "c1=v1; c2=v2", "Content-Type": "application/json"},
        data=b'{"n": 1}',
        timeout=30,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    e = out["event"]
    assert e["version"] == "2.0"
    assert e["routeKey"] == "ANY /items/{id}/{what}"
    assert e["rawPath"] == "/items/42/echo"
    assert e["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert e["cookies"] == ["c1=v1", "c2=v2"]
    assert e["headers"]["x-repeat"] == "one"
    assert e["headers"]["content-type"] == "application/json"
    assert e["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert e["pathParameters"] == {"id": "42", "what": "echo"}
    assert e["stageVariables"] == {"color": "blue"}
    assert e["body"] == '{"n": 1}' and e["isBase64Encoded"] is False
    rc = e["requestContext"]
    assert rc["http"]["method"] == "POST" and rc["http"]["path"] == "/items/42/echo"
    assert rc["http"]["protocol"] == "HTTP/1.1" and rc["http"]["sourceIp"] == "127.0.0.1"
    assert rc["http"]["userAgent"].startswith("python-requests")
    assert rc["stage"] == "$default" and rc["routeKey"] == "ANY /items/{id}/{what}"
    assert rc["apiId"] == "shop" and rc["requestId"] == r.headers["apigw-requestid"]
    assert abs(rc["timeEpoch"] - time.time() * 1000) < 60_000
    # The runtime's context: the invocation's id and a deadline from the function's timeout.
    assert out["function"] == "my-function"
    assert 0 < out["remaining_ms"] <= 3000
    assert len(out["request_id"]) == 36


def test_binary_bodies_cookies_and_bare_json(gateway):
    g = gateway(config())
    data = bytes(range(256)) * 4
    r = requests.post(g.url("/binary"), data=data, headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert r.status_code == 200 and r.content == data[::-1]
    r = requests.get(g.url("/cookies"), timeout=30)
    assert r.status_code == 201 and r.text == "made" and r.headers["x-custom"] == "yes"
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    r = requests.get(g.url("/bare"), timeout=30)
    assert r.status_code == 200 and r.json() == {"hello": "world"}
    assert r.headers["content-type"].startswith("application/json")


def test_chunked_request_bodies_reach_the_function_whole(gateway):
    import socket

    g = gateway(config())
    # requests sends a generator's pieces with Transfer-Encoding: chunked.
    pieces = [bytes(range(256)), b"", b"second piece", bytes(range(255, -1, -1)) * 3]
    r = requests.post(g.url("/binary"), data=iter(pieces), headers={"Content-Type": "application/octet-stream"}, timeout=30)
    whole = b"".join(pieces)
    assert r.status_code == 200 and r.content == whole[::-1]
    # A chunked body with trailers, then a second request on the same connection: the
    # trailers are dropped, the connection goes on.
    s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    s.sendall(
        b"POST /binary HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Check: 1\r\n\r\n"
        b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    data = b""
    while data.count(b"HTTP/1.1 200") < 2:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    assert b"edcba" in data
    s.close()
    # Malformed chunk framing is 400 and never reaches the function.
    before = g.admin("GET", "/v1/functions").json()["items"][0]["invocations"]
    s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    s.sendall(b"POST /binary HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    assert s.recv(65536).startswith(b"HTTP/1.1 400")
    s.close()
    assert g.admin("GET", "/v1/functions").json()["items"][0]["invocations"] == before
    # Over max_body_bytes: 413.
    doc = config()
    doc["apis"][0]["max_body_bytes"] = 1000
    g2 = gateway(doc)
    r = requests.post(g2.url("/binary"), data=iter([b"x" * 600, b"y" * 600]), timeout=30)
    assert r.status_code == 413


def test_payload_1_0(gateway):
    g = gateway(config())
    r = requests.get(g.url("/old/v1?x=1&x=2"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"method": "GET", "path": "/old/v1", "resource": "/old/{what}", "query": {"x": ["1", "2"]}}
    assert r.headers["x-multi"] == "a, b" or r.headers["x-multi"] == "a,b"


def test_errors_timeouts_and_crashes_are_answered_and_recovered_from(gateway):
    g = gateway(config(timeout_ms=1000))
    r = requests.get(g.url("/raise"), timeout=30)
    assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}
    assert "the handler failed on purpose" in g.wait_log("the handler failed on purpose")
    assert requests.get(g.url("/malformed"), timeout=30).status_code == 500

    pid = requests.get(g.url("/pid"), timeout=30).text
    started = time.time()
    r = requests.get(g.url("/sleep?s=5"), timeout=30)
    # Lambda's "Task timed out" is a function error: 500, as API Gateway answers it.
    assert r.status_code == 500 and time.time() - started < 3
    assert r.json() == {"message": "Internal Server Error"}
    assert "Task timed out after 1000 ms" in g.wait_log("Task timed out")
    # The overrunning runtime was replaced.
    r = requests.get(g.url("/pid"), timeout=30)
    assert r.status_code == 200 and r.text != pid

    r = requests.get(g.url("/crash"), timeout=30)
    assert r.status_code == 500
    r = requests.get(g.url("/pid"), timeout=30)
    assert r.status_code == 200

    # The admin API and /metrics count what happened.
    items = g.admin("GET", "/v1/functions").json()["items"]
    assert len(items) == 1, items
    f = items[0]
    assert f["name"] == "my-function" and f["processes"] == 1
    assert f["invocations"] >= 7 and f["errors"] >= 2 and f["timeouts"] == 1 and f["restarts"] >= 2, f
    text = g.admin("GET", "/metrics").text
    assert 'turnpike_function_timeouts_total{function="my-function"} 1' in text, text[-2000:]
    assert 'turnpike_function_invocations_total{function="my-function"}' in text


def test_concurrency_and_the_queue_bound(gateway):
    g = gateway(config(concurrency=2, queue=2, timeout_ms=5000))
    # Both runtimes up (each polls the Runtime API once its interpreter has started).
    deadline = time.time() + 15
    pids = set()
    while len(pids) < 2:
        assert time.time() < deadline, pids
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pids |= {r.text for r in pool.map(lambda _: requests.get(g.url("/sleep?s=0.2"), timeout=30), range(2))}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        started = time.time()
        rs = list(pool.map(lambda _: requests.get(g.url("/sleep?s=0.6"), timeout=30), range(4)))
        took = time.time() - started
    assert [r.status_code for r in rs] == [200] * 4
    assert len({r.text for r in rs}) == 2  # two processes served them
    assert 1.1 < took < 2.2, took  # two at a time
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(lambda _: requests.get(g.url("/sleep?s=0.6"), timeout=30), range(8)))
    codes = sorted(r.status_code for r in rs)
    assert codes.count(503) >= 1 and codes.count(200) >= 4, codes


def test_shutdown_finishes_invocations_in_flight(gateway, tmp_path):
    mark = tmp_path / "terminated"
    g = gateway(config(timeout_ms=5000, environment={"TERM_MARK": str(mark)}))
    assert requests.get(g.url("/pid"), timeout=30).status_code == 200
    result = {}

    def slow():
        result["r"] = requests.get(g.url("/sleep?s=1"), timeout=30)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    assert g.terminate() == 0
    t.join()
    assert result["r"].status_code == 200
    # The runtime was told to stop (SIGTERM) before the gateway exited.
    assert mark.exists() and mark.read_text().strip(), g.logs()


def test_config_names_the_function(gateway, tmp_path):
    g = gateway(config())
    bad = config()
    bad["apis"][0]["integrations"]["fn"]["function"] = "nope"
    bad["functions"][0]["concurrency"] = 0
    r = g.admin("PUT", "/v1/config", json=bad)
    assert r.status_code == 400
    assert "apis[0].integrations.fn.function" in r.text and "nope" in r.text
    assert "functions[0].concurrency" in r.text
    # A qualified ARN is refused rather than followed halfway.
    bad = config()
    bad["apis"][0]["integrations"]["fn"]["function"] = "arn:aws:lambda:us-east-1:123456789012:function:my-function:prod"
    r = g.admin("PUT", "/v1/config", json=bad)
    assert r.status_code == 400 and "apis[0].integrations.fn.function" in r.text and "qualifier" in r.text


def test_the_tutorial_authorizer_as_a_function(gateway):
    doc = config()
    doc["functions"].append({"name": "authorizer", "command": runtime("authorizer.handler"), "working_dir": HERE})
    api = doc["apis"][0]
    api["authorizers"] = {
        "tutorial": {
            "type": "request",
            "function": "authorizer",
            "enable_simple_responses": True,
            "identity_source": ["$request.header.Authorization"],
            "result_ttl": 0,
        }
    }
    api["routes"].insert(0, {"key": "GET /private/echo", "integration": "fn", "authorizer": "tutorial"})
    g = gateway(doc)
    r = requests.get(g.url("/private/echo"), headers={"Authorization": "Bearer secret-token"}, timeout=30)
    assert r.status_code == 200, r.text
    # The authorizer's context reaches the backend function.
    assert r.json()["event"]["requestContext"]["authorizer"] == {"lambda": {"userId": "user_123", "role": "admin"}}
    r = requests.get(g.url("/private/echo"), headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    assert requests.get(g.url("/private/echo"), timeout=30).status_code == 401


def test_events_validate_against_powertools_models(gateway):
    """aws-lambda-powertools' pydantic models of AWS's API Gateway events are strict: an
    event they accept is one real handlers written against AWS can read."""
    from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, APIGatewayProxyEventV2Model

    doc = config()
    doc["apis"][0]["routes"].insert(0, {"key": "POST /old/{what}", "integration": "v1"})
    g = gateway(doc)
    r = requests.post(g.url("/items/9/echo?q=1"), data=b"\x00\x01binary", headers={"Cookie": "a=b"}, timeout=30)
    v2 = APIGatewayProxyEventV2Model.model_validate(r.json()["event"])
    assert v2.isBase64Encoded and base64.b64decode(v2.body) == b"\x00\x01binary"
    assert v2.requestContext.http.method == "POST"
    r = requests.post(g.url("/old/echo?q=1&q=2"), data=b'{"x": 1}', headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    v1 = APIGatewayProxyEventModel.model_validate(r.json()["event"])
    assert v1.httpMethod == "POST" and v1.resource == "/old/{what}"
    assert v1.multiValueQueryStringParameters == {"q": ["1", "2"]}


def test_queue_time_is_not_the_functions_and_a_runtime_that_cannot_start_fails_fast(gateway, tmp_path):
    g = gateway(config(timeout_ms=1500, concurrency=1, environment={"TABLE": "users"}))
    assert requests.get(g.url("/pid"), timeout=30).status_code == 200
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        rs = list(pool.map(lambda _: requests.get(g.url("/sleep?s=1"), timeout=30), range(2)))
    # The second waited a second for the only runtime, then ran for a second: within its
    # 1.5 s timeout, which counts from when a runtime takes it (as Lambda's does).
    assert [r.status_code for r in rs] == [200, 200]
    assert rs[0].text == rs[1].text  # the same process: nothing was killed

    # A clean environment: the function's variables and the runtime's, not the gateway's.
    env = requests.get(g.url("/env"), timeout=30).json()
    assert "TABLE" in env and "AWS_LAMBDA_RUNTIME_API" in env and "AWS_LAMBDA_FUNCTION_NAME" in env
    # The X-Ray trace header of the invocation, as awslambdaric exports it.
    import re

    trace = requests.get(g.url("/trace"), timeout=30).text
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", trace), trace
    assert "TURNPIKE_BIN" not in env and "HOME" not in env, env

    # A response over Lambda's 6 MB limit fails that invocation, not the runtime.
    pid = requests.get(g.url("/pid"), timeout=30).text
    assert requests.get(g.url("/huge"), timeout=30).status_code == 500
    r = requests.get(g.url("/pid"), timeout=30)
    assert r.status_code == 200

    missing = config()
    missing["functions"][0]["command"] = ["/nonexistent/python", "-m", "awslambdaric", "x.handler"]
    g2 = gateway(missing)
    started = time.time()
    r = requests.get(g2.url("/pid"), timeout=30)
    assert r.status_code == 500 and time.time() - started < 2
    assert "/nonexistent/python" in g2.wait_log("cannot start the function's runtime")

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.py").write_text("def handler(event, context)\n    return 1\n")
    doc = config(command=runtime("bad.handler"), working_dir=str(broken))
    g3 = gateway(doc)
    time.sleep(1.5)  # the runtime starts, finds the syntax error, exits
    started = time.time()
    r = requests.get(g3.url("/pid"), timeout=30)
    assert r.status_code == 500 and time.time() - started < 2, r.text
    assert "UserCodeSyntaxError" in g3.logs()


def test_a_changed_function_replaces_its_runtimes_and_closes_the_old_runtime_api(gateway):
    import socket

    doc = config(environment={"TABLE": "users"})
    g = gateway(doc)
    old_api = requests.get(g.url("/api"), timeout=30).text
    doc["functions"][0]["environment"] = {"TABLE": "users-v2"}
    r = g.admin("PUT", "/v1/config", json=doc)
    assert r.status_code in (200, 201), r.text
    deadline = time.time() + 10
    while requests.get(g.url("/api"), timeout=30).text == old_api:
        assert time.time() < deadline
        time.sleep(0.1)
    assert "TABLE" in requests.get(g.url("/env"), timeout=30).json()
    host, port = old_api.split(":")
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            break  # the old function's Runtime API is gone
        assert time.time() < deadline, "the old Runtime API still accepts"
        time.sleep(0.1)


def remote_config(uri, name="my-function", **function):
    fn = {"name": name, "invoke_uri": uri}
    fn.update(function)
    return {
        "gateway": {"throttle": "off"},
        "functions": [fn],
        "apis": [
            {
                "name": "shop",
                "integrations": {"fn": {"type": "function", "function": f"arn:aws:lambda:us-east-1:123456789012:function:{name}"}},
                "routes": [{"key": "GET /users", "integration": "fn"}, {"key": "ANY /{proxy+}", "integration": "fn"}],
                "stages": [{"name": "$default"}],
            }
        ],
    }


def test_a_remote_function_over_lambdas_invoke_api_signed_with_sigv4(gateway, tmp_path):
    """The tutorial's --target ARN names a function reached over Lambda's Invoke API; the
    calls are SigV4-signed (checked by botocore's own signer on the endpoint's side)."""
    from lambda_service import LambdaService

    secret = tmp_path / "lambda.secret"
    secret.write_text("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n")
    token = tmp_path / "lambda.token"
    token.write_text("FwoGZXIvYXdzEXAMPLETOKEN")
    svc = LambdaService(credentials=("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN"))
    try:
        creds = {"access_key_id": "AKIDEXAMPLE", "secret_file": str(secret), "session_token_file": str(token)}
        g = gateway(remote_config(f"http://127.0.0.1:{svc.port}", credentials=creds))
        r = requests.get(g.url("/users"), timeout=30)
        assert r.status_code == 200, (r.text, g.logs()[-2000:])
        assert r.json() == [{"id": 1, "name": "Alice"}, {"id": 2, "name": "Bob"}]
        r = requests.get(g.url("/orders"), timeout=30)
        assert r.status_code == 404 and r.json() == {"error": "Not found"}
        call = svc.calls[-1]
        assert call["path"] == "/2015-03-31/functions/my-function/invocations"
        assert call["headers"]["X-Amz-Invocation-Type"] == "RequestResponse"
        assert call["headers"]["X-Amz-Security-Token"] == "FwoGZXIvYXdzEXAMPLETOKEN"
        assert "/us-east-1/lambda/aws4_request" in call["headers"]["Authorization"]
        event = json.loads(call["body"])
        assert event["version"] == "2.0" and event["rawPath"] == "/orders"

        # A wrong secret: the endpoint refuses the signature; the client gets a 500.
        secret.write_text("not-the-secret")
        doc = remote_config(f"http://127.0.0.1:{svc.port}", credentials=creds)
        assert g.admin("PUT", "/v1/config", json=doc).status_code in (200, 201)
        r = requests.get(g.url("/users"), timeout=30)
        assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}
        assert "403" in g.wait_log("refused the invocation")

        items = g.admin("GET", "/v1/functions").json()["items"]
        assert items[0]["invoke_uri"] == f"http://127.0.0.1:{svc.port}/2015-03-31/functions/my-function/invocations"
        # Counters are per function spec: the changed secret made a new one.
        assert items[0]["processes"] == 0 and items[0]["invocations"] == 1 and items[0]["errors"] == 1
    finally:
        svc.stop()


def test_remote_function_failures_and_an_emulator_url(gateway):
    from lambda_service import LambdaService

    svc = LambdaService()
    try:
        base = f"http://127.0.0.1:{svc.port}"
        # The Runtime Interface Emulator's URL, given whole: its path is used as is.
        g = gateway(remote_config(f"{base}/2015-03-31/functions/function/invocations", name="rie"))
        r = requests.get(g.url("/users"), timeout=30)
        assert r.status_code == 200 and r.json()[0]["name"] == "Alice"
        assert "Authorization" not in svc.calls[-1]["headers"]  # no credentials: unsigned

        # The function's unhandled error: 500, and its message in the log.
        g2 = gateway(remote_config(base, name="boom"))
        r = requests.get(g2.url("/x"), timeout=30)
        assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}
        assert "boom on purpose" in g2.wait_log("boom on purpose")

        # Lambda's throttling: 503 through the gateway responses.
        g3 = gateway(remote_config(base, name="throttled"))
        r = requests.get(g3.url("/x"), timeout=30)
        assert r.status_code == 503, r.text

        # Past the function's timeout: 504.
        g4 = gateway(remote_config(base, name="slow", timeout_ms=500))
        started = time.time()
        r = requests.get(g4.url("/x"), timeout=30)
        assert r.status_code == 504 and time.time() - started < 2.5

        # Nobody listening: 502.
        g5 = gateway(remote_config("http://127.0.0.1:9", name="gone"))
        assert requests.get(g5.url("/x"), timeout=30).status_code == 502
    finally:
        svc.stop()


def test_remote_function_config_is_checked(gateway, tmp_path):
    g = gateway(config())
    doc = remote_config("http://127.0.0.1:9", command=["python3"], concurrency=2)
    doc["functions"].append({"name": "b", "invoke_uri": "http://127.0.0.1:9/other/path"})
    doc["functions"].append({"name": "c", "invoke_uri": "http://h:9", "credentials": {"access_key_id": "AKID", "secret_file": str(tmp_path / "missing")}})
    doc["functions"].append({"name": "d", "command": ["python3"], "credentials": {"access_key_id": "AKID", "secret_file": "x"}})
    r = g.admin("PUT", "/v1/config", json=doc)
    assert r.status_code == 400, r.text
    for path in ("functions[0].command", "functions[0].concurrency", "functions[1].invoke_uri", "functions[2].credentials.secret_file", "functions[3].credentials"):
        assert path in r.text, (path, r.text)
    # The old config keeps serving.
    assert requests.get(g.url("/pid"), timeout=30).status_code == 200
