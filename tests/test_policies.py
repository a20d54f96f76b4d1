"""The first policies on the pipeline: custom gateway responses, CORS per API, and access logs
per stage (formats, variables, reopen on SIGHUP, a writer that cannot keep up)."""

import json
import os
import signal
import socket
import threading
import time

import requests

from conftest import one_response, raw

ORIGIN = "https://app.example.com"


def api(origin, **extra):
    a = {
        "name": "shop",
        "integrations": {
            "hello": {"type": "mock", "status": 200, "headers": {"content-type": "text/plain"}, "body": "hi"},
            "up": {"type": "http_proxy", "uri": f"http://{origin.addr}"},
        },
        "routes": [
            {"key": "GET /hello", "integration": "hello"},
            {"key": "ANY /up/{proxy+}", "integration": "up"},
        ],
        "stages": [{"name": "$default"}],
    }
    a.update(extra)
    return {"apis": [a]}


# ---------------------------------------------------------------------------------------------
# Gateway responses


def test_gateway_responses_override_type_then_default_class(gateway, origin):
    cfg = api(
        origin,
        max_body_bytes=10,
        gateway_responses={
            "RESOURCE_NOT_FOUND": {
                "status": 410,
                "headers": {"x-owner": "shop"},
                "body": '{"error":$context.error.messageString,"id":"$context.requestId","type":"$context.error.responseType"}',
            },
            "DEFAULT_4XX": {"body": '{"oops":"$context.error.message"}', "content_type": "application/problem+json"},
            "DEFAULT_5XX": {"headers": {"retry-after": "5"}},
        },
    )
    cfg["apis"][0]["integrations"]["dead"] = {"type": "http_proxy", "uri": "http://127.0.0.1:1"}
    cfg["apis"][0]["routes"].append({"key": "GET /dead", "integration": "dead"})
    g = gateway(cfg)
    r = requests.get(g.url("/nope"))
    assert r.status_code == 410
    assert r.headers["x-owner"] == "shop"
    assert r.headers["x-amzn-ErrorType"] == "NotFoundException"
    body = r.json()
    assert body == {"error": "Not Found", "id": r.headers["apigw-requestid"], "type": "RESOURCE_NOT_FOUND"}
    # 413 has no override of its own: DEFAULT_4XX, keeping the 413 status.
    r = requests.post(g.url("/up/echo"), data=b"x" * 100)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {"oops": "Request Entity Too Large"}
    # A 502 takes DEFAULT_5XX's header and the built-in body.
    r = requests.get(g.url("/dead"))
    assert r.status_code == 502
    assert r.headers["retry-after"] == "5"
    assert r.json() == {"message": "Internal Server Error"}


def test_gateway_responses_are_checked(gateway, tmp_path):
    import subprocess

    from conftest import BIN

    bad = {
        "apis": [
            {
                "name": "a",
                "gateway_responses": {
                    "NOT_A_TYPE": {},
                    "THROTTLED": {"status": 9999, "body": "$context.nope"},
                },
                "stages": [{"name": "$default"}],
            }
        ]
    }
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    out = subprocess.run([BIN, "check", "--config", str(p)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "apis[0].gateway_responses.NOT_A_TYPE" in out.stderr
    assert "apis[0].gateway_responses.THROTTLED.status" in out.stderr
    assert "apis[0].gateway_responses.THROTTLED.body" in out.stderr


# ---------------------------------------------------------------------------------------------
# CORS


def cors_api(origin, **cors):
    c = {
        "allow_origins": [ORIGIN, "https://*.example.org"],
        "allow_methods": ["GET", "POST"],
        "allow_headers": ["content-type", "x-api-key"],
        "expose_headers": ["x-request-id"],
        "max_age": 600,
    }
    c.update(cors)
    return api(origin, cors=c)


def test_preflight_is_answered_by_the_gateway_without_an_options_route(gateway, origin):
    g = gateway(cors_api(origin))
    for path in ("/hello", "/up/x", "/no/route"):
        r = requests.options(
            g.url(path),
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert r.status_code == 204, (path, r.text)
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "content-type" in r.headers["access-control-allow-headers"].lower()
        assert r.headers["access-control-max-age"] == "600"
        assert "Origin" in r.headers["vary"]
    assert origin.requests == [], "a preflight never reaches the backend"
    # Not allowed: a bare 204, which a browser refuses.
    r = requests.options(
        g.url("/hello"), headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}
    )
    assert r.status_code == 204
    assert "access-control-allow-origin" not in r.headers


def test_cors_headers_on_every_answer_to_a_matching_origin(gateway, origin):
    g = gateway(cors_api(origin))
    for path, status in (("/hello", 200), ("/up/hop-headers", 200), ("/missing", 404)):
        r = requests.get(g.url(path), headers={"Origin": "https://shop.example.org"})
        assert r.status_code == status
        assert r.headers["access-control-allow-origin"] == "https://shop.example.org", path
        assert r.headers["access-control-expose-headers"].lower() == "x-request-id"
        assert "Origin" in r.headers["vary"]
        r = requests.get(g.url(path), headers={"Origin": "https://example.org.evil.com"})
        assert "access-control-allow-origin" not in r.headers, path
        # Still varies by Origin, so a shared cache never hands it to an allowed origin.
        assert "Origin" in r.headers.get("vary", ""), path


def test_an_integrations_own_cors_headers_are_replaced(gateway):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def answer():
        c, _ = srv.accept()
        with c:
            c.recv(65536)
            c.sendall(
                b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\n"
                b"Access-Control-Allow-Credentials: true\r\nContent-Length: 2\r\n\r\nok"
            )

    threading.Thread(target=answer, daemon=True).start()
    g = gateway(
        {
            "apis": [
                {
                    "name": "x",
                    "cors": {"allow_origins": [ORIGIN]},
                    "integrations": {"up": {"type": "http_proxy", "uri": f"http://127.0.0.1:{port}"}},
                    "routes": [{"key": "$default", "integration": "up"}],
                    "stages": [{"name": "$default"}],
                }
            ]
        }
    )
    r = one_response(raw(g.port, f"GET / HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\nConnection: close\r\n\r\n".encode()))
    srv.close()
    assert r.status == 200
    assert [v for k, v in r.headers if k.lower() == "access-control-allow-origin"] == [ORIGIN]
    assert r.header("access-control-allow-credentials") is None


def test_star_with_credentials_is_refused(tmp_path):
    import subprocess

    from conftest import BIN

    p = tmp_path / "c.json"
    p.write_text(
        json.dumps(
            {"apis": [{"name": "a", "cors": {"allow_origins": ["*"], "allow_credentials": True}, "stages": [{"name": "$default"}]}]}
        )
    )
    out = subprocess.run([BIN, "check", "--config", str(p)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "apis[0].cors" in out.stderr


# ---------------------------------------------------------------------------------------------
# Access logs


def logged_api(origin, path, fmt):
    cfg = api(origin)
    cfg["apis"][0]["stages"] = [{"name": "$default", "access_log": {"destination": str(path), "format": fmt}}]
    return cfg


def wait_lines(path, n, timeout=5.0):
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        if os.path.exists(path):
            lines = [l for l in open(path).read().splitlines() if l]
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    return lines


def test_access_log_variables_for_a_known_request(gateway, origin, tmp_path):
    log = tmp_path / "access.log"
    fmt = (
        '{"requestId":"$context.requestId","extendedRequestId":"$context.extendedRequestId",'
        '"ip":"$context.identity.sourceIp","ua":"$context.identity.userAgent",'
        '"requestTime":"$context.requestTime","epoch":"$context.requestTimeEpoch",'
        '"method":"$context.httpMethod","routeKey":"$context.routeKey","path":"$context.path",'
        '"protocol":"$context.protocol","status":"$context.status","len":"$context.responseLength",'
        '"latency":"$context.responseLatency","ilatency":"$context.integrationLatency",'
        '"istatus":"$context.integrationStatus","ierr":"$context.integrationErrorMessage",'
        '"err":"$context.error.message","errType":"$context.error.responseType",'
        '"stage":"$context.stage","apiId":"$context.apiId","domain":"$context.domainName",'
        '"data":"$context.dataProcessed"}'
    )
    g = gateway(logged_api(origin, log, fmt))
    before = int(time.time())
    r = requests.get(g.url("/up/items?x=1"), headers={"User-Agent": "probe/1.0", "Authorization": "Bearer secret"})
    assert r.status_code == 200
    r404 = requests.get(g.url("/missing"))
    lines = wait_lines(log, 2)
    assert len(lines) == 2, lines
    a, b = (json.loads(l) for l in lines)
    assert a["requestId"] == r.headers["apigw-requestid"]
    assert a["ip"] == "127.0.0.1"
    assert a["ua"] == "probe/1.0"
    assert a["method"] == "GET"
    assert a["routeKey"] == "ANY /up/{proxy+}"
    assert a["path"] == "/up/items"
    assert a["protocol"] == "HTTP/1.1"
    assert a["status"] == "200" and a["istatus"] == "200"
    assert int(a["len"]) == len(r.content)
    assert int(a["latency"]) >= 0 and int(a["ilatency"]) >= 0
    assert abs(int(a["epoch"]) // (1000 if int(a["epoch"]) > 10**11 else 1) - before) <= 5
    assert a["stage"] == "$default" and a["apiId"] == "shop"
    assert a["domain"] == f"127.0.0.1:{g.port}"
    assert a["err"] == "-" and a["ierr"] == "-"
    assert b["status"] == "404" and b["routeKey"] == "-"
    assert b["err"] == "Not Found" and b["errType"] == "RESOURCE_NOT_FOUND"
    assert b["requestId"] == r404.headers["apigw-requestid"]
    assert "secret" not in open(log).read()


def test_ready_formats(gateway, origin, tmp_path):
    for fmt in ("clf", "json", "xml", "csv"):
        log = tmp_path / f"{fmt}.log"
        g = gateway(logged_api(origin, log, fmt))
        r = requests.get(g.url("/hello"))
        lines = wait_lines(log, 1)
        assert len(lines) == 1, (fmt, lines)
        assert r.headers["apigw-requestid"] in lines[0], (fmt, lines[0])
        if fmt == "json":
            assert json.loads(lines[0])["status"] == "200"
        g.stop()


def test_logrotate_rename_and_sighup_lose_no_line(gateway, origin, tmp_path):
    log = tmp_path / "rot.log"
    g = gateway(logged_api(origin, log, "json"))
    s = requests.Session()
    for _ in range(200):
        assert s.get(g.url("/hello")).status_code == 200
    wait_lines(log, 200)
    os.rename(log, str(log) + ".1")
    # Requests go on while the signal arrives.
    g.proc.send_signal(signal.SIGHUP)
    for _ in range(200):
        assert s.get(g.url("/hello")).status_code == 200
    time.sleep(0.5)
    old = wait_lines(str(log) + ".1", 1)
    new = wait_lines(log, 1)
    assert len(old) + len(new) == 400, (len(old), len(new))
    assert len(new) > 0, "lines after the reopen go to the new file"
    assert g.proc.poll() is None


def test_a_writer_that_cannot_write_never_delays_a_request(gateway, origin, tmp_path):
    fifo = tmp_path / "stuck.fifo"
    os.mkfifo(fifo)
    # A reader that opens the FIFO and never reads: the writer fills the pipe and blocks.
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        cfg = logged_api(origin, fifo, "json")
        g = gateway(cfg)
        s = requests.Session()
        worst = 0.0
        for _ in range(3000):
            t = time.time()
            assert s.get(g.url("/hello")).status_code == 200
            worst = max(worst, time.time() - t)
        assert worst < 0.5, f"a request took {worst:.3f}s with a stuck access log"
        time.sleep(0.3)
        m = g.admin("GET", "/metrics").text
        dropped = [l for l in m.splitlines() if l.startswith("turnpike_access_log_dropped_lines_total")]
        assert dropped and float(dropped[0].split()[-1]) > 0, dropped
    finally:
        os.close(fd)


def test_access_log_of_a_streamed_upload_and_what_follows_it(gateway, origin, tmp_path):
    """A body streamed upstream replaces the read buffer's tail; the head's values (method,
    path) must still be the request's in its log line, and a pipelined request after it must be
    served and logged too."""
    log = tmp_path / "stream.log"
    g = gateway(logged_api(origin, log, '{"id":"$context.requestId","m":"$context.httpMethod","p":"$context.path","s":"$context.status"}'))
    body = b"5\r\nhello\r\n0\r\n\r\n"
    data = (
        b"POST /up/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        + b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    from conftest import parse_responses

    rs = parse_responses(raw(g.port, data))
    assert [r.status for r in rs] == [200, 200], rs
    lines = [json.loads(l) for l in wait_lines(log, 2)]
    assert [(l["m"], l["p"], l["s"]) for l in lines] == [("POST", "/up/upload", "200"), ("GET", "/hello", "200")]
    assert [l["id"] for l in lines] == [r.header("apigw-requestid") for r in rs]
    # A malformed chunked body after the head was forwarded: 400, logged with its request's values.
    bad = raw(g.port, b"POST /up/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert one_response(bad).status == 400
    lines = [json.loads(l) for l in wait_lines(log, 3)]
    assert (lines[2]["m"], lines[2]["p"], lines[2]["s"]) == ("POST", "/up/x", "400")


def test_gateway_response_bodies_escape_what_a_client_sends(gateway, origin):
    cfg = api(
        origin,
        gateway_responses={
            "RESOURCE_NOT_FOUND": {
                "body": '{"path":"$context.path","ua":"$context.identity.userAgent","m":$context.error.messageString}'
            }
        },
    )
    g = gateway(cfg)
    r = requests.get(g.url('/x%22y'), headers={"User-Agent": 'evil"ua\\'})
    assert r.status_code == 404
    assert r.json() == {"path": "/x%22y", "ua": 'evil"ua\\', "m": "Not Found"}


def test_refusals_before_routing_use_the_default_apis_responses_and_log(gateway, origin, tmp_path):
    log = tmp_path / "early.log"
    cfg = logged_api(origin, log, '{"id":"$context.requestId","s":"$context.status","r":"$context.routeKey"}')
    cfg["apis"][0]["gateway_responses"] = {"DEFAULT_4XX": {"headers": {"x-early": "yes"}}}
    g = gateway(cfg)
    big = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    r = one_response(raw(g.port, big))
    assert r.status == 431 and r.header("x-early") == "yes"
    r2 = one_response(raw(g.port, b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"))
    assert r2.status == 400 and r2.header("x-early") == "yes"
    lines = [json.loads(l) for l in wait_lines(log, 2)]
    assert {(l["id"], l["s"], l["r"]) for l in lines} == {
        (r.header("apigw-requestid"), "431", "-"),
        (r2.header("apigw-requestid"), "400", "-"),
    }


def test_an_access_log_this_process_cannot_write_is_refused(gateway, origin, tmp_path):
    import subprocess

    from conftest import BIN

    g = gateway(api(origin))
    bad = api(origin)
    bad["apis"][0]["stages"] = [{"name": "$default", "access_log": {"destination": "/nonexistent/dir/a.log"}}]
    r = g.admin("PUT", "/v1/config", data=json.dumps({"apis": bad["apis"]}))
    assert r.status_code == 400, r.text
    assert "apis[0].stages[0].access_log.destination" in r.text
    assert requests.get(g.url("/hello")).status_code == 200, "the old config keeps serving"
    p = tmp_path / "bad.json"
    bad["gateway"] = {"listen": ["127.0.0.1:1"], "workers": 1}
    bad["admin"] = {"enabled": False}
    p.write_text(json.dumps(bad))
    out = subprocess.run([BIN, "serve", "--config", str(p)], capture_output=True, text=True, timeout=10)
    assert out.returncode != 0
    assert "apis[0].stages[0].access_log.destination" in out.stderr + out.stdout
