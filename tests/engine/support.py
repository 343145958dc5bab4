"""Test-only pieces for the run engine: a customer, checks that do exactly what a test needs,
and helpers to queue runs and run an executor. Production code never imports this."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select

from app.catalog import Catalog
from app.config import Account, Customer
from app.db import Database
from app.engine.checking import current_target
from app.engine.executor import Executor, ExecutorOptions
from app.engine.retry import RetryPolicy
from app.models import TERMINAL_STATUSES, Run, RunStatus
from checks.aws import AwsClients
from checks.base import Check, CheckContext, CheckResult, Severity

KIND = "http"
"""The check kind the tests borrow; the test registry maps it to a test check."""

CUSTOMER = Customer(
    id="engine",
    name="Engine test",
    accounts=tuple(
        Account(
            id=alias,
            name=alias.title(),
            account_id=f"{index:012d}",
            regions=("eu-west-1",),
            checks=(KIND,),
        )
        for index, alias in enumerate(("quick", "slow", "other", "flaky"), start=1)
    ),
)
CATALOG = Catalog([CUSTOMER])

Behaviour = Callable[[CheckContext], Awaitable[CheckResult]]


async def ok(_: CheckContext) -> CheckResult:
    return CheckResult(Severity.OK, "fine")


def sleeps(seconds: float, severity: Severity = Severity.OK) -> Behaviour:
    async def run(_: CheckContext) -> CheckResult:
        await asyncio.sleep(seconds)
        return CheckResult(severity, f"slept {seconds:g} s")

    return run


def jitters(max_s: float) -> Behaviour:
    async def run(_: CheckContext) -> CheckResult:
        await asyncio.sleep(random.uniform(0, max_s))
        return CheckResult(Severity.OK, "done")

    return run


def returns(severity: Severity) -> Behaviour:
    async def run(_: CheckContext) -> CheckResult:
        return CheckResult(severity, severity.value)

    return run


class Scripted(Check):
    """Behaves per account; remembers which targets it ran and how many ran at once."""

    kind = KIND

    def __init__(self, default: Behaviour = ok, **by_account: Behaviour) -> None:
        self.default = default
        self.by_account = by_account
        self.calls: list[tuple[int, int, str]] = []
        self.running = 0
        self.most_at_once = 0

    async def run(self, ctx: CheckContext) -> CheckResult:
        target = current_target()
        assert target is not None
        self.calls.append((target.run_id, target.attempt, ctx.account.id))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            return await self.by_account.get(ctx.account.id, self.default)(ctx)
        finally:
            self.running -= 1


async def queue(
    db: Database,
    count: int = 1,
    accounts: Sequence[str] = ("quick",),
    max_attempts: int = 3,
    customer_id: str = CUSTOMER.id,
) -> list[int]:
    """Insert ``count`` queued runs of the test check on ``accounts``; returns their ids."""
    rows = [
        {
            "customer_id": customer_id,
            "requested_by": "test",
            "source": "cli",
            "targets": [{"account": a, "check": KIND} for a in accounts],
            "params": {},
            "status": RunStatus.QUEUED,
            "attempt": 0,
            "max_attempts": max_attempts,
            "created_at": datetime.now(UTC),
        }
        for _ in range(count)
    ]
    async with db.write() as session:
        ids = (await session.execute(insert(Run).returning(Run.id), rows)).scalars().all()
    return sorted(ids)


async def runs(db: Database, ids: Sequence[int] | None = None) -> list[Run]:
    query = select(Run).order_by(Run.id)
    if ids is not None:
        query = query.where(Run.id.in_(ids))
    async with db.read() as session:
        return list((await session.execute(query)).scalars().all())


async def wait_until(
    probe: Callable[[], Awaitable[bool]], limit_s: float = 20.0, every: float = 0.02
) -> None:
    """Poll ``probe`` until it is true; fail the test after ``limit_s`` (a hang guard, not a
    timed assertion)."""
    async with asyncio.timeout(limit_s):
        while True:
            if await probe():
                return
            await asyncio.sleep(every)


async def all_done(db: Database, ids: Sequence[int]) -> bool:
    async with db.read() as session:
        active = await session.scalar(
            select(func.count())
            .select_from(Run)
            .where(Run.id.in_(ids), Run.status.not_in(list(TERMINAL_STATUSES)))
        )
    return active == 0


def fast(**overrides: Any) -> ExecutorOptions:
    """Options for tests: short polls so nothing waits on a timer it does not test."""
    values: dict[str, Any] = {
        "max_runs": 8,
        "lease_s": 5.0,
        "heartbeat_s": 1.0,
        "cancel_poll_s": 0.1,
        "poll_s": 0.05,
        "sweep_s": 0.1,
        "grace_s": 5.0,
    }
    values.update(overrides)
    return ExecutorOptions(**values)


@asynccontextmanager
async def serving(
    db: Database,
    check: Check,
    options: ExecutorOptions | None = None,
    *,
    sweep: bool = False,
    owner: str | None = None,
    retry: RetryPolicy | None = None,
    catalog: Catalog = CATALOG,
) -> AsyncIterator[Executor]:
    """An executor serving in the background; stopped (gracefully) on exit."""
    aws = AwsClients()
    executor = Executor(
        db, catalog, {KIND: check}, aws, options or fast(), retry=retry, owner=owner
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(executor.serve(stop), name="test-executor")]
    if sweep:
        tasks.append(asyncio.create_task(executor.sweep_forever(stop), name="test-sweeper"))
    try:
        yield executor
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        aws.close()
