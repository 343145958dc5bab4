"""Slack names instead of ids on the web pages, asked of a fake Slack that speaks the real Web
API (``users.info``, ``conversations.info``) through the hub's own Slack client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient

from app.db import Database
from app.engine.runs import RunService
from app.slack.directory import channel_name, user_name
from app.web import create_app
from app.web.metrics import HubMetrics
from app.web.names import Namer, Names, named
from tests.fakeslack.server import BOT_TOKEN, FakeSlack
from tests.web.sample import CATALOG, NOW, Estate
from tests.web.test_findings_page import seed
from tests.web.test_pages import text_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("U0ALICE", "Alice Example", "alice")
        fake.add_user("U0BOB", "Bob Builder")  # no display name: the full name
        fake.add_channel("C0DEMO0001", "demo-retail")
        yield fake
        assert fake.violations == []


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def serve(db: Database, slack: FakeSlack, clock: Clock) -> TestClient:
    bot = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    names = Names(user_name(bot), channel_name(bot), clock=clock)
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=CATALOG,
        metrics=HubMetrics(),
        names=names,
        board_cache_s=0,
        clock=lambda: NOW,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def web(
    db: Database, estate: Estate, slack: FakeSlack, clock: Clock
) -> AsyncIterator[TestClient]:
    client = await serve(db, slack, clock)
    yield client
    await client.close()


async def page(web: TestClient, path: str) -> str:
    response = await web.get(path)
    assert response.status == 200, path
    return text_of(await response.text())


async def test_it_shows_people_and_channels_by_their_slack_names(
    web: TestClient, estate: Estate
) -> None:
    run = await page(web, f"/runs/{estate.hot}")
    assert "@alice" in run and "U0ALICE" not in run
    cancelled = await page(web, f"/runs/{estate.cancelled}")
    assert "Cancelled by @Bob Builder" in cancelled and "U0BOB" not in cancelled
    for path in ("/", "/runs", "/customers/demo"):
        shown = await page(web, path)
        assert "@alice" in shown and "U0ALICE" not in shown, path
    customer = await page(web, "/customers/demo")
    assert "Slack channel #demo-retail" in customer and "C0DEMO0001" not in customer


async def test_it_shows_who_answered_a_finding_by_name(
    db: Database, slack: FakeSlack, clock: Clock
) -> None:
    await seed(db)
    web = await serve(db, slack, clock)
    try:
        found = await page(web, "/customers/demo/findings")
    finally:
        await web.close()
    assert "acknowledged by @alice" in found and "snoozed by @Bob Builder" in found
    assert "U0ALICE" not in found and "U0BOB" not in found
    assert "muted by @U0DAVE" in found  # someone Slack does not know: the id


async def test_it_shows_the_id_of_someone_slack_does_not_know(
    web: TestClient, slack: FakeSlack
) -> None:
    with slack._lock:
        del slack.users["U0ALICE"]
    for _ in range(3):
        assert "@U0ALICE" in await page(web, "/runs")
    asked = [c for c in slack.calls_of("users.info") if c.params.get("user") == "U0ALICE"]
    assert [c.error for c in asked] == ["user_not_found"]  # asked once, not on every page


async def test_pages_loading_at_once_ask_slack_once_per_id(
    web: TestClient, slack: FakeSlack, estate: Estate
) -> None:
    paths = ["/", "/runs", f"/runs/{estate.hot}", "/customers/demo"] * 3
    shown = await asyncio.gather(*(page(web, p) for p in paths))
    assert all("@alice" in s for s in shown)
    asked = [c.params.get("user") for c in slack.calls_of("users.info")]
    assert {"U0ALICE", "U0BOB"} <= set(asked) and len(asked) == len(set(asked))
    channels = [c.params.get("channel") for c in slack.calls_of("conversations.info")]
    assert channels == ["C0DEMO0001"]


async def test_it_shows_ids_while_slack_is_down_and_names_once_it_is_back(
    web: TestClient, slack: FakeSlack, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    slack.outage(3600)
    assert "@U0ALICE" in await page(web, "/runs")
    calls = len(slack.calls)
    assert "@U0ALICE" in await page(web, "/runs")
    assert len(slack.calls) == calls  # not asked again on every page
    assert "could not ask Slack the name of U0ALICE" in caplog.text
    slack.end_outage()
    clock.now += 3600  # past the wait after a failure
    assert "@alice" in await page(web, "/runs")


async def test_it_keeps_a_bounded_number_of_names_for_a_while(clock: Clock) -> None:
    asked: list[str] = []

    async def user(ref: str) -> str | None:
        asked.append(ref)
        return ref.lower()

    async def channel(ref: str) -> str | None:
        asked.append(ref)
        return "ops"

    names = Names(user, channel, size=2, ttl_s=60, clock=clock)
    assert await names.resolve(["U0A", "C0OPS", "cli", "schedule:daily"]) == {
        "U0A": "@u0a",
        "C0OPS": "#ops",
    }  # neither a user's nor a channel's id: never asked about
    await names.resolve(["U0A", "C0OPS"])
    assert sorted(asked) == ["C0OPS", "U0A"]  # kept
    asked.clear()
    for one in ("U0B", "U0A", "U0C", "U0A"):  # two at most: the least recently used goes
        await names.resolve([one])
    assert asked == ["U0B", "U0C"]
    await names.resolve(["U0B"])
    assert asked == ["U0B", "U0C", "U0B"]
    clock.now += 61
    await names.resolve(["U0B"])
    assert asked[-1] == "U0B" and len(asked) == 4  # asked again once its time is up


async def test_a_page_whose_names_are_kept_is_built_once_and_asks_nobody(clock: Clock) -> None:
    asked: list[str] = []

    async def user(ref: str) -> str | None:
        asked.append(ref)
        return "alice"

    names = Names(user, user, clock=clock)
    builds: list[str] = []

    def build(namer: Namer) -> str:
        shown = f"{namer('U0ALICE') or 'U0ALICE'} ran it, {namer('cli') or 'cli'}"
        builds.append(shown)
        return shown

    assert await named(names, build) == "@alice ran it, cli"
    assert builds == ["U0ALICE ran it, cli", "@alice ran it, cli"] and asked == ["U0ALICE"]
    builds.clear()
    assert await named(names, build) == "@alice ran it, cli"
    assert builds == ["@alice ran it, cli"] and asked == ["U0ALICE"]  # once, from what is kept
    assert await named(None, build) == "U0ALICE ran it, cli"  # without Slack: the ids
