#!/usr/bin/env python3
"""ws-scale.py: idle WebSocket connections held open, RSS per connection, and echo round
trips per proxy CPU-second: turnpike beside nginx.

    sudo python3 loadtest/ws-scale.py --bin target/release/turnpike --conns 100000
    python3 loadtest/ws-scale.py --bin target/release/turnpike --relay --workers 1 \
        --proxy-cpus 0 --load-cpus 1

Two modes.

**Idle connections** (the default), for each proxy in turn (turnpike, then nginx unless
--no-nginx):

1. raises RLIMIT_NOFILE (the script's and its children's) to --nofile, or as far as the hard
   limit allows (raising the hard limit needs CAP_SYS_RESOURCE, which containers often lack:
   then connections are spread over several turnpike processes of --per-process each, and
   over client processes of as many; nginx, which needs two descriptors per proxied
   connection, gets as many workers as its share of the limit needs, at least --workers, and
   its backend as many processes);
2. starts the proxy: turnpike on a WebSocket API whose `$default` route is a two-way mock
   (it answers every message itself, as an echo-like round trip with no backend); nginx
   (`proxy_http_version 1.1` with the Upgrade headers) proxying to a backend, which is
   turnpike serving the same API (so the backend's memory is not the proxy's);
3. opens --conns WebSocket connections (--nginx-conns for nginx when given; the handshake
   written by hand, completed, then idle), spread over --sources source addresses
   127.0.0.2, 127.0.0.3, ... (one source address has at most ~28k ephemeral ports to one
   destination);
4. reads the proxy's RSS (the sum over its processes) before and after, and prints
   (RSS after - RSS before) / connections;
5. closes them, then runs the echo benchmark: --echo-conns connections each sending a small
   text frame and waiting for the answer, for --echo-seconds, and reports round trips per
   CPU-second of the proxy's processes (utime + stime from /proc), with the round trips per
   second beside it. turnpike's figure here is its mock answering, nginx's a relay: not the
   same work (see --relay for that).

**Relay echo** (--relay): both proxies relay the same WebSockets to the same echo backend,
with --workers workers each, in --rounds interleaved rounds (turnpike, nginx, turnpike-mock,
turnpike, nginx, ...), reporting medians:

- turnpike: a plain HTTP API whose `$default` route is an `http_proxy` integration to the
  backend (a handshake on it is tunnelled: the backend's 101 is relayed, then bytes both
  ways); nginx: `proxy_http_version 1.1`, `Upgrade` / `Connection: upgrade` set,
  `proxy_buffering off`; turnpike-mock: the idle mode's WebSocket API answering each message
  from its two-way mock, for reference;
- the backend is this script run as `--echo-backend PORT`: one Python process on epoll that
  completes the handshake and sends back every data frame's payload unmasked (pings answered,
  closes echoed). Python rather than a third proxy: it is the same small program for both
  proxies, its cost per message is the same whichever proxy sits in front, and a backend built
  from turnpike's own code would share turnpike's changes; its CPU is reported beside the
  proxies' so its share of the box is visible;
- each run opens --echo-conns connections, runs --echo-warmup seconds, then counts round trips
  for --echo-seconds: per second, per CPU-second of the proxy's processes (utime + stime from
  /proc), and p50 / p99 of the round trip as the generator sees it (send to answer, so it
  includes the generator's and backend's own queueing);
- with --proxy-cpus / --load-cpus the proxies, and the generator + backend, are pinned with
  taskset / sched_setaffinity; before each run the script waits up to --quiet-wait seconds for
  the rest of the machine to use under 10 % of it, and reports the others' CPU during each run.

Prints one JSON object per proxy (per run with --relay) and a summary; KEEP_TMP=1 keeps the
configs and logs (the path goes to stderr). Nothing here is timed against a threshold;
compare the lines of one run (DESIGN.md: ratios, never lone numbers).
"""

import argparse
import base64
import collections
import hashlib
import json
import multiprocessing
import os
import resource
import selectors
import shutil
import signal
import socket
import statistics
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


def relay_api(backend_port):
    """A plain HTTP API whose every request goes to the backend: WebSocket handshakes on it are
    tunnelled (proxy/src/upstream/tunnel.rs)."""
    return {
        "name": "relay",
        "integrations": {"backend": {"type": "http_proxy", "uri": f"http://127.0.0.1:{backend_port}"}},
        "routes": [{"key": "$default", "integration": "backend"}],
        "stages": [{"name": "$default"}],
    }


def pinned(cpus, argv):
    return ["taskset", "-c", cpus, *argv] if cpus else argv


def start_turnpike(binary, workers, tmp, name, api=None, cpus=None):
    port, admin = free_port(), free_port()
    state = os.path.join(tmp, f"state-{name}")
    config = {
        "gateway": {"listen": [f"127.0.0.1:{port}"], "workers": workers, "throttle": "off"},
        "admin": {"listen": f"127.0.0.1:{admin}", "state_dir": state, "token_file": os.path.join(state, "token")},
        "apis": [api or ws_api()],
    }
    path = os.path.join(tmp, f"{name}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(tmp, f"{name}.log"), "wb")
    proc = subprocess.Popen(pinned(cpus, [binary, "serve", "--config", path]), stdout=log, stderr=subprocess.STDOUT)
    wait_port(port)
    return proc, port


def start_nginx(workers, backend_ports, tmp, conns, nofile, cpus=None, name="nginx"):
    """nginx proxying WebSockets to backend_ports (round robin); conns is what each worker must
    be ready to hold (two descriptors each)."""
    port = free_port()
    conf = os.path.join(tmp, f"{name}.conf")
    servers = " ".join(f"server 127.0.0.1:{p};" for p in backend_ports)
    with open(conf, "w") as f:
        f.write(
            f"""
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log error;
daemon off;
events {{ worker_connections {min(conns * 2 + 1000, nofile)}; multi_accept on; }}
http {{
    access_log off;
    upstream backend {{ {servers} }}
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
    proc = subprocess.Popen(
        pinned(cpus, ["nginx", "-c", conf, "-p", tmp]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_port(port)
    time.sleep(0.3)
    return proc, port


def start_echo_backend(tmp, cpus=None):
    port = free_port()
    log = open(os.path.join(tmp, "echo-backend.log"), "wb")
    argv = [sys.executable, os.path.abspath(__file__), "--echo-backend", str(port)]
    proc = subprocess.Popen(pinned(cpus, argv), stdout=log, stderr=subprocess.STDOUT)
    wait_port(port)
    return proc, port


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame_head(first, n):
    if n < 126:
        return bytes([first, n])
    if n < 1 << 16:
        return bytes([first, 126]) + struct.pack("!H", n)
    return bytes([first, 127]) + struct.pack("!Q", n)


def unmask(mask, payload):
    n = len(payload)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def recv_ready(s):
    """What a non-blocking socket has: bytes, b"" when it closed or failed, None when nothing
    is there yet."""
    try:
        return s.recv(65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def echo_backend(port):
    """The relay mode's backend, run as `ws-scale.py --echo-backend PORT`: completes each
    WebSocket handshake and sends every data frame back with its payload unmasked; answers
    pings, echoes a close and then closes. One process, epoll, no threads."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    raise_nofile(1 << 20)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)

    def drop(s):
        sel.unregister(s)
        s.close()

    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is lsock:
                while True:
                    try:
                        c, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    # [handshake done, bytes not yet used]
                    sel.register(c, selectors.EVENT_READ, [False, bytearray()])
                continue
            state = key.data
            data = recv_ready(s)
            if data is None:
                continue
            if not data:
                drop(s)
                continue
            buf = state[1]
            buf += data
            out = bytearray()
            if not state[0]:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                wskey = b""
                for line in bytes(buf[:end]).split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"sec-websocket-key":
                        wskey = value.strip()
                del buf[: end + 4]
                accept = base64.b64encode(hashlib.sha1(wskey + WS_GUID).digest())
                out += (
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                )
                state[0] = True
            closing = False
            while len(buf) >= 2 and not closing:
                first, second = buf[0], buf[1]
                n, at = second & 0x7F, 2
                if n == 126:
                    if len(buf) < 4:
                        break
                    n, at = struct.unpack_from("!H", buf, 2)[0], 4
                elif n == 127:
                    if len(buf) < 10:
                        break
                    n, at = struct.unpack_from("!Q", buf, 2)[0], 10
                mask = b""
                if second & 0x80:
                    mask = bytes(buf[at : at + 4])
                    at += 4
                if len(buf) < at + n:
                    break
                payload = bytes(buf[at : at + n])
                del buf[: at + n]
                if mask:
                    payload = unmask(mask, payload)
                opcode = first & 0x0F
                if opcode == 0xA:
                    continue
                if opcode == 0x9:
                    first = 0x8A
                elif opcode == 0x8:
                    closing = True
                out += frame_head(first, n) + payload
            if out:
                try:
                    sent = s.send(out)
                    if sent < len(out):
                        s.setblocking(True)
                        s.sendall(out[sent:])
                        s.setblocking(False)
                except OSError:
                    closing = True
            if closing:
                drop(s)


def masked_text(payload):
    key = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def open_many(port, n, sources, batch=256):
    """Opens n WebSocket connections, returns the sockets and the failures counted by cause."""
    held, failed = [], collections.Counter()
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
            except OSError as e:
                failed[f"connect: {e.strerror or e}"] += 1
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
                    failed[f"answer: {buf[:12].decode(errors='replace') or 'closed'}"] += 1
                    s.close()
            except OSError as e:
                failed[f"handshake: {e.strerror or e}"] += 1
                s.close()
    return held, failed


def hold(ports, n, sources, conn):
    """Child process: opens n connections over `ports`, reports (opened, failures by cause),
    holds them until told to close."""
    held, failed = [], collections.Counter()
    per = -(-n // len(ports))
    for i, port in enumerate(ports):
        h, f = open_many(port, min(per, n - i * per), sources)
        held += h
        failed += f
    conn.send((len(held), dict(failed)))
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
    opened, failed = 0, collections.Counter()
    for _, a in clients:
        o, f = a.recv()
        opened += o
        failed.update(f)

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


def echo(port, conns, seconds, pids, warmup=0.0, backend_pids=()):
    """Closed loop over `conns` connections: each sends a small masked text frame as soon as
    the answer to its last one has arrived. Counts the round trips of `seconds` after `warmup`,
    the CPU the `pids` (and the `backend_pids`) used meanwhile, and each round trip's time from
    send to answer."""
    socks, _ = open_many(port, conns, 1)
    sel = selectors.DefaultSelector()
    msg = masked_text(b'{"action":"ping"}')
    pending, sent_at = {}, {}
    for s in socks:
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel.register(s, selectors.EVENT_READ)
        pending[s] = bytearray()
    t0 = time.perf_counter()
    for s in socks:
        sent_at[s] = time.perf_counter()
        s.send(msg)
    counting, trips, lat = False, 0, []
    start = t0 + warmup
    end = start + seconds
    cpu0 = None
    while True:
        now = time.perf_counter()
        if not counting and now >= start:
            counting, trips, lat = True, 0, []
            cpu0, back0 = cpu_seconds(pids), cpu_seconds(backend_pids)
            own0, machine0, t_start = own_cpu_seconds(), machine_busy_seconds(), now
        if now >= end:
            break
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            data = recv_ready(s)
            if data is None:
                continue
            if not data:
                sel.unregister(s)
                continue
            buf = pending[s]
            buf += data
            # Server frames are unmasked; count whole ones only (an answer may come in pieces).
            while len(buf) >= 2:
                n, at = buf[1] & 0x7F, 2
                if n == 126:
                    n, at = (struct.unpack_from("!H", buf, 2)[0], 4) if len(buf) >= 4 else (1 << 62, 0)
                elif n == 127:
                    n, at = (struct.unpack_from("!Q", buf, 2)[0], 10) if len(buf) >= 10 else (1 << 62, 0)
                if len(buf) < at + n:
                    break
                del buf[: at + n]
                t = time.perf_counter()
                trips += 1
                if counting:
                    lat.append(t - sent_at[s])
                sent_at[s] = t
                s.send(msg)
    elapsed = time.perf_counter() - t_start
    cpu = cpu_seconds(pids) - cpu0
    backend = cpu_seconds(backend_pids) - back0
    own = own_cpu_seconds() - own0
    machine = machine_busy_seconds() - machine0
    close_all(socks)
    lat.sort()

    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6) if lat else None

    return {
        "trips": trips,
        "elapsed": elapsed,
        "cpu": cpu,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "generator_cpu": own,
        "backend_cpu": backend,
        "machine_busy": machine,
    }


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def machine_busy_seconds():
    """CPU-seconds the whole machine spent busy (all CPUs, from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait, ours):
    """Waits up to max_wait seconds for the machine, less the `ours` processes, to use under 10 %
    of its CPUs over one second. Returns whether it did."""
    ncpu = os.cpu_count() or 1
    deadline = time.time() + max_wait
    while True:
        m0, o0 = machine_busy_seconds(), cpu_seconds(ours)
        time.sleep(1.0)
        others = (machine_busy_seconds() - m0) - (cpu_seconds(ours) - o0)
        if others < 0.10 * ncpu:
            return True
        if time.time() >= deadline:
            return False


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
    e = echo(ports[0], args.echo_conns, args.echo_seconds, pids, args.echo_warmup)
    out = {
        "proxy": name,
        "processes": len(pids),
        "connections": opened,
        "failed": sum(failed.values()),
        "failed_by_cause": dict(failed),
        "open_seconds": round(took, 1),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_bytes_per_connection": round(per),
        "echo_round_trips": e["trips"],
        "echo_round_trips_per_second": round(e["trips"] / e["elapsed"]),
        "echo_proxy_cpu_seconds": round(e["cpu"], 2),
        "echo_round_trips_per_cpu_second": round(e["trips"] / e["cpu"]) if e["cpu"] else None,
    }
    print(json.dumps(out), flush=True)
    return out


def idle(args, tmp, procs, nofile):
    results = []
    nproc = max(1, -(-args.conns // args.per_process))
    workers = args.workers if nproc == 1 else 1
    started = [
        start_turnpike(args.bin, workers, tmp, f"turnpike{i}", cpus=args.proxy_cpus) for i in range(nproc)
    ]
    procs += [p for p, _ in started]
    results.append(measure("turnpike", [port for _, port in started], [p.pid for p, _ in started], args, args.conns))
    for p, _ in started:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
    if not args.no_nginx and shutil.which("nginx"):
        n = args.nginx_conns or args.conns
        # Two descriptors per proxied connection, and reuseport spreads connections only
        # roughly evenly: each worker is given room for 80 % of its share of the limit.
        per_worker = int((nofile - 1000) // 2 * 0.8)
        nworkers = max(args.workers, -(-n // per_worker))
        nback = max(1, -(-n // args.per_process))
        backends = [start_turnpike(args.bin, 1, tmp, f"backend{i}") for i in range(nback)]
        procs += [p for p, _ in backends]
        ng, nport = start_nginx(nworkers, [port for _, port in backends], tmp, -(-n // nworkers), nofile, args.proxy_cpus)
        procs.append(ng)
        time.sleep(0.5)
        results.append(measure("nginx", [nport], children(ng.pid), args, n))
    if len(results) == 2:
        t, n = results
        print(
            f"summary: RSS per idle WebSocket turnpike {t['rss_bytes_per_connection']} B "
            f"({t['connections']} connections, {t['processes']} processes), nginx "
            f"{n['rss_bytes_per_connection']} B ({n['connections']}, {n['processes'] - 1} workers); "
            f"echo round trips per proxy CPU-second turnpike (mock) "
            f"{t['echo_round_trips_per_cpu_second']}, nginx (relay) {n['echo_round_trips_per_cpu_second']}"
        )


def relay(args, tmp, procs):
    """--relay: interleaved rounds of echo runs through turnpike and nginx relaying to one echo
    backend, and through turnpike's mock for reference."""
    backend, bport = start_echo_backend(tmp, args.load_cpus)
    procs.append(backend)
    tp, tport = start_turnpike(args.bin, args.workers, tmp, "turnpike-relay", relay_api(bport), args.proxy_cpus)
    procs.append(tp)
    ng, nport = start_nginx(args.workers, [bport], tmp, args.echo_conns, 4096, args.proxy_cpus)
    procs.append(ng)
    mock, mport = start_turnpike(args.bin, args.workers, tmp, "turnpike-mock", cpus=args.proxy_cpus)
    procs.append(mock)
    time.sleep(0.5)
    if args.load_cpus:
        os.sched_setaffinity(0, parse_cpus(args.load_cpus))
    targets = [
        ("turnpike", tport, [tp.pid]),
        ("nginx", nport, children(ng.pid)),
        ("turnpike-mock", mport, [mock.pid]),
    ]
    ours = [os.getpid(), backend.pid, tp.pid, mock.pid] + children(ng.pid)
    runs = {name: [] for name, _, _ in targets}
    noisy = 0
    for r in range(args.rounds):
        for name, port, pids in targets:
            quiet = wait_quiet(args.quiet_wait, ours)
            noisy += not quiet
            e = echo(port, args.echo_conns, args.echo_seconds, pids, args.echo_warmup, [backend.pid])
            others = e["machine_busy"] - e["cpu"] - e["generator_cpu"] - e["backend_cpu"]
            out = {
                "round": r + 1,
                "proxy": name,
                "processes": len(pids),
                "round_trips": e["trips"],
                "round_trips_per_second": round(e["trips"] / e["elapsed"]),
                "proxy_cpu_seconds": round(e["cpu"], 2),
                "round_trips_per_cpu_second": round(e["trips"] / e["cpu"]) if e["cpu"] else None,
                "p50_us": e["p50_us"],
                "p99_us": e["p99_us"],
                "generator_cpu_seconds": round(e["generator_cpu"], 2),
                "backend_cpu_seconds": round(e["backend_cpu"], 2),
                "others_cpu_share": round(max(0.0, others) / e["elapsed"] / (os.cpu_count() or 1), 3),
                "started_quiet": quiet,
            }
            runs[name].append(out)
            print(json.dumps(out), flush=True)
    keys = ["round_trips_per_second", "round_trips_per_cpu_second", "p50_us", "p99_us", "others_cpu_share"]
    med = {name: {k: statistics.median(x[k] for x in rs) for k in keys} for name, rs in runs.items()}
    print(json.dumps({"medians": med, "rounds": args.rounds, "runs_started_busy": noisy}), flush=True)
    t, n, m = med["turnpike"], med["nginx"], med["turnpike-mock"]
    print(
        f"summary ({args.rounds} rounds, medians, {args.workers} worker(s) each): relay to one echo backend: "
        f"turnpike {t['round_trips_per_second']:.0f}/s, {t['round_trips_per_cpu_second']:.0f} per CPU-s, p99 {t['p99_us']:.0f} us; "
        f"nginx {n['round_trips_per_second']:.0f}/s, {n['round_trips_per_cpu_second']:.0f} per CPU-s, p99 {n['p99_us']:.0f} us; "
        f"turnpike/nginx per CPU-s {t['round_trips_per_cpu_second'] / n['round_trips_per_cpu_second']:.2f}x; "
        f"turnpike mock {m['round_trips_per_second']:.0f}/s, {m['round_trips_per_cpu_second']:.0f} per CPU-s"
    )


def parse_cpus(spec):
    cpus = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--echo-backend":
        echo_backend(int(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/turnpike")
    ap.add_argument("--conns", type=int, default=100_000)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nofile", type=int, default=600_000)
    ap.add_argument("--per-process", type=int, default=16_000, help="connections per turnpike or client process when RLIMIT_NOFILE is low")
    ap.add_argument("--nginx-conns", type=int, default=0, help="idle connections through nginx (default: --conns)")
    ap.add_argument("--echo-conns", type=int, default=64)
    ap.add_argument("--echo-seconds", type=float, default=10)
    ap.add_argument("--echo-warmup", type=float, default=1.0)
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--relay", action="store_true", help="the relay echo mode (see above) instead of idle connections")
    ap.add_argument("--rounds", type=int, default=3, help="--relay: interleaved rounds")
    ap.add_argument("--proxy-cpus", help="taskset CPU list for the proxies (default: not pinned)")
    ap.add_argument("--load-cpus", help="--relay: CPU list for the generator and the echo backend")
    ap.add_argument("--quiet-wait", type=float, default=60, help="--relay: seconds to wait for a quiet machine before each run")
    args = ap.parse_args()
    # SIGTERM (a timeout) stops the proxies too, through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    got = raise_nofile(args.nofile)
    if got < args.conns * 2 + 1000:
        args.per_process = min(args.per_process, got - 2000)
        if not args.relay:
            print(f"RLIMIT_NOFILE is {got}: {args.per_process} connections per process", file=sys.stderr)
    else:
        args.per_process = max(args.per_process, args.conns)
    tmp = tempfile.mkdtemp(prefix="ws-scale-")
    procs = []
    try:
        if args.relay:
            relay(args, tmp, procs)
        else:
            idle(args, tmp, procs, got)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        if os.environ.get("KEEP_TMP") == "1":
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
