"""`turnpike serve` on the embedded default, `turnpike check`, start-up failures."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import requests

from conftest import BIN


def test_check_accepts_a_valid_config(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(
        """
gateway: { listen: ["127.0.0.1:8080"] }
apis:
  - name: shop
    integrations:
      users: { type: http_proxy, uri: "http://127.0.0.1:9000/users" }
    routes:
      - { key: "GET /users", integration: users }
    stages:
      - { name: prod }
"""
    )
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "ok (1 APIs, 1 routes)" in r.stdout


def test_check_prints_every_problem_with_its_field_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        """
gateway: { listen: ["not-an-address"] }
apis:
  - name: shop
    integrations:
      users: { type: http_proxy, uri: "ftp://nowhere" }
    routes:
      - { key: "FETCH /users", integration: users }
      - { key: "GET /x", integration: missing }
    stages:
      - { name: prod }
"""
    )
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    for expected in [
        "gateway.listen[0]: ",
        "apis[0].integrations.users.uri: ",
        "apis[0].routes[0].key: ",
        "apis[0].routes[1].integration: no integration named \"missing\"",
    ]:
        assert expected in r.stderr, r.stderr


def test_check_names_an_unknown_field(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("gateway:\n  listen: ['127.0.0.1:1']\n  header_timeout: 5\n")
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "gateway.header_timeout: unknown field `header_timeout`" in r.stderr


def test_serve_refuses_an_invalid_config_and_exits_1(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("apis:\n  - name: a\n    routes:\n      - { key: '$default', integration: nope }\n")
    r = subprocess.run([BIN, "serve", "--config", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "apis[0].routes[0].integration" in r.stderr


def test_serve_fails_cleanly_when_the_port_is_taken(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        path = tmp_path / "c.json"
        path.write_text('{"gateway": {"listen": ["127.0.0.1:%d"], "workers": 1}, "admin": {"enabled": false}}' % port)
        r = subprocess.run([BIN, "serve", "--config", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert f"listen 127.0.0.1:{port}" in r.stderr


def test_embedded_default_answers_on_8080_and_says_which_driver():
    """The README's first command: `turnpike serve` with no config, as a newcomer runs it: an
    ordinary user with a fresh home, so no state directory from an earlier run (or, as root,
    an installed service's /var/lib/turnpike) decides what is served."""
    for port in (8080, 9901):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                import pytest

                pytest.skip(f"port {port} is in use on this machine")
    home = tempfile.mkdtemp(prefix="turnpike-home-")
    os.chmod(home, 0o777)
    env = dict(os.environ, HOME=home)
    binary, as_user = BIN, []
    if os.geteuid() == 0:
        # The checkout may sit under a directory only root can enter: run a copy.
        binary = os.path.join(home, "turnpike")
        shutil.copy(BIN, binary)
        os.chmod(binary, 0o755)
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    proc = subprocess.Popen([*as_user, binary, "serve"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 10
        while True:
            try:
                r = requests.get("http://127.0.0.1:8080/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.time() < deadline and proc.poll() is None, "did not start"
                time.sleep(0.05)
        assert r.status_code == 200, r.text
        assert "Hello from turnpike" in r.text
        h = requests.get("http://127.0.0.1:8080/health", timeout=2)
        assert h.status_code == 200 and h.json() == {"status": "ok"}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    forced_epoll = os.environ.get("MONOIO_FORCE_LEGACY_DRIVER") == "1"
    assert ("driver epoll" in err) if forced_epoll else ("driver io_uring" in err or "driver epoll" in err), err
    assert "serving the embedded default config" in err and "on 127.0.0.1:8080" in err
    assert "admin API on http://127.0.0.1:9901" in err
    assert f"token in {home}/.local/state/turnpike/admin.token" in err, err
    shutil.rmtree(home, ignore_errors=True)


def test_workers_auto_starts_one_per_cpu(gateway, origin):
    g = gateway({"gateway": {"workers": "auto"}, "apis": []})
    n = len(os.sched_getaffinity(0))
    assert f"with {n} workers" in g.wait_log(" workers, driver")
    assert requests.get(g.url("/x")).status_code == 404


def test_the_packaged_service_config_is_valid():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "packaging", "turnpike.yaml")
    r = subprocess.run([BIN, "check", "--config", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_admin_with_the_wrong_token_names_the_token_file_it_sent(gateway, tmp_path):
    g = gateway({"apis": []})
    wrong = tmp_path / "other.token"
    wrong.write_text("not-the-token\n")
    env = {**os.environ, "TURNPIKE_ADMIN_URL": f"http://127.0.0.1:{g.admin_port}", "TURNPIKE_ADMIN_TOKEN_FILE": str(wrong)}
    p = subprocess.run([BIN, "admin", "status"], capture_output=True, text=True, env=env, timeout=20)
    assert p.returncode != 0
    assert str(wrong) in p.stderr and "--token-file" in p.stderr, p.stderr
    env["TURNPIKE_ADMIN_TOKEN_FILE"] = g.config["admin"]["token_file"]
    assert subprocess.run([BIN, "admin", "status"], capture_output=True, text=True, env=env, timeout=20).returncode == 0
