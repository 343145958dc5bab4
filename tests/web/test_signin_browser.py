"""Sign in with Slack in a real browser (Debian's Chromium, driven by Playwright): redirected to
the fake Slack's authorize page and back, a person granted one customer of two sees exactly
that one, everywhere, and signs out."""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from app.db import Database
from app.engine.runs import RunService
from app.slack.directory import channel_members
from app.web import create_app
from app.web.metrics import HubMetrics
from app.web.people import People
from app.web.session import Sessions
from app.web.signin import SlackSignIn
from tests.fakeslack.server import BOT_TOKEN, TEAM, FakeSlack
from tests.web.sample import BILLING, DEMO, Estate, plant
from tests.web.test_browser import ARGS, CHROMIUM, DESKTOP, shots, watch
from tests.web.test_scoping import CATALOG

CLIENT_ID, SECRET = "1111.2222", "browser-test-secret"

pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def site(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[tuple[str, Estate]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    await db.upgrade()
    estate = await plant(db, datetime.now(UTC))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    slack.oidc_client(CLIENT_ID, SECRET, [f"{base}/auth/callback"])
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)

    async def team() -> str:
        return TEAM

    flow = SlackSignIn(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        public_url=base,
        api_url=slack.api_url,
        team=team,
        sessions=Sessions(SECRET, secure=False),
    )
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=CATALOG,
        metrics=HubMetrics(),
        public_url=base,
        sign_in=(flow, People(CATALOG, channel_members(client))),
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield base, estate
    await runner.cleanup()
    await db.close()


async def test_a_person_signs_in_with_slack_and_sees_only_their_customer(
    site: tuple[str, Estate], slack: FakeSlack, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    base, estate = site
    slack.sign_in_as("U0ONE", name="Uma One")
    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport=DESKTOP)
            watch(page, problems)
            await page.goto(f"{base}/runs")  # → Slack's authorize page → back, signed in
            assert page.url == f"{base}/runs"
            assert await page.locator(".signed-in").inner_text() == "Uma One\nSign out"
            runs = await page.locator("main").inner_text()
            assert DEMO.name in runs and BILLING.name not in runs
            await page.goto(f"{base}/")
            await page.wait_for_selector("#live.on")  # the script ran, under the CSP
            board = await page.locator("main").inner_text()
            assert DEMO.name in board and BILLING.name not in board
            await page.screenshot(path=shots(tmp_path) / "web-signed-in.png", full_page=True)
            assert problems == []

            hidden = await page.goto(f"{base}/customers/billing")
            assert hidden is not None and hidden.status == 404
            hidden_run = await page.goto(f"{base}/runs/{estate.billing_ok}")
            assert hidden_run is not None and hidden_run.status == 404
            problems.clear()  # the two 404s above were the point

            await page.goto(f"{base}/customers/demo")
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(f"{base}/auth/signed-out")
            assert "signed out" in (await page.locator("main").inner_text()).lower()
            cookies = await page.context.cookies()
            assert Sessions.COOKIE not in {c["name"] for c in cookies}
            assert problems == []
        finally:
            await browser.close()
