"""The http_proxy integration: what reaches the backend and what comes back."""

import hashlib
import socket
import subprocess
import time

import requests

from conftest import one_response, parse_responses, proxy_api, raw, read_all
from origin import pattern


def test_end_to_end_headers_pass_and_forwarding_headers_are_appended(proxied, origin):
    r = requests.get(
        proxied.url("/echo?a=1"),
        headers={"X-Custom": "v1", "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9"},
    )
    assert r.status_code == 200
    seen = origin.requests[-1]
    assert seen.target == "/echo?a=1"
    assert seen.header("x-custom") == ["v1"]
    assert seen.header("x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]
    assert seen.header("x-forwarded-proto") == ["http"]
    assert seen.header("x-forwarded-port") == [str(proxied.port)]
    fwd = seen.header("forwarded")
    assert fwd == [f'for=203.0.113.9, for=127.0.0.1;host="127.0.0.1:{proxied.port}";proto=http'], fwd


def test_hop_by_hop_headers_are_removed_both_ways(proxied, origin):
    req = (
        b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n"
        b"Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic x\r\n"
        b"Proxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n"
    )
    r = one_response(raw(proxied.port, req))
    assert r.status == 200
    names = {k.lower() for k, _ in origin.requests[-1].headers}
    for gone in ["connection", "x-secret", "keep-alive", "te", "upgrade", "proxy-authorization", "proxy-connection"]:
        assert gone not in names, gone
    assert "x-kept" in names
    back = requests.get(proxied.url("/hop-headers"))
    for gone in ["x-internal", "keep-alive", "proxy-authenticate", "upgrade"]:
        assert gone not in back.headers, gone
    assert back.headers["x-end-to-end"] == "kept"


def test_h2c_upgrade_is_not_forwarded(proxied, origin):
    req = (
        b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    r = one_response(raw(proxied.port, req))
    assert r.status == 200, "served as plain HTTP/1.1, not switched"
    names = {k.lower() for k, _ in origin.requests[-1].headers}
    assert not names & {"upgrade", "http2-settings", "connection"}


def test_host_header_is_the_upstreams_unless_preserved(gateway, origin):
    cfg = {
        "apis": [
            proxy_api(
                origin.addr,
                integrations={
                    "plain": {"type": "http_proxy", "uri": f"http://{origin.addr}"},
                    "keep": {"type": "http_proxy", "uri": f"http://{origin.addr}", "preserve_host": True},
                },
                routes=[{"key": "GET /keep/{p+}", "integration": "keep"}, {"key": "$default", "integration": "plain"}],
            )
        ]
    }
    g = gateway(cfg)
    requests.get(g.url("/x"), headers={"Host": "client.example"})
    assert origin.requests[-1].header("host") == [origin.addr]
    requests.get(g.url("/keep/x"), headers={"Host": "client.example"})
    assert origin.requests[-1].header("host") == ["client.example"]


def test_upstream_connections_are_kept_alive_and_reused(proxied, origin):
    with requests.Session() as s:
        for _ in range(5):
            assert s.get(proxied.url("/echo")).status_code == 200
    # Separate client connections too: the per-core pool serves them all.
    for _ in range(5):
        assert requests.get(proxied.url("/echo")).status_code == 200
    assert origin.connections == 1, f"{origin.connections} upstream connections for 10 requests"


def test_stale_pooled_connection_is_replaced_without_an_error(proxied, origin):
    # The origin answers /close-after and then closes without saying so.
    assert requests.get(proxied.url("/close-after")).status_code == 200
    time.sleep(0.1)
    for _ in range(3):
        assert requests.get(proxied.url("/echo")).status_code == 200
        assert requests.get(proxied.url("/close-after")).status_code == 200
        time.sleep(0.05)


def test_client_keep_alive_and_pipelining(proxied, origin):
    reqs = b"".join(
        b"GET /echo/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(3)
    ) + b"POST /echo/3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + b"GET /echo/4 HTTP/1.1\r\nHost: a\r\n\r\n"
    rs = parse_responses(raw(proxied.port, reqs))
    assert [r.status for r in rs] == [200] * 5
    assert [r.json()["target"] for r in rs] == [f"/echo/{i}" for i in range(5)]
    assert rs[3].json()["body_len"] == 5
    assert [r.target for r in origin.requests] == [f"/echo/{i}" for i in range(5)]


def test_connection_close_is_honoured(proxied, origin):
    with socket.create_connection(("127.0.0.1", proxied.port)) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        rs = parse_responses(read_all(s))
    assert len(rs) == 1 and rs[0].header("connection") == "close"
    assert len(origin.requests) == 1


def test_http10_client(proxied, origin):
    r = one_response(raw(proxied.port, b"GET /echo HTTP/1.0\r\n\r\n"))
    assert r.status == 200 and r.header("connection") == "close"
    # Keep-alive when asked, and a chunked upstream body is sent close-delimited to 1.0.
    with socket.create_connection(("127.0.0.1", proxied.port)) as s:
        s.sendall(b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        time.sleep(0.2)
        s.sendall(b"GET /chunked/20000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = read_all(s)
    first_end = data.index(b"\r\n\r\n")
    assert b"Connection: keep-alive" in data[:first_end]
    second = data[data.index(b"HTTP/1.1 200", 10) :]
    head, _, body = second.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == pattern(20000)


def test_expect_100_continue(proxied, origin):
    with socket.create_connection(("127.0.0.1", proxied.port), timeout=3) as s:
        s.sendall(b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        first = s.recv(1024)
        assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello world")
        r = parse_responses(read_all(s, timeout=1))[0]
    assert r.status == 200 and r.json()["body_len"] == 11
    assert not origin.requests[-1].header("expect"), "Expect is answered here, not forwarded"


def test_expect_for_a_too_large_body_is_refused_before_the_body(gateway, origin):
    g = gateway({"apis": [proxy_api(origin.addr, max_body_bytes=100)]})
    with socket.create_connection(("127.0.0.1", g.port), timeout=3) as s:
        s.sendall(b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
        r = parse_responses(read_all(s, timeout=1))[0]
    assert r.status == 413
    assert len(origin.requests) == 0


def test_unknown_expectation_gets_417(proxied, origin):
    r = one_response(raw(proxied.port, b"GET /echo HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n"))
    assert r.status == 417 and len(origin.requests) == 0


def test_chunked_upload_is_streamed_and_rechunked(proxied, origin):
    body = pattern(300_000)

    def gen():
        for i in range(0, len(body), 7000):
            yield body[i : i + 7000]

    r = requests.post(proxied.url("/echo"), data=gen())
    assert r.status_code == 200
    seen = r.json()
    assert seen["body_len"] == len(body)
    assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert origin.requests[-1].header("transfer-encoding") == ["chunked"]


def test_chunked_upload_with_trailers_and_extensions(proxied, origin):
    req = (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t1\r\n\r\n"
    )
    r = one_response(raw(proxied.port, req))
    assert r.status == 200
    seen = origin.requests[-1]
    assert seen.body == b"hello world"
    assert seen.trailers == [("X-Trailer", "t1")]


def test_chunked_download_keeps_trailers(proxied, origin):
    data = raw(proxied.port, b"GET /chunked/50000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    r = one_response(data)
    assert r.header("transfer-encoding") == "chunked"
    assert r.body == pattern(50000)
    assert r.trailers == [("X-Digest", hashlib.sha256(pattern(50000)).hexdigest())]


def test_close_delimited_upstream_body_is_rechunked_for_http11(proxied, origin):
    with requests.Session() as s:
        r = s.get(proxied.url("/close/123456"))
        assert r.content == pattern(123456)
        assert r.headers["transfer-encoding"] == "chunked"
        r = s.get(proxied.url("/http10/1000"))
        assert r.content == pattern(1000)
        assert s.get(proxied.url("/echo")).status_code == 200, "client connection still usable"


def test_head_request_keeps_the_content_length(proxied, origin):
    r = requests.head(proxied.url("/bytes/12345"))
    assert r.status_code == 200 and r.headers["content-length"] == "12345" and r.content == b""


def test_query_strings_and_encoded_paths_pass_unchanged(proxied, origin):
    r = one_response(raw(proxied.port, b"GET /a%2Fb/c%20d?x=%41&y=|&z=\"q\" HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert r.status == 200
    assert origin.requests[-1].target == '/a%2Fb/c%20d?x=%41&y=|&z="q"'


def test_curl_upload_from_stdin_is_chunked(proxied, origin):
    body = pattern(70_000)
    out = subprocess.run(
        ["curl", "-s", "-T", "-", "-H", "Content-Type: application/octet-stream", proxied.url("/echo")],
        input=body,
        capture_output=True,
        check=True,
    )
    import json

    seen = json.loads(out.stdout)
    assert seen["body_len"] == 70_000 and seen["method"] == "PUT"
