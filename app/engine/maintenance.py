"""Maintenance windows: which are active, or coming, at a time, and starting one now.

A window is a span of time over some of a customer's accounts and checks (``None``: all of
them) during which its findings are labelled "during maintenance", not routed, and do not
raise an outcome. Windows come from two places:

- the customer's YAML (``maintenance:``, :class:`app.config.MaintenanceWindow`): recurring
  (``cron`` + ``duration``) or one-off (``start`` + ``end``); source ``config``;
- ``/monitor maintenance TARGET DURATION [reason]``: a row in ``maintenance``, from now for the
  duration; source ``slack``. A row ended early (``ended_at``) lasts until it was ended.

**Time.** A cron is read as wall-clock time in the customer's zone, by the rule schedules use
(:mod:`app.schedules.slots`): a start in a spring-forward gap opens the window shifted forward
by the gap (``0 2 * * SUN`` in Europe/Berlin on the last Sunday of March opens at 03:00 CEST),
and a start that happens twice at a fall-back opens it at the first of the two. ``duration`` is
elapsed time from there: a ``2h`` window lasts two real hours whatever the clocks do (on the
fall-back Sunday, ``0 2 * * SUN`` with ``2h`` runs from 02:00 CEST to 03:00 CET). Windows may
overlap; each is reported on its own.

The functions over windows are pure; :func:`windows_in` and :func:`start` use the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import MAX_MAINTENANCE, Customer, MaintenanceWindow
from app.db import Database
from app.engine.events import Event, add_events
from app.errors import HubError
from app.models import Maintenance, Run

Source = Literal["config", "slack"]
UPCOMING = timedelta(days=7)
"""How far ahead "upcoming" windows are looked for (the Home tab, the runboard, the web)."""
MAX_OCCURRENCES = 1000
"""The most occurrences of one recurring window taken from a span: a cron matching every few
minutes over a week is more than anyone reads; its first ones are enough."""
_SLACK = timedelta(hours=3)
"""More than any zone's clock change: how far a wall-clock time may be from the UTC instant
it names, beyond the zone's usual offset."""


class MaintenanceError(HubError):
    """A window that cannot be started as asked; the message says what to do."""


@dataclass(frozen=True)
class Window:
    """One maintenance window: an occurrence of a YAML window, or one started from Slack."""

    name: str
    accounts: tuple[str, ...] | None
    """Account aliases; None: every account of the customer."""
    checks: tuple[str, ...] | None
    """Check kinds; None: every check."""
    starts_at: datetime
    ends_at: datetime
    """Aware, UTC; the window covers [starts_at, ends_at)."""
    reason: str | None = None
    by: str | None = None
    """Who started it (a Slack user id, ``cli:…``); None for a YAML window."""
    source: Source = "config"
    id: int | None = None
    """The ``maintenance`` row; None for a YAML window."""

    def covers(self, account: str, check: str) -> bool:
        """Whether it is over ``account``'s ``check`` (whenever it is active)."""
        return (self.accounts is None or account in self.accounts) and (
            self.checks is None or check in self.checks
        )

    def active(self, at: datetime) -> bool:
        """Whether it is open at ``at``: from its start (included) to its end (excluded)."""
        return self.starts_at <= at < self.ends_at


def active(windows: Iterable[Window], at: datetime) -> list[Window]:
    """The windows open at ``at``, by start."""
    return sorted((w for w in windows if w.active(at)), key=_order)


def upcoming(windows: Iterable[Window], at: datetime, within: timedelta = UPCOMING) -> list[Window]:
    """The windows that open after ``at`` and within ``within`` of it, by start."""
    return sorted((w for w in windows if at < w.starts_at <= at + within), key=_order)


def occurrences(customer: Customer, start: datetime, end: datetime) -> list[Window]:
    """The windows of the customer's YAML that overlap [start, end) (aware), by start."""
    found: list[Window] = []
    for window in customer.maintenance:
        found.extend(_spans(window, customer.tz, _utc(start), _utc(end)))
    return sorted(found, key=_order)


@lru_cache(maxsize=4096)
def open_at(window: MaintenanceWindow, tz: ZoneInfo, at: datetime) -> Window | None:
    """The occurrence of the YAML ``window`` open at ``at`` (the one that opened last, when
    two overlap), or None (asked once per finding at the same time: remembered)."""
    at = _utc(at)
    found = [w for w in _spans(window, tz, at, at + timedelta(microseconds=1)) if w.active(at)]
    return found[-1] if found else None


def _spans(window: MaintenanceWindow, tz: ZoneInfo, start: datetime, end: datetime) -> list[Window]:
    once = window.once(tz)
    if once is not None:
        opens, closes = once
        return [_window(window, opens, closes)] if opens < end and closes > start else []
    assert window.cron is not None and window.duration is not None  # the model says so
    duration = window.duration
    # Wall times from a little before the first start that could still be open at ``start``
    # to a little after ``end``: every instant in between is one of them.
    first = (start - duration).astimezone(tz).replace(tzinfo=None) - _SLACK
    last = end.astimezone(tz).replace(tzinfo=None) + _SLACK
    matches = croniter(window.cron, first)
    seen: set[datetime] = set()
    found: list[Window] = []
    while len(found) < MAX_OCCURRENCES:
        wall: datetime = matches.get_next(datetime)
        if wall > last:
            break
        opens = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if opens in seen or not (opens < end and opens + duration > start):
            continue
        seen.add(opens)
        found.append(_window(window, opens, opens + duration))
    return found


def _window(window: MaintenanceWindow, opens: datetime, closes: datetime) -> Window:
    return Window(window.name, window.accounts, window.checks, opens, closes, window.reason)


def from_row(row: Maintenance) -> Window:
    """A window started from Slack (or the CLI), as it stands: ended early, it ends then."""
    ends = row.ends_at if row.ended_at is None else min(row.ends_at, row.ended_at)
    return Window(
        name=row.name,
        accounts=tuple(row.accounts) if row.accounts is not None else None,
        checks=tuple(row.checks) if row.checks is not None else None,
        starts_at=_utc(row.starts_at),
        ends_at=_utc(ends),
        reason=row.reason or None,
        by=row.created_by,
        source="slack",
        id=row.id,
    )


async def windows_in(
    session: AsyncSession, customer: Customer, start: datetime, end: datetime
) -> list[Window]:
    """Every window of ``customer`` overlapping [start, end): those of its YAML and those
    started from Slack (not ended before ``start``), by start."""
    return (await windows_of(session, [customer], start, end))[customer.id]


async def windows_of(
    session: AsyncSession, customers: Iterable[Customer], start: datetime, end: datetime
) -> dict[str, list[Window]]:
    """:func:`windows_in` for many customers at once (one query): customer id → its windows
    overlapping [start, end), by start."""
    start, end = _utc(start), _utc(end)
    by_id = {customer.id: customer for customer in customers}
    found: dict[str, list[Window]] = {
        customer_id: occurrences(customer, start, end) for customer_id, customer in by_id.items()
    }
    if by_id:
        query = select(Maintenance).where(
            Maintenance.customer_id.in_(sorted(by_id)),
            Maintenance.starts_at < end,
            Maintenance.ends_at > start,
        )
        for row in (await session.execute(query.order_by(Maintenance.id))).scalars():
            window = from_row(row)
            if window.ends_at > start and window.ends_at > window.starts_at:
                found[row.customer_id].append(window)
    return {customer_id: sorted(windows, key=_order) for customer_id, windows in found.items()}


async def during(session: AsyncSession, customer: Customer, run: Run) -> list[Window]:
    """The customer's windows that were open at some time while ``run`` looked (from its start
    to its end, or now) over one of its targets: what its card and digest say."""
    start = run.started_at or run.created_at
    end = max(run.finished_at or datetime.now(UTC), start + timedelta(microseconds=1))
    targets = [(str(t.get("account")), str(t.get("check"))) for t in run.targets or ()]
    return [
        window
        for window in await windows_in(session, customer, start, end)
        if any(window.covers(account, check) for account, check in targets)
    ]


async def start(
    db: Database,
    customer_id: str,
    *,
    name: str,
    accounts: Sequence[str] | None,
    checks: Sequence[str] | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str | None,
    by: str,
    audit: Mapping[str, Any],
) -> Window:
    """Record a window started from Slack or the CLI, audited (an ``answer`` event, action
    ``maintenance``) in the same transaction. ``audit`` says where it was asked from."""
    starts_at, ends_at = _utc(starts_at), _utc(ends_at)
    if not starts_at < ends_at <= starts_at + MAX_MAINTENANCE:
        raise MaintenanceError(
            "A maintenance window lasts from 1m to 7d. Give a duration such as 2h."
        )
    async with db.write() as session:
        row = Maintenance(
            customer_id=customer_id,
            name=name[:128],
            accounts=list(accounts) if accounts is not None else None,
            checks=list(checks) if checks is not None else None,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason or "",
            created_by=by,
            created_at=starts_at,
        )
        session.add(row)
        await session.flush()
        window = from_row(row)
        data = {
            **audit,
            "action": "maintenance",
            "customer": customer_id,
            "window": as_json(window),
        }
        await add_events(session, db, [(None, Event.ANSWER, by, data)])
    return window


def as_json(window: Window) -> dict[str, Any]:
    """The window as the audit trail and the API write it (times ISO 8601, UTC)."""
    return {
        "id": window.id,
        "name": window.name,
        "accounts": list(window.accounts) if window.accounts is not None else None,
        "checks": list(window.checks) if window.checks is not None else None,
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
        "reason": window.reason,
        "by": window.by,
        "source": window.source,
    }


def _order(window: Window) -> tuple[datetime, datetime, str]:
    return window.starts_at, window.ends_at, window.name


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime; pass an aware one such as datetime.now(UTC)")
    return moment.astimezone(UTC)
