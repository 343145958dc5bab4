"""Web view latency with 100,000 runs in the database.

Seeds 100,000 runs with their results and timelines (20 customers, 100 days, realistic
statuses and outcomes) into a SQLite file, and into PostgreSQL too when TEST_DATABASE_URL is
set; serves the web view on loopback in a child process; drives it from this process with a
closed-loop load generator (aiohttp, N concurrent clients, keep-alive); prints p50 / p95 / p99
per path. Target: p95 of ``/`` and ``/runs`` at most 50 ms. With ``--signed-in`` the view runs
with Sign in with Slack and the load comes from one person granted half the customers by name
and a few more through a channel (Slack's answer about the channel is local, so this measures
the hub's side: identity, scoping, the audit row of every read).

    uv run python bench/web.py                      # seed (once, reused after) and measure
    uv run python bench/web.py --runs 20000 --seconds 3 --concurrency 1 4
    uv run python bench/web.py --explain            # print the query plans and stop
    uv run python bench/web.py --signed-in          # as a person signed in with Slack
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.catalog import Catalog
from app.config import Access, Account, Customer, Schedule, SlackSettings
from app.db import Database
from app.engine.runs import RunService
from app.models import Result, Run, RunEvent
from app.web import create_app
from app.web.metrics import HubMetrics
from app.web.people import People
from app.web.session import Sessions, SignedIn
from app.web.signin import SlackSignIn
from bench.served import free_port, pg_bench_url, wait_ready

CUSTOMERS = 20
DAYS = 100
CHECKS = ("backup", "rds", "alarms", "budget", "http")
TARGET_P95_MS = 50.0
PERSON = "U0BENCH"
"""Who ``--signed-in`` is: named by every other customer, and in the channel of every fifth."""
GRANTING = "C0GRANTING"
SESSION_SECRET = "bench-session-secret"
SQLITE_FILE = Path("data/bench/web-100k.db")
BATCH = 2000


def catalog() -> Catalog:
    customers = []
    for n in range(CUSTOMERS):
        accounts = tuple(
            Account(
                id=f"c{n:02d}-a{a}",
                name=f"Customer {n} account {a}",
                account_id=f"{100000000000 + n * 10 + a}",
                regions=("ap-southeast-3",),
                checks=("backup", "rds", "alarms", "budget") + (("http",) if n % 7 == 0 else ()),
            )
            for a in range(3)
        )
        customers.append(
            Customer(
                id=f"c{n:02d}",
                name=f"Customer {n:02d}",
                timezone=("Asia/Jakarta", "Europe/London", "America/New_York", "UTC")[n % 4],
                slack=SlackSettings(
                    channel=f"C0BENCH{n:04d}",
                    access=Access(
                        users=(PERSON,) if n % 2 == 0 else (),
                        channels=(GRANTING,) if n % 5 == 0 else (),
                    ),
                ),
                accounts=accounts,
                schedules=(Schedule(name="daily", cron=f"{n % 60} 7 * * *"),),
            )
        )
    return Catalog(customers)


# -- seeding -----------------------------------------------------------------------------------


def _series(rng: random.Random, base: float) -> list[float]:
    return [round(base + rng.uniform(-8, 8), 1) for _ in range(48)]


def _result(
    rng: random.Random, run_id: int, account: str, check: str, severity: str, at: datetime
) -> dict[str, Any]:
    series: dict[str, list[float]] = {}
    resource: dict[str, Any] = {
        "id": f"{account}-{check}-1",
        "region": "ap-southeast-3",
        "fingerprint": f"{check}:{account}:1",
        "severity": severity,
        "summary": f"{check} finding ({severity})",
    }
    if check == "rds":
        key = f"{account}-db:cpu"
        series[key] = _series(rng, 60 if severity == "ok" else 88)
        resource["series"] = key
    if check == "budget":
        resource["fraction"] = round(rng.uniform(0.3, 1.1), 3)
    return {
        "run_id": run_id,
        "account": account,
        "check": check,
        "severity": severity,
        "summary": f"{check} on {account}: {severity}",
        "details": {"resources": [resource], "counts": {severity: 1}},
        "series": series,
        "attempt": 1,
        "started_at": at - timedelta(seconds=3),
        "finished_at": at,
    }


async def seed(db: Database, runs: int, seed_value: int = 7) -> None:
    rng = random.Random(seed_value)
    cat = catalog()
    customers = list(cat.customers.values())
    start = datetime.now(UTC) - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / runs
    run_rows: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for n in range(1, runs + 1):
        customer = customers[rng.randrange(len(customers))]
        accounts = customer.accounts if rng.random() < 0.3 else (rng.choice(customer.accounts),)
        checks = [c for c in CHECKS if rng.random() < 0.6 and c in accounts[0].checks] or ["rds"]
        targets = [{"account": a.id, "check": c} for a in accounts for c in checks]
        created = start + step * n
        left = runs - n
        status = (
            "queued"
            if left < 3
            else "running"
            if left < 5
            else rng.choices(("completed", "failed", "cancelled"), (97, 1.5, 1.5))[0]
        )
        severities = [
            rng.choices(("ok", "warn", "crit", "error"), (86, 8, 4, 2))[0] for _ in targets
        ]
        finished = created + timedelta(seconds=rng.uniform(2, 40))
        done = (
            len(targets)
            if status == "completed"
            else len(targets) // 2
            if status in ("running", "cancelled")
            else 0
        )
        order = {"ok": 0, "warn": 1, "error": 2, "crit": 3}
        outcome = max(severities[:done], key=order.__getitem__) if status == "completed" else None
        run_rows.append(
            {
                "id": n,
                "customer_id": customer.id,
                "requested_by": rng.choice(("U0ALICE", "U0BOB", "schedule:daily", "cli")),
                "channel_id": customer.slack.channel,
                "source": rng.choice(("slash", "schedule")),
                "targets": targets,
                "params": {"window_s": 43200},
                "status": status,
                "outcome": outcome,
                "attempt": 0 if status == "queued" else 1,
                "max_attempts": 3,
                "created_at": created,
                "heartbeat_at": finished if status == "running" else None,
                "started_at": None if status == "queued" else created + timedelta(seconds=1),
                "finished_at": finished if status in ("completed", "failed", "cancelled") else None,
                "error": "gave up after 3 attempts" if status == "failed" else None,
            }
        )
        events.append(
            {"run_id": n, "type": "created", "actor": "U0ALICE", "data": {}, "created_at": created}
        )
        for t, severity in list(zip(targets, severities, strict=True))[:done]:
            results.append(_result(rng, n, t["account"], t["check"], severity, finished))
            events.append(
                {
                    "run_id": n,
                    "type": "check_finished",
                    "actor": "bench",
                    "data": {"account": t["account"], "check": t["check"], "severity": severity},
                    "created_at": finished,
                }
            )
        if status in ("completed", "failed", "cancelled"):
            events.append(
                {"run_id": n, "type": status, "actor": "bench", "data": {}, "created_at": finished}
            )
        if len(run_rows) >= BATCH or n == runs:
            async with db.write() as session:
                await session.execute(insert(Run), run_rows)
                if results:
                    await session.execute(insert(Result), results)
                await session.execute(insert(RunEvent), events)
            run_rows, results, events = [], [], []
            print(f"\r  seeded {n:,} runs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if not db.is_sqlite:  # SQLite is left without ANALYZE, as a hub's database would be
        async with db.write() as session:
            for table in ("runs", "results", "run_events"):
                await session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        async with db.writer.connect() as conn:  # what autovacuum would do soon anyway
            await conn.execute(text("ANALYZE"))
            await conn.commit()


async def ensure(url: str, runs: int) -> None:
    db = Database(url)
    try:
        await db.upgrade()
        async with db.read() as session:
            have = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
        if have != runs:
            if have:
                raise SystemExit(f"{url} holds {have:,} runs, not {runs:,}; remove it first")
            print(f"seeding {runs:,} runs into {url.split('@')[-1]} …", file=sys.stderr)
            began = time.perf_counter()
            await seed(db, runs)
            print(f"  done in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    finally:
        await db.close()


# -- serving (child process) -------------------------------------------------------------------


def serve(url: str, port: int, board_cache_s: float, signed_in: bool = False) -> None:
    async def main() -> None:
        db = Database(url)
        customers = catalog()
        app = create_app(
            db=db,
            runs=RunService(db),
            catalog=customers,
            metrics=HubMetrics(),
            board_cache_s=board_cache_s,
            sign_in=_sign_in(customers) if signed_in else None,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            await db.close()

    asyncio.run(main())


def _sign_in(customers: Catalog) -> tuple[SlackSignIn, People]:
    async def team() -> str:
        return "T0BENCH"

    async def members(_channel: str) -> frozenset[str]:
        return frozenset({PERSON})

    flow = SlackSignIn(
        client_id="bench",
        client_secret=SESSION_SECRET,
        public_url="http://127.0.0.1",
        api_url="http://127.0.0.1:9/api/",
        team=team,
        sessions=Sessions(SESSION_SECRET, secure=False),
    )
    return flow, People(customers, members)


def session_cookie() -> dict[str, str]:
    """The ``Cookie`` header of :data:`PERSON`, signed in."""
    response = web.Response()
    Sessions(SESSION_SECRET, secure=False).start(response, SignedIn(PERSON, "T0BENCH", "Bench"))
    return {"Cookie": f"{Sessions.COOKIE}={response.cookies[Sessions.COOKIE].value}"}


# -- load ----------------------------------------------------------------------------------------


async def drive(
    base: str, path: str, concurrency: int, seconds: float, headers: dict[str, str] | None = None
) -> dict[str, float]:
    """A closed loop: ``concurrency`` clients, each sending its next request on an answer."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                async with session.get(path) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append((time.perf_counter() - began) * 1000)

        for _ in range(3):  # warm up: templates, connections, caches
            async with session.get(path) as response:
                await response.read()
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "n": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "errors": errors,
    }


def paths(runs: int) -> list[str]:
    return [
        "/",
        "/runs",
        "/runs?customer=c07",
        "/runs?status=failed",
        "/runs?outcome=crit",
        "/runs?check=http",
        f"/runs?before={runs // 2}",
        "/runs?from="
        + (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
        + "&to="
        + (datetime.now(UTC) - timedelta(days=20)).date().isoformat(),
        f"/runs/{runs - 10}",
        "/api/runs?customer=c03",
        "/api/version",
        "/metrics",
    ]


async def _signed_in_paths(url: str, runs: int) -> list[str]:
    """:func:`paths` with customers and a run :data:`PERSON` may see (c04, c08)."""
    db = Database(url)
    try:
        async with db.read() as session:
            run_id = (
                await session.execute(select(func.max(Run.id)).where(Run.customer_id == "c04"))
            ).scalar_one()
    finally:
        await db.close()
    swap = {"c07": "c08", "c03": "c04", f"/runs/{runs - 10}": f"/runs/{run_id}"}
    shown = []
    for path in paths(runs):
        for old, new in swap.items():
            path = path.replace(old, new)
        shown.append(path)
    return shown


NO_CACHE = "/ (render cache off)"


async def measure(
    url: str,
    runs: int,
    concurrency: Sequence[int],
    seconds: float,
    only: Sequence[str] | None,
    signed_in: bool = False,
) -> None:
    """Every path against a server as shipped; the runboard once more with its render cache
    off, so the figure for a board that changes all the time is there too."""
    shown = paths(runs) if not signed_in else await _signed_in_paths(url, runs)
    wanted = list(only or [*shown, NO_CACHE])
    print(f"\n{'path':<42} {'clients':>7} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for cache_s, group in (
        (5.0, [p for p in wanted if p != NO_CACHE]),
        (0.0, [p for p in wanted if p == NO_CACHE]),
    ):
        if group:
            await _measure_group(url, cache_s, group, concurrency, seconds, signed_in)


async def _measure_group(
    url: str,
    cache_s: float,
    group: Sequence[str],
    concurrency: Sequence[int],
    seconds: float,
    signed_in: bool,
) -> None:
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(
        target=serve, args=(url, port, cache_s, signed_in)
    )
    headers = session_cookie() if signed_in else None
    child.start()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, tries=200)
        for label in group:
            path = "/" if label == NO_CACHE else label
            for c in concurrency:
                r = await drive(base, path, c, seconds, headers)
                flag = "" if r["errors"] == 0 else f"  {r['errors']:.0f} errors!"
                goal = label in ("/", "/runs", NO_CACHE)
                mark = (" ✓" if r["p95"] <= TARGET_P95_MS else " ✗") if goal else ""
                print(
                    f"{label[:42]:<42} {c:>7} {r['rps']:>7.0f} {r['p50']:>7.1f} "
                    f"{r['p95']:>7.1f} {r['p99']:>7.1f}{mark}{flag}",
                    flush=True,
                )
    finally:
        child.terminate()
        child.join()


async def explain(url: str) -> None:
    """The plans of the queries behind the pages, by asking the database itself."""
    db = Database(url)
    engine = db.reader
    sqlite = db.is_sqlite
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
    statements = {
        "runs page": "SELECT * FROM runs ORDER BY id DESC LIMIT 51",
        "by customer": "SELECT * FROM runs WHERE customer_id = 'c07' ORDER BY id DESC LIMIT 51",
        "by status": "SELECT * FROM runs WHERE status = 'failed' ORDER BY id DESC LIMIT 51",
        "by outcome": "SELECT * FROM runs WHERE outcome = 'crit' ORDER BY id DESC LIMIT 51",
        "by check": "SELECT * FROM runs WHERE id IN (SELECT run_id FROM results WHERE "
        "\"check\" = 'http' ORDER BY run_id DESC LIMIT 2000) ORDER BY id DESC LIMIT 51",
        "date to id": "SELECT id FROM runs WHERE created_at >= '2026-01-01' "
        "ORDER BY created_at, id LIMIT 1",
        "latest per customer": "SELECT * FROM runs WHERE customer_id = 'c07' AND status IN "
        "('completed', 'failed') ORDER BY id DESC LIMIT 1",
        "metrics statuses": "SELECT status, count(*) FROM runs GROUP BY status",
        "metrics outcomes": "SELECT outcome, count(*) FROM runs WHERE outcome IS NOT NULL "
        "GROUP BY outcome",
        "recent finished": "SELECT * FROM runs WHERE status NOT IN ('queued', 'running') "
        "ORDER BY id DESC LIMIT 15",
        "queue": "SELECT count(*) FROM runs WHERE status = 'queued'",
        "version": "SELECT max(id) FROM run_events",
        "results of runs": 'SELECT run_id, account, "check", severity FROM results '
        "WHERE run_id IN (1, 2, 3)",
    }
    async with engine.connect() as conn:
        for name, sql in statements.items():
            rows = (await conn.execute(text(prefix + sql))).all()
            plan = "; ".join(str(row[-1]) for row in rows)
            print(f"{name:<20} {plan}")
    await db.close()


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per path and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--sqlite", type=Path, default=SQLITE_FILE)
    parser.add_argument("--explain", action="store_true", help="print query plans and stop")
    parser.add_argument("--only", nargs="+", help="measure only these paths")
    parser.add_argument(
        "--signed-in", action="store_true", help="as a person signed in with Slack (scoped)"
    )
    args = parser.parse_args()
    sqlite_path = args.sqlite.with_stem(f"{args.sqlite.stem}-{args.runs}")
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    targets = [("SQLite", f"sqlite+aiosqlite:///{sqlite_path}")]
    if os.environ.get("TEST_DATABASE_URL"):
        targets.append(
            (
                "PostgreSQL",
                pg_bench_url(os.environ["TEST_DATABASE_URL"], f"mhub_bench_web_{args.runs}"),
            )
        )
    print(
        json.dumps(
            {
                "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                "machine": machine(),
                "runs": args.runs,
            }
        )
    )
    for name, url in targets:
        print(f"\n== {name}")
        asyncio.run(ensure(url, args.runs))
        if args.explain:
            asyncio.run(explain(url))
            continue
        asyncio.run(
            measure(url, args.runs, args.concurrency, args.seconds, args.only, args.signed_in)
        )


if __name__ == "__main__":
    main()
