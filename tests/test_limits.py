"""Limits and failures, each with its status: 413, 414, 431, 408, idle timeout, 502, 504, and
backends that die or misbehave (the client sees a status or the connection end, never a hang)."""

import socket
import time

import pytest
import requests

from conftest import closed_by_peer, one_response, parse_responses, proxy_api, raw, read_all


def test_header_block_over_16k_gets_431(proxied, origin):
    big = b"X-Big: " + b"a" * 17000 + b"\r\n"
    r = one_response(raw(proxied.port, b"GET /echo HTTP/1.1\r\nHost: a\r\n" + big + b"\r\n"))
    assert r.status == 431 and r.json() == {"message": "Request Header Fields Too Large"}
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    r = one_response(raw(proxied.port, b"GET /echo HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n"))
    assert r.status == 431
    assert len(origin.requests) == 0


def test_request_line_over_the_limit_gets_414(proxied, origin):
    r = one_response(raw(proxied.port, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert r.status == 414
    assert len(origin.requests) == 0


def test_a_head_just_under_the_limit_is_fine(proxied, origin):
    r = requests.get(proxied.url("/echo"), headers={"X-Big": "a" * 15000})
    assert r.status_code == 200


def test_body_over_max_body_bytes_gets_413(gateway, origin):
    g = gateway({"apis": [proxy_api(origin.addr, max_body_bytes=1000)]})
    r = requests.post(g.url("/echo"), data=b"x" * 1001)
    assert r.status_code == 413 and r.json() == {"message": "Request Entity Too Large"}
    assert requests.post(g.url("/echo"), data=b"x" * 1000).status_code == 200
    # Chunked: refused once the streamed total passes the limit; the request never completes
    # at the backend.
    origin.reset()
    r = requests.post(g.url("/echo"), data=iter([b"y" * 600, b"y" * 600]))
    assert r.status_code == 413
    assert len(origin.requests) == 0


def test_default_body_limit_is_10_mib(proxied, origin):
    r = requests.post(proxied.url("/echo"), data=b"z" * (10 * 1024 * 1024 + 1))
    assert r.status_code == 413


def test_slowloris_head_gets_408_and_close(gateway, origin):
    g = gateway({"gateway": {"header_timeout_ms": 400}, "apis": [proxy_api(origin.addr)]})
    with socket.create_connection(("127.0.0.1", g.port)) as s:
        start = time.time()
        s.sendall(b"GET /echo HTTP/1.1\r\n")
        for _ in range(3):
            time.sleep(0.1)
            s.sendall(b"X-Slow: 1\r\n")
        data = read_all(s, timeout=3)
        elapsed = time.time() - start
    r = one_response(data)
    assert r.status == 408 and r.header("connection") == "close"
    assert 0.35 < elapsed < 2.0
    assert len(origin.requests) == 0


def test_a_connection_that_never_speaks_is_closed(gateway, origin):
    g = gateway({"gateway": {"header_timeout_ms": 300}, "apis": [proxy_api(origin.addr)]})
    with socket.create_connection(("127.0.0.1", g.port)) as s:
        assert closed_by_peer(s, timeout=2)


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(gateway, origin):
    g = gateway({"gateway": {"idle_timeout_ms": 300}, "apis": [proxy_api(origin.addr)]})
    with socket.create_connection(("127.0.0.1", g.port)) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.1)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        start = time.time()
        assert closed_by_peer(s, timeout=2)
        assert 0.2 < time.time() - start < 1.5


def test_upstream_refusing_connections_gives_502(gateway, origin):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # bound, never listening: connections are refused
        g = gateway({"apis": [proxy_api(f"127.0.0.1:{dead}")]})
        r = requests.get(g.url("/x"))
    assert r.status_code == 502
    assert r.json() == {"message": "Internal Server Error"}


def test_integration_timeout_gives_504(gateway, origin):
    cfg = {
        "apis": [
            proxy_api(
                origin.addr,
                integrations={"slow": {"type": "http_proxy", "uri": f"http://{origin.addr}", "timeout_ms": 300}},
                routes=[{"key": "$default", "integration": "slow"}],
            )
        ]
    }
    g = gateway(cfg)
    start = time.time()
    r = requests.get(g.url("/hang"))
    assert r.status_code == 504
    assert r.json() == {"message": "Endpoint request timed out"}
    assert 0.25 < time.time() - start < 2
    assert requests.get(g.url("/slow/50")).status_code == 200, "within the timeout"


@pytest.mark.parametrize("path", ["/no-response", "/garbage"])
def test_backend_without_a_usable_response_gives_502(proxied, origin, path):
    r = requests.get(proxied.url(path), timeout=5)
    assert r.status_code == 502


@pytest.mark.parametrize("path", ["/die-mid/100000", "/die-mid-chunked"])
def test_backend_dying_mid_response_ends_the_client_connection(proxied, origin, path):
    with socket.create_connection(("127.0.0.1", proxied.port)) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        start = time.time()
        data = read_all(s, timeout=5)
        assert time.time() - start < 4, "hung instead of ending the connection"
    assert data.startswith(b"HTTP/1.1 200")
    with pytest.raises(ValueError):
        parse_responses(data)  # truncated: the client can tell the body is incomplete
    # And the gateway keeps serving.
    assert requests.get(proxied.url("/echo")).status_code == 200


def test_client_going_away_mid_response_does_not_hurt_others(proxied, origin):
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", proxied.port)) as s:
            s.sendall(b"GET /download/50000000 HTTP/1.1\r\nHost: a\r\n\r\n")
            s.recv(1000)
    assert requests.get(proxied.url("/echo")).status_code == 200


def test_early_answer_survives_a_client_still_sending_its_body(gateway, origin):
    """413 on a large upload: the gateway answers before reading the body, then lingers so the
    client reads the answer instead of a connection reset."""
    import threading

    g = gateway({"apis": [proxy_api(origin.addr, max_body_bytes=1000)]})
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 8388608\r\n\r\n")

        send_error = []

        def send_body():
            try:
                for _ in range(64):
                    s.sendall(b"x" * 65536)
            except OSError as e:
                send_error.append(e)

        t = threading.Thread(target=send_body)
        t.start()
        time.sleep(0.3)
        data = b""
        s.settimeout(5)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        t.join()
    assert data.startswith(b"HTTP/1.1 413"), data[:100]
    # The gateway kept reading (and discarding) instead of resetting the connection under a
    # client that was still sending.
    assert not send_error, send_error
    assert len(origin.requests) == 0


def test_a_client_that_stops_reading_is_cut_after_the_idle_timeout(gateway, origin):
    g = gateway({"gateway": {"idle_timeout_ms": 300}, "apis": [proxy_api(origin.addr)]})
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /download/200000000 HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(1.5)  # read nothing: the gateway's write blocks, then its deadline passes
        received = 0
        s.settimeout(5)
        while True:
            try:
                chunk = s.recv(1 << 20)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            received += len(chunk)
    assert received < 200_000_000, "the gateway waited for a client that had stopped reading"
    assert requests.get(g.url("/echo")).status_code == 200
