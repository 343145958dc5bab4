"""How long a month's report of a 50-account customer takes to serve, as a page and a PDF.

    uv run python bench/reports.py [--repeat 5] [--accounts 50] [--others 9] [--pg [URL]]
        [--explain]

A month (November 2026, Asia/Jakarta) of hourly runs of one customer, each looking at every
account once: 720 runs × 50 accounts = 36,000 results, shaped as the checks write them
(tests/reports/seed.py). The accounts take the five kinds in turn, a fifth each: HTTP (2
endpoints, one down now and then), backup (2 resources, a 48-hour window: every job seen twice,
one failing now and then), RDS (2 instances with their figures, one running hot now and then),
alarms (one firing now and then) and budgets. ``--others`` more customers have the same month,
so the report reads a tenth of the tables, as in an estate. The report is then asked of the
real web view (aiohttp, in this process, over loopback) ``--repeat`` times per form: the page
(``/customers/<id>/reports/2026-11``) and the PDF (``….pdf``), each building the report from
the database. Prints the median and the slowest seconds per form and the time to build the
report alone; ``--explain`` prints the plans of the report's queries first.

SQLite runs on a file in a temporary directory; PostgreSQL uses ``--pg`` or
``TEST_DATABASE_URL`` and a database of its own beside it, kept so the months are seeded once
(and analysed, as autovacuum would).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the seed lives in tests/

from app.catalog import Catalog
from app.config import Account, Customer, SlackSettings
from app.db import Database
from app.engine.runs import RunService
from app.models import Result
from app.reports import gather
from app.reports.gather import Reports
from app.reports.period import month_of
from app.web import create_app
from app.web.metrics import HubMetrics
from bench.served import machine, pg_bench_url, plans
from tests.reports.seed import (
    History,
    alarm_details,
    backup_details,
    budget_details,
    http_line,
    rds_details,
)

WIB = ZoneInfo("Asia/Jakarta")
START = datetime(2026, 11, 1, tzinfo=WIB)
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
KINDS = ("http", "backup", "rds", "alarms", "budget")


def customer(accounts: int) -> Customer:
    return Customer(
        id="big",
        name="Big Estate",
        timezone="Asia/Jakarta",
        slack=SlackSettings(channel="C0BIG00001"),
        accounts=tuple(
            Account(
                id=f"acct-{i:03d}",
                name=f"Account {i}",
                account_id=f"{100000000000 + i}",
                regions=("ap-southeast-3",),
                checks=(KINDS[i % len(KINDS)],),
            )
            for i in range(accounts)
        ),
        checks={"http": {"endpoints": [{"name": "e", "url": "https://e.example.com"}]}},
    )


def details(kind: str, i: int, hour: int, at: datetime) -> tuple[str, dict[str, Any]]:
    """One account's look of ``kind`` at the month's ``hour``."""
    aid = f"{100000000000 + i}"
    if kind == "http":
        down = hour % 97 == i % 97
        lines = [http_line(aid, f"site-{i}-{n}", down=down and n == 0) for n in range(2)]
        return ("crit" if down else "ok"), {"endpoints": 2, "resources": lines}
    if kind == "backup":
        jobs = [
            (f"j{i}-{r}-{d}", "FAILED" if (d + i + r) % 31 == 0 else "COMPLETED", f"vol-{r}",
             (at - timedelta(days=d)).replace(minute=0))
            for r in range(2) for d in range(2)
        ]  # fmt: skip
        return "ok", backup_details(jobs)
    if kind == "rds":
        cpu = 30.0 + (hour * 7 + i) % 65
        looked = rds_details(aid, f"db-{i}-0", cpu, 60.0 - hour / 24)
        other = rds_details(aid, f"db-{i}-1", 20.0, 80.0)
        looked["resources"] += other["resources"]
        looked["metrics"].update(other["metrics"])
        return ("crit" if cpu >= 90 else "ok"), looked
    if kind == "alarms":
        firing = [("cpu-high", None, at.replace(minute=0))] if (hour // 5 + i) % 11 == 0 else []
        return ("crit" if firing else "ok"), alarm_details(aid, firing)
    return "ok", budget_details(aid, "monthly", 100.0 + hour, 2_000.0, 2_100.0)


def month(accounts: int, customer: str = "big") -> History:
    history = History(customer)
    for hour in range(30 * 24):
        at = START + timedelta(hours=hour)
        looks = []
        for i in range(accounts):
            kind = KINDS[i % len(KINDS)]
            severity, found = details(kind, i, hour, at)
            looks.append((f"acct-{i:03d}", kind, severity, found))
        history.run(at, looks)
    return history


async def seed(url: str, accounts: int, others: int) -> int:
    """The month, and the same month of ``others`` customers as large (so the report reads a
    slice of the table, as it would in an estate), written once: a PostgreSQL database of the
    bench's own keeps them."""
    db = Database(url)
    try:
        await db.upgrade()
        async with db.read() as session:
            have = (await session.execute(select(func.count()).select_from(Result))).scalar_one()
        if have == 30 * 24 * accounts * (1 + others):
            return have
        if have:
            raise SystemExit(f"{url.split('@')[-1]} holds {have:,} results, not this month's")
        offset = 0
        for customer in ("big", *(f"other-{i}" for i in range(others))):
            history = month(accounts, customer)
            await history.write(db, offset=offset)
            offset += len(history.runs)
        async with db.writer.connect() as conn:  # the planner's statistics, as autovacuum would
            await conn.execute(text("ANALYZE"))
            await conn.commit()
        return len(history.results) * (1 + others)
    finally:
        await db.close()


async def measure(url: str, accounts: int, repeat: int) -> dict[str, Any]:
    db = Database(url)
    catalog = Catalog([customer(accounts)])
    reports = Reports(db, catalog, clock=lambda: NOW)
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=catalog,
        metrics=HubMetrics(),
        reports=reports,
        clock=lambda: NOW,
    )
    gc.collect()  # as mhub serve does after start-up (app/main.py)
    gc.freeze()
    times: dict[str, list[float]] = {"build": [], "page": [], "pdf": []}
    sizes: dict[str, int] = {}
    async with TestClient(TestServer(app)) as client:
        period = month_of(catalog.customer("big"), "2026-11", NOW)
        for _ in range(repeat):
            began = time.perf_counter()
            await reports.build("big", period)
            times["build"].append(time.perf_counter() - began)
            for form, path in (
                ("page", "/customers/big/reports/2026-11"),
                ("pdf", "/customers/big/reports/2026-11.pdf"),
            ):
                began = time.perf_counter()
                answer = await client.get(path)
                body = await answer.read()
                times[form].append(time.perf_counter() - began)
                if answer.status != 200:
                    raise SystemExit(f"{path}: {answer.status} {body[:200]!r}")
                sizes[form] = len(body)
    await db.close()
    return {
        form: {
            "median_s": round(statistics.median(values), 3),
            "max_s": round(max(values), 3),
            **({"bytes": sizes[form]} if form in sizes else {}),
        }
        for form, values in times.items()
    }


async def explain(url: str) -> None:
    """The plans of the report's queries, asked of the database itself."""
    start, until = START.astimezone(UTC), NOW
    statements = {
        "every look, no details": gather.looks_query("big", start, until, details=False),
        "one kind's looks (http)": gather.looks_query(
            "big", start, until, details=True, check="http"
        ),
    }
    for name, plan in (await plans(url, statements)).items():
        print(f"{name}:")
        for line in plan:
            print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--others", type=int, default=9, help="other customers as large")
    parser.add_argument(
        "--pg", nargs="?", const=os.environ.get("TEST_DATABASE_URL"), default=None,
        help="PostgreSQL instead of SQLite: a URL, or TEST_DATABASE_URL when none is given",
    )  # fmt: skip
    parser.add_argument("--explain", action="store_true", help="print the query plans too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = "--pg" in sys.argv
        if pg:
            if not args.pg:
                raise SystemExit("--pg needs a URL, or TEST_DATABASE_URL set")
            url = pg_bench_url(args.pg, f"mhub_bench_reports_{args.accounts}_{args.others}")
        else:
            url = f"sqlite+aiosqlite:///{tmp}/hub.db"
        began = time.perf_counter()
        results = asyncio.run(seed(url, args.accounts, args.others))
        seeded = time.perf_counter() - began
        if args.explain:
            asyncio.run(explain(url))
        figures = asyncio.run(measure(url, args.accounts, args.repeat))
    print(
        json.dumps(
            {
                "date": datetime.now(UTC).date().isoformat(),
                "machine": machine(),
                "db": "PostgreSQL" if pg else "SQLite",
                "accounts": args.accounts,
                "other_customers": args.others,
                "results": results,
                "seeded_s": round(seeded, 1),
                "repeat": args.repeat,
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
