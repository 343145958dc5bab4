"""Blind spots: the account × checks of a customer that could not look, kept across runs.

Every result of an account × check is a *sighting*: it could look, or it could not — an
``error`` with no resource lines (the role cannot be assumed, a call was refused, AWS kept
throttling or timed out…). A ``skipped`` result could look: there was nothing to look at. An
``error`` that still lists resource lines looked at some of them; the lines it could not look
at are its findings' business (:mod:`app.engine.findings`), not a blind spot.

For each (customer, account, check) the ``sights`` table keeps when a look last succeeded
(``last_ok_at``), how many looks in a row could not (``failed``) since when (``failing_since``),
and why the last one could not (``reason``, one of :class:`checks.errors.Reason`, and
``detail``, what the check said). :func:`keep` updates it once per run, in the transaction that
ends the run (completed or cancelled), with all of the run's sightings; as with findings, an
older run recorded after a newer one changes nothing (``looked_run_id``).

:func:`is_blind` is the rule: the last look could not, and either it is the second in a row
that could not, or no look has succeeded for more than 24 hours (:data:`BLIND_AFTER`).
:func:`blind_spots` lists them, the oldest first.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    FromClause,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal,
    null,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.engine import bulk
from app.models import BigId, Result, Sight, Stamp
from checks.aws import ASSUME_ROLE
from checks.errors import Reason

SIGHTS = cast(Table, Sight.__table__)
BLIND_AFTER_LOOKS = 2
"""Looks in a row that could not look, from which an account × check is a blind spot."""
BLIND_AFTER = timedelta(hours=24)
"""How long without a successful look, from which a failed look makes a blind spot at once."""
DETAIL_LIMIT = 2000
"""What the check said is kept up to this many characters."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """Whether one result of an account × check could look, and if not, why."""

    account: str
    check: str
    at: datetime
    ok: bool
    reason: str | None = None
    """Why it could not (a :class:`~checks.errors.Reason` value); None when it could."""
    detail: str | None = None
    """What the check said when it could not."""


def sighting(
    account: str,
    check: str,
    severity: str,
    summary: str,
    details: Mapping[str, Any] | None,
    at: datetime,
) -> Sighting:
    """The sighting a result is: it could not look when it is an ``error`` with no resource
    lines; its ``reason`` is the one :mod:`app.engine.checking` put in its details (``other``
    when there is none)."""
    details = details or {}
    if severity != "error" or details.get("resources"):
        return Sighting(account, check, at, ok=True)
    reason = str(details.get("reason") or Reason.OTHER.value)
    return Sighting(account, check, at, False, reason, summary[:DETAIL_LIMIT])


def sightings_of(results: Iterable[Any]) -> list[Sighting]:
    """The sightings of ``results`` (rows with ``account``, ``check``, ``severity``,
    ``summary``, ``details`` and ``finished_at``)."""
    return [
        sighting(r.account, r.check, r.severity, r.summary, r.details, r.finished_at)
        for r in results
    ]


# -- the rule -----------------------------------------------------------------------------------


def is_blind(sight: Sight, now: datetime) -> bool:
    """Whether ``sight`` is a blind spot at ``now``: its last look could not look, and either
    :data:`BLIND_AFTER_LOOKS` looks in a row could not, or no look has succeeded for more than
    :data:`BLIND_AFTER` (counted from the last successful look; from the first failed one when
    none ever succeeded)."""
    if sight.failed < 1:
        return False
    if sight.failed >= BLIND_AFTER_LOOKS:
        return True
    seen = sight.last_ok_at or sight.failing_since
    return seen is not None and now - seen > BLIND_AFTER


# -- keeping them -------------------------------------------------------------------------------


async def keep(
    session: AsyncSession,
    db: Database,
    customer_id: str,
    run_id: int,
    sightings: Sequence[Sighting],
    at: datetime,
) -> None:
    """Keep one run's ``sightings`` at ``at``, in ``session`` (the transaction that ends the
    run), in one statement: a look that could not counts one more failure in a row (and starts
    ``failing_since`` at the first), one that could resets the count and sets ``last_ok_at``.
    A pair last looked at by a newer run is left as it is. (``routed`` and ``told`` belong to
    the routing of blind spots and are never touched here.)"""
    first: dict[tuple[str, str], Sighting] = {}
    for one in sightings:  # the first result of a target stands, as in ``results``
        first.setdefault((one.account, one.check), one)
    if not first:
        return
    rows = [first[key] for key in sorted(first)]  # one lock order for concurrent runs
    lines = _lines(rows, db.is_sqlite)
    ok = lines.c.failed == 0
    stamp = literal(at, Stamp)
    source = select(
        literal(customer_id, String),
        lines.c.account,
        lines.c.check,
        case((ok, stamp), else_=null()).label("last_ok_at"),
        lines.c.failed,
        case((ok, null()), else_=stamp).label("failing_since"),
        lines.c.reason,
        lines.c.detail,
        stamp.label("looked_at"),
        literal(run_id, BigId).label("looked_run_id"),
    ).where(true())  # (SQLite: an upsert's SELECT needs a WHERE)
    columns = ["customer_id", "account", "check", "last_ok_at", "failed", "failing_since",
               "reason", "detail", "looked_at", "looked_run_id"]  # fmt: skip
    insert = sqlite_insert(SIGHTS) if db.is_sqlite else pg_insert(SIGHTS)
    statement = insert.from_select(columns, source)
    new = statement.excluded
    here = SIGHTS.c
    looked = new.failed == 0
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id", "account", "check"],
            set_={
                "last_ok_at": case((looked, new.looked_at), else_=here.last_ok_at),
                "failed": case((looked, 0), else_=here.failed + 1),
                "failing_since": case(
                    (looked, null()),
                    (here.failed == 0, new.looked_at),
                    else_=func.coalesce(here.failing_since, new.looked_at),
                ),
                "reason": new.reason,
                "detail": new.detail,
                "looked_at": new.looked_at,
                "looked_run_id": new.looked_run_id,
            },
            where=here.looked_run_id < new.looked_run_id,
        )
    )


def _lines(rows: Sequence[Sighting], sqlite: bool) -> FromClause:
    """``rows`` as a table (account, check, failed, reason, detail): one JSON parameter on
    SQLite (``json_each``), one array per column on PostgreSQL (``unnest``)."""
    values = [(s.account, s.check, 0 if s.ok else 1, s.reason, s.detail) for s in rows]
    names = ("account", "check", "failed", "reason", "detail")
    if sqlite:
        each = func.json_each(bindparam(None, json.dumps(values), type_=String))
        table = each.table_valued("value")
        picked = [func.json_extract(table.c.value, f"$[{i}]").label(n) for i, n in enumerate(names)]
        return select(*picked).subquery()
    kinds = (String, String, Integer, String, Text)
    return bulk.unnest(
        "lines", **{n: ([v[i] for v in values], kinds[i]) for i, n in enumerate(names)}
    )


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlindSpot:
    """An account × check of a customer that cannot look, and why."""

    customer: str
    account: str
    check: str
    last_ok_at: datetime | None
    """When a look last succeeded; None: never."""
    failing_since: datetime | None
    """When the first of the failed looks in a row was made."""
    failed: int
    """How many looks in a row could not look."""
    reason: str
    """One of :class:`~checks.errors.Reason`: ``role``, ``access``, ``throttled``,
    ``subscription``, ``timeout``, ``region``, ``other``."""
    detail: str
    """What the check said (the account, what failed, what to do)."""
    call: str | None
    """The AWS call that failed, as IAM names it (``backup:ListBackupJobs``), when known."""
    why: str
    """One line: ``AccessDenied on backup:ListBackupJobs; the role needs backup:ListBackupJobs``."""

    @property
    def since(self) -> datetime | None:
        """Not checked since: the last successful look, else the first failed one."""
        return self.last_ok_at or self.failing_since


async def blind_spots(
    session: AsyncSession, customer_ids: Collection[str], now: datetime
) -> list[BlindSpot]:
    """The blind spots of ``customer_ids`` at ``now``, the oldest first (not checked for the
    longest), then by customer, account and check."""
    if not customer_ids:
        return []
    looked = and_(
        Result.run_id == Sight.looked_run_id,
        Result.account == Sight.account,
        Result.check == Sight.check,
    )
    query = (
        select(Sight, Result.details)
        .outerjoin(Result, looked)
        .where(Sight.customer_id.in_(sorted(customer_ids)), Sight.failed >= 1)
    )
    found = [
        _spot(sight, details or {})
        for sight, details in (await session.execute(query)).all()
        if is_blind(sight, now)
    ]
    oldest = datetime.min.replace(tzinfo=now.tzinfo)
    found.sort(key=lambda s: (s.since or oldest, s.customer, s.account, s.check))
    return found


def _spot(sight: Sight, details: Mapping[str, Any]) -> BlindSpot:
    reason = sight.reason or Reason.OTHER.value
    detail = sight.detail or ""
    call = details.get("call") if details.get("reason") == reason else None
    code = details.get("code") if call else None
    return BlindSpot(
        sight.customer_id,
        sight.account,
        sight.check,
        sight.last_ok_at,
        sight.failing_since,
        sight.failed,
        reason,
        detail,
        call,
        why(reason, detail, call, code),
    )


def why(reason: str, detail: str, call: str | None = None, code: str | None = None) -> str:
    """Why an account × check cannot look, in one line."""
    on = f" on {call}" if call else ""
    said = f"{code}{on}" if code else (call or "")
    match reason:
        case Reason.ACCESS if call:
            return f"{code or 'AccessDenied'} on {call}; the role needs {call}"
        case Reason.ROLE if call == ASSUME_ROLE:
            return f"{said}: the role cannot be assumed; its trust policy must allow the hub"
        case Reason.ROLE if call:
            return f"{said}: AWS did not accept the hub's credentials"
        case Reason.THROTTLED:
            return f"AWS kept throttling {call or 'the calls'} ({code or 'Throttling'})"
        case Reason.SUBSCRIPTION:
            return f"{said or 'a subscription is required'}: the account is not subscribed"
        case Reason.TIMEOUT:
            return f"AWS did not answer in time{on}"
        case Reason.REGION:
            return f"{said or 'region disabled'}: the region is not enabled for the account"
    return _first_line(detail) or "it could not look"


def _first_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
