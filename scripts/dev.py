#!/usr/bin/env python3
"""One command per task, on any machine that has ``python3`` and nothing else.

    python3 scripts/dev.py demo [--keep]       the demo sandbox and its result card
    python3 scripts/dev.py test [PYTEST ARGS]  the test suite
    python3 scripts/dev.py lint                stale lock, ruff, formatting, mypy, import layers
    python3 scripts/dev.py bench               every benchmark script
    python3 scripts/dev.py install             the project and its locked dependencies in .venv
    python3 scripts/dev.py uv ARGS             any uv command

Every task goes through uv and installs exactly what ``uv.lock`` pins (``--locked``: a lock
that no longer matches ``pyproject.toml`` stops it instead of being rewritten). uv is taken from
PATH, or from ``.tools/``; failing both, this script downloads uv's wheel for this machine from
PyPI, checks it against the sha256 PyPI publishes, and unpacks the ``uv`` program into
``.tools/uv-VERSION/``. uv then makes ``.venv`` itself, with the python3 running this script
when it is 3.11 or newer (otherwise uv finds or downloads one), so neither pip nor the venv
module is needed: this works on a stock Debian or Ubuntu Python,
whose pip refuses to install (PEP 668).

Standard library only, and Python 3.8 syntax, so that any system ``python3`` can run it.
Environment: ``DEV_PYPI_URL`` (default https://pypi.org/pypi) and ``DEV_TOOLS_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urljoin

UV_VERSION = "0.13.9"
"""The uv this script downloads when none is on PATH (the Dockerfile pins the same one)."""
ROOT = Path(__file__).resolve().parent.parent
PYPI = os.environ.get("DEV_PYPI_URL", "https://pypi.org/pypi").rstrip("/")
TOOLS = Path(os.environ.get("DEV_TOOLS_DIR") or ROOT / ".tools")
INSTALL_UV = "install uv yourself (https://docs.astral.sh/uv/getting-started/installation/)"

_ARCH = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "i686", "x86": "i686"}


class Refused(Exception):
    """Something this script will not do; the message says what to do instead."""


# Choosing the wheel -------------------------------------------------------------------------


def machine_tags(system: str, machine: str, libc: tuple[str, tuple[int, int]]) -> list[str]:
    """The platform tags (PEP 425) of this machine, best first, as patterns over one tag."""
    arch = _ARCH.get(machine.lower(), machine.lower())
    if system == "Linux":
        kind, (major, minor) = libc
        if kind == "glibc":  # manylinux_2_M runs on glibc 2.M and newer; 2014 is 2.17
            tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
            return tags + ([f"manylinux2014_{arch}"] if (major, minor) >= (2, 17) else [])
        return [f"musllinux_1_{m}_{arch}" for m in (2, 1)]
    if system == "Darwin":
        return [f"macosx_*_{'arm64' if arch == 'aarch64' else arch}"]
    if system == "Windows":
        return [{"x86_64": "win_amd64", "i686": "win32", "aarch64": "win_arm64"}.get(arch, "-")]
    return []


def pick(files: list[dict], tags: list[str]) -> dict:
    """The wheel among PyPI's ``files`` that carries the best of ``tags``."""
    wheels = [f for f in files if f.get("filename", "").endswith(".whl")]
    for wanted in tags:
        pattern = re.compile(re.escape(wanted).replace(r"\*", r"\d+_\d+") + "$")
        for wheel in wheels:
            platforms = wheel["filename"][: -len(".whl")].split("-")[-1].split(".")
            if any(pattern.match(tag) for tag in platforms):
                return wheel
    raise Refused(
        f"PyPI has no uv {UV_VERSION} wheel for this machine ({', '.join(tags) or 'unknown'}): "
        + INSTALL_UV
    )


def this_machine() -> list[str]:
    libc = ("musl", (1, 1))
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()  # type: ignore[union-attr]
        major, minor = version.split(".")[:2]
        libc = (name, (int(major), int(minor)))
    except (AttributeError, ValueError, OSError):
        pass  # not glibc: musl (Alpine), or not Linux at all
    return machine_tags(platform.system(), platform.machine(), libc)


# Fetching it ----------------------------------------------------------------------------------


def release_files() -> tuple[str, list[dict]]:
    """PyPI's JSON for uv and the files of ``UV_VERSION`` (URLs may be relative to it)."""
    url = f"{PYPI}/uv/json"
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            data = json.load(answer)
    except OSError as exc:
        raise Refused(f"could not read {url} ({exc}): {INSTALL_UV}") from None
    files = data.get("releases", {}).get(UV_VERSION) or (
        data.get("urls", []) if data.get("info", {}).get("version") == UV_VERSION else []
    )
    if not files:
        raise Refused(f"{url} lists no uv {UV_VERSION}: {INSTALL_UV}")
    return url, files


def download(url: str, sha256: str, target: Path) -> None:
    """Fetch ``url`` to ``target`` if its sha256 is ``sha256``; otherwise keep nothing."""
    digest = hashlib.sha256()
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=300) as answer, partial.open("wb") as out:
            for chunk in iter(lambda: answer.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise Refused(f"could not download {url} ({exc}): {INSTALL_UV}") from None
    if digest.hexdigest() != sha256.lower():
        partial.unlink()
        raise Refused(
            f"refusing {url}: its sha256 is {digest.hexdigest()}, PyPI publishes {sha256}. "
            "Nothing was installed; try again later, or " + INSTALL_UV
        )
    partial.replace(target)


def unpack(wheel: Path, into: Path) -> Path:
    """Extract the ``uv`` program from the wheel into ``into``; return its path."""
    exe = "uv.exe" if wheel.name.split("-")[-1].startswith("win") else "uv"
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.data/scripts/" + exe, n)]
        if not names:
            raise Refused(f"{wheel.name} holds no {exe} program: " + INSTALL_UV)
        into.mkdir(parents=True, exist_ok=True)
        program = into / exe
        with tempfile.NamedTemporaryFile(dir=into, delete=False) as out:
            out.write(archive.read(names[0]))
        Path(out.name).chmod(0o755)
        os.replace(out.name, program)
    return program


def fetch_uv() -> Path:
    """``.tools/uv-VERSION/uv``, downloaded and checked the first time."""
    folder = TOOLS / f"uv-{UV_VERSION}"
    program = folder / ("uv.exe" if platform.system() == "Windows" else "uv")
    if program.is_file():
        return program
    json_url, files = release_files()
    wheel = pick(files, this_machine())
    print(f"dev: downloading uv {UV_VERSION} ({wheel['filename']}) into {folder}", file=sys.stderr)
    TOOLS.mkdir(parents=True, exist_ok=True)
    saved = TOOLS / wheel["filename"]
    download(urljoin(json_url, wheel["url"]), wheel["digests"]["sha256"], saved)
    try:
        return unpack(saved, folder)
    finally:
        saved.unlink()


def find_uv() -> Path:
    found = shutil.which("uv")
    return Path(found) if found else fetch_uv()


# The tasks ----------------------------------------------------------------------------------

TASKS = {
    "demo": [["run", "--locked", "--extra", "demo", "mhub", "demo"]],
    "test": [["run", "--locked", "pytest"]],
    "install": [["sync", "--locked", "--extra", "demo"]],
    "lint": [
        ["lock", "--check"],
        ["run", "--locked", "ruff", "check", "."],
        ["run", "--locked", "ruff", "format", "--check", "."],
        ["run", "--locked", "mypy"],
        ["run", "--locked", "lint-imports"],
    ],
    "uv": [[]],
}


def uv_environment() -> dict[str, str]:
    """This environment, and the first time (no ``.venv`` yet) the python3 running this script
    as uv's Python when it is 3.11 or newer: a system Python is used, not downloaded anew."""
    env = dict(os.environ)
    if sys.version_info >= (3, 11) and "UV_PYTHON" not in env and not (ROOT / ".venv").exists():
        env["UV_PYTHON"] = getattr(sys, "_base_executable", "") or sys.executable
    return env


def commands(task: str, args: list[str]) -> list[list[str]]:
    if task == "bench":
        scripts = sorted((ROOT / "bench").glob("*.py"))
        return [["run", "--locked", "python", str(script)] for script in scripts]
    steps = TASKS[task]
    return [*steps[:-1], [*steps[-1], *args]]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {*TASKS, "bench"}:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        uv = str(find_uv())
    except Refused as exc:
        print(f"dev: {exc}", file=sys.stderr)
        return 2
    steps, env = commands(argv[0], argv[1:]), uv_environment()
    if len(steps) == 1 and os.name == "posix":
        os.chdir(ROOT)
        os.execve(uv, [uv, *steps[0]], env)  # the task's own exit code and signals
    for step in steps:
        code = subprocess.call([uv, *step], cwd=ROOT, env=env)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
