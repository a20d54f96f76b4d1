"""The packaged service: its unit's sandboxing as systemd rates it, and the Debian package
built, installed, removed and purged with dpkg on this machine."""

import contextlib
import fcntl
import grp
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import BIN, free_ports, require_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT = os.path.join(ROOT, "packaging", "turnpike.service")


def test_the_unit_is_hardened(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (scripts/test installs the systemd package)")
    # Offline analysis reads the unit as a file; systemd wants the unit's own name.
    unit = tmp_path / "turnpike.service"
    shutil.copy(UNIT, unit)
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Overall exposure level for turnpike.service: ([0-9.]+) (\w+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout[-3000:]
    text = open(UNIT).read()
    # What the gateway needs stays allowed: io_uring (@aio in @system-service), setrlimit and
    # sched_setaffinity (@resources), its socket families.
    assert "SystemCallFilter=@system-service" in text
    assert "@resources" not in re.findall(r"^SystemCallFilter=~.*$", text, re.M)[0]
    assert "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text


# Held while the package is on the machine: two test runs (two checkouts, say) must not
# install and purge the one system package under each other.
PACKAGE_LOCK = "/run/lock/turnpike-packaging-test.lock"
# What an installed turnpike (package or source install) has; the test leaves such a machine alone.
INSTALLED_PATHS = [
    "/usr/bin/turnpike",
    "/lib/systemd/system/turnpike.service",
    "/usr/lib/systemd/system/turnpike.service",
    "/etc/systemd/system/turnpike.service",
    "/etc/turnpike/turnpike.yaml",
]
# What `turnpike serve` as root leaves (the default token file and state directory), and what
# purge must take away.
LEFTOVER_PATHS = ["/etc/turnpike", "/var/lib/turnpike"]
# As the unit runs the gateway: the service user and group. setpriv execs (runuser would stay
# the parent and take the SIGTERM meant for the gateway).
AS_TURNPIKE = ["setpriv", "--reuid=turnpike", "--regid=turnpike", "--init-groups", "--"]


def run(*cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def package_status():
    """dpkg's state of the turnpike package: not-installed, config-files, installed, ..."""
    r = run("dpkg-query", "-W", "-f=${db:Status-Status}", "turnpike", check=False)
    return r.stdout.strip() if r.returncode == 0 else "not-installed"


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def package_lock():
    os.makedirs(os.path.dirname(PACKAGE_LOCK), exist_ok=True)
    with open(PACKAGE_LOCK, "w") as f:
        deadline = time.time() + 600
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    pytest.fail(f"another test run has held {PACKAGE_LOCK} for 10 minutes")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def put_leftovers_aside():
    """Renames a trial run's /etc/turnpike and /var/lib/turnpike (on their own file systems,
    so nothing about them changes); returns {path: where it is}. Skips the test if a gateway
    holds that state directory now."""
    lock = "/var/lib/turnpike/config/lock"
    if os.path.exists(lock):
        with open(lock) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
            except BlockingIOError:
                pytest.skip("a gateway runs on /var/lib/turnpike; left alone")
    moved = {}
    for p in LEFTOVER_PATHS:
        if os.path.lexists(p):
            aside = f"{p}.aside-for-the-package-test"
            assert not os.path.lexists(aside), f"{aside} is left from an interrupted test: move it back to {p}"
            print(f"{p} is {aside} while the package test runs")
            os.rename(p, aside)
            moved[p] = aside
    return moved


def build_deb(out):
    """The .deb of the binary under test: cargo-deb packages target/release/turnpike of the
    target directory it is given, so that directory is made to hold BIN (no second build)."""
    target = out / "target"
    (target / "release").mkdir(parents=True)
    os.symlink(os.path.abspath(BIN), target / "release" / "turnpike")
    started = time.monotonic()
    r = run(
        "cargo", "deb", "-p", "turnpike-proxy", "--no-build", "--fast", "--output", str(out),
        cwd=ROOT, env={**os.environ, "CARGO_TARGET_DIR": str(target)},
    )
    debs = sorted(out.glob("turnpike_*.deb"))
    assert len(debs) == 1, (r.stdout, r.stderr, list(out.iterdir()))
    print(f"cargo deb: {time.monotonic() - started:.1f} s, {debs[0].name}")
    return debs[0]


def serve_as_service_user(tmp_dir):
    """Starts the installed binary as the turnpike user on the packaged config, on free ports:
    the user can read the config and the admin token, and write the state directory."""
    config_text = open("/etc/turnpike/turnpike.yaml").read()
    port, admin_port = free_ports(2)
    config_text = config_text.replace('listen: ["0.0.0.0:8080"]', f'listen: ["127.0.0.1:{port}"]')
    config_text = config_text.replace('listen: "127.0.0.1:9901"', f'listen: "127.0.0.1:{admin_port}"')
    assert str(port) in config_text and str(admin_port) in config_text, config_text
    config = os.path.join(tmp_dir, "turnpike.yaml")
    with open(config, "w") as f:
        f.write(config_text)
    os.chmod(config, 0o644)
    log = open(os.path.join(tmp_dir, "serve.log"), "w+")
    proc = subprocess.Popen(
        [*AS_TURNPIKE, "/usr/bin/turnpike", "serve", "--config", config],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    return proc, log, port, admin_port


def test_the_debian_package_installs_removes_and_purges(tmp_path):
    if shutil.which("dpkg") is None:
        pytest.fail("dpkg is missing: the package is built and tested on Debian (12 or 13)")
    if os.environ.get("MONOIO_FORCE_LEGACY_DRIVER") == "1":
        pytest.skip("the package does not depend on the I/O driver; the io_uring pass tests it")
    if os.geteuid() != 0:
        pytest.skip("installs a system package with dpkg: run as root")
    # as cargo finds subcommands: on PATH or in $CARGO_HOME/bin
    cargo_deb = subprocess.run(["cargo", "deb", "--version"], capture_output=True).returncode == 0
    require_tool(cargo_deb, "cargo-deb")
    require_tool(shutil.which("dpkg-shlibdeps"), "dpkg-shlibdeps (dpkg-dev)")
    require_tool(shutil.which("readelf"), "readelf (binutils)")
    with package_lock():
        status = package_status()
        if status != "not-installed":
            pytest.skip(f"a turnpike package is on this machine ({status}); left alone")
        if user_exists("turnpike") or group_exists("turnpike"):
            pytest.skip("a turnpike user or group exists (a source install?); left alone")
        installed = [p for p in INSTALLED_PATHS if os.path.lexists(p)]
        if installed:
            pytest.skip(f"{', '.join(installed)} exist (a source install?); left alone")
        deb = build_deb(tmp_path)
        # A trial run as root (`turnpike serve`) leaves its token and state at the service's
        # paths; they go aside for the test and come back after it.
        put_aside = put_leftovers_aside()
        serve_dir = tempfile.mkdtemp(prefix="turnpike-deb-")
        os.chmod(serve_dir, 0o755)
        proc = None
        try:
            check_the_package(deb)
            run("dpkg", "-i", str(deb))
            check_the_installed_package()

            proc, log, port, admin_port = serve_as_service_user(serve_dir)
            check_the_service_user_runs_it(proc, log, port, admin_port)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, open(log.name).read()
            proc = None

            run("dpkg", "-r", "turnpike")
            assert package_status() == "config-files"
            for gone in ["/usr/bin/turnpike", "/usr/lib/systemd/system/turnpike.service", "/usr/lib/sysctl.d/60-turnpike.conf"]:
                assert not os.path.lexists(gone), gone
            # remove keeps the configuration, the state and the user
            for kept in ["/etc/turnpike/turnpike.yaml", "/etc/turnpike/admin.token", "/etc/logrotate.d/turnpike", "/var/lib/turnpike"]:
                assert os.path.exists(kept), kept
            assert user_exists("turnpike")

            run("dpkg", "-P", "turnpike")
            assert package_status() == "not-installed"
            for gone in ["/etc/turnpike", "/var/lib/turnpike", "/etc/logrotate.d/turnpike"]:
                assert not os.path.lexists(gone), gone
            assert not user_exists("turnpike") and not group_exists("turnpike")
        finally:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            shutil.rmtree(serve_dir, ignore_errors=True)
            # The machine as it was: none of this existed before the test.
            if package_status() != "not-installed":
                run("dpkg", "-P", "turnpike", check=False)
            if user_exists("turnpike"):
                run("userdel", "turnpike", check=False)
            if group_exists("turnpike"):
                run("groupdel", "turnpike", check=False)
            for p in LEFTOVER_PATHS:
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, ignore_errors=True)
            for p, aside in put_aside.items():
                os.rename(aside, p)


def check_the_package(deb):
    fields = run("dpkg-deb", "-f", str(deb)).stdout
    # $auto: dpkg-shlibdeps names the glibc the binary needs; a build on Debian 12 must ask for
    # no more than Debian 12's 2.36 (Debian 13 has 2.41).
    m = re.search(r"^Depends:.*\blibc6 \(>= ([0-9.]+)\)", fields, re.M)
    assert m, fields
    assert tuple(int(x) for x in m.group(1).split(".")[:2]) <= (2, 36), fields
    assert re.search(r"^Package: turnpike$", fields, re.M), fields
    # packaging/debian/changelog names the version being packaged (a new entry per version)
    version = re.search(r"^Version: (\S+)$", fields, re.M).group(1)
    with open(os.path.join(ROOT, "packaging", "debian", "changelog")) as f:
        top = f.readline()
    assert top.startswith(f"turnpike ({version}) "), (top, version)
    listing = run("dpkg-deb", "-c", str(deb)).stdout
    for path in [
        "./usr/bin/turnpike",
        "./usr/lib/systemd/system/turnpike.service",
        "./etc/turnpike/turnpike.yaml",
        "./etc/logrotate.d/turnpike",
        "./usr/lib/sysctl.d/60-turnpike.conf",
        "./usr/share/doc/turnpike/copyright",
    ]:
        assert re.search(rf" {re.escape(path)}$", listing, re.M), (path, listing)
    # the token is made by postinst, never shipped
    assert "admin.token" not in listing


def check_the_installed_package():
    assert package_status() == "installed"
    r = run("/usr/bin/turnpike", "--version")
    assert r.stdout.startswith("turnpike "), r.stdout
    # stripped: no symbol table, no debug sections (they are in turnpike-dbgsym)
    # (.debug_gdb_scripts is loaded data, gdb's pretty-printer hook, not debug info)
    sections = re.findall(r"^\s*\[\s*\d+\]\s+(\S+)", run("readelf", "-S", "--wide", "/usr/bin/turnpike").stdout, re.M)
    assert ".text" in sections, sections
    debug = [s for s in sections if s == ".symtab" or s.startswith(".debug_") and s != ".debug_gdb_scripts"]
    assert not debug, sections
    with open("/usr/lib/systemd/system/turnpike.service") as installed, open(UNIT) as ours:
        assert installed.read() == ours.read()
    conffiles = run("dpkg-query", "--control-show", "turnpike", "conffiles").stdout.split()
    assert "/etc/turnpike/turnpike.yaml" in conffiles, conffiles
    assert "/etc/logrotate.d/turnpike" in conffiles, conffiles

    user = pwd.getpwnam("turnpike")
    assert user.pw_uid < 1000, user  # a system user
    assert user.pw_shell == "/usr/sbin/nologin", user
    assert user.pw_dir == "/var/lib/turnpike", user
    assert grp.getgrgid(user.pw_gid).gr_name == "turnpike"
    st = os.stat("/var/lib/turnpike")
    assert stat.S_ISDIR(st.st_mode)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, user.pw_gid, 0o750), st
    token = os.stat("/etc/turnpike/admin.token")
    assert (token.st_uid, stat.S_IMODE(token.st_mode)) == (user.pw_uid, 0o600), token
    assert re.fullmatch(r"[0-9a-f]{64}\n", open("/etc/turnpike/admin.token").read())
    # the shipped config is valid, read as the service reads it
    run(*AS_TURNPIKE, "/usr/bin/turnpike", "check", "--config", "/etc/turnpike/turnpike.yaml")


def check_the_service_user_runs_it(proc, log, port, admin_port):
    deadline = time.time() + 15
    status = None
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"turnpike serve as the turnpike user exited with {proc.returncode}:\n{open(log.name).read()}")
        # `turnpike admin` as root reads the default token file, /etc/turnpike/admin.token:
        # the one postinst made and the service user's gateway reads.
        status = run(
            "/usr/bin/turnpike", "admin", "--url", f"http://127.0.0.1:{admin_port}", "status", check=False,
        )
        if status.returncode == 0:
            break
        time.sleep(0.2)
    assert status is not None and status.returncode == 0, (status.stdout, status.stderr, open(log.name).read())
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json() == {"status": "ok"}
    # what the gateway wrote in the state directory is the service user's
    owners = {os.stat(os.path.join(d, f)).st_uid for d, _, fs in os.walk("/var/lib/turnpike") for f in fs}
    assert owners == {pwd.getpwnam("turnpike").pw_uid}, owners
