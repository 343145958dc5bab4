"""The web view inside ``mhub serve``: started and stopped with the process, and refused on a
public address without a password."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from app.main import build, tasks_of
from app.settings import Settings
from app.web.security import WebRefused
from tests.conftest import ROOT
from tests.web.sample import CATALOG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def until_up(url: str) -> None:
    for _ in range(400):
        try:
            await get(url)
            return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.025)
    raise AssertionError(f"{url} never answered")


async def test_it_serves_the_web_view_until_the_hub_stops(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/hub.db", HUB_WEB_PORT=port)
    async with build(settings, CATALOG) as hub:
        stop = asyncio.Event()
        task = asyncio.create_task(tasks_of(hub, stop)["web"]())
        base = f"http://127.0.0.1:{port}"
        await until_up(f"{base}/healthz")
        status, body = await get(f"{base}/readyz")
        assert status == 503 and "the executor has not started its loop" in body
        hub.executor.last_loop_at = datetime.now(UTC)
        status, body = await get(f"{base}/readyz")
        assert status == 200 and '"database": "ok"' in body
        assert (await get(f"{base}/"))[0] == 200
        stop.set()
        await task
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(f"{base}/healthz")


async def test_it_refuses_to_start_on_a_public_address_without_a_password(
    tmp_path: Path,
) -> None:
    settings = Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/hub.db", HUB_WEB_HOST="0.0.0.0"
    )
    async with build(settings, CATALOG) as hub:
        with pytest.raises(WebRefused, match="without a password"):
            tasks_of(hub, asyncio.Event())


def test_it_tells_the_operator_why_mhub_serve_will_not_start(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HUB_"))},
        "HUB_CONFIG_DIR": str(ROOT / "configs" / "demo"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        "HUB_WEB_HOST": "0.0.0.0",
        "HUB_WEB_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--no-slack"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to serve the web view on 0.0.0.0" in done.stderr
    assert "HUB_WEB_AUTH=user:password" in done.stderr
