"""The findings page and ``/api/findings`` with 1,100,000 finding rows in the table.

    uv run python bench/findings_page.py                  # SQLite (seeded once, reused after)
    uv run python bench/findings_page.py --pg [URL]       # PostgreSQL (URL or TEST_DATABASE_URL)
    uv run python bench/findings_page.py --requests 200 --explain

The estate: 1,000 customers of 1,000 findings each (3 accounts, 5 % open, the rest resolved
over a year: about 18 a week), and one big customer of 100,000 findings over 1,000 accounts —
the largest customer the hub is sized for (bench/findings.py: 1,000 accounts × 5 checks × 4
resource lines, 5 % of them problems, is about 1,000 open findings, and 10 % a day resolving
and as many opening fills 100,000 rows in under three years). So the big one has 1 % open
(about 1,000) and 99,000 resolved over a year (about 1,900 in the last week). Findings are
never deleted: most rows are history, which costs nothing here (resolved ones are read as a
range of an index); what a page costs is its customer's *open* findings. Of those, about 10 %
are acknowledged and 8 % snoozed (some of those snoozes ended); each customer has YAML and
Slack mute rules that match some of them (the big one 3 and 10, and one ended).

The web view is served on loopback in a child process with a fixed clock (the seed's), its
start-up objects frozen out of the collector's sight as ``mhub serve`` does; this process sends
``--requests`` requests one after another to each path and prints p50 and p95. Target: p95 at
most 50 ms for every path. ``--explain`` prints the query plans instead.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import random
import statistics
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
from app.config import Account, Customer, SlackSettings, Suppression
from app.db import Database
from app.engine.answers import ANSWER_COLUMNS
from app.engine.runs import RunService
from app.models import Finding, Mute
from app.web import create_app
from app.web.metrics import HubMetrics
from bench.served import free_port, machine, pg_bench_url, plans, wait_ready

T0 = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
"""The seed's "now", and the served view's clock."""
CUSTOMERS = 1000
PER_CUSTOMER = 1000
BIG = "big"
BIG_FINDINGS = 100_000
BIG_ACCOUNTS = 1000
OPEN_SHARE = 0.05
BIG_OPEN_SHARE = 0.01
CHECKS = ("rds", "backup", "alarms", "budget", "http")
ZONES = ("Asia/Jakarta", "Europe/London", "America/New_York", "UTC")
PEOPLE = ("U0ALICE", "U0BOB", "U0CAROL", "U0DAVE")
TARGET_P95_MS = 50.0
SQLITE_FILE = Path("data/bench/findings-page.db")
BATCH = 5000


def _accounts(cid: str, n: int, count: int) -> tuple[Account, ...]:
    return tuple(
        Account(
            id=f"{cid}-a{a:02d}",
            name=f"{cid} account {a}",
            account_id=f"{100000000000 + n * 100 + a}",
            regions=("eu-west-1",),
            checks=CHECKS,
        )
        for a in range(count)
    )


def catalog() -> Catalog:
    customers = [
        Customer(
            id=f"c{n:04d}",
            name=f"Customer {n:04d}",
            timezone=ZONES[n % len(ZONES)],
            slack=SlackSettings(channel=f"C0BENCH{n:04d}"),
            accounts=_accounts(f"c{n:04d}", n, 3),
            suppress=(Suppression(check="rds", resource="scratch-*", reason="scratch runs hot"),),
        )
        for n in range(CUSTOMERS)
    ]
    customers.append(
        Customer(
            id=BIG,
            name="Big Estate",
            timezone="Asia/Jakarta",
            accounts=_accounts(BIG, CUSTOMERS, BIG_ACCOUNTS),
            suppress=(
                Suppression(check="rds", resource="scratch-*", reason="scratch runs hot"),
                Suppression(
                    check="backup",
                    account=f"{BIG}-a03",
                    resource="*",
                    reason="being retired",
                    owner="U0BOB",
                    until=T0.date() + timedelta(days=30),
                ),
                Suppression(check="http", resource="*-dev-*", reason="dev endpoints sleep"),
            ),
        )
    )
    return Catalog(customers)


# -- seeding -----------------------------------------------------------------------------------


def _finding(rng: random.Random, customer: Customer, i: int, open_share: float) -> dict[str, Any]:
    account = customer.accounts[i % len(customer.accounts)]
    check = CHECKS[(i // len(customer.accounts)) % len(CHECKS)]
    kind = rng.random()
    name = "scratch" if kind < 0.03 else "svc-dev" if kind < 0.06 else "svc"
    resource = f"{name}-{i:06d}"
    severity = "crit" if rng.random() < 0.3 else "warn"
    row: dict[str, Any] = {
        "customer_id": customer.id,
        "fingerprint": f"{check}:{account.account_id}:eu-west-1:{resource}:health",
        "account": account.id,
        "region": "eu-west-1",
        "check": check,
        "resource": resource,
        "severity": severity,
        "summary": f"{resource}: {check} {severity} — threshold crossed",
        "last_run_id": 1,
        "looked_run_id": 1,
        "answers": 0,
        **dict.fromkeys(ANSWER_COLUMNS),
    }
    if rng.random() < open_share:
        first = T0 - timedelta(days=rng.uniform(0, 60))
        row |= {
            "status": "open",
            "first_seen_at": first,
            "last_seen_at": max(first, T0 - timedelta(hours=rng.uniform(0, 24))),
            "resolved_at": None,
            "returns": rng.choice((0, 0, 0, 1)),
            "history": rng.choice(("1", "11", "1111", "1101", "10101", "11111111")),
        }
        answer = rng.random()
        who = rng.choice(PEOPLE)
        if answer < 0.10:
            row |= {"ack_by": who, "ack_at": T0 - timedelta(hours=rng.uniform(0, 48))}
        elif answer < 0.18:
            ends = rng.choice((None, 1, 3, 7, 7, 7, -1))
            row |= {
                "snooze_by": who,
                "snooze_at": T0 - timedelta(hours=rng.uniform(1, 48)),
                "snooze_until": None if ends is None else T0 + timedelta(days=ends),
                "snooze_reason": "waiting for the maintenance window",
                "snooze_severity": severity,
                "answers": 1,
            }
    else:
        resolved = T0 - timedelta(days=rng.uniform(0, 365))
        first = resolved - timedelta(hours=rng.uniform(1, 24 * 30))
        row |= {
            "status": "resolved",
            "first_seen_at": first,
            "last_seen_at": resolved - timedelta(minutes=30),
            "resolved_at": resolved,
            "returns": rng.choice((0, 0, 1)),
            "history": rng.choice(("10", "110", "1110", "10110")),
        }
    return row


def _mutes(customer: Customer, n: int) -> list[dict[str, Any]]:
    """One Slack rule per customer (and an ended one); the big customer ten."""
    rules = [
        {"check": "backup", "account": customer.accounts[1].id, "resource": "svc-dev-*"},
        {"check": "alarms", "account": None, "resource": "scratch-*", "ended": True},
    ]
    if customer.id == BIG:
        rules += [
            {"check": c, "account": customer.accounts[a].id, "resource": f"svc-00{a}*"}
            for a, c in zip(range(2, 10), CHECKS * 2, strict=False)
        ]
    return [
        {
            "customer_id": customer.id,
            "check": r["check"],
            "account": r["account"],
            "region": None,
            "resource": r["resource"],
            "reason": "noisy in development",
            "owner": None,
            "until": None,
            "created_by": PEOPLE[n % len(PEOPLE)],
            "created_at": T0 - timedelta(days=3),
            "ended_by": PEOPLE[0] if r.get("ended") else None,
            "ended_at": T0 - timedelta(days=1) if r.get("ended") else None,
        }
        for r in rules
    ]


async def seed(db: Database) -> None:
    rng = random.Random(7)
    customers = list(catalog().customers.values())
    rows: list[dict[str, Any]] = []
    mutes: list[dict[str, Any]] = []
    done = 0
    for n, customer in enumerate(customers):
        mutes += _mutes(customer, n)
        big = customer.id == BIG
        count, share = (BIG_FINDINGS, BIG_OPEN_SHARE) if big else (PER_CUSTOMER, OPEN_SHARE)
        for i in range(count):
            rows.append(_finding(rng, customer, i, share))
            if len(rows) >= BATCH:
                async with db.write() as session:
                    await session.execute(insert(Finding), rows)
                done += len(rows)
                rows = []
                print(f"\r  seeded {done:,} findings", end="", file=sys.stderr, flush=True)
    async with db.write() as session:
        if rows:
            await session.execute(insert(Finding), rows)
        await session.execute(insert(Mute), mutes)
    print(file=sys.stderr)
    async with db.writer.connect() as conn:  # what autovacuum (or a hub's ANALYZE) would do
        await conn.execute(text("ANALYZE"))
        await conn.commit()


def expected() -> int:
    return CUSTOMERS * PER_CUSTOMER + BIG_FINDINGS


async def ensure(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
        async with db.read() as session:
            have = (await session.execute(select(func.count()).select_from(Finding))).scalar_one()
        if have != expected():
            if have:
                raise SystemExit(f"{url} holds {have:,} findings, not {expected():,}; remove it")
            print(f"seeding {expected():,} findings into {url.split('@')[-1]} …", file=sys.stderr)
            began = time.perf_counter()
            await seed(db)
            print(f"  done in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    finally:
        await db.close()


# -- serving (child process) -------------------------------------------------------------------


def serve(url: str, port: int) -> None:
    async def main() -> None:
        db = Database(url)
        app = create_app(
            db=db,
            runs=RunService(db),
            catalog=catalog(),
            metrics=HubMetrics(),
            clock=lambda: T0,
        )
        gc.collect()  # as mhub serve does after start-up (app/main.py)
        gc.freeze()
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            await db.close()

    asyncio.run(main())


PATHS = (
    "/customers/c0042/findings",
    f"/customers/{BIG}/findings",
    "/api/findings?customer=c0042",
    f"/api/findings?customer={BIG}",
    f"/api/findings?customer={BIG}&state=open",
    f"/api/findings?customer={BIG}&state=acknowledged",
    f"/api/findings?customer={BIG}&state=snoozed",
    f"/api/findings?customer={BIG}&state=muted",
    f"/api/findings?customer={BIG}&state=resolved",
)


async def drive(base: str, path: str, requests: int) -> dict[str, float]:
    """``requests`` requests one after another (keep-alive), after a few to warm up."""
    latencies: list[float] = []
    size = 0
    async with aiohttp.ClientSession(base) as session:
        for n in range(requests + 5):
            began = time.perf_counter()
            async with session.get(path) as response:
                body = await response.read()
                if response.status != 200:
                    raise SystemExit(f"{path}: {response.status} {body[:300]!r}")
            if n >= 5:
                latencies.append((time.perf_counter() - began) * 1000)
                size = len(body)
    cuts = statistics.quantiles(latencies, n=100)
    return {"p50": cuts[49], "p95": cuts[94], "max": max(latencies), "kb": size / 1024}


async def measure(url: str, requests: int, only: Sequence[str] | None) -> None:
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(target=serve, args=(url, port))
    child.start()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        print(f"\n{'path':<48} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'KiB':>6}")
        for path in only or PATHS:
            r = await drive(base, path, requests)
            mark = "✓" if r["p95"] <= TARGET_P95_MS else "✗"
            print(
                f"{path:<48} {r['p50']:>7.1f} {r['p95']:>7.1f} {r['max']:>7.1f} "
                f"{r['kb']:>6.0f} {mark}",
                flush=True,
            )
    finally:
        child.terminate()
        child.join()


# -- plans -------------------------------------------------------------------------------------


async def explain(url: str) -> None:
    """The plans of the findings queries, asked of the database itself."""
    from app.web import standings

    for name, plan in (await plans(url, standings.statements(BIG, T0))).items():
        print(f"{name:<32} {'; '.join(plan)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="per path")
    parser.add_argument(
        "--pg", nargs="?", const=os.environ.get("TEST_DATABASE_URL"), default=None,
        help="PostgreSQL instead of SQLite: a URL, or TEST_DATABASE_URL when none is given",
    )  # fmt: skip
    parser.add_argument("--sqlite", type=Path, default=SQLITE_FILE)
    parser.add_argument("--explain", action="store_true", help="print query plans and stop")
    parser.add_argument("--only", nargs="+", help="measure only these paths")
    args = parser.parse_args()
    if args.pg is not None or "--pg" in sys.argv:
        if not args.pg:
            raise SystemExit("--pg needs a URL, or TEST_DATABASE_URL set")
        name, url = "PostgreSQL", pg_bench_url(args.pg, "mhub_bench_findings_page")
    else:
        args.sqlite.parent.mkdir(parents=True, exist_ok=True)
        name, url = "SQLite", f"sqlite+aiosqlite:///{args.sqlite}"
    today = datetime.now(UTC).date().isoformat()
    print(json.dumps({"date": today, "machine": machine(), "db": name, "findings": expected()}))
    asyncio.run(ensure(url))
    if args.explain:
        asyncio.run(explain(url))
        return
    asyncio.run(measure(url, args.requests, args.only))


if __name__ == "__main__":
    main()
