"""A customer's findings sorted into their standings, for the findings page and ``/api/findings``.

What a finding *is* now (open, acknowledged, snoozed, muted, resolved) is decided by one
function, :func:`app.engine.answers.standing`; this module only reads the rows it needs, as
cheaply as it can, and hands each to it.

=========================  ==========================================================
query                      index it walks
=========================  ==========================================================
open findings, sorted      ``ix_findings_open`` (customer_id, status, …), or the same
                           prefix of ``ix_findings_resolved``: that customer's open ones
                           only (at most OPEN_SCAN), the columns a standing needs, sorted
                           by the database
open in one standing       the same prefix, less the rows that cannot be in it (no
                           acknowledgement for ``open``, one for ``acknowledged``…),
                           whole, until the API's page is full
resolved, newest first     ``ix_findings_resolved`` (customer_id, status, resolved_at)
                           from its newest end; "the last 7 days" is a range of it, and
                           its count is read from the index alone
the lines shown            the primary key, at most a page of them
=========================  ==========================================================

A mute rule is a glob, so every open finding of the customer is read to count the groups; a
resolved one never is, however long the history. Rows come through Core, not the ORM: a few
hundred ORM objects cost more than everything else on the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Select, Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.engine.answers import MAINTENANCE, Rule, Standing, standing
from app.engine.findings import LIST_LIMIT
from app.models import Finding

OPEN_SCAN = 20_000
"""Open findings of one customer read at most to sort them into their standings."""
GROUPS = ("open", "snoozed", "muted", "resolved")
"""The findings page's groups (``open`` holds the acknowledged ones too)."""
SHOWN = {"open": 30, "snoozed": 10, "muted": 10, "resolved": 10}
"""Lines per group on the findings page; ``?group=GROUP`` lists one group, up to LIST_LIMIT."""
RECENT = timedelta(days=7)
"""How far back the findings page lists resolved findings."""
RESOLVED = Standing("resolved")
OPEN = Standing("open")


@dataclass(slots=True)
class Line:
    """A finding as the page and the API show it: the columns of its row that they read."""

    id: int
    fingerprint: str
    account: str
    region: str
    check: str
    resource: str
    severity: str
    summary: str
    status: str
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    last_run_id: int
    returns: int
    history: str
    ack_by: str | None
    ack_at: datetime | None
    snooze_by: str | None
    snooze_at: datetime | None
    snooze_until: datetime | None
    snooze_reason: str | None
    snooze_severity: str | None


@dataclass(slots=True)
class Brief:
    """An open finding as a standing decides it (:class:`app.engine.answers.Kept`); who
    answered and why come with the :class:`Line` of the ones shown."""

    id: int
    fingerprint: str
    account: str
    region: str
    check: str
    resource: str
    severity: str
    ack_by: str | None
    snooze_by: str | None
    snooze_until: datetime | None
    snooze_severity: str | None
    status: str = "open"
    ack_at: datetime | None = None
    snooze_at: datetime | None = None
    snooze_reason: str | None = None


FINDINGS = cast(Table, Finding.__table__).c
_LINE = [FINDINGS[f.name] for f in fields(Line)]
_BRIEF = [FINDINGS[f.name] for f in fields(Brief) if f.default is MISSING]
"""The columns read, in the order of the fields they fill."""


# -- the statements ----------------------------------------------------------------------------
# Built once, from the table's columns, with bound parameters: a statement built afresh on
# every request costs more to match to its cached compiled form than it takes to run.

_CUSTOMER = FINDINGS.customer_id == bindparam("customer")
_LIMIT = bindparam("limit", type_=Integer())
_IS_RESOLVED = (_CUSTOMER, FINDINGS.status == "resolved")
_SINCE = FINDINGS.resolved_at >= bindparam("since")
_NEWEST = (FINDINGS.resolved_at.desc(), FINDINGS.id.desc())

_IS_OPEN = (_CUSTOMER, FINDINGS.status == "open")
_WORST = (FINDINGS.severity, FINDINGS.last_seen_at.desc(), FINDINGS.id)

OPEN_FINDINGS = select(*_BRIEF).where(*_IS_OPEN).order_by(*_WORST).limit(_LIMIT)
"""``customer``'s open findings as a standing decides them: worst first ("crit" < "warn"),
then the most recently seen, then by id."""
OPEN_LINES = select(*_LINE).where(*_IS_OPEN).order_by(*_WORST).limit(_LIMIT)
"""The same, whole."""
RESOLVED_FINDINGS = select(*_LINE).where(*_IS_RESOLVED).order_by(*_NEWEST).limit(_LIMIT)
"""``customer``'s resolved findings, the most recently resolved first."""
RESOLVED_COUNT = select(func.count()).where(*_IS_RESOLVED, _SINCE)
"""How many were resolved ``since``."""
RECENT_FINDINGS = (
    select(*_LINE, RESOLVED_COUNT.scalar_subquery())
    .where(*_IS_RESOLVED, _SINCE)
    .order_by(*_NEWEST)
    .limit(_LIMIT)
)
"""Those resolved ``since``, the most recent first, each with how many there are (one round
trip, not two)."""
LINES = select(*_LINE).where(FINDINGS.id.in_(bindparam("ids", expanding=True)))
"""The findings ``ids``, whole."""
_MAY_BE = {
    "open": FINDINGS.ack_by.is_(None),
    "acknowledged": FINDINGS.ack_by.is_not(None),
    "snoozed": FINDINGS.snooze_by.is_not(None),
    "muted": FINDINGS.check.in_(bindparam("checks", expanding=True)),
}
IN_STATE = {
    state: select(*_LINE).where(*_IS_OPEN, may_be).order_by(*_WORST).limit(_LIMIT)
    for state, may_be in _MAY_BE.items()
}
"""``customer``'s open findings, whole, that may be in a standing other than resolved (nobody
acknowledged an open one; somebody did an acknowledged one; somebody snoozed a snoozed one; a
rule of its check mutes a muted one), in listing order: :func:`standing` decides."""


def statements(customer_id: str, now: datetime) -> dict[str, Select[*tuple[Any, ...]]]:
    """Every statement behind the findings page and ``/api/findings``, its parameters bound
    (for plans and benches)."""
    since = now - RECENT
    return {
        "open, sorted": OPEN_FINDINGS.params(customer=customer_id, limit=OPEN_SCAN + 1),
        "open, whole": OPEN_LINES.params(customer=customer_id, limit=LIST_LIMIT),
        "resolved, newest first": RESOLVED_FINDINGS.params(customer=customer_id, limit=LIST_LIMIT),
        "resolved last 7 days": RECENT_FINDINGS.params(customer=customer_id, since=since, limit=10),
        "resolved count": RESOLVED_COUNT.params(customer=customer_id, since=since),
        "lines by id": LINES.params(ids=[1, 2, 3]),
        "open, may be open": IN_STATE["open"].params(customer=customer_id, limit=OPEN_SCAN),
    }


# -- standings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standings:
    """A customer's open findings, each with what it is now, in listing order."""

    order: Sequence[Brief]
    """Worst first, then the most recently seen."""
    of: Mapping[int, Standing]
    partial: bool
    """More than were read are open: the rest were left out."""

    def ids(self, *states: str) -> list[int]:
        return [b.id for b in self.order if self.of[b.id].state in states]

    def counts(self) -> dict[str, int]:
        """State → how many; ``crit`` → how many of the open and acknowledged are critical."""
        counts = dict.fromkeys(
            ("open", "acknowledged", "snoozed", "muted", "maintenance", "crit"), 0
        )
        for b in self.order:
            state = self.of[b.id].state
            counts[state] += 1
            if b.severity == "crit" and state in ("open", "acknowledged"):
                counts["crit"] += 1
        return counts

    def muted_by(self) -> dict[str, int]:
        """Rule key → how many open findings it mutes."""
        counts: dict[str, int] = {}
        for s in self.of.values():
            if s.rule is not None:
                counts[s.rule.key] = counts.get(s.rule.key, 0) + 1
        return counts


class _Scope:
    """Each finding held to the rules that could match it, in their order: a rule matches only
    findings of its check, and of its account and region when it names them. The same answer
    as all of them, a fraction of the globs."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.by_check: dict[str, list[Rule]] = {}
        self.windows: list[Rule] = []
        """Maintenance windows (after every mute rule, as :func:`standing` takes them)."""
        for rule in rules:
            if rule.origin == MAINTENANCE:
                self.windows.append(rule)
            else:
                self.by_check.setdefault(rule.check, []).append(rule)

    def standing(self, found: Brief | Line, now: datetime) -> Standing:
        """:func:`standing`, or open without asking when nobody answered the finding and no
        rule could match it (most of them; :func:`standing` would say so too)."""
        mine = [
            r
            for r in self.by_check.get(found.check, ())
            if r.account in (None, found.account) and r.region in (None, found.region)
        ] + [r for r in self.windows if r.matches(found)]
        if mine or found.ack_by is not None or found.snooze_by is not None:
            return standing(found, mine, now)
        return OPEN


async def _standings(
    session: AsyncSession,
    customer_id: str,
    rules: Sequence[Rule],
    now: datetime,
) -> Standings:
    """The standing of each of the customer's open findings (the first :data:`OPEN_SCAN`)."""
    scope = _Scope(rules)
    conn = await session.connection()
    params = {"customer": customer_id, "limit": OPEN_SCAN + 1}
    rows = [Brief(*row) for row in await conn.execute(OPEN_FINDINGS, params)]
    order = rows[:OPEN_SCAN]
    of = {found.id: scope.standing(found, now) for found in order}
    return Standings(order, of, len(rows) > OPEN_SCAN)


async def _lines(
    session: AsyncSession, ids: Sequence[int], rules: Sequence[Rule], now: datetime
) -> list[tuple[Line, Standing]]:
    """The lines shown, in the order of ``ids``, each with its standing read from the whole
    row (who, when, why)."""
    if not ids:
        return []
    scope = _Scope(rules)
    conn = await session.connection()
    whole = {row.id: Line(*row) for row in await conn.execute(LINES, {"ids": list(ids)})}
    return [(whole[i], scope.standing(whole[i], now)) for i in ids if i in whole]


async def _first_open(
    session: AsyncSession, customer_id: str, rules: Sequence[Rule], now: datetime, limit: int
) -> list[tuple[Line, Standing]]:
    """The first ``limit`` open findings, whole, each with its standing (one query)."""
    scope = _Scope(rules)
    conn = await session.connection()
    rows = await conn.execute(OPEN_LINES, {"customer": customer_id, "limit": limit})
    return [(line, scope.standing(line, now)) for line in (Line(*row) for row in rows)]


async def _in_state(
    session: AsyncSession,
    customer_id: str,
    rules: Sequence[Rule],
    now: datetime,
    state: str,
    limit: int,
) -> list[tuple[Line, Standing]]:
    """The first ``limit`` open findings in ``state``, whole, each with its standing (one
    query: the database leaves out those that cannot be in it)."""
    params: dict[str, Any] = {"customer": customer_id, "limit": OPEN_SCAN}
    if state == "muted":
        params["checks"] = sorted({r.check for r in rules if r.active(now)})
        if not params["checks"]:
            return []
    scope = _Scope(rules)
    conn = await session.connection()
    out: list[tuple[Line, Standing]] = []
    for row in await conn.execute(IN_STATE[state], params):
        line = Line(*row)
        found = scope.standing(line, now)
        if found.state == state:
            out.append((line, found))
            if len(out) == limit:
                break
    return out


async def _resolved(
    session: AsyncSession, customer_id: str, limit: int
) -> list[tuple[Line, Standing]]:
    conn = await session.connection()
    rows = await conn.execute(RESOLVED_FINDINGS, {"customer": customer_id, "limit": limit})
    return [(Line(*row), RESOLVED) for row in rows]


async def _recent(
    session: AsyncSession, customer_id: str, limit: int, since: datetime
) -> tuple[list[tuple[Line, Standing]], int]:
    """The first ``limit`` findings resolved since ``since``, and how many there are."""
    conn = await session.connection()
    params = {"customer": customer_id, "since": since, "limit": max(limit, 1)}
    rows = (await conn.execute(RECENT_FINDINGS, params)).all()
    if not rows:
        return [], 0
    return [(Line(*row[:-1]), RESOLVED) for row in rows[:limit]], rows[0][-1]


# -- the page and the API ----------------------------------------------------------------------


@dataclass(frozen=True)
class Board:
    """What the findings page shows: the first lines of each group, and every group's count."""

    lines: Mapping[str, Sequence[tuple[Line, Standing]]]
    """Group → its first lines. ``open``: open and acknowledged, worst first, then the most
    recently seen; ``snoozed``: the soonest to wake first (until it resolves: last);
    ``muted``: in the order of the rules that mute them; ``resolved``: resolved in the last
    :data:`RECENT`, the most recent first."""
    counts: Mapping[str, int]
    """State → how many (``resolved``: in the last :data:`RECENT`; ``crit``: of the open and
    acknowledged)."""
    muted_by: Mapping[str, int]
    """Rule key → how many open findings it mutes."""
    partial: bool


async def board(
    db: Database,
    customer_id: str,
    rules: Sequence[Rule],
    now: datetime,
    shown: Mapping[str, int] = SHOWN,
) -> Board:
    """A customer's findings sorted into the page's groups, ``shown[group]`` lines of each."""
    since = now - RECENT
    place = {rule.key: n for n, rule in enumerate(rules)}
    async with db.read() as session:
        found = await _standings(session, customer_id, rules, now)
        of = found.of
        picked = {
            "open": found.ids("open", "acknowledged"),
            "snoozed": sorted(found.ids("snoozed", "maintenance"), key=lambda i: _wakes(of[i])),
            "muted": sorted(found.ids("muted"), key=lambda i: place.get(_rule_key(of[i]), 0)),
        }
        wanted = [i for group, ids in picked.items() for i in ids[: shown.get(group, 0)]]
        whole = {line.id: (line, s) for line, s in await _lines(session, wanted, rules, now)}
        out = {
            group: [whole[i] for i in ids[: shown.get(group, 0)] if i in whole]
            for group, ids in picked.items()
        }
        out["resolved"], resolved_n = await _recent(
            session, customer_id, shown.get("resolved", 0), since
        )
    counts = {**found.counts(), "resolved": resolved_n}
    return Board(out, counts, found.muted_by(), found.partial)


def _wakes(s: Standing) -> datetime:
    return s.until or datetime.max.replace(tzinfo=UTC)


def _rule_key(s: Standing) -> str:
    return s.rule.key if s.rule is not None else ""


async def listing(
    db: Database,
    customer_id: str,
    rules: Sequence[Rule],
    now: datetime,
    state: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[tuple[Line, Standing]]:
    """``/api/findings``: open findings first (worst first, then the most recently seen),
    then resolved ones (the most recently resolved first); ``state`` keeps one standing —
    then the open findings that may be in it are read in that order until ``limit`` are;
    without it, only the first ``limit`` need be."""
    out: list[tuple[Line, Standing]] = []
    async with db.read() as session:
        if state is None:
            out = await _first_open(session, customer_id, rules, now, limit)
        elif state != "resolved":
            out = await _in_state(session, customer_id, rules, now, state, limit)
        room = limit - len(out)
        if state in (None, "resolved") and room > 0:
            out += await _resolved(session, customer_id, room)
    return out
