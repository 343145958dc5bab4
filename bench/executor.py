"""Executor throughput and latency for no-op checks.

    uv run python bench/executor.py [--runs 5000] [--pg postgresql+asyncpg://...]

Prints runs/s claimed and completed on SQLite (one process) and on PostgreSQL (one process and
four processes), and submit-to-claim latency p50/p99 on an idle executor. PostgreSQL uses
``--pg`` or ``TEST_DATABASE_URL`` and creates (then drops) a throwaway database beside it; it is
skipped when neither is set. Timestamps come from the runs table (the database clock), so
figures are from first claim to last completion.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import func, insert, select

from app.catalog import Catalog, Plan
from app.config import Account, Customer
from app.db import Database
from app.engine.executor import Executor, ExecutorOptions
from app.engine.runs import Submit
from app.main import Hub, build
from app.models import Run, RunStatus, Source
from app.settings import Settings
from checks.aws import AwsClients
from checks.base import Check, CheckContext, CheckResult, Severity
from tests.conftest import pg_database as new_pg_database

pg_database = contextmanager(new_pg_database)  # a fresh database beside --pg, dropped after

NOOP = Account(
    id="noop", name="No-op", account_id="000000000001", regions=("eu-west-1",), checks=("http",)
)
CUSTOMER = Customer(id="bench", name="Bench", accounts=(NOOP,))
CATALOG = Catalog([CUSTOMER])
OPTIONS = ExecutorOptions(max_runs=256, poll_s=0.05)


class Noop(Check):
    kind: ClassVar[str] = "http"

    async def run(self, ctx: CheckContext) -> CheckResult:
        return CheckResult(Severity.OK, "nothing to see")


def executor(db: Database, owner: str | None = None) -> tuple[Executor, AwsClients]:
    aws = AwsClients()
    return Executor(db, CATALOG, {"http": Noop()}, aws, OPTIONS, owner=owner), aws


async def queue(db: Database, count: int) -> None:
    row = {
        "customer_id": CUSTOMER.id,
        "requested_by": "bench",
        "source": "cli",
        "targets": [{"account": "noop", "check": "http"}],
        "params": {},
        "status": RunStatus.QUEUED,
        "attempt": 0,
        "max_attempts": 3,
        "created_at": datetime.now(UTC),
    }
    async with db.write() as session:
        await session.execute(insert(Run), [row] * count)


async def wait_done(db: Database, count: int) -> None:
    while True:
        async with db.read() as session:
            done = await session.scalar(
                select(func.count()).select_from(Run).where(Run.status == RunStatus.COMPLETED)
            )
        if done == count:
            return
        await asyncio.sleep(0.1)


async def rates(db: Database, count: int) -> tuple[float, float]:
    async with db.read() as session:
        query = select(
            func.min(Run.started_at), func.max(Run.started_at), func.max(Run.finished_at)
        )
        first, last_claim, last_done = (await session.execute(query)).one()
    assert first is not None and last_claim is not None and last_done is not None
    claimed = count / max((last_claim - first).total_seconds(), 1e-6)
    completed = count / max((last_done - first).total_seconds(), 1e-6)
    return claimed, completed


@asynccontextmanager
async def serving(db: Database) -> AsyncIterator[Hub]:
    """The hub as ``mhub serve`` builds it (no Slack, no web), its executor serving."""
    settings = Settings(DATABASE_URL=db.url)
    async with build(settings, CATALOG, db=db, registry={"http": Noop()}, executor=OPTIONS) as hub:
        stop = asyncio.Event()
        task = asyncio.create_task(hub.executor.serve(stop))
        try:
            yield hub
        finally:
            stop.set()
            await task


async def throughput_in_process(url: str, count: int) -> tuple[float, float]:
    db = Database(url)
    await db.upgrade()
    await queue(db, count)
    async with serving(db):
        await wait_done(db, count)
    result = await rates(db, count)
    await db.close()
    return result


async def latency(url: str, samples: int) -> tuple[float, float]:
    """Submit one run at a time to an idle executor in the same process (the path a Slack
    command takes: the replica that receives it submits it and claims it)."""
    db = Database(url)
    await db.upgrade()
    plan = Plan(CUSTOMER, (("noop", "http"),))
    waits: list[float] = []
    async with serving(db) as hub:
        service, ex = hub.runs, hub.executor
        for _ in range(samples):
            run, _ = await service.submit(Submit(plan, "bench", Source.CLI))
            while True:
                view = await service.get(run.id)
                if view.terminal and not ex.active:
                    break
                await asyncio.sleep(0.005)
            assert view.run.started_at is not None
            waits.append((view.run.started_at - view.run.created_at).total_seconds() * 1000)
            await asyncio.sleep(0.02)
    await db.close()
    return percentile(waits, 50), percentile(waits, 99)


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


# -- PostgreSQL, several processes -------------------------------------------------------------


async def worker(url: str, owner: str) -> None:
    db = Database(url)
    ex, aws = executor(db, owner)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await ex.serve(stop)
    aws.close()
    await db.close()


def throughput_processes(url: str, count: int, processes: int) -> tuple[float, float]:
    """``processes`` executor processes; the runs are queued once all of them are polling."""
    asyncio.run(migrate(url))
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, "--owner", f"bench-{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        return asyncio.run(queue_and_wait(url, count))
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(timeout=60)


async def migrate(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await db.close()


async def queue_and_wait(url: str, count: int) -> tuple[float, float]:
    db = Database(url)
    await queue(db, count)
    await wait_done(db, count)
    result = await rates(db, count)
    await db.close()
    return result


def report(label: str, claimed: float, completed: float) -> None:
    print(f"{label:<34} {claimed:>8,.0f} runs/s claimed {completed:>8,.0f} runs/s completed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--pg", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--worker")
    parser.add_argument("--owner")
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.owner))
        return
    print(
        f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"{datetime.now(UTC):%Y-%m-%d} · {args.runs} no-op runs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite+aiosqlite:///{tmp}"
        claimed, completed = asyncio.run(throughput_in_process(f"{sqlite}/t.db", args.runs))
        report("SQLite, 1 process", claimed, completed)
        p50, p99 = asyncio.run(latency(f"{sqlite}/l.db", args.samples))
        print(f"{'SQLite submit-to-claim (idle)':<34} p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    if not args.pg:
        print("PostgreSQL skipped: pass --pg or set TEST_DATABASE_URL")
        return
    with pg_database(args.pg) as url:
        report("PostgreSQL, 1 process", *asyncio.run(throughput_in_process(url, args.runs)))
    with pg_database(args.pg) as url:
        report("PostgreSQL, 4 processes", *throughput_processes(url, args.runs, 4))
    with pg_database(args.pg) as url:
        p50, p99 = asyncio.run(latency(url, args.samples))
        print(f"{'PostgreSQL submit-to-claim (idle)':<34} p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
