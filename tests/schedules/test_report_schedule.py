"""Report schedules on a real database (SQLite and PostgreSQL): the slot on the 1st at 09:00 in
the customer's zone queues the previous month's report as one outbox row, once however many
replicas tick or catch up (and one replica's deliverer then shares it once); a slot missed
beyond the misfire grace is logged with how to make the report by hand, unless some replica
queued it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from app.catalog import Catalog
from app.config import Schedule
from app.db import Database
from app.engine.runs import RunService
from app.main import build
from app.models import Outbox, Run
from app.reports.gather import Reports
from app.reports.period import month_of
from app.reports.words import headline
from app.schedules.slots import report_month
from app.schedules.timer import Queued, Scheduler
from app.settings import Settings
from app.slack.deliverer import Deliverer, DeliveryOptions
from app.slack.outbox import Kind, Outgoing, Status
from app.slack.reports import ReportFile, report_poster
from tests.fakeslack import FakeSlack
from tests.reports.seed import arbel, november_history
from tests.schedules.support import Clock, customer

WIB = ZoneInfo("Asia/Jakarta")
FIRST_OF_DECEMBER = datetime(2026, 12, 1, 9, 0, tzinfo=WIB)  # 02:00 UTC
KEY = "report:aryanoble:monthly:2026-11"
MONTHLY = Schedule(name="monthly", cron="0 9 1 * *", kind="report")


def catalog(*schedules: Schedule) -> Catalog:
    return Catalog([customer(schedules=schedules or (MONTHLY,))])


def replica(db: Database, cat: Catalog, clock: Clock, *, post: bool = True) -> Scheduler:
    """One replica's scheduler: its own run service and outbox writer."""
    poster = report_poster(Outgoing(db)) if post else None
    return Scheduler(RunService(db), cat, clock=clock, post_report=poster)


@asynccontextmanager
async def databases(db: Database, count: int) -> AsyncIterator[list[Database]]:
    """``count`` handles on the database, each with its own connections (like replicas)."""
    handles = [Database(db.url) for _ in range(count)]
    try:
        yield handles
    finally:
        for handle in handles:
            await handle.close()


async def rows(db: Database) -> list[Outbox]:
    async with db.read() as session:
        return list((await session.execute(select(Outbox).order_by(Outbox.id))).scalars())


async def no_runs(db: Database) -> bool:
    async with db.read() as session:
        return (await session.execute(select(Run.id).limit(1))).first() is None


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(channels=["C0OPS"]) as slack:
        yield slack
        assert slack.violations == []


def test_a_report_covers_the_calendar_month_before_its_slot_in_the_customers_zone() -> None:
    assert report_month(FIRST_OF_DECEMBER, WIB) == "2026-11"
    assert report_month(datetime(2027, 1, 1, 9, 0, tzinfo=WIB), WIB) == "2026-12"
    # 1 Dec 09:00 in Auckland is still 30 Nov in UTC: the customer's zone decides.
    auckland = ZoneInfo("Pacific/Auckland")
    assert report_month(datetime(2026, 12, 1, 9, 0, tzinfo=auckland), auckland) == "2026-11"
    assert report_month(datetime(2026, 12, 1, 9, 0, tzinfo=auckland), UTC) == "2026-10"


async def test_the_slot_on_the_first_queues_the_previous_months_report(db: Database) -> None:
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC) + timedelta(seconds=1))
    fired = await replica(db, catalog(), clock).tick("aryanoble", "monthly")
    assert isinstance(fired, Queued) and fired.created
    assert (fired.due.month, fired.due.key) == ("2026-11", KEY)
    [row] = await rows(db)
    assert (row.dedupe_key, row.kind, row.channel, row.status) == (
        KEY,
        Kind.REPORT,
        "C0OPS",
        Status.PENDING,
    )
    assert row.payload == {
        "customer": "aryanoble",
        "month": "2026-11",
        "schedule": "monthly",
        "channel": "C0OPS",
    }
    assert row.run_id is None and await no_runs(db)  # a report slot runs no checks


async def test_a_report_goes_to_the_schedules_own_channel(db: Database) -> None:
    own = Schedule(name="monthly", cron="0 9 1 * *", kind="report", channel="C0REPORTS")
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC))
    await replica(db, catalog(own), clock).tick("aryanoble", "monthly")
    [row] = await rows(db)
    assert row.channel == row.payload["channel"] == "C0REPORTS"


async def test_two_replicas_queue_a_slot_once_and_share_it_once(
    db: Database, fake: FakeSlack
) -> None:
    cat = catalog()
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC) + timedelta(seconds=1))
    made: list[tuple[str, str]] = []

    async def maker(customer_id: str, month: str) -> ReportFile:
        made.append((customer_id, month))
        return ReportFile(b"%PDF-1.7 report", "r.pdf", "Report", ("one", "two"))

    async with databases(db, 2) as handles:
        replicas = [replica(handle, cat, clock) for handle in handles]
        fired = await asyncio.gather(
            *(r.tick("aryanoble", "monthly") for r in replicas for _ in range(3))
        )
        assert [f.created for f in fired if isinstance(f, Queued)].count(True) == 1
        stop = asyncio.Event()
        options = DeliveryOptions(poll_s=0.1, lease_s=3, unknown_min_s=0.3, http_timeout_s=2)
        slack = AsyncWebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
        deliverers = [Deliverer(h, slack, options, make_report=maker) for h in handles]
        serving = [asyncio.create_task(d.serve(stop)) for d in deliverers]
        await fake.await_(fake.shares, 15, "the report")
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*serving)
    [row] = await rows(db)
    assert row.dedupe_key == KEY and row.status == Status.POSTED
    assert len(fake.shares("C0OPS")) == 1 and made == [("aryanoble", "2026-11")]


async def test_a_cron_that_fires_more_often_still_queues_one_report_a_month(
    db: Database,
) -> None:
    daily = Schedule(name="monthly", cron="0 9 * * *", kind="report")
    cat = catalog(daily)
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC))
    first = await replica(db, cat, clock).tick("aryanoble", "monthly")
    clock.advance(days=1)
    second = await replica(db, cat, clock).tick("aryanoble", "monthly")
    assert isinstance(first, Queued) and first.created
    assert isinstance(second, Queued) and not second.created and second.due.key == KEY
    assert [r.dedupe_key for r in await rows(db)] == [KEY]


async def test_catch_up_after_a_restart_within_the_grace_queues_it_once(db: Database) -> None:
    cat = catalog()
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC) + timedelta(minutes=10))
    first = await replica(db, cat, clock).catch_up()
    second = await replica(db, cat, clock).catch_up()  # another replica, or a second restart
    assert [(q.due.key, q.created) for q in first if isinstance(q, Queued)] == [(KEY, True)]
    assert [(q.due.key, q.created) for q in second if isinstance(q, Queued)] == [(KEY, False)]
    assert [r.dedupe_key for r in await rows(db)] == [KEY]


async def test_a_report_slot_missed_beyond_the_grace_says_how_to_make_it_by_hand(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.schedules.timer")
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC) + timedelta(minutes=16))
    assert await replica(db, catalog(), clock).catch_up() == []
    assert await rows(db) == []
    [line] = [r.getMessage() for r in caplog.records]
    assert "aryanoble/monthly missed its 2026-12-01 09:00 WIB slot" in line
    assert "`mhub report aryanoble --month 2026-11 --pdf aryanoble-2026-11.pdf`" in line


async def test_a_report_slot_another_replica_queued_is_not_called_missed(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    cat = catalog()
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC))
    await replica(db, cat, clock).tick("aryanoble", "monthly")
    caplog.set_level(logging.WARNING, logger="app.schedules.timer")
    clock.advance(hours=2)
    assert await replica(db, cat, clock).catch_up() == []
    assert not caplog.records and len(await rows(db)) == 1


async def test_a_replica_without_slack_queues_nothing_and_says_so(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.schedules.timer")
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC))
    scheduler = replica(db, catalog(), clock, post=False)
    assert await scheduler.tick("aryanoble", "monthly") is None
    assert await rows(db) == [] and "a replica with Slack queues reports" in caplog.text


async def test_digest_and_report_schedules_fire_side_by_side(db: Database) -> None:
    daily = Schedule(name="daily", cron="0 9 * * *")
    cat = catalog(daily, MONTHLY)
    clock = Clock(FIRST_OF_DECEMBER.astimezone(UTC) + timedelta(minutes=1))
    fired = await replica(db, cat, clock).catch_up()
    assert sorted(type(f).__name__ for f in fired) == ["Queued", "Run"]
    assert [r.dedupe_key for r in await rows(db)] == [KEY]
    assert not await no_runs(db)


async def test_the_hub_posts_the_real_report_of_a_seeded_month_once(db: Database) -> None:
    """The composition root's wiring end to end: the real maker (gathering, the PDF in a worker
    thread, the two lines) behind the real scheduler and deliverer, against the fake Slack."""
    await november_history().write(db)
    monthly = Schedule(name="monthly", cron="0 9 1 * *", kind="report")
    arbel_ = arbel()
    cat = Catalog([arbel_.model_copy(update={"schedules": (*arbel_.schedules, monthly)})])
    now = Clock(FIRST_OF_DECEMBER.astimezone(UTC) + timedelta(seconds=5))
    with FakeSlack(channels=["C0ARBEL001"]) as fake:
        settings = Settings(
            SLACK_BOT_TOKEN="xoxb-test", SLACK_APP_TOKEN="xapp-test", SLACK_API_URL=fake.api_url
        )
        async with (
            build(settings, cat, db=db, clock=now) as hub,
            build(settings, cat, db=db, clock=now) as other,
        ):
            assert hub.side is not None
            fired = await asyncio.gather(
                hub.scheduler.tick("arbel", "monthly"), other.scheduler.tick("arbel", "monthly")
            )
            await hub.side.deliverer.deliver_due()
        assert fake.violations == []
    assert sorted(f.created for f in fired if isinstance(f, Queued)) == [False, True]
    [message] = fake.shares("C0ARBEL001")
    [file] = message.files
    content = fake.files[file["id"]].content
    assert content is not None and content.startswith(b"%PDF") and len(content) > 1_000
    assert file["name"] == "arbel-2026-11.pdf"
    report = await Reports(db, cat, now).build("arbel", month_of(arbel_, "2026-11", now()))
    assert message.text == "\n".join(headline(report))
    assert message.text.startswith("Monthly report for Arbel Retail, November 2026.")
    [row] = await rows(db)
    assert row.status == Status.POSTED
