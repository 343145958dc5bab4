"""Shards: one large run's targets in slices that every replica claims, so adding replicas makes
one customer's sweep faster.

A run is still claimed, owned and ended by one replica (:mod:`app.engine.transitions`): one
card, one digest, one record. A run with more than :data:`SHARDED_OVER` targets is split by its
owner into shards (``run_shards``) when it starts; then any replica — the owner too — claims
queued shards of running runs, runs their checks and writes their results with the shard's
end, in one transaction. The owner ends the run once no shard is open::

    queued ──claim──► running ──done───────► done
      ▲                  │ ├──cancelled────► cancelled   (the run was cancelled)
      │                  │ └──release──────► queued      (graceful shutdown; attempt refunded)
      └──requeue_stale───┘                               (lease expired, attempts left)
                         └──fail_stale─────► done        (lease expired on the last attempt:
                                                          its checks recorded as errors)

**Size.** ``ceil(targets / SPREAD)``, at most :data:`SHARD_MAX`: a 60-target run becomes 30
shards of 2 (three replicas share it), 800 targets 100 shards of 8. Targets are interleaved
across accounts first, so each shard reaches different accounts (and their AssumeRole calls).

**Leases.** Like a run's: claimed by one ``UPDATE … WHERE (run_id, shard) IN (SELECT … FOR
UPDATE SKIP LOCKED)`` (replicas never wait for each other on PostgreSQL; on SQLite the one
writer connection plus the status guard keep it atomic), extended by the executor's heartbeat,
and every write guarded by ``(run_id, shard, attempt, lease_owner)`` plus the run still being
open (queued or running): a replica that lost its shard, or whose run ended (cancelled,
failed), writes nothing. A shard's results go in with its end, so a shard whose worker died
is done again whole by whoever claims it next (the first result of a target stands).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import any_, exists, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from app.db import Database
from app.engine.events import add_events
from app.engine.results import ResultRow, finished_events, insert_results
from app.models import ACTIVE_STATUSES, OPEN_SHARD_STATUSES, Result, Run, RunShard, RunStatus
from app.models import ShardStatus as S
from checks.errors import Reason

SHARDED_OVER = 8
"""Runs with more targets than this are shared across replicas; smaller ones run whole on the
replica that claims them (no shard rows: the common one-account run costs nothing more)."""
SHARD_MAX = 8
"""The most targets in one shard."""
SPREAD = 32
"""Aim for this many shards per run (fewer when that would make shards of one target)."""
MAX_ATTEMPTS = 3
"""A shard whose worker stopped responding this many times is given up: its checks are
recorded as errors, so the run still ends."""

GAVE_UP = (
    "not checked: the replica running this check stopped responding {n} times (see the hub's "
    "logs for a crash); retry the run when the cause is fixed"
)


def interleaved(targets: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Targets in round-robin order across accounts (every account's first check, then every
    account's second, …), so the first wave of checks reaches as many accounts — and their
    AssumeRole calls — as the concurrency allows, instead of queueing behind one account."""
    position: dict[str, int] = {}
    keyed = []
    for index, target in enumerate(targets):
        seen = position.get(target["account"], 0)
        keyed.append((seen, index, target))
        position[target["account"]] = seen + 1
    return [target for _, _, target in sorted(keyed, key=lambda item: item[:2])]


def split(targets: Sequence[dict[str, str]]) -> list[list[dict[str, str]]]:
    """``targets`` in shards of ``ceil(n / SPREAD)`` (at most :data:`SHARD_MAX`), interleaved
    across accounts."""
    ordered = interleaved(targets)
    size = max(1, min(SHARD_MAX, math.ceil(len(ordered) / SPREAD)))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def sharded(targets: Sequence[Any]) -> bool:
    return len(targets) > SHARDED_OVER


@dataclass(frozen=True, slots=True)
class ShardLease:
    """What a worker holds while it runs a shard; the guard of its writes."""

    run_id: int
    shard: int
    attempt: int
    owner: str


@dataclass(frozen=True, slots=True)
class ClaimedShard:
    """A shard as a claim returns it, with what running its checks needs from its run."""

    lease: ShardLease
    targets: list[dict[str, str]]
    customer_id: str
    params: dict[str, Any]
    run_attempt: int
    cancel_requested_by: str | None

    @property
    def run_id(self) -> int:
        return self.lease.run_id


@dataclass(frozen=True, slots=True)
class Open:
    """A running run with queued shards: what a claimer weighs before claiming."""

    run_id: int
    queued: int
    size: int


def _run_open() -> ColumnElement[bool]:
    """The shard's run has not ended (queued again after its owner died counts as open)."""
    return exists().where(Run.id == RunShard.run_id, Run.status.in_(list(ACTIVE_STATUSES)))


def _held(leases: Sequence[ShardLease]) -> ColumnElement[bool]:
    key = tuple_(RunShard.run_id, RunShard.shard, RunShard.attempt, RunShard.lease_owner)
    return (
        (RunShard.status == S.RUNNING)
        & RunShard.run_id.in_(sorted({lease.run_id for lease in leases}))
        & key.in_([(lease.run_id, lease.shard, lease.attempt, lease.owner) for lease in leases])
        & _run_open()
    )


# -- made by the run's owner -------------------------------------------------------------------


async def create(
    session: AsyncSession, db: Database, run_id: int, targets: Sequence[dict[str, str]]
) -> int:
    """Split ``targets`` into queued shards of ``run_id`` unless it has shards already (a run
    claimed again after its owner died keeps them: what is done stays done). Returns how many
    shards the run has."""
    have = (
        await session.execute(
            select(func.count()).select_from(RunShard).where(RunShard.run_id == run_id)
        )
    ).scalar_one()
    if have:
        return int(have)
    shards = split(targets)
    if shards:
        await session.execute(
            insert(RunShard),
            [
                {"run_id": run_id, "shard": index, "targets": part, "size": len(part),
                 "status": S.QUEUED, "attempt": 0}
                for index, part in enumerate(shards)
            ],
        )  # fmt: skip
    return len(shards)


async def left(
    session: AsyncSession, run_id: int, statuses: Sequence[S] = tuple(OPEN_SHARD_STATUSES)
) -> int:
    """How many of the run's shards are not finished (queued or running; or ``statuses``)."""
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(RunShard)
                .where(RunShard.run_id == run_id, RunShard.status.in_(list(statuses)))
            )
        ).scalar_one()
    )


async def close(session: AsyncSession, db: Database, run_ids: set[int]) -> None:
    """queued | running → cancelled for every shard of ``run_ids``, written with the runs' own
    end (cancelled or failed): no shard of an ended run is left open. A replica still running
    one finds its lease gone, stops its checks and writes nothing more."""
    if not run_ids:
        return
    await session.execute(
        update(RunShard)
        .where(
            RunShard.run_id.in_(sorted(run_ids)),
            RunShard.status.in_(list(OPEN_SHARD_STATUSES)),
        )
        .values(
            status=S.CANCELLED,
            done_by=RunShard.lease_owner,
            finished_at=db.now(),
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def none_open() -> ColumnElement[bool]:
    """The guard of a sharded run's completion: none of its shards is queued or running."""
    return ~exists().where(
        RunShard.run_id == Run.id, RunShard.status.in_(list(OPEN_SHARD_STATUSES))
    )


# -- claimed by any replica --------------------------------------------------------------------


async def claimable(
    session: AsyncSession, db: Database, run_ids: Sequence[int] | None = None, limit: int = 16
) -> list[Open]:
    """Running runs (not being cancelled) with queued shards, oldest first (or only ``run_ids``).
    A read: the claim itself is what guards."""
    query = (
        select(RunShard.run_id, func.count(), func.max(RunShard.size))
        .join(Run, Run.id == RunShard.run_id)
        .where(
            RunShard.status == S.QUEUED,
            Run.status == RunStatus.RUNNING,
            Run.cancel_requested_by.is_(None),
        )
        .group_by(RunShard.run_id)
        .order_by(RunShard.run_id)
        .limit(limit)
    )
    if run_ids is not None:
        query = query.where(RunShard.run_id.in_(list(run_ids)))
    return [Open(run_id, count, size) for run_id, count, size in (await session.execute(query))]


async def claim(
    session: AsyncSession, db: Database, owner: str, lease_s: float, run_id: int, limit: int
) -> list[ClaimedShard]:
    """queued → running for up to ``limit`` of ``run_id``'s queued shards, lowest first,
    skipping those another replica is claiming. One guarded statement, like a run's claim."""
    if limit <= 0:
        return []
    queued = aliased(RunShard, name="queued")
    pick = (
        select(queued.shard)
        .where(queued.run_id == run_id, queued.status == S.QUEUED)
        .order_by(queued.shard)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    picked = (
        RunShard.shard.in_(pick)
        if db.is_sqlite
        else RunShard.shard == any_(func.array(pick.scalar_subquery()))
    )
    running = exists().where(
        Run.id == RunShard.run_id,
        Run.status == RunStatus.RUNNING,
        Run.cancel_requested_by.is_(None),
    )
    now = db.now()
    rows = (
        await session.execute(
            update(RunShard)
            .where(RunShard.run_id == run_id, picked, RunShard.status == S.QUEUED, running)
            .values(
                status=S.RUNNING,
                attempt=RunShard.attempt + 1,
                lease_owner=owner,
                lease_expires_at=db.now_plus(lease_s),
                heartbeat_at=now,
            )
            .returning(RunShard.shard, RunShard.attempt, RunShard.targets)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not rows:
        return []
    run = (
        await session.execute(
            select(Run.customer_id, Run.params, Run.attempt, Run.cancel_requested_by).where(
                Run.id == run_id
            )
        )
    ).one()
    return sorted(
        (
            ClaimedShard(
                ShardLease(run_id, shard, attempt, owner),
                list(targets),
                run.customer_id,
                dict(run.params or {}),
                run.attempt,
                run.cancel_requested_by,
            )
            for shard, attempt, targets in rows
        ),
        key=lambda claimed: claimed.lease.shard,
    )


async def recorded(
    session: AsyncSession, run_id: int, targets: Sequence[dict[str, str]]
) -> set[tuple[str, str]]:
    """Which of ``targets`` already have a result (a shard released at shutdown kept those)."""
    accounts = sorted({t["account"] for t in targets})
    rows = await session.execute(
        select(Result.account, Result.check).where(
            Result.run_id == run_id, Result.account.in_(accounts)
        )
    )
    wanted = {(t["account"], t["check"]) for t in targets}
    return {(account, check) for account, check in rows.all()} & wanted


# -- the lease ---------------------------------------------------------------------------------


async def _cancels(session: AsyncSession, run_ids: set[int]) -> dict[int, str | None]:
    if not run_ids:
        return {}
    rows = await session.execute(
        select(Run.id, Run.cancel_requested_by).where(Run.id.in_(sorted(run_ids)))
    )
    return {run_id: by for run_id, by in rows.all()}


async def heartbeat(
    session: AsyncSession, db: Database, leases: Sequence[ShardLease], lease_s: float
) -> dict[tuple[int, int], str | None]:
    """Extend the shard leases still held; returns ``{(run_id, shard): cancel_requested_by}``
    for each (a shard missing from the answer was lost: swept, or its run ended)."""
    if not leases:
        return {}
    rows = (
        await session.execute(
            update(RunShard)
            .where(_held(leases))
            .values(heartbeat_at=db.now(), lease_expires_at=db.now_plus(lease_s))
            .returning(RunShard.run_id, RunShard.shard)
            .execution_options(synchronize_session=False)
        )
    ).all()
    cancels = await _cancels(session, {run_id for run_id, _ in rows})
    return {(run_id, shard): cancels.get(run_id) for run_id, shard in rows}


async def held(
    session: AsyncSession, leases: Sequence[ShardLease]
) -> dict[tuple[int, int], str | None]:
    """The read-only twin of :func:`heartbeat` for the cheap cancel poll."""
    if not leases:
        return {}
    rows = (
        await session.execute(select(RunShard.run_id, RunShard.shard).where(_held(leases)))
    ).all()
    cancels = await _cancels(session, {run_id for run_id, _ in rows})
    return {(run_id, shard): cancels.get(run_id) for run_id, shard in rows}


# -- its end -----------------------------------------------------------------------------------


async def finish(
    session: AsyncSession,
    db: Database,
    status: S,
    ends: Sequence[tuple[ShardLease, Sequence[ResultRow]]],
) -> set[ShardLease]:
    """running → ``status`` (done, cancelled, or queued to release it at shutdown) for every
    shard whose lease is still held, with its results; returns the leases that moved. The
    UPDATE is the guard: the results of a shard that did not move are dropped."""
    if not ends:
        return set()
    values: dict[str, Any]
    if status is S.QUEUED:
        values = {"status": S.QUEUED, "attempt": RunShard.attempt - 1, "lease_owner": None,
                  "lease_expires_at": None}  # fmt: skip
    else:
        values = {"status": status, "done_by": RunShard.lease_owner, "finished_at": db.now(),
                  "lease_expires_at": None}  # fmt: skip
    moved = set(
        (
            await session.execute(
                update(RunShard)
                .where(_held([lease for lease, _ in ends]))
                .values(**values)
                .returning(RunShard.run_id, RunShard.shard)
                .execution_options(synchronize_session=False)
            )
        ).all()
    )
    kept = [row for lease, rows in ends if (lease.run_id, lease.shard) in moved for row in rows]
    await insert_results(session, db, kept)
    await add_events(session, db, finished_events(kept))
    return {lease for lease, _ in ends if (lease.run_id, lease.shard) in moved}


# -- by any sweeper ----------------------------------------------------------------------------


def _stale(db: Database, *, attempts_left: bool, limit: int) -> ColumnElement[bool]:
    stale = aliased(RunShard, name="stale")
    left = stale.attempt < MAX_ATTEMPTS if attempts_left else stale.attempt >= MAX_ATTEMPTS
    pick = (
        select(stale.run_id, stale.shard)
        .where(stale.status == S.RUNNING, stale.lease_expires_at < db.now(), left)
        .order_by(stale.run_id, stale.shard)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    again = RunShard.attempt < MAX_ATTEMPTS if attempts_left else RunShard.attempt >= MAX_ATTEMPTS
    return (
        tuple_(RunShard.run_id, RunShard.shard).in_(pick)
        & (RunShard.status == S.RUNNING)
        & (RunShard.lease_expires_at < db.now())
        & again
        & _run_open()
    )


async def requeue_stale(
    session: AsyncSession, db: Database, limit: int = 100
) -> list[tuple[int, int]]:
    """running → queued for shards whose lease expired, with attempts left; returns
    ``[(run_id, shard)]``. Safe on every replica at once: the guard re-checks the expiry."""
    rows = (
        await session.execute(
            update(RunShard)
            .where(_stale(db, attempts_left=True, limit=limit))
            .values(status=S.QUEUED, lease_owner=None, lease_expires_at=None)
            .returning(RunShard.run_id, RunShard.shard)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return sorted((run_id, shard) for run_id, shard in rows)


async def fail_stale(
    session: AsyncSession, db: Database, actor: str, limit: int = 100
) -> list[tuple[int, int]]:
    """running → done for shards whose lease expired on their last attempt: each target without
    a result is recorded as an error that says why, so the run can end."""
    rows = (
        await session.execute(
            update(RunShard)
            .where(_stale(db, attempts_left=False, limit=limit))
            .values(status=S.DONE, done_by=actor, finished_at=db.now(), lease_expires_at=None)
            .returning(RunShard.run_id, RunShard.shard, RunShard.targets, RunShard.attempt)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not rows:
        return []
    runs = dict(
        (
            await session.execute(
                select(Run.id, Run.attempt).where(Run.id.in_(sorted({r[0] for r in rows})))
            )
        ).all()
    )
    now = datetime.now(UTC)
    errors = [
        _gave_up(run_id, runs.get(run_id, 1), target, attempt, actor, now)
        for run_id, _, targets, attempt in rows
        for target in targets
    ]
    await insert_results(session, db, errors)
    await add_events(session, db, finished_events(errors))
    return sorted((run_id, shard) for run_id, shard, _, _ in rows)


def _gave_up(
    run_id: int, attempt: int, target: dict[str, str], tries: int, actor: str, now: datetime
) -> ResultRow:
    return ResultRow(
        run_id=run_id,
        attempt=attempt,
        account=target["account"],
        check=target["check"],
        severity="error",
        summary=GAVE_UP.format(n=tries),
        details={"error": "worker stopped responding", "reason": Reason.OTHER.value},
        series={},
        started_at=now,
        finished_at=now,
        actor=actor,
    )
