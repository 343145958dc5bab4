"""Maintenance windows in the web view, on each database: those open now and those opening
within 7 days, on the runboard (every customer the view shows, below the blind spots) and the
customer's page (its own), in the customer's zone; windows started from Slack say who started
them; ended and expired ones are gone; nothing of a customer the view does not show; and
``/api/maintenance`` as JSON."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from app.catalog import Catalog
from app.config import Customer, MaintenanceWindow
from app.db import Database
from app.engine import maintenance
from app.models import Maintenance
from app.web import queries
from app.web.metrics import HubMetrics
from tests.web.conftest import start
from tests.web.sample import BILLING, DEMO, NOW
from tests.web.test_blind_spots import look
from tests.web.test_pages import text_of
from tests.web.test_queries import captured

# NOW is Sat 21 Nov 2026 00:05 UTC: 07:05 WIB in Jakarta (Demo Retail), 00:05 GMT in London.


def yaml_window(**values: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(values)


WEEKLY = yaml_window(
    name="RDS upgrades",
    accounts=["shop-prod"],
    checks=["rds"],
    cron="0 6 * * SAT",  # 06:00-09:00 WIB: open now, and again next Saturday
    duration="3h",
    reason="Weekly engine patching",
)
MIGRATION = yaml_window(
    name="Data-centre migration", start="2026-11-22 22:00", end="2026-11-23 04:00"
)
FAILOVER = yaml_window(
    name="Failover test",
    accounts=["shop-prod", "shop-staging"],
    checks=["rds", "budget"],
    start="2026-11-24 02:00",
    end="2026-11-24 04:00",
    reason="Quarterly drill",
)
PAST = yaml_window(name="Last move", start="2026-11-20 01:00", end="2026-11-20 03:00")
LATER = yaml_window(name="Year-end freeze", start="2026-12-12 22:00", end="2026-12-13 04:00")

DEMO_MAINT = DEMO.model_copy(update={"maintenance": (WEEKLY, MIGRATION, FAILOVER, PAST, LATER)})
CATALOG = Catalog([DEMO_MAINT, BILLING])

WEEKLY_LINE = (
    "🛠️ Maintenance: RDS upgrades · Demo Retail · shop-prod · rds · until 09:00 WIB"
    " — Weekly engine patching · in the YAML"
)
SLACK_LINE = (
    "🛠️ Maintenance: Maintenance of billing-prod · Billing Co · billing-prod · every check"
    " · until 02:05 GMT — Engine upgrade · started by @U0ALICE yesterday 23:35 GMT from Slack"
)
UPCOMING_LINES = [
    "🛠️ Upcoming: Data-centre migration · Demo Retail · every account · every check"
    " · opens tomorrow 22:00 WIB – Mon 23 Nov 04:00 WIB · in the YAML",
    "🛠️ Upcoming: Failover test · Demo Retail · shop-prod, shop-staging · rds, budget"
    " · opens Tue 24 Nov 02:00–04:00 WIB — Quarterly drill · in the YAML",
    "🛠️ Upcoming: RDS upgrades · Demo Retail · shop-prod · rds"
    " · opens Sat 28 Nov 06:00–09:00 WIB — Weekly engine patching · in the YAML",
]
BOARD_LINES = [
    # The runboard spans customers: every time in UTC (a customer's page: in its zone).
    "🛠️ Maintenance: RDS upgrades · Demo Retail · shop-prod · rds · until 02:00 UTC"
    " — Weekly engine patching · in the YAML",
    "🛠️ Maintenance: Maintenance of billing-prod · Billing Co · billing-prod · every check"
    " · until 02:05 UTC — Engine upgrade · started by @U0ALICE yesterday 23:35 UTC from Slack",
    "🛠️ Upcoming: Data-centre migration · Demo Retail · every account · every check"
    " · opens tomorrow 15:00–21:00 UTC · in the YAML",
    "🛠️ Upcoming: Failover test · Demo Retail · shop-prod, shop-staging · rds, budget"
    " · opens Mon 23 Nov 19:00–21:00 UTC — Quarterly drill · in the YAML",
    "🛠️ Upcoming: RDS upgrades · Demo Retail · shop-prod · rds"
    " · opens Fri 27 Nov 23:00 UTC – Sat 28 Nov 02:00 UTC — Weekly engine patching · in the YAML",
]


async def begin(
    db: Database, customer: str, opens: timedelta, closes: timedelta, name: str, by: str
) -> maintenance.Window:
    """A window started from Slack ``opens`` after NOW (negative: before) until ``closes``."""
    return await maintenance.start(
        db,
        customer,
        name=name,
        accounts=[f"{customer}-prod"] if customer == "billing" else None,
        checks=None,
        starts_at=NOW + opens,
        ends_at=NOW + closes,
        reason="Engine upgrade",
        by=by,
        audit={"via": "slack", "channel": "C0BILL0001"},
    )


async def seed(db: Database) -> maintenance.Window:
    """Billing Co: one window started from Slack open now, one ended early, one expired;
    another customer's (not configured) open now."""
    hour = timedelta(hours=1)
    started = await begin(
        db, "billing", -timedelta(minutes=30), 2 * hour, "Maintenance of billing-prod", "U0ALICE"
    )
    ended = await begin(db, "billing", -hour, hour, "Ended early", "U0BOB")
    async with db.write() as session:
        await session.execute(
            update(Maintenance)
            .where(Maintenance.id == ended.id)
            .values(ended_by="U0BOB", ended_at=NOW - timedelta(minutes=10))
        )
    await begin(db, "billing", -3 * hour, -hour, "Expired", "U0BOB")
    await begin(db, "former", -hour, hour, "Former customer's", "U0CAROL")
    return started


@pytest.fixture
async def web(db: Database, metrics: HubMetrics) -> AsyncIterator[TestClient]:
    await seed(db)
    client = await start(db, metrics, catalog=CATALOG)
    yield client
    await client.close()


async def html_of(client: TestClient, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200
    return await response.text()


def lines(html: str) -> list[str]:
    """The lines of a page's "Maintenance" block as read, in order (none when it has no block):
    tags dropped without adding space, so words run together where the page runs them."""
    found = re.findall(r'<li class="window [^"]*">(.*?)</li>', html, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", "", item)).split()) for item in found]


async def test_the_runboard_lists_active_then_upcoming_windows_in_utc(
    web: TestClient,
) -> None:
    html = await html_of(web, "/")
    assert lines(html) == BOARD_LINES
    said = " ".join(lines(html))
    for gone in ("Last move", "Year-end freeze", "Ended early", "Expired", "Former"):
        assert gone not in said
    assert html.index('id="s-maintenance"') < html.index('class="stats"')


async def test_it_sits_below_the_blind_spots(db: Database, metrics: HubMetrics) -> None:
    for at in (NOW - timedelta(hours=2), NOW - timedelta(hours=1)):
        await look(db, "demo", "shop-prod", "backup", at, ok=False)
    view = await start(db, metrics, catalog=CATALOG)
    try:
        for path in ("/", "/customers/demo"):
            html = await html_of(view, path)
            assert html.index('id="s-blind"') < html.index('id="s-maintenance"')
    finally:
        await view.close()


async def test_a_customers_page_lists_its_own_windows(web: TestClient) -> None:
    demo = await html_of(web, "/customers/demo")
    assert lines(demo) == [
        line.replace(" · Demo Retail", "") for line in (WEEKLY_LINE, *UPCOMING_LINES)
    ]
    assert demo.index('id="s-maintenance"') < demo.index('id="h-accounts"')
    assert "billing-prod" not in demo

    billing = await html_of(web, "/customers/billing")
    assert lines(billing) == [SLACK_LINE.replace(" · Billing Co", "")]
    assert "Ended early" not in billing and "Expired" not in billing


async def test_it_answers_the_windows_as_json(web: TestClient) -> None:
    started = await (await web.get("/api/maintenance")).json()
    assert list(started) == ["active", "upcoming"]
    weekly, slack = started["active"]
    assert weekly == {
        "customer": "demo",
        "id": None,
        "name": "RDS upgrades",
        "accounts": ["shop-prod"],
        "checks": ["rds"],
        "starts_at": "2026-11-20T23:00:00+00:00",
        "ends_at": "2026-11-21T02:00:00+00:00",
        "reason": "Weekly engine patching",
        "by": None,
        "source": "config",
    }
    assert {k: slack[k] for k in ("customer", "name", "accounts", "checks", "by", "source")} == {
        "customer": "billing",
        "name": "Maintenance of billing-prod",
        "accounts": ["billing-prod"],
        "checks": None,
        "by": "U0ALICE",
        "source": "slack",
    }
    assert isinstance(slack["id"], int)
    assert (slack["starts_at"], slack["ends_at"]) == (
        "2026-11-20T23:35:00+00:00",
        "2026-11-21T02:05:00+00:00",
    )
    assert [(w["customer"], w["name"], w["starts_at"]) for w in started["upcoming"]] == [
        ("demo", "Data-centre migration", "2026-11-22T15:00:00+00:00"),
        ("demo", "Failover test", "2026-11-23T19:00:00+00:00"),
        ("demo", "RDS upgrades", "2026-11-27T23:00:00+00:00"),
    ]

    one = await (await web.get("/api/maintenance?customer=billing")).json()
    assert [w["name"] for w in one["active"]] == ["Maintenance of billing-prod"]
    assert one["upcoming"] == []
    for path in ("/api/maintenance?customer=former", "/api/maintenance?customer=ghost"):
        response = await web.get(path)
        assert response.status == 404 and "Former" not in await response.text()
    response = await web.get("/api/maintenance?customer=Bad%20Id")
    assert response.status == 400 and "is not a customer id" in await response.text()


async def test_it_shows_nothing_of_a_customer_the_view_does_not_show(
    db: Database, metrics: HubMetrics
) -> None:
    await seed(db)
    view = await start(db, metrics, catalog=Catalog([DEMO_MAINT]))
    try:
        board = await html_of(view, "/")
        assert lines(board) == [BOARD_LINES[0], *BOARD_LINES[2:]]
        assert "billing-prod" not in board and "Billing Co" not in board
        body = await (await view.get("/api/maintenance")).json()
        assert {w["customer"] for w in body["active"] + body["upcoming"]} == {"demo"}
        for path in ("/customers/billing", "/api/maintenance?customer=billing"):
            response = await view.get(path)
            assert response.status == 404 and "billing-prod" not in await response.text()
    finally:
        await view.close()


async def test_it_caps_the_lines_and_says_how_many_more(db: Database, metrics: HubMetrics) -> None:
    hourly = yaml_window(name="Snapshots", cron="30 * * * *", duration="10m")
    busy = DEMO.model_copy(update={"maintenance": (hourly,)})
    view = await start(db, metrics, catalog=Catalog([busy]))
    try:
        # From 00:30 UTC today to 23:30 UTC on the 27th: 168 windows in the next 7 days.
        body = await (await view.get("/api/maintenance")).json()
        assert body["active"] == [] and len(body["upcoming"]) == 168

        board = await html_of(view, "/")
        shown = lines(board)
        assert len(shown) == 20
        assert shown[0] == (
            "🛠️ Upcoming: Snapshots · Demo Retail · every account · every check"
            " · opens 00:30–00:40 UTC · in the YAML"
        )
        assert "and 148 more in the next 7 days" in text_of(board)

        page = await html_of(view, "/customers/demo")
        assert len(lines(page)) == 100
        assert "and 68 more in the next 7 days" in text_of(page)
        assert 'href="/api/maintenance?customer=demo"' in page
    finally:
        await view.close()


async def test_it_shows_no_block_when_there_are_no_windows(
    db: Database, metrics: HubMetrics
) -> None:
    await begin(db, "billing", -timedelta(hours=3), -timedelta(hours=1), "Expired", "U0BOB")
    quiet: Customer = DEMO.model_copy(update={"maintenance": (PAST, LATER)})
    view = await start(db, metrics, catalog=Catalog([quiet, BILLING]))
    try:
        for path in ("/", "/customers/demo", "/customers/billing"):
            html = await html_of(view, path)
            assert 'id="s-maintenance"' not in html and "🛠️" not in html
        assert await (await view.get("/api/maintenance")).json() == {"active": [], "upcoming": []}
    finally:
        await view.close()


async def test_it_reads_the_windows_started_from_slack_in_one_statement_through_the_index(
    db: Database,
) -> None:
    await seed(db)
    with captured(db) as statements:
        windows = await queries.maintenance_windows(db, CATALOG.customers.values(), NOW)
    assert [w.name for _, w in windows.active] == ["RDS upgrades", "Maintenance of billing-prod"]
    [(sql, params)] = statements
    assert "FROM maintenance" in sql
    if db.is_sqlite:
        async with db.reader.connect() as conn:
            plan = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            steps = [row[-1] for row in plan]
        assert any("USING INDEX ix_maintenance_customer" in step for step in steps), steps
        assert not any(step == "SCAN maintenance" for step in steps), steps
