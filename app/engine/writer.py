"""The executor's writer: every write of the runs one executor owns goes through one task that
commits them many to a transaction (group commit).

Four kinds of items: a lease-guarded :class:`Write` of one run (results, and maybe its last
transition), a lease-guarded :class:`ShardEnd` (a shard's results with its end), a
:class:`Beat` (extend the leases of runs and shards, learn of cancel requests) and a
:class:`Note` (an event that needs no guard). Each carries a future that is settled with the
answer once its transaction commits. Because this task, not the run's, performs the write, a
run's last write happens even if the run's task is cancelled meanwhile (shutdown): the caller
shields the future.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import DB_TROUBLE, Database
from app.engine import answers, blind, findings, shards
from app.engine import transitions as tx
from app.engine.alerts import Router
from app.engine.answers import Rule
from app.engine.events import Event, add_events
from app.engine.results import ResultRow
from app.models import Run, ShardStatus
from checks.base import Severity

log = logging.getLogger(__name__)


class WriteKind(StrEnum):
    RECORD = "record"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    FAIL = "fail"
    RELEASE = "release"


ENDED = {
    WriteKind.COMPLETE: "completed",
    WriteKind.CANCELLED: "cancelled",
    WriteKind.FAIL: "failed",
}


@dataclass(eq=False)
class Write:
    """A lease-guarded write of one run: results, and maybe its last transition."""

    kind: WriteKind
    lease: tx.Lease
    rows: Sequence[ResultRow] = ()
    outcome: str | None = None
    reason: str = ""
    customer_id: str = ""
    """Whose run it is: a finished run's outcome leaves out the customer's quiet problems."""
    looks: Sequence[findings.Look] = ()
    """All of the run's looks, with its end (completed or cancelled): applied to the findings
    in the transaction that ends it."""
    sightings: Sequence[blind.Sighting] = ()
    """Whether each of the run's results could look, with its end: kept in the ``sights``."""
    whole: bool = False
    """A sharded run's completion: refused while any of its shards is still open."""
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(eq=False)
class ShardEnd:
    """A shard's results with its end (done, cancelled, or queued again at shutdown); the
    answer is whether its lease was still held."""

    status: ShardStatus
    lease: shards.ShardLease
    rows: Sequence[ResultRow] = ()
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(eq=False)
class Beat:
    """Extend leases; the answer is ``(runs, shards)`` as :func:`tx.heartbeat` and
    :func:`shards.heartbeat` return them."""

    leases: Sequence[tx.Lease]
    shards: Sequence[shards.ShardLease] = ()
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(eq=False)
class Note:
    """An event that needs no guard (a check is being retried)."""

    run_id: int
    event: Event
    actor: str
    data: Mapping[str, Any]
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


Item = Write | ShardEnd | Beat | Note


def settle(
    future: asyncio.Future[Any], answer: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # the waiter was cancelled; the write happened anyway
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)


class Writer:
    """Commits the writes of every run this executor owns, many to a transaction."""

    def __init__(
        self,
        db: Database,
        lease_s: float,
        batch: int,
        on_written: Callable[[set[int]], None],
        rules_of: Callable[[str], Sequence[Rule]] | None = None,
        router: Router | None = None,
    ) -> None:
        self.db = db
        self.router = router
        """With it, a run's end also queues what its customer's findings need sent out."""
        self._queued = 0
        self.rules_of = rules_of
        """The customers' YAML mute rules; with them, a finished run's outcome leaves out its
        snoozed and muted problems (:func:`app.engine.answers.settled`)."""
        self.lease_s = lease_s
        self.batch = batch
        self.on_written = on_written
        self._queue: list[Item] = []
        self._more = asyncio.Event()
        self._closing = False
        self._dead: BaseException | None = None

    def put(self, item: Item) -> asyncio.Future[Any]:
        if self._dead is not None:
            settle(item.done, error=RuntimeError(f"the executor's writer died: {self._dead!r}"))
        else:
            self._queue.append(item)
            self._more.set()
        return item.done

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closing = True
        self._more.set()

    async def run(self) -> None:
        try:
            while self._queue or not self._closing:
                if not self._queue:
                    self._more.clear()
                    await self._more.wait()
                    continue
                batch, self._queue = self._queue[: self.batch], self._queue[self.batch :]
                await self._flush(batch)
        except BaseException as exc:
            self._dead = exc
            for item in self._queue:
                settle(item.done, error=RuntimeError(f"the executor's writer died: {exc!r}"))
            self._queue.clear()
            raise

    async def _flush(self, batch: list[Item]) -> None:
        try:
            await self._apply(batch)
            return
        except DB_TROUBLE as exc:
            if len(batch) == 1:
                log.error("could not write to the database: %s", exc)
                settle(batch[0].done, error=exc)
                return
            log.warning(
                "a batch of %d writes failed (%s); writing them one by one", len(batch), exc
            )
        for item in batch:
            try:
                await self._apply([item])
            except DB_TROUBLE as exc:
                log.error("could not write to the database: %s", exc)
                settle(item.done, error=exc)

    async def _apply(self, batch: list[Item]) -> None:
        answers: list[tuple[asyncio.Future[Any], Any]] = []
        changed: set[int] = set()
        self._queued = 0
        async with self.db.write() as session:
            for beat in (i for i in batch if isinstance(i, Beat)):
                runs = await tx.heartbeat(session, self.db, beat.leases, self.lease_s)
                held = await shards.heartbeat(session, self.db, beat.shards, self.lease_s)
                answers.append((beat.done, (runs, held)))
            for status in ShardStatus:
                ends = [i for i in batch if isinstance(i, ShardEnd) and i.status == status]
                if ends:
                    kept = await shards.finish(
                        session, self.db, status, [(end.lease, end.rows) for end in ends]
                    )
                    answers.extend((end.done, end.lease in kept) for end in ends)
                    changed.update(end.lease.run_id for end in ends if end.lease in kept)
            writes = [i for i in batch if isinstance(i, Write)]
            for write, moved in (await self._guarded(session, writes)).items():
                answers.append((write.done, moved))
                if moved:
                    changed.add(write.lease.run_id)
            notes = [i for i in batch if isinstance(i, Note)]
            await add_events(
                session, self.db, [(n.run_id, n.event, n.actor, n.data) for n in notes]
            )
            answers.extend((note.done, True) for note in notes)
        for future, answer in answers:
            settle(future, answer)
        if changed:
            self.on_written(changed)
        if self._queued and self.router is not None:
            self.router.on_queued()

    async def _guarded(self, session: AsyncSession, writes: list[Write]) -> dict[Write, bool]:
        """Intermediate results first, then the transitions (each carrying its run's last
        results), grouped so that runs ending the same way share one statement."""
        records = [w for w in writes if w.kind is WriteKind.RECORD]
        held = await tx.record(
            session, self.db, [w.lease for w in records], [r for w in records for r in w.rows]
        )
        moved = {w: w.lease.run_id in held for w in records}
        groups: dict[tuple[WriteKind, str | None, str, bool], list[Write]] = {}
        for write in writes:
            if write.kind is not WriteKind.RECORD:
                key = (write.kind, write.outcome, write.reason, write.whole)
                groups.setdefault(key, []).append(write)
        for (kind, outcome, reason, whole), group in groups.items():
            leases = [w.lease for w in group]
            rows = [r for w in group for r in w.rows]
            ids = await self._transition(session, kind, leases, rows, outcome, reason, whole)
            moved.update({w: w.lease.run_id in ids for w in group})
        ended = [w for w in writes if moved.get(w) and w.kind is not WriteKind.RECORD]
        await findings.apply(session, self.db, [one for w in ended for one in w.looks])
        for w in sorted(ended, key=lambda w: w.lease.run_id):  # oldest run first
            if w.sightings:
                at = max(one.at for one in w.sightings)
                await blind.keep(session, self.db, w.customer_id, w.lease.run_id, w.sightings, at)
        await self._settle(session, ended)
        if self.router is not None and ended:
            self._queued += await self.router.route(session, [w.customer_id for w in ended])
        return moved

    async def _settle(self, session: AsyncSession, writes: Sequence[Write]) -> None:
        """Lower the outcome of finished runs whose only problems are snoozed or muted."""
        ended = {
            w.lease.run_id: (w.customer_id, w.outcome)
            for w in writes
            if w.kind in (WriteKind.COMPLETE, WriteKind.CANCELLED) and w.customer_id
        }
        if self.rules_of is None or not ended:
            return
        lowered = await answers.settled(session, ended, self.rules_of, datetime.now(UTC))
        for run_id, outcome in lowered.items():
            await session.execute(
                update(Run).where(Run.id == run_id).values(outcome=outcome)
                .execution_options(synchronize_session=False)
            )  # fmt: skip

    async def _transition(
        self,
        session: AsyncSession,
        kind: WriteKind,
        leases: list[tx.Lease],
        rows: list[ResultRow],
        outcome: str | None,
        reason: str,
        whole: bool,
    ) -> set[int]:
        if kind is WriteKind.COMPLETE:
            outcome = outcome or Severity.OK.value
            return await tx.complete(session, self.db, leases, outcome, rows, whole=whole)
        if kind is WriteKind.CANCELLED:
            return await tx.cancelled(session, self.db, leases, outcome, rows)
        if kind is WriteKind.FAIL:
            return await tx.fail(session, self.db, leases, reason)
        return await tx.release(session, self.db, leases, reason, rows)
