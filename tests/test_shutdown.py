"""Graceful shutdown on SIGTERM: stop accepting, finish in-flight requests, close idle
connections at once, exit 0; a request still running past the drain timeout is cut."""

import signal
import socket
import threading
import time

import requests

from conftest import closed_by_peer, parse_responses, proxy_api, read_all


def test_in_flight_requests_finish_and_the_process_exits_0(gateway, origin):
    g = gateway({"gateway": {"drain_timeout_ms": 5000, "workers": 2}, "apis": [proxy_api(origin.addr)]})
    results = []

    def slow(i):
        try:
            r = requests.get(g.url(f"/slow/800?i={i}"), timeout=10)
            results.append((r.status_code, r.json()["target"]))
        except Exception as e:  # noqa: BLE001
            results.append(("error", repr(e)))

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # all eight are at the origin now
    start = time.time()
    g.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # No longer accepting.
    try:
        with socket.create_connection(("127.0.0.1", g.port), timeout=1) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
            refused = closed_by_peer(s, timeout=2)
    except OSError:
        refused = True
    assert refused, "a new connection was served during the drain"
    for t in threads:
        t.join()
    code = g.proc.wait(timeout=10)
    elapsed = time.time() - start
    assert code == 0
    assert sorted(results) == sorted((200, f"/slow/800?i={i}") for i in range(8)), results
    assert elapsed < 3, f"drain took {elapsed:.1f}s for 0.8s requests"
    assert "draining" in g.logs() and "stopped" in g.logs()


def test_idle_keep_alive_connections_are_closed_at_once(gateway, origin):
    g = gateway({"gateway": {"drain_timeout_ms": 10000}, "apis": [proxy_api(origin.addr)]})
    socks = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", g.port), timeout=3)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.05)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        socks.append(s)
    start = time.time()
    g.proc.send_signal(signal.SIGTERM)
    for s in socks:
        assert closed_by_peer(s, timeout=3)
        s.close()
    assert g.proc.wait(timeout=5) == 0
    assert time.time() - start < 2, "waited for idle connections instead of closing them"


def test_a_keep_alive_request_during_the_drain_gets_connection_close(gateway, origin):
    g = gateway({"gateway": {"drain_timeout_ms": 5000}, "apis": [proxy_api(origin.addr)]})
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.sendall(b"GET /slow/600 HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
        g.proc.send_signal(signal.SIGTERM)
        rs = parse_responses(read_all(s, timeout=5))
    assert [r.status for r in rs] == [200]
    assert rs[0].header("connection") == "close"
    assert g.proc.wait(timeout=5) == 0


def test_drain_timeout_cuts_requests_that_never_end(gateway, origin):
    g = gateway({"gateway": {"drain_timeout_ms": 500}, "apis": [proxy_api(origin.addr)]})
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
        start = time.time()
        g.proc.send_signal(signal.SIGTERM)
        assert closed_by_peer(s, timeout=5)
    assert g.proc.wait(timeout=5) == 0
    assert 0.4 < time.time() - start < 2.5
    assert "drain timeout" in g.logs()
