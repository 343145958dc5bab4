"""The executor: claim queued runs, fan out account × check, record results, end the run.

How it keeps its promises (docs/architecture.md, "Run engine and its guarantees"):

- **Claims** are one atomic statement (:func:`app.engine.transitions.claim_batch`); a run is
  never claimed twice.
- **Leases.** A claimed run is leased for ``lease_s`` by the database clock. One lease keeper
  per executor extends the leases of all its runs every ``heartbeat_s`` in one statement, and in
  between polls (one read) every ``cancel_poll_s`` for cancel requests made on other replicas.
  A request made in this process pokes the keeper, so it acts at once.
- **Writes** of every run go through one writer task (:mod:`app.engine.writer`) that commits
  them in batches (group commit). Each is guarded by the run's lease, so a worker that lost its
  lease writes nothing. Because the writer, not the run's task, performs them, final writes are
  shielded: cancelling a run's task (shutdown) does not lose its last write.
- **Checks** run through :class:`~app.engine.checking.CheckRunner` (settings, window, timeout,
  retries); every change of a run is published to :class:`~app.engine.changes.RunChanges`.
- **Recovery.** :meth:`Executor.sweep` (on every replica) requeues runs whose lease expired,
  counting the attempt, and fails them after ``max_attempts``. A check may therefore run again
  after a crash; the next attempt skips the checks whose results were already recorded.
- **Shutdown.** :meth:`Executor.serve` stops claiming as soon as ``stop`` is set, lets running
  runs finish for up to ``grace_s``, then stops their checks and puts them back in the queue
  without consuming an attempt. :meth:`Executor.stop_now` cuts the grace short.
- **Bounds.** ``max_runs`` runs at once, ``max_targets`` checks at once per run, and
  ``check_timeout_s`` per check, retries included; calls per AWS account are bounded by
  :class:`checks.aws.AwsClients`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app import logs
from app.catalog import Catalog
from app.config import Customer
from app.db import DB_TROUBLE, Database
from app.engine import blind, findings
from app.engine import transitions as tx
from app.engine.alerts import Router
from app.engine.answers import Rule, yaml_rules
from app.engine.changes import Change, RunChanges
from app.engine.checking import CheckRunner, Retrying, Target, running_for
from app.engine.events import Event
from app.engine.results import ResultRow
from app.engine.retry import RetryPolicy
from app.engine.writer import ENDED, Beat, Item, Note, Write, WriteKind, Writer
from app.errors import ConfigError
from app.models import TERMINAL_STATUSES, Result, Run
from app.settings import Settings
from app.waiting import wait_any
from checks.aws import AwsClients
from checks.base import Check, Severity

log = logging.getLogger(__name__)

CLAIM_LINGER_S = 0.02
"""How long a busy executor may wait for more free slots before claiming into fewer."""


@dataclass(frozen=True)
class ExecutorOptions:
    max_runs: int = 4
    max_targets: int = 32
    check_timeout_s: float = 120.0
    lease_s: float = 30.0
    heartbeat_s: float = 5.0
    cancel_poll_s: float = 1.0
    poll_s: float = 0.5
    sweep_s: float = 5.0
    grace_s: float = 20.0
    claim_batch: int = 64
    write_batch: int = 512
    final_write_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.lease_s < 2 * self.heartbeat_s:
            raise ConfigError(
                f"the lease ({self.lease_s:g} s) must be at least twice the heartbeat "
                f"({self.heartbeat_s:g} s), or one slow heartbeat loses every run; "
                "raise HUB_LEASE_SECONDS or lower HUB_HEARTBEAT_SECONDS"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> ExecutorOptions:
        return cls(
            max_runs=settings.max_concurrent_runs,
            max_targets=settings.max_concurrent_targets,
            check_timeout_s=settings.check_timeout_s,
            lease_s=settings.lease_s,
            heartbeat_s=settings.heartbeat_s,
            cancel_poll_s=settings.cancel_poll_s,
            poll_s=settings.poll_s,
            sweep_s=settings.sweep_s,
            grace_s=settings.grace_s,
        )

    @property
    def recovery_s(self) -> float:
        """The longest a dead worker's run waits before another replica claims it again."""
        return self.lease_s + self.sweep_s + self.poll_s


def worker_id() -> str:
    """Unique per executor: host, process, and a random part (a restarted process differs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# -- one run -----------------------------------------------------------------------------------


@dataclass
class _Prior:
    """What earlier attempts of a run recorded (a run claimed again after its worker died)."""

    severities: dict[tuple[str, str], str] = field(default_factory=dict)
    """Severity of each target recorded (skipped this time)."""
    looks: list[findings.Look] = field(default_factory=list)
    """What those results saw: applied to the findings with the run's end."""
    sightings: list[blind.Sighting] = field(default_factory=list)
    """Whether those results could look: kept with the run's end."""


@dataclass(eq=False)
class _Active:
    run: tx.Claimed
    lease: tx.Lease
    prior: _Prior
    targets: set[asyncio.Task[ResultRow]] = field(default_factory=set)
    cancelled_by: str | None = None
    lost: bool = False
    finishing: bool = False
    task: asyncio.Task[None] | None = None

    def cancel(self, by: str) -> bool:
        """Stop the checks because ``by`` asked; False when the run is already ending."""
        if self.finishing or self.cancelled_by is not None or self.lost:
            return False
        self.cancelled_by = by
        self._stop_targets()
        return True

    def lose(self) -> bool:
        """Stop the checks, write nothing more; False when the run is already ending (its own
        last write is what took the lease away)."""
        if self.finishing or self.lost:
            return False
        self.lost = True
        self._stop_targets()
        return True

    def _stop_targets(self) -> None:
        for task in self.targets:
            task.cancel()


@dataclass
class _Progress:
    severities: list[str]
    looks: list[findings.Look]
    sightings: list[blind.Sighting] = field(default_factory=list)
    unwritten: list[ResultRow] = field(default_factory=list)
    records: list[tuple[list[ResultRow], asyncio.Future[Any]]] = field(default_factory=list)

    def add(self, row: ResultRow, customer_id: str) -> None:
        self.severities.append(row.severity)
        self.unwritten.append(row)
        self.looks.extend(findings.looks_of([row], {row.run_id: customer_id}))
        self.sightings.extend(blind.sightings_of([row]))

    def outcome(self) -> str | None:
        return Severity.worst(self.severities).value if self.severities else None


class Executor:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        registry: Mapping[str, Check],
        aws: AwsClients,
        options: ExecutorOptions | None = None,
        retry: RetryPolicy | None = None,
        owner: str | None = None,
        changes: RunChanges | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.options = options or ExecutorOptions()
        self.checks = CheckRunner(
            registry, aws, timeout_s=self.options.check_timeout_s, retry=retry
        )
        self.owner = owner or worker_id()
        self.changes = changes or RunChanges()
        """Where this executor says which runs it changed, and hears of runs submitted or
        flagged for cancelling in this process (so it claims or stops them at once)."""
        self.changes.subscribe(self.poke, only=(Change.SUBMITTED, Change.CANCEL_REQUESTED))
        self.active: dict[int, _Active] = {}
        self.last_loop_at: datetime | None = None
        self._wake = asyncio.Event()
        self._check_leases = asyncio.Event()
        self._hurry = asyncio.Event()
        self._writer: Writer | None = None
        self.router: Router | None = None
        """Set by the composition root when customers route findings (PagerDuty, webhooks)."""
        self._helpers: dict[str, asyncio.Task[None]] = {}
        self._users = 0
        # While busy, a claim waits (at most CLAIM_LINGER_S) until this many slots are free.
        self._useful_batch = max(1, min(self.options.claim_batch, self.options.max_runs // 4))

    # -- wiring ---------------------------------------------------------------------------------

    def poke(self, run_id: int) -> None:
        """A run was submitted or flagged in this process: claim it or look at it now."""
        self._wake.set()
        if run_id in self.active:
            self._check_leases.set()

    def stop_now(self) -> None:
        """Cut the shutdown grace short (a second SIGTERM): stop running checks at once and put
        their runs back in the queue."""
        self._hurry.set()

    # -- main loop ------------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        """Claim and run until ``stop`` is set, then drain within the grace period."""
        waker = asyncio.create_task(self._wake_on(stop), name="executor-stop-watch")
        try:
            async with self._engine():
                await self._claim_until(stop)
                await self.drain()
        finally:
            waker.cancel()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _claim_until(self, stop: asyncio.Event) -> None:
        backoff = self.options.poll_s
        lingered = False
        while not stop.is_set():
            self.last_loop_at = datetime.now(UTC)
            self._raise_if_helper_died()
            self._wake.clear()
            want = min(self.options.max_runs - len(self.active), self.options.claim_batch)
            if self.active and 0 < want < self._useful_batch and not lingered:
                # Busy: let a few more slots free up first, or a claim (a transaction) per run
                # caps throughput. Never longer than CLAIM_LINGER_S, so a slot is not left idle.
                lingered = True
                await asyncio.sleep(CLAIM_LINGER_S)
                continue
            lingered = False
            if want > 0:
                try:
                    got = len(await self._claim_and_start(want))
                except DB_TROUBLE as exc:
                    log.warning("claiming failed (%s); trying again in %.1f s", exc, backoff)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = self.options.poll_s
                if got == want and not stop.is_set():
                    continue  # there may be more waiting
            await self._pause(self.options.poll_s)

    async def _pause(self, seconds: float) -> None:
        await wait_any(self._wake, within_s=seconds)

    async def _claim_and_start(self, limit: int, run_id: int | None = None) -> list[tx.Claimed]:
        async with self.db.write() as session:
            runs = await tx.claim_batch(
                session, self.db, self.owner, self.options.lease_s, limit, run_id
            )
        if runs:
            prior = await self._prior_results([r for r in runs if tx.claimed_before(r)])
            for run in runs:
                self._start(run, prior.get(run.id, _Prior()))
        return runs

    async def _prior_results(self, runs: list[tx.Claimed]) -> dict[int, _Prior]:
        """What earlier attempts of ``runs`` recorded."""
        if not runs:
            return {}
        columns = (Result.run_id, Result.account, Result.check, Result.severity, Result.summary,
                   Result.details, Result.finished_at)  # fmt: skip
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(*columns).where(Result.run_id.in_([r.id for r in runs]))
                )
            ).all()
        customers = {run.id: run.customer_id for run in runs}
        found: dict[int, _Prior] = {}
        for row in rows:
            prior = found.setdefault(row.run_id, _Prior())
            prior.severities[(row.account, row.check)] = row.severity
            prior.looks.extend(findings.looks_of([row], customers))
            prior.sightings.extend(blind.sightings_of([row]))
        return found

    def _start(self, run: tx.Claimed, prior: _Prior) -> asyncio.Task[None]:
        active = _Active(run, tx.Lease.of(run), prior)
        self.active[run.id] = active
        active.task = asyncio.create_task(self._process(active), name=f"run-{run.id}")
        active.task.add_done_callback(functools.partial(self._ended, active))
        self.changes.publish([run.id])
        return active.task

    def _ended(self, active: _Active, task: asyncio.Task[None]) -> None:
        if self.active.get(active.run.id) is active:
            del self.active[active.run.id]
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "run #%s: the executor failed while running it; its lease will expire and "
                "the sweeper will retry it",
                active.run.id,
                exc_info=task.exception(),
            )

    async def run_until_done(self, run_id: int) -> None:
        """Run one run in this process (``mhub run``), or wait while another process does."""
        async with self._engine():
            runs = await self._claim_and_start(1, run_id)
            if runs:
                task = self.active[run_id].task
                if task is not None:
                    await task
                return
            while True:
                async with self.db.read() as session:
                    status = (
                        await session.execute(select(Run.status).where(Run.id == run_id))
                    ).scalar_one()
                if status in TERMINAL_STATUSES:
                    return
                await asyncio.sleep(self.options.poll_s)

    async def drain(self) -> None:
        """Graceful shutdown: let running runs finish within the grace period (or until
        :meth:`stop_now`), then stop their checks and requeue them without using an attempt."""
        tasks = [a.task for a in self.active.values() if a.task is not None]
        if not tasks:
            return
        log.info("waiting up to %.0f s for %d running run(s)", self.options.grace_s, len(tasks))
        everything = asyncio.ensure_future(asyncio.wait(tasks))
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait(
            [everything, hurry], timeout=self.options.grace_s, return_when=asyncio.FIRST_COMPLETED
        )
        everything.cancel()
        hurry.cancel()
        await self._stop_runs()

    async def _stop_runs(self) -> None:
        left = [a.task for a in self.active.values() if a.task is not None and not a.task.done()]
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left)
            log.info("put %d unfinished run(s) back in the queue", len(left))

    # -- helpers: the writer and the lease keeper -----------------------------------------------

    def _rules(self, customer_id: str) -> list[Rule]:
        customer = self.catalog.customers.get(customer_id)
        return yaml_rules(customer) if customer is not None else []

    @asynccontextmanager
    async def _engine(self) -> AsyncIterator[None]:
        if self._users == 0:
            self._writer = Writer(
                self.db,
                self.options.lease_s,
                self.options.write_batch,
                self.changes.publish,
                rules_of=self._rules,
                router=self.router,
            )
            self._helpers = {
                "writer": asyncio.create_task(self._writer.run(), name="executor-writer"),
                "leases": asyncio.create_task(self._keep_leases(), name="executor-leases"),
            }
            for helper in self._helpers.values():
                helper.add_done_callback(lambda _: self._wake.set())
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                await self._stop_helpers()

    async def _stop_helpers(self) -> None:
        await self._stop_runs()
        writer, keeper = self._helpers["writer"], self._helpers["leases"]
        keeper.cancel()
        assert self._writer is not None
        self._writer.close()
        done, _ = await asyncio.wait([writer], timeout=self.options.final_write_timeout_s)
        if not done:
            log.error(
                "gave up on the database after %.0f s; runs not written back will be retried "
                "when their lease expires",
                self.options.final_write_timeout_s,
            )
            writer.cancel()
        await asyncio.gather(writer, keeper, return_exceptions=True)

    def _raise_if_helper_died(self) -> None:
        for name, helper in self._helpers.items():
            if helper.done():
                error = None if helper.cancelled() else helper.exception()
                raise RuntimeError(f"the executor's {name} task stopped") from error

    def _write(self, item: Item) -> asyncio.Future[Any]:
        if self._writer is None:
            raise RuntimeError("the executor is not running; use serve() or run_until_done()")
        return self._writer.put(item)

    async def _keep_leases(self) -> None:
        loop = asyncio.get_running_loop()
        last_beat = loop.time()
        tick = min(self.options.cancel_poll_s, self.options.heartbeat_s)
        while True:
            await wait_any(self._check_leases, within_s=tick)
            self._check_leases.clear()
            watched = [a for a in self.active.values() if not a.finishing]
            if not watched:
                continue
            beat = loop.time() - last_beat >= self.options.heartbeat_s
            try:
                answer = await self._look(watched, beat)
            except DB_TROUBLE as exc:
                log.warning("could not %s (%s)", "heartbeat" if beat else "poll leases", exc)
                continue
            if beat:
                last_beat = loop.time()
            for active in watched:
                fields = {"fields": {"run_id": active.run.id, "customer": active.run.customer_id}}
                if active.run.id not in answer:
                    if active.lose():
                        log.warning(
                            "run #%s: lease lost; another worker owns it now",
                            active.run.id,
                            extra=fields,
                        )
                elif answer[active.run.id] is not None and active.cancel(
                    answer[active.run.id] or ""
                ):
                    log.info(
                        "run #%s: cancel requested by %s",
                        active.run.id,
                        active.cancelled_by,
                        extra=fields,
                    )

    async def _look(self, watched: list[_Active], beat: bool) -> dict[int, str | None]:
        leases = [a.lease for a in watched]
        if beat:
            answer: dict[int, str | None] = await asyncio.shield(self._write(Beat(leases)))
            return answer
        async with self.db.read() as session:
            return await tx.held(session, self.db, leases)

    # -- one run --------------------------------------------------------------------------------

    async def _process(self, active: _Active) -> None:
        run = active.run
        # Every line logged for this run (its checks' tasks inherit the context) carries these.
        with logs.context(run_id=run.id, customer=run.customer_id, attempt=run.attempt):
            await self._run(active)

    async def _run(self, active: _Active) -> None:
        run = active.run
        if run.cancel_requested_by:  # asked before a crash or a shutdown put it back
            active.cancel(run.cancel_requested_by)
        customer = self.catalog.customers.get(run.customer_id)
        if customer is None:
            reason = (
                f'customer "{run.customer_id}" is no longer configured; '
                "its config file was removed or renamed"
            )
            await self._final(active, WriteKind.FAIL, _Progress([], []), reason)
            return
        prior = active.prior
        progress = _Progress(
            list(prior.severities.values()), list(prior.looks), list(prior.sightings)
        )
        limit = asyncio.Semaphore(self.options.max_targets)
        if active.cancelled_by is None:
            for target in interleaved(run.targets):
                account, kind = target["account"], target["check"]
                if (account, kind) not in active.prior.severities:
                    active.targets.add(
                        asyncio.create_task(
                            self._target(active, customer, account, kind, limit),
                            name=f"run-{run.id}:{account}:{kind}",
                        )
                    )
        try:
            await self._collect(active, progress)
        except asyncio.CancelledError:  # shutdown ran out of grace
            await self._stop_targets(active, progress)
            await self._final(active, WriteKind.RELEASE, progress, "shutdown: back in the queue")
            raise
        if active.cancelled_by is not None:
            await self._final(active, WriteKind.CANCELLED, progress)
        else:
            await self._final(active, WriteKind.COMPLETE, progress)

    async def _collect(self, active: _Active, progress: _Progress) -> None:
        """Gather results as checks finish; write all but the last batch as they come (the last
        is written with the run's final transition, in one transaction)."""
        while active.targets:
            done, _ = await asyncio.wait(active.targets, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                active.targets.discard(task)
                if not task.cancelled():
                    progress.add(task.result(), active.run.customer_id)
            if active.targets and progress.unwritten and not (active.lost or active.cancelled_by):
                rows, progress.unwritten = progress.unwritten, []
                future = self._write(Write(WriteKind.RECORD, active.lease, rows))
                future.add_done_callback(functools.partial(_refused_means_lost, active))
                progress.records.append((rows, future))

    async def _stop_targets(self, active: _Active, progress: _Progress) -> None:
        """Cancel the checks still running; keep the results of those that finished."""
        left, active.targets = active.targets, set()
        for task in left:
            task.cancel()
        for task in left:
            with contextlib.suppress(asyncio.CancelledError):
                progress.add(await task, active.run.customer_id)

    async def _final(
        self, active: _Active, kind: WriteKind, progress: _Progress, reason: str = ""
    ) -> None:
        """The run's last write: the results not yet written and its last transition, in one
        transaction, performed by the writer even if this task is cancelled meanwhile."""
        active.finishing = True
        for rows, future in progress.records:
            try:
                if not await asyncio.shield(future):
                    active.lost = True
            except DB_TROUBLE:
                progress.unwritten.extend(rows)  # try them again with the final write
        run = active.run
        if active.lost:
            log.warning("run #%s: lost its lease; another worker owns it now", run.id)
            return
        outcome = progress.outcome()
        if kind is WriteKind.COMPLETE:
            outcome = outcome or Severity.OK.value
        ends = kind in (WriteKind.COMPLETE, WriteKind.CANCELLED)
        write = Write(
            kind, active.lease, tuple(progress.unwritten), outcome, reason, run.customer_id,
            progress.looks if ends else (), progress.sightings if ends else (),
        )  # fmt: skip
        try:
            moved = await asyncio.shield(self._write(write))
        except DB_TROUBLE as exc:
            log.error(
                "run #%s: could not record its end (%s); its lease will expire and the sweeper "
                "will queue it again",
                run.id,
                exc,
            )
            return
        if not moved:
            log.warning("run #%s: lost its lease before it could %s", run.id, kind.value)
        elif kind is WriteKind.RELEASE:
            log.info("run #%s: back in the queue (%s)", run.id, reason)
        else:
            log.info(
                "run #%s %s%s: %d of %d check(s) recorded, attempt %d",
                run.id,
                ENDED[kind],
                f" ({outcome})" if outcome else f" ({reason})" if reason else "",
                len(progress.severities),
                len(run.targets),
                run.attempt,
            )

    async def _target(
        self,
        active: _Active,
        customer: Customer,
        account: str,
        kind: str,
        limit: asyncio.Semaphore,
    ) -> ResultRow:
        run = active.run
        async with limit:
            running_for(Target(run.id, run.attempt, account, kind))
            started = datetime.now(UTC)
            window_s = run.params.get("window_s")
            result = await self.checks.run(
                customer,
                account,
                kind,
                run_id=run.id,
                window=timedelta(seconds=window_s) if window_s else None,
                on_retry=self._retrying,
            )
            return ResultRow(
                run_id=run.id,
                attempt=run.attempt,
                account=account,
                check=kind,
                severity=result.severity.value,
                summary=result.summary,
                details=result.details,
                series=result.series,
                started_at=started,
                finished_at=datetime.now(UTC),
                actor=self.owner,
                customer_id=run.customer_id,
            )

    def _retrying(self, retry: Retrying) -> None:
        if self._writer is not None:
            data = {"account": retry.account, "check": retry.check, "try": retry.tries}
            note = Note(
                retry.run_id, Event.CHECK_RETRIED, self.owner, {**data, "error": retry.error}
            )
            self._writer.put(note)

    # -- recovery -------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Requeue runs whose lease expired (counting the attempt), or fail them after
        ``max_attempts``. Safe on every replica at once: each rescue is one guarded statement,
        so each stale lease is rescued exactly once. Returns how many runs it moved."""
        actor = f"sweeper:{self.owner}"
        async with self.db.write() as session:
            requeued = await tx.requeue_stale(session, self.db, actor)
            failed = await tx.fail_stale(session, self.db, actor)
        for run_id, attempt in requeued:
            log.warning(
                "run #%s: its worker stopped responding during attempt %d; queued again",
                run_id,
                attempt,
            )
        for run_id, attempt in failed:
            log.error(
                "run #%s: its worker stopped responding on attempt %d, the last; failed",
                run_id,
                attempt,
            )
        if requeued:
            self._wake.set()
        self.changes.publish([run_id for run_id, _ in [*requeued, *failed]])
        return len(requeued) + len(failed)

    async def sweep_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except DB_TROUBLE as exc:
                log.warning(
                    "sweeping failed (%s); trying again in %.0f s", exc, self.options.sweep_s
                )
            await wait_any(stop, within_s=self.options.sweep_s)


def _refused_means_lost(active: _Active, future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None and future.result() is False:
        active.lose()


def interleaved(targets: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Targets in round-robin order across accounts (every account's first check, then every
    account's second, …), so the first wave of checks reaches as many accounts — and their
    AssumeRole calls — as the concurrency allows, instead of queueing behind one account."""
    position: Counter[str] = Counter()
    keyed = []
    for index, target in enumerate(targets):
        keyed.append((position[target["account"]], index, target))
        position[target["account"]] += 1
    return [target for _, _, target in sorted(keyed, key=lambda item: item[:2])]
