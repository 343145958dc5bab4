"""The run state machine: one function per transition.

::

    queued ──claim──► running ──complete──► completed
      │                 │ ├──fail─────────► failed
      │                 │ ├──cancelled────► cancelled
      │                 │ └──requeue──────► queued   (lease expired with attempts left, shutdown)
      └──cancel_queued──────────────────────► cancelled

Each transition is one guarded ``UPDATE … WHERE id = :id AND status = :expected [AND attempt =
:attempt]`` that checks the row count and appends a run event in the same transaction. A write
from a worker that lost its lease matches no row and raises :class:`Conflict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db import Database
from app.models import Run, RunEvent, RunStatus

ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.QUEUED}
    ),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class Event(StrEnum):
    CREATED = "created"
    CLAIMED = "claimed"
    CHECK_FINISHED = "check_finished"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    REQUEUED = "requeued"
    RETRIED = "retried"
    DELIVERED = "delivered"
    ACCESS = "access"


class Conflict(Exception):
    """The run was not in the expected state (another worker or user changed it first)."""


def can_move(old: RunStatus, new: RunStatus) -> bool:
    return new in ALLOWED[old]


async def add_event(
    session: AsyncSession, db: Database, run_id: int | None, kind: Event, actor: str, **data: Any
) -> None:
    await session.execute(
        insert(RunEvent).values(
            run_id=run_id, type=kind, actor=actor, data=data, created_at=db.now()
        )
    )


async def _guarded(
    session: AsyncSession,
    db: Database,
    run_id: int,
    *,
    expected: RunStatus,
    attempt: int | None,
    values: dict[str, Any],
    event: Event,
    actor: str,
    **data: Any,
) -> Run:
    new = values.get("status", expected)
    assert new == expected or can_move(expected, RunStatus(new)), (expected, new)
    where = [Run.id == run_id, Run.status == expected]
    if attempt is not None:
        where.append(Run.attempt == attempt)
    row = (
        await session.execute(
            update(Run)
            .where(and_(*where))
            .values(**values)
            .returning(Run)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if row is None:
        raise Conflict(
            f"run #{run_id} is no longer {expected}"
            + (f" at attempt {attempt}" if attempt is not None else "")
        )
    await add_event(session, db, run_id, event, actor, **data)
    return row


async def claim(
    session: AsyncSession, db: Database, owner: str, lease_s: float, run_id: int | None = None
) -> Run | None:
    """queued → running for the oldest queued run (or ``run_id``); None when there is none."""
    queued = aliased(Run)  # an alias, so the subquery is not correlated to the UPDATE
    pick = select(queued.id).where(queued.status == RunStatus.QUEUED).order_by(queued.id).limit(1)
    if run_id is not None:
        pick = pick.where(queued.id == run_id)
    pick = pick.with_for_update(skip_locked=True)  # dropped by SQLite; the guard below holds
    row = (
        await session.execute(
            update(Run)
            .where(Run.id == pick.scalar_subquery(), Run.status == RunStatus.QUEUED)
            .values(
                status=RunStatus.RUNNING,
                attempt=Run.attempt + 1,
                lease_owner=owner,
                lease_expires_at=db.now_plus(lease_s),
                heartbeat_at=db.now(),
                started_at=db.now(),
            )
            .returning(Run)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if row is not None:
        await add_event(session, db, row.id, Event.CLAIMED, owner, attempt=row.attempt)
    return row


async def heartbeat(
    session: AsyncSession, db: Database, run_id: int, attempt: int, lease_s: float
) -> str | None:
    """Extend the lease; returns who asked to cancel, if anyone. Conflict if the lease is lost."""
    found = (
        await session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.RUNNING, Run.attempt == attempt)
            .values(heartbeat_at=db.now(), lease_expires_at=db.now_plus(lease_s))
            .returning(Run.cancel_requested_by)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if found is None:
        raise Conflict(f"run #{run_id} lost its lease (attempt {attempt})")
    return found[0]


async def complete(
    session: AsyncSession, db: Database, run_id: int, attempt: int, outcome: str, actor: str
) -> Run:
    return await _guarded(
        session,
        db,
        run_id,
        expected=RunStatus.RUNNING,
        attempt=attempt,
        values={
            "status": RunStatus.COMPLETED,
            "outcome": outcome,
            "finished_at": db.now(),
            "lease_owner": None,
            "lease_expires_at": None,
        },
        event=Event.COMPLETED,
        actor=actor,
        outcome=outcome,
    )


async def fail(
    session: AsyncSession,
    db: Database,
    run_id: int,
    attempt: int | None,
    reason: str,
    actor: str,
    outcome: str | None = None,
) -> Run:
    return await _guarded(
        session,
        db,
        run_id,
        expected=RunStatus.RUNNING,
        attempt=attempt,
        values={
            "status": RunStatus.FAILED,
            "error": reason,
            "outcome": outcome or "error",
            "finished_at": db.now(),
            "lease_owner": None,
            "lease_expires_at": None,
        },
        event=Event.FAILED,
        actor=actor,
        reason=reason,
    )


async def cancel_queued(session: AsyncSession, db: Database, run_id: int, actor: str) -> Run:
    return await _guarded(
        session,
        db,
        run_id,
        expected=RunStatus.QUEUED,
        attempt=None,
        values={
            "status": RunStatus.CANCELLED,
            "cancel_requested_by": actor,
            "finished_at": db.now(),
        },
        event=Event.CANCELLED,
        actor=actor,
    )


async def request_cancel(session: AsyncSession, db: Database, run_id: int, actor: str) -> Run:
    """Flag a running run; its owner sees the flag on its next heartbeat (or at once)."""
    return await _guarded(
        session,
        db,
        run_id,
        expected=RunStatus.RUNNING,
        attempt=None,
        values={"cancel_requested_by": actor},
        event=Event.CANCEL_REQUESTED,
        actor=actor,
    )


async def cancelled(
    session: AsyncSession, db: Database, run_id: int, attempt: int, outcome: str | None, actor: str
) -> Run:
    """running → cancelled, written by the owner once its checks have stopped."""
    return await _guarded(
        session,
        db,
        run_id,
        expected=RunStatus.RUNNING,
        attempt=attempt,
        values={
            "status": RunStatus.CANCELLED,
            "outcome": outcome,
            "finished_at": db.now(),
            "lease_owner": None,
            "lease_expires_at": None,
        },
        event=Event.CANCELLED,
        actor=actor,
    )


async def requeue(
    session: AsyncSession,
    db: Database,
    run_id: int,
    attempt: int,
    reason: str,
    actor: str,
    *,
    refund: bool,
) -> Run:
    """running → queued. ``refund`` gives the attempt back (graceful shutdown)."""
    return await _guarded(
        session,
        db,
        run_id,
        expected=RunStatus.RUNNING,
        attempt=attempt,
        values={
            "status": RunStatus.QUEUED,
            "attempt": attempt - 1 if refund else attempt,
            "lease_owner": None,
            "lease_expires_at": None,
        },
        event=Event.REQUEUED,
        actor=actor,
        reason=reason,
        refund=refund,
    )


async def stale_runs(session: AsyncSession, db: Database, limit: int = 100) -> Sequence[Run]:
    """Running runs whose lease has expired."""
    return (
        (
            await session.execute(
                select(Run)
                .where(Run.status == RunStatus.RUNNING, Run.lease_expires_at < db.now())
                .order_by(Run.id)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )


def lease_age(run: Run, now: datetime) -> float | None:
    return (now - run.heartbeat_at).total_seconds() if run.heartbeat_at else None
