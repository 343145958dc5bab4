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
- **Shards.** A run of more than :data:`~app.engine.shards.SHARDED_OVER` targets is split by
  its owner into shards that every replica claims (:mod:`app.engine.shards`), each on a lease
  of its own kept by the same lease keeper; a replica holds at most ``max_targets`` (plus one
  shard) of one run's checks at once. The owner ends the run once no shard is open, from the
  results every replica wrote: one card, one digest, one record.
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
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app import logs
from app.catalog import Catalog
from app.config import Customer
from app.db import DB_TROUBLE, Database
from app.engine import blind, findings, shards
from app.engine import transitions as tx
from app.engine.alerts import Router
from app.engine.answers import Rule, yaml_rules
from app.engine.changes import Change, RunChanges
from app.engine.checking import CheckRunner, Retrying, Target, running_for
from app.engine.events import Event
from app.engine.results import ResultRow
from app.engine.retry import RetryPolicy
from app.engine.shards import ClaimedShard, ShardLease, interleaved
from app.engine.writer import ENDED, Beat, Item, Note, ShardEnd, Write, WriteKind, Writer
from app.errors import ConfigError
from app.models import TERMINAL_STATUSES, Result, Run, ShardStatus
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
class _Work:
    """Checks this executor runs under one lease: a whole run, or one shard of a run."""

    targets: set[asyncio.Task[ResultRow]] = field(default_factory=set, init=False)
    cancelled_by: str | None = field(default=None, init=False)
    lost: bool = field(default=False, init=False)
    finishing: bool = field(default=False, init=False)
    task: asyncio.Task[None] | None = field(default=None, init=False)
    changed: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    """Set when it is cancelled or lost, and (a run) when one of its shards here ended."""

    def cancel(self, by: str) -> bool:
        """Stop the checks because ``by`` asked; False when it is already ending."""
        if self.finishing or self.cancelled_by is not None or self.lost:
            return False
        self.cancelled_by = by
        self._stop_targets()
        return True

    def lose(self) -> bool:
        """Stop the checks, write nothing more; False when it is already ending (its own
        last write is what took the lease away)."""
        if self.finishing or self.lost:
            return False
        self.lost = True
        self._stop_targets()
        return True

    def _stop_targets(self) -> None:
        for task in self.targets:
            task.cancel()
        self.changed.set()


@dataclass(eq=False)
class _Active(_Work):
    run: tx.Claimed
    lease: tx.Lease
    prior: _Prior


@dataclass(eq=False)
class _Piece(_Work):
    """A shard of a run (this executor's or another's) that this executor claimed."""

    shard: ClaimedShard

    @property
    def run_id(self) -> int:
        return self.shard.run_id


@dataclass(frozen=True)
class _Ref:
    """Which run a check belongs to, as its result row names it."""

    id: int
    attempt: int
    customer_id: str
    params: dict[str, Any]


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
        self.pieces: dict[ShardLease, _Piece] = {}
        """Shards this executor claimed (of its own runs and of other replicas')."""
        self._limits: dict[int, asyncio.Semaphore] = {}
        """Per run: at most ``max_targets`` of its checks at once in this executor."""
        self._claiming = asyncio.Lock()
        self._draining = False
        self._look_for_shards_at = 0.0
        """When the claim loop next asks for other replicas' shards (at once after one of this
        executor's shards ends; else every ``poll_s``, so a busy claim loop does not ask on
        every turn)."""
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
        if run_id in self.active or any(p.run_id == run_id for p in self.pieces.values()):
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
                self._draining = True  # and claim no more shards, not even of its own runs
                await self.drain()
        finally:
            waker.cancel()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _claim_until(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
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
            try:
                got = len(await self._claim_and_start(want)) if want > 0 else 0
                if loop.time() >= self._look_for_shards_at:
                    self._look_for_shards_at = loop.time() + self.options.poll_s
                    await self._claim_shards()
            except DB_TROUBLE as exc:
                log.warning("claiming failed (%s); trying again in %.1f s", exc, backoff)
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = self.options.poll_s
            if want > 0 and got == want and not stop.is_set():
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
        self._forget_limit(active.run.id)
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
        tasks = [w.task for w in self._works() if w.task is not None]
        if not tasks:
            return
        log.info(
            "waiting up to %.0f s for %d running run(s) and shard(s)",
            self.options.grace_s,
            len(tasks),
        )
        everything = asyncio.ensure_future(asyncio.wait(tasks))
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait(
            [everything, hurry], timeout=self.options.grace_s, return_when=asyncio.FIRST_COMPLETED
        )
        everything.cancel()
        hurry.cancel()
        await self._stop_runs()

    async def _stop_runs(self) -> None:
        left = [w.task for w in self._works() if w.task is not None and not w.task.done()]
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left)
            log.info("put %d unfinished run(s) back in the queue", len(left))

    def _works(self) -> list[_Work]:
        return [*self.active.values(), *self.pieces.values()]

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
            pieces = [p for p in self.pieces.values() if not p.finishing]
            if not watched and not pieces:
                continue
            beat = loop.time() - last_beat >= self.options.heartbeat_s
            try:
                runs, held = await self._look(watched, pieces, beat)
            except DB_TROUBLE as exc:
                log.warning("could not %s (%s)", "heartbeat" if beat else "poll leases", exc)
                continue
            if beat:
                last_beat = loop.time()
            for active in watched:
                self._heard(active, active.run.id, active.run.id in runs, runs.get(active.run.id))
            for piece in pieces:
                key = (piece.run_id, piece.shard.lease.shard)
                self._heard(piece, piece.run_id, key in held, held.get(key), key[1])

    def _heard(
        self, work: _Work, run_id: int, kept: bool, cancel: str | None, shard: int | None = None
    ) -> None:
        """Act on what the database said of ``work``'s lease."""
        fields = {"fields": {"run_id": run_id, "shard": shard}}
        what = f"run #{run_id}" if shard is None else f"run #{run_id} shard {shard}"
        if not kept:
            if work.lose():
                whose = (
                    "another worker owns it now"
                    if shard is None
                    else ("its run ended, or the sweeper gave it to another replica")
                )
                log.warning("%s: lease lost; %s", what, whose, extra=fields)
        elif cancel is not None and work.cancel(cancel or ""):
            log.info("%s: cancel requested by %s", what, work.cancelled_by, extra=fields)

    async def _look(
        self, watched: list[_Active], pieces: list[_Piece], beat: bool
    ) -> tuple[dict[int, str | None], dict[tuple[int, int], str | None]]:
        leases = [a.lease for a in watched]
        held = [p.shard.lease for p in pieces]
        if beat:
            answer: tuple[dict[int, str | None], dict[tuple[int, int], str | None]]
            answer = await asyncio.shield(self._write(Beat(leases, held)))
            return answer
        async with self.db.read() as session:
            return await tx.held(session, self.db, leases), await shards.held(session, held)

    # -- shards: claimed by any replica ---------------------------------------------------------

    def _limit(self, run_id: int) -> asyncio.Semaphore:
        return self._limits.setdefault(run_id, asyncio.Semaphore(self.options.max_targets))

    def _forget_limit(self, run_id: int) -> None:
        if run_id not in self.active and all(p.run_id != run_id for p in self.pieces.values()):
            self._limits.pop(run_id, None)

    def _pending_here(self, run_id: int) -> bool:
        """Whether this executor holds a shard of ``run_id`` not yet ended."""
        return any(p.run_id == run_id and not p.finishing for p in self.pieces.values())

    def _pending(self, run_id: int) -> int:
        """Checks of ``run_id`` claimed here and not finished."""
        return sum(len(p.targets) for p in self.pieces.values() if p.run_id == run_id)

    async def _claim_shards(self, only: int | None = None) -> int:
        """Claim queued shards of running runs (or only of ``only``) while this executor has
        room: per run, ``max_targets`` checks plus one shard, so a slot freed is filled at once
        and the rest is left to other replicas; at most ``max_runs`` runs at once."""
        if self._draining:
            return 0
        async with self._claiming:
            here = set(self.active) | {p.run_id for p in self.pieces.values()}
            async with self.db.read() as session:
                open_runs = await shards.claimable(
                    session, self.db, None if only is None else [only]
                )
            got = 0
            for found in open_runs:
                if found.run_id not in here and len(here) >= self.options.max_runs:
                    continue
                room = self.options.max_targets + found.size - self._pending(found.run_id)
                want = min(found.queued, room // found.size)
                if want <= 0:
                    continue
                async with self.db.write() as session:
                    claimed = await shards.claim(
                        session, self.db, self.owner, self.options.lease_s, found.run_id, want
                    )
                for shard in claimed:
                    self._start_piece(shard)
                if claimed:
                    here.add(found.run_id)
                    got += len(claimed)
            return got

    def _start_piece(self, shard: ClaimedShard) -> None:
        piece = _Piece(shard)
        self.pieces[shard.lease] = piece
        piece.task = asyncio.create_task(
            self._piece(piece), name=f"run-{shard.run_id}:shard-{shard.lease.shard}"
        )
        piece.task.add_done_callback(functools.partial(self._piece_ended, piece))

    def _piece_ended(self, piece: _Piece, task: asyncio.Task[None]) -> None:
        if self.pieces.get(piece.shard.lease) is piece:
            del self.pieces[piece.shard.lease]
        self._forget_limit(piece.run_id)
        owner = self.active.get(piece.run_id)
        if owner is not None:  # its run's own loop claims the next shard and sees its end
            owner.changed.set()
        else:  # another replica's run: the claim loop looks for more at once
            self._look_for_shards_at = 0.0
            self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "run #%s shard %s: the executor failed while running it; its lease will "
                "expire and the sweeper will give it to another replica",
                piece.run_id,
                piece.shard.lease.shard,
                exc_info=task.exception(),
            )

    async def _piece(self, piece: _Piece) -> None:
        shard = piece.shard
        ref = _Ref(shard.run_id, shard.run_attempt, shard.customer_id, shard.params)
        with logs.context(run_id=shard.run_id, customer=shard.customer_id, shard=shard.lease.shard):
            if shard.cancel_requested_by:
                piece.cancel(shard.cancel_requested_by)
            customer = self.catalog.customers.get(shard.customer_id)
            progress = _Progress([], [])
            if customer is None:
                for target in shard.targets:
                    progress.add(self._unknown(ref, target), shard.customer_id)
            elif piece.cancelled_by is None:
                todo = shard.targets
                if shard.lease.attempt > 1:  # released at a shutdown with some recorded
                    async with self.db.read() as session:
                        done = await shards.recorded(session, shard.run_id, todo)
                    todo = [t for t in todo if (t["account"], t["check"]) not in done]
                self._start_targets(piece, ref, customer, todo)
            try:
                await self._gather(piece, progress)
            except asyncio.CancelledError:  # shutdown ran out of grace
                await self._stop_targets(piece, ref.customer_id, progress)
                await self._end_piece(piece, ShardStatus.QUEUED, progress)
                raise
            status = ShardStatus.DONE if piece.cancelled_by is None else ShardStatus.CANCELLED
            await self._end_piece(piece, status, progress)

    def _start_targets(
        self, work: _Work, ref: _Ref, customer: Customer, targets: list[dict[str, str]]
    ) -> None:
        for target in targets:
            account, kind = target["account"], target["check"]
            work.targets.add(
                asyncio.create_task(
                    self._target(ref, customer, account, kind),
                    name=f"run-{ref.id}:{account}:{kind}",
                )
            )

    async def _gather(self, piece: _Piece, progress: _Progress) -> None:
        while piece.targets:
            done, _ = await asyncio.wait(piece.targets, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                piece.targets.discard(task)
                if not task.cancelled():
                    progress.add(task.result(), "")
            if not (piece.cancelled_by or piece.lost):
                self._room_freed(piece.run_id)

    def _room_freed(self, run_id: int) -> None:
        """Checks of ``run_id``'s shards finished here: once a whole shard fits again, claim
        the next now rather than when this one's slowest check ends, so no slot idles."""
        if self._pending(run_id) > self.options.max_targets:
            return
        owner = self.active.get(run_id)
        if owner is not None:
            owner.changed.set()
        else:
            self._look_for_shards_at = 0.0
            self._wake.set()

    async def _end_piece(self, piece: _Piece, status: ShardStatus, progress: _Progress) -> None:
        """The shard's results with its end, written even if this task is cancelled meanwhile."""
        piece.finishing = True
        lease = piece.shard.lease
        what = f"run #{lease.run_id} shard {lease.shard}"
        if piece.lost:
            log.warning("%s: lost its lease; another worker owns it now", what)
            return
        rows = tuple(progress.unwritten)
        try:
            moved = await asyncio.shield(self._write(ShardEnd(status, lease, rows)))
        except DB_TROUBLE as exc:
            log.error(
                "%s: could not record its end (%s); its lease will expire and the sweeper "
                "will give it to another replica",
                what,
                exc,
            )
            return
        if not moved:
            log.warning("%s: lost its lease (or its run ended) before it could end", what)
        else:
            log.debug("%s %s: %d check(s) recorded", what, status.value, len(rows))

    def _unknown(self, ref: _Ref, target: dict[str, str]) -> ResultRow:
        """The result of a check this replica cannot run: its configuration lacks the customer
        (a reload on the run owner's replica but not on this one)."""
        now = datetime.now(UTC)
        return ResultRow(
            run_id=ref.id,
            attempt=ref.attempt,
            account=target["account"],
            check=target["check"],
            severity=Severity.ERROR.value,
            summary=(
                f'replica {self.owner} has no customer "{ref.customer_id}" in its '
                "configuration; reload it (SIGHUP) so every replica has the same files"
            ),
            details={"error": "config", "reason": "other"},
            series={},
            started_at=now,
            finished_at=now,
            actor=self.owner,
            customer_id=ref.customer_id,
        )

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
        if shards.sharded(run.targets):
            await self._run_sharded(active)
            return
        prior = active.prior
        progress = _Progress(
            list(prior.severities.values()), list(prior.looks), list(prior.sightings)
        )
        ref = _Ref(run.id, run.attempt, run.customer_id, run.params)
        if active.cancelled_by is None:
            todo = [
                t
                for t in interleaved(run.targets)
                if (t["account"], t["check"]) not in active.prior.severities
            ]
            self._start_targets(active, ref, customer, todo)
        try:
            await self._collect(active, progress)
        except asyncio.CancelledError:  # shutdown ran out of grace
            await self._stop_targets(active, run.customer_id, progress)
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

    async def _stop_targets(self, work: _Work, customer_id: str, progress: _Progress) -> None:
        """Cancel the checks still running; keep the results of those that finished."""
        left, work.targets = work.targets, set()
        for task in left:
            task.cancel()
        for task in left:
            with contextlib.suppress(asyncio.CancelledError):
                progress.add(await task, customer_id)

    async def _run_sharded(self, active: _Active) -> None:
        """A run split into shards: make them (once per run), claim them alongside the other
        replicas, and end the run once none is open — or stop this replica's shards and end
        it when it is cancelled. Everything it learns comes from the database, so a new owner
        after a crash picks up where the last one was."""
        run = active.run
        todo = [t for t in run.targets if (t["account"], t["check"]) not in active.prior.severities]
        made, open_shards = False, -1
        try:
            while True:
                if active.lost:
                    log.warning("run #%s: lost its lease; another worker owns it now", run.id)
                    return
                try:
                    if not made:
                        async with self.db.write() as session:
                            count = await shards.create(session, self.db, run.id, todo)
                        made = True
                        log.info("run #%s: %d checks in %d shards", run.id, len(todo), count)
                    if active.cancelled_by is not None:
                        await self._stop_pieces(run.id, active.cancelled_by)
                        await self._others_stop(run.id)
                        await self._final(active, WriteKind.CANCELLED, await self._all(run))
                        return
                    if not self._pending_here(run.id):  # else some are open for sure
                        async with self.db.read() as session:
                            open_shards = await shards.left(session, run.id)
                    if open_shards == 0:
                        everything = await self._all(run)
                        await self._final(active, WriteKind.COMPLETE, everything, whole=True)
                        return
                    await self._claim_shards(only=run.id)
                except DB_TROUBLE as exc:
                    log.warning("run #%s: the database is unavailable (%s)", run.id, exc)
                # Another replica's shard ending is heard by looking: sooner when only theirs
                # are left, as the run ends with the last of them.
                idle = self.options.cancel_poll_s
                if not self._pending_here(run.id):
                    idle = min(idle, self.options.poll_s)
                await wait_any(active.changed, within_s=idle)
                active.changed.clear()
        except asyncio.CancelledError:  # shutdown ran out of grace: this replica's shards
            # release themselves (they are stopped too); the run goes back to the queue.
            reason = "shutdown: back in the queue"
            await self._final(active, WriteKind.RELEASE, _Progress([], []), reason)
            raise

    async def _stop_pieces(self, run_id: int, by: str) -> None:
        """Stop this replica's shards of a cancelled run and wait for their last writes."""
        mine = [p for p in self.pieces.values() if p.run_id == run_id]
        for piece in mine:
            piece.cancel(by)
        tasks = [p.task for p in mine if p.task is not None]
        if tasks:
            await asyncio.wait(tasks)

    async def _others_stop(self, run_id: int) -> None:
        """Give the replicas running the cancelled run's other shards up to ``cancel_poll_s``
        to notice, stop and write what their checks finished before the cancel; the cancel
        then closes whatever is still open (:func:`app.engine.shards.close`)."""
        deadline = asyncio.get_running_loop().time() + self.options.cancel_poll_s
        while asyncio.get_running_loop().time() < deadline:
            async with self.db.read() as session:
                if not await shards.left(session, run_id, (ShardStatus.RUNNING,)):
                    return
            await asyncio.sleep(min(0.1, self.options.cancel_poll_s))

    async def _all(self, run: tx.Claimed) -> _Progress:
        """Everything every replica recorded for ``run``: its end is worked out from it."""
        prior = (await self._prior_results([run])).get(run.id, _Prior())
        return _Progress(list(prior.severities.values()), prior.looks, prior.sightings)

    async def _final(
        self,
        active: _Active,
        kind: WriteKind,
        progress: _Progress,
        reason: str = "",
        *,
        whole: bool = False,
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
            progress.looks if ends else (), progress.sightings if ends else (), whole,
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

    async def _target(self, run: _Ref, customer: Customer, account: str, kind: str) -> ResultRow:
        async with self._limit(run.id):
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
            shards_back = await shards.requeue_stale(session, self.db)
            shards_lost = await shards.fail_stale(session, self.db, actor)
        for run_id, shard in shards_back:
            log.warning(
                "run #%s shard %s: the replica running it stopped responding; queued again for "
                "any replica",
                run_id,
                shard,
            )
        for run_id, shard in shards_lost:
            log.error(
                "run #%s shard %s: the replicas running it stopped responding %d times; its "
                "checks are recorded as errors",
                run_id,
                shard,
                shards.MAX_ATTEMPTS,
            )
        if shards_back:
            self._wake.set()
        self.changes.publish(sorted({run_id for run_id, _ in [*shards_back, *shards_lost]}))
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
