"""The systemd unit: hardened (``systemd-analyze security`` rates it OK), private files,
``Type=notify`` with the hub saying READY=1 only once it answers, and a reload by SIGHUP."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from app.version import current
from tests.conftest import ROOT
from tests.deploy.running import serve

UNIT = ROOT / "deploy" / "systemd" / "monitoring-hub.service"
OK = 3.0
"""``systemd-analyze security`` calls a unit "OK" up to here (then MEDIUM, EXPOSED, UNSAFE)."""


def directives(unit: Path) -> dict[str, list[str]]:
    """``{key: [value, …]}`` of the unit's ``[Service]`` section."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def exposure(unit: Path) -> float:
    """The unit's overall exposure by ``systemd-analyze security --offline=true`` (skips where
    the tool, or its offline mode, is missing)."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: the systemd package)")
    done = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    if found is None:
        if "offline" in done.stderr:
            pytest.skip(f"systemd-analyze cannot rate a unit file offline: {done.stderr.strip()}")
        raise AssertionError(f"no exposure level in:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def test_systemd_analyze_security_rates_the_unit_ok() -> None:
    assert exposure(UNIT) <= OK


def test_the_unit_waits_for_ready_reloads_by_sighup_and_keeps_its_files_private() -> None:
    unit = directives(UNIT)
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["UMask"] == ["0077"]
    assert unit["User"] == ["mhub"]
    assert unit["StateDirectory"] == ["monitoring-hub"]


def get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_the_hub_tells_systemd_it_is_ready_once_it_answers_and_when_it_stops(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, "--no-slack") as hub:
        told = hub.next_state().splitlines()
        assert "READY=1" in told
        assert f"STATUS=Ready (Monitoring Hub {current()})" in told
        # Told ready: the web view answers, and says it is ready, at once.
        status, body = get(f"{hub.url}/readyz")
        assert status == 200
        assert body["ready"] is True
        assert body["version"] == current()

        hub.proc.send_signal(signal.SIGTERM)
        assert "STOPPING=1" in hub.next_state().splitlines()
        assert hub.proc.wait(30) == 0
        # Ready once, then stopping: nothing else.
        assert [
            ("READY=1" in t.splitlines(), "STOPPING=1" in t.splitlines()) for t in hub.told
        ] == [
            (True, False),
            (False, True),
        ]


PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
NO_WRITABLE_CODE = (
    "import ctypes, os, sys; "
    f"assert ctypes.CDLL(None).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) == 0; "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
"""Run Python with what ``MemoryDenyWriteExecute=true`` enforces: no memory both writable and
executable (the kernel's own switch since Linux 6.3; inherited across exec)."""


def test_the_hub_runs_without_writable_executable_memory(tmp_path: Path) -> None:
    if ctypes.CDLL(None).prctl(PR_GET_MDWE, 0, 0, 0, 0) < 0:
        pytest.skip("this kernel cannot refuse writable code (PR_SET_MDWE needs Linux 6.3)")
    python = (sys.executable, "-c", NO_WRITABLE_CODE)
    with serve(tmp_path, "--no-slack", python=python) as hub:
        assert "READY=1" in hub.next_state().splitlines()
        assert get(f"{hub.url}/readyz")[0] == 200
        with urllib.request.urlopen(f"{hub.url}/metrics", timeout=10) as response:
            assert b"mhub_build_info" in response.read()
