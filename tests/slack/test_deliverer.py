"""The outbox against the fake Slack on each database: posted once, updated in place, through
429 storms, outages, lost answers and competing replicas; a message Slack refuses for good is
written on its run's timeline once and its requester is told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update

from app.catalog import Catalog
from app.config import Account, Customer
from app.db import Database
from app.engine.runs import RunService, Submit
from app.models import Outbox, RunEvent, Source
from app.slack.deliverer import Deliverer, DeliveryOptions
from app.slack.outbox import Outgoing, Status, card_key
from blocks.text import section
from tests.fakeslack import FakeSlack

CATALOG = Catalog(
    [
        Customer(
            id="acme",
            name="Acme",
            accounts=(
                Account(
                    id="web",
                    name="Web",
                    account_id="111122223333",
                    regions=("us-east-1",),
                    checks=("rds",),
                ),
            ),
        )
    ]
)
FAST = DeliveryOptions(
    backoff_base_s=0.2,
    backoff_cap_s=1.0,
    unknown_min_s=0.3,
    lease_s=3,
    poll_s=0.2,
    http_timeout_s=3,
)


def message(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [section(text, "text")]}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(channels=["C0OPS"]) as slack:
        yield slack
        assert slack.violations == []


def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.api_url, timeout=3, retry_handlers=[])


async def new_run(db: Database, source: Source = Source.SLASH) -> int:
    run, _ = await RunService(db).submit(
        Submit(CATALOG.plan("web"), "U0ALICE", source, channel_id="C0OPS")
    )
    return run.id


async def failures(db: Database) -> list[RunEvent]:
    """Every ``delivery_failed`` event, oldest first."""
    async with db.read() as session:
        query = select(RunEvent).where(RunEvent.type == "delivery_failed").order_by(RunEvent.id)
        return list((await session.execute(query)).scalars())


@asynccontextmanager
async def delivering(
    db: Database, fake: FakeSlack, replicas: int = 1, options: DeliveryOptions = FAST
) -> AsyncIterator[list[Deliverer]]:
    stop = asyncio.Event()
    deliverers = [Deliverer(db, client(fake), options) for _ in range(replicas)]
    tasks = [asyncio.create_task(d.serve(stop)) for d in deliverers]
    try:
        yield deliverers
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_it_posts_a_card_once_and_then_updates_it_in_place(
    db: Database, fake: FakeSlack
) -> None:
    run_id = await new_run(db)
    outgoing = Outgoing(db)
    await outgoing.put_card(run_id, "C0OPS", message("queued"))
    async with delivering(db, fake) as [deliverer]:
        [card] = await fake.await_(lambda: fake.cards(run_id), 10, "the card")
        assert card.text == "queued" and card.key == card_key(run_id)
        assert not await outgoing.put_card(run_id, "C0OPS", message("queued"))  # unchanged
        assert await outgoing.put_card(run_id, "C0OPS", message("done"))
        deliverer.poke()
        await fake.await_(lambda: card.text == "done", 10, "the update")
    row = await outgoing.row(card_key(run_id))
    assert row is not None and row.status == Status.POSTED and row.message_ts == card.ts
    assert (row.version, row.sent_version) == (2, 2)
    assert len(fake.calls_of("chat.postMessage")) == 1
    assert len(fake.calls_of("chat.update")) == 1


async def test_it_coalesces_renderings_into_at_most_one_update_a_second(
    db: Database, fake: FakeSlack
) -> None:
    run_id = await new_run(db)
    outgoing = Outgoing(db)
    await outgoing.put_card(run_id, "C0OPS", message("v0"))
    async with delivering(db, fake) as [deliverer]:
        [card] = await fake.await_(lambda: fake.cards(run_id), 10, "the card")
        began = time.monotonic()
        for version in range(1, 21):
            await outgoing.put_card(run_id, "C0OPS", message(f"v{version}"))
            deliverer.poke()
            await asyncio.sleep(0.1)
        await fake.await_(lambda: card.text == "v20", 10, "the last version")
        took = time.monotonic() - began
    # Twenty renderings, but at most one update per second of the time they took (however long
    # a loaded machine made that): without coalescing there would be about twenty.
    assert 1 <= len(fake.calls_of("chat.update")) <= 1 + took
    assert len(fake.calls_of("chat.postMessage")) == 1


async def test_it_waits_out_retry_after_through_a_429_storm(db: Database, fake: FakeSlack) -> None:
    fake.rate_limit(["chat.postMessage"], times=4, retry_after=0.5)
    run_id = await new_run(db)
    await Outgoing(db).put_card(run_id, "C0OPS", message("hello"))
    async with delivering(db, fake):
        await fake.await_(lambda: fake.cards(run_id), 15, "the card")
    assert [c.status for c in fake.calls_of("chat.postMessage")] == [429, 429, 429, 429, 200]
    assert len(fake.cards(run_id)) == 1  # and no call came back early (fake.violations)


async def test_it_delivers_once_after_an_outage(db: Database, fake: FakeSlack) -> None:
    fake.outage(4)
    run_id = await new_run(db)
    await Outgoing(db).put_card(run_id, "C0OPS", message("hello"))
    async with delivering(db, fake):
        await fake.await_(lambda: fake.cards(run_id), 20, "the card after the outage")
        await asyncio.sleep(1.5)
    failed = [c for c in fake.calls if c.status != 200]
    assert len(failed) >= 3 and {c.status for c in failed} <= {0, 503}
    # After a 503 Slack may have posted it: the channel history is read before posting again.
    assert fake.calls_of("conversations.history", ok=True)
    assert len(fake.cards(run_id)) == 1


async def test_it_does_not_post_twice_when_the_answer_to_a_post_is_lost(
    db: Database, fake: FakeSlack
) -> None:
    fake.lose_responses("chat.postMessage")
    run_id = await new_run(db)
    outgoing = Outgoing(db)
    await outgoing.put_card(run_id, "C0OPS", message("hello"))
    async with delivering(db, fake):
        await fake.await_(lambda: fake.calls_of("conversations.history"), 15, "a look")
        row = await posted_row(db, run_id)
    assert len(fake.cards(run_id)) == 1
    assert [c.status for c in fake.calls_of("chat.postMessage")] == [0]
    assert row.message_ts == fake.cards(run_id)[0].ts


@pytest.mark.parametrize("trace", ["metadata", "block id"])
async def test_it_finds_the_card_of_a_sender_that_died_mid_post(
    db: Database, fake: FakeSlack, trace: str
) -> None:
    run_id = await new_run(db)
    outgoing = Outgoing(db)
    await outgoing.put_card(run_id, "C0OPS", message("hello"))
    # A previous process claimed the row, posted, and died before recording the answer.
    marks: dict[str, Any] = (
        {"metadata": {"event_type": "mhub_run_card", "event_payload": {"key": card_key(run_id)}}}
        if trace == "metadata"
        else {"blocks": [section("hello", f"mhub:{card_key(run_id)}")]}
    )
    sent = await client(fake).chat_postMessage(channel="C0OPS", text="hello", **marks)
    async with db.write() as session:
        await session.execute(
            update(Outbox).values(
                status=Status.POSTING, attempts=1, next_attempt_at=db.now_plus(-1)
            )
        )
    async with delivering(db, fake):
        row = await posted_row(db, run_id)
    assert row.message_ts == sent["ts"]
    assert len(fake.calls_of("chat.postMessage")) == 1  # only the dead sender's


async def test_it_sends_each_card_once_with_two_replicas_delivering(
    db: Database, fake: FakeSlack
) -> None:
    outgoing = Outgoing(db)
    ids = [await new_run(db) for _ in range(20)]
    for run_id in ids:
        await outgoing.put_card(run_id, "C0OPS", message(f"card {run_id}"))
    async with delivering(db, fake, replicas=2):
        await fake.await_(lambda: len(fake.cards()) >= 20, 20, "twenty cards")
        await asyncio.sleep(0.5)
    keys = [c.key for c in fake.cards()]
    assert sorted(keys) == sorted(card_key(i) for i in ids)


async def test_it_gives_up_on_a_channel_it_is_not_in_and_tells_the_user(
    db: Database, fake: FakeSlack
) -> None:
    fake.leave("C0OPS")
    run_id = await new_run(db)
    hook = f"{fake.url}/hooks/commands/1"
    await Outgoing(db).put_card(run_id, "C0OPS", message("hello"), reply_url=hook)
    async with delivering(db, fake):
        [hint] = await fake.await_(lambda: fake.responses.get(hook), 10, "the invite hint")
    assert "/invite @Monitoring Hub" in hint["text"]
    row = await Outgoing(db).row(card_key(run_id))
    assert row is not None and row.status == Status.FAILED and row.last_error == "not_in_channel"
    assert len(fake.calls_of("chat.postMessage")) == 1
    [event] = await failures(db)
    assert event.run_id == run_id and event.data["told"] == "reply"
    assert fake.dms("U0ALICE") == []  # told once, through the command's reply


async def test_it_writes_a_refused_card_on_the_runs_timeline_and_dms_the_requester(
    db: Database, fake: FakeSlack
) -> None:
    fake.refuse("C0OPS", "channel_not_found")
    run_id = await new_run(db, Source.MODAL)  # a modal has no response_url to answer through
    await Outgoing(db).put_card(run_id, "C0OPS", message("hello"))
    async with delivering(db, fake):
        [dm] = await fake.await_(lambda: fake.dms("U0ALICE"), 10, "the DM to the requester")
    assert f"couldn't post the result card of run *#{run_id}* in <#C0OPS>" in dm.read()
    assert "the channel no longer exists or the app can't see it" in dm.read()
    assert "`slack.channel`" in dm.read() and f"/monitor status {run_id}" in dm.read()
    [event] = await failures(db)
    assert event.run_id == run_id and event.actor == "slack"
    assert event.data == {
        "what": "card post",
        "channel": "C0OPS",
        "error": "channel_not_found",
        "reason": "the channel no longer exists or the app can't see it",
        "fix": "check `slack.channel` in the customer's config; a private channel needs "
        "`/invite @Monitoring Hub` first",
        "ref": card_key(run_id),
        "told": "dm",
    }
    assert fake.cards(run_id) == [] and len(fake.calls_of("chat.postMessage", ok=False)) == 1


async def test_it_says_when_an_update_of_a_posted_card_is_refused(
    db: Database, fake: FakeSlack
) -> None:
    run_id = await new_run(db, Source.BUTTON)
    outgoing = Outgoing(db)
    await outgoing.put_card(run_id, "C0OPS", message("running"))
    async with delivering(db, fake) as [deliverer]:
        [card] = await fake.await_(lambda: fake.cards(run_id), 10, "the card")
        fake.refuse("C0OPS", "invalid_blocks", methods=["chat.update"])
        await outgoing.put_card(run_id, "C0OPS", message("done"))
        deliverer.poke()
        [dm] = await fake.await_(lambda: fake.dms("U0ALICE"), 10, "the DM to the requester")
    assert card.text == "running" and "couldn't update the result card" in dm.read()
    [event] = await failures(db)
    assert (event.data["what"], event.data["error"]) == ("card update", "invalid_blocks")
    assert "bug in Monitoring Hub: report it with ref `card:" in event.data["fix"]


async def test_it_writes_one_event_and_one_notice_per_refused_card_with_two_replicas(
    db: Database, fake: FakeSlack
) -> None:
    fake.refuse("C0OPS", "is_archived")
    outgoing = Outgoing(db)
    ids = [await new_run(db, Source.MODAL) for _ in range(10)]
    for run_id in ids:
        await outgoing.put_card(run_id, "C0OPS", message(f"card {run_id}"))
    async with delivering(db, fake, replicas=2):
        await fake.await_(lambda: len(fake.dms("U0ALICE")) >= 10, 20, "ten DMs")
        await asyncio.sleep(0.5)
    events = await failures(db)
    assert len(events) == 10 and {e.run_id for e in events} == set(ids)  # one each
    assert len(fake.dms("U0ALICE")) == 10


async def test_it_writes_nothing_for_rate_limits_and_outages(db: Database, fake: FakeSlack) -> None:
    fake.rate_limit(["chat.postMessage"], times=2, retry_after=0.3)
    fake.outage(1)
    run_id = await new_run(db, Source.MODAL)
    await Outgoing(db).put_card(run_id, "C0OPS", message("hello"))
    async with delivering(db, fake):
        await fake.await_(lambda: fake.cards(run_id), 20, "the card after the trouble")
        await posted_row(db, run_id)
    assert await failures(db) == [] and fake.dms("U0ALICE") == []
    assert any(c.status != 200 for c in fake.calls_of("chat.postMessage"))


async def test_it_writes_a_refused_digest_on_its_runs_timeline_and_tells_nobody(
    db: Database, fake: FakeSlack
) -> None:
    fake.refuse("C0OPS", "channel_not_found")
    run_id = await new_run(db, Source.SCHEDULE)
    await Outgoing(db).put_once(
        f"digest:{run_id}", "digest", {"message": message("☀️")}, run_id, "C0OPS"
    )
    async with delivering(db, fake):
        [event] = await failed(db)
    assert (event.data["what"], event.data["told"]) == ("digest", None)
    assert "the schedule's `channel`" in event.data["fix"]
    assert fake.dms("U0ALICE") == [] and fake.responses == {}


async def failed(db: Database, within: float = 10) -> list[RunEvent]:
    """The ``delivery_failed`` events, once there is one."""
    deadline = asyncio.get_running_loop().time() + within
    while not (found := await failures(db)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no delivery_failed event in {within:.0f} s")
        await asyncio.sleep(0.05)
    return found


async def posted_row(db: Database, run_id: int, within: float = 15) -> Outbox:
    """The card's outbox row, once it is recorded as posted."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        row = await Outgoing(db).row(card_key(run_id))
        if row is not None and row.status == Status.POSTED:
            return row
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"card {run_id} was not recorded as posted in {within:.0f} s")
        await asyncio.sleep(0.05)
