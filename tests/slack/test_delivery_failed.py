"""A card or digest that Slack refuses for good, as the people around the hub notice it: the
requester is told, and the failure is on the run's timeline wherever a run is read (Slack,
the web view, the terminal) and on the runboard. A rate limit or an outage is no such
failure. The hub as ``app.main.build`` wires it (tests/handlers/conftest.py), on each
database."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient

from app.db import Database
from app.engine.runs import RunService, Submit
from app.loader import load_catalog
from app.models import RunEvent, Source
from app.slack.deliverer import PERMANENT_ERRORS, Deliverer
from app.slack.outbox import Outgoing
from app.web import create_app
from app.web.server import database_probe, executor_probe, slack_probe
from blocks import delivery
from blocks.terminal import render_run
from blocks.text import section
from tests.conftest import ROOT, demo_env, mhub
from tests.fakeslack import FakeSlack, validate
from tests.handlers.conftest import ARYANOBLE, Harness, harness, hub_catalog

__all__ = ["harness", "hub_catalog"]  # the handlers harness, reused here

GONE = "C0GONE"
LINE = f"Delivery failed · card post to {GONE} · channel_not_found"
WHY = "the channel no longer exists or the app can't see it"


async def from_the_modal(hub: Harness, channel: str = GONE) -> int:
    """Alice runs budget on arbel from the "Run checks" modal, to be posted in ``channel``
    (what the modal's submission submits: no response_url comes with it)."""
    plan = hub.hub.catalog.plan("arbel", ["budget"])
    run, _ = await hub.runs.submit(Submit(plan, "U0ALICE", Source.MODAL, channel_id=channel))
    return run.id


async def timeline(hub: Harness, run_id: int, within: float = 15) -> list[RunEvent]:
    """The run's events, once the run has finished and its card's fate is known."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        view = await hub.runs.get(run_id, events=True)
        kinds = {e.type for e in view.events}
        if view.terminal and kinds & {"delivered", "delivery_failed"}:
            return list(view.events)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run #{run_id}: no delivery outcome in {within:.0f} s: {kinds}")
        await asyncio.sleep(0.05)


async def finished(hub: Harness, run_id: int, within: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not (await hub.runs.get(run_id)).terminal:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run #{run_id} did not finish in {within:.0f} s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def browser(hub: Harness) -> AsyncIterator[TestClient]:
    """The web view over the hub's database, as ``mhub serve`` builds it."""
    probes = {
        "database": database_probe(hub.db),
        "executor": executor_probe(lambda: hub.hub.executor.last_loop_at),
        "slack": slack_probe(hub.slack.slack.connected),
    }
    app = create_app(
        db=hub.db, runs=hub.runs, catalog=hub.hub.catalog, metrics=hub.hub.metrics, probes=probes
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_it_tells_the_requester_and_shows_a_refused_card_on_the_web_and_in_the_terminal(
    harness: Harness,
) -> None:
    fake = harness.fake
    fake.refuse(GONE, "channel_not_found")
    run_id = await from_the_modal(harness)
    [dm] = await fake.await_(lambda: fake.dms("U0ALICE"), 20, "a DM to Alice")
    said = dm.read()
    assert f"I couldn't post the result card of run *#{run_id}* in <#{GONE}>: {WHY}." in said
    assert "Check `slack.channel` in the customer's config" in said
    assert f"<https://hub.example/runs/{run_id}|open it in the browser>" in said
    events = await timeline(harness, run_id)
    assert [e.type for e in events].count("delivery_failed") == 1

    async with browser(harness) as web:
        page = html.unescape(await (await web.get(f"/runs/{run_id}")).text())
        assert LINE in page and WHY in page
        assert "WIB" in page.split(LINE)[1][:400]  # when, in the customer's zone
        board = html.unescape(await (await web.get("/")).text())
        assert "1 Slack delivery failed in the last 24 h" in board
        assert f"card of #{run_id} to {GONE} · channel_not_found — {WHY}" in board
        ready = await web.get("/readyz")  # the hub still works: a refused card is no outage
        assert ready.status == 200 and (await ready.json())["ready"] is True

    terminal = render_run(await harness.runs.get(run_id, events=True), ARYANOBLE.tz, "Aryanoble")
    [line] = [x for x in terminal.splitlines() if "Delivery failed" in x]
    assert line.startswith("⚠️ ") and " WIB · " + LINE in line and "`slack.channel`" in line


async def test_it_shows_a_refused_card_on_monitor_status(harness: Harness) -> None:
    harness.fake.refuse(GONE, "channel_not_found")
    run_id = await from_the_modal(harness)
    await timeline(harness, run_id)
    status = await harness.fake.acommand(f"status {run_id}")
    assert LINE in status.read() and WHY in status.read()


@pytest.mark.parametrize("error", sorted(PERMANENT_ERRORS))
def test_it_has_plain_words_and_a_next_step_for_every_error_it_gives_up_on(error: str) -> None:
    words = delivery.explain(error, what="card post", ref="card:1842", run_id=1842)
    assert words.reason and words.fix
    assert not words.reason.startswith("Slack refused the card")  # not the catch-all
    said = validate.all_text(delivery.notice(1842, {"what": "card post", **vars(words)}))
    assert validate.message_problems(delivery.notice(1842, vars(words))) == []
    assert "#1842" in said and "/monitor status 1842" in said


async def test_it_answers_a_slash_command_whose_card_is_refused_through_its_reply(
    harness: Harness,
) -> None:
    fake = harness.fake
    fake.refuse("C0OPS", "invalid_blocks")
    ack = await fake.acommand("run arbel budget")
    [told] = await fake.await_(lambda: fake.replies(ack), 20, "the reply about the card")
    assert told["response_type"] == "ephemeral"
    assert "couldn't post the result card of run *#1* in <#C0OPS>" in told["text"]
    assert "bug in Monitoring Hub: report it with ref `card:1`" in told["text"]
    assert fake.dms("U0ALICE") == []
    [event] = [e for e in await timeline(harness, 1) if e.type == "delivery_failed"]
    assert (event.data["error"], event.data["told"]) == ("invalid_blocks", "reply")


async def test_it_writes_a_refused_digest_on_the_runs_timeline_and_the_runboard_only(
    harness: Harness,
) -> None:
    fake = harness.fake
    fake.refuse(GONE, "channel_not_found")
    plan = harness.hub.catalog.plan("arbel", ["budget"])
    run, _ = await harness.runs.submit(
        Submit(
            plan,
            "schedule:daily",
            Source.SCHEDULE,
            channel_id=GONE,
            extra={"schedule": "daily"},
        )
    )
    await finished(harness, run.id)
    assert await harness.hub.digests.enqueue(run.id)
    harness.slack.deliverer.poke()
    events = await timeline(harness, run.id)
    [event] = [e for e in events if e.type == "delivery_failed"]
    assert (event.data["what"], event.data["told"]) == ("digest", None)
    assert fake.dms("U0ALICE") == [] and fake.cards(run.id) == []
    async with browser(harness) as web:
        board = await (await web.get("/")).text()
    assert f"digest of #{run.id} to {GONE} · channel_not_found" in board


async def test_it_writes_nothing_when_slack_is_only_busy_or_down_for_a_while(
    harness: Harness,
) -> None:
    fake = harness.fake
    fake.rate_limit(["chat.postMessage"], times=2, retry_after=0.5)
    fake.outage(1.5)
    run_id = await from_the_modal(harness, "C0OPS")
    await fake.await_(lambda: fake.cards(run_id), 30, "the card after the trouble")
    events = await timeline(harness, run_id)
    assert "delivery_failed" not in [e.type for e in events]
    assert fake.dms("U0ALICE") == []
    async with browser(harness) as web:
        board = await (await web.get("/")).text()
    assert "failed in the last 24 h" not in board


async def test_mhub_status_shows_a_refused_card(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    catalog = load_catalog(ROOT / "configs" / "demo")
    plan = catalog.plan("demo")
    run, _ = await RunService(db).submit(Submit(plan, "U0ALICE", Source.MODAL, channel_id=GONE))
    card = {"text": "queued", "blocks": [section("queued", "text")]}
    await Outgoing(db).put_card(run.id, GONE, card)
    with FakeSlack(channels=[]) as fake:
        fake.refuse(GONE, "channel_not_found")
        client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
        await Deliverer(db, client).deliver_due()
    env = demo_env("http://127.0.0.1:9", tmp_path, DATABASE_URL=database_url)
    shown = await asyncio.to_thread(mhub, env, "status", str(run.id))
    assert shown.returncode == 0, shown.stderr
    assert f" WIB · {LINE} — {WHY}" in shown.stdout
