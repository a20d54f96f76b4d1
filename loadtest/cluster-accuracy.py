#!/usr/bin/env python3
"""Accuracy of cluster-wide rate limits: starts N turnpike nodes on loopback with one
`scope: cluster` stage throttle, offers twice the limit spread over the nodes (evenly, or
skewed 90/10: the first node gets 90%), and counts the requests admitted in each second.

Reports, per scenario: the worst second's overshoot over the limit, the long-run error
(admitted over the run vs. limit x seconds, the first second, which holds the burst, left
out) and the share of the limit used; then the gossip bytes each node sent per second.

  python3 loadtest/cluster-accuracy.py --bin target/release/turnpike
  python3 loadtest/cluster-accuracy.py --nodes 3 5 --sync 10 100 --rate 300 --seconds 10

With --keys K it measures the gossip cost of many keys instead: a usage plan whose quota has
`scope: cluster` on every node, K API keys imported into it on every node, requests cycling
over the keys on every node as fast as the client goes, then an idle spell: gossip bytes per
second per node under load and idle, and the bytes per admitted request.

  python3 loadtest/cluster-accuracy.py --keys 10000 --nodes 3 --sync 10 100

Loopback only; every run is bounded by --seconds and stops its nodes.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Node:
    def __init__(self, binary, tmp, name, gossip, seeds, secret_file, rate, burst, sync_ms, keyed=False):
        self.port, self.admin_port = free_port(), free_port()
        state = os.path.join(tmp, f"state-{name}")
        self.token_file = os.path.join(state, "admin.token")
        config = {
            "gateway": {"listen": [f"127.0.0.1:{self.port}"], "workers": 1, "throttle": "off"},
            "admin": {"listen": f"127.0.0.1:{self.admin_port}", "state_dir": state, "token_file": self.token_file},
            "cluster": {
                "node_name": name,
                "bind": f"127.0.0.1:{gossip}",
                "seeds": [f"127.0.0.1:{s}" for s in seeds],
                "secret_file": secret_file,
                "sync_interval_ms": sync_ms,
            },
            "apis": [
                {
                    "name": "bench",
                    "integrations": {"ok": {"type": "mock", "status": 200, "body": "ok"}},
                    "routes": [{"key": "GET /r", "integration": "ok", "api_key_required": keyed}],
                    "api_key_source": "header",
                    "stages": [
                        {"name": "$default"}
                        if keyed
                        else {
                            "name": "$default",
                            "throttle": {"rate_limit": rate, "burst_limit": burst, "scope": "cluster"},
                        }
                    ],
                }
            ],
        }
        path = os.path.join(tmp, f"{name}.json")
        with open(path, "w") as f:
            json.dump(config, f)
        self.log = open(os.path.join(tmp, f"{name}.log"), "wb")
        self.proc = subprocess.Popen([binary, "serve", "--config", path], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.admin_port), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"node {name} did not start")

    def admin(self, path, body=None, content_type="application/json"):
        with open(self.token_file) as f:
            token = f.read().strip()
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_cluster(binary, tmp, nodes_n, sync_ms, rate=1, burst=1, keyed=False):
    """`nodes_n` nodes joined over loopback, once every one sees the others alive."""
    secret = os.path.join(tmp, "secret")
    with open(secret, "w") as f:
        f.write("benchmark-cluster-secret-0123456789")
    gossip = [free_port(socket.SOCK_DGRAM) for _ in range(nodes_n)]
    nodes = []
    try:
        for i in range(nodes_n):
            seeds = [gossip[0]] if i else []
            nodes.append(Node(binary, tmp, f"n{i}", gossip[i], seeds, secret, rate, burst, sync_ms, keyed))
        deadline = time.time() + 15
        while time.time() < deadline:
            if all(sum(m["state"] == "alive" for m in n.admin("/v1/status")["cluster"]["members"]) == nodes_n - 1 for n in nodes):
                return nodes
            time.sleep(0.2)
        raise RuntimeError("membership did not converge")
    except BaseException:
        for n in nodes:
            n.stop()
        raise


def sent_bytes(nodes):
    return [n.admin("/v1/status")["cluster"]["sent_bytes"] for n in nodes]


def offer(port, per_second, start, seconds, admitted, lock, conns=2):
    """Open loop: `per_second` requests a second on `conns` connections, each at its slot;
    counts 200s by the second they were answered in."""

    def run(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        interval = conns / per_second
        i = 0
        local = {}
        while True:
            at = start + (i + k / conns) * interval
            if at >= start + seconds:
                break
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            c.request("GET", "/r")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                sec = int(time.monotonic() - start)
                local[sec] = local.get(sec, 0) + 1
            i += 1
        c.close()
        with lock:
            for s, n in local.items():
                admitted[s] = admitted.get(s, 0) + n

    return [threading.Thread(target=run, args=(k,)) for k in range(conns)]


def scenario(binary, nodes_n, sync_ms, shares, rate, burst, seconds):
    tmp = tempfile.mkdtemp(prefix="tp-cluster-")
    nodes = start_cluster(binary, tmp, nodes_n, sync_ms, rate, burst)
    try:
        sent0 = sent_bytes(nodes)
        admitted, lock = {}, threading.Lock()
        start = time.monotonic() + 0.2
        threads = []
        for n, share in zip(nodes, shares):
            if share > 0:
                threads += offer(n.port, 2 * rate * share, start, seconds, admitted, lock)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - start
        sent = [b - s for b, s in zip(sent_bytes(nodes), sent0)]
    finally:
        for n in nodes:
            n.stop()
    per_second = [admitted.get(s, 0) for s in range(seconds)]
    steady = per_second[1:]
    worst = max(steady) / rate - 1
    long_run = sum(steady) / (rate * len(steady)) - 1
    return {
        "nodes": nodes_n,
        "sync_ms": sync_ms,
        "load": "even" if len(set(shares)) == 1 else "skewed 90/10",
        "per_second": per_second,
        "worst_second_overshoot_pct": round(100 * worst, 2),
        "long_run_error_pct": round(100 * long_run, 3),
        "limit_used_pct": round(100 * (1 + long_run), 2),
        "gossip_bytes_per_second_per_node": round(sum(sent) / len(sent) / took),
    }


def keys_scenario(binary, nodes_n, sync_ms, keys, seconds, idle_seconds=5):
    """Gossip bytes with `keys` cluster-scoped quota counters: under load and idle."""
    tmp = tempfile.mkdtemp(prefix="tp-cluster-keys-")
    nodes = start_cluster(binary, tmp, nodes_n, sync_ms, keyed=True)
    values = [f"bench-key-{i:07d}-0123456789" for i in range(keys)]
    try:
        for n in nodes:
            plan = {
                "name": "bench",
                "api_stages": [{"api": "bench", "stage": "$default"}],
                "quota": {"limit": 1_000_000_000, "period": "DAY", "scope": "cluster"},
            }
            plan_id = n.admin("/v1/usageplans", json.dumps(plan).encode())["id"]
            lines = "".join(
                json.dumps({"name": f"k{i}", "value": v, "usage_plan_ids": [plan_id]}) + "\n" for i, v in enumerate(values)
            )
            n.admin("/v1/apikeys/import", lines.encode(), "application/x-ndjson")
        time.sleep(1)
        sent0 = sent_bytes(nodes)
        counts, lock = [0], threading.Lock()
        stop = time.monotonic() + seconds

        def run(port, offset):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            i, ok = offset, 0
            while time.monotonic() < stop:
                c.request("GET", "/r", headers={"x-api-key": values[i % keys]})
                r = c.getresponse()
                r.read()
                ok += r.status == 200
                i += 7
            c.close()
            with lock:
                counts[0] += ok

        threads = [threading.Thread(target=run, args=(n.port, k * 1000 + j)) for k, n in enumerate(nodes) for j in range(2)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - started
        sent1 = sent_bytes(nodes)
        time.sleep(idle_seconds)
        sent2 = sent_bytes(nodes)
        counters = len(nodes[0].admin("/v1/cluster")["counters"])
    finally:
        for n in nodes:
            n.stop()
    load = [b - a for a, b in zip(sent0, sent1)]
    idle = [b - a for a, b in zip(sent1, sent2)]
    return {
        "nodes": nodes_n,
        "sync_ms": sync_ms,
        "keys": keys,
        "counters": counters,
        "admitted_per_second": round(counts[0] / took),
        "gossip_bytes_per_second_per_node_load": round(sum(load) / len(load) / took),
        "gossip_bytes_per_admitted_request": round(sum(load) / max(1, counts[0]), 1),
        "gossip_bytes_per_second_per_node_idle": round(sum(idle) / len(idle) / idle_seconds),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("TURNPIKE_BIN", "target/release/turnpike"))
    ap.add_argument("--nodes", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--sync", type=int, nargs="+", default=[10, 100], help="sync intervals (ms)")
    ap.add_argument("--rate", type=int, default=300, help="the cluster limit (requests per second)")
    ap.add_argument(
        "--burst",
        type=int,
        help="the limit's burst (default: 1%% of the rate; a large burst lets a client that "
        "stalled catch up in one second, which reads as overshoot)",
    )
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--keys", type=int, help="measure gossip bytes with this many cluster-scoped keys instead")
    args = ap.parse_args()
    results = []
    if args.keys:
        for n in args.nodes:
            for sync in args.sync:
                r = keys_scenario(args.bin, n, sync, args.keys, args.seconds)
                results.append(r)
                print(json.dumps(r), flush=True)
        args.nodes = []
    for n in args.nodes:
        for sync in args.sync:
            for shares in ([1 / n] * n, [0.9] + [0.1 / (n - 1)] * (n - 1)):
                r = scenario(args.bin, n, sync, shares, args.rate, args.burst or max(1, args.rate // 100), args.seconds)
                results.append(r)
                print(
                    f"{r['nodes']} nodes, sync {r['sync_ms']:>3} ms, {r['load']:<12}: worst second "
                    f"{r['worst_second_overshoot_pct']:+.2f}%, long-run {r['long_run_error_pct']:+.3f}%, "
                    f"limit used {r['limit_used_pct']:.1f}%, gossip {r['gossip_bytes_per_second_per_node']} B/s/node "
                    f"{r['per_second']}",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
