"""Slack deliveries that failed for good, on the web view: counted on the runboard for the last
24 hours with the latest named, and on the run page above its timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from app.db import Database
from app.engine import runboard
from app.engine.events import Event, add_event
from app.models import Outbox
from blocks import delivery
from tests.web.sample import CATALOG, NOW, Estate
from tests.web.test_pages import text_of
from tests.web.test_queries import captured

WHY = delivery.explain("channel_not_found", what="card post", ref="card:1")


async def failed_row(
    db: Database,
    key: str,
    at: datetime,
    *,
    run_id: int | None = None,
    kind: str = "card",
    error: str = "channel_not_found",
    status: str = "failed",
) -> None:
    """An outbox row as the deliverer leaves it when it gives up at ``at``."""
    async with db.write() as session:
        await session.execute(
            insert(Outbox).values(
                dedupe_key=key,
                run_id=run_id,
                kind=kind,
                channel="C0GONE",
                payload={},
                status=status,
                attempts=1,
                version=1,
                sent_version=0,
                last_error=error,
                next_attempt_at=at,
                created_at=at - timedelta(seconds=5),
                updated_at=at,
            )
        )


async def test_it_counts_the_last_days_failed_deliveries_on_the_runboard_and_names_the_latest(
    db: Database, client: TestClient, estate: Estate
) -> None:
    await failed_row(db, f"card:{estate.cancelled}", NOW - timedelta(days=2))  # too old
    await failed_row(db, f"digest:{estate.failed}", NOW - timedelta(hours=3), kind="digest")
    await failed_row(db, f"card:{estate.hot}", NOW - timedelta(hours=1), run_id=estate.hot)
    await failed_row(db, "card:pending", NOW, status="pending", error="ratelimited")
    page = text_of(await (await client.get("/")).text())
    assert "⚠️ 2 Slack deliveries failed in the last 24 h · latest yesterday 23:05 UTC" in page
    assert (
        f"card of #{estate.hot} to C0GONE · channel_not_found — {WHY.reason}: {WHY.fix}"
    ) in page


async def test_it_says_nothing_about_deliveries_when_none_failed(client: TestClient) -> None:
    assert "Slack deliveries failed" not in text_of(await (await client.get("/")).text())


async def test_it_names_the_latest_failure_only_to_those_who_may_see_its_customer(
    db: Database, estate: Estate
) -> None:
    await failed_row(db, f"card:{estate.hot}", NOW - timedelta(hours=1), run_id=estate.hot)
    board = await runboard.read(db, list(CATALOG.customers), NOW)
    assert board.failed.count == 1 and board.failed.latest is not None
    assert board.failed.latest.customer_id == "demo"
    assert board.visible_to({"demo"}).failed == board.failed
    hidden = board.visible_to({"billing"}).failed
    assert hidden.count == 1 and hidden.latest is None


async def test_it_reads_failed_deliveries_through_the_outbox_index(db: Database) -> None:
    if not db.is_sqlite:
        return  # the plans are checked on SQLite, like the other listing queries
    for n in range(5):
        await failed_row(db, f"card:x{n}", NOW - timedelta(hours=n))
    with captured(db) as statements:
        await runboard.read(db, list(CATALOG.customers), NOW)
    mine = [(sql, params) for sql, params in statements if "FROM outbox" in sql]
    assert len(mine) == 2  # the count, and the latest
    async with db.reader.connect() as conn:
        for sql, params in mine:
            plan = " / ".join(
                row[-1] for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
            assert "ix_outbox_due" in plan and "SCAN outbox" not in plan, plan
            assert "TEMP B-TREE" not in plan, plan


async def test_it_shows_a_failed_delivery_above_the_run_and_in_its_timeline(
    db: Database, client: TestClient, estate: Estate
) -> None:
    data: dict[str, Any] = {
        "what": "card update",
        "channel": "C0DEMO0001",
        "error": "message_not_found",
        **vars(
            delivery.explain("message_not_found", what="card update", ref="x", run_id=estate.hot)
        ),
        "ref": f"card:{estate.hot}",
        "told": "dm",
    }
    async with db.write() as session:
        await add_event(session, db, estate.hot, Event.DELIVERY_FAILED, "slack", **data)
    page = text_of(await (await client.get(f"/runs/{estate.hot}")).text())
    line = "Delivery failed · card update to C0DEMO0001 · message_not_found — the posted card"
    assert page.count(line) == 2  # at the top, and in the timeline
    head, timeline = page.split("Timeline", 1)
    assert line in head and f"/monitor status {estate.hot}` shows its latest state" in head
    assert "⚠️ " + line in timeline


async def test_a_monthly_report_that_failed_names_its_customer_and_what_to_do(
    db: Database, client: TestClient
) -> None:
    from app.slack.reports import refusal

    payload = {"customer": "demo", "month": "2026-10", "channel": "C0GONE"}
    error = refusal("not_in_channel", payload)
    await failed_row(db, "report:demo:monthly:2026-10", NOW, kind="report", error=error)
    page = text_of(await (await client.get("/")).text())
    assert "⚠️ 1 Slack delivery failed in the last 24 h" in page
    assert "the app is not a member of C0GONE; invite it with" in page
    assert "mhub report demo --month 2026-10 --pdf report.pdf" in page
    assert "retry the run" not in page
