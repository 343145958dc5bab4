"""App Home build time with 100,000 runs in the database.

One build is what the Home publisher does per publish: read the runboard snapshot
(:func:`app.engine.runboard.read`) and render one person's Home view from it
(:meth:`app.slack.home.HomeTab.render`). The viewer may see all 20 customers (the most work).
Seeds the same data as ``bench/web.py`` (20 customers, 100 days) into its own SQLite file —
copied from the web benchmark's file when that one exists — and prints p50 / p95 / p99 and the
query plans. Target: p95 at most 50 ms.

    uv run python bench/home.py                     # seed or copy (once), then measure
    uv run python bench/home.py --iterations 500
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.access import Access as AccessLog
from app.catalog import Catalog
from app.config import Access, SlackSettings
from app.db import Database
from app.engine import runboard
from app.slack.home import RECENT_SCAN, HomeTab
from bench.web import catalog as web_catalog
from bench.web import ensure, machine

TARGET_P95_MS = 50.0
VIEWER = "U0BENCH"
HOME_FILE = Path("data/bench/home-100k.db")
WEB_FILE = Path("data/bench/web-100k-100000.db")
PLANS = {
    "queue depth": "SELECT count(*), min(created_at) FROM runs WHERE status = 'queued'",
    "running runs": "SELECT * FROM runs WHERE status = 'running' ORDER BY id",
    "recent finished": "SELECT * FROM runs WHERE status NOT IN ('queued', 'running') "
    "ORDER BY id DESC LIMIT 60",
    "latest per customer": "SELECT id FROM runs WHERE customer_id = 'c07' AND status IN "
    "('completed', 'failed') ORDER BY id DESC LIMIT 1",
    "24 h: first id": "SELECT id FROM runs WHERE created_at >= '2026-11-20' "
    "ORDER BY created_at, id LIMIT 1",
    "24 h: counts": "SELECT count(*) FROM runs WHERE id >= 99000 AND outcome = 'crit'",
    "results of runs": 'SELECT run_id, account, "check", severity FROM results '
    "WHERE run_id IN (1, 2, 3)",
}


def viewer_catalog() -> Catalog:
    """The web benchmark's customers, each granting the viewer access."""
    return Catalog(
        c.model_copy(
            update={"slack": SlackSettings(channel=c.slack.channel, access=Access(users=(VIEWER,)))}
        )
        for c in web_catalog().customers.values()
    )


def copy_web_data(runs: int) -> None:
    """Reuse the web benchmark's seeded file (a consistent copy, even while it is in use)."""
    HOME_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not HOME_FILE.exists() and WEB_FILE.exists() and runs == 100_000:
        with sqlite3.connect(WEB_FILE) as source, sqlite3.connect(HOME_FILE) as target:
            source.backup(target)


async def measure(url: str, iterations: int) -> list[float]:
    db = Database(url)
    catalog = viewer_catalog()
    tab = HomeTab(AsyncWebClient(token="xoxb-bench"), db, catalog, AccessLog(db))
    timings: list[float] = []
    try:
        for i in range(iterations + 20):
            began = time.perf_counter()
            board = await runboard.read(
                db, catalog.customers, datetime.now(UTC), recent=RECENT_SCAN
            )
            view = tab.render(VIEWER, catalog, board)
            elapsed = (time.perf_counter() - began) * 1000
            if i >= 20:  # warm-up: statement caches, page cache
                timings.append(elapsed)
        assert len(view["blocks"]) <= 100  # type: ignore[arg-type]
        async with db.reader.connect() as conn:
            for name, sql in PLANS.items():
                rows = (await conn.execute(text("EXPLAIN QUERY PLAN " + sql))).all()
                print(f"  {name:<20} {'; '.join(str(row[-1]) for row in rows)}")
    finally:
        await db.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    copy_web_data(args.runs)
    url = f"sqlite+aiosqlite:///{HOME_FILE}"
    asyncio.run(ensure(url, args.runs))  # seeds when there was nothing to copy
    print(f"Home build, {args.runs:,} runs, SQLite — {machine()}")
    timings = asyncio.run(measure(url, args.iterations))
    cuts = statistics.quantiles(timings, n=100)
    p50, p95, p99 = cuts[49], cuts[94], cuts[98]
    verdict = "✓" if p95 <= TARGET_P95_MS else "✗"
    print(
        f"  builds {len(timings)}: p50 {p50:.1f} ms · p95 {p95:.1f} ms {verdict} "
        f"(target ≤ {TARGET_P95_MS:.0f}) · p99 {p99:.1f} ms"
    )


if __name__ == "__main__":
    main()
