"""A turnpike cluster on loopback: three nodes join over gossip (SWIM, HMAC-sealed UDP),
agree on membership, notice a killed node, and drop datagrams sealed with another secret."""

import hashlib
import hmac
import os
import socket
import subprocess
import time

import pytest
import requests

from conftest import BIN, free_ports

SECRET = "a-cluster-secret-for-tests-0123456789"


def udp_ports(n):
    ports = []
    while len(ports) < n:
        for p in free_ports(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", p))
                ports.append(p)
            except OSError:
                pass
            finally:
                s.close()
    return ports[:n]


def node_config(name, port, seeds, secret_file, stage=None, keyed=False):
    route = {"key": "GET /pets", "integration": "ok"}
    if keyed:
        route["api_key_required"] = True
    return {
        "gateway": {"throttle": "off"},
        "cluster": {
            "node_name": name,
            "bind": f"127.0.0.1:{port}",
            "seeds": [f"127.0.0.1:{s}" for s in seeds],
            "secret_file": str(secret_file),
        },
        "apis": [
            {
                "name": "shop",
                "integrations": {"ok": {"type": "mock", "status": 200, "body": "ok"}},
                "routes": [route],
                "stages": [stage or {"name": "$default"}],
                **({"api_key_source": "header"} if keyed else {}),
            }
        ],
    }


def start_cluster(gateway, tmp_path, n=3, secret=SECRET, stage=None, keyed=False):
    secret_file = tmp_path / "cluster.secret"
    secret_file.write_text(secret + "\n")
    ports = udp_ports(n)
    nodes = []
    for i in range(n):
        seeds = [ports[0]] if i else []
        nodes.append(gateway(node_config(f"gw-{i + 1}", ports[i], seeds, secret_file, stage, keyed)))
    return nodes, ports


def members(g):
    status = g.admin("GET", "/v1/status").json()
    return {m["name"]: m for m in (status["cluster"] or {}).get("members", [])}


def wait_for(check, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout}s: {last!r}")


def all_alive(nodes, names):
    def check():
        for g in nodes:
            m = members(g)
            if not all(m.get(n, {}).get("state") == "alive" for n in names if n != g.config["cluster"]["node_name"]):
                return False
        return True

    return check


def test_three_nodes_converge_on_membership(gateway, tmp_path):
    nodes, _ = start_cluster(gateway, tmp_path)
    names = ["gw-1", "gw-2", "gw-3"]
    wait_for(all_alive(nodes, names), what="every node sees the two others alive")
    for g in nodes:
        m = members(g)
        assert set(m) == set(names) - {g.config["cluster"]["node_name"]}
        # Members probe each other every half second: each is heard from directly soon.
        wait_for(
            lambda: all(v["last_seen_seconds_ago"] is not None and v["last_seen_seconds_ago"] < 5 for v in members(g).values()),
            timeout=5,
            what="every member heard from",
        )
    metrics = nodes[0].admin("GET", "/metrics").text
    assert 'turnpike_cluster_members{state="alive"} 2' in metrics
    assert "turnpike_cluster_member_last_seen_seconds" in metrics


def test_a_killed_node_is_marked_dead_within_seconds(gateway, tmp_path):
    nodes, _ = start_cluster(gateway, tmp_path)
    wait_for(all_alive(nodes, ["gw-1", "gw-2", "gw-3"]), what="convergence")
    nodes[2].proc.kill()
    nodes[2].proc.wait()
    killed = time.time()
    for g in nodes[:2]:
        wait_for(lambda: members(g).get("gw-3", {}).get("state") == "dead", timeout=10, what="gw-3 dead")
    assert time.time() - killed < 10
    assert members(nodes[0])["gw-2"]["state"] == "alive"


def seal(secret, kind, payload):
    body = b"TP" + bytes([1, kind]) + payload
    return body + hmac.new(secret.encode(), body, hashlib.sha256).digest()[:16]


def test_datagrams_with_a_wrong_secret_are_dropped_and_counted(gateway, tmp_path):
    nodes, ports = start_cluster(gateway, tmp_path, n=2)
    wait_for(all_alive(nodes, ["gw-1", "gw-2"]), what="convergence")
    # A forged counter update: gw-2's node key does not matter, the tag is checked first.
    forged = seal("not-the-secret-0123456789", 1, (7).to_bytes(8, "little") + (1).to_bytes(8, "little") + b"\x01" + (5).to_bytes(8, "little") + b"\x7f")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(5):
        s.sendto(forged, ("127.0.0.1", ports[0]))
    s.sendto(b"hello", ("127.0.0.1", ports[0]))
    s.close()

    def dropped():
        d = nodes[0].admin("GET", "/v1/status").json()["cluster"]["dropped_datagrams"]
        return d if d["bad_tag"] >= 5 and d["malformed"] >= 1 else None

    wait_for(dropped, timeout=5, what="drops counted")
    metrics = nodes[0].admin("GET", "/metrics").text
    assert 'turnpike_cluster_dropped_datagrams_total{reason="bad_tag"} 5' in metrics
    # Nothing forged was merged.
    detail = nodes[0].admin("GET", "/v1/cluster").json()
    assert all(n["node"] != f"{7:016x}" for c in detail["counters"] for n in c["nodes"])


def test_a_node_with_another_secret_never_joins(gateway, tmp_path):
    nodes, ports = start_cluster(gateway, tmp_path, n=2)
    wait_for(all_alive(nodes, ["gw-1", "gw-2"]), what="convergence")
    other = tmp_path / "other.secret"
    other.write_text("a-different-secret-0123456789")
    (port,) = udp_ports(1)
    stranger = gateway(node_config("gw-x", port, [ports[0]], other))
    time.sleep(3)
    assert "gw-x" not in members(nodes[0])
    assert members(stranger) == {}
    assert nodes[0].admin("GET", "/v1/status").json()["cluster"]["dropped_datagrams"]["bad_tag"] > 0
    # The log says why, not only a counter.
    assert "fail the secret check" in nodes[0].wait_log("fail the secret check")


def test_two_nodes_with_one_name_are_reported_and_do_not_add_up(gateway, tmp_path):
    stage = {"name": "$default", "throttle": {"rate_limit": 50, "burst_limit": 50, "scope": "cluster"}}
    secret_file = tmp_path / "cluster.secret"
    secret_file.write_text(SECRET)
    ports = udp_ports(2)
    a = gateway(node_config("gw-1", ports[0], [], secret_file, stage))
    b = gateway(node_config("gw-1", ports[1], [ports[0]], secret_file, stage))
    hammer_all([a, b], 1.0)
    for g in (a, b):
        wait_for(
            lambda: g.admin("GET", "/v1/status").json()["cluster"]["dropped_datagrams"]["name_conflict"] > 0,
            timeout=10,
            what="counts under this node's name dropped",
        )
        assert "give every node its own cluster.node_name" in g.wait_log("its own cluster.node_name")
    assert 'turnpike_cluster_dropped_datagrams_total{reason="name_conflict"}' in a.admin("GET", "/metrics").text


def test_a_node_without_a_cluster_shows_none(gateway):
    g = gateway({"gateway": {"throttle": "off"}, "apis": []})
    assert g.admin("GET", "/v1/status").json()["cluster"] is None
    assert g.admin("GET", "/v1/cluster").status_code == 404


def test_cluster_config_is_checked(tmp_path):
    import subprocess

    from conftest import BIN

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "cluster: { node_name: 'no spaces allowed', bind: '0.0.0.0:7946', seeds: [nope], secret_file: '', sync_interval_ms: 0 }\n"
    )
    out = subprocess.run([BIN, "check", "--config", str(bad)], capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    for path in ["cluster.node_name", "cluster.seeds[0]", "cluster.secret_file", "cluster.sync_interval_ms", "cluster.advertise"]:
        assert path in text, text
    # The secret file is read by the check, not only at start.
    short = tmp_path / "short.secret"
    short.write_text("twelve-bytes\n")
    for secret, why in [(tmp_path / "missing.secret", "No such file"), (short, "at least 16 bytes, not 12")]:
        bad.write_text(f"cluster: {{ node_name: gw-1, bind: '127.0.0.1:7946', secret_file: '{secret}' }}\n")
        out = subprocess.run([BIN, "check", "--config", str(bad)], capture_output=True, text=True)
        assert out.returncode != 0 and "cluster.secret_file" in out.stdout + out.stderr and why in out.stdout + out.stderr, out
    # scope: cluster with no cluster to count with: valid, and said.
    alone = tmp_path / "alone.yaml"
    alone.write_text(
        "apis: [{ name: shop, integrations: { ok: { type: mock, status: 200 } }, routes: [{ key: 'GET /', integration: ok }],"
        " stages: [{ name: prod, throttle: { rate_limit: 5, burst_limit: 5, scope: cluster } }] }]\n"
    )
    out = subprocess.run([BIN, "check", "--config", str(alone)], capture_output=True, text=True)
    assert out.returncode == 0, out
    assert "apis[0].stages[0].throttle.scope" in out.stdout + out.stderr and "this node's traffic alone" in out.stdout + out.stderr


def hammer_all(nodes, seconds, path="/pets"):
    """Hammers every node at once; returns (200s, 429s, elapsed) summed."""
    import threading

    from conftest import hammer

    results = []

    def one(g):
        results.append(hammer(g.port, path, seconds, conns=2))

    threads = [threading.Thread(target=one, args=(g,)) for g in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(r[0].get(200, 0) for r in results)
    refused = sum(r[0].get(429, 0) for r in results)
    return ok, refused, max(r[1] for r in results)


def test_a_cluster_scoped_stage_throttle_holds_for_the_cluster_total(gateway, tmp_path):
    rate, burst = 50, 50
    stage = {"name": "$default", "throttle": {"rate_limit": rate, "burst_limit": burst, "scope": "cluster"}}
    nodes, _ = start_cluster(gateway, tmp_path, stage=stage)
    wait_for(all_alive(nodes, ["gw-1", "gw-2", "gw-3"]), what="convergence")
    ok, refused, elapsed = hammer_all(nodes, 3.0)
    allowed = burst + rate * elapsed
    print(f"cluster scope: {ok} admitted, {refused} refused in {elapsed:.2f}s; the limit allows {allowed:.0f}")
    # Three nodes, each alone would admit `allowed`: the cluster admits it once (the sync
    # delay, 10 ms, overshoots by about a request).
    assert refused > 0
    assert ok <= allowed * 1.1 + 3, (ok, allowed)
    assert ok >= allowed * 0.8, (ok, allowed)
    # Each node's share shows on every node, and adds up to what was admitted.
    name = "stage/shop/$default/GET /pets"

    def shares():
        detail = nodes[0].admin("GET", "/v1/cluster").json()
        c = next((c for c in detail["counters"] if c["name"] == name), None)
        return c and {n["node"]: n["count"] for n in c["nodes"]}

    def settled():
        s = shares()
        return s if s and len(s) == 3 and sum(s.values()) == ok else None

    s = wait_for(settled, timeout=5, what="shares add up")
    assert all(v > 0 for v in s.values()), s
    # A killed node's usage still counts.
    nodes[2].proc.kill()
    nodes[2].proc.wait()
    wait_for(lambda: members(nodes[0]).get("gw-3", {}).get("state") == "dead", timeout=10, what="gw-3 dead")
    assert shares()["gw-3"] == s["gw-3"]


def test_a_restarted_node_owes_nothing_for_the_counts_it_learns_back(gateway, tmp_path):
    # Under the limit, a node that restarts learns its own count from before and its peers'
    # (the cluster's past) and admits on at once, and so do its peers.
    stage = {"name": "$default", "throttle": {"rate_limit": 20, "burst_limit": 5, "scope": "cluster"}}
    nodes, _ = start_cluster(gateway, tmp_path, stage=stage)
    wait_for(all_alive(nodes, ["gw-1", "gw-2", "gw-3"]), what="convergence")

    def paced(gs, seconds, per_second=4):
        codes = []
        for i in range(int(seconds * per_second)):
            g = gs[i % len(gs)]
            codes.append(requests.get(f"http://127.0.0.1:{g.port}/pets", timeout=5).status_code)
            time.sleep(1 / per_second)
        return codes

    assert set(paced(nodes, 6)) == {200}
    assert nodes[1].terminate() == 0
    nodes[1].start()
    codes = paced([nodes[1]], 2) + paced(nodes, 3)
    assert set(codes) == {200}, codes


def test_the_default_node_scope_counts_each_node_alone(gateway, tmp_path):
    rate, burst = 50, 50
    stage = {"name": "$default", "throttle": {"rate_limit": rate, "burst_limit": burst}}
    nodes, _ = start_cluster(gateway, tmp_path, stage=stage)
    ok, _, elapsed = hammer_all(nodes, 2.0)
    assert ok >= 3 * (burst + rate * elapsed) * 0.8


KEY_VALUE = "cluster-key-0123456789abcdef"


def keyed_cluster(gateway, tmp_path, n=3):
    """`n` nodes whose route needs an API key (the same API on each)."""
    return start_cluster(gateway, tmp_path, n=n, keyed=True)


def same_plan_everywhere(nodes, **limits):
    """The plan and key an operator creates alike on every node (by name and value: the ids
    each node draws differ). Returns each node's (plan id, key id)."""
    ids = []
    for g in nodes:
        body = {"name": "gold", "api_stages": [{"api": "shop", "stage": "$default"}], **limits}
        plan = g.admin("POST", "/v1/usageplans", json=body)
        assert plan.status_code == 201, plan.text
        key = g.admin("POST", "/v1/apikeys", json={"name": "partner", "value": KEY_VALUE})
        assert key.status_code == 201, key.text
        plan, key = plan.json()["id"], key.json()["id"]
        r = g.admin("POST", f"/v1/usageplans/{plan}/keys", json={"key_id": key})
        assert r.status_code == 201, r.text
        ids.append((plan, key))
    return ids


def keyed_get(g):
    for _ in range(50):
        try:
            return requests.get(g.url("/pets"), headers={"x-api-key": KEY_VALUE}, timeout=5).status_code
        except requests.ConnectionError:  # a node just restarted: its workers listen a moment later
            time.sleep(0.05)
    raise AssertionError("no answer")


def quota_shares(g, plan, key):
    name = f"plan/{plan}/{key}/quota/DAY+0"
    detail = g.admin("GET", "/v1/cluster").json()
    c = next((c for c in detail["counters"] if c["name"] == name), None)
    return c and {n["node"]: n["count"] for n in c["nodes"]}


def test_a_cluster_scoped_usage_plan_quota_holds_for_the_cluster_total(gateway, tmp_path):
    nodes, _ = keyed_cluster(gateway, tmp_path)
    wait_for(all_alive(nodes, ["gw-1", "gw-2", "gw-3"]), what="convergence")
    ids = same_plan_everywhere(nodes, quota={"limit": 30, "period": "DAY", "scope": "cluster"})
    # 12 on each node, one node after another: the cluster's 30 run out on the third.
    codes = []
    for g in nodes:
        wait_for(lambda: keyed_get(g) == 200 or None, timeout=3, what="the key works")
        codes.append([200] + [keyed_get(g) for _ in range(11)])
        time.sleep(0.2)  # several sync intervals: the next node has heard
    assert codes[0] == [200] * 12 and codes[1] == [200] * 12, codes
    assert codes[2] == [200] * 6 + [429] * 6, codes
    for g in nodes:
        assert keyed_get(g) == 429, "every node sees the quota used"
    # Each node's share shows on every node under its own ids.
    plan, key = ids[0]
    shares = wait_for(lambda: (s := quota_shares(nodes[0], plan, key)) and len(s) == 3 and s, timeout=5, what="shares")
    assert shares == {"gw-1": 12, "gw-2": 12, "gw-3": 6}, shares
    out = nodes[0].admin("GET", "/v1/cluster").json()
    c = next(c for c in out["counters"] if c["name"] == f"plan/{plan}/{key}/quota/DAY+0")
    assert c["total"] == 30, c
    assert {n["node"]: n["share"] for n in c["nodes"]} == {"gw-1": 0.4, "gw-2": 0.4, "gw-3": 0.2}, c
    # get-usage on any node: what that node served, and the cluster's remaining quota.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    usage = nodes[0].admin("GET", f"/v1/usageplans/{plan}/usage?key={key}&start_date={today}&end_date={today}").json()
    assert usage["items"][key] == [[12, 0]], usage
    # `turnpike admin cluster` prints each node's count and share of it in one cell.
    env = dict(os.environ, TURNPIKE_ADMIN_URL=nodes[0].admin_url(""), TURNPIKE_ADMIN_TOKEN_FILE=nodes[0].config["admin"]["token_file"])
    cli = subprocess.run([BIN, "admin", "cluster"], capture_output=True, text=True, env=env, timeout=20)
    assert cli.returncode == 0, cli.stderr
    row = next(l for l in cli.stdout.splitlines() if f"plan/{plan}/{key}/quota/DAY+0" in l)
    assert "gw-1 12 (40.0%), gw-2 12 (40.0%), gw-3 6 (20.0%)" in row and " 30 " in row, cli.stdout

    # Every node restarts at once: the quota stays used (each node kept its own count and
    # the others' as it heard them).
    time.sleep(1.5)  # counters are saved every second
    for g in nodes:
        assert g.terminate() == 0
    for g in nodes:
        g.start()
    for g in nodes:
        assert keyed_get(g) == 429, "a restart never forgets usage"
    # A node that restarts alone, with nothing saved of the others, learns them back.
    nodes[1].terminate()
    (nodes[1].state_dir).rename(nodes[1].state_dir.with_name("lost"))
    nodes[1].start()
    plan1, key1 = same_plan_everywhere([nodes[1]], quota={"limit": 30, "period": "DAY", "scope": "cluster"})[0]
    wait_for(lambda: keyed_get(nodes[1]) == 429 or None, timeout=10, what="the restarted node refuses")
    s = wait_for(lambda: (s := quota_shares(nodes[1], plan1, key1)) and len(s) == 3 and s, timeout=5, what="shares")
    assert sum(s.values()) == 30, s


def test_a_cluster_scoped_usage_plan_throttle_holds_for_the_cluster_total(gateway, tmp_path):
    rate, burst = 40, 40
    nodes, _ = keyed_cluster(gateway, tmp_path)
    wait_for(all_alive(nodes, ["gw-1", "gw-2", "gw-3"]), what="convergence")
    same_plan_everywhere(nodes, throttle={"rate_limit": rate, "burst_limit": burst, "scope": "cluster"})
    for g in nodes:
        wait_for(lambda: keyed_get(g) == 200 or None, timeout=3, what="the key works")
    time.sleep(1.5)  # the bucket fills back
    import threading

    from conftest import hammer

    results = []
    threads = [
        threading.Thread(target=lambda g=g: results.append(hammer(g.port, "/pets", 3.0, conns=2, headers={"x-api-key": KEY_VALUE})))
        for g in nodes
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(r[0].get(200, 0) for r in results)
    refused = sum(r[0].get(429, 0) for r in results)
    elapsed = max(r[1] for r in results)
    allowed = burst + rate * elapsed
    print(f"plan throttle, cluster scope: {ok} admitted, {refused} refused in {elapsed:.2f}s; the limit allows {allowed:.0f}")
    assert refused > 0
    assert ok <= allowed * 1.1 + 3, (ok, allowed)
    assert ok >= allowed * 0.8, (ok, allowed)


def test_scope_cluster_where_it_is_not_supported_is_refused(gateway, tmp_path):
    import subprocess

    from conftest import BIN

    bad = tmp_path / "account.yaml"
    bad.write_text("gateway: { throttle: { rate_limit: 10, burst_limit: 10, scope: cluster } }\n")
    out = subprocess.run([BIN, "check", "--config", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "gateway.throttle.scope" in out.stdout + out.stderr


def test_a_binary_upgrade_of_a_clustered_node_keeps_it_in_the_cluster(gateway, tmp_path):
    import signal

    from test_operating import _stop_pid, _upgraded_pid

    nodes, _ = start_cluster(gateway, tmp_path, n=2)
    wait_for(all_alive(nodes, ["gw-1", "gw-2"]), what="convergence")
    old = nodes[1].proc.pid
    nodes[1].proc.send_signal(signal.SIGUSR2)
    assert nodes[1].proc.wait(timeout=60) == 0, "the old process drains and exits"
    new = _upgraded_pid(nodes[1])
    try:
        assert new != old
        assert "cluster: took the gossip socket over" in nodes[1].wait_log("took the gossip socket over")
        # Both sides see each other alive again: the new process answers on the same socket.
        wait_for(all_alive(nodes, ["gw-1", "gw-2"]), timeout=15, what="the upgraded node rejoined")
        status = nodes[1].admin("GET", "/v1/status").json()
        assert status["cluster"]["node_name"] == "gw-2"
    finally:
        _stop_pid(new)
