"""Blind spots in the web view and on /metrics, on each database: listed first on the runboard
and the customer's page (in the customer's zone, oldest first), never "all OK" beside them,
nothing of a customer the view does not show, nothing of a pair the YAML no longer runs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app.catalog import Catalog
from app.db import Database
from app.engine import blind, coverage
from app.web.metrics import HubMetrics
from tests.web.conftest import start
from tests.web.sample import BILLING, DEMO, NOW, R, insert_run, plant
from tests.web.test_api import samples
from tests.web.test_pages import text_of

SHOP_OK = datetime(2026, 11, 17, 0, 0, tzinfo=UTC)  # Tue 17 Nov 07:00 WIB
BILLING_OK = datetime(2026, 11, 19, 6, 30, tzinfo=UTC)  # Thu 19 Nov 06:30 GMT
CALLS = {
    "backup": "backup:ListBackupJobs",
    "alarms": "cloudwatch:DescribeAlarms",
    "rds": "rds:DescribeDBInstances",
}
SHOP_LINE = (
    "🕳️ Not checked: Demo Retail · shop-prod · backup since Tue 17 Nov 07:00 WIB — "
    "AccessDeniedException on backup:ListBackupJobs; the role needs backup:ListBackupJobs"
)
BILLING_LINE = (
    "🕳️ Not checked: Billing Co · billing-prod · alarms since Thu 19 Nov 06:30 GMT — "
    "AccessDeniedException on cloudwatch:DescribeAlarms; the role needs cloudwatch:DescribeAlarms"
)
NEVER_LINE = "🕳️ Not checked: Demo Retail · shop-prod · alarms since 05:05 WIB"


async def look(
    db: Database, customer: str, account: str, check: str, at: datetime, ok: bool
) -> None:
    """One run that looked at ``account`` × ``check`` at ``at``: it could, or its role was refused
    the check's call; kept in ``sights`` the way the run's end keeps it."""
    call = CALLS[check]
    if ok:
        result = R(account, check, "ok", "all OK", {"resources": []})
    else:
        summary = f"{account}: AccessDeniedException on {call}. Grant it to the role."
        denied = {"reason": "access", "call": call, "code": "AccessDeniedException"}
        result = R(account, check, "error", summary, denied)
    run_id = await insert_run(
        db, customer, [(account, check)], outcome=result.severity,
        created=at - timedelta(seconds=10), results=[result], requested_by="schedule:daily",
    )  # fmt: skip
    seen = blind.sighting(account, check, result.severity, result.summary, result.details, at)
    async with db.write() as session:
        await blind.keep(session, db, customer, run_id, [seen], at)


async def seed(db: Database) -> None:
    """Two blind spots of Demo Retail (one that never looked), one of Billing Co, one pair that
    failed once (not blind yet), and two that are blind but no longer configured."""
    two_fails = (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    for at, ok in ((SHOP_OK, True), *((t, False) for t in two_fails)):
        await look(db, "demo", "shop-prod", "backup", at, ok)
        await look(db, "demo", "shop-staging", "backup", at, ok)  # staging runs rds, budget now
    for at in two_fails:
        await look(db, "demo", "shop-prod", "alarms", at, ok=False)  # never looked
        await look(db, "former", "old-prod", "rds", at, ok=False)  # no such customer any more
    await look(db, "billing", "billing-prod", "alarms", BILLING_OK, ok=True)
    for at in (NOW - timedelta(hours=3), NOW - timedelta(minutes=90)):
        await look(db, "billing", "billing-prod", "alarms", at, ok=False)
    await look(db, "demo", "analytics", "rds", NOW - timedelta(hours=1), ok=True)
    await look(db, "demo", "analytics", "rds", NOW - timedelta(minutes=30), ok=False)


@pytest.fixture
async def web(db: Database, metrics: HubMetrics) -> AsyncIterator[TestClient]:
    """The view on a database whose sights were seeded before the morning's runs (so each
    customer's latest run is the estate's: Billing Co's is all OK)."""
    await seed(db)
    await plant(db)
    client = await start(db, metrics)
    yield client
    await client.close()


async def html_of(client: TestClient, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200
    return await response.text()


def lines(html: str) -> list[str]:
    """The lines of a page's "Not checked" block, in order (none when it has no block)."""
    return [text_of(item) for item in re.findall(r'<li class="blind-spot">(.*?)</li>', html, re.S)]


async def test_it_lists_blind_spots_at_the_top_of_the_runboard_oldest_first_in_utc(
    web: TestClient,
) -> None:
    html = await html_of(web, "/")
    found = lines(html)
    assert len(found) == 3  # not analytics · rds: failed once, an hour after a good look
    # the runboard spans customers: its times are in UTC (a customer's page: in its zone)
    assert found[0] == SHOP_LINE.replace("07:00 WIB", "00:00 UTC")
    assert found[1] == BILLING_LINE.replace("GMT", "UTC")
    assert found[2].startswith(NEVER_LINE.replace("05:05 WIB", "yesterday 22:05 UTC"))
    assert "shop-staging" not in " ".join(found) and "old-prod" not in " ".join(found)
    assert html.index('id="s-blind"') < html.index('class="stats"')  # first on the page


async def test_it_never_says_all_ok_for_a_customer_with_a_blind_spot(web: TestClient) -> None:
    text = text_of(await html_of(web, "/"))
    assert "🕳️ Billing Co" in text and ": 1 not checked" in text
    assert "all OK" not in text
    assert "3 critical (alarms, backup, rds) · 2 warnings (budget, rds) · 2 not checked" in text


async def test_it_shows_a_customers_blind_spots_at_the_top_of_its_pages(web: TestClient) -> None:
    html = await html_of(web, "/customers/billing")
    [line] = lines(html)
    assert line.startswith(
        "🕳️ Not checked: billing-prod · alarms since Thu 19 Nov 06:30 GMT — AccessDeniedException"
    )
    assert html.index('id="s-blind"') < html.index('id="h-accounts"')
    assert "shop-prod" not in html  # another customer's

    demo = await html_of(web, "/customers/demo")
    assert [line.split(" — ")[0] for line in lines(demo)] == [
        "🕳️ Not checked: shop-prod · backup since Tue 17 Nov 07:00 WIB",
        "🕳️ Not checked: shop-prod · alarms since 05:05 WIB",
    ]

    findings = text_of(await html_of(web, "/customers/billing/findings"))
    assert "billing-prod · alarms not checked: what was last seen there may be out of date" in (
        findings
    )


async def test_it_answers_the_blind_spots_as_json(web: TestClient) -> None:
    body = await (await web.get("/api/blind-spots")).json()
    got = [(s["customer"], s["account"], s["check"]) for s in body["blind_spots"]]
    assert got == [
        ("demo", "shop-prod", "backup"),
        ("billing", "billing-prod", "alarms"),
        ("demo", "shop-prod", "alarms"),
    ]
    first = body["blind_spots"][0]
    assert first["since"] == first["last_ok_at"] == "2026-11-17T00:00:00+00:00"
    assert (first["failed"], first["reason"], first["call"]) == (2, "access", CALLS["backup"])
    assert first["why"] == SHOP_LINE.split(" — ")[1]
    never = body["blind_spots"][2]
    assert never["last_ok_at"] is None and never["since"] == never["failing_since"]

    one = await (await web.get("/api/blind-spots?customer=billing")).json()
    assert [s["customer"] for s in one["blind_spots"]] == ["billing"]
    for path in ("/api/blind-spots?customer=former", "/api/blind-spots?customer=ghost"):
        response = await web.get(path)
        assert response.status == 404 and "old-prod" not in await response.text()
    assert (await web.get("/api/blind-spots?customer=Bad%20Id")).status == 400


async def test_it_shows_nothing_of_a_customer_the_view_does_not_show(
    db: Database, metrics: HubMetrics
) -> None:
    await seed(db)
    await plant(db)
    view = await start(db, HubMetrics(), catalog=Catalog([DEMO]))
    try:
        # (The runboard's run lists show every run, as before; the blind spots follow the
        # customers the view shows.)
        for path in ("/", "/customers/demo", "/customers/demo/findings"):
            said = await html_of(view, path)
            assert "billing" not in " ".join(lines(said)) and "Billing Co" not in said
        assert "billing" not in await (await view.get("/api/blind-spots")).text()
        board = await html_of(view, "/")
        assert [line.split(" · ")[0] for line in lines(board)] == ["🕳️ Not checked: Demo Retail"] * 2
        assert "2 not checked" in text_of(board) and "3 not checked" not in text_of(board)
        spots = (await (await view.get("/api/blind-spots")).json())["blind_spots"]
        assert {s["customer"] for s in spots} == {"demo"} and len(spots) == 2
        for path in ("/customers/billing", "/api/blind-spots?customer=billing"):
            response = await view.get(path)
            assert response.status == 404 and "billing-prod" not in await response.text()
        text = await (await view.get("/metrics")).text()
        assert samples(text, "mhub_blind_spots") == {'{customer="demo"}': 2}
        assert "billing" not in text
    finally:
        await view.close()


async def test_it_exports_blind_spots_and_the_age_of_each_last_successful_look(
    web: TestClient,
) -> None:
    text = await (await web.get("/metrics")).text()
    assert samples(text, "mhub_blind_spots") == {'{customer="demo"}': 2, '{customer="billing"}': 1}
    assert samples(text, "mhub_last_successful_look_age_seconds") == {
        '{account="shop-prod",check="backup",customer="demo"}': (NOW - SHOP_OK).total_seconds(),
        '{account="billing-prod",check="alarms",customer="billing"}': (
            NOW - BILLING_OK
        ).total_seconds(),
        '{account="analytics",check="rds",customer="demo"}': 3600,
    }  # shop-prod · alarms never looked: no sample; shop-staging · backup is not configured


async def test_it_forgets_a_blind_spot_once_its_check_leaves_the_configuration(
    db: Database,
) -> None:
    await seed(db)
    await plant(db)
    prod, *others = DEMO.accounts
    no_backup = prod.model_copy(update={"checks": ("rds", "alarms", "budget")})
    demo = DEMO.model_copy(update={"accounts": (no_backup, *others)})
    view = await start(db, HubMetrics(), catalog=Catalog([demo, BILLING]))
    try:
        board = await html_of(view, "/")
        assert [line.split(" since")[0] for line in lines(board)] == [
            "🕳️ Not checked: Billing Co · billing-prod · alarms",
            "🕳️ Not checked: Demo Retail · shop-prod · alarms",
        ]
        metrics = await (await view.get("/metrics")).text()
        assert samples(metrics, "mhub_blind_spots")['{customer="demo"}'] == 1
        ages = samples(metrics, "mhub_last_successful_look_age_seconds")
        assert not any('check="backup"' in labels for labels in ages)
    finally:
        await view.close()


async def test_it_shows_no_block_and_reads_all_ok_when_nothing_is_blind(
    db: Database, metrics: HubMetrics
) -> None:
    await look(db, "billing", "billing-prod", "alarms", NOW - timedelta(minutes=20), ok=False)
    await plant(db)
    view = await start(db, metrics)
    try:
        html = await (await view.get("/")).text()
        assert 'id="s-blind"' not in html and "Not checked" not in html
        assert "✅ Billing Co" in text_of(html) and "all OK" in text_of(html)
        assert "Not checked" not in await html_of(view, "/customers/billing")
        assert (await (await view.get("/api/blind-spots")).json()) == {"blind_spots": []}
        text = await (await view.get("/metrics")).text()
        assert samples(text, "mhub_blind_spots") == {
            '{customer="demo"}': 0,
            '{customer="billing"}': 0,
        }
    finally:
        await view.close()


def test_it_keeps_only_the_pairs_the_configuration_still_runs() -> None:
    def spot(customer: str, account: str, check: str) -> Any:
        return blind.BlindSpot(customer, account, check, None, NOW, 2, "access", "", None, "x")

    spots = [
        spot("demo", "shop-prod", "backup"),
        spot("demo", "shop-staging", "backup"),  # staging does not run backup
        spot("demo", "nowhere", "rds"),  # no such account
        spot("billing", "billing-prod", "alarms"),
        spot("former", "old-prod", "rds"),  # no such customer
    ]
    kept = [
        (s.customer, s.account, s.check)
        for s in coverage.configured(Catalog([DEMO, BILLING]), spots)
    ]
    assert kept == [("demo", "shop-prod", "backup"), ("billing", "billing-prod", "alarms")]
    assert coverage.configured(DEMO, spots) == spots[:1]
    assert coverage.configured([BILLING], spots) == spots[3:4]
