"""SIGHUP (``systemctl reload``) loads the customers' YAML again and swaps it in, schedules
included, or refuses with ``file:line`` and keeps the configuration it had; it never stops the
process and never drains it."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from app.catalog import Catalog, Changes
from app.config import Customer
from app.engine.runs import Submit
from app.engine.tokens import Tokens
from app.loader import load_catalog
from app.main import Hub, build, serve
from app.models import TERMINAL_STATUSES, Source
from app.settings import Settings
from checks.base import CheckContext, CheckResult, Severity
from tests.conftest import ROOT
from tests.engine.support import Scripted
from tests.web.test_serve import free_port, get, until_up

ACME = """\
id: acme
name: Acme
timezone: Europe/London
slack:
  channel: C0ACME0001
accounts:
  - id: acme-prod
    name: Acme Production
    account_id: "111111111111"
    regions: [eu-west-2]
    checks: [rds]
schedules:
  - name: morning
    cron: "0 7 * * *"
"""

GLOBEX = """\
id: globex
name: Globex
timezone: Asia/Jakarta
slack:
  channel: C0GLOBEX01
accounts:
  - id: globex-prod
    name: Globex Production
    account_id: "222222222222"
    regions: [ap-southeast-3]
    checks: [rds]
suppress:
  - check: rds
    resource: "db:scratch-*"
    reason: scratch databases come and go
schedules:
  - name: hourly
    cron: "5 * * * *"
"""

BROKEN = GLOBEX.replace('    cron: "5 * * * *"', '    cron: "5 * * * *"\n    colour: blue')
"""An unknown key on line 19: the whole reload is refused."""


def config_dir(root: Path, **files: str) -> Path:
    customers = root / "config" / "customers"
    customers.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (customers / f"{name}.yaml").write_text(text)
    return root / "config"


@pytest.fixture
def notify_socket() -> Iterator[socket.socket]:
    """A real unix datagram socket standing in for systemd's (a short path: the limit is 108)."""
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(f"{folder}/notify")
        sock.setblocking(False)
        with sock:
            yield sock


async def heard(sock: socket.socket, *wanted: str) -> list[str]:
    """The datagrams systemd would receive, up to one holding every one of ``wanted``."""
    loop = asyncio.get_running_loop()
    got: list[str] = []
    while True:
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout=60)
        got.append(data.decode())
        if all(want in got[-1] for want in wanted):
            return got


@asynccontextmanager
async def serving(
    settings: Settings, rds: Scripted | None = None
) -> AsyncIterator[tuple[Hub, str]]:
    """``mhub serve --no-slack`` in this process, with its signal handlers, ``rds`` standing in
    for the check: the hub and the web view's address. Stopped by a real SIGTERM, as systemd
    stops it."""
    registry = {"rds": rds or Scripted()}
    async with build(settings, slack=False, registry=registry) as hub:
        task = asyncio.create_task(serve(hub))
        base = f"http://127.0.0.1:{settings.web_port}"
        await until_up(f"{base}/healthz")
        try:
            yield hub, base
            assert not task.done(), "the process stopped"
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(task, timeout=60)


async def get_as(url: str, secret: str) -> tuple[int, str]:
    """GET with an API token: what the token's customers narrow the catalog to."""
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


def settings_for(tmp_path: Path, config: Path, notify: socket.socket) -> Settings:
    return Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        HUB_CONFIG_DIR=str(config),
        HUB_WEB_PORT=free_port(),
        NOTIFY_SOCKET=notify.getsockname(),
    )


async def test_sighup_swaps_in_a_new_customer_and_its_schedule_everywhere(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    config = config_dir(tmp_path, acme=ACME)
    async with serving(settings_for(tmp_path, config, notify_socket)) as (hub, base):
        assert (await get(f"{base}/customers/globex"))[0] == 404
        assert set(hub.scheduler.jobs()) == {"acme/morning"}
        _, secret = await Tokens(hub.db).create("ci", ["acme", "globex"], "read", None, "test")
        assert (await get_as(f"{base}/api/findings?customer=globex", secret))[0] == 404

        (config / "customers" / "globex.yaml").write_text(GLOBEX)
        (config / "customers" / "acme.yaml").write_text(ACME.replace("0 7 * * *", "30 8 * * *"))
        os.kill(os.getpid(), signal.SIGHUP)
        said = await heard(notify_socket, "READY=1", "STATUS=serving 2 customer(s)")

        reloading = next(i for i, text in enumerate(said) if "RELOADING=1" in text)
        assert "MONOTONIC_USEC=" in said[reloading]
        assert reloading < len(said) - 1  # READY=1 came after RELOADING=1
        status, page = await get(f"{base}/customers/globex")
        assert status == 200 and "Globex" in page
        status, page = await get(f"{base}/runs?customer=globex")
        assert status == 200
        assert (await get_as(f"{base}/api/findings?customer=globex", secret))[0] == 200  # narrowed
        jobs = hub.scheduler.jobs()
        assert set(jobs) == {"acme/morning", "globex/hourly"}
        fires = {name: at for name, at in jobs.items() if at is not None}
        assert fires["globex/hourly"].minute == 5
        assert (fires["acme/morning"].hour, fires["acme/morning"].minute) in {(8, 30), (7, 30)}
        holders = [
            hub.executor.catalog, hub.scheduler.catalog, hub.digests.catalog, hub.reports.catalog,
            hub.router.catalog(), hub.notifier.catalog(),
        ]  # fmt: skip
        assert all(held.find("globex-prod") is not None for held in holders)
        rules = await hub.answers.rules("globex")
        assert [rule.resource for rule in rules] == ["db:scratch-*"]

        # the executor runs the new customer's checks: nothing was drained or stopped
        plan = hub.catalog.plan("globex")
        run, _ = await hub.runs.submit(Submit(plan, requested_by="test", source=Source.CLI))
        for _ in range(600):
            view = await hub.runs.get(run.id)
            if view.run.status in TERMINAL_STATUSES:
                break
            await asyncio.sleep(0.05)
        assert view.run.status == "completed"

        (config / "customers" / "globex.yaml").unlink()
        os.kill(os.getpid(), signal.SIGHUP)
        await heard(notify_socket, "READY=1", "STATUS=serving 1 customer(s)")
        assert set(hub.scheduler.jobs()) == {"acme/morning"}
        assert (await get(f"{base}/customers/globex"))[0] == 404


async def test_a_run_planned_before_a_reload_keeps_its_plan(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def held(_: CheckContext) -> CheckResult:
        started.set()
        await release.wait()
        return CheckResult(Severity.OK, "fine")

    config = config_dir(tmp_path, acme=ACME)
    async with serving(settings_for(tmp_path, config, notify_socket), Scripted(held)) as (hub, _):
        plan = hub.catalog.plan("acme")
        run, _ = await hub.runs.submit(Submit(plan, requested_by="test", source=Source.CLI))
        await asyncio.wait_for(started.wait(), timeout=60)

        (config / "customers" / "acme.yaml").write_text(ACME.replace("schedules:", DEV))
        os.kill(os.getpid(), signal.SIGHUP)
        await heard(notify_socket, "READY=1", "STATUS=serving 1 customer(s)")
        assert hub.catalog.plan("acme").accounts == ("acme-prod", "acme-dev")
        release.set()
        for _ in range(600):
            view = await hub.runs.get(run.id)
            if view.run.status in TERMINAL_STATUSES:
                break
            await asyncio.sleep(0.05)

        assert view.run.status == "completed"
        assert [(r.account, r.check) for r in view.results] == [("acme-prod", "rds")]


DEV = """\
  - id: acme-dev
    name: Acme Development
    account_id: "333333333333"
    regions: [eu-west-2]
    checks: [rds]
schedules:"""


async def test_a_broken_file_is_refused_with_its_line_and_the_old_config_keeps_serving(
    tmp_path: Path, notify_socket: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_dir(tmp_path, acme=ACME, globex=GLOBEX)
    async with serving(settings_for(tmp_path, config, notify_socket)) as (hub, base):
        (config / "customers" / "globex.yaml").write_text(BROKEN)
        (config / "customers" / "acme.yaml").unlink()  # not taken either: all or nothing
        with caplog.at_level(logging.INFO, logger="app.main"):
            os.kill(os.getpid(), signal.SIGHUP)
            said = await heard(notify_socket, "READY=1", "STATUS=reload refused")

        assert any("RELOADING=1" in text for text in said)
        refused = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(refused) == 1
        assert "still serving the configuration loaded before" in refused[0]
        assert f"{config / 'customers' / 'globex.yaml'}:19:" in refused[0]
        assert "colour" in refused[0]
        assert set(hub.catalog.customers) == {"acme", "globex"}
        assert set(hub.scheduler.jobs()) == {"acme/morning", "globex/hourly"}
        assert (await get(f"{base}/customers/acme"))[0] == 200


def test_a_catalog_replaced_in_place_says_what_changed() -> None:
    old = load_catalog(config_dir(Path(tempfile.mkdtemp(dir="/tmp")), acme=ACME))
    new_acme = Customer.model_validate(
        {**old.customer("acme").model_dump(), "timezone": "Asia/Tokyo"}
    )
    globex = load_catalog(config_dir(Path(tempfile.mkdtemp(dir="/tmp")), globex=GLOBEX))
    held = old
    changes = old.replace(Catalog([new_acme, *globex.customers.values()]))

    assert held is old and held.generation == 1
    assert held.find("globex-prod") is not None and held.customer("acme").timezone == "Asia/Tokyo"
    assert changes == Changes(
        added=("globex",),
        changed=("acme",),
        schedules_added=("globex/hourly",),
        schedules_changed=("acme/morning",),
    )
    assert str(changes) == (
        "customers added: globex; customers changed: acme; schedules added: globex/hourly; "
        "schedules changed: acme/morning"
    )
    assert str(held.replace(Catalog(held.customers.values()))) == "nothing changed"


def test_mhub_serve_survives_sighup_with_a_broken_file_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    config = config_dir(tmp_path, acme=ACME)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HUB_", "AWS_"))},
        "HUB_CONFIG_DIR": str(config),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing there: no real AWS is asked
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--no-slack", "--no-web"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = Log(process)
    try:
        log.until("serving as")
        (config / "customers" / "acme.yaml").write_text(ACME + "  - name: broken\n")
        process.send_signal(signal.SIGHUP)
        line = log.until("reload refused")
        assert f"{config / 'customers' / 'acme.yaml'}:" in line
        assert process.poll() is None, "SIGHUP stopped the process"

        (config / "customers" / "acme.yaml").write_text(ACME)
        process.send_signal(signal.SIGHUP)
        assert "nothing changed" in log.until("reloaded the configuration")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


class Log:
    """An ``mhub`` subprocess's stderr, read line by line by a thread of its own."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stderr is not None
        self.stream = process.stderr
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.stream:
            self.lines.put(line)

    def close(self) -> None:
        """After the process ended: the rest of its output read, the pipe closed."""
        self.reader.join(timeout=60)
        self.stream.close()

    def until(self, text: str) -> str:
        """The next line holding ``text`` (a minute at most, then the test fails)."""
        while True:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(f"{text!r} was not logged:\n{''.join(self.seen)}") from None
            self.seen.append(line)
            if text in line:
                return line
