"""Fixtures: the real turnpike binary started on a config, a recording origin, raw sockets.

The binary is target/release/turnpike unless TURNPIKE_BIN says otherwise (scripts/test builds
it first). The I/O driver comes from the environment: MONOIO_FORCE_LEGACY_DRIVER=1 runs the
whole suite on epoll; without it, io_uring where the kernel allows it.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "support"))

from origin import Origin  # noqa: E402
from pki import Pki  # noqa: E402

BIN = os.environ.get("TURNPIKE_BIN", os.path.join(ROOT, "target", "release", "turnpike"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """`n` distinct free ports (held open together while they are picked)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class PortTaken(RuntimeError):
    """The gateway refused to start: a port picked for it was taken in the meantime."""


def wait_port(port, proc, log_path, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            log = open(log_path).read()
            if "the address is in use" in log:
                raise PortTaken(log)
            raise RuntimeError(f"turnpike exited with {proc.returncode}:\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"turnpike did not listen on {port}:\n{open(log_path).read()}")


class Gateway:
    """A running `turnpike serve --config FILE`. With `tls`, it also listens on an
    `https://` port, `tls_port` (the config must give it a certificate)."""

    def __init__(self, config, tmp_path, args=(), tls=False):
        # Ports are picked free, then bound by the gateway a moment later: another listener
        # can take one in between, which the gateway refuses. Then it starts again on others.
        pristine = json.loads(json.dumps(config))
        for attempt in range(3):
            try:
                # The caller's dict is filled in (tests read the ports and paths from it).
                config.clear()
                config.update(json.loads(json.dumps(pristine)))
                self._configure(config, tmp_path, args, tls)
                self.start(waits=0)
                return
            except PortTaken:
                if attempt == 2:
                    raise

    def _configure(self, config, tmp_path, args, tls):
        self.port, self.tls_port, self.admin_port = free_ports(3)
        if not tls:
            self.tls_port = None
        gw = config.setdefault("gateway", {})
        listen = [f"127.0.0.1:{self.port}"]
        if tls:
            listen.append(f"https://127.0.0.1:{self.tls_port}")
        gw.setdefault("listen", listen)
        gw.setdefault("workers", 1)
        self.state_dir = tmp_path / f"state-{self.port}"
        admin = config.setdefault("admin", {})
        admin.setdefault("listen", f"127.0.0.1:{self.admin_port}")
        admin.setdefault("state_dir", str(self.state_dir))
        admin.setdefault("token_file", str(self.state_dir / "admin.token"))
        self.config = config
        self.dir = tmp_path
        self.config_path = tmp_path / f"turnpike-{self.port}.json"
        self.config_path.write_text(json.dumps(config, indent=1))
        self.log_path = tmp_path / f"turnpike-{self.port}.log"
        self.args = list(args)
        self.proc = None

    def start(self, waits=5):
        """Starts (or restarts, on the same ports) the process. A port still held elsewhere
        for a moment (a restart right after a kill) is waited for, a few times."""
        for attempt in range(waits + 1):
            try:
                return self._start()
            except PortTaken:
                self.log.close()
                if attempt == waits:
                    raise
                time.sleep(0.2)

    def _start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", str(self.config_path), *self.args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc, self.log_path)
        if self.tls_port:
            wait_port(self.tls_port, self.proc, self.log_path)
        if self.config["admin"].get("enabled", True):
            wait_port(self.admin_port, self.proc, self.log_path)

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def admin_url(self, path="/"):
        return f"http://127.0.0.1:{self.admin_port}{path}"

    @property
    def token(self):
        with open(self.config["admin"]["token_file"]) as f:
            return f.read().strip()

    def admin(self, method, path, **kw):
        """An authenticated admin API call (requests.Response)."""
        headers = kw.pop("headers", {})
        headers.setdefault("Authorization", f"Bearer {self.token}")
        kw.setdefault("timeout", 10)
        return requests.request(method, self.admin_url(path), headers=headers, **kw)

    def logs(self):
        return open(self.log_path, encoding="utf-8", errors="replace").read()

    def wait_log(self, text, timeout=5.0):
        """The log once it contains `text` (the ports open before the start-up line is
        written), or as it is after `timeout`."""
        deadline = time.time() + timeout
        while text not in self.logs() and time.time() < deadline:
            time.sleep(0.02)
        return self.logs()

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def terminate(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()


def log_with(path, *needles, timeout=5.0):
    """The file at `path` (an access log) once it holds every needle (lines are written in
    batches), or as it is after `timeout`."""
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = path.read_text() if path.exists() else ""
        if all(n in text for n in needles):
            break
        time.sleep(0.05)
    return text


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture
def gateway(tmp_path, request):
    """Factory: gateway(config_dict, args=(), tls=False) -> Gateway; stopped after the test.
    When the test failed, each gateway's log is printed (pytest shows it with the failure)."""
    started = []

    def make(config, args=(), tls=False):
        g = Gateway(config, tmp_path, args, tls)
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop()
        if getattr(request.node, "failed_call", False):
            print(f"--- log of the gateway on port {g.port} (exit {g.proc.returncode if g.proc else '-'}):")
            print(g.logs()[-6000:])


def proxy_api(origin_addr, name="api", routes=None, integrations=None, stages=None, **extra):
    """An API whose $default route proxies everything to the origin (path forwarded as is)."""
    api = {
        "name": name,
        "integrations": integrations or {"origin": {"type": "http_proxy", "uri": f"http://{origin_addr}"}},
        "routes": routes or [{"key": "$default", "integration": "origin"}],
        "stages": stages or [{"name": "$default"}],
    }
    api.update(extra)
    return api


@pytest.fixture
def pki(tmp_path):
    """A test PKI writing into this test's directory (CAs shared by the whole session)."""
    return Pki(tmp_path / "pki")


def require_tool(found, what):
    """Skips the test when a tool it needs is missing -- except under CI (or
    TURNPIKE_REQUIRE_TOOLS=1), where scripts/test installed it and missing means broken."""
    if found:
        return
    if os.environ.get("CI", "") not in ("", "0", "false") or os.environ.get("TURNPIKE_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{what} is missing (scripts/test installs it)")
    pytest.skip(f"{what} is not installed")


@pytest.fixture
def proxied(gateway, origin):
    """A gateway that forwards every request unchanged to the recording origin."""
    return gateway({"apis": [proxy_api(origin.addr)]})


# -- raw sockets ----------------------------------------------------------------------------


def raw(port, data, timeout=3.0, half_close=True):
    """Sends bytes, optionally half-closes, and reads until the peer closes or `timeout`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return read_all(s, timeout)


def read_all(s, timeout=3.0):
    s.settimeout(timeout)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def closed_by_peer(s, timeout=3.0):
    """Whether the peer closes the connection within `timeout` (reads and drops data)."""
    s.settimeout(timeout)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False


class Response:
    def __init__(self, status, reason, headers, body, trailers=()):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.trailers = list(trailers)

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return vals[0] if vals else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.reason} {self.headers} {self.body[:80]!r}>"


def parse_responses(data, head_request=False):
    """Splits a byte stream into HTTP/1.1 responses (length, chunked, or to the end)."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            raise ValueError(f"incomplete head: {data[:200]!r}")
        lines = data[:end].split(b"\r\n")
        _, status, *reason = lines[0].split(b" ", 2)
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.append((k.decode(), v.strip().decode("latin-1")))
        data = data[end + 4 :]
        status = int(status)
        get = lambda n: [v for k, v in headers if k.lower() == n]  # noqa: E731
        body, trailers = b"", []
        if status in (100, 101, 204, 304) or 100 <= status < 200 or head_request:
            pass
        elif get("transfer-encoding"):
            while True:
                line, _, data = data.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        line, _, data = data.partition(b"\r\n")
                        if not line:
                            break
                        k, _, v = line.partition(b":")
                        trailers.append((k.decode(), v.strip().decode()))
                    break
                body += data[:size]
                data = data[size + 2 :]
        elif get("content-length"):
            n = int(get("content-length")[0])
            if len(data) < n:
                raise ValueError(f"short body: {len(data)} < {n}")
            body, data = data[:n], data[n:]
        else:
            body, data = data, b""
        out.append(Response(status, b" ".join(reason).decode(), headers, body, trailers))
    return out


def one_response(data, **kw):
    rs = parse_responses(data, **kw)
    assert len(rs) == 1, rs
    return rs[0]


# -- load ------------------------------------------------------------------------------------


def hammer(port, path, seconds, conns=4, headers=None):
    """Sends GETs on `conns` keep-alive connections for `seconds`; returns
    (statuses by code, elapsed seconds from the first send to the last answer)."""
    counts = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    started = []

    def run():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        local = {}
        while True:
            now = time.monotonic()
            if now >= stop:
                break
            if not started:
                started.append(now)
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            r.read()
            local[r.status] = local.get(r.status, 0) + 1
        c.close()
        with lock:
            for k, v in local.items():
                counts[k] = counts.get(k, 0) + v

    threads = [threading.Thread(target=run) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts, time.monotonic() - started[0]

