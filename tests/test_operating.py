"""Operating the gateway as a service: `systemctl reload` (SIGHUP) applies the edited config
file like nginx's reload, a bad file keeps the old config serving, and a start whose file
differs from the stored version says so."""

import json
import signal
import time

import requests


def mock_config(body):
    return {
        "apis": [
            {
                "name": "site",
                "integrations": {"m": {"type": "mock", "body": body}},
                "routes": [{"key": "$default", "integration": "m"}],
                "stages": [{"name": "$default"}],
            }
        ]
    }


def write(g, doc):
    g.config_path.write_text(json.dumps(doc, indent=1))


def wait_body(g, want, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        got = requests.get(g.url("/"), timeout=5).text
        if got == want or time.time() > deadline:
            return got
        time.sleep(0.05)


def test_sighup_applies_the_edited_file_and_refuses_a_bad_one(gateway):
    g = gateway(mock_config("one"))
    assert requests.get(g.url("/"), timeout=5).text == "one"
    doc = json.loads(g.config_path.read_text())

    # An edited file: SIGHUP applies it as a new version (source "file").
    doc["apis"][0]["integrations"]["m"]["body"] = "two"
    write(g, doc)
    g.proc.send_signal(signal.SIGHUP)
    assert wait_body(g, "two") == "two"
    deployments = g.admin("GET", "/v1/deployments").json()["deployments"]
    assert deployments[0]["source"] == "file", deployments
    version = g.admin("GET", "/v1/status").json()["config_version"]

    # The same file again: nothing new is stored.
    g.proc.send_signal(signal.SIGHUP)
    assert "unchanged since it was last read" in g.wait_log("unchanged since it was last read")
    assert g.admin("GET", "/v1/status").json()["config_version"] == version

    # A bad file: refused with the field path, the old config keeps serving.
    doc["apis"][0]["routes"][0]["integration"] = "nope"
    write(g, doc)
    g.proc.send_signal(signal.SIGHUP)
    log = g.wait_log("keeps serving")
    assert "apis[0].routes[0].integration" in log and "keeps serving" in log, log[-2000:]
    assert requests.get(g.url("/"), timeout=5).text == "two"
    assert g.admin("GET", "/v1/status").json()["config_version"] == version

    # Not even YAML: refused the same way.
    g.config_path.write_text("apis: [\n")
    g.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert requests.get(g.url("/"), timeout=5).text == "two"
    assert g.proc.poll() is None

    # A change through the admin API is not undone by a reload of an unedited file (logrotate
    # sends SIGHUP every night).
    good = json.loads(json.dumps(doc))
    good["apis"][0]["routes"][0]["integration"] = "m"
    write(g, good)
    g.proc.send_signal(signal.SIGHUP)
    # It is the running config: wait for the reload to say so, or it could land after the PUT
    # below and (rightly) take the file as edited since it was last read.
    assert "holds the running config" in g.wait_log("holds the running config")
    assert wait_body(g, "two") == "two"
    via_api = json.loads(json.dumps(good))
    via_api["apis"][0]["integrations"]["m"]["body"] = "from-api"
    assert g.admin("PUT", "/v1/config", json=via_api).status_code == 200
    g.proc.send_signal(signal.SIGHUP)
    assert "unchanged since it was last read" in g.wait_log("unchanged since it was last read")
    assert requests.get(g.url("/"), timeout=5).text == "from-api"
    # Edited again, the file wins again.
    good["apis"][0]["integrations"]["m"]["body"] = "three"
    write(g, good)
    g.proc.send_signal(signal.SIGHUP)
    assert wait_body(g, "three") == "three"


def test_a_start_whose_file_differs_from_the_stored_config_warns(gateway):
    g = gateway(mock_config("one"))
    doc = json.loads(g.config_path.read_text())
    applied = json.loads(json.dumps(doc))
    applied["apis"][0]["integrations"]["m"]["body"] = "from-api"
    assert g.admin("PUT", "/v1/config", json=applied).status_code == 200

    # The file still says "one": the stored version serves, and the log says how to apply.
    g.stop()
    g.start()
    assert requests.get(g.url("/"), timeout=5).text == "from-api"
    log = g.wait_log("differs from the stored config")
    assert "WARN" in log.split("differs from the stored config")[0].splitlines()[-1]
    assert "systemctl reload turnpike" in log and "--replace-state" in log

    # A file that holds the stored config: no warning.
    write(g, applied)
    g.stop()
    before = g.logs().count("differs from the stored config")
    g.start()
    assert requests.get(g.url("/"), timeout=5).text == "from-api"
    time.sleep(0.3)
    assert g.logs().count("differs from the stored config") == before


def test_gateway_made_errors_are_logged_with_the_request_and_the_cause(gateway, origin):
    from conftest import free_port

    dead = free_port()
    api = {
        "name": "shop",
        "integrations": {
            "live": {"type": "http_proxy", "uri": f"http://{origin.addr}", "timeout_ms": 300},
            "dead": {"type": "http_proxy", "uri": f"http://127.0.0.1:{dead}"},
            "staged": {"type": "http_proxy", "uri": "http://${stageVariables.backend}"},
        },
        "routes": [
            {"key": "GET /slow/{ms}", "integration": "live"},
            {"key": "GET /dead", "integration": "dead"},
            {"key": "GET /staged", "integration": "staged"},
        ],
        "stages": [{"name": "$default"}],
    }
    g = gateway({"apis": [api]})
    checks = [
        ("/dead", 502, f"127.0.0.1:{dead}"),
        ("/slow/2000", 504, origin.addr),
        ("/staged", 500, "backend"),
    ]
    for path, status, upstream in checks:
        r = requests.get(g.url(path), timeout=10)
        assert r.status_code == status, (path, r.text)
        rid = r.headers["apigw-requestid"]
        log = g.wait_log(rid)
        line = next((l for l in log.splitlines() if rid in l), "")
        assert " WARN " in line and "api=shop" in line and "stage=$default" in line, line
        assert f"status={status}" in line and upstream in line and "reason=" in line, line
        assert "route=\"GET " in line, line
        time.sleep(1.1)  # past the per-worker rate limit of these lines

    # The same failures in /metrics, by cause; bytes and accepted connections counted.
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    families = {f.name: f for f in parse_text(g.admin("GET", "/metrics").text)}
    causes = {
        (s.labels["route"], s.labels["cause"]): s.value
        for s in families["turnpike_upstream_errors"].samples
        if s.labels["api"] == "shop"
    }
    assert causes[("GET /dead", "connect")] == 1 and causes[("GET /slow/{ms}", "timeout")] == 1, causes
    assert sum(s.value for s in families["turnpike_connections_accepted"].samples) >= 3
    out = {s.labels["route"]: s.value for s in families["turnpike_response_body_bytes"].samples if s.labels["api"] == "shop"}
    assert out["GET /dead"] > 0, out


def test_metrics_honour_accept_and_parse_with_real_parsers(gateway, origin):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    from conftest import proxy_api

    g = gateway({"apis": [proxy_api(origin.addr)]})
    for path in ("/status/201", "/status/418", "/status/503", "/anything"):
        requests.get(g.url(path), timeout=5)

    # No Accept (curl, old scrapers): the 0.0.4 text format, counters typed by their samples.
    r = g.admin("GET", "/metrics", headers={"Accept": "*/*"})
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in parse_text(r.text)}
    # The parser names counters without _total; a counter typed under another name than its
    # samples would leave its samples in an extra family of type "unknown".
    assert all(f.type != "unknown" for f in families.values()), [n for n, f in families.items() if f.type == "unknown"]
    assert families["turnpike_requests"].type == "counter"
    assert families["turnpike_requests"].samples, "the samples belong to the typed family"
    codes = {
        (s.labels["class"], s.labels["code"]): s.value
        for s in families["turnpike_responses"].samples
        if s.labels["api"] == "api"
    }
    assert codes[("2xx", "201")] == 1 and codes[("2xx", "200")] == 1 and codes[("5xx", "503")] == 1
    assert codes[("4xx", "other")] == 1  # 418 is outside the counted set
    assert families["process_resident_memory_bytes"].samples[0].value > 1_000_000
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_open_fds"].samples[0].value > 3
    assert abs(families["process_start_time_seconds"].samples[0].value - time.time()) < 600

    # What Prometheus asks for: OpenMetrics, strict parser and all.
    accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    r = g.admin("GET", "/metrics", headers={"Accept": accept})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in parse_openmetrics(r.text)}
    assert families["turnpike_requests"].type == "counter"
    assert families["turnpike_request_duration_seconds"].type == "histogram"
    assert families["process_cpu_seconds"].type == "counter"


def test_warnings_are_answered_and_check_strict_fails_on_them(gateway, tmp_path):
    import subprocess

    from conftest import BIN

    doc = mock_config("one")
    doc["apis"][0]["integrations"]["p"] = {"type": "http_proxy", "uri": "http://${stageVariables.backend}"}
    doc["apis"][0]["routes"].append({"key": "GET /p", "integration": "p"})
    path = tmp_path / "warned.json"
    path.write_text(json.dumps(doc))
    plain = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    assert "warning: apis[0].integrations.p.uri" in plain.stderr and "1 warning(s)" in plain.stdout
    strict = subprocess.run([BIN, "check", "--strict", "--config", str(path)], capture_output=True, text=True)
    assert strict.returncode == 1 and "refused by --strict" in strict.stderr, strict

    g = gateway(mock_config("one"))
    r = g.admin("PUT", "/v1/config", json=doc)
    assert r.status_code == 200, r.text
    warnings = r.json()["warnings"]
    assert [w["path"] for w in warnings] == ["apis[0].integrations.p.uri"], warnings
    assert "backend" in warnings[0]["reason"]


def test_admin_cli_finds_the_gateway_through_its_config(gateway, tmp_path):
    import os
    import subprocess

    from conftest import BIN

    g = gateway(mock_config("one"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNPIKE_ADMIN")}
    run = lambda *a: subprocess.run([BIN, "admin", *a], capture_output=True, text=True, env=env, timeout=20)
    # --config: the admin section says where the API listens and where the token is.
    p = run("--config", str(g.config_path), "--json", "status")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["config_version"] >= 1
    # A token the gateway refuses: the message names the file and where that path came from.
    other = json.loads(g.config_path.read_text())
    wrong = tmp_path / "wrong.token"
    wrong.write_text("nope\n")
    other["admin"]["token_file"] = str(wrong)
    cfg = tmp_path / "other.json"
    cfg.write_text(json.dumps(other))
    p = run("--config", str(cfg), "status")
    assert p.returncode == 1 and str(wrong) in p.stderr and f"admin.token_file of {cfg}" in p.stderr, p.stderr
    # A config that does not parse is said so, with the field.
    bad = tmp_path / "bad.json"
    bad.write_text('{"admin": {"listn": 1}}')
    p = run("--config", str(bad), "status")
    assert p.returncode == 1 and "admin.listn" in p.stderr, p.stderr


def test_host_tuning_report_and_drop_in(gateway, tmp_path):
    import subprocess

    from conftest import BIN

    p = subprocess.run([BIN, "tune", "check", "--json"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    findings = {f["name"]: f for f in json.loads(p.stdout)["findings"]}
    for name in ("io_uring", "nofile", "memlock", "net.core.somaxconn", "net.ipv4.ip_local_port_range",
                 "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_migrate_req", "cpu_governor", "nic_irqs"):
        f = findings[name]
        assert f["status"] in ("ok", "warn", "fail", "unknown"), f
        assert f["found"], f
        if f["status"] in ("warn", "fail"):
            assert f["fix"], f
    # The sysctls agree with /proc/sys.
    with open("/proc/sys/net/core/somaxconn") as fh:
        assert findings["net.core.somaxconn"]["found"] == fh.read().strip()

    # The admin API serves the same report.
    g = gateway(mock_config("one"))
    served = {f["name"] for f in g.admin("GET", "/v1/tuning/host").json()["findings"]}
    assert served == set(findings)

    # apply writes the drop-in (here to a file of the test's, without touching the kernel).
    drop_in = tmp_path / "60-turnpike.conf"
    p = subprocess.run([BIN, "tune", "apply", "--file", str(drop_in), "--no-sysctl"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    text = drop_in.read_text()
    assert "net.core.somaxconn = 8192" in text and "net.ipv4.tcp_migrate_req = 1" in text
    assert "restarts" in p.stdout


def _upgraded_pid(g, timeout=10.0):
    """The pid of the process serving `g`'s admin API after an upgrade (asked until it answers)."""
    deadline = time.time() + timeout
    while True:
        try:
            return g.admin("GET", "/v1/status").json()["pid"]
        except requests.RequestException:
            assert time.time() < deadline, "the new process never answered"
            time.sleep(0.05)


def _stop_pid(pid, timeout=15.0):
    """SIGTERM to a process the test did not start (an upgrade's new one) and wait for it."""
    import os

    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.05)


def _serve_load(g, stop, counts, new_connection=True):
    """Requests in a loop until `stop`; counts ok and failed (with the first errors)."""
    headers = {"Connection": "close"} if new_connection else {}
    session = requests.Session()
    while not stop.is_set():
        try:
            r = session.get(g.url("/"), headers=headers, timeout=10)
            if r.status_code == 200:
                counts["ok"] += 1
                counts["last_ok"] = time.time()
            else:
                counts["failed"].append(r.status_code)
        except requests.RequestException as e:
            counts["failed"].append(repr(e))


def test_a_binary_upgrade_under_load_fails_no_request(gateway):
    import os
    import threading

    g = gateway({"gateway": {"workers": 2}, **mock_config("one")})
    old_pid = g.proc.pid
    stop = threading.Event()
    counts = [{"ok": 0, "failed": [], "last_ok": 0} for _ in range(4)]
    threads = [threading.Thread(target=_serve_load, args=(g, stop, c)) for c in counts]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        g.proc.send_signal(signal.SIGUSR2)
        # The old process hands its sockets over, drains and exits.
        assert g.proc.wait(timeout=60) == 0
        exited = time.time()
        new_pid = _upgraded_pid(g)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        assert new_pid != old_pid
        failed = [f for c in counts for f in c["failed"]]
        assert failed == [], failed[:5]
        assert sum(c["ok"] for c in counts) > 50
        assert max(c["last_ok"] for c in counts) > exited + 0.5, "the new process served"
        log = g.logs()
        assert "upgrade: new process started" in log and "took the listening sockets" in log
        # The new process serves the same config and refuses nothing.
        assert requests.get(g.url("/"), timeout=5).text == "one"
    finally:
        _stop_pid(new_pid)


def test_an_upgrade_closes_idle_kept_alive_connections_and_hands_none_to_the_new_process(gateway):
    import os
    import socket as sk

    g = gateway(mock_config("one"))
    s = sk.create_connection(("127.0.0.1", g.port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"one")
    g.proc.send_signal(signal.SIGUSR2)
    assert g.proc.wait(timeout=60) == 0
    new_pid = None
    try:
        new_pid = _upgraded_pid(g)
        # The idle connection was closed by the old process, not left to the new one.
        s.settimeout(5)
        assert s.recv(65536) == b""
        held = [
            os.readlink(f"/proc/{new_pid}/fd/{fd}")
            for fd in os.listdir(f"/proc/{new_pid}/fd")
            if os.path.exists(f"/proc/{new_pid}/fd/{fd}")
        ]
        # No client connection of the old process (ESTABLISHED or CLOSE_WAIT on the listen
        # port) is held by the new one.
        clients = set()
        with open("/proc/net/tcp") as fh:
            for line in fh.readlines()[1:]:
                f = line.split()
                if int(f[1].split(":")[1], 16) == g.port and f[3] in ("01", "08"):
                    clients.add(f"socket:[{f[9]}]")
        assert not clients & set(held), (clients, held)
    finally:
        s.close()
        if new_pid:
            _stop_pid(new_pid)


def test_an_upgrade_whose_new_process_fails_keeps_the_old_one_serving(gateway):
    g = gateway(mock_config("one"))
    # The new process reads the same file: broken, it exits before taking over.
    g.config_path.write_text("apis: [\n")
    g.proc.send_signal(signal.SIGUSR2)
    log = g.wait_log("upgrade not done", timeout=30)
    assert "upgrade not done, this process keeps serving" in log, log[-3000:]
    assert g.proc.poll() is None
    assert requests.get(g.url("/"), timeout=5).text == "one"


def test_systemd_is_told_when_the_gateway_serves(gateway, tmp_path):
    import os
    import socket as sk

    path = str(tmp_path / "notify.sock")
    s = sk.socket(sk.AF_UNIX, sk.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        g = gateway(mock_config("one"))
    finally:
        del os.environ["NOTIFY_SOCKET"]
    msg = s.recv(4096).decode()
    assert "READY=1" in msg and f"MAINPID={g.proc.pid}" in msg, msg
    # An upgrade: the new process says it is the main one before the old one may exit (it
    # does so before it tells the old one to drain), then that it is ready.
    old = g.proc.pid
    g.proc.send_signal(signal.SIGUSR2)
    first = s.recv(4096).decode()
    assert first.startswith("MAINPID=") and "READY" not in first, first
    new_pid = int(first.split("=")[1])
    assert new_pid != old
    assert g.proc.wait(timeout=60) == 0
    ready = s.recv(4096).decode()
    assert "READY=1" in ready and f"MAINPID={new_pid}" in ready, ready
    s.close()
    _stop_pid(new_pid)


def test_a_second_gateway_on_the_same_listen_address_is_refused(gateway, tmp_path):
    import subprocess

    from conftest import BIN

    g = gateway(mock_config("one"))
    doc = json.loads(g.config_path.read_text())
    doc["admin"]["enabled"] = False
    other = tmp_path / "second.json"
    other.write_text(json.dumps(doc))
    p = subprocess.run([BIN, "serve", "--config", str(other)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert f"listen 127.0.0.1:{g.port}: the address is in use" in p.stderr, p.stderr
    # The first one keeps all the traffic.
    assert all(requests.get(g.url("/"), timeout=5).text == "one" for _ in range(20))


def test_an_upgrade_keeps_what_was_applied_even_after_a_replace_state_start(gateway):
    import os

    g = gateway(mock_config("one"), args=["--replace-state"])
    applied = json.loads(g.config_path.read_text())
    applied["apis"][0]["integrations"]["m"]["body"] = "from-api"
    assert g.admin("PUT", "/v1/config", json=applied).status_code == 200
    g.proc.send_signal(signal.SIGUSR2)
    assert g.proc.wait(timeout=60) == 0
    new_pid = _upgraded_pid(g)
    try:
        assert requests.get(g.url("/"), timeout=5).text == "from-api"
    finally:
        _stop_pid(new_pid)
