"""Bodies stream in both directions without being buffered whole: a 1 GiB upload and a 1 GiB
download through the gateway grow its memory by a few buffers at most."""

import hashlib
import socket

from conftest import one_response, proxy_api, read_all

GIB = 1 << 30
BLOCK = bytes(range(256)) * 4096  # 1 MiB
# Peak resident memory may grow by this much while a 1 GiB body passes (64 KiB buffers).
MAX_GROWTH_KB = 24 * 1024


def peak_rss_kb(gw):
    with open(f"/proc/{gw.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def big_gateway(gateway, origin):
    return gateway({"apis": [proxy_api(origin.addr, max_body_bytes=2 * GIB)]})


def warm_up(gw):
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n" + BLOCK)
        s.recv(65536)


def test_one_gib_upload_streams_with_bounded_memory(gateway, origin):
    g = big_gateway(gateway, origin)
    warm_up(g)
    before = peak_rss_kb(g)
    digest = hashlib.sha256()
    with socket.create_connection(("127.0.0.1", g.port), timeout=60) as s:
        s.sendall(b"PUT /sink HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % GIB)
        for _ in range(GIB // len(BLOCK)):
            s.sendall(BLOCK)
            digest.update(BLOCK)
        s.shutdown(socket.SHUT_WR)
        r = one_response(read_all(s, timeout=60))
    assert r.status == 200
    seen = r.json()
    assert seen["body_len"] == GIB
    assert seen["body_sha256"] == digest.hexdigest()
    growth = peak_rss_kb(g) - before
    print(f"peak RSS growth: {growth} KiB (baseline {before} KiB)")
    assert growth < MAX_GROWTH_KB, f"peak RSS grew by {growth} KiB for a 1 GiB upload"


def test_one_gib_chunked_upload_streams_with_bounded_memory(gateway, origin):
    g = big_gateway(gateway, origin)
    warm_up(g)
    before = peak_rss_kb(g)
    frame = b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n"
    with socket.create_connection(("127.0.0.1", g.port), timeout=60) as s:
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(GIB // len(BLOCK)):
            s.sendall(frame)
        s.sendall(b"0\r\n\r\n")
        r = one_response(read_all(s, timeout=60))
    assert r.status == 200 and r.json()["body_len"] == GIB
    growth = peak_rss_kb(g) - before
    print(f"peak RSS growth: {growth} KiB (baseline {before} KiB)")
    assert growth < MAX_GROWTH_KB, f"peak RSS grew by {growth} KiB for a 1 GiB chunked upload"


def test_one_gib_download_streams_with_bounded_memory(gateway, origin):
    g = big_gateway(gateway, origin)
    warm_up(g)
    before = peak_rss_kb(g)
    with socket.create_connection(("127.0.0.1", g.port), timeout=60) as s:
        s.sendall(b"GET /download/%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % GIB)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        head, _, body_start = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: %d" % GIB in head
        received = len(body_start)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    assert received == GIB
    growth = peak_rss_kb(g) - before
    print(f"peak RSS growth: {growth} KiB (baseline {before} KiB)")
    assert growth < MAX_GROWTH_KB, f"peak RSS grew by {growth} KiB for a 1 GiB download"
