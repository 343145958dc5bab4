"""The run state machine: every status change a run can make, one function each.

::

    queued ──claim──────► running ──complete────► completed
      │                     │ ├────fail─────────► failed
      │                     │ ├────cancelled────► cancelled
      │                     │ ├────release──────► queued     (graceful shutdown; attempt refunded)
      │                     │ ├────requeue_stale► queued     (lease expired, attempts left)
      │                     │ └────fail_stale───► failed     (lease expired, no attempts left)
      └──cancel_queued──────────────────────────► cancelled

Every function is one guarded ``UPDATE … WHERE <expected state> … RETURNING`` whose returned
rows are the runs that actually moved, followed by their run events in the same transaction.
Nothing is read first and written later, so two workers, sweepers or users racing for the same
run cannot both win.

The guard of a worker's write is its :class:`Lease`: ``status = 'running' AND (id, attempt,
lease_owner) = (…)``. ``attempt`` grows with every claim, so a worker whose lease expired and
whose run was claimed again cannot write over the new owner; ``lease_owner`` (unique per
executor) closes the one gap ``attempt`` leaves, a run released at shutdown (attempt refunded)
and claimed again under the same attempt number by another process.

The worker transitions take several leases at once so the executor can commit many runs in one
transaction; each run still moves on its own guard, and a run that did not match is simply not
in the returned set (the caller turns that into "lease lost"). The user transitions take one run
and raise :class:`Conflict` when it was not in the expected state.

Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so replicas never wait for each other;
SQLAlchemy drops it on SQLite, where the one writer connection plus the status guard keep the
claim atomic. Time is the database clock (``Database.now``) so leases mean the same on every
replica.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    cast,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from app.db import Database
from app.engine import shards
from app.engine.bulk import unnest
from app.engine.events import Event, add_event, add_events
from app.engine.results import ResultRow, finished_events, insert_results
from app.models import Run, RunStatus

ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.QUEUED}
    ),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
"""The only status changes there are; the functions below make exactly these."""

RUNS = typed(Table, Run.__table__)


class Conflict(Exception):
    """The run was not in the expected state: another worker, sweeper or user changed it first."""


def can_move(old: RunStatus, new: RunStatus) -> bool:
    return new in ALLOWED[old]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A run as a claim returns it: what running it needs (a plain record, not an ORM object,
    because a busy executor claims thousands a second)."""

    id: int
    customer_id: str
    targets: list[dict[str, Any]]
    params: dict[str, Any]
    status: str
    attempt: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested_by: str | None
    started_at: datetime | None
    heartbeat_at: datetime | None


@dataclass(frozen=True)
class Lease:
    """What a worker holds while it runs a run; the guard of every write it makes."""

    run_id: int
    attempt: int
    owner: str

    @classmethod
    def of(cls, run: Run | Claimed) -> Lease:
        if run.lease_owner is None:
            raise ValueError(f"run #{run.id} is {run.status}; nobody holds its lease")
        return cls(run.id, run.attempt, run.lease_owner)


# -- guards ------------------------------------------------------------------------------------


def _held(db: Database, leases: Sequence[Lease]) -> ColumnElement[bool]:
    """The row is running under one of these leases. (``id = ANY`` / ``id IN`` alone is
    redundant with the tuple, but it is what lets the database find the rows by primary key.)"""
    ids = [lease.run_id for lease in leases]
    running = Run.status == RunStatus.RUNNING
    key = tuple_(Run.id, Run.attempt, Run.lease_owner)
    if db.is_sqlite:  # expanding parameters: the lists reach the driver without coercion
        triples = [(lease.run_id, lease.attempt, lease.owner) for lease in leases]
        return (
            running
            & Run.id.in_(bindparam("held__ids", ids, expanding=True))
            & key.in_(bindparam("held__leases", triples, expanding=True))
        )
    held = unnest(
        "held",
        id=(ids, BigInteger),
        attempt=([lease.attempt for lease in leases], Integer),
        owner=([lease.owner for lease in leases], String),
    )
    return (
        running
        & (Run.id == any_(bindparam("held__ids", ids, type_=ARRAY(BigInteger))))
        & key.in_(select(held.c.id, held.c.attempt, held.c.owner))
    )


async def _move(
    session: AsyncSession,
    db: Database,
    leases: Sequence[Lease],
    values: Mapping[str, Any],
    event: Event,
    results: Sequence[ResultRow] = (),
    also: ColumnElement[bool] | None = None,
    **data: Any,
) -> set[int]:
    """running → ``values`` for every lease still held (and ``also`` true), with the runs' last
    ``results``; returns the run ids that moved. The UPDATE is the guard: results of runs that
    did not move are dropped."""
    if not leases:
        return set()
    guard = _held(db, leases) if also is None else _held(db, leases) & also
    moved = set(
        (
            await session.execute(
                update(Run)
                .where(guard)
                .values(**values)
                .returning(Run.id)
                .execution_options(synchronize_session=False)
            )
        )
        .scalars()
        .all()
    )
    kept = [row for row in results if row.run_id in moved]
    await insert_results(session, db, kept)
    await add_events(
        session,
        db,
        [*finished_events(kept)]
        + [
            (lease.run_id, event, lease.owner, {"attempt": lease.attempt, **data})
            for lease in leases
            if lease.run_id in moved
        ],
    )
    return moved


async def _move_one(
    session: AsyncSession,
    db: Database,
    run_id: int,
    expected: RunStatus,
    values: Mapping[str, Any],
    event: Event,
    actor: str,
) -> Run:
    row = (
        await session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == expected)
            .values(**values)
            .returning(Run)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    ).scalar_one_or_none()
    if row is None:
        raise Conflict(f"run #{run_id} is no longer {expected}")
    await add_event(session, db, run_id, event, actor)
    return row


def _finished(db: Database) -> dict[str, Any]:
    return {"finished_at": db.now(), "lease_owner": None, "lease_expires_at": None}


# -- queued → running --------------------------------------------------------------------------


def _picked(db: Database, pick: Select[Any]) -> ColumnElement[bool]:
    """``runs.id`` is one of the ids ``pick`` selects and locks, evaluated once.

    PostgreSQL gets ``id = ANY(ARRAY(SELECT …))``: an uncorrelated InitPlan, then primary-key
    lookups. (``UPDATE … FROM (SELECT …)`` or ``IN (SELECT …)`` may be planned as a join that
    scans the whole table on every claim, which grows with the run history.) ``pick`` reads
    the table under an alias, so it is never correlated to the UPDATE.
    """
    if db.is_sqlite:
        return Run.id.in_(pick)
    return Run.id == any_(func.array(pick.scalar_subquery()))


async def claim_batch(
    session: AsyncSession,
    db: Database,
    owner: str,
    lease_s: float,
    limit: int,
    run_id: int | None = None,
) -> list[Claimed]:
    """queued → running for up to ``limit`` of the oldest queued runs (or just ``run_id``).

    One statement: ``UPDATE runs SET status = 'running', … WHERE id = ANY(ARRAY(SELECT id FROM
    runs WHERE status = 'queued' ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED)) AND status =
    'queued' RETURNING …``. The subquery picks and locks queued rows, skipping rows another
    replica is claiming; the outer guard moves each only if it is still queued.

    ``started_at`` keeps the run's first start; so a run that was claimed before (and may have
    results from that attempt) is one whose ``started_at`` differs from ``heartbeat_at``, see
    :func:`claimed_before`.
    """
    queued = aliased(Run, name="queued")
    pick = select(queued.id).where(queued.status == RunStatus.QUEUED)
    if run_id is not None:
        pick = pick.where(queued.id == run_id)
    pick = pick.order_by(queued.id).limit(limit).with_for_update(skip_locked=True)
    now = db.now()  # one expression: on SQLite two calls would be two different instants
    rows = (
        await session.execute(
            update(RUNS)
            .where(_picked(db, pick), Run.status == RunStatus.QUEUED)
            .values(
                status=RunStatus.RUNNING,
                attempt=Run.attempt + 1,
                lease_owner=owner,
                lease_expires_at=db.now_plus(lease_s),
                heartbeat_at=now,
                started_at=func.coalesce(Run.started_at, now),
            )
            .returning(*(RUNS.c[name] for name in Claimed.__slots__))
        )
    ).all()
    runs = sorted((Claimed(*row) for row in rows), key=lambda run: run.id)
    await add_events(
        session, db, [(run.id, Event.CLAIMED, owner, {"attempt": run.attempt}) for run in runs]
    )
    return runs


def claimed_before(run: Claimed) -> bool:
    """True when this claim is not the run's first (its earlier attempt may have results)."""
    return run.started_at != run.heartbeat_at


async def claim(
    session: AsyncSession, db: Database, owner: str, lease_s: float, run_id: int | None = None
) -> Claimed | None:
    """:func:`claim_batch` for one run: the oldest queued run, or ``run_id`` if still queued."""
    runs = await claim_batch(session, db, owner, lease_s, 1, run_id)
    return runs[0] if runs else None


# -- running → running (the lease) -------------------------------------------------------------


async def heartbeat(
    session: AsyncSession, db: Database, leases: Sequence[Lease], lease_s: float
) -> dict[int, str | None]:
    """Extend the leases still held, measured by the database clock.

    Returns ``{run_id: cancel_requested_by}`` for each run whose lease was extended; a run
    missing from the answer was lost (swept or finished by someone else).
    """
    if not leases:
        return {}
    rows = await session.execute(
        update(Run)
        .where(_held(db, leases))
        .values(heartbeat_at=db.now(), lease_expires_at=db.now_plus(lease_s))
        .returning(Run.id, Run.cancel_requested_by)
        .execution_options(synchronize_session=False)
    )
    return {run_id: by for run_id, by in rows.all()}


async def held(
    session: AsyncSession, db: Database, leases: Sequence[Lease]
) -> dict[int, str | None]:
    """The read-only twin of :func:`heartbeat` for the cheap cancel poll: same answer, no write."""
    if not leases:
        return {}
    rows = await session.execute(select(Run.id, Run.cancel_requested_by).where(_held(db, leases)))
    return {run_id: by for run_id, by in rows.all()}


async def record(
    session: AsyncSession, db: Database, leases: Sequence[Lease], rows: Sequence[ResultRow]
) -> set[int]:
    """Write finished checks of runs whose lease is still held (the run stays running);
    returns the runs written. The guard (an UPDATE, so it also locks the row on PostgreSQL
    until commit) comes first; results of a run whose lease is gone are dropped, so a late
    write is refused. A run's last results go with its final transition instead."""
    if not leases:
        return set()
    mine = set(
        (
            await session.execute(
                update(Run)
                .where(_held(db, leases))
                .values(heartbeat_at=db.now())
                .returning(Run.id)
                .execution_options(synchronize_session=False)
            )
        )
        .scalars()
        .all()
    )
    kept = [row for row in rows if row.run_id in mine]
    await insert_results(session, db, kept)
    await add_events(session, db, finished_events(kept))
    return mine


# -- running → terminal, by the lease holder ---------------------------------------------------


async def complete(
    session: AsyncSession,
    db: Database,
    leases: Sequence[Lease],
    outcome: str,
    results: Sequence[ResultRow] = (),
    *,
    whole: bool = False,
) -> set[int]:
    """running → completed with ``outcome`` (the worst result severity), writing the runs'
    last ``results`` with it. ``whole``: a sharded run, which moves only once none of its
    shards is open (:func:`app.engine.shards.none_open`)."""
    values = {"status": RunStatus.COMPLETED, "outcome": outcome, **_finished(db)}
    also = shards.none_open() if whole else None
    return await _move(session, db, leases, values, Event.COMPLETED, results, also, outcome=outcome)


async def fail(
    session: AsyncSession, db: Database, leases: Sequence[Lease], reason: str
) -> set[int]:
    """running → failed: the run could not be run at all (``reason`` says why and what to do)."""
    values = {"status": RunStatus.FAILED, "outcome": "error", "error": reason, **_finished(db)}
    moved = await _move(session, db, leases, values, Event.FAILED, reason=reason)
    await shards.close(session, db, moved)
    return moved


async def cancelled(
    session: AsyncSession,
    db: Database,
    leases: Sequence[Lease],
    outcome: str | None,
    results: Sequence[ResultRow] = (),
) -> set[int]:
    """running → cancelled, written by the owner once its checks have stopped; results written
    before stay visible and ``outcome`` is the worst of them (None when there are none)."""
    values = {"status": RunStatus.CANCELLED, "outcome": outcome, **_finished(db)}
    moved = await _move(session, db, leases, values, Event.CANCELLED, results, outcome=outcome)
    await shards.close(session, db, moved)
    return moved


async def release(
    session: AsyncSession,
    db: Database,
    leases: Sequence[Lease],
    reason: str,
    results: Sequence[ResultRow] = (),
) -> set[int]:
    """running → queued without consuming an attempt (graceful shutdown ran out of grace);
    ``results`` finished before the stop are kept, and the next attempt skips them."""
    values = {
        "status": RunStatus.QUEUED,
        "attempt": Run.attempt - 1,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    return await _move(
        session, db, leases, values, Event.REQUEUED, results, reason=reason, refund=True
    )


# -- running → queued | failed, by any sweeper -------------------------------------------------

LOST_WORKER = "lease expired: the worker running it stopped responding"


def _stale(db: Database, *, attempts_left: bool, limit: int) -> ColumnElement[bool]:
    left = Run.attempt < Run.max_attempts if attempts_left else Run.attempt >= Run.max_attempts
    stale = aliased(Run, name="stale")
    stale_left = (
        stale.attempt < stale.max_attempts if attempts_left else stale.attempt >= stale.max_attempts
    )
    pick = (
        select(stale.id)
        .where(stale.status == RunStatus.RUNNING, stale.lease_expires_at < db.now(), stale_left)
        .order_by(stale.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (
        _picked(db, pick)
        & (Run.status == RunStatus.RUNNING)
        & (Run.lease_expires_at < db.now())
        & left
    )


async def requeue_stale(
    session: AsyncSession, db: Database, actor: str, limit: int = 100
) -> list[tuple[int, int]]:
    """running → queued for runs whose lease expired and that have attempts left; the attempt
    stays counted. Returns ``[(run_id, attempt)]``. Any number of sweepers may run this at once:
    the guard re-checks the expiry, so each stale lease is rescued exactly once."""
    rows = (
        await session.execute(
            update(Run)
            .where(_stale(db, attempts_left=True, limit=limit))
            .values(status=RunStatus.QUEUED, lease_owner=None, lease_expires_at=None)
            .returning(Run.id, Run.attempt)
            .execution_options(synchronize_session=False)
        )
    ).all()
    moved = sorted((run_id, attempt) for run_id, attempt in rows)
    await add_events(
        session,
        db,
        [
            (run_id, Event.REQUEUED, actor, {"attempt": attempt, "reason": LOST_WORKER})
            for run_id, attempt in moved
        ],
    )
    return moved


async def fail_stale(
    session: AsyncSession, db: Database, actor: str, limit: int = 100
) -> list[tuple[int, int]]:
    """running → failed for runs whose lease expired on their last allowed attempt."""
    reason = (
        literal("gave up after ")
        + cast(Run.attempt, String)
        + literal(
            " attempts: the worker running it stopped responding each time "
            "(see the hub's logs for a crash); retry it when the cause is fixed"
        )
    )
    rows = (
        await session.execute(
            update(Run)
            .where(_stale(db, attempts_left=False, limit=limit))
            .values(status=RunStatus.FAILED, outcome="error", error=reason, **_finished(db))
            .returning(Run.id, Run.attempt, Run.error)
            .execution_options(synchronize_session=False)
        )
    ).all()
    moved = sorted((run_id, attempt, error) for run_id, attempt, error in rows)
    await shards.close(session, db, {run_id for run_id, _, _ in moved})
    await add_events(
        session,
        db,
        [
            (run_id, Event.FAILED, actor, {"attempt": attempt, "reason": error})
            for run_id, attempt, error in moved
        ],
    )
    return [(run_id, attempt) for run_id, attempt, _ in moved]


# -- by a user ---------------------------------------------------------------------------------


async def cancel_queued(session: AsyncSession, db: Database, run_id: int, actor: str) -> Run:
    """queued → cancelled at once; no worker is involved. Conflict if it was claimed first."""
    values = {"status": RunStatus.CANCELLED, "cancel_requested_by": actor, "finished_at": db.now()}
    return await _move_one(session, db, run_id, RunStatus.QUEUED, values, Event.CANCELLED, actor)


async def request_cancel(session: AsyncSession, db: Database, run_id: int, actor: str) -> Run:
    """Flag a running run (its status does not change). The owner stops it within seconds: at
    once when the request was made in its process, else on its next cancel poll. Conflict if the
    run is not running any more."""
    values = {"cancel_requested_by": actor}
    return await _move_one(
        session, db, run_id, RunStatus.RUNNING, values, Event.CANCEL_REQUESTED, actor
    )
