"""The run page as people read it: plain words in the timeline (no worker ids), each resource
said once, severity spoken to screen readers, and the hub's version in the footer."""

from __future__ import annotations

import re
from datetime import timedelta

from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from app import version
from app.db import Database
from app.engine.transitions import LOST_WORKER
from app.models import RunEvent
from tests.web.sample import NOW, Estate, backup_failed, insert_run, ok
from tests.web.test_pages import text_of

WORKER = "hub-a.example:4242:9f3c1a"


async def requeued_run(db: Database) -> int:
    """A run whose first replica stopped: picked up again by another, then finished."""
    created = NOW - timedelta(minutes=5)
    run_id = await insert_run(
        db,
        "demo",
        [("shop-prod", "backup"), ("shop-prod", "alarms")],
        outcome="crit",
        created=created,
        results=[backup_failed(), ok("shop-prod", "alarms")],
        requested_by="schedule:daily",
        source="schedule",
    )
    later = [
        ("requeued", {"attempt": 1, "reason": LOST_WORKER}, 60),
        ("claimed", {"attempt": 2}, 61),
    ]
    async with db.write() as session:
        await session.execute(
            insert(RunEvent),
            [
                {
                    "run_id": run_id,
                    "type": kind,
                    "actor": WORKER,
                    "data": data,
                    "created_at": created + timedelta(seconds=s),
                }
                for kind, data, s in later
            ],
        )
    return run_id


def timeline(html: str) -> list[str]:
    section = html.split('id="s-timeline"', 1)[1]
    items = re.findall(r"<li>(.*?)</li>", section, re.S)
    return [text_of(item) for item in items]


async def test_its_timeline_reads_as_plain_words_without_worker_ids(
    db: Database, client: TestClient
) -> None:
    run_id = await requeued_run(db)
    html = await (await client.get(f"/runs/{run_id}")).text()
    said = " | ".join(timeline(html))
    assert "🆕 Started by the daily schedule |" in said and "▶ Started |" in said
    assert "Back in the queue: the replica running it stopped responding" in said
    assert "Picked up after a replica stopped (attempt 2)" in said
    assert "shop-prod · Backup: Critical" in said and "Finished: Critical" in said
    for internal in ("claimed", "requeued", "lease", "check_finished", "completed", "worker"):
        assert internal not in said.lower().replace("picked", ""), internal
    assert WORKER not in html and "worker-1:4242" not in html
    assert "times in WIB (Asia/Jakarta)" in text_of(html)


async def test_it_says_each_resource_once(client: TestClient, estate: Estate) -> None:
    html = await (await client.get(f"/runs/{estate.hot}")).text()
    lines = [
        text_of(li) for li in re.findall(r'<li class="res tone-[a-z]+">(.*?)</li>', html, re.S)
    ]
    backup = next(line for line in lines if "vault Default" in line)
    assert backup.count("shop-prod-db") == 1, backup  # the id, not again in its summary
    alarm = next(line for line in lines if "shop-5xx-rate" in line)
    assert "Shop · in ALARM" not in alarm and "in ALARM since" in alarm  # the label once


async def test_it_speaks_each_mark_to_a_screen_reader(client: TestClient, estate: Estate) -> None:
    html = await (await client.get(f"/runs/{estate.hot}")).text()
    results = html.split('id="s-results"', 1)[1].split('id="s-timeline"', 1)[0]
    spoken = re.findall(r'role="img" aria-label="([^"]*)">', results)
    assert {"Critical", "Warning", "OK"} <= set(spoken)
    assert "" not in spoken
    marks = re.findall(r'<span class="(?:mark|res-mark)"([^>]*)>', results)
    assert marks and all('aria-label="' in m for m in marks)  # none left unspoken
    board = await (await client.get("/")).text()
    assert 'role="img" aria-label="Critical">🔴</span> Demo Retail' in board
    assert 'aria-live="polite"' in html


async def test_every_page_names_the_hubs_version(client: TestClient, estate: Estate) -> None:
    for path in ("/", "/runs", f"/runs/{estate.hot}", "/customers/demo", "/nowhere"):
        page = text_of(await (await client.get(path)).text())
        assert f"Monitoring Hub {version.current()}" in page, path
