"""How late each schedule is, for ``mhub_schedule_late_seconds`` (the "missed digest" alert).

A schedule is *late* when its latest slot is due and no replica has fired it (no run under the
slot's key; for a report schedule, no outbox row for its month) while the slot before it was
fired: it was working, and this slot did not happen. Read from the database, so every replica
says the same, including one that starts after all of them were down through a slot.

The slot before must have fired so that a schedule just added, or a fresh install, is not
called late for a slot nobody could have fired (the log still says ``missed`` for it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.config import Customer, Schedule
from app.db import Database
from app.models import Outbox, Run
from app.schedules.slots import Slot, report_due
from app.schedules.timer import Scheduler

_BEFORE = timedelta(seconds=1)


@dataclass(frozen=True)
class Due:
    """One schedule's latest slot and the one before, as the keys that fire them."""

    customer: str
    schedule: str
    at: datetime
    key: str
    previous_key: str
    report: bool


def due(scheduler: Scheduler, now: datetime) -> list[Due]:
    """Every schedule this replica would fire, with its latest two slots (report schedules
    only where reports are queued: a replica without Slack never fires them)."""
    found = []
    for customer, schedule in scheduler.schedules():
        report = schedule.kind == "report"
        if report and scheduler.post_report is None:
            continue
        cadence = scheduler.cadence(customer, schedule)
        latest = cadence.at_or_before(now)
        previous = cadence.at_or_before(latest - _BEFORE)
        found.append(
            Due(
                customer.id,
                schedule.name,
                latest,
                _key(customer, schedule, latest, report),
                _key(customer, schedule, previous, report),
                report,
            )
        )
    return found


def _key(customer: Customer, schedule: Schedule, at: datetime, report: bool) -> str:
    slot = Slot(customer.id, schedule.name, at)
    return report_due(customer, schedule, slot).key if report else slot.key


async def late(db: Database, scheduler: Scheduler, now: datetime) -> dict[tuple[str, str], float]:
    """``{(customer, schedule): seconds}`` for every schedule: how long its latest slot has
    been due unfired (0 when fired, or when the slot before was not fired either)."""
    slots = due(scheduler, now)
    if not slots:
        return {}
    fired = await _fired(db, slots)
    return {
        (d.customer, d.schedule): (
            max(0.0, (now - d.at).total_seconds())
            if d.key not in fired and d.previous_key in fired
            else 0.0
        )
        for d in slots
    }


async def _fired(db: Database, slots: Iterable[Due]) -> set[str]:
    runs = {k for d in slots if not d.report for k in (d.key, d.previous_key)}
    reports = {k for d in slots if d.report for k in (d.key, d.previous_key)}
    fired: set[str] = set()
    async with db.read() as session:
        if runs:
            query = select(Run.idempotency_key).where(Run.idempotency_key.in_(runs))
            fired.update(k for k in (await session.execute(query)).scalars() if k)
        if reports:
            query_reports = select(Outbox.dedupe_key).where(Outbox.dedupe_key.in_(reports))
            fired.update((await session.execute(query_reports)).scalars())
    return fired
