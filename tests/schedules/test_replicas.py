"""Two (then one, then a late) ``mhub serve --no-web`` processes on one PostgreSQL database,
against the fake Slack and a moto server: every slot becomes exactly one run and exactly one
digest post, also after a replica is killed with SIGKILL between slots, and a replica started
after a slot passed unfired fires it once (within the misfire grace).

Slots come every ``SLOT_S`` seconds through ``HUB_TEST_SLOT_SECONDS`` (a test-only setting that
replaces each schedule's cron by an interval and changes nothing else: same slot keys, UNIQUE
constraint, grace and digests), so the test takes about 40 s instead of six minutes or more.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db import Database
from app.models import Run
from app.sandbox import moto
from app.sandbox.seed import seed
from tests.conftest import PG_SKIP, PG_URL, ROOT, pg_database
from tests.fakeslack import FakeSlack, Posted

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)

SLOT_S = 4
CUSTOMER_YAML = """\
id: aryanoble
name: Aryanoble
timezone: Asia/Jakarta
slack:
  channel: C0OPS
accounts:
  - id: arbel
    name: Arbel Production
    account_id: "111111111111"
    regions: [ap-southeast-3]
    role_arn: arn:aws:iam::111111111111:role/MonitoringReadOnly
    checks: [rds, budget]
schedules:
  - name: daily
    cron: "* * * * *"
"""


@pytest.fixture
def pg() -> Iterator[str]:
    assert PG_URL
    yield from pg_database(PG_URL)


@pytest.fixture
def estate(moto_url: str) -> Iterator[str]:
    moto.reset(moto_url)
    seed(moto_url)
    yield moto_url
    moto.reset(moto_url)


def environment(tmp: Path, database: str, aws: str, fake: FakeSlack) -> dict[str, str]:
    config = tmp / "config" / "customers"
    config.mkdir(parents=True)
    (config / "aryanoble.yaml").write_text(CUSTOMER_YAML)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "HUB_"))}
    env.update(moto.FAKE_ENV)
    env.update(
        {
            "AWS_ENDPOINT_URL": aws,
            "DATABASE_URL": database,
            "HUB_CONFIG_DIR": str(tmp / "config"),
            "HUB_TEST_SLOT_SECONDS": str(SLOT_S),
            "HUB_LEASE_SECONDS": "3",
            "HUB_HEARTBEAT_SECONDS": "1",
            "HUB_SWEEP_SECONDS": "1",
            "HUB_POLL_SECONDS": "0.1",
            "HUB_GRACE_SECONDS": "2",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_APP_TOKEN": "xapp-test",
            "SLACK_API_URL": fake.api_url,
        }
    )
    return env


class Replicas:
    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env, self.tmp = env, tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--no-web"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + "\n".join((self.tmp / f"{name}.log").read_text().splitlines()[-25:])
            for name in self.procs
        )

    def logged(self, name: str, text: str) -> datetime | None:
        """When replica ``name`` first logged a line containing ``text``."""
        for line in (self.tmp / f"{name}.log").read_text().splitlines():
            if text in line and line.startswith("{"):
                return datetime.fromisoformat(json.loads(line)["time"])
        return None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def scheduled(url: str) -> list[Run]:
    db = Database(url)
    try:
        async with db.read() as session:
            query = select(Run).where(Run.source == "schedule").order_by(Run.id)
            return list((await session.execute(query)).scalars())
    finally:
        await db.close()


def slot_of(run: Run) -> datetime:
    return datetime.fromisoformat(str(run.params["slot"]).replace("Z", "+00:00"))


def digests(fake: FakeSlack) -> list[Posted]:
    return [p for p in fake.posted if (p.key or "").startswith("digest:")]


def until(condition: Callable[[], Any], within: float, what: str, replicas: Replicas) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{replicas.logs()}")


def runs_now(url: str) -> list[Run]:
    return asyncio.run(scheduled(url))


def posted_runs(fake: FakeSlack) -> set[int]:
    return {int(str(p.key).split(":")[1]) for p in digests(fake)}


@pytest.mark.timeout(240)
def test_it_fires_each_slot_once_with_one_digest_across_replicas_a_kill_and_a_late_start(
    pg: str, estate: str, tmp_path: Path
) -> None:
    asyncio.run(_upgrade(pg))
    with FakeSlack(channels=["C0OPS"]) as fake:
        replicas = Replicas(environment(tmp_path, pg, estate, fake), tmp_path)
        try:
            replicas.start("a")
            replicas.start("b")
            until(lambda: fake.connections_opened >= 2, 60, "both replicas on Slack", replicas)
            # Three slots with both replicas up, each digest posted.
            until(lambda: len(posted_runs(fake)) >= 3, 6 * SLOT_S, "three digests", replicas)
            _wait_for_mid_slot()
            replicas.procs["a"].send_signal(signal.SIGKILL)  # between slots, no goodbye
            replicas.procs["a"].wait(10)
            seen = len(posted_runs(fake))
            until(lambda: len(posted_runs(fake)) >= seen + 2, 5 * SLOT_S, "two more", replicas)
            # Nobody running while a slot passes; then a late replica catches that slot up.
            replicas.procs["b"].send_signal(signal.SIGTERM)
            replicas.procs["b"].wait(30)
            gap_from = datetime.now(UTC)
            time.sleep(SLOT_S + 1)  # at least one slot passes with no replica running
            replicas.start("c")
            ready = until(lambda: replicas.logged("c", "scheduler: "), 60, "c ticking", replicas)
            caught = until(
                lambda: [r for r in runs_now(pg) if slot_of(r) > gap_from], 60, "a run", replicas
            )[0]
            assert gap_from < slot_of(caught) < ready, "the late replica did not catch up"
            until(lambda: caught.id in posted_runs(fake), 30, "its digest", replicas)
            seen = len(posted_runs(fake))
            until(lambda: len(posted_runs(fake)) > seen, 3 * SLOT_S, "the next slot", replicas)
        finally:
            replicas.stop_all()
        runs = runs_now(pg)
        slots = [slot_of(r) for r in runs]
        assert len(slots) == len(set(slots)), "a slot fired twice"
        assert all(r.status == "completed" for r in runs), [(r.id, r.status) for r in runs]
        posts = digests(fake)
        assert sorted(int(str(p.key).split(":")[1]) for p in posts) == [r.id for r in runs]
        assert len(fake.calls_of("chat.postMessage", ok=True)) == len(runs)
        alive = [s for s in slots if s < gap_from]
        assert alive == [alive[0] + timedelta(seconds=SLOT_S * i) for i in range(len(alive))]
        assert all(p.channel == "C0OPS" and "daily digest" in p.text for p in posts)
        assert fake.violations == []


def _wait_for_mid_slot() -> None:
    """Sleep to the middle of the current slot (the previous slot's work is done by then)."""
    now = time.time()
    time.sleep((SLOT_S / 2 - now % SLOT_S) % SLOT_S)


async def _upgrade(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
    finally:
        await db.close()
