"""The pages through the aiohttp test client, on each database: what a reader sees."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from aiohttp.test_utils import TestClient

from app.db import Database
from app.engine.runs import RunService
from app.web import queries
from blocks.terminal import render_run
from tests.web.sample import DEMO, NOW, Estate, alarms, insert_run, ok, rds_hot


def text_of(html: str) -> str:
    """The visible text, roughly: tags dropped, whitespace folded."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_it_shows_the_runboard_with_queue_running_recent_and_customers(
    client: TestClient, estate: Estate
) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = text_of(await response.text())
    assert "1 queued" in page and "1 running" in page
    assert f"#{estate.running} Demo Retail / shop-prod" in page
    assert "2 of 4 checks" in page and "alive 2 s ago" in page
    assert "🔴 rds" in page and "✅ alarms" in page and "⏳ backup" in page
    assert f"#{estate.hot}" in page and "Critical" in page
    assert "🔴 Demo Retail" in page and "✅ Billing Co" in page
    assert "07:02 WIB: 🔴 3 critical" not in page  # chips, not nested marks
    assert "00:02 UTC: 3 critical (alarms, backup, rds)" in page  # the board spans customers: UTC
    assert "Demo Retail daily" in page and "00:00 UTC" in page and "WIB" not in page
    assert page.count("times in UTC") == 4  # said in each section's heading


async def test_it_marks_a_running_run_whose_heartbeat_stopped_as_maybe_stuck(
    db: Database, client: TestClient
) -> None:
    await insert_run(
        db, "demo", [("shop-prod", "rds")], status="running", heartbeat=NOW - timedelta(minutes=3)
    )
    page = text_of(await (await client.get("/")).text())
    assert "alive 3 min ago — may be stuck" in page


async def test_it_updates_the_runboard_when_a_run_changes(
    db: Database, client: TestClient, estate: Estate
) -> None:
    before = (await (await client.get("/api/version")).json())["version"]
    board = await (await client.get("/")).text()
    assert f'data-version="{before}"' in board
    await RunService(db).cancel(estate.queued, "U0BOB")
    after = (await (await client.get("/api/version")).json())["version"]
    assert after != before
    page = text_of(await (await client.get("/")).text())
    assert "0 queued" in page


async def test_it_lists_runs_newest_first_with_their_problems(
    client: TestClient, estate: Estate
) -> None:
    page = text_of(await (await client.get("/runs")).text())
    refs = [int(n) for n in re.findall(r"#(\d+) ", page)]
    assert refs == sorted(refs, reverse=True)
    assert refs[0] == estate.queued
    assert "3 critical (alarms, backup, rds)" in page and "2 warnings (budget, rds)" in page


async def test_it_pages_runs_with_keyset_links_both_ways(db: Database, client: TestClient) -> None:
    for n in range(60):
        await insert_run(
            db,
            "billing",
            [("billing-prod", "rds")],
            outcome="ok",
            created=NOW - timedelta(minutes=60 - n),
        )
    first = await (await client.get("/runs")).text()
    older = re.search(r'href="(/runs\?before=\d+)" rel="next"', first)
    assert older is not None and 'rel="prev"' not in first
    second = await (await client.get(older.group(1))).text()
    newer = re.search(r'href="(/runs\?after=\d+)" rel="prev"', second)
    assert newer is not None and 'rel="next"' not in second
    first_ids = re.findall(r'href="/runs/(\d+)"', first)
    second_ids = re.findall(r'href="/runs/(\d+)"', second)
    assert len(first_ids) == 50 and not set(first_ids) & set(second_ids)
    assert len(first_ids) + len(second_ids) == 66  # 6 planted + 60
    back = await (await client.get(newer.group(1))).text()
    assert re.findall(r'href="/runs/(\d+)"', back) == first_ids


async def test_it_keeps_the_filters_in_the_page_links(db: Database, client: TestClient) -> None:
    for n in range(55):
        await insert_run(
            db,
            "billing",
            [("billing-prod", "rds")],
            outcome="warn",
            created=NOW - timedelta(minutes=60 - n),
        )
    page = await (await client.get("/runs?customer=billing&outcome=warn")).text()
    assert re.search(r'href="/runs\?customer=billing&amp;outcome=warn&amp;before=\d+"', page)


async def test_it_filters_runs_by_customer_status_outcome_check_and_dates(
    client: TestClient, estate: Estate
) -> None:
    async def ids(query: str) -> set[int]:
        html = await (await client.get(f"/runs?{query}")).text()
        return {int(n) for n in re.findall(r'href="/runs/(\d+)"', html)}

    assert await ids("customer=billing") == {estate.billing_ok, estate.queued}
    assert await ids("status=failed") == {estate.failed}
    assert await ids("outcome=crit") == {estate.hot}
    assert await ids("check=alarms") == {estate.hot, estate.running, estate.billing_ok}
    assert await ids("customer=demo&check=budget") == {estate.hot, estate.cancelled}
    assert await ids("from=2026-11-21&to=2026-11-21&customer=demo") == {
        estate.failed,
        estate.cancelled,
        estate.hot,
        estate.running,
    }
    assert await ids("to=2026-11-20") == {estate.billing_ok, estate.failed, estate.cancelled}
    assert await ids("from=2026-12-01") == set()


async def test_it_answers_a_bad_filter_with_a_clear_message(client: TestClient) -> None:
    response = await client.get("/runs?status=finished")
    assert response.status == 400
    page = text_of(await response.text())
    assert 'Unknown status "finished". Use one of: queued, running, completed' in page
    response = await client.get("/runs?from=21/11/2026")
    assert response.status == 400
    assert "write it as YYYY-MM-DD" in await response.text()


async def test_it_shows_every_result_of_a_run_with_its_details_and_timeline(
    client: TestClient, estate: Estate
) -> None:
    response = await client.get(f"/runs/{estate.hot}")
    assert response.status == 200
    html = await response.text()
    page = text_of(html)
    assert f"#{estate.hot}" in page and "Critical · Demo Retail" in page
    assert "8 checks in 14 s" in page and "window 12h" in page
    for label in (
        "shop-prod · RDS",
        "shop-prod · Backup",
        "shop-prod · Alarms",
        "shop-prod · Budget",
        "shop-staging · RDS",
        "shop-staging · Budget",
        "analytics · Backup",
        "analytics · RDS",
    ):
        assert label in page
    assert "CPU max 93 % (crit ≥ 90 %)" in page
    assert "3 more checks OK" in page
    assert html.count('<svg class="spark') == 3  # hot CPU, the healthy replica, low storage
    assert '<line class="limit limit-crit"' in html and '<svg class="bar' in html
    assert "&#34;period_s&#34;: 1800" in html  # the raw details, escaped
    assert "Asked for in Slack with /monitor @U0ALICE" in page
    assert "Started" in page and "shop-prod · RDS: Critical" in page
    assert "07:02:30 WIB" in page


async def test_it_orders_results_like_the_terminal_card(
    db: Database, client: TestClient, estate: Estate
) -> None:
    view = await RunService(db).get(estate.hot)
    card = render_run(view, DEMO.tz, DEMO.name)
    card_order = [m.group(1) for m in re.finditer(r"^\S+ (\S+ · \S+) — ", card, re.M)]
    page = text_of(await (await client.get(f"/runs/{estate.hot}")).text())
    page_order = sorted(card_order, key=page.index)
    assert card_order == page_order and len(card_order) == 8


async def test_it_shows_a_running_run_with_progress_and_pending_checks(
    client: TestClient, estate: Estate
) -> None:
    html = await (await client.get(f"/runs/{estate.running}")).text()
    page = text_of(html)
    assert "Running · Demo Retail / shop-prod" in page
    assert "2 of 4 checks" in page and "alive 2 s ago" in page
    assert "⏳ shop-prod · Backup — running…" in page
    assert 'data-live="/api/version"' in html


async def test_it_shows_why_a_failed_run_failed(client: TestClient, estate: Estate) -> None:
    html = await (await client.get(f"/runs/{estate.failed}")).text()
    page = text_of(html)
    assert "Failed · Demo Retail / analytics" in page
    assert "gave up after 3 attempts" in page
    assert "⏸️ analytics · Backup — not run" in page
    assert "data-live" not in html


async def test_it_says_who_cancelled_a_run(client: TestClient, estate: Estate) -> None:
    page = text_of(await (await client.get(f"/runs/{estate.cancelled}")).text())
    assert "Cancelled by @U0BOB · Demo Retail / shop-staging" in page


async def test_it_answers_404_for_an_unknown_run_or_customer(client: TestClient) -> None:
    response = await client.get("/runs/999999")
    assert response.status == 404
    assert "There is no run #999999." in await response.text()
    response = await client.get("/customers/nobody")
    assert response.status == 404
    assert "There is no customer" in await response.text()
    assert (await client.get("/nowhere")).status == 404


async def test_it_shows_a_customer_with_accounts_checks_and_next_fire_times(
    client: TestClient, estate: Estate
) -> None:
    page = text_of(await (await client.get("/customers/demo")).text())
    assert "Demo Retail demo" in page and "Asia/Jakarta · now 07:05 WIB" in page
    assert "shop-prod Shop Production 111111111111 ap-southeast-3" in page
    assert "arn:aws:iam::111111111111:role/MonitoringReadOnly" in page
    assert "0 7 * * * backup, rds C0DEMO0001 tomorrow 07:00 WIB Mon 23 Nov 07:00 WIB" in page
    assert f"#{estate.hot}" in page and f"#{estate.queued}" not in page


async def test_it_shows_one_customers_times_in_its_zone_and_several_customers_in_utc(
    client: TestClient, estate: Estate
) -> None:
    html = await (await client.get("/runs")).text()
    page = text_of(html)
    assert "00:02 UTC" in page and "yesterday 17:05 UTC" in page  # Demo Retail, Billing Co
    assert "WIB" not in page and "GMT" not in page  # never 07:02 WIB above 17:05 GMT
    # Hovering a time still says what the customer's own clock read.
    assert re.search(r'title="[^"]* 00:02:\d\d UTC · [-\d]+ 07:02 WIB"', html)
    demo = text_of(await (await client.get("/runs?customer=demo")).text())
    assert "07:02 WIB" in demo and "UTC" not in demo.split("Read-only view")[0]
    billing = text_of(await (await client.get("/customers/billing")).text())
    assert "Mon 23 Nov 06:30 GMT" in billing  # weekdays only: not on Saturday or Sunday
    assert "times in GMT (Europe/London)" in billing


async def test_it_renders_check_output_as_text_never_as_markup(
    db: Database, client: TestClient
) -> None:
    evil = "<script>alert(1)</script>"
    run_id = await insert_run(
        db,
        "demo",
        [("shop-prod", "alarms")],
        outcome="crit",
        results=[alarms(evil)],
        requested_by=evil,
    )
    for path in (f"/runs/{run_id}", "/runs", "/"):
        html = await (await client.get(path)).text()
        assert evil not in html
    html = await (await client.get(f"/runs/{run_id}")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    body = await (await client.get(f"/api/runs/{run_id}")).json()
    assert body["results"][0]["details"]["resources"][0]["id"] == evil


async def test_it_serves_static_files_for_the_page(client: TestClient) -> None:
    for name, kind in (
        ("hub.css", "text/css"),
        ("live.js", "javascript"),
        ("favicon.svg", "image/svg+xml"),
    ):
        response = await client.get(f"/static/{name}")
        assert response.status == 200 and kind in response.headers["Content-Type"]
    assert (await client.get("/static/../templates/base.html")).status in (403, 404)


async def test_it_shows_runs_of_customers_no_longer_configured(
    db: Database, client: TestClient
) -> None:
    gone = await insert_run(
        db, "former", [("old-prod", "rds")], outcome="ok", results=[ok("old-prod", "rds")]
    )
    page = text_of(await (await client.get(f"/runs/{gone}")).text())
    assert "OK · former / old-prod" in page and "UTC" in page


async def test_it_keeps_the_runboard_right_between_changes(
    db: Database, client: TestClient, estate: Estate
) -> None:
    first = await (await client.get("/")).text()
    assert await (await client.get("/")).text() == first
    await insert_run(
        db,
        "demo",
        [("shop-prod", "rds")],
        outcome="crit",
        results=[rds_hot()],
        created=NOW - timedelta(seconds=1),
    )
    assert "2 critical" in text_of(await (await client.get("/")).text())


async def test_it_says_when_a_check_search_stopped_short_and_lets_the_reader_go_on(
    db: Database, client: TestClient, estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "CHECK_SCAN", 1)
    html = await (await client.get("/runs?check=budget")).text()
    page = text_of(html)
    assert "Searched the next 1 results of this check" in page
    more = re.search(r'href="(/runs\?check=budget&amp;before=\d+)">Search older runs', html)
    assert more is not None
    older = text_of(await (await client.get(unescape(more.group(1)))).text())
    assert f"#{estate.cancelled}" in older
