"""The packaged service: its unit's sandboxing as systemd rates it."""

import os
import re
import shutil
import subprocess

import pytest

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
