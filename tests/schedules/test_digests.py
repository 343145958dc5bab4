"""Digests on a real database (SQLite and PostgreSQL) with the real executor and outbox: one
digest per scheduled run, queued by whichever replica sees it end, delivered to the fake Slack
once, no result card, a "what changed" section that follows the problems day by day, and a
posted digest updated in place when someone answers a finding it shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update

from app.catalog import Catalog
from app.db import Database
from app.engine.executor import Executor, ExecutorOptions
from app.engine.runs import RunService
from app.main import Hub, build
from app.models import Finding, Outbox, Run
from app.schedules.timer import Scheduler
from app.settings import Settings
from app.slack.cards import has_card
from app.slack.deliverer import Deliverer, DeliveryOptions
from app.slack.digests import DIGEST_KIND, Digests, digest_key
from checks.base import Check, CheckContext, CheckResult, Severity, resource
from tests.fakeslack import FakeSlack
from tests.schedules.support import SEVEN_WIB, Clock, catalog

FAST = ExecutorOptions(lease_s=5, heartbeat_s=1, cancel_poll_s=0.1, poll_s=0.05, sweep_s=0.1)
DELIVERY = DeliveryOptions(backoff_base_s=0.2, backoff_cap_s=1, unknown_min_s=0.3, lease_s=3)


class Estate(Check):
    """The http check, answering what the test says each account looks like today."""

    kind = "http"

    def __init__(self) -> None:
        self.hot: set[str] = set()

    async def run(self, ctx: CheckContext) -> CheckResult:
        def api(severity: Severity, summary: str) -> dict[str, Any]:
            where = (ctx.account.account_id, "ap-southeast-3")
            return resource("http", *where, "api", "status", severity, summary)

        if ctx.account.id in self.hot:
            found = api(Severity.CRIT, "api answered 503 in 1,204 ms (expected 200)")
            return CheckResult(Severity.CRIT, "1 critical of 1 endpoint", {"resources": [found]})
        fine = api(Severity.OK, "api answered 200 in 80 ms")
        return CheckResult(Severity.OK, "1 endpoint OK", {"resources": [fine], "endpoints": 1})


@dataclass
class Replica:
    """What ``mhub serve`` runs for schedules, in this process (the hub as ``app.main.build``
    wires it, Slack configured so that digests follow run changes; nothing is delivered)."""

    hub: Hub

    @property
    def cat(self) -> Catalog:
        return self.hub.catalog

    @property
    def scheduler(self) -> Scheduler:
        return self.hub.scheduler

    @property
    def executor(self) -> Executor:
        return self.hub.executor

    @property
    def digests(self) -> Digests:
        return self.hub.digests

    async def fire(self) -> Run:
        """Tick the slot due at the clock's time and wait for its run to end."""
        run = await self.scheduler.tick("aryanoble", "daily")
        assert run is not None
        await self.executor.run_until_done(run.id)
        await self.digests.step()
        return run


@pytest.fixture
def estate() -> Estate:
    return Estate()


@asynccontextmanager
async def replica(db: Database, estate: Estate, clock: Clock) -> AsyncIterator[Replica]:
    settings = Settings(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-test",
        SLACK_API_URL="http://127.0.0.1:9/api/",  # never called: nothing is delivered here
        HUB_PUBLIC_URL="https://hub.example",
    )
    cat = catalog(accounts=("arbel", "billing", "cargo"))
    registry = {"http": estate}
    async with build(settings, cat, db=db, registry=registry, executor=FAST, clock=clock) as hub:
        yield Replica(hub)


async def digests(db: Database) -> list[Outbox]:
    async with db.read() as session:
        rows = await session.execute(select(Outbox).where(Outbox.kind == DIGEST_KIND))
        return list(rows.scalars())


def sections(row: Outbox) -> list[str]:
    blocks: list[dict[str, Any]] = row.payload["message"]["blocks"]
    return [
        b["text"]["text"] if b["type"] == "section" else b["elements"][0]["text"] for b in blocks
    ]


async def test_it_queues_one_digest_per_scheduled_run_into_the_schedules_channel(
    db: Database, estate: Estate
) -> None:
    async with replica(db, estate, Clock(SEVEN_WIB)) as hub:
        run = await hub.fire()
        other = Digests(db, RunService(db), hub.cat)  # another replica saw it end too
        assert await other.enqueue(run.id) is False
        assert await other.sweep() == []
    [row] = await digests(db)
    assert row.dedupe_key == digest_key(run.id) == f"digest:{run.id}"
    assert row.channel == "C0OPS" and row.run_id == run.id and row.status == "pending"
    assert sections(row)[0] == "☀️ *Aryanoble — daily digest* · Sat 21 Nov, 07:00 WIB"


async def test_it_queues_the_digest_once_when_replicas_race(db: Database, estate: Estate) -> None:
    async with replica(db, estate, Clock(SEVEN_WIB)) as hub:
        run = await hub.scheduler.tick("aryanoble", "daily")
        assert run is not None
        await hub.executor.run_until_done(run.id)
        handles = [Database(db.url) for _ in range(3)]
        try:
            racers = [Digests(h, RunService(h), hub.cat) for h in handles]
            queued = await asyncio.gather(*(r.enqueue(run.id) for r in racers * 2))
        finally:
            for handle in handles:
                await handle.close()
    assert sorted(queued) == [False] * 5 + [True]
    assert len(await digests(db)) == 1


async def test_it_gives_a_scheduled_run_no_result_card(db: Database, estate: Estate) -> None:
    async with replica(db, estate, Clock(SEVEN_WIB)) as hub:
        run = await hub.fire()
    assert not has_card(run)
    async with db.read() as session:
        kinds = (await session.execute(select(Outbox.kind))).scalars().all()
    assert kinds == [DIGEST_KIND]


async def test_it_sweeps_up_the_digest_of_a_run_whose_replica_died_before_queueing_it(
    db: Database, estate: Estate
) -> None:
    async with replica(db, estate, Clock(SEVEN_WIB)) as hub:
        run = await hub.scheduler.tick("aryanoble", "daily")
        assert run is not None
        await hub.executor.run_until_done(run.id)  # this replica "dies" before rendering
        survivor = Digests(db, RunService(db), hub.cat)
        assert await survivor.sweep() == [run.id]
        await survivor.flush({run.id})
        assert await survivor.sweep() == []
    [row] = await digests(db)
    assert row.dedupe_key == f"digest:{run.id}"


async def test_it_follows_a_problem_from_appearing_to_resolving_day_by_day(
    db: Database, estate: Estate
) -> None:
    clock = Clock(SEVEN_WIB - timedelta(days=2))
    async with replica(db, estate, clock) as hub:
        await hub.fire()
        clock.advance(days=1)
        estate.hot = {"billing"}
        await hub.fire()
        clock.advance(days=1)
        estate.hot = set()
        await hub.fire()
    first, appeared, resolved = await digests(db)
    assert "First digest of this schedule" in sections(first)[2]
    assert sections(appeared)[2].splitlines() == [
        "*New since yesterday 07:00 WIB (1)*",
        "🔴 billing · `api` api answered 503 in 1,204 ms (expected 200)",
    ]
    assert sections(resolved)[2].splitlines() == [
        "*Resolved since yesterday 07:00 WIB (1)*",
        "✅ billing · `api` — was: api answered 503 in 1,204 ms (expected 200)",
    ]
    assert sections(appeared)[1].startswith("🔴 *Critical* — 🔴 1 critical · ✅ 2 OK")
    assert sections(appeared)[-1].endswith("<https://hub.example/runs/2|Full report ↗>")


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(channels=["C0OPS"]) as slack:
        yield slack
        assert slack.violations == []


async def test_it_posts_the_digest_to_slack_once_even_when_the_answer_is_lost(
    db: Database, estate: Estate, fake: FakeSlack
) -> None:
    fake.lose_responses("chat.postMessage")
    async with replica(db, estate, Clock(SEVEN_WIB)) as hub:
        run = await hub.fire()
    client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url, timeout=3, retry_handlers=[])
    deliverers = [Deliverer(db, client, DELIVERY) for _ in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.serve(stop)) for d in deliverers]
    try:
        await fake.await_(
            lambda: [p for p in fake.posted if p.key == f"digest:{run.id}"], 15, "the digest"
        )
        await fake.await_(lambda: fake.calls_of("conversations.history"), 15, "a look")
        deadline = asyncio.get_running_loop().time() + 15
        while [r.status for r in await digests(db)] != ["posted"]:  # settled: nothing to send
            assert asyncio.get_running_loop().time() < deadline, await digests(db)
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    [posted] = [p for p in fake.posted if p.key == f"digest:{run.id}"]
    assert posted.channel == "C0OPS" and posted.text.startswith("☀️ *Aryanoble — daily digest*")
    assert len(fake.calls_of("chat.postMessage")) == 1


async def the_finding(db: Database) -> Finding:
    async with db.read() as session:
        [found] = (await session.execute(select(Finding))).scalars().all()
    return found


async def test_it_updates_the_posted_digest_in_place_when_a_finding_it_shows_is_answered(
    db: Database, estate: Estate, fake: FakeSlack
) -> None:
    estate.hot = {"billing"}
    client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url, timeout=3, retry_handlers=[])
    deliverer = Deliverer(db, client, replace(DELIVERY, min_update_interval_s=0.0))
    async with replica(db, estate, Clock(SEVEN_WIB)) as hub:
        run = await hub.fire()
        await deliverer.deliver_due()
        [posted] = [p for p in fake.posted if p.key == f"digest:{run.id}"]
        line = next(
            b for b in posted.blocks if "billing · `api`" in b.get("text", {}).get("text", "")
        )
        assert "🆕 new" in line["text"]["text"]
        found = await the_finding(db)
        assert {o["value"] for o in line["accessory"]["options"]} == {
            f"{verb}:f{found.id}" for verb in ("ack", "snooze", "mute")
        }

        until = SEVEN_WIB + timedelta(days=2)  # Mon 23 Nov, 07:00 WIB
        await hub.hub.answers.snooze("aryanoble", [found.id], "U0BOB", "deploy fixes it", until, {})
        assert await hub.digests.showing("aryanoble", [found.fingerprint]) == [run.id]
        assert await hub.digests.refresh(run.id) is True
        assert await hub.digests.refresh(run.id) is False  # nothing new to show
        await deliverer.deliver_due()

    assert len(fake.calls_of("chat.postMessage")) == 1
    assert len(fake.calls_of("chat.update", ok=True)) == 1
    assert len(posted.versions) == 2
    text = posted.read()
    assert "✅ *OK* — 1 problem snoozed · ✅ 3 OK · 3 accounts" in text
    assert "💤 1 snoozed — until Mon 23 Nov 07:00 WIB by <@U0BOB>" in text
    assert "billing · `api`" not in text
    [row] = await digests(db)
    assert (row.status, row.version, row.sent_version) == ("posted", 2, 2)


async def test_it_finds_the_recent_digests_that_show_a_finding(
    db: Database, estate: Estate
) -> None:
    clock = Clock(SEVEN_WIB)
    async with replica(db, estate, clock) as hub:
        estate.hot = {"billing"}
        first = await hub.fire()
        clock.advance(days=1)
        estate.hot = {"billing", "cargo"}
        second = await hub.fire()
        clock.advance(days=1)
        estate.hot = {"cargo"}
        await hub.fire()
        billing = "http:000000000002:ap-southeast-3:api:status"
        assert await hub.digests.showing("aryanoble", [billing]) == [first.id, second.id]
        assert await hub.digests.showing("someone-else", [billing]) == []
        assert await hub.digests.showing("aryanoble", []) == []
        async with db.write() as session:  # the first run was three days ago
            await session.execute(
                update(Run)
                .where(Run.id == first.id)
                .values(created_at=datetime.now(UTC) - timedelta(days=3))
            )
        assert await hub.digests.showing("aryanoble", [billing]) == [second.id]
        assert await hub.digests.refresh(99_999) is False  # no such digest
