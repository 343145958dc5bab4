"""What keeping findings up to date adds to recording a 1,000-account run.

    uv run python bench/findings.py [--accounts 1000] [--repeat 5] [--batch 100] [--bare]
        [--route] [--pg postgresql+asyncpg://...] [--profile]

One customer's run of 1,000 accounts × 5 checks (5,000 results), each result listing 4
resource lines built with ``checks.base.resource`` (20,000 lines), 5 % of them ``warn`` or
``crit``. The results are recorded as the executor's writer records them, in transactions of
``--batch`` rows: ``transitions.record`` (the lease guard, the results, their
``check_finished`` events), the last with ``transitions.complete`` — *without* — or (*with*)
the same while making each result's look as it comes, then ``findings.apply`` of all the run's
looks in the last transaction, which is what the executor and its writer do. ``--bare``
records with ``insert_results`` alone instead (the smallest baseline: no guard, no events).
``--route``: the customer routes its findings (PagerDuty, a webhook), and *with* also decides
and queues what they need sent at the run's end (``Router.route``), as the writer does.

Two passes per repetition, each a fresh run of a fresh customer: *first* (no findings yet:
every problem opens one) and *steady* (the next run of the same customer: 90 % of the problems
are seen again, 10 % resolve and as many new ones open — the daily case). The two variants
alternate which goes first. Prints the median seconds per pass and variant, and the ratio
(with − without) / without. SQLite runs on a file in a temporary directory; PostgreSQL uses
``--pg`` or ``TEST_DATABASE_URL`` and creates (then drops) a throwaway database beside it.
``--profile`` instead times making the steady run's looks, each statement of their ``apply``,
and prints a cProfile of both, on SQLite and (with ``--pg``) PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import platform
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import Catalog
from app.config import Account, Customer, PagerDutyRoute, Routing, WebhookRoute
from app.db import Database
from app.engine import blind, findings
from app.engine import transitions as tx
from app.engine.alerts import Router
from app.engine.results import ResultRow, insert_results
from app.models import Finding, Run, RunStatus
from checks.base import Severity, resource
from tests.conftest import pg_database as new_pg_database

pg_database = contextmanager(new_pg_database)  # a fresh database beside --pg, dropped after

CHECKS = ("backup", "rds", "alarms", "budget", "http")
LINES = 4
PROBLEM_SHARE = 0.05
RESOLVED_SHARE = 0.10
"""Of the first run's problems, the share the next run no longer sees (as many new appear)."""
REGIONS = ("eu-west-1", "eu-central-1")
T0 = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Estate:
    """Which resource lines are problems in the first and in the next run."""

    accounts: int
    first: frozenset[int]
    steady: frozenset[int]

    @classmethod
    def make(cls, accounts: int, seed: int = 7) -> Estate:
        rng = random.Random(seed)
        lines = accounts * len(CHECKS) * LINES
        first = {i for i in range(lines) if rng.random() < PROBLEM_SHARE}
        gone = {i for i in first if rng.random() < RESOLVED_SHARE}
        new = set(rng.sample(sorted(set(range(lines)) - first), len(gone)))
        return cls(accounts, frozenset(first), frozenset((first - gone) | new))


def rows_of(
    estate: Estate, run_id: int, customer: str, problems: frozenset[int], at: datetime
) -> list[ResultRow]:
    """The run's 5,000 results, 4 resource lines each."""
    rows: list[ResultRow] = []
    line = 0
    for a in range(estate.accounts):
        account, account_id = f"acct{a:04d}", f"{100000000000 + a:012d}"
        for check in CHECKS:
            resources = []
            for n in range(LINES):
                bad = line in problems
                severity = (
                    (Severity.CRIT if line % 3 == 0 else Severity.WARN) if bad else Severity.OK
                )
                rid = f"{check}-{a:04d}-{n}"
                resources.append(
                    resource(
                        check,
                        account_id,
                        REGIONS[n % 2],
                        rid,
                        "state",
                        severity,
                        f"{rid} is {'not ' if bad else ''}as it should be",
                    )
                )
                line += 1
            resources.sort(key=lambda r: r["severity"] == "ok")  # problems first
            worst = max(
                (r["severity"] for r in resources),
                key=("ok", "warn", "crit").index,
            )
            rows.append(
                ResultRow(
                    run_id=run_id,
                    attempt=1,
                    account=account,
                    check=check,
                    severity=worst,
                    summary=f"{sum(r['severity'] != 'ok' for r in resources)} of {LINES} resources",
                    details={"resources": resources},
                    series={},
                    started_at=at,
                    finished_at=at,
                    actor="executor:bench",
                    customer_id=customer,  # as the executor passes it
                )
            )
    return rows


async def new_run(db: Database, customer: str, accounts: int) -> tx.Lease:
    """A queued run of ``accounts`` × the checks, claimed: the lease the writer records under."""
    row = {
        "customer_id": customer,
        "requested_by": "bench",
        "source": "cli",
        "targets": [
            {"account": f"acct{a:04d}", "check": c} for a in range(accounts) for c in CHECKS
        ],
        "params": {},
        "status": RunStatus.QUEUED,
        "attempt": 0,
        "max_attempts": 3,
        "created_at": T0,
    }
    async with db.write() as session:
        run_id = await session.scalar(insert(Run).returning(Run.id), [row])
        assert run_id is not None
        claimed = await tx.claim(session, db, "executor:bench", 3600, run_id)
    assert claimed is not None
    return tx.Lease.of(claimed)


def routed(customer_id: str) -> Catalog:
    """A catalog whose ``customer_id`` routes crit to PagerDuty and crit and warn to a webhook
    (nothing is sent here: only what the run's end decides and queues is timed)."""
    return Catalog([
        Customer(
            id=customer_id, name=customer_id,
            accounts=(Account(id="acct0000", name="acct0000", account_id="100000000000",
                              regions=REGIONS),),
            routing=Routing(
                pagerduty=PagerDutyRoute(routing_key_env="PD_KEY_BENCH"),
                webhooks=(WebhookRoute(url_env="BENCH_HOOK_URL", secret_env="BENCH_HOOK_SECRET",
                                       severities=("crit", "warn")),),
            ),
        )
    ])  # fmt: skip


async def record(
    db: Database,
    lease: tx.Lease,
    rows: Sequence[ResultRow],
    batch: int,
    keep: bool,
    bare: bool,
    route: bool = False,
) -> float:
    """Seconds to record ``rows`` in transactions of ``batch`` rows, as the executor's writer
    does: ``transitions.record`` (the lease guard, the results, their ``check_finished``
    events), the last batch with ``transitions.complete``. With ``keep``, each result's look is
    made as it comes (the executor makes it as the check finishes) and the run's looks are
    applied to the findings in that last transaction (the writer applies them there), and
    whether each could look kept in the ``sights`` (blind spots) with them.
    ``bare``: ``insert_results`` alone, nothing else of the writer. ``route``: the customer
    routes its findings, and that last transaction also queues what they need sent."""
    customer = rows[0].customer_id or "" if rows else ""
    router = Router(db, lambda: routed(customer)) if keep and route else None
    start = time.perf_counter()
    looks: list[findings.Look] = []
    sightings: list[blind.Sighting] = []
    for i in range(0, len(rows), batch):
        part = rows[i : i + batch]
        last = i + batch >= len(rows)
        if keep:
            looks.extend(findings.looks_of(part, {r.run_id: r.customer_id or "" for r in part}))
            sightings.extend(blind.sightings_of(part))
        async with db.write() as session:
            if bare:
                await insert_results(session, db, part)
            elif last:
                await tx.complete(session, db, [lease], "crit", part)
            else:
                await tx.record(session, db, [lease], part)
            if keep and last:
                await findings.apply(session, db, looks)
                at = max(s.at for s in sightings)
                await blind.keep(session, db, customer, lease.run_id, sightings, at)
                if router is not None:
                    await router.route(session, [customer])
    return time.perf_counter() - start


async def one_pass(
    db: Database,
    estate: Estate,
    customer: str,
    steady: bool,
    batch: int,
    keep: bool,
    bare: bool,
    route: bool = False,
) -> float:
    lease = await new_run(db, customer, estate.accounts)
    problems, at = (estate.steady, T0 + timedelta(days=1)) if steady else (estate.first, T0)
    rows = rows_of(estate, lease.run_id, customer, problems, at)
    return await record(db, lease, rows, batch, keep, bare, route)


async def bench(url: str, args: argparse.Namespace, label: str) -> None:
    db = Database(url)
    await db.upgrade()
    estate = Estate.make(args.accounts)
    times: dict[tuple[str, bool], list[float]] = {}
    for rep in range(args.repeat):
        order = (False, True) if rep % 2 == 0 else (True, False)
        for keep in order:
            customer = f"bench-{rep}-{'with' if keep else 'without'}"
            for steady in (False, True):
                took = await one_pass(
                    db, estate, customer, steady, args.batch, keep, args.bare, args.route
                )
                times.setdefault(("steady" if steady else "first", keep), []).append(took)
    async with db.read() as session:
        counts = dict(
            (
                await session.execute(
                    select(Finding.status, func.count())
                    .where(Finding.customer_id == "bench-0-with")
                    .group_by(Finding.status)
                )
            ).all()
        )
    await db.close()
    print(
        f"{label}: findings of one customer after both passes: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )
    for kind in ("first", "steady"):
        without = statistics.median(times[(kind, False)])
        with_ = statistics.median(times[(kind, True)])
        spread = " ".join(f"{t:.2f}" for t in times[(kind, True)])
        base = " ".join(f"{t:.2f}" for t in times[(kind, False)])
        print(
            f"{label:<11} {kind:<7} without {without:6.3f} s  with {with_:6.3f} s  "
            f"+{(with_ - without) / without:6.1%}   (without: {base}; with: {spread})"
        )


async def profile(url: str, args: argparse.Namespace, label: str) -> None:
    """cProfile of the steady run's looks and their apply(), and each statement's wall time
    (the database's share, which the profile of this thread does not show)."""
    db = Database(url)
    await db.upgrade()
    estate = Estate.make(args.accounts)
    await one_pass(db, estate, "profile", False, args.batch, True, True)
    run_id = (await new_run(db, "profile", estate.accounts)).run_id
    rows = rows_of(estate, run_id, "profile", estate.steady, T0 + timedelta(days=1))
    statements: dict[str, list[float]] = {}

    def timing(session: AsyncSession) -> None:
        execute = session.execute

        async def timed(statement: Any, *more: Any, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return await execute(statement, *more, **kw)
            finally:
                took = time.perf_counter() - start
                statements.setdefault(type(statement).__name__, []).append(took)

        session.execute = timed  # type: ignore[method-assign]

    async with db.write() as session:
        await insert_results(session, db, rows)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    looks = findings.looks_of(rows, {run_id: "profile"})
    profiler.disable()
    made = time.perf_counter() - start
    async with db.write() as session:
        timing(session)
        start = time.perf_counter()
        profiler.enable()
        await findings.apply(session, db, looks)
        profiler.disable()
        applied = time.perf_counter() - start
    await db.close()
    print(
        f"{label}: the steady run's {len(rows):,} results: looks made in {made * 1000:.1f} ms, "
        f"applied in {applied * 1000:.1f} ms; per statement (median, count): "
        + ", ".join(
            f"{n} {statistics.median(t) * 1000:.1f} ms ×{len(t)}" for n, t in statements.items()
        )
    )
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--route", action="store_true")
    parser.add_argument("--pg", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    results = args.accounts * len(CHECKS)
    print(
        f"{platform.node()} · {platform.platform()} · {os.cpu_count()} CPUs · "
        f"Python {platform.python_version()} · SQLAlchemy {sqlalchemy.__version__} · "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{results:,} results × {LINES} lines ({results * LINES:,}), "
        f"{PROBLEM_SHARE:.0%} problems; transactions of {args.batch} rows; "
        f"{args.repeat} repetitions{'; insert_results alone' if args.bare else ''}"
        f"{'; the customer routes (with: findings and routing)' if args.route else ''}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            asyncio.run(profile(f"sqlite+aiosqlite:///{tmp}/profile.db", args, "SQLite"))
        elif not args.no_sqlite:
            asyncio.run(bench(f"sqlite+aiosqlite:///{tmp}/bench.db", args, "SQLite"))
    if not args.pg:
        print("PostgreSQL skipped: pass --pg or set TEST_DATABASE_URL")
        return
    with pg_database(args.pg) as url:
        if args.profile:
            asyncio.run(profile(url, args, "PostgreSQL"))
        else:
            asyncio.run(bench(url, args, "PostgreSQL"))
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
