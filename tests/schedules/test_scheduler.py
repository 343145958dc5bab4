"""The scheduler on a real database (SQLite and PostgreSQL): each slot becomes one run however
many replicas tick, late starters catch up within the misfire grace, older slots are logged as
missed. Time is frozen (a hand-moved clock, or time-machine) except where APScheduler ticks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from app.catalog import Catalog
from app.config import Schedule
from app.db import Database
from app.engine.runs import RunService, Submit
from app.models import Run
from app.schedules.timer import Scheduler
from tests.schedules.support import SEVEN_WIB, Clock, catalog, customer


async def all_runs(db: Database) -> list[Run]:
    async with db.read() as session:
        return list((await session.execute(select(Run).order_by(Run.id))).scalars())


def replica(db: Database, cat: Catalog, clock: Clock | None = None, **options: Any) -> Scheduler:
    """One replica's scheduler, with its own run service."""
    if clock is not None:
        options["clock"] = clock
    return Scheduler(RunService(db), cat, **options)


@asynccontextmanager
async def databases(db: Database, count: int) -> AsyncIterator[list[Database]]:
    """``count`` handles on the database, each with its own connections (like replicas)."""
    handles = [Database(db.url) for _ in range(count)]
    try:
        yield handles
    finally:
        for handle in handles:
            await handle.close()


async def test_it_turns_a_slot_into_one_run_however_many_replicas_tick(db: Database) -> None:
    cat = catalog()
    clock = Clock(SEVEN_WIB + timedelta(seconds=1))
    async with databases(db, 3) as handles:
        replicas = [replica(handle, cat, clock) for handle in handles]
        fired = await asyncio.gather(
            *(r.tick("aryanoble", "daily") for r in replicas for _ in range(2))
        )
    [run] = await all_runs(db)
    assert {f.id for f in fired if f is not None} == {run.id}
    assert run.idempotency_key == "schedule:aryanoble:daily:2026-11-21T00:00:00Z"


async def test_it_runs_the_schedules_checks_as_the_schedule_into_its_channel(db: Database) -> None:
    schedules = [
        Schedule(name="daily", cron="0 7 * * *"),
        Schedule(name="evening", cron="0 19 * * *", checks=("http",), channel="C0EVENING"),
    ]
    cat = Catalog([customer(schedules=schedules)])
    clock = Clock(SEVEN_WIB + timedelta(seconds=2))
    await replica(db, cat, clock).tick("aryanoble", "daily")
    clock.now = SEVEN_WIB + timedelta(hours=12, seconds=2)
    await replica(db, cat, clock).tick("aryanoble", "evening")
    daily, evening = await all_runs(db)
    assert daily.source == "schedule" and daily.requested_by == "schedule:daily"
    assert daily.channel_id == "C0OPS" and evening.channel_id == "C0EVENING"
    assert daily.params == {"schedule": "daily", "slot": "2026-11-21T00:00:00Z"}
    assert [t["account"] for t in daily.targets] == ["arbel", "billing"]  # every account's checks
    assert evening.idempotency_key == "schedule:aryanoble:evening:2026-11-21T12:00:00Z"


async def test_it_fires_a_slot_missed_within_the_grace_once_when_a_replica_starts(
    db: Database,
) -> None:
    cat = catalog()
    with time_machine.travel(SEVEN_WIB + timedelta(minutes=10), tick=False):
        first = await replica(db, cat).catch_up()
        second = await replica(db, cat).catch_up()
    [run] = await all_runs(db)
    assert [r.id for r in first] == [r.id for r in second] == [run.id]
    assert run.idempotency_key == "schedule:aryanoble:daily:2026-11-21T00:00:00Z"


async def test_it_logs_a_slot_missed_beyond_the_grace_and_does_not_run_it(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.schedules.timer")
    with time_machine.travel(SEVEN_WIB + timedelta(minutes=16), tick=False):
        assert await replica(db, catalog()).catch_up() == []
    assert await all_runs(db) == []
    [line] = [r.getMessage() for r in caplog.records]
    assert "aryanoble/daily missed its 2026-11-21 07:00 WIB slot" in line
    assert "16 min late; the misfire grace is 15 min" in line
    assert "`mhub digest send aryanoble daily` runs it now" in line


async def test_it_does_not_call_a_slot_missed_when_another_replica_fired_it(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    cat = catalog()
    await replica(db, cat, Clock(SEVEN_WIB)).tick("aryanoble", "daily")
    caplog.set_level(logging.WARNING, logger="app.schedules.timer")
    assert await replica(db, cat, Clock(SEVEN_WIB + timedelta(hours=2))).catch_up() == []
    assert len(await all_runs(db)) == 1 and not caplog.records


async def test_it_honours_a_longer_misfire_grace(db: Database) -> None:
    clock = Clock(SEVEN_WIB + timedelta(minutes=40))
    [run] = await replica(db, catalog(), clock, grace=timedelta(hours=1)).catch_up()
    assert run.idempotency_key.endswith("2026-11-21T00:00:00Z")


async def test_it_treats_a_tick_later_than_the_grace_as_missed(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.schedules.timer")
    clock = Clock(SEVEN_WIB + timedelta(minutes=15, seconds=1))
    assert await replica(db, catalog(), clock).tick("aryanoble", "daily") is None
    assert await all_runs(db) == []
    assert "the tick came too late" in caplog.text


async def test_it_keys_the_spring_forward_slot_by_its_shifted_instant(db: Database) -> None:
    cat = Catalog([customer(timezone="America/New_York", cron="30 2 * * *")])
    shifted = datetime(2026, 3, 8, 3, 30, tzinfo=ZoneInfo("America/New_York"))  # 02:30 skipped
    clock = Clock(shifted.astimezone(UTC) + timedelta(seconds=3))
    await replica(db, cat, clock).tick("aryanoble", "daily")
    [run] = await all_runs(db)
    assert run.idempotency_key == "schedule:aryanoble:daily:2026-03-08T07:30:00Z"


async def test_it_retries_a_slot_while_the_database_refuses_within_the_grace(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(RunService):
        refusals = 2

        async def submit(self, request: Submit) -> tuple[Run, bool]:
            if self.refusals:
                self.refusals -= 1
                raise OSError("connection refused")
            return await super().submit(request)

    caplog.set_level(logging.WARNING, logger="app.schedules.timer")
    cat = catalog()
    scheduler = Scheduler(Flaky(db), cat, clock=Clock(SEVEN_WIB), retry_s=0.01)
    run = await scheduler.tick("aryanoble", "daily")
    assert run is not None and [r.id for r in await all_runs(db)] == [run.id]
    assert caplog.text.count("cannot submit slot 2026-11-21T00:00:00Z") == 2


@pytest.mark.timeout(30)
async def test_it_ticks_with_apscheduler_and_fires_each_slot_once_across_replicas(
    db: Database,
) -> None:
    cat = catalog()
    stop = asyncio.Event()
    async with databases(db, 2) as handles:
        replicas = [replica(handle, cat, test_slot_s=1) for handle in handles]
        serving = [asyncio.create_task(r.serve(stop)) for r in replicas]
        await asyncio.sleep(3.3)
        stop.set()
        await asyncio.gather(*serving)
    runs = await all_runs(db)
    keys = [r.idempotency_key for r in runs]
    assert len(keys) == len(set(keys)) >= 3  # the slot at start (catch-up) and one a second
    slots = sorted(datetime.fromisoformat(r.params["slot"].replace("Z", "+00:00")) for r in runs)
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(slots))
