"""The monthly report page in a real browser (Debian's Chromium, driven by Playwright): the
seeded November loads without a console error, failed request or CSP violation, draws its
charts, fits a phone's width, and prints. Screenshots go to ``tmp_path``, or to
``MHUB_SCREENSHOTS`` (``MHUB_SCREENSHOTS=docs/images`` refreshes docs/reports.md's)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from app.catalog import Catalog
from app.db import Database
from app.engine.runs import RunService
from app.web import create_app
from app.web.metrics import HubMetrics
from tests.reports.seed import arbel, november_history
from tests.web.test_browser import ARGS, CHROMIUM, DESKTOP, PHONE, pytestmark, shots, watch

__all__ = ["pytestmark"]

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[str]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    await db.upgrade()
    await november_history().write(db)
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=Catalog([arbel()]),
        metrics=HubMetrics(),
        clock=lambda: NOW,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
    await db.close()


async def test_the_report_page_loads_fits_a_phone_and_prints(site: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, viewport in (("", DESKTOP), ("-phone", PHONE)):
                page = await browser.new_page(viewport=viewport)
                watch(page, problems)
                await page.goto(f"{site}/customers/arbel/reports/2026-11")
                body = await page.locator("main").inner_text()
                assert "99.5 %" in body and "104 %" in body
                assert await page.locator("svg").count() >= 4  # uptime, CPU, storage, budgets
                wide = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert wide <= 0, f"the page scrolls sideways by {wide} px at {viewport}"
                await page.screenshot(
                    path=shots(tmp_path) / f"report-page{name}.png", full_page=True
                )
                if not name:
                    printed = await page.pdf(format="A4")  # the page's print stylesheet
                    assert printed.startswith(b"%PDF") and len(printed) > 10_000
                    made = await page.request.get(f"{site}/customers/arbel/reports/2026-11.pdf")
                    assert made.headers["content-type"] == "application/pdf"
                    (shots(tmp_path) / "report.pdf").write_bytes(await made.body())
                await page.close()
        finally:
            await browser.close()
    assert problems == []
