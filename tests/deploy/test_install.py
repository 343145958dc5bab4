"""Installs match what CI tested: from uv.lock everywhere, the wheel works outside a checkout
(the demo included), and it installs as an isolated tool.

The wheel tests build the project's wheel once, install it as the operations guide says (the
locked, hashed requirements, then the wheel with --no-deps) into a fresh venv, and run it from
a directory that is no checkout. uv's cache makes the installs take seconds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

UV = os.environ.get("UV") or shutil.which("uv")  # `uv run` (scripts/dev.py test) sets UV
NEEDS_UV = pytest.mark.skipif(UV is None, reason="no uv: run the suite with scripts/dev.py test")
INSTALL_FILES = ["Dockerfile", "Makefile", ".ci/run", "docs/operations.md", "README.md"]


def uv(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    assert UV is not None
    done = subprocess.run(
        [UV, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def plain_env(home: Path) -> dict[str, str]:
    """A user's environment with no hub or AWS settings, and no path to this checkout."""
    keep = ("LANG", "LC_ALL", "TZ", "SSL_CERT_FILE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    return {**env, "HOME": str(home), "PATH": "/usr/bin:/bin"}


# Installs from the lock ---------------------------------------------------------------------


@NEEDS_UV
def test_the_lock_matches_pyproject() -> None:
    """CI runs this too (`scripts/dev.py lint`): a dependency changed in pyproject.toml without
    `uv lock` fails here, instead of being re-resolved on some production machine."""
    uv("lock", "--check")


def install_lines(name: str) -> list[str]:
    text = (ROOT / name).read_text()
    text = text.replace("\\\n", " ")  # one logical line per continued shell line
    return [line for line in text.splitlines() if re.search(r"\b(pip|uv)\b", line)]


@pytest.mark.parametrize("name", INSTALL_FILES)
def test_no_install_step_ignores_the_lock(name: str) -> None:
    for line in install_lines(name):
        if re.search(r"\bpip install\b", line):
            locked = "--require-hashes" in line or "--no-deps" in line or "uv==" in line
            assert locked, f"{name}: pip installs what uv.lock does not pin: {line.strip()}"
        if re.search(r"\buv (sync|run)\b", line) and "scripts/dev.py" not in line:
            assert re.search(r"--locked|--frozen", line), f"{name}: add --locked: {line.strip()}"
        if re.search(r"\buv tool install\b", line):
            assert "--constraints" in line, f"{name}: install the tool with the lock's versions"


def test_every_task_uses_the_lock_and_one_pinned_uv() -> None:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("dev", ROOT / "scripts" / "dev.py")
    assert spec and spec.loader
    dev = module_from_spec(spec)
    spec.loader.exec_module(dev)
    for task in dev.TASKS:
        for step in dev.commands(task, []):
            if step and step[0] in {"run", "sync"}:
                assert "--locked" in step, f"scripts/dev.py {task}: {step}"
    pinned = re.search(r"uv==([\d.]+)", (ROOT / "Dockerfile").read_text())
    assert pinned and pinned.group(1) == dev.UV_VERSION, "pin the same uv in both"


def test_the_docker_image_bakes_no_customer_config_and_keeps_its_state_in_a_volume() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.M)
    assert not [c for c in copies if re.search(r"\bconfigs(/customers)?\b(?!/demo)", c)]
    assert re.search(r"^VOLUME /var/lib/monitoring-hub$", dockerfile, flags=re.M)
    assert re.search(r"^USER mhub$", dockerfile, flags=re.M)
    assert "configs/customers" in (ROOT / ".dockerignore").read_text().split()
    guide = (ROOT / "docs" / "operations.md").read_text()
    run = re.search(r"docker run (.+?)monitoring-hub\n", guide.replace("\\\n", " "), flags=re.S)
    assert run, "docs/operations.md shows a docker run"
    assert ":/etc/monitoring-hub/configs:ro" in run.group(1)
    assert ":/var/lib/monitoring-hub" in run.group(1)


# The wheel, outside a checkout --------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    wheel: Path
    requirements: Path
    venv: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    if UV is None:
        pytest.skip("no uv: run the suite with scripts/dev.py test")
    where = tmp_path_factory.mktemp("wheel")
    uv("build", "--wheel", "--out-dir", str(where / "dist"))
    (wheel,) = (where / "dist").glob("monitoring_hub-*.whl")
    requirements = where / "requirements.txt"
    uv(
        *("export", "--frozen", "--no-dev", "--extra", "demo", "--no-emit-project", "--quiet"),
        *("--output-file", str(requirements)),
    )
    venv = where / "venv"
    python = str(venv / "bin" / "python")
    uv("venv", "--quiet", "--python", sys.executable, str(venv), cwd=where)
    uv("pip", "install", "--quiet", "--python", python, "--require-hashes", "-r", str(requirements))
    uv("pip", "install", "--quiet", "--python", python, "--no-deps", str(wheel))
    yield Built(wheel, requirements, venv)


@pytest.mark.timeout(300)
def test_the_installed_wheel_runs_the_demo_outside_a_checkout(built: Built, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(built.venv / "bin" / "mhub"), "demo"],
        cwd=tmp_path,
        env=plain_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "🔴 Critical · Demo Retail / shop-prod, shop-staging, analytics" in done.stdout
    assert "shop-prod · Alarms — 1 alarm in ALARM" in done.stdout
    shipped = "site-packages/app/sandbox/demo_config"
    assert f"HUB_CONFIG_DIR={built.venv}" in done.stdout and shipped in done.stdout


def test_it_installs_as_an_isolated_tool_from_the_lock(built: Built, tmp_path: Path) -> None:
    """`uv tool install` gives the top-level packages (app, blocks, checks, handlers) an
    environment of their own; only the `mhub` command lands on PATH."""
    tools, bin_dir = tmp_path / "tools", tmp_path / "bin"
    env = {"UV_TOOL_DIR": str(tools), "UV_TOOL_BIN_DIR": str(bin_dir)}
    uv(
        "tool",
        "install",
        "--quiet",
        "--constraints",
        str(built.requirements),
        str(built.wheel),
        env=env,
    )
    assert sorted(p.name for p in bin_dir.iterdir()) == ["mhub"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = subprocess.run(
        [str(bin_dir / "mhub"), "--version"],
        cwd=tmp_path,
        env=plain_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"mhub {version}"
    where = subprocess.run(
        [str(tools / "monitoring-hub" / "bin" / "python"), "-c", "import app; print(app.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.stdout.startswith(str(tools / "monitoring-hub")), where.stdout


# The operations guide's commands ------------------------------------------------------------


def test_the_guides_config_check_works_on_the_shipped_env_file(tmp_path: Path) -> None:
    """Step 5 of docs/operations.md §2, exactly as written, with the example env file (every
    line a comment) and this checkout's mhub: no `env: '#': No such file` (exit 127)."""
    guide = (ROOT / "docs" / "operations.md").read_text()
    found = re.search(r"`sudo -u mhub (sh -c '[^`]*mhub config check')`", guide)
    assert found, "docs/operations.md §2 shows the config check command"
    command = found.group(1)
    env_file = ROOT / "deploy" / "env" / "monitoring-hub.env.example"
    mhub = Path(sys.executable).parent / "mhub"
    command = command.replace("/etc/monitoring-hub/env", str(env_file))
    command = command.replace("/opt/monitoring-hub/.venv/bin/mhub", str(mhub))
    assert str(env_file) in command and str(mhub) in command
    done = subprocess.run(
        command,
        shell=True,
        cwd=tmp_path,
        env={**plain_env(tmp_path), "HUB_CONFIG_DIR": str(ROOT / "configs")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: 1 customer(s), 3 account(s)")
