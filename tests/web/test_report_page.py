"""The customer report through the aiohttp test client: the page, its range form, the PDF, the
CSV zip and the JSON, and the answers to a period that cannot be reported on. The figures come
from a hand-built report (tests/reports/sample.py) served by a stand-in for the gatherer."""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import date
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app.db import Database
from app.engine.runs import RunService
from app.reports.gather import Reports
from app.reports.model import Period, Report
from app.reports.period import ReportError
from app.web import create_app
from app.web.keys import REPORTS
from app.web.metrics import HubMetrics
from tests.reports.sample import TZ, at, sample_report
from tests.web.sample import CATALOG, NOW
from tests.web.test_pages import text_of

BEGAN = date(2026, 9, 1)


class FakeReports:
    """Answers every period with the sample report's figures, as the gatherer would refuse a
    period before monitoring began (1 Sep 2026)."""

    def __init__(self, report: Report | None = None) -> None:
        self.report = report or sample_report()
        self.asked: list[tuple[str, Period]] = []

    async def build(self, customer_id: str, period: Period) -> Report:
        self.asked.append((customer_id, period))
        if period.last < BEGAN:
            raise ReportError(
                f"monitoring of this customer began on 1 Sep 2026, after {period.label}"
            )
        made = NOW.astimezone(TZ)
        return dataclasses.replace(
            self.report, customer_id=customer_id, period=period, generated_at=made
        )


@pytest.fixture
def reports() -> FakeReports:
    return FakeReports()


@pytest.fixture
async def web(db: Database, reports: FakeReports) -> AsyncIterator[TestClient]:
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=CATALOG,
        metrics=HubMetrics(),
        reports=cast(Reports, reports),
        clock=lambda: NOW,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def page_of(web: TestClient, url: str) -> tuple[int, str]:
    response = await web.get(url)
    return response.status, await response.text()


async def test_it_shows_a_months_report_in_words_a_customer_reads(
    web: TestClient, reports: FakeReports
) -> None:
    status, html = await page_of(web, "/customers/demo/reports/2026-11")
    assert status == 200
    page = text_of(html)
    assert "Arbel Retail — November 2026" in page and "Times in Asia/Jakarta (WIB)" in page
    assert "Uptime 99.5 %" in page
    assert "Longest outage 3 h 36 min, 10 Nov 2026 02:00 WIB – 10 Nov 2026 05:36 WIB" in page
    assert "2 of 62 backup jobs failed" in page
    assert "Actual $5,200 (104 %)" in page
    assert "Checks run 3,600 3,400 +200" in page
    assert "No comparison" not in page
    assert not re.search(r"\b(crit|warn|ok|error|fingerprint|run_id)\b", page)
    assert not re.search(r"#\d", page)  # no run ids
    [(customer, period)] = reports.asked
    assert customer == "demo" and period.month == "2026-11"


async def test_it_shows_the_sections_in_order_with_their_charts(web: TestClient) -> None:
    _, html = await page_of(web, "/customers/demo/reports/2026-11")
    order = ["Summary", "Availability", "Backups", "Databases", "Alarms", "Cost", "Findings"]
    headings = re.findall(r'<h2 id="h-[a-z]+">([^<]+)</h2>', html)
    assert headings == [*order, "Could not check"]
    assert len(re.findall(r'<svg [^>]*role="img"', html)) == 4  # uptime, CPU, storage, budget
    assert 'aria-label="Daily uptime of shop, November 2026: 99.5 % overall' in html
    assert 'href="/customers/demo/reports/2026-11.pdf"' in html
    assert 'href="/customers/demo/reports/2026-11.zip"' in html
    assert 'href="/customers/demo/reports/2026-10"' in html
    assert "/reports/2026-12" not in html  # December has not begun


async def test_it_says_plainly_when_a_section_has_nothing(db: Database) -> None:
    empty = FakeReports(
        dataclasses.replace(
            sample_report(empty=True), began=at(12, 9), notes=("November is not over yet.",)
        )
    )
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=CATALOG,
        metrics=HubMetrics(),
        reports=cast(Reports, empty),
        clock=lambda: NOW,
    )
    async with TestClient(TestServer(app)) as client:
        page = text_of(await (await client.get("/customers/demo/reports/2026-11")).text())
    assert "Monitoring began on 12 Nov 2026 09:00 WIB" in page
    assert "November is not over yet." in page
    for said in (
        "No comparison: monitoring had not begun in the period before.",
        "No HTTP endpoints are monitored.",
        "No backup jobs were seen.",
        "No databases are monitored.",
        "No alarm fired.",
        "No budgets are monitored.",
        "No finding was opened or open in this period.",
        "Nothing: the hub could look at everything it was asked to.",
    ):
        assert said in page


async def test_it_shows_a_range_of_days(web: TestClient, reports: FakeReports) -> None:
    status, html = await page_of(web, "/customers/demo/reports?from=2026-11-03&to=2026-11-17")
    assert status == 200
    assert "Arbel Retail — 3 Nov 2026 – 17 Nov 2026" in text_of(html)
    [(_, period)] = reports.asked
    assert (period.first, period.last) == (date(2026, 11, 3), date(2026, 11, 17))
    assert period.month is None
    days = "?from=2026-11-03&amp;to=2026-11-17"
    assert f'href="/customers/demo/reports.pdf{days}"' in html
    assert f'href="/customers/demo/reports.zip{days}"' in html
    assert f'href="/api/customers/demo/reports{days}"' in html


async def test_it_serves_a_range_of_days_as_files_and_json(web: TestClient) -> None:
    days = "?from=2026-11-03&to=2026-11-17"
    pdf = await web.get(f"/customers/demo/reports.pdf{days}")
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")
    name = "demo-2026-11-03_2026-11-17"
    assert pdf.headers["Content-Disposition"] == f'attachment; filename="{name}.pdf"'
    files = await web.get(f"/customers/demo/reports.zip{days}")
    assert files.headers["Content-Disposition"] == f'attachment; filename="{name}.zip"'
    body = await (await web.get(f"/api/customers/demo/reports{days}")).json()
    assert body["period"]["first"] == "2026-11-03" and body["period"]["month"] is None
    bad = await web.get("/customers/demo/reports.pdf?from=2026-11-17&to=2026-11-03")
    assert bad.status == 400
    assert "from 2026-11-17 is after to 2026-11-03" in await bad.text()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("/customers/demo/reports/2026-13", '"2026-13" is not a month'),
        ("/customers/demo/reports/2026-12", "December 2026 has not begun yet"),
        ("/customers/demo/reports/2026-08", "monitoring of this customer began on 1 Sep 2026"),
        (
            "/customers/demo/reports?from=2026-11-05&to=2026-11-01",
            "from 2026-11-05 is after to 2026-11-01",
        ),
        ("/customers/demo/reports?from=2026-11-05", "Say which days"),
        ("/customers/demo/reports?from=5-11-2026&to=2026-11-06", "is not a day"),
        ("/customers/demo/reports/2026-12.pdf", "December 2026 has not begun yet"),
    ],
)
async def test_it_answers_a_period_it_cannot_report_on_with_a_400_that_says_why(
    web: TestClient, url: str, said: str
) -> None:
    status, html = await page_of(web, url)
    assert status == 400
    assert said in text_of(html)


async def test_it_answers_404_for_a_customer_the_view_does_not_show(
    web: TestClient, reports: FakeReports
) -> None:
    for url in (
        "/customers/nobody/reports/2026-11",
        "/customers/nobody/reports?from=2026-11-01&to=2026-11-02",
        "/customers/nobody/reports/2026-11.pdf",
        "/customers/nobody/reports/2026-11.zip",
    ):
        status, html = await page_of(web, url)
        assert status == 404
        assert 'There is no customer "nobody".' in text_of(html)
    response = await web.get("/api/customers/nobody/reports/2026-11")
    assert response.status == 404
    assert reports.asked == []


async def test_it_serves_the_pdf_as_a_file(web: TestClient) -> None:
    response = await web.get("/customers/demo/reports/2026-11.pdf")
    assert response.status == 200
    assert response.content_type == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="demo-2026-11.pdf"'
    assert (await response.read()).startswith(b"%PDF")


async def test_it_serves_the_csv_files_as_a_zip(web: TestClient) -> None:
    response = await web.get("/customers/demo/reports/2026-11.zip")
    assert response.status == 200
    assert response.content_type == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="demo-2026-11.zip"'
    with zipfile.ZipFile(io.BytesIO(await response.read())) as files:
        names = files.namelist()
    assert names and all(n.endswith(".csv") for n in names)


async def test_it_serves_the_report_as_json(web: TestClient) -> None:
    response = await web.get("/api/customers/demo/reports/2026-11")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    assert body["customer_id"] == "demo" and body["period"]["month"] == "2026-11"
    assert body["availability"][0]["uptime_pct"] == pytest.approx(99.5)
    assert body["backups"]["failed"] == 2 and body["backups"]["jobs"] == 62
    assert body["availability"][0]["longest"]["start"] == "2026-11-10T02:00:00+07:00"
    bad = await web.get("/api/customers/demo/reports/2026-13")
    assert bad.status == 400
    assert '"2026-13" is not a month' in (await bad.json())["detail"]


async def test_it_links_a_customer_to_last_month_and_this_month_so_far(
    client: TestClient,
) -> None:
    _, html = await page_of(client, "/customers/demo")
    assert 'href="/customers/demo/reports/2026-10">October 2026</a>' in html
    assert 'href="/customers/demo/reports/2026-11">November 2026 to date</a>' in html


async def test_it_builds_its_own_reports_service_when_given_none(db: Database) -> None:
    app = create_app(db=db, runs=RunService(db), catalog=CATALOG, metrics=HubMetrics())
    assert isinstance(app[REPORTS], Reports)
