"""``/metrics`` beyond the runs: the version, the process, Slack only where it is on, and how
late each schedule is (the "missed digest" alert)."""

from __future__ import annotations

import platform
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from app.db import Database
from app.engine.runs import RunService
from app.schedules.slots import Slot
from app.schedules.timer import Scheduler
from app.version import current
from app.web.metrics import HubMetrics
from tests.web.conftest import start
from tests.web.sample import CATALOG
from tests.web.test_api import samples

DAILY = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)  # demo's "daily" slot: 07:00 WIB


async def scrape(web: TestClient) -> str:
    response = await web.get("/metrics")
    assert response.status == 200
    return await response.text()


async def test_it_exports_its_version_and_the_process_figures(db: Database) -> None:
    web = await start(db)
    try:
        text = await scrape(web)
    finally:
        await web.close()
    assert samples(text, "mhub_build_info") == {
        f'{{python="{platform.python_version()}",version="{current()}"}}': 1
    }
    assert samples(text, "process_resident_memory_bytes")[""] > 0
    assert samples(text, "process_start_time_seconds")[""] > 0
    assert "python_gc_collections_total" in text


async def test_slack_connected_is_absent_where_slack_is_off(db: Database) -> None:
    metrics = HubMetrics()
    web = await start(db, metrics)
    try:
        off = await scrape(web)
        up = False

        async def connected() -> bool:  # as the Slack side answers
            return up

        metrics.slack_connected = connected
        down = await scrape(web)
        up = True
        back = await scrape(web)
    finally:
        await web.close()
    assert samples(off, "mhub_slack_enabled") == {"": 0}
    assert "mhub_slack_connected" not in off  # so "Slack down" cannot fire without Slack
    assert samples(down, "mhub_slack_enabled") == {"": 1}
    assert samples(down, "mhub_slack_connected") == {"": 0}
    assert samples(back, "mhub_slack_connected") == {"": 1}


async def test_a_schedule_is_late_when_its_slot_passed_unfired_after_one_that_fired(
    db: Database,
) -> None:
    scheduler = Scheduler(RunService(db), CATALOG)
    metrics = HubMetrics(database_ttl_s=0)
    metrics.schedules = scheduler

    async def late(now: datetime) -> dict[str, float]:
        return samples(
            (await metrics.render(db, now, CATALOG)).decode(), "mhub_schedule_late_seconds"
        )

    demo = '{customer="demo",schedule="daily"}'
    billing = '{customer="billing",schedule="morning"}'
    # A fresh install: nothing ever fired, nothing is called late.
    assert await late(DAILY + timedelta(minutes=30)) == {demo: 0, billing: 0}

    await scheduler.fire(Slot("demo", "daily", DAILY - timedelta(days=1)))
    # Yesterday's slot fired, today's did not: late by the time since it was due.
    assert (await late(DAILY + timedelta(minutes=30)))[demo] == 30 * 60
    assert (await late(DAILY + timedelta(hours=3)))[demo] == 3 * 3600

    await scheduler.fire(Slot("demo", "daily", DAILY))
    assert (await late(DAILY + timedelta(hours=3)))[demo] == 0
