"""Schedule slots: when each schedule fires, as pure arithmetic (no timer, no database).

A schedule's cron is read as wall-clock time in the customer's time zone. Each matching
wall-clock time is one *slot*, identified by its instant in UTC; the slot key
``schedule:<customer>:<name>:<fire time as UTC ISO, e.g. 2026-11-21T00:00:00Z>`` is the run's
idempotency key, UNIQUE in the database, so a slot becomes one run however many replicas tick
(see :mod:`app.schedules.timer`).

**Daylight saving** (both by PEP 495's rule for ``fold=0``, which is the cron's wall-clock meaning):

- a wall time that does not exist (spring forward: 02:30 when clocks jump 02:00 → 03:00) fires
  once, shifted forward by the gap (at 03:30); if that instant is also a slot of its own (a cron
  that matches 03:30 too), the two are one slot;
- a wall time that happens twice (fall back: 01:30 when clocks go 02:00 → 01:00) fires once, at
  its first occurrence.

A **report** schedule (``kind: report``) posts the report of the calendar month before its slot
(:func:`report_month`, in the customer's zone) instead of running checks; its key is the
outbox row's, ``report:<customer>:<name>:<YYYY-MM>`` (:class:`ReportDue`), UNIQUE too, so a
month's report is queued once however many replicas tick and however often the cron fires.

`/monitor schedules`, the App Home, the web view and the timer all read next fire times from
here, so they all agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from croniter import croniter

from app.catalog import Catalog
from app.config import Customer, Schedule
from app.errors import NotFound, UsageError

_DAY = timedelta(days=1)
_SEARCH_LIMIT = 100_000
"""Cron matches looked at before giving up; a valid cron needs a handful (at most a few
thousand around a DST change for ``* * * * *``)."""


class Cadence(Protocol):
    """When a schedule fires: instants in UTC."""

    def after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``."""
        ...

    def at_or_before(self, moment: datetime) -> datetime:
        """The last fire time at or before ``moment``."""
        ...


@dataclass(frozen=True)
class CronCadence:
    """A 5-field cron read as wall-clock time in ``tz`` (see the module docstring for DST)."""

    cron: str
    tz: tzinfo

    def instant(self, wall: datetime) -> datetime:
        """A naive wall-clock time in ``tz`` as an instant: a time in a spring-forward gap is
        shifted forward by the gap, a fall-back time that happens twice is its first
        occurrence."""
        return wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)

    def _offsets(self, moment: datetime) -> list[timedelta]:
        return [
            (moment + shift).astimezone(self.tz).utcoffset() or timedelta(0)
            for shift in (-_DAY, timedelta(0), _DAY)
        ]

    def after(self, moment: datetime) -> datetime:
        moment = _utc(moment)
        # No wall time before this one can map to an instant after ``moment``.
        start = (moment + min(self._offsets(moment))).replace(tzinfo=None)
        matches = croniter(self.cron, start)
        for _ in range(_SEARCH_LIMIT):
            fire = self.instant(matches.get_next(datetime))
            if fire > moment:
                return fire
        raise RuntimeError(f'"{self.cron}" did not fire after {moment.isoformat()}')

    def at_or_before(self, moment: datetime) -> datetime:
        moment = _utc(moment)
        # No wall time after this one can map to an instant at or before ``moment``.
        end = (moment + max(self._offsets(moment))).replace(tzinfo=None, second=0, microsecond=0)
        matches = croniter(self.cron, end + timedelta(minutes=1))
        for _ in range(_SEARCH_LIMIT):
            fire = self.instant(matches.get_prev(datetime))
            if fire <= moment:
                return fire
        raise RuntimeError(f'"{self.cron}" did not fire before {moment.isoformat()}')


@dataclass(frozen=True)
class EverySeconds:
    """Every ``seconds`` since the epoch (``HUB_TEST_SLOT_SECONDS``; tests only)."""

    seconds: int

    def after(self, moment: datetime) -> datetime:
        stamp = _utc(moment).timestamp()
        return datetime.fromtimestamp((stamp // self.seconds + 1) * self.seconds, UTC)

    def at_or_before(self, moment: datetime) -> datetime:
        stamp = _utc(moment).timestamp()
        return datetime.fromtimestamp(stamp // self.seconds * self.seconds, UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime; pass an aware one such as datetime.now(UTC)")
    return moment.astimezone(UTC)


def fire_times(cadence: Cadence, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``after`` (UTC)."""
    found: list[datetime] = []
    moment = after
    for _ in range(count):
        moment = cadence.after(moment)
        found.append(moment)
    return found


def fires_between(cadence: Cadence, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end] (UTC)."""
    found: list[datetime] = []
    moment = cadence.after(start)
    while moment <= end:
        found.append(moment)
        moment = cadence.after(moment)
    return found


def next_fire(schedule: Schedule, customer: Customer, now: datetime) -> datetime:
    """When ``schedule`` fires next, in the customer's zone (what `/monitor schedules`, the web
    view and the App Home show: one function, so they all agree with the scheduler)."""
    return CronCadence(schedule.cron, customer.tz).after(now).astimezone(customer.tz)


@dataclass(frozen=True)
class Upcoming:
    customer: Customer
    schedule: Schedule
    at: datetime
    """Aware, in the customer's zone."""


def next_fire_times(catalog: Catalog, now: datetime) -> list[Upcoming]:
    """Every schedule with its next fire time in its customer's zone, soonest first."""
    found = [
        Upcoming(customer, schedule, next_fire(schedule, customer, now))
        for customer in catalog.customers.values()
        for schedule in customer.schedules
    ]
    return sorted(found, key=lambda u: (u.at, u.customer.id, u.schedule.name))


@dataclass(frozen=True)
class Slot:
    customer_id: str
    schedule: str
    at: datetime
    """The fire time (UTC)."""

    @property
    def key(self) -> str:
        """``schedule:<customer>:<name>:<fire time, UTC ISO>`` — the run's idempotency key."""
        return f"schedule:{self.customer_id}:{self.schedule}:{self.stamp}"

    @property
    def stamp(self) -> str:
        return self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_month(at: datetime, tz: tzinfo) -> str:
    """The month a report slot at ``at`` covers: the calendar month before the one ``at`` falls
    in, in ``tz`` (``2026-11`` for 1 December 2026 09:00)."""
    local = _utc(at).astimezone(tz)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"


@dataclass(frozen=True)
class ReportDue:
    """A report schedule's slot: the month whose report it posts, and where."""

    slot: Slot
    month: str
    """``2026-11``: the calendar month before the slot, in the customer's zone."""
    channel: str

    @property
    def customer_id(self) -> str:
        return self.slot.customer_id

    @property
    def schedule(self) -> str:
        return self.slot.schedule

    @property
    def key(self) -> str:
        """``report:<customer>:<name>:<YYYY-MM>`` — the outbox row's key (UNIQUE)."""
        return report_key(self.slot.customer_id, self.slot.schedule, self.month)


def report_key(customer_id: str, schedule: str, month: str) -> str:
    return f"report:{customer_id}:{schedule}:{month}"


def report_due(customer: Customer, schedule: Schedule, slot: Slot) -> ReportDue:
    """What ``slot`` of the report schedule ``schedule`` posts."""
    channel = schedule.channel or customer.slack.channel
    assert channel is not None  # the config refuses a schedule with nowhere to post
    return ReportDue(slot, report_month(slot.at, customer.tz), channel)


def schedule_of(customer: Customer, name: str | None) -> Schedule:
    """The customer's schedule called ``name`` (default: its first digest schedule, else its
    first)."""
    if not customer.schedules:
        raise UsageError(
            f"{customer.name} has no schedules; add one under `schedules:` in its config "
            "(docs/schedules.md)."
        )
    if name is None:
        digests = [s for s in customer.schedules if s.kind == "digest"]
        return (digests or customer.schedules)[0]
    for schedule in customer.schedules:
        if schedule.name == name.strip().lower():
            return schedule
    names = ", ".join(s.name for s in customer.schedules)
    raise NotFound(f'{customer.name} has no schedule "{name}"; its schedules: {names}.')
