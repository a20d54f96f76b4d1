"""The admin API against the real binary: token, resources, validation, ETags, persistence,
rollback, tuning, status, metrics, and changes under traffic."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, closed_by_peer, proxy_api


def mock_api(name="shop", body="hello", extra_routes=()):
    return {
        "name": name,
        "integrations": {"hello": {"type": "mock", "status": 200, "body": body}},
        "routes": [{"key": "GET /hello", "integration": "hello"}, *extra_routes],
        "stages": [{"name": "$default"}],
    }


@pytest.fixture
def gw(gateway):
    return gateway({"gateway": {"workers": 2}, "apis": [mock_api()]})


def test_the_token_is_created_private_and_required(gw):
    token_file = gw.config["admin"]["token_file"]
    mode = stat.S_IMODE(os.stat(token_file).st_mode)
    assert mode == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", gw.token)
    assert requests.get(gw.admin_url("/healthz")).status_code == 200
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": gw.token}]:
        r = requests.get(gw.admin_url("/v1/config"), headers=headers)
        assert r.status_code == 401, headers
        assert "message" in r.json()
    assert gw.admin("GET", "/v1/config").status_code == 200
    assert requests.get(gw.admin_url("/metrics")).status_code == 401


def test_metrics_can_be_public(gateway):
    g = gateway({"admin": {"metrics_public": True}, "apis": [mock_api()]})
    assert requests.get(g.admin_url("/metrics")).status_code == 200
    assert requests.get(g.admin_url("/v1/status")).status_code == 401


def test_each_resource_round_trips_and_takes_effect(gw):
    assert requests.get(gw.url("/hello")).text == "hello"
    # Integration + route: create, read back, served.
    r = gw.admin("POST", "/v1/apis/shop/integrations", json={"name": "bye", "type": "mock", "body": "bye"})
    assert r.status_code == 201, r.text
    r = gw.admin("POST", "/v1/apis/shop/routes", json={"key": "GET /bye", "integration": "bye"})
    assert r.status_code == 201, r.text
    assert gw.admin("GET", "/v1/apis/shop/routes/GET%20%2Fbye").json() == {"key": "GET /bye", "integration": "bye"}
    assert wait_for(lambda: requests.get(gw.url("/bye")).text == "bye")
    # PATCH an integration, PUT a stage, YAML bodies work too.
    r = gw.admin("PATCH", "/v1/apis/shop/integrations/bye", json={"body": "farewell"})
    assert r.status_code == 200, r.text
    assert wait_for(lambda: requests.get(gw.url("/bye")).text == "farewell")
    r = gw.admin("PUT", "/v1/apis/shop/stages/beta", data="variables: { x: '1' }\n", headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert wait_for(lambda: requests.get(gw.url("/beta/bye")).text == "farewell")
    # A second API, a domain for it, then delete both.
    r = gw.admin("POST", "/v1/apis", json=mock_api("other", "other"))
    assert r.status_code == 201, r.text
    r = gw.admin("POST", "/v1/domains", json={"name": "other.test", "mappings": [{"api": "other", "stage": "$default"}]})
    assert r.status_code == 201, r.text
    assert wait_for(lambda: requests.get(gw.url("/hello"), headers={"Host": "other.test"}).text == "other")
    assert [a["name"] for a in gw.admin("GET", "/v1/apis").json()] == ["shop", "other"]
    assert gw.admin("DELETE", "/v1/domains/other.test").status_code == 200
    assert gw.admin("DELETE", "/v1/apis/other").status_code == 200
    assert gw.admin("GET", "/v1/domains").json() == []
    # Delete the route: 404 again.
    assert gw.admin("DELETE", "/v1/apis/shop/routes/GET%20%2Fbye").status_code == 200
    assert wait_for(lambda: requests.get(gw.url("/bye")).status_code == 404)
    assert gw.admin("GET", "/v1/apis/shop/routes/GET%20%2Fbye").status_code == 404


def test_whole_config_get_and_put_yaml_and_json(gw):
    yaml_text = gw.admin("GET", "/v1/config?format=yaml").text
    assert "name: shop" in yaml_text
    doc = gw.admin("GET", "/v1/config").json()
    doc["apis"][0]["integrations"]["hello"]["body"] = "replaced"
    r = gw.admin("PUT", "/v1/config", data=json.dumps(doc), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert wait_for(lambda: requests.get(gw.url("/hello")).text == "replaced")
    r = gw.admin("PUT", "/v1/config", data=yaml_text.replace("hello", "howdy"))
    assert r.status_code == 200, r.text
    assert wait_for(lambda: requests.get(gw.url("/howdy")).text == "howdy")


def test_invalid_writes_are_refused_whole_with_the_field_path_while_traffic_flows(gw):
    failures = []
    stop = threading.Event()

    def traffic():
        with requests.Session() as s:
            while not stop.is_set():
                r = s.get(gw.url("/hello"))
                if r.status_code != 200 or r.text != "hello":
                    failures.append((r.status_code, r.text))

    t = threading.Thread(target=traffic)
    t.start()
    try:
        before = gw.admin("GET", "/v1/config")
        cases = [
            ("POST", "/v1/apis/shop/routes", {"key": "GET /x", "integration": "missing"}, "apis[0].routes[1].integration"),
            ("POST", "/v1/apis/shop/routes", {"key": "FETCH /x", "integration": "hello"}, "apis[0].routes[1].key"),
            ("PATCH", "/v1/apis/shop/integrations/hello", {"status": 99}, "apis[0].integrations.hello.status"),
            ("PATCH", "/v1/apis/shop/integrations/hello", {"statuss": 200}, "apis[0].integrations.hello.statuss"),
            ("PUT", "/v1/apis/shop/integrations/p", {"type": "http_proxy", "uri": "ftp://x"}, "apis[0].integrations.p.uri"),
            ("PATCH", "/v1/tuning", {"idle_timeout_ms": 1}, "gateway.idle_timeout_ms"),
            ("POST", "/v1/domains", {"name": "x.test", "mappings": [{"api": "nope", "stage": "$default"}]}, "domains[0].mappings[0].api"),
        ]
        for method, path, body, field in cases:
            r = gw.admin(method, path, json=body)
            assert r.status_code == 400, (path, r.text)
            paths = [e["path"] for e in r.json()["errors"]]
            assert field in paths, (field, r.json())
        r = gw.admin("PUT", "/v1/config", data="apis: [ {name: a, routes: [ {key: 'GET /', integration: nope} ]} ]")
        assert r.status_code == 400
        assert r.json()["errors"][0]["path"] == "apis[0].routes[0].integration"
        after = gw.admin("GET", "/v1/config")
        assert after.json() == before.json()
        assert after.headers["ETag"] == before.headers["ETag"], "no new version"
    finally:
        stop.set()
        t.join()
    assert failures == []


def test_concurrent_writers_with_stale_etags_get_412(gw):
    etag = gw.admin("GET", "/v1/config").headers["ETag"]
    first = gw.admin("PATCH", "/v1/apis/shop/integrations/hello", json={"body": "a"}, headers={"If-Match": etag})
    assert first.status_code == 200
    second = gw.admin("PATCH", "/v1/apis/shop/integrations/hello", json={"body": "b"}, headers={"If-Match": etag})
    assert second.status_code == 412
    assert gw.admin("GET", "/v1/apis/shop/integrations/hello").json()["body"] == "a"
    # Many writers racing on the same ETag: exactly one wins.
    etag = gw.admin("GET", "/v1/config").headers["ETag"]
    results = []

    def write(i):
        r = gw.admin("PATCH", "/v1/apis/shop/integrations/hello", json={"body": f"w{i}"}, headers={"If-Match": etag})
        results.append(r.status_code)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [412] * 7


def test_restart_serves_the_last_applied_config(gateway):
    g = gateway({"apis": [mock_api()]})
    r = g.admin("PATCH", "/v1/apis/shop/integrations/hello", json={"body": "applied"})
    assert r.status_code == 200
    version = r.json()["config_version"]
    assert g.terminate() == 0
    g.start()  # same --config file, which still says "hello"
    assert requests.get(g.url("/hello")).text == "applied"
    assert g.admin("GET", "/v1/status").json()["config_version"] == version
    assert "--replace-state" in g.logs()
    # --replace-state starts over from the file.
    assert g.terminate() == 0
    g.args = ["--replace-state"]
    g.start()
    assert requests.get(g.url("/hello")).text == "hello"


def test_deployments_and_rollback(gw):
    versions = []
    for body in ["one", "two", "three"]:
        r = gw.admin("PATCH", "/v1/apis/shop/integrations/hello", json={"body": body})
        versions.append(r.json()["config_version"])
    listed = gw.admin("GET", "/v1/deployments").json()["deployments"]
    assert [d["version"] for d in listed[:3]] == versions[::-1]
    assert listed[0]["current"] is True
    r = gw.admin("POST", f"/v1/deployments/{versions[0]}/rollback")
    assert r.status_code == 200, r.text
    assert r.json()["config_version"] > versions[-1]
    assert wait_for(lambda: requests.get(gw.url("/hello")).text == "one")
    newest = gw.admin("GET", "/v1/deployments").json()["deployments"][0]
    assert newest["source"] == f"rollback:{versions[0]}"
    assert gw.admin("GET", f"/v1/deployments/{versions[1]}").json()["config"]["apis"][0]["integrations"]["hello"]["body"] == "two"
    assert gw.admin("POST", "/v1/deployments/999999/rollback").status_code == 404


def test_history_keeps_the_last_n_versions(gateway):
    g = gateway({"admin": {"history": 3}, "apis": [mock_api()]})
    for i in range(6):
        assert g.admin("PATCH", "/v1/apis/shop/integrations/hello", json={"body": str(i)}).status_code == 200
    assert len(g.admin("GET", "/v1/deployments").json()["deployments"]) == 3


def test_tuning_applies_live_and_reports_what_needs_a_restart(gateway, origin):
    g = gateway({"apis": [proxy_api(origin.addr)]})
    t = g.admin("GET", "/v1/tuning").json()
    assert t["live"]["idle_timeout_ms"] == 60000
    assert t["restart"]["driver"] in ("io_uring", "epoll")
    r = g.admin("PATCH", "/v1/tuning", json={"idle_timeout_ms": 300, "workers": 2})
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] == ["gateway.workers"]
    assert g.admin("GET", "/v1/status").json()["restart_required"] == ["gateway.workers"]
    time.sleep(0.15)  # every worker picks the new snapshot up on its next tick
    with socket.create_connection(("127.0.0.1", g.port)) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.1)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        start = time.time()
        assert closed_by_peer(s, timeout=3), "the new idle timeout did not apply"
        assert time.time() - start < 1.5
    # The log level changes at once.
    assert g.admin("PATCH", "/v1/tuning", json={"log_level": "turnpike_proxy=debug,info"}).status_code == 200
    requests.get(g.url("/nothing-upstream-cares-about"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    doc = g.admin("GET", "/v1/config").json()
    doc["apis"][0]["integrations"]["origin"]["uri"] = f"http://127.0.0.1:{dead}"
    assert g.admin("PUT", "/v1/config", json=doc).status_code == 200
    assert wait_for(lambda: requests.get(g.url("/x")).status_code == 502)
    assert wait_for(lambda: "upstream connect failed" in g.logs())


def test_status_shows_every_worker_on_the_current_version(gw):
    r = gw.admin("PATCH", "/v1/apis/shop/integrations/hello", json={"body": "v"})
    version = r.json()["config_version"]
    assert wait_for(lambda: all(w["config_version"] == version for w in gw.admin("GET", "/v1/status").json()["workers"]))
    status = gw.admin("GET", "/v1/status").json()
    assert len(status["workers"]) == 2
    assert status["workers_on_current_config"] is True
    assert status["config_version"] == version


def test_steady_traffic_through_100_config_changes_loses_nothing(gateway, origin):
    g = gateway({"gateway": {"workers": 2}, "apis": [proxy_api(origin.addr)]})
    counts = {"ok": 0, "failed": []}
    stop = threading.Event()

    def traffic(path):
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    r = s.get(g.url(path), timeout=5)
                    if r.status_code == 200:
                        counts["ok"] += 1
                    else:
                        counts["failed"].append(r.status_code)
                except requests.RequestException as e:
                    counts["failed"].append(repr(e))

    threads = [threading.Thread(target=traffic, args=(p,)) for p in ("/a", "/b", "/c", "/d")]
    for t in threads:
        t.start()
    last = None
    try:
        for i in range(100):
            r = g.admin("PUT", "/v1/apis/api/stages/%24default", json={"variables": {"change": str(i)}})
            assert r.status_code == 200, r.text
            last = r.json()["config_version"]
    finally:
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
    assert counts["failed"] == [], counts["failed"][:5]
    assert counts["ok"] > 400, counts
    assert wait_for(lambda: all(w["config_version"] == last for w in g.admin("GET", "/v1/status").json()["workers"]))


def scrape(g):
    text = g.admin("GET", "/metrics").text
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_metrics_are_exact_after_a_known_sequence(gateway, origin):
    api = proxy_api(
        origin.addr,
        integrations={
            "origin": {"type": "http_proxy", "uri": f"http://{origin.addr}/{{p}}"},
            "hello": {"type": "mock", "body": "hi"},
        },
        routes=[{"key": "GET /hello", "integration": "hello"}, {"key": "GET /up/{p+}", "integration": "origin"}],
    )
    g = gateway({"gateway": {"workers": 2}, "apis": [api]})
    for _ in range(3):
        assert requests.get(g.url("/hello")).status_code == 200
    for _ in range(2):
        assert requests.get(g.url("/up/status/503")).status_code == 503
    for _ in range(4):
        assert requests.get(g.url("/nope")).status_code == 404
    assert requests.get(g.url("/up/echo")).status_code == 200
    m = scrape(g)
    hello = 'api="api",stage="$default",route="GET /hello"'
    up = 'api="api",stage="$default",route="GET /up/{p+}"'
    unrouted = 'api="",stage="",route=""'
    assert m[f"turnpike_requests_total{{{hello}}}"] == 3
    assert m[f'turnpike_responses_total{{{hello},class="2xx",code="200"}}'] == 3
    assert m[f"turnpike_requests_total{{{up}}}"] == 3
    assert m[f'turnpike_responses_total{{{up},class="5xx",code="503"}}'] == 2
    assert m[f'turnpike_responses_total{{{up},class="2xx",code="200"}}'] == 1
    assert m[f"turnpike_requests_total{{{unrouted}}}"] == 4
    assert m[f'turnpike_responses_total{{{unrouted},class="4xx",code="404"}}'] == 4
    assert m[f"turnpike_request_duration_seconds_count{{{up}}}"] == 3
    assert m[f"turnpike_integration_duration_seconds_count{{{up}}}"] == 3
    # A mock is an integration too: its (tiny) time is counted, as the HELP text says.
    assert m[f"turnpike_integration_duration_seconds_count{{{hello}}}"] == 3
    assert m[f'turnpike_request_duration_seconds_bucket{{le="+Inf",{up}}}'] == 3
    assert m["turnpike_workers"] == 2
    assert m["turnpike_config_version"] >= 1
    assert sum(v for k, v in m.items() if k.startswith("turnpike_info{")) == 1
    # Counters survive a config change that keeps the route.
    assert g.admin("PATCH", "/v1/apis/api/integrations/hello", json={"body": "changed"}).status_code == 200
    assert scrape(g)[f"turnpike_requests_total{{{hello}}}"] == 3


def test_kill_9_during_200_writes_never_loses_or_corrupts_the_config(gateway):
    """Writes go on while the process is killed at random moments; after each restart the
    served config is the last acknowledged write (or the one in flight), never older, never
    corrupt."""
    import random

    g = gateway({"apis": [mock_api()]})
    rng = random.Random(7)
    acked = 0
    writes = 0
    while writes < 200:
        stop_at = time.time() + rng.uniform(0.02, 0.25)
        killer = threading.Timer(max(0.0, stop_at - time.time()), lambda: g.proc.send_signal(signal.SIGKILL))
        killer.start()
        try:
            while True:
                writes += 1
                try:
                    r = g.admin("PATCH", "/v1/apis/shop/integrations/hello", json={"body": f"w{writes}"}, timeout=2)
                except requests.RequestException:
                    break
                if r.status_code != 200:
                    break
                acked = writes
        finally:
            killer.cancel()
            g.proc.wait(timeout=10)
            g.log.close()
        g.start()
        body = get_after_restart(g.url("/hello"))
        # The last acknowledged write, or one sent after it whose answer the kill cut off
        # (several when consecutive rounds were cut): never older, never another.
        allowed = {f"w{n}" for n in range(acked, writes + 1)}
        assert body in allowed, (body, acked, writes)
        assert g.admin("GET", "/v1/config").status_code == 200
    assert acked >= 150


def test_turnpike_admin_cli(gw, tmp_path):
    env = dict(os.environ, TURNPIKE_ADMIN_URL=gw.admin_url(""), TURNPIKE_ADMIN_TOKEN_FILE=gw.config["admin"]["token_file"])

    def cli(*args):
        return subprocess.run([BIN, "admin", *args], capture_output=True, text=True, env=env, timeout=20)

    status = cli("status")
    assert status.returncode == 0, status.stderr
    # For people: key: value lines and a table of workers; --json for scripts.
    assert "config_version: " in status.stdout and "workers:" in status.stdout, status.stdout
    assert json.loads(cli("--json", "status").stdout)["workers_on_current_config"] in (True, False)
    got = cli("get")
    assert got.returncode == 0 and "name: shop" in got.stdout
    new = tmp_path / "new.yaml"
    new.write_text(got.stdout.replace("body: hello", "body: from-cli"))
    put = cli("put", str(new))
    assert put.returncode == 0, put.stdout + put.stderr
    version = int(re.search(r"^config_version: (\d+)$", put.stdout, re.M).group(1))
    assert wait_for(lambda: requests.get(gw.url("/hello")).text == "from-cli")
    # The same file again changes nothing: no new version pushes others out of the history.
    again = json.loads(cli("--json", "put", str(new)).stdout)
    assert again["config_version"] == version and again["unchanged"] is True
    stale = cli("put", str(new), "--if-version", str(version - 1))
    assert stale.returncode == 1 and "412" not in stale.stderr and "version" in stale.stderr and not stale.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("apis: [ {name: a, routes: [ {key: 'GET /', integration: nope} ]} ]\n")
    refused = cli("put", str(bad))
    assert refused.returncode == 1 and "apis[0].routes[0].integration" in refused.stderr
    table = cli("deployments").stdout
    assert "VERSION  APPLIED_AT" in table and re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", table), table
    deployments = json.loads(cli("--json", "deployments").stdout)["deployments"]
    assert cli("rollback", str(deployments[1]["version"])).returncode == 0
    tuned = cli("tuning", "idle_timeout_ms=7000", "upstream.connect_timeout_ms=1500")
    assert tuned.returncode == 0, tuned.stdout
    live = json.loads(cli("tuning", "--json").stdout)["live"]
    assert live["idle_timeout_ms"] == 7000 and live["upstream"]["connect_timeout_ms"] == 1500


def test_admin_threads_yield_the_cpu_to_the_workers(gw):
    """A scrape or a config compile must not hold up requests on a shared core: the admin
    threads run at nice 10, the workers at the process's own priority."""
    with requests.Session() as s:  # a kept-alive admin connection keeps its thread alive
        assert s.get(gw.admin_url("/healthz")).status_code == 200
        nice = thread_nice_values(gw.proc.pid)
    assert nice.get("turnpike-admin") == {10}, nice
    assert nice.get("turnpike-admin-") == {10}, nice  # the connection threads ("comm" keeps 15 bytes)
    workers = {n: v for n, v in nice.items() if n.startswith("turnpike-w")}
    assert workers and all(v == {0} for v in workers.values()), nice


def thread_nice_values(pid):
    """{thread name: {nice values}} of a process, from /proc."""
    nice = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        # Field 19 (nice), counted from field 3, the first after the name's closing parenthesis.
        nice.setdefault(name, set()).add(int(stat[stat.rindex(")") + 2 :].split()[16]))
    return nice


def test_the_admin_port_refuses_malformed_requests(gw):
    from conftest import raw

    resp = raw(gw.admin_port, b"GET /v1/config HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 400")
    resp = raw(gw.admin_port, b"GET /healthz HTTP/1.1\nHost: a\n\n")
    assert resp.startswith(b"HTTP/1.1 400")


def test_a_non_loopback_admin_listen_needs_allow_remote(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("admin: { listen: '0.0.0.0:9901' }\n")
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    assert r.returncode == 1 and "admin.listen" in r.stderr and "allow_remote" in r.stderr


def get_after_restart(url):
    """GET, allowing for the first milliseconds after restarting a SIGKILLed io_uring process:
    the kernel tears the dead process's rings down asynchronously, and until then its
    SO_REUSEPORT listener can still take (and reset) a connection."""
    deadline = time.time() + 2
    while True:
        try:
            return requests.get(url, timeout=2).text
        except requests.ConnectionError:
            if time.time() > deadline:
                raise
            time.sleep(0.01)


def wait_for(cond, timeout=3.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return True
        except requests.RequestException:
            pass
        time.sleep(0.02)
    return False





def test_a_document_without_a_gateway_section_keeps_the_listen_address(gateway, tmp_path):
    """A whole document (PUT /v1/config, turnpike admin put) that leaves `gateway` out keeps
    the running section: it must not fall back to 0.0.0.0:8080 and auto workers at the next
    restart. One that has the section is taken as written."""
    g = gateway({"gateway": {"workers": 2, "idle_timeout_ms": 7000}, "apis": [mock_api()]})
    listen = [f"127.0.0.1:{g.port}"]

    def running():
        return g.admin("GET", "/v1/config").json()["gateway"]

    assert running()["listen"] == listen
    doc = {"apis": [mock_api(body="no-gateway")]}
    r = g.admin("PUT", "/v1/config", data=json.dumps(doc), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] == []
    gw_section = running()
    assert (gw_section["listen"], gw_section["workers"], gw_section["idle_timeout_ms"]) == (listen, 2, 7000)

    # The same through the CLI, with a YAML file.
    env = dict(os.environ, TURNPIKE_ADMIN_URL=g.admin_url(""), TURNPIKE_ADMIN_TOKEN_FILE=g.config["admin"]["token_file"])
    new = tmp_path / "no-gateway.yaml"
    new.write_text(
        "apis:\n  - name: shop\n    integrations: { hello: { type: mock, body: from-cli } }\n"
        "    routes: [ { key: 'GET /hello', integration: hello } ]\n    stages: [ { name: $default } ]\n"
    )
    put = subprocess.run([BIN, "admin", "put", str(new)], capture_output=True, text=True, env=env, timeout=20)
    assert put.returncode == 0, put.stdout + put.stderr
    assert running() == gw_section
    assert wait_for(lambda: requests.get(g.url("/hello")).text == "from-cli")

    # After a restart (the state directory now holds the truth) it listens where it did.
    assert g.terminate() == 0
    g.start()
    assert requests.get(g.url("/hello")).text == "from-cli"
    assert running() == gw_section
    assert len(g.admin("GET", "/v1/status").json()["workers"]) == 2

    # A document that has a gateway section is taken as written.
    doc = {"gateway": {"listen": listen, "workers": 1}, "apis": [mock_api()]}
    r = g.admin("PUT", "/v1/config", json=doc)
    assert r.status_code == 200, r.text
    assert running()["workers"] == 1 and running()["idle_timeout_ms"] == 60000
