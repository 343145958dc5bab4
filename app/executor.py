"""The in-process executor: claim queued runs, fan out account × check, record results.

A claimed run holds a lease that its heartbeat extends; every write is a compare-and-set on
(status, attempt), so a worker that lost its lease cannot overwrite the run's new owner. A
check may run more than once (after a crash the next attempt repeats the checks that had not
recorded a result); checks are read-only, so that is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from app import transitions as tx
from app.catalog import Catalog
from app.config import Customer
from app.db import Database
from app.models import Result, Run, RunStatus
from app.retry import RetryPolicy
from checks.aws import AwsClients
from checks.base import Check, CheckContext, CheckError, CheckResult, Severity

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ExecutorOptions:
    max_runs: int = 4
    max_targets: int = 16
    check_timeout_s: float = 120.0
    lease_s: float = 30.0
    heartbeat_s: float = 5.0
    poll_s: float = 0.5
    sweep_s: float = 10.0
    grace_s: float = 20.0


@dataclass
class _Active:
    run: Run
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled_by: str | None = None
    task: asyncio.Task[None] | None = None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Executor:
    def __init__(
        self,
        db: Database,
        catalog: Callable[[], Catalog],
        registry: Mapping[str, Check],
        aws: AwsClients,
        options: ExecutorOptions | None = None,
        retry: RetryPolicy | None = None,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.registry = registry
        self.aws = aws
        self.options = options or ExecutorOptions()
        self.retry = retry or RetryPolicy()
        self.owner = owner or worker_id()
        self.active: dict[int, _Active] = {}
        self._wake = asyncio.Event()
        self._listeners: list[Callable[[int], None]] = []
        self.last_loop_at: datetime | None = None

    def on_change(self, listener: Callable[[int], None]) -> None:
        """Called with a run id whenever a run this executor owns changes."""
        self._listeners.append(listener)

    def _changed(self, run_id: int) -> None:
        for listener in self._listeners:
            listener(run_id)

    def poke(self, run_id: int) -> None:
        """A run was submitted or flagged in this process: claim or look at it now."""
        self._wake.set()
        active = self.active.get(run_id)
        if active is not None:
            active.poke.set()

    # -- main loop ----------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        """Claim and run until ``stop`` is set, then drain within the grace period."""
        try:
            while not stop.is_set():
                self.last_loop_at = datetime.now(UTC)
                claimed = await self._fill()
                if not claimed:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.options.poll_s)
        finally:
            await self.drain()

    async def _fill(self) -> bool:
        claimed = False
        while len(self.active) < self.options.max_runs:
            run = await self.claim()
            if run is None:
                break
            self.start(run)
            claimed = True
        return claimed

    async def claim(self, run_id: int | None = None) -> Run | None:
        async with self.db.write() as session:
            return await tx.claim(session, self.db, self.owner, self.options.lease_s, run_id)

    def start(self, run: Run) -> asyncio.Task[None]:
        active = _Active(run)
        self.active[run.id] = active
        active.task = asyncio.create_task(self._process(active), name=f"run-{run.id}")
        active.task.add_done_callback(lambda _: self.active.pop(run.id, None))
        self._changed(run.id)
        return active.task

    async def run_until_done(self, run_id: int) -> None:
        """Run one run in this process (``mhub run``), or wait while another process does."""
        run = await self.claim(run_id)
        if run is not None:
            await self.start(run)
            return
        while True:
            async with self.db.read() as session:
                status = (
                    await session.execute(select(Run.status).where(Run.id == run_id))
                ).scalar_one()
            if status not in (RunStatus.QUEUED, RunStatus.RUNNING):
                return
            await asyncio.sleep(self.options.poll_s)

    async def drain(self) -> None:
        """Graceful shutdown: let running runs finish within the grace, then requeue them
        without consuming an attempt."""
        tasks = [a.task for a in self.active.values() if a.task is not None]
        if not tasks:
            return
        log.info("waiting up to %.0f s for %d running run(s)", self.options.grace_s, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.options.grace_s)
        for active in list(self.active.values()):
            if active.task in pending:
                active.task.cancel()
        if pending:
            await asyncio.wait(pending)

    # -- one run ------------------------------------------------------------------------

    async def _process(self, active: _Active) -> None:
        run = active.run
        customer = self.catalog().customers.get(run.customer_id)
        if customer is None:
            await self._final(
                tx.fail,
                run,
                f'customer "{run.customer_id}" is no longer '
                "configured; its config file was removed or renamed",
                self.owner,
            )
            return
        async with self.db.read() as session:
            done = {
                (r.account, r.check)
                for r in (
                    await session.execute(select(Result).where(Result.run_id == run.id))
                ).scalars()
            }
        todo = [
            (t["account"], t["check"])
            for t in run.targets
            if (t["account"], t["check"]) not in done
        ]
        limit = asyncio.Semaphore(self.options.max_targets)
        work = [
            asyncio.create_task(
                self._target(active, customer, account, check, limit),
                name=f"run-{run.id}:{account}:{check}",
            )
            for account, check in todo
        ]
        beat = asyncio.create_task(self._heartbeat(active), name=f"heartbeat-{run.id}")
        stopping = asyncio.create_task(_first(active.cancel, active.lost))
        try:
            everything = asyncio.gather(*work)
            await asyncio.wait([everything, stopping], return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                for task in work:
                    task.cancel()
                await asyncio.gather(*work, return_exceptions=True)
            else:
                everything.result()  # surface a bug in _target instead of hiding it
        except asyncio.CancelledError:  # graceful shutdown ran out of grace
            for task in work:
                task.cancel()
            await asyncio.gather(*work, return_exceptions=True)
            await self._final(tx.requeue, run, "shutdown", self.owner, refund=True)
            raise
        finally:
            beat.cancel()
            stopping.cancel()
        if active.lost.is_set():
            log.warning("run #%s: lease lost; another worker owns it now", run.id)
            return
        outcome = await self._outcome(run.id)
        if active.cancel.is_set():
            await self._final(tx.cancelled, run, outcome, active.cancelled_by or self.owner)
        else:
            await self._final(tx.complete, run, outcome or Severity.OK, self.owner)

    async def _final(
        self, transition: Callable[..., object], run: Run, *args: object, **kwargs: object
    ) -> None:
        """A shielded last write: it lands even if the surrounding task is cancelled."""

        async def write() -> None:
            async with self.db.write() as session:
                await transition(session, self.db, run.id, run.attempt, *args, **kwargs)  # type: ignore[operator]

        try:
            await asyncio.shield(write())
        except tx.Conflict as exc:
            log.warning("run #%s: %s", run.id, exc)
        self._changed(run.id)

    async def _outcome(self, run_id: int) -> str | None:
        async with self.db.read() as session:
            severities = (
                (await session.execute(select(Result.severity).where(Result.run_id == run_id)))
                .scalars()
                .all()
            )
        return Severity.worst(severities).value if severities else None

    async def _heartbeat(self, active: _Active) -> None:
        run = active.run
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(active.poke.wait(), self.options.heartbeat_s)
            active.poke.clear()
            try:
                async with self.db.write() as session:
                    by = await tx.heartbeat(
                        session, self.db, run.id, run.attempt, self.options.lease_s
                    )
            except tx.Conflict:
                active.lost.set()
                return
            if by is not None and not active.cancel.is_set():
                active.cancelled_by = by
                active.cancel.set()

    async def _target(
        self,
        active: _Active,
        customer: Customer,
        account_id: str,
        kind: str,
        limit: asyncio.Semaphore,
    ) -> None:
        async with limit:
            started = datetime.now(UTC)
            result = await self.run_check(active.run, customer, account_id, kind)
            try:
                await self._record(active.run, account_id, kind, result, started)
            except tx.Conflict:
                active.lost.set()

    async def run_check(
        self, run: Run, customer: Customer, account_id: str, kind: str
    ) -> CheckResult:
        check = self.registry.get(kind)
        account = customer.account(account_id)
        if check is None or account is None:
            missing = f"check {kind}" if check is None else f"account {account_id}"
            return CheckResult(
                Severity.ERROR,
                f"{missing} is not available any more; "
                "it was removed from the configuration or this build",
            )
        settings = check.Settings.model_validate(customer.checks.get(kind) or {})
        window_s = run.params.get("window_s")
        window = (
            timedelta(seconds=window_s)
            if window_s
            else getattr(settings, "window", None) or DEFAULT_WINDOW
        )
        ctx = CheckContext(
            customer=customer,
            account=account,
            window=window,
            settings=settings,
            aws=self.aws,
            now=datetime.now(UTC),
        )
        tries = 0
        while True:
            tries += 1
            try:
                return await asyncio.wait_for(check.run(ctx), self.options.check_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.retry.delay(tries, exc)
                if delay is None:
                    return _error_result(run, kind, exc, self.options.check_timeout_s, tries)
                log.info(
                    "run #%s %s/%s: try %d failed (%s); again in %.1f s",
                    run.id,
                    account_id,
                    kind,
                    tries,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _record(
        self, run: Run, account: str, kind: str, result: CheckResult, started: datetime
    ) -> None:
        """Write one result, guarded by the lease: refused if this worker lost the run."""
        async with self.db.write() as session:
            owned = (
                await session.execute(
                    update(Run)
                    .where(
                        Run.id == run.id,
                        Run.status == RunStatus.RUNNING,
                        Run.attempt == run.attempt,
                    )
                    .values(heartbeat_at=self.db.now())
                    .execution_options(synchronize_session=False)
                )
            ).rowcount
            if not owned:
                raise tx.Conflict(f"run #{run.id} lost its lease")
            await session.execute(
                insert(Result).values(
                    run_id=run.id,
                    account=account,
                    check=kind,
                    severity=result.severity.value,
                    summary=result.summary,
                    details=dict(result.details),
                    series={k: list(v) for k, v in result.series.items()},
                    attempt=run.attempt,
                    started_at=started,
                    finished_at=self.db.now(),
                )
            )
            await tx.add_event(
                session,
                self.db,
                run.id,
                tx.Event.CHECK_FINISHED,
                self.owner,
                account=account,
                check=kind,
                severity=result.severity.value,
            )
        self._changed(run.id)

    # -- recovery -----------------------------------------------------------------------

    async def sweep(self) -> int:
        """Requeue runs whose lease expired (counting the attempt), or fail them after
        ``max_attempts``. Safe to run on every replica: each rescue is a guarded update."""
        async with self.db.read() as session:
            stale = await tx.stale_runs(session, self.db)
        rescued = 0
        for run in stale:
            try:
                async with self.db.write() as session:
                    if run.attempt < run.max_attempts:
                        await tx.requeue(
                            session,
                            self.db,
                            run.id,
                            run.attempt,
                            "lease expired: the worker stopped responding",
                            f"sweeper:{self.owner}",
                            refund=False,
                        )
                    else:
                        await tx.fail(
                            session,
                            self.db,
                            run.id,
                            run.attempt,
                            f"gave up after {run.attempt} attempts: the worker "
                            "running it stopped responding each time",
                            f"sweeper:{self.owner}",
                        )
                rescued += 1
                self._changed(run.id)
            except tx.Conflict:
                continue  # another sweeper or the owner got there first
        if rescued:
            self._wake.set()
        return rescued

    async def sweep_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.sweep_s)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


def _error_result(
    run: Run, kind: str, exc: BaseException, timeout_s: float, tries: int
) -> CheckResult:
    after = f" after {tries} tries" if tries > 1 else ""
    if isinstance(exc, CheckError):
        return CheckResult(
            Severity.ERROR,
            f"{exc}{after}",
            {"error": type(exc).__name__, "permanent": exc.permanent},
        )
    if isinstance(exc, TimeoutError):
        return CheckResult(
            Severity.ERROR,
            f"timed out after {timeout_s:.0f} s{after}; AWS was slow or unreachable",
            {"error": "timeout"},
        )
    log.error("run #%s: check %s crashed", run.id, kind, exc_info=exc)
    return CheckResult(
        Severity.ERROR,
        f"the {kind} check failed unexpectedly "
        f"({type(exc).__name__}); see the hub's log for run #{run.id}",
        {"error": type(exc).__name__},
    )
