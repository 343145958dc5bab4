"""The seeded month (tests/reports/seed.py) through the real web view and the real gathering,
on SQLite and PostgreSQL: the page says the figures known in advance, in the customer's words
and time zone."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp.test_utils import TestClient, TestServer

from app.catalog import Catalog
from app.db import Database
from app.engine.runs import RunService
from app.web import create_app
from app.web.metrics import HubMetrics
from tests.reports.seed import arbel, november_history
from tests.web.test_pages import text_of

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 09:00 WIB on the 1st


async def test_the_page_of_the_seeded_month_says_its_figures(db: Database) -> None:
    await november_history().write(db)
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=Catalog([arbel()]),
        metrics=HubMetrics(),
        clock=lambda: NOW,
    )
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/customers/arbel/reports/2026-11")
        assert answer.status == 200
        page = text_of(await answer.text())
    assert "Arbel Retail — November 2026" in page
    assert "99.5 %" in page  # 3 h 36 min down of 720 h, counted per look
    assert "3 h 36 min" in page and "10 Nov 2026 02:00 WIB" in page and "05:36 WIB" in page
    assert "2 of 62 backup jobs failed" in page
    assert "$5,200 (104 %)" in page
    assert "12 Nov 2026 01:30 WIB – 14 Nov 2026 01:30 WIB" in page  # the RPO breach
    assert "29 of 30 scheduled runs" in page
    assert "disk grows on schedule; resize booked" in page  # a snooze's reason
    assert "the role cannot be assumed" in page  # the gap, never "all clear"
    for jargon in (" crit ", " warn ", "fingerprint", "rds:111111111111"):
        assert jargon not in page
