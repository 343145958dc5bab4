"""The web view in a real browser: Debian's Chromium, driven by Playwright.

Loads the runboard and a run page and fails on any console error, page error or failed
request (a CSP violation is a console error); reads them as people do (Slack names, one time
zone said once, plain words, what a screen reader hears) and keeps the reader's place through a
live update. Screenshots go to ``tmp_path``, or to the directory in ``MHUB_SCREENSHOTS``
(``MHUB_SCREENSHOTS=docs/images`` refreshes the README's).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from app.db import Database
from app.engine.runs import RunService
from app.slack.directory import channel_name, user_name
from app.web import create_app
from app.web.metrics import HubMetrics
from app.web.names import Names
from tests.fakeslack.server import BOT_TOKEN, FakeSlack
from tests.web.sample import CATALOG, Estate, plant

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

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


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, closed afterwards."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/hub.db"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("U0ALICE", "Alice Example", "alice")
        fake.add_user("U0BOB", "Bob Builder", "bob")
        fake.add_user("U0CAROL", "Carol Chen", "carol")
        fake.add_user("U0DAVE", "Dave Dewi")
        fake.add_channel("C0DEMO0001", "demo-retail")
        yield fake
        assert fake.violations == []


@pytest.fixture
async def site(sqlite: str, slack: FakeSlack) -> AsyncIterator[tuple[str, Database, Estate]]:
    db = Database(sqlite)
    await db.upgrade()
    now = datetime.now(UTC)
    estate = await plant(db, now)
    bot = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=CATALOG,
        metrics=HubMetrics(),
        names=Names(user_name(bot), channel_name(bot)),
    )
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
    base, _, estate = site
    problems: list[str] = []
    async with chromium() as browser:
        for name, viewport in (("", DESKTOP), ("-phone", PHONE)):
            page = await browser.new_page(viewport=viewport)
            watch(page, problems)
            await page.goto(f"{base}/")
            await page.wait_for_selector("#live.on")  # the script ran, under the CSP
            await page.screenshot(path=shots(tmp_path) / f"web-runboard{name}.png", full_page=True)
            await page.goto(f"{base}/runs/{estate.hot}")
            assert await page.locator(".result").count() >= 8
            assert await page.locator("svg.spark").count() == 3
            await page.screenshot(path=shots(tmp_path) / f"web-run{name}.png", full_page=True)
            await page.close()
    assert problems == []


async def test_it_updates_the_open_runboard_when_a_run_changes(
    site: tuple[str, Database, Estate],
) -> None:
    from playwright.async_api import expect

    base, db, estate = site
    async with chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP)
        await page.goto(f"{base}/")
        await page.wait_for_selector("#live.on")
        queued = page.locator(".stat").first
        assert (await queued.inner_text()).startswith("1")
        await RunService(db).cancel(estate.queued, "U0BOB")
        # the page polls once a second; waiting for what a reader would see, not timing it
        await expect(page.locator(".stat b").first).to_have_text("0", timeout=15_000)
        assert "Cancelled" in await page.locator("#s-recent").inner_text()


async def test_it_reads_as_people_do_names_one_zone_plain_words_and_spoken_marks(
    site: tuple[str, Database, Estate],
) -> None:
    base, _, estate = site
    async with chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP)
        await page.goto(f"{base}/")
        board = await page.locator("#main").inner_text()
        assert "@alice" in board and "U0ALICE" not in board
        assert await page.locator("h2 .zone").all_inner_texts() == ["times in UTC"] * 4
        assert "WIB" not in board and "GMT" not in board
        assert await page.get_by_role("img", name="Critical").count() >= 1
        footer = await page.locator("footer").inner_text()
        assert "Monitoring Hub " in footer

        await page.goto(f"{base}/runs/{estate.hot}")
        timeline = await page.locator("#s-timeline").inner_text()
        assert "times in WIB (Asia/Jakarta)" in timeline
        assert "Asked for in Slack with /monitor" in timeline and "@alice" in timeline
        assert "Started" in timeline and "Finished: Critical" in timeline
        assert "worker" not in timeline and "claimed" not in timeline.lower()
        results = page.locator("#s-results")
        assert await results.get_by_role("img", name="Critical").count() >= 3
        assert await results.get_by_role("img", name="Warning").count() >= 2

        await page.goto(f"{base}/customers/demo")
        assert "#demo-retail" in await page.locator(".run-head").inner_text()


async def test_a_live_update_keeps_the_readers_focus_and_place(
    site: tuple[str, Database, Estate],
) -> None:
    from playwright.async_api import expect

    base, db, estate = site
    async with chromium() as browser:
        page = await browser.new_page(viewport=PHONE)
        await page.goto(f"{base}/runs/{estate.running}")
        await page.wait_for_selector("#live.on")
        link = page.locator(f'#s-timeline a[href="/api/runs/{estate.running}"]')
        await link.focus()
        await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        place = await page.evaluate("window.scrollY")
        assert place > 0
        await RunService(db).cancel(estate.running, "U0BOB")
        # the page polls once a second; waiting for what a reader would see, not timing it
        await expect(page.locator("#s-timeline")).to_contain_text(
            "Cancel asked for", timeout=15_000
        )
        assert "cancel requested by @bob" in await page.locator("#s-head").inner_text()
        focused = await page.evaluate("document.activeElement.getAttribute('href')")
        assert focused == f"/api/runs/{estate.running}"
        assert await page.evaluate("window.scrollY") == place
        assert await page.locator("#live-news").get_attribute("aria-live") == "polite"
