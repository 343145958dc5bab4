"""Retention: how long pruning a year of history takes, and what a writer waits meanwhile.

    uv run python bench/prune.py                       # SQLite, 50,000 runs
    uv run python bench/prune.py --pg [URL]            # PostgreSQL (URL or TEST_DATABASE_URL)
    uv run python bench/prune.py --runs 100000 --audit 500000

The history: ``--customers`` customers whose runs are spread evenly over the last 365 days
(half of them a schedule's, half asked for in Slack), each with 4 results and 4 timeline
events, and ``--audit`` rows of web reads (the audit row every page view writes) over the same
year. Pruning with the server's rule (90 days, ``HUB_RETENTION_DAYS=90``) deletes about three
quarters of it, 200 runs or audit rows per transaction, as ``mhub serve`` does (without its
pause between batches, so the figure is the work itself).

Meanwhile a writer commits one small row every 20 ms, as the executor, the web view's audit
and Slack's acks do: its wait is what pruning costs everybody else (SQLite has one writer at a
time; a batch holds it). Printed: the seed, the dry run's count, the prune's wall time and rows
a second, the writer's p50/p99/max commit time during the prune against the same writer idle,
and the rows left. The database is made afresh each time (SQLite in ``data/bench/``; a
PostgreSQL database of its own beside the URL's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import Database
from app.engine import retention
from app.models import Result, Run, RunEvent
from bench.served import machine, pg_bench_url

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
DAYS = 365
KEEP_DAYS = 90
CHECKS = ("rds", "backup", "alarms", "budget")
SQLITE_FILE = Path("data/bench/prune.db")
CHUNK = 2000
PROBE_EVERY_S = 0.02


def _runs(first_id: int, count: int, customers: int, total: int) -> list[dict[str, object]]:
    """Runs ``first_id`` … of ``total``, spread evenly over the last :data:`DAYS` days."""
    rows = []
    for n in range(count):
        run_id = first_id + n
        at = NOW - timedelta(seconds=DAYS * 86400 * (1 - run_id / total))
        scheduled = run_id % 2 == 0
        rows.append(
            {
                "id": run_id,
                "customer_id": f"c{run_id % customers:03d}",
                "requested_by": "schedule:daily" if scheduled else "U0ALICE",
                "channel_id": "C0DEMO0001",
                "source": "schedule" if scheduled else "slash",
                "targets": [{"account": "prod", "check": c} for c in CHECKS],
                "params": {"schedule": "daily"} if scheduled else {},
                "status": "completed",
                "outcome": "ok",
                "attempt": 1,
                "max_attempts": 3,
                "idempotency_key": f"bench-{run_id}",
                "created_at": at,
                "started_at": at,
                "finished_at": at + timedelta(seconds=3),
            }
        )
    return rows


def _children(runs: list[dict[str, object]]) -> tuple[list[dict[str, object]], ...]:
    results, events = [], []
    for run in runs:
        at = run["created_at"]
        for check in CHECKS:
            results.append(
                {
                    "run_id": run["id"],
                    "account": "prod",
                    "check": check,
                    "severity": "ok",
                    "summary": "all good",
                    "details": {},
                    "series": {},
                    "attempt": 1,
                    "started_at": at,
                    "finished_at": at,
                }
            )
        for kind in ("submitted", "claimed", "target_done", "completed"):
            events.append(
                {"run_id": run["id"], "type": kind, "actor": "bench", "data": {}, "created_at": at}
            )
    return results, events


async def seed(db: Database, runs: int, customers: int, audit: int) -> None:
    async with db.write() as session:
        for start in range(1, runs + 1, CHUNK):
            batch = _runs(start, min(CHUNK, runs - start + 1), customers, runs)
            results, events = _children(batch)
            await session.execute(insert(Run), batch)
            await session.execute(insert(Result), results)
            await session.execute(insert(RunEvent), events)
        for start in range(0, audit, CHUNK):
            rows = [
                {
                    "run_id": None,
                    "type": "read",
                    "actor": "U0ALICE",
                    "data": {"path": "/runs", "via": "web"},
                    "created_at": NOW - timedelta(seconds=DAYS * 86400 * (1 - (i + 1) / audit)),
                }
                for i in range(start, min(audit, start + CHUNK))
            ]
            await session.execute(insert(RunEvent), rows)
    if not db.is_sqlite:
        async with db.write() as session:
            await session.execute(text("ANALYZE"))


async def sizes(db: Database) -> dict[str, int]:
    async with db.read() as session:
        return {
            "runs": (await session.execute(select(func.count(Run.id)))).scalar_one(),
            "results": (await session.execute(select(func.count(Result.id)))).scalar_one(),
            "events": (await session.execute(select(func.count(RunEvent.id)))).scalar_one(),
        }


async def probe(db: Database, stop: asyncio.Event, waits: list[float]) -> None:
    """One small committed write every 20 ms until ``stop``; each commit's time in ``waits``."""
    while not stop.is_set():
        began = time.perf_counter()
        async with db.write() as session:
            await session.execute(
                insert(RunEvent).values(
                    run_id=None, type="answer", actor="probe", data={}, created_at=NOW
                )
            )
        waits.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(PROBE_EVERY_S)


def _ms(waits: list[float]) -> str:
    waits = sorted(waits)
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    return f"p50 {statistics.median(waits):.1f} ms, p99 {p99:.1f} ms, max {waits[-1]:.1f} ms"


async def main(url: str, runs: int, customers: int, audit: int) -> None:
    db = Database(url)
    try:
        if not db.is_sqlite:  # afresh: the bench's own database, emptied
            async with db.write() as session:
                await session.execute(text("DROP SCHEMA public CASCADE"))
                await session.execute(text("CREATE SCHEMA public"))
        await db.upgrade()
        began = time.perf_counter()
        await seed(db, runs, customers, audit)
        print(f"seeded {runs:,} runs ({customers} customers), {audit:,} audit rows over "
              f"{DAYS} days in {time.perf_counter() - began:.1f} s")  # fmt: skip
        print("before:", await sizes(db))
        before = retention.cutoff(NOW, timedelta(days=KEEP_DAYS))

        idle: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(probe(db, stop, idle))
        await asyncio.sleep(3)
        stop.set()
        await task

        began = time.perf_counter()
        counted = await retention.count(db, before)
        print(f"dry run: {counted} — {time.perf_counter() - began:.2f} s")

        busy: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(probe(db, stop, busy))
        began = time.perf_counter()
        pruned = await retention.prune(db, before)
        wall = time.perf_counter() - began
        stop.set()
        await task
        rows = pruned.runs + pruned.results + pruned.events + pruned.audit
        print(f"prune (older than {KEEP_DAYS} d): {wall:.1f} s, {rows / wall:,.0f} rows/s; "
              f"{pruned.runs:,} runs in {-(-pruned.runs // retention.BATCH)} batches of "
              f"{retention.BATCH}")  # fmt: skip
        print(f"a writer's commit, idle:          {_ms(idle)} ({len(idle)} commits)")
        print(f"a writer's commit, while pruning: {_ms(busy)} ({len(busy)} commits)")
        print("after:", await sizes(db))
    finally:
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--audit", type=int, default=200_000)
    parser.add_argument("--pg", nargs="?", const="", default=None, metavar="URL")
    args = parser.parse_args()
    if args.pg is not None:
        base = args.pg or os.environ.get("TEST_DATABASE_URL")
        if not base:
            raise SystemExit("--pg needs a URL or TEST_DATABASE_URL")
        url = pg_bench_url(base, "mhub_bench_prune")
        kind = "PostgreSQL"
    else:
        SQLITE_FILE.parent.mkdir(parents=True, exist_ok=True)
        SQLITE_FILE.unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{SQLITE_FILE}"
        kind = "SQLite"
    print(f"bench/prune.py on {kind} · {machine()} · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    asyncio.run(main(url, args.runs, args.customers, args.audit))
