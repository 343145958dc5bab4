"""Retention: deleting history that is old and that nothing needs any more, in small batches
(``mhub db prune --older-than 90d``, and ``HUB_RETENTION_DAYS`` in ``mhub serve``).

**The cutoff** is ``now - older_than``, but never later than the first day of the month before
last (UTC, less a day for the zones ahead of it): a monthly report compares its month with the
one before, so a report of last month made late still has both months.

**Table by table** (rows older than the cutoff):

- ``runs`` — a finished run (completed, failed, cancelled) created before the cutoff is deleted
  with its ``results``, its ``run_shards`` (who did which slice of a large run), its
  ``run_events`` and its ``outbox`` rows, unless it is
  the latest run of its customer (the runboard's *last run*);
  the run a ``sights`` row last looked with (the latest look of each account × check: the
  runboard, blind spots, the metrics of looks);
  the run that last saw or looked at an open finding (its evidence, linked from the finding);
  the latest completed run of its schedule (the next digest compares with it);
  a run with an ``outbox`` row not delivered yet.
  A queued or running run is never deleted. A newer run that retried a deleted one keeps its
  own data; only its link to the deleted run is cleared.
- ``run_events`` without a run (audit rows) — the ``read`` rows (every page view and API read)
  and ``access`` rows (every access decision) are deleted; ``answer`` rows (acknowledge,
  snooze, mute, maintenance) are kept: the reports and findings read them, and there is one
  per human action.
- ``outbox`` — a run's rows go with the run; rows without a run (a finding's thread in the
  alerts channel, replied to for as long as the finding lives, and the monthly reports, one a
  month) are kept.
- ``notices`` — those sent to PagerDuty or a webhook, or refused for good, are deleted;
  pending ones are kept.
- ``findings``, ``mutes``, ``maintenance``, ``sights``, ``channel_paces``, ``api_tokens`` —
  kept: they grow with what is configured and with people's answers, not with time, and a
  finding that comes back must be known as one that came back.

Idempotency keys live on their runs: Slack's retries and schedule slots need theirs for
minutes to a day, far inside any cutoff; an API key is remembered as long as its run is.

**Batches.** Each transaction deletes at most ``batch`` runs (with their rows) or ``batch``
audit rows or notices, then the loop pauses, so no statement holds the database for long. On
PostgreSQL a transaction-scoped advisory lock lets one replica prune at a time (the others find
it taken and try again next round); SQLite has one writer anyway.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db import DB_TROUBLE, Database
from app.engine.events import Event
from app.errors import UsageError, quoted
from app.models import (
    TERMINAL_STATUSES,
    Finding,
    Notice,
    Outbox,
    Result,
    Run,
    RunEvent,
    RunShard,
    RunStatus,
    Sight,
    Source,
)
from app.waiting import wait_any

log = logging.getLogger(__name__)

BATCH = 200
"""Runs (with their results, events and outbox rows), or audit rows and notices, deleted in one
transaction."""
PAUSE_S = 0.5
"""The nap between two batches: the server's work goes first."""
EVERY_S = 3600.0
"""How often ``mhub serve`` prunes (``HUB_RETENTION_DAYS``)."""
MAX_DAYS = 36500

DELIVERED = ("posted", "failed")
"""Outbox statuses with nothing left to send (app.slack.outbox.Status)."""
PRUNED_AUDIT = (Event.READ.value, Event.ACCESS.value)
DONE_NOTICES = ("sent", "failed")
_LOCK = 0x6D687562  # "mhub": the advisory lock pruning takes on PostgreSQL

_AGE = re.compile(r"(\d{1,6})d")


def parse_age(value: str) -> timedelta:
    """``90d`` → 90 days; anything else is a UsageError saying what to write."""
    found = _AGE.fullmatch(value.strip().lower())
    days = int(found[1]) if found else 0
    if not 1 <= days <= MAX_DAYS:
        raise UsageError(
            f"{quoted(value, 20)} is not an age: give a number of days from 1 to {MAX_DAYS}, "
            "such as 90d"
        )
    return timedelta(days=days)


def cutoff(now: datetime, older_than: timedelta) -> datetime:
    """What is older than this may go: ``now - older_than``, but never later than the first
    day of the month before last, less a day (the monthly report compares two months)."""
    month = now.year * 12 + now.month - 1 - 2
    floor = datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC) - timedelta(days=1)
    return min(now - older_than, floor)


@dataclass
class Pruned:
    """What a prune deleted (or, dry, would delete)."""

    runs: int = 0
    results: int = 0
    events: int = 0
    outbox: int = 0
    audit: int = 0
    notices: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def __str__(self) -> str:
        return (
            f"{self.runs} run(s) with {self.results} result(s), {self.events} event(s) and "
            f"{self.outbox} Slack message row(s); {self.audit} audit row(s) of reads and "
            f"access decisions; {self.notices} notice(s) sent out"
        )


# -- what may go -------------------------------------------------------------------------------


def old_runs(before: datetime) -> Select[int]:
    """The runs that may go (the rules in the module docstring), oldest first."""
    newer = aliased(Run)
    not_latest_of_customer = exists().where(newer.customer_id == Run.customer_id, newer.id > Run.id)
    latest_of_schedule = (
        (Run.source == Source.SCHEDULE.value) & (Run.status == RunStatus.COMPLETED.value)
    ) & ~exists().where(
        newer.customer_id == Run.customer_id,
        newer.id > Run.id,
        newer.status == RunStatus.COMPLETED.value,
        newer.params["schedule"].as_string() == Run.params["schedule"].as_string(),
    )
    open_evidence = (
        select(Finding.last_run_id)
        .where(Finding.status == "open")
        .union(select(Finding.looked_run_id).where(Finding.status == "open"))
    )
    undelivered = exists().where(Outbox.run_id == Run.id, Outbox.status.not_in(DELIVERED))
    return (
        select(Run.id)
        .where(
            Run.created_at < before,
            Run.status.in_([s.value for s in TERMINAL_STATUSES]),
            not_latest_of_customer,
            ~latest_of_schedule,
            Run.id.not_in(select(Sight.looked_run_id)),
            Run.id.not_in(open_evidence),
            ~undelivered,
        )
        .order_by(Run.id)
    )


def old_audit(before: datetime) -> Select[int]:
    """Audit rows of reads and access decisions, oldest first (``ix_run_events_audit``)."""
    return (
        select(RunEvent.id)
        .where(
            RunEvent.run_id.is_(None),
            RunEvent.created_at < before,
            RunEvent.type.in_(PRUNED_AUDIT),
        )
        .order_by(RunEvent.created_at)
    )


def old_notices(before: datetime) -> Select[int]:
    """Notices sent out or refused for good, oldest first (``ix_notices_due``)."""
    return (
        select(Notice.id)
        .where(
            Notice.status.in_(DONE_NOTICES),
            Notice.next_attempt_at < before,
            Notice.created_at < before,
        )
        .order_by(Notice.next_attempt_at)
    )


# -- pruning -------------------------------------------------------------------------------------


async def prune(
    db: Database,
    before: datetime,
    *,
    batch: int = BATCH,
    pause_s: float = 0.0,
    stop: asyncio.Event | None = None,
) -> Pruned:
    """Delete what may go, ``batch`` rows of a kind per transaction, until nothing is left
    (or ``stop``). Returns what was deleted."""
    total = Pruned()
    for step in (_runs_batch, _audit_batch, _notices_batch):
        while stop is None or not stop.is_set():
            done, full = await step(db, before, batch)
            total += done
            if not full:
                break
            if pause_s:
                await asyncio.sleep(pause_s)
    return total


async def count(db: Database, before: datetime) -> Pruned:
    """What :func:`prune` would delete now (``--dry-run``): counted, nothing changed."""
    runs = old_runs(before).order_by(None).subquery()
    ids = select(runs.c.id)

    async def number(query: Select[Any]) -> int:
        async with db.read() as session:
            await _no_jit(session, db)
            return int((await session.execute(query)).scalar_one())

    return Pruned(
        runs=await number(select(func.count()).select_from(runs)),
        results=await number(select(func.count(Result.id)).where(Result.run_id.in_(ids))),
        events=await number(select(func.count(RunEvent.id)).where(RunEvent.run_id.in_(ids))),
        outbox=await number(select(func.count(Outbox.id)).where(Outbox.run_id.in_(ids))),
        audit=await number(select(func.count()).select_from(old_audit(before).subquery())),
        notices=await number(select(func.count()).select_from(old_notices(before).subquery())),
    )


async def _no_jit(session: AsyncSession, db: Database) -> None:
    """PostgreSQL: no JIT for this transaction. The planner prices the keep-rules' subplans
    high, so JIT would compile every batch's query: ~370 ms of compiling for ~1 ms of work
    (bench/prune.py, docs/benchmarks.md)."""
    if not db.is_sqlite:
        await session.execute(text("SET LOCAL jit = off"))


async def _turn(session: AsyncSession, db: Database) -> bool:
    """Whether this replica may prune now (PostgreSQL: nobody else holds the lock)."""
    if db.is_sqlite:
        return True
    await _no_jit(session, db)
    taken = await session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK})
    return bool(taken.scalar_one())


async def _ids(session: AsyncSession, query: Select[int], batch: int) -> list[int]:
    return list((await session.execute(query.limit(batch))).scalars())


async def _runs_batch(db: Database, before: datetime, batch: int) -> tuple[Pruned, bool]:
    async with db.write() as session:
        if not await _turn(session, db):
            return Pruned(), False
        ids = await _ids(session, old_runs(before), batch)
        if not ids:
            return Pruned(), False
        done = await _delete_runs(session, ids)
    return done, len(ids) == batch


async def _delete_runs(session: AsyncSession, ids: Sequence[int]) -> Pruned:
    await session.execute(update(Run).where(Run.retry_of.in_(ids)).values(retry_of=None))
    results = await _deleted(session, delete(Result).where(Result.run_id.in_(ids)))
    await session.execute(delete(RunShard).where(RunShard.run_id.in_(ids)))
    events = await _deleted(session, delete(RunEvent).where(RunEvent.run_id.in_(ids)))
    outbox = await _deleted(
        session, delete(Outbox).where(Outbox.run_id.in_(ids), Outbox.status.in_(DELIVERED))
    )
    runs = await _deleted(
        session,
        delete(Run).where(
            Run.id.in_(ids),
            ~exists().where(Outbox.run_id == Run.id),  # one that became due again meanwhile
        ),
    )
    return Pruned(runs=runs, results=results, events=events, outbox=outbox)


async def _audit_batch(db: Database, before: datetime, batch: int) -> tuple[Pruned, bool]:
    gone, full = await _rows_batch(db, old_audit(before), RunEvent, batch)
    return Pruned(audit=gone), full


async def _notices_batch(db: Database, before: datetime, batch: int) -> tuple[Pruned, bool]:
    gone, full = await _rows_batch(db, old_notices(before), Notice, batch)
    return Pruned(notices=gone), full


async def _rows_batch(
    db: Database, query: Select[int], table: type[RunEvent] | type[Notice], batch: int
) -> tuple[int, bool]:
    """Delete the first ``batch`` rows of ``table`` that ``query`` picks: (how many went,
    whether the batch was full)."""
    async with db.write() as session:
        if not await _turn(session, db):
            return 0, False
        ids = await _ids(session, query, batch)
        gone = await _deleted(session, delete(table).where(table.id.in_(ids))) if ids else 0
    return gone, len(ids) == batch


async def _deleted(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


# -- the server's loop ---------------------------------------------------------------------------


async def keep_pruning(
    db: Database,
    days: int,
    stop: asyncio.Event,
    *,
    every_s: float = EVERY_S,
    pause_s: float = PAUSE_S,
) -> None:
    """``mhub serve`` with ``HUB_RETENTION_DAYS``: prune every ``every_s`` until ``stop``,
    a batch at a time with a pause between batches. A database that fails is tried again
    next round."""
    older_than = timedelta(days=days)
    while not stop.is_set():
        before = cutoff(datetime.now(UTC), older_than)
        try:
            pruned = await prune(db, before, pause_s=pause_s, stop=stop)
        except DB_TROUBLE as exc:
            log.warning("retention: could not delete old rows (%s); again in %.0f s", exc, every_s)
        else:
            if pruned:
                log.info("retention: deleted %s, from before %s", pruned, _day(before))
        await wait_any(stop, within_s=every_s)


def _day(moment: datetime) -> date:
    return moment.date()
