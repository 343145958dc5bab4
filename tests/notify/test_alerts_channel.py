"""The alerts channel, through the hub as ``mhub serve`` wires it (``app.main.build``) and the
outbox deliverer against the fake Slack, on each database: a critical finding gets one thread;
its acknowledgement, snooze and resolution are replies in it, in order, and its first message is
edited to show what it is now — through a Slack outage in the middle; two replicas deciding the
same change post one reply; and the channel never gets more than one message a second."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.catalog import Catalog
from app.config import Routing
from app.db import Database
from app.main import Hub, build
from app.models import Finding
from app.settings import Settings
from checks.base import CheckContext, CheckResult, Severity
from tests.fakeslack import FakeSlack
from tests.fakeslack.server import Posted
from tests.notify.test_routed_hub import fire
from tests.schedules.support import SEVEN_WIB, Clock, customer
from tests.schedules.test_digests import FAST
from tests.schedules.test_digests import Estate as Endpoints
from tests.slack.test_deliverer import FAST as DELIVERY
from tests.slack.test_deliverer import delivering

ALERTS = "C0ALERTS"


class Estate(Endpoints):
    """The digests' estate of endpoints, where an account's role may also be broken."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()

    async def run(self, ctx: CheckContext) -> CheckResult:
        if ctx.account.id in self.broken:
            details = {"error": "PermanentError", "permanent": True, "reason": "role",
                       "call": "sts:AssumeRole", "code": "AccessDenied"}  # fmt: skip
            said = f"{ctx.account.id}: cannot assume the role (AccessDenied)"
            return CheckResult(Severity.ERROR, said, details)
        return await super().run(ctx)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(channels=[ALERTS, "C0OPS"]) as slack:
        yield slack
        assert slack.violations == []


@asynccontextmanager
async def alerts_hub(
    db: Database, estate: Estate, accounts: tuple[str, ...] = ("arbel",)
) -> AsyncIterator[Hub]:
    routed = customer(accounts=accounts).model_copy(
        update={"routing": Routing(alerts_channel=ALERTS)}
    )
    async with build(
        Settings(), Catalog([routed]), db=db, registry={"http": estate}, executor=FAST,
        slack=False, clock=Clock(SEVEN_WIB),
    ) as hub:  # fmt: skip
        yield hub


def threads(fake: FakeSlack) -> list[Posted]:
    """The first messages of the alerts channel's threads, oldest first."""
    return [p for p in fake.posted if p.channel == ALERTS and not p.thread_ts]


async def the_finding(db: Database) -> Finding:
    async with db.read() as session:
        return (await session.execute(select(Finding))).scalar_one()


def sent_to_alerts(fake: FakeSlack) -> list[float]:
    """When each message posted or edited in the alerts channel was taken, in order."""
    calls = fake.calls_of("chat.postMessage", ok=True) + fake.calls_of("chat.update", ok=True)
    return sorted(c.at for c in calls if c.channel == ALERTS)


async def test_a_critical_finding_gets_one_thread_that_follows_it_until_it_resolves(
    db: Database, fake: FakeSlack
) -> None:
    estate = Estate()
    estate.hot.add("arbel")
    async with alerts_hub(db, estate) as hub, delivering(db, fake) as [deliverer]:
        await fire(hub)
        [first] = await fake.await_(lambda: threads(fake), 10, "the thread's first message")
        assert "🔴 *Critical* · Aryanoble · arbel · http" in first.read()
        assert "api answered 503" in first.read()
        assert first.blocks[0]["accessory"]["type"] == "overflow"  # the card's answer menu
        await fire(hub)  # seen again, as it was: nothing to say
        found = await the_finding(db)
        await hub.answers.acknowledge("aryanoble", [found.id], "U0ALICE", {})
        deliverer.poke()
        await fake.await_(lambda: len(fake.thread(first)) == 1, 10, "the acknowledgement")
        await fake.await_(lambda: "now: 👀 <@U0ALICE>" in first.read(), 10, "the edit")

        fake.outage(4)  # Slack is down while the finding is snoozed and then resolves
        found = await the_finding(db)
        until = SEVEN_WIB + timedelta(days=3)
        await hub.answers.snooze("aryanoble", [found.id], "U0BOB", "vendor ticket 42", until, {})
        estate.hot.clear()
        await fire(hub)
        await fake.await_(lambda: len(fake.thread(first)) == 3, 30, "the replies after it")
        await fake.await_(lambda: "now: ✅ resolved" in first.read(), 10, "the last edit")
    replies = [r.read() for r in fake.thread(first)]
    assert "👀 *Acknowledged* by <@U0ALICE>" in replies[0]
    assert "💤 *Snoozed* until" in replies[1] and "by <@U0BOB> — vendor ticket 42" in replies[1]
    assert "✅ *Resolved*" in replies[2]
    assert len(threads(fake)) == 1  # one thread, whatever happened
    assert "accessory" not in first.blocks[0]  # nothing left to answer
    assert any(c.status in (0, 503) for c in fake.calls)  # the outage did happen
    assert (await the_finding(db)).told == "resolved"


async def test_two_replicas_deciding_the_same_change_post_one_reply(
    db: Database, fake: FakeSlack
) -> None:
    estate = Estate()
    estate.hot.add("arbel")
    async with alerts_hub(db, estate) as one, alerts_hub(db, estate) as other:
        await fire(one)
        found = await the_finding(db)
        await asyncio.gather(
            one.answers.acknowledge("aryanoble", [found.id], "U0ALICE", {}),
            *(other.router.sweep() for _ in range(4)),
            *(one.router.sweep() for _ in range(4)),
        )
        async with delivering(db, fake, replicas=2):
            [first] = await fake.await_(lambda: threads(fake), 10, "the thread")
            await fake.await_(lambda: fake.thread(first), 10, "the reply")
            await asyncio.sleep(1.5)  # time for a second reply, were there one
    assert [r.text for r in fake.thread(first)] == ["👀 *Acknowledged* by <@U0ALICE>"]


async def test_it_sends_an_alerts_channel_at_most_one_message_a_second(
    db: Database, fake: FakeSlack
) -> None:
    estate = Estate()
    accounts = ("arbel", "billing", "cargo", "dagger")
    estate.hot.update(accounts)
    async with alerts_hub(db, estate, accounts) as hub:
        await fire(hub)
        async with delivering(db, fake, replicas=2, options=DELIVERY):
            await fake.await_(lambda: len(threads(fake)) == 4, 20, "four threads")
    times = sent_to_alerts(fake)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 4 and min(gaps) >= 0.9, gaps


async def test_a_blind_spot_gets_a_thread_and_is_told_when_it_looks_again(
    db: Database, fake: FakeSlack
) -> None:
    estate = Estate()
    estate.broken.add("arbel")
    async with alerts_hub(db, estate) as hub, delivering(db, fake):
        await fire(hub)  # one look could not: not a blind spot yet
        await fire(hub)
        [first] = await fake.await_(lambda: threads(fake), 10, "the blind spot's thread")
        assert "🕳️ *Not checked* · Aryanoble · arbel · http" in first.read()
        assert "AccessDenied on sts:AssumeRole" in first.read()
        assert "2 looks in a row could not look" in first.read()
        await fire(hub)  # still blind: nothing new
        estate.broken.clear()
        await fire(hub)
        await fake.await_(lambda: fake.thread(first), 10, "the reply")
        await fake.await_(lambda: "Checked again" in first.read(), 10, "the edit")
    [reply] = fake.thread(first)
    assert reply.text.startswith("✅ *Checked again* ")
    assert len(threads(fake)) == 1
