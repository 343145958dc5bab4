"""Routing through the hub as ``mhub serve`` wires it (``app.main.build``), on each database:
a critical finding that a scheduled run finds pages the fake PagerDuty and reaches the webhook
receiver once; acknowledging it acknowledges the incident; the next run that no longer sees it
resolves it — one incident, one dedup key; and a refused event shows on ``/readyz`` and the
runboard without failing readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from app.catalog import Catalog
from app.db import Database
from app.main import Hub, build, routing_note, tasks_of
from app.models import Finding, Notice
from app.settings import Settings
from app.web import create_app
from app.web.metrics import HubMetrics
from tests.engine.support import wait_until
from tests.fakehooks import FakePagerDuty, FakeReceiver
from tests.notify.support import HOOK_PATH, HOOK_SECRET, PD_KEY, UNKNOWN_KEY, routing
from tests.schedules.support import SEVEN_WIB, Clock, customer
from tests.schedules.test_digests import FAST, Estate
from tests.web.test_api import samples

KEY_ENV, URL_ENV, SECRET_ENV = "PD_KEY_HUBTEST", "HOOK_URL_HUBTEST", "HOOK_SECRET_HUBTEST"


@asynccontextmanager
async def routed_hub(
    db: Database, estate: Estate, pagerduty: FakePagerDuty, receiver: FakeReceiver
) -> AsyncIterator[Hub]:
    settings = Settings(HUB_PAGERDUTY_EVENTS_URL=pagerduty.events_url)
    routed = customer(accounts=("arbel",)).model_copy(
        update={"routing": routing(KEY_ENV, hooks=[(URL_ENV, SECRET_ENV)])}
    )
    cat = Catalog([routed])
    async with build(
        settings, cat, db=db, registry={"http": estate}, executor=FAST, slack=False,
        clock=Clock(SEVEN_WIB),
    ) as hub:  # fmt: skip
        yield hub


async def fire(hub: Hub) -> None:
    """Tomorrow's daily run, to its end."""
    clock = hub.scheduler.clock
    assert isinstance(clock, Clock)
    clock.advance(days=1)
    run = await hub.scheduler.tick("aryanoble", "daily")
    assert run is not None
    await hub.executor.run_until_done(run.id)


def holds(items: list[Any], n: int) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return len(items) >= n

    return probe


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, receiver: FakeReceiver) -> None:
    monkeypatch.setenv(KEY_ENV, PD_KEY)
    monkeypatch.setenv(URL_ENV, receiver.url + HOOK_PATH)
    monkeypatch.setenv(SECRET_ENV, HOOK_SECRET)


@pytest.mark.usefixtures("env")
async def test_a_critical_finding_pages_once_is_acknowledged_and_resolves(
    db: Database, pagerduty: FakePagerDuty, receiver: FakeReceiver
) -> None:
    estate = Estate()
    estate.hot.add("arbel")
    async with routed_hub(db, estate, pagerduty, receiver) as hub:
        stop = asyncio.Event()
        tasks = tasks_of(hub, stop, web=False)
        assert {"notify", "routing"} <= set(tasks)
        notify = asyncio.create_task(tasks["notify"]())
        try:
            await fire(hub)
            await wait_until(holds(pagerduty.events, 1))
            await fire(hub)  # seen again: nothing new
            async with db.read() as session:
                found = (await session.execute(select(Finding))).scalar_one()
            await hub.answers.acknowledge("aryanoble", [found.id], "U0ALICE", {})
            await wait_until(holds(pagerduty.events, 2))
            estate.hot.clear()
            await fire(hub)
            await wait_until(holds(pagerduty.events, 3))
            await wait_until(holds(receiver.requests, 3))
        finally:
            stop.set()
            await notify
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "acknowledge", "resolve"]
    assert len({e["dedup_key"] for e in pagerduty.events}) == 1
    assert pagerduty.events[0]["payload"]["severity"] == "critical"
    assert "api answered 503" in pagerduty.events[0]["payload"]["summary"]
    assert [r.json["action"] for r in receiver.requests] == ["trigger", "acknowledge", "resolve"]
    assert receiver.requests[1].json["by"] == "U0ALICE"


@pytest.mark.usefixtures("env")
async def test_a_refused_event_shows_on_readyz_and_the_runboard_without_failing_it(
    db: Database,
    pagerduty: FakePagerDuty,
    receiver: FakeReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, UNKNOWN_KEY)  # well-formed, but no service has it
    estate = Estate()
    estate.hot.add("arbel")
    async with routed_hub(db, estate, pagerduty, receiver) as hub:
        await fire(hub)
        await hub.notifier.deliver_due()
        async with db.read() as session:
            statuses = {
                n.destination: (n.status, n.last_error)
                for n in (await session.execute(select(Notice))).scalars()
            }
        status, error = statuses["pagerduty"]
        assert status == "failed" and KEY_ENV in (error or "") and UNKNOWN_KEY not in (error or "")
        assert statuses["webhook:0"][0] == "sent"
        site = create_app(
            db=db, runs=hub.runs, catalog=hub.catalog, metrics=HubMetrics(),
            notes={"routing": routing_note(db)},
        )  # fmt: skip
        async with TestClient(TestServer(site)) as client:
            ready = await client.get("/readyz")
            body = await ready.json()
            assert ready.status == 200 and body["ready"] is True
            assert "1 PagerDuty or webhook event refused for good" in body["notes"]["routing"]
            board = await (await client.get("/")).text()
            text = await (await client.get("/metrics")).text()
    assert samples(text, "mhub_notices") == {
        '{destination="pagerduty",status="pending"}': 0,
        '{destination="webhook",status="pending"}': 0,
        '{destination="pagerduty",status="failed"}': 1,
        '{destination="webhook",status="failed"}': 0,
    }
    assert samples(text, "mhub_oldest_pending_notice_seconds") == {"": 0}
    assert "1 PagerDuty or webhook event failed in the last 24 h" in board
    assert KEY_ENV in board and UNKNOWN_KEY not in board
