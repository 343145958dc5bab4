"""The web view in a real browser: Debian's Chromium, driven by Playwright.

Loads the runboard and a run page and fails on any console error, page error or failed
request (a CSP violation is a console error). Screenshots go to ``tmp_path``, or to the
directory in ``MHUB_SCREENSHOTS`` (``MHUB_SCREENSHOTS=docs/images`` refreshes the README's).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from app.db import Database
from app.engine.runs import RunService
from app.web import create_app
from app.web.metrics import HubMetrics
from tests.web.sample import CATALOG, Estate, plant

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/hub.db"


@pytest.fixture
async def site(sqlite: str) -> AsyncIterator[tuple[str, Database, Estate]]:
    db = Database(sqlite)
    await db.upgrade()
    now = datetime.now(UTC)
    estate = await plant(db, now)
    app = create_app(db=db, runs=RunService(db), catalog=CATALOG, metrics=HubMetrics())
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", db, estate
    await runner.cleanup()
    await db.close()


def watch(page: Page, problems: list[str]) -> None:
    """Note on ``problems`` every console error or warning, page error, failed request (but a
    poll cut short by leaving the page) and error answer of ``page``."""
    page.on(
        "console",
        lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "requestfailed",
        lambda r: (
            r.failure != "net::ERR_ABORTED" and problems.append(f"failed: {r.url} {r.failure}")
        ),
    )
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))


def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("MHUB_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


async def test_it_loads_the_runboard_and_a_run_in_chromium_without_errors(
    site: tuple[str, Database, Estate], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    base, _, estate = site
    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, viewport in (("", DESKTOP), ("-phone", PHONE)):
                page = await browser.new_page(viewport=viewport)
                watch(page, problems)
                await page.goto(f"{base}/")
                await page.wait_for_selector("#live.on")  # the script ran, under the CSP
                await page.screenshot(
                    path=shots(tmp_path) / f"web-runboard{name}.png", full_page=True
                )
                await page.goto(f"{base}/runs/{estate.hot}")
                assert await page.locator(".result").count() >= 8
                assert await page.locator("svg.spark").count() == 3
                await page.screenshot(path=shots(tmp_path) / f"web-run{name}.png", full_page=True)
                await page.close()
        finally:
            await browser.close()
    assert problems == []


async def test_it_updates_the_open_runboard_when_a_run_changes(
    site: tuple[str, Database, Estate],
) -> None:
    from playwright.async_api import async_playwright, expect

    base, db, estate = site
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport=DESKTOP)
            await page.goto(f"{base}/")
            await page.wait_for_selector("#live.on")
            queued = page.locator(".stat").first
            assert (await queued.inner_text()).startswith("1")
            await RunService(db).cancel(estate.queued, "U0BOB")
            # the page polls once a second; waiting for what a reader would see, not timing it
            await expect(page.locator(".stat b").first).to_have_text("0", timeout=15_000)
            assert "Cancelled" in await page.locator("#s-recent").inner_text()
        finally:
            await browser.close()
