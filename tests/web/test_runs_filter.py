"""The runs filter as a reader uses it: an outcome with a check finds the runs where that check
had that outcome, in the words every page uses, and old links keep working."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from tests.web.sample import Estate
from tests.web.test_pages import text_of


async def ids(client: TestClient, query: str) -> set[int]:
    html = await (await client.get(f"/runs?{query}")).text()
    return {int(n) for n in re.findall(r'href="/runs/(\d+)"', html)}


async def test_it_finds_a_run_whose_rds_result_warned_under_warning_and_rds(
    client: TestClient, estate: Estate
) -> None:
    # estate.hot is critical overall: its shop-staging RDS result warned, shop-prod's was
    # critical; estate.running has a critical RDS result so far
    assert await ids(client, "outcome=warn&check=rds") == {estate.hot}
    assert await ids(client, "outcome=crit&check=rds") == {estate.hot, estate.running}
    assert await ids(client, "outcome=ok&check=rds") == {estate.hot, estate.billing_ok}
    assert await ids(client, "outcome=crit&check=budget") == set()


async def test_it_reads_an_outcome_without_a_check_as_the_runs_own(
    client: TestClient, estate: Estate
) -> None:
    assert await ids(client, "outcome=crit") == {estate.hot}
    assert await ids(client, "outcome=warn") == set()  # no run's worst result is a warning
    assert await ids(client, "outcome=ok") == {estate.billing_ok}


async def test_it_keeps_old_links_and_the_api_in_step(client: TestClient, estate: Estate) -> None:
    assert await ids(client, "outcome=warn&check=rds&customer=demo") == {estate.hot}
    body = await (await client.get("/api/runs?outcome=warn&check=rds")).json()
    assert [r["id"] for r in body["runs"]] == [estate.hot]
    refused = await client.get("/runs?outcome=Warning")
    assert refused.status == 400
    assert "crit, error, warn, ok, skipped" in await refused.text()


async def test_it_names_outcomes_in_the_words_every_page_uses(
    client: TestClient, estate: Estate
) -> None:
    html = await (await client.get("/runs?outcome=warn&check=rds")).text()
    options = dict(re.findall(r'<option value="(crit|warn|ok|error|skipped)"[^>]*>([^<]*)<', html))
    assert options == {
        "crit": "🔴 Critical",
        "error": "⚠️ Error",
        "warn": "🟠 Warning",
        "ok": "✅ OK",
        "skipped": "⏭️ Skipped",
    }
    assert '<option value="warn" selected>' in html
    page = text_of(html)
    assert "with a check, that check's result in any account" in page
