#!/usr/bin/env python3
"""ws-scale.py: idle WebSocket connections held open, RSS per connection, and echo round
trips per proxy CPU-second: turnpike (a WebSocket API) beside nginx (proxying the same
WebSockets to a backend).

    sudo python3 loadtest/ws-scale.py --bin target/release/turnpike --conns 100000

What it does, for each proxy in turn (turnpike, then nginx unless --no-nginx):

1. raises RLIMIT_NOFILE (the script's and its children's) to --nofile, or as far as the hard
   limit allows (raising the hard limit needs CAP_SYS_RESOURCE, which containers often lack:
   then connections are spread over several turnpike processes of --per-process each, and
   over client processes of as many; nginx's workers are capped by the same limit, so
   --nginx-conns is what nginx is measured with);
2. starts the proxy: turnpike on a WebSocket API whose `$default` route is a two-way mock
   (it answers every message itself, as an echo-like round trip with no backend); nginx
   (`worker_processes` = --workers, `proxy_http_version 1.1` with the Upgrade headers)
   proxying to a backend, which is a second turnpike serving the same API (so the backend's
   memory is not the proxy's);
3. opens --conns WebSocket connections (the handshake written by hand, completed, then
   idle), spread over --sources source addresses 127.0.0.2, 127.0.0.3, ... (one source
   address has at most ~28k ephemeral ports to one destination);
4. reads the proxy's RSS (the sum over its processes) before and after, and prints
   (RSS after - RSS before) / connections;
5. closes them, then runs the echo benchmark: --echo-conns connections each sending a small
   text frame and waiting for the answer, for --echo-seconds, and reports round trips per
   CPU-second of the proxy's processes (utime + stime from /proc), with the round trips per
   second beside it.

Prints one JSON object per proxy and a summary line. Nothing here is timed against a
threshold; compare the two lines of one run (DESIGN.md: ratios, never lone numbers).
"""

import argparse
import base64
import multiprocessing
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

# linux/in.h: bind an address without reserving a port until connect().
IP_BIND_ADDRESS_NO_PORT = 24

HANDSHAKE = (
    "GET /prod HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(n, hard)))
    except (ValueError, PermissionError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / tick


def children(pid):
    out = [pid]
    try:
        for line in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
            out.append(int(line))
    except FileNotFoundError:
        pass
    return out


def ws_api():
    return {
        "name": "chat",
        "protocol": "websocket",
        "integrations": {"answer": {"type": "mock", "status": 200, "body": "ok"}},
        "routes": [{"key": "$default", "integration": "answer", "route_response_selection_expression": "$default"}],
        "stages": [{"name": "prod"}],
    }


def start_turnpike(binary, workers, tmp, name):
    port, admin = free_port(), free_port()
    state = os.path.join(tmp, f"state-{name}")
    config = {
        "gateway": {"listen": [f"127.0.0.1:{port}"], "workers": workers, "throttle": "off"},
        "admin": {"listen": f"127.0.0.1:{admin}", "state_dir": state, "token_file": os.path.join(state, "token")},
        "apis": [ws_api()],
    }
    path = os.path.join(tmp, f"{name}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(tmp, f"{name}.log"), "wb")
    proc = subprocess.Popen([binary, "serve", "--config", path], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port)
    return proc, port


def start_nginx(workers, backend_port, tmp, conns):
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            f"""
worker_processes {workers};
worker_rlimit_nofile {conns * 2 + 10000};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log crit;
daemon off;
events {{ worker_connections {conns * 2 + 5000}; multi_accept on; }}
http {{
    access_log off;
    upstream backend {{ server 127.0.0.1:{backend_port}; }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=65535;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 3600s;
            proxy_buffering off;
        }}
    }}
}}
"""
        )
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    time.sleep(0.3)
    return proc, port


def masked_text(payload):
    key = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def open_many(port, n, sources, batch=256):
    """Opens n WebSocket connections, returns the sockets (failures counted)."""
    held, failed = [], 0
    key = base64.b64encode(b"0123456789abcdef").decode()
    req = HANDSHAKE.format(key=key).encode()
    i = 0
    while i < n:
        pend = []
        for _ in range(min(batch, n - i)):
            src = f"127.0.0.{2 + (i % sources)}"
            i += 1
            s = socket.socket()
            try:
                # The port is picked at connect(), per destination: without this, bind() must
                # find a port free for every destination, a search that slows down as the
                # ports fill (and caps a source address at ~28k connections in all).
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((src, 0))
                s.connect(("127.0.0.1", port))
                s.sendall(req)
                pend.append(s)
            except OSError:
                failed += 1
                s.close()
        for s in pend:
            try:
                s.settimeout(10)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                if buf.startswith(b"HTTP/1.1 101"):
                    held.append(s)
                else:
                    failed += 1
                    s.close()
            except OSError:
                failed += 1
                s.close()
    return held, failed


def hold(ports, n, sources, conn):
    """Child process: opens n connections over `ports`, reports (opened, failed), holds them
    until told to close."""
    held, failed = [], 0
    per = -(-n // len(ports))
    for i, port in enumerate(ports):
        h, f = open_many(port, min(per, n - i * per), sources)
        held += h
        failed += f
    conn.send((len(held), failed))
    conn.recv()
    close_all(held)
    conn.send("closed")


def open_spread(ports, n, sources, per_client):
    """Opens n connections from client processes of at most per_client each, spread evenly
    over ports (each client takes its own slice of the ports). Returns (opened, failed, close)."""
    clients = []
    nclients = max(1, -(-n // per_client))
    for k in range(nclients):
        share = n // nclients + (1 if k < n % nclients else 0)
        mine = ports[k % len(ports) :: nclients] if len(ports) >= nclients else [ports[k % len(ports)]]
        a, b = multiprocessing.Pipe()
        proc = multiprocessing.Process(target=hold, args=(mine, share, sources, b))
        proc.start()
        clients.append((proc, a))
    opened = failed = 0
    for _, a in clients:
        o, f = a.recv()
        opened += o
        failed += f

    def close():
        for _, a in clients:
            a.send("close")
        for proc, a in clients:
            a.recv()
            proc.join()

    return opened, failed, close


def close_all(socks):
    for s in socks:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass


def echo(port, conns, seconds, pids):
    socks, _ = open_many(port, conns, 1)
    sel = selectors.DefaultSelector()
    msg = masked_text(b'{"action":"ping"}')
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    cpu0, t0 = cpu_seconds(pids), time.time()
    for s in socks:
        s.send(msg)
    trips = 0
    while time.time() - t0 < seconds:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(s)
                continue
            # One small answer per message on loopback: count frames by their 2-byte heads.
            at = 0
            while at + 2 <= len(data):
                n = data[at + 1] & 0x7F
                at += 2 + n
                trips += 1
                s.send(msg)
    elapsed, cpu = time.time() - t0, cpu_seconds(pids) - cpu0
    close_all(socks)
    return trips, elapsed, cpu


def measure(name, ports, pids, args, conns):
    time.sleep(0.5)
    for port in ports:
        warm, _ = open_many(port, 50, 1)
        close_all(warm)
    time.sleep(1.0)
    before = rss_kb(pids)
    t = time.time()
    opened, failed, close = open_spread(ports, conns, args.sources, args.per_process)
    took = time.time() - t
    time.sleep(3.0)
    after = rss_kb(pids)
    per = (after - before) * 1024 / max(1, opened)
    close()
    time.sleep(2.0)
    trips, elapsed, cpu = echo(ports[0], args.echo_conns, args.echo_seconds, pids)
    out = {
        "proxy": name,
        "processes": len(pids),
        "connections": opened,
        "failed": failed,
        "open_seconds": round(took, 1),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_bytes_per_connection": round(per),
        "echo_round_trips": trips,
        "echo_round_trips_per_second": round(trips / elapsed),
        "echo_proxy_cpu_seconds": round(cpu, 2),
        "echo_round_trips_per_cpu_second": round(trips / cpu) if cpu else None,
    }
    print(json.dumps(out), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/turnpike")
    ap.add_argument("--conns", type=int, default=100_000)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nofile", type=int, default=600_000)
    ap.add_argument("--per-process", type=int, default=16_000, help="connections per turnpike or client process when RLIMIT_NOFILE is low")
    ap.add_argument("--nginx-conns", type=int, default=16_000)
    ap.add_argument("--echo-conns", type=int, default=64)
    ap.add_argument("--echo-seconds", type=float, default=10)
    ap.add_argument("--no-nginx", action="store_true")
    args = ap.parse_args()
    # SIGTERM (a timeout) stops the proxies too, through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    got = raise_nofile(args.nofile)
    if got < args.conns * 2 + 1000:
        args.per_process = min(args.per_process, got - 2000)
        print(f"RLIMIT_NOFILE is {got}: {args.per_process} connections per process", file=sys.stderr)
    else:
        args.per_process = max(args.per_process, args.conns)
    tmp = tempfile.mkdtemp(prefix="ws-scale-")
    results = []
    procs = []
    try:
        nproc = max(1, -(-args.conns // args.per_process))
        workers = args.workers if nproc == 1 else 1
        started = [start_turnpike(args.bin, workers, tmp, f"turnpike{i}") for i in range(nproc)]
        procs += [p for p, _ in started]
        results.append(measure("turnpike", [port for _, port in started], [p.pid for p, _ in started], args, args.conns))
        for p, _ in started:
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        if not args.no_nginx and shutil.which("nginx"):
            n = min(args.nginx_conns, args.conns)
            backend, bport = start_turnpike(args.bin, args.workers, tmp, "backend")
            procs.append(backend)
            ng, nport = start_nginx(args.workers, bport, tmp, n)
            procs.append(ng)
            time.sleep(0.5)
            results.append(measure("nginx", [nport], children(ng.pid), args, n))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    if len(results) == 2:
        t, n = results
        print(
            f"summary: RSS per idle WebSocket turnpike {t['rss_bytes_per_connection']} B "
            f"({t['connections']} connections), nginx {n['rss_bytes_per_connection']} B "
            f"({n['connections']}); echo round trips per proxy CPU-second turnpike "
            f"{t['echo_round_trips_per_cpu_second']}, nginx {n['echo_round_trips_per_cpu_second']}"
        )


if __name__ == "__main__":
    main()
