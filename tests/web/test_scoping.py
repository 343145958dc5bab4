"""Signed in with Slack, the web view shows each person only the customers the access rules
let them see: every page and API path as an outsider, a one-customer user, an admin and a
member of a granted channel (asked of the fake Slack), each read audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from app.catalog import Catalog
from app.config import Access, SlackSettings
from app.db import Database
from app.engine import runboard
from app.engine.runs import RunService
from app.models import RunEvent
from app.slack.directory import channel_members
from app.web import create_app
from app.web.metrics import HubMetrics
from app.web.people import People
from app.web.session import Sessions, SignedIn
from app.web.signin import SlackSignIn
from tests.fakeslack.server import BOT_TOKEN, TEAM, FakeSlack
from tests.web.sample import BILLING, DEMO, NOW, Estate, plant

SECRET = "test-client-secret"
GRANTED = "C0GRANTED1"
DEMO_NAME, BILLING_NAME = DEMO.name, BILLING.name

CATALOG = Catalog(
    [
        DEMO.model_copy(
            update={
                "slack": SlackSettings(
                    channel=DEMO.slack.channel,
                    access=Access(users=("U0ONE",), channels=(GRANTED,), admins=("U0ADMIN",)),
                )
            }
        ),
        BILLING.model_copy(
            update={
                "slack": SlackSettings(
                    channel=BILLING.slack.channel, access=Access(admins=("U0ADMIN",))
                )
            }
        ),
    ]
)


@dataclass(frozen=True)
class Person:
    user: str
    sees: frozenset[str]


OUTSIDER = Person("U0OUT", frozenset())
ONE = Person("U0ONE", frozenset({"demo"}))
ADMIN = Person("U0ADMIN", frozenset({"demo", "billing"}))
MEMBER = Person("U0CHAN", frozenset({"demo"}))
PEOPLE = [OUTSIDER, ONE, ADMIN, MEMBER]


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.set_members(GRANTED, ["U0CHAN", "U0OTHER"])
        yield fake


@pytest.fixture
async def web_client(db: Database, slack: FakeSlack) -> AsyncIterator[TestClient]:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    sessions = Sessions(SECRET, secure=False)

    async def team() -> str:
        return TEAM

    flow = SlackSignIn(
        client_id="1.2",
        client_secret=SECRET,
        public_url="http://127.0.0.1",
        api_url=slack.api_url,
        team=team,
        sessions=sessions,
    )
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=CATALOG,
        metrics=HubMetrics(),
        clock=lambda: NOW,
        sign_in=(flow, People(CATALOG, channel_members(client))),
        board_cache_s=0,
    )
    web_client = TestClient(TestServer(app))
    await web_client.start_server()
    yield web_client
    await web_client.close()


@pytest.fixture
async def estate(db: Database) -> Estate:
    return await plant(db)


def cookie(user: str) -> dict[str, str]:
    response = web.Response()
    Sessions(SECRET, secure=False).start(response, SignedIn(user, TEAM, f"Person {user}"))
    return {"Cookie": f"{Sessions.COOKIE}={response.cookies[Sessions.COOKIE].value}"}


def demo_run(estate: Estate) -> int:
    return estate.hot


def billing_run(estate: Estate) -> int:
    return estate.billing_ok


@pytest.mark.parametrize("person", PEOPLE, ids=lambda p: p.user)
async def test_the_runboard_and_the_runs_list_show_only_their_customers(
    web_client: TestClient, estate: Estate, person: Person
) -> None:
    board = await (await web_client.get("/", headers=cookie(person.user))).text()
    assert (DEMO_NAME in board) == ("demo" in person.sees)
    assert (BILLING_NAME in board) == ("billing" in person.sees)
    assert f"Person {person.user}" in board  # who is signed in, with a way out
    assert 'action="/auth/logout"' in board

    runs = await (await web_client.get("/runs", headers=cookie(person.user))).text()
    assert (DEMO_NAME in runs) == ("demo" in person.sees)
    assert (BILLING_NAME in runs) == ("billing" in person.sees)

    listed = await (await web_client.get("/api/runs", headers=cookie(person.user))).json()
    assert {r["customer"] for r in listed["runs"]} == set(person.sees)


@pytest.mark.parametrize("person", PEOPLE, ids=lambda p: p.user)
async def test_a_customer_they_may_not_see_reads_like_one_that_does_not_exist(
    web_client: TestClient, estate: Estate, person: Person
) -> None:
    runs = {"demo": demo_run(estate), "billing": billing_run(estate)}
    for customer in ("demo", "billing"):
        allowed = customer in person.sees
        paths = [
            f"/customers/{customer}",
            f"/customers/{customer}/findings",
            f"/customers/{customer}/reports/2026-11",
            f"/customers/{customer}/reports?from=2026-11-20&to=2026-11-21",
            f"/customers/{customer}/reports/2026-11.pdf",
            f"/customers/{customer}/reports.zip?from=2026-11-20&to=2026-11-21",
            f"/runs/{runs[customer]}",
            f"/api/runs/{runs[customer]}",
            f"/api/findings?customer={customer}",
            f"/api/blind-spots?customer={customer}",
            f"/api/maintenance?customer={customer}",
            f"/api/customers/{customer}/reports/2026-11",
            f"/runs?customer={customer}",
        ]
        for path in paths:
            response = await web_client.get(path, headers=cookie(person.user))
            body = (await response.read()).decode(errors="replace")  # a PDF or zip too
            if path.startswith("/runs?"):  # a filter: their runs of it, or none
                assert response.status == 200
                assert (runs[customer] and f"/runs/{runs[customer]}" in body) == allowed, path
                continue
            assert response.status == (200 if allowed else 404), (path, response.status)
            if not allowed:
                assert DEMO_NAME not in body and BILLING_NAME not in body, path
                if path.startswith("/api/"):
                    assert response.content_type == "application/problem+json"
    unknown = await web_client.get("/customers/nosuch", headers=cookie(person.user))
    assert unknown.status == 404


async def test_lists_of_every_customer_are_cut_to_theirs(
    web_client: TestClient, estate: Estate
) -> None:
    spots = await (await web_client.get("/api/blind-spots", headers=cookie("U0ONE"))).json()
    assert {s["customer"] for s in spots["blind_spots"]} <= {"demo"}
    windows = await (await web_client.get("/api/maintenance", headers=cookie("U0ONE"))).json()
    assert {w["customer"] for w in windows["active"] + windows["upcoming"]} <= {"demo"}


async def test_every_read_is_audited_and_moves_no_live_page(
    web_client: TestClient, estate: Estate, db: Database
) -> None:
    before = await runboard.version(db)
    assert (await web_client.get("/customers/demo", headers=cookie("U0ONE"))).status == 200
    assert (await web_client.get("/customers/billing", headers=cookie("U0ONE"))).status == 404
    assert (await web_client.get("/api/runs", headers=cookie("U0CHAN"))).status == 200
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(RunEvent).where(RunEvent.type == "read").order_by(RunEvent.id)
            )
        ).all()
    seen = [(r.actor, r.data["customer"], r.data["allowed"], r.data["via"], r.run_id) for r in rows]
    assert seen == [
        ("U0ONE", "demo", True, "web", None),
        ("U0ONE", None, False, "web", None),
        ("U0CHAN", "demo", True, "api", None),
    ]
    assert "/customers/billing" in rows[1].data["asked"]
    assert rows[0].data["reason"] == "slack"
    # Reading changes nothing on any page: open pages do not reload for it.
    assert await runboard.version(db) == before


async def test_anonymous_browsers_are_sent_to_sign_in_and_api_calls_get_401(
    web_client: TestClient, estate: Estate
) -> None:
    page = await web_client.get("/customers/demo?x=1", allow_redirects=False)
    assert page.status == 302
    assert page.headers["Location"].startswith("/auth/login?next=")
    assert "customers/demo" in page.headers["Location"]
    api = await web_client.get("/api/runs", allow_redirects=False)
    assert api.status == 401
    assert api.content_type == "application/problem+json"
    problem = await api.json()
    assert problem["status"] == 401 and "mhub token create" in problem["detail"]
    forged = await web_client.get("/api/runs", headers={"Cookie": f"{Sessions.COOKIE}=forged"})
    assert forged.status == 401


async def test_machines_keep_their_paths_without_a_browser_redirect(
    web_client: TestClient, estate: Estate
) -> None:
    assert (await web_client.get("/healthz", allow_redirects=False)).status == 200
    # The test client is on loopback: /metrics and /readyz answer it without a password.
    assert (await web_client.get("/metrics", allow_redirects=False)).status == 200
    assert (await web_client.get("/readyz", allow_redirects=False)).status == 200
    # ...but not what a reverse proxy on this machine passes on from elsewhere.
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    refused = await web_client.get("/metrics", headers=proxied, allow_redirects=False)
    assert refused.status == 403
    assert "HUB_WEB_AUTH" in (await refused.json())["detail"]


async def test_someone_who_leaves_the_channel_stops_seeing_its_customer(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    now = [0.0]
    people = People(CATALOG, channel_members(client), ttl_s=60, clock=lambda: now[0])
    assert await people.customers("U0CHAN") == {"demo"}
    slack.set_members(GRANTED, ["U0OTHER"])
    try:
        assert await people.customers("U0CHAN") == {"demo"}  # cached for a minute
        now[0] = 61
        assert await people.customers("U0CHAN") == frozenset()
    finally:
        slack.set_members(GRANTED, ["U0CHAN", "U0OTHER"])


async def test_a_channel_slack_cannot_list_grants_nothing(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    catalog = Catalog(
        [DEMO.model_copy(update={"slack": SlackSettings(access=Access(channels=("C0UNKNOWN1",)))})]
    )
    people = People(catalog, channel_members(client))
    assert await people.customers("U0CHAN") == frozenset()
    assert "C0UNKNOWN1" in caplog.text


async def test_many_pages_at_once_ask_slack_once_per_channel() -> None:
    asked: list[str] = []

    async def members(channel: str) -> frozenset[str]:
        asked.append(channel)
        await asyncio.sleep(0.01)
        return frozenset({"U0CHAN"})

    people = People(CATALOG, members)
    seen = await asyncio.gather(*(people.customers("U0CHAN") for _ in range(20)))
    assert seen == [{"demo"}] * 20
    assert asked == [GRANTED]
