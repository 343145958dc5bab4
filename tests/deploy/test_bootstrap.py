"""scripts/dev.py, the README's commands on a machine with only python3: it finds uv or fetches
it from PyPI (here a fake PyPI on loopback serving uv's real file names, as a mirror does with
relative links), checks the sha256, unpacks the program, and runs the task through it."""

from __future__ import annotations

import hashlib
import io
import json
import platform
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "dev.py"


def load_dev() -> ModuleType:
    spec = spec_from_file_location("dev", SCRIPT)
    assert spec and spec.loader
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dev = load_dev()
VERSION = dev.UV_VERSION
PLATFORMS = [  # uv's wheels on PyPI, by platform tag
    "linux_armv6l",
    "macosx_10_12_x86_64",
    "macosx_11_0_arm64",
    "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
    "manylinux_2_17_armv7l.manylinux2014_armv7l",
    "manylinux_2_17_i686.manylinux2014_i686",
    "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "manylinux_2_28_aarch64",
    "manylinux_2_31_riscv64",
    "musllinux_1_1_i686",
    "musllinux_1_1_x86_64",
    "win32",
    "win_amd64",
    "win_arm64",
]
NAMES = [f"uv-{VERSION}-py3-none-{tags}.whl" for tags in PLATFORMS]


def fake_wheel(name: str) -> bytes:
    """A wheel whose `uv` is a shell script that says which wheel it came from."""
    program = f'#!/bin/sh\necho "fake uv from {name} in $(pwd): $*"\n'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as wheel:
        wheel.writestr(f"uv-{VERSION}.data/scripts/uv", program)
        wheel.writestr(f"uv-{VERSION}.dist-info/METADATA", f"Name: uv\nVersion: {VERSION}\n")
    return out.getvalue()


@dataclass
class FakePyPI:
    url: str
    wheels: dict[str, bytes]
    requests: list[str] = field(default_factory=list)
    wrong_sha: bool = False

    def json(self) -> dict[str, Any]:
        files = [
            {
                "filename": name,
                "packagetype": "bdist_wheel",
                "url": f"../../packages/{name}",  # relative to the JSON, as a mirror serves it
                "digests": {
                    "sha256": "0" * 64 if self.wrong_sha else hashlib.sha256(blob).hexdigest()
                },
            }
            for name, blob in self.wheels.items()
        ]
        return {"info": {"version": "99.0.0"}, "releases": {VERSION: files, "99.0.0": []}}


@pytest.fixture
def pypi() -> Iterator[FakePyPI]:
    fake = FakePyPI(url="", wheels={name: fake_wheel(name) for name in NAMES})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append(self.path)
            if self.path == "/pypi/uv/json":
                body = json.dumps(fake.json()).encode()
            elif self.path.startswith("/packages/") and self.path[10:] in fake.wheels:
                body = fake.wheels[self.path[10:]]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/pypi"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(10)


def run_dev(
    *args: str, tmp_path: Path, pypi: FakePyPI, path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    env = {
        "PATH": str(path or empty),  # no uv, no pip: only the python3 that runs the script
        "HOME": str(tmp_path),
        "DEV_PYPI_URL": pypi.url,
        "DEV_TOOLS_DIR": str(tmp_path / "tools"),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="the fake uv is a shell script")


@needs_posix
def test_it_fetches_uv_for_this_machine_and_runs_the_task_in_the_checkout(
    pypi: FakePyPI, tmp_path: Path
) -> None:
    done = run_dev("test", "-k", "manifest", tmp_path=tmp_path, pypi=pypi)
    assert done.returncode == 0, done.stderr
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower())
    assert (machine or platform.machine()) in done.stdout.split(" in ")[0]
    assert done.stdout.endswith(f" in {ROOT}: run --locked pytest -k manifest\n")
    assert f"downloading uv {VERSION}" in done.stderr
    folder = tmp_path / "tools" / f"uv-{VERSION}"
    assert [p.name for p in folder.iterdir()] == ["uv"]
    assert [p.name for p in (tmp_path / "tools").iterdir()] == [folder.name]  # no wheel left


@needs_posix
def test_a_second_run_uses_the_unpacked_uv_without_asking_pypi(
    pypi: FakePyPI, tmp_path: Path
) -> None:
    assert run_dev("uv", "--version", tmp_path=tmp_path, pypi=pypi).returncode == 0
    asked = len(pypi.requests)
    assert asked == 2  # the JSON, then one wheel
    again = run_dev("demo", "--keep", tmp_path=tmp_path, pypi=pypi)
    assert again.returncode == 0, again.stderr
    assert again.stdout.endswith(": run --locked --extra demo mhub demo --keep\n")
    assert len(pypi.requests) == asked
    assert "downloading" not in again.stderr


def test_it_refuses_a_wheel_whose_sha256_is_not_pypis_and_keeps_nothing(
    pypi: FakePyPI, tmp_path: Path
) -> None:
    pypi.wrong_sha = True
    done = run_dev("test", tmp_path=tmp_path, pypi=pypi)
    assert done.returncode == 2
    assert "dev: refusing" in done.stderr
    assert f"PyPI publishes {'0' * 64}" in done.stderr
    assert "Nothing was installed" in done.stderr
    assert done.stdout == ""
    assert not list((tmp_path / "tools").rglob("*"))


@needs_posix
def test_it_uses_the_uv_on_path_without_downloading(pypi: FakePyPI, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text('#!/bin/sh\necho "uv on PATH: $*"\n')
    (bin_dir / "uv").chmod(0o755)
    done = run_dev("install", tmp_path=tmp_path, pypi=pypi, path=bin_dir)
    assert done.stdout == "uv on PATH: sync --locked --extra demo\n"
    assert pypi.requests == []


@pytest.mark.parametrize(
    ("system", "machine", "libc", "expected"),
    [
        ("Linux", "x86_64", ("glibc", (2, 36)), "manylinux_2_17_x86_64.manylinux2014_x86_64"),
        ("Linux", "aarch64", ("glibc", (2, 36)), "manylinux_2_28_aarch64"),
        (
            "Linux",
            "aarch64",
            ("glibc", (2, 17)),
            "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
        ),
        ("Linux", "x86_64", ("musl", (1, 1)), "musllinux_1_1_x86_64"),
        ("Darwin", "arm64", ("", (0, 0)), "macosx_11_0_arm64"),
        ("Darwin", "x86_64", ("", (0, 0)), "macosx_10_12_x86_64"),
        ("Windows", "AMD64", ("", (0, 0)), "win_amd64"),
    ],
)
def test_it_picks_the_wheel_built_for_the_machine(
    system: str, machine: str, libc: tuple[str, tuple[int, int]], expected: str
) -> None:
    files = [{"filename": name} for name in NAMES]
    chosen = dev.pick(files, dev.machine_tags(system, machine, libc))
    assert chosen["filename"] == f"uv-{VERSION}-py3-none-{expected}.whl"


def test_a_machine_without_a_uv_wheel_is_told_how_to_install_uv() -> None:
    files = [{"filename": name} for name in NAMES]
    with pytest.raises(dev.Refused, match=r"no uv .* wheel for this machine .*docs\.astral\.sh"):
        dev.pick(files, dev.machine_tags("Linux", "x86_64", ("glibc", (2, 12))))


def test_an_unknown_task_prints_the_usage(pypi: FakePyPI, tmp_path: Path) -> None:
    done = run_dev("deploy", tmp_path=tmp_path, pypi=pypi)
    assert done.returncode == 2
    assert "python3 scripts/dev.py demo" in done.stderr
    assert pypi.requests == []
