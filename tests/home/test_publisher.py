"""The Home publisher on a real database, with a recording Web API client."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from app.access import Access
from app.db import Database
from app.engine import blind, maintenance
from app.models import Run
from app.slack.home import HomeTab
from tests.fakeslack import validate
from tests.handlers.conftest import CATALOG


class Recorder:
    """Stands in for the Web API client: keeps what was published, and when it arrived."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.arrived: list[float] = []

    async def views_publish(self, *, user_id: str, view: dict[str, Any]) -> None:
        self.published.append((user_id, view))
        self.arrived.append(time.monotonic())


class SlowToAudit(Access):
    """The audit row of the first opening takes a second to write (a cold database)."""

    async def visible(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(1.0)
        return await super().visible(*args, **kwargs)


async def test_it_refreshes_the_heartbeat_of_a_running_run_without_any_change(
    db: Database,
) -> None:
    now = datetime.now(UTC)
    async with db.write() as session:
        await session.execute(
            insert(Run).values(
                customer_id="aryanoble",
                requested_by="U0ALICE",
                channel_id="C0OPS",
                source="slash",
                targets=[{"account": "arbel", "check": "rds"}],
                params={},
                status="running",
                attempt=1,
                max_attempts=3,
                created_at=now,
                started_at=now,
                heartbeat_at=now,
            )
        )
    client = Recorder()
    tab = HomeTab(
        client,  # type: ignore[arg-type]
        db,
        CATALOG,
        Access(db),
        min_gap_s=0.2,
        refresh_s=0.4,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(tab.serve(stop))
    try:
        tab.opened("U0ALICE")
        await asyncio.sleep(1.5)  # no run changes at all
    finally:
        stop.set()
        await task
    assert len(client.published) >= 3
    assert all(user == "U0ALICE" for user, _ in client.published)
    assert "▶ *#1* aryanoble / arbel · 0 of 1 · alive" in validate.all_text(client.published[-1][1])


async def test_it_keeps_two_publishes_2_s_apart_even_when_the_first_was_slow_to_prepare(
    db: Database,
) -> None:
    client = Recorder()
    tab = HomeTab(client, db, CATALOG, SlowToAudit(db))  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(tab.serve(stop))
    try:
        tab.opened("U0ALICE")
        for run_id in range(30):  # a run changes every 0.1 s while the first publish is prepared
            tab.changed(run_id)
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.2)
    finally:
        stop.set()
        await task
    gaps = [b - a for a, b in itertools.pairwise(client.arrived)]
    assert len(client.arrived) >= 2
    assert min(gaps) >= 1.95  # counted from the request, not from when it was decided


async def test_it_lists_the_viewers_blind_spots_and_windows_first_read_from_the_database(
    db: Database,
) -> None:
    now = datetime.now(UTC)
    failed = blind.Sighting("arbel", "rds", now, False, "role", "cannot assume the role")
    async with db.write() as session:  # two looks in a row (runs 1 and 2) could not
        await blind.keep(session, db, "aryanoble", 1, [failed], now)
        await blind.keep(session, db, "aryanoble", 2, [failed], now)
    await maintenance.start(
        db, "aryanoble", name="Failover test", accounts=["arbel"], checks=None,
        starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1),
        reason="quarterly drill", by="U0ALICE", audit={},
    )  # fmt: skip
    client = Recorder()
    tab = HomeTab(client, db, CATALOG, Access(db), min_gap_s=0.2)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(tab.serve(stop))
    try:
        tab.opened("U0ALICE")
        tab.opened("U0NOBODY")  # may see no customer
        for _ in range(100):
            if len({user for user, _ in client.published}) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    views = {user: view for user, view in client.published}
    mine = views["U0ALICE"]["blocks"]
    assert mine[1]["block_id"] == "home_blind"
    assert mine[1]["text"]["text"].startswith("🕳️ *Not checked:* Aryanoble · arbel · rds since ")
    text = validate.all_text(views["U0ALICE"])
    assert "(now) 🛠️ *Failover test* · arbel · every check · " in text
    nobody = validate.all_text(views["U0NOBODY"])
    assert "Not checked" not in nobody and "Failover test" not in nobody
