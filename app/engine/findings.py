"""Findings: every problem a check reports, kept across runs by its fingerprint.

A *look* is one result of an account × check. Each look, for its customer, account and check:

- opens, or keeps open, a finding for every problem line it reports — a ``warn`` or ``crit``
  resource, or the whole result when it lists no resources (fingerprint ``check:account:*``);
  one that was resolved and is back counts a return;
- resolves the open findings it did not report. A result that could not look at everything
  (its severity is ``error``) resolves only the lines it reports as fine; a resource line that
  could not look (``error``, ``skipped``) leaves its finding as it is; a result that could not
  look at all (``error`` with no lines, ``skipped``) opens and resolves nothing;
- appends to each finding it saw or resolved its history: ``1`` seen, ``0`` resolved, the last
  :data:`HISTORY` of them (a resolved finding is not written again until it is seen again, so
  recording a look costs nothing for the problems of the past).

:func:`apply` applies a run's looks once, in the transaction that ends the run (completed
or cancelled; the executor gathers them as checks finish, and a run claimed again after a crash
reads back what its earlier attempts recorded), on SQLite and PostgreSQL alike; the newest
run's look stands whatever order runs end in (``looked_run_id``), and a look applied twice
counts once. A run that fails or is still running changes no finding. :func:`keep` does the
same from result rows. :class:`Fold` is the same rule over results in memory: the migration
backfills with it, and the tests hold the two to each other.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    FromClause,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.db import Database
from app.engine import answers
from app.engine.answers import ANSWER_COLUMNS
from app.models import Finding, Run, Stamp

FINDINGS = cast(Table, Finding.__table__)
WIDE = 1024
"""The width of a fingerprint or resource column: longer ones are cut (never refused: a
finding must not stop a run's results from being recorded)."""
HISTORY = 10
"""Looks kept per finding (its flips within them tell whether it flaps)."""
PROBLEMS = ("warn", "crit")
BLIND = ("error", "skipped")
"""Severities of a look (or of a resource line) that could not look."""


@dataclass(frozen=True)
class Seen:
    """A problem line of one look."""

    fingerprint: str
    region: str
    resource: str
    severity: str
    summary: str


@dataclass(slots=True)
class Look:
    """One result that could look: what it saw, and what it could not look at."""

    customer_id: str
    run_id: int
    account: str
    check: str
    at: datetime
    seen: tuple[Seen, ...]
    cleared: frozenset[str]
    """Fingerprints of the lines it reports as fine."""
    complete: bool
    """It looked at everything: what it did not report is resolved (else only ``cleared``)."""

    blind: frozenset[str] = frozenset()
    """Fingerprints of lines it could not look at (left as they are)."""

    def keeps(self, fingerprint: str) -> bool:
        """Whether this look leaves an open finding open (seen, or not decided about)."""
        if self.complete:
            return any(s.fingerprint == fingerprint for s in self.seen) or (
                fingerprint in self.blind
            )
        return fingerprint not in self.cleared


_NONE: frozenset[str] = frozenset()


def look(
    customer_id: str,
    run_id: int,
    account: str,
    check: str,
    severity: str,
    summary: str,
    details: Mapping[str, Any] | None,
    at: datetime,
) -> Look | None:
    """The look a result is, or None when it could not look at all. (A run's every result
    passes here: most are all fine, and cost one pass over their lines.)"""
    resources = (details or {}).get("resources") or ()
    if severity == "skipped" or (severity == "error" and not resources):
        return None
    complete = severity != "error"
    seen: dict[str, Seen] = {}
    blind: set[str] = set()
    cleared: set[str] = set()
    lines = False
    for res in resources:
        if type(res) is not dict and not isinstance(res, Mapping):  # (the ABC check is slow)
            continue
        lines = True
        level = res.get("severity")
        if level == "ok" and complete:  # most lines: a complete look needs nothing of them
            continue
        name = str(res.get("id", "?"))
        fingerprint = str(res.get("fingerprint") or f"{check}:{account}:{name}")[:WIDE]
        if level in PROBLEMS:
            region = str(res.get("region") or "")[:64]
            summary_of = str(res.get("summary", ""))
            seen[fingerprint] = Seen(fingerprint, region, name[:WIDE], str(level), summary_of)
        elif level in BLIND:
            blind.add(fingerprint)
        else:
            cleared.add(fingerprint)
    if severity in PROBLEMS and not lines:
        whole = f"{check}:{account}:*"
        seen[whole] = Seen(whole, "", "", severity, summary)
    return Look(
        customer_id, run_id, account, check, at, tuple(seen.values()) if seen else (),
        frozenset(cleared) if cleared else _NONE, complete, frozenset(blind) if blind else _NONE,
    )  # fmt: skip


def flips(history: str) -> int:
    """How many times a finding changed between seen and not seen in its history."""
    return sum(1 for a, b in itertools.pairwise(history) if a != b)


FLAPPING = 3
"""Flips within the last :data:`HISTORY` looks from which a finding is flapping."""


def change(history: str, returns: int) -> str | None:
    """What an open finding's recent looks say: ``flapping`` (3 or more flips), ``new`` (first
    seen by the last look), ``regressed`` (resolved before, back again), or None."""
    if flips(history) >= FLAPPING:
        return "flapping"
    if history == "1" and not returns:
        return "new"
    return "regressed" if history.endswith("01") else None


# -- in the database ---------------------------------------------------------------------------


def looks_of(results: Iterable[Any], customers: Mapping[int, str]) -> list[Look]:
    """The looks among ``results`` (rows with ``run_id``, ``account``, ``check``, ``severity``,
    ``summary``, ``details``, ``finished_at``) of the runs in ``customers`` (run → customer)."""
    return [
        found
        for r in results
        if r.run_id in customers
        and (
            found := look(
                customers[r.run_id], r.run_id, r.account, r.check, r.severity, r.summary,
                r.details, r.finished_at,
            )
        )
        is not None
    ]  # fmt: skip


async def keep(session: AsyncSession, db: Database, results: Sequence[Any]) -> None:
    """Apply the looks among ``results`` to the findings, in ``session`` (the runs' customers
    are read when the rows do not carry ``customer_id``)."""
    if not results:
        return
    customers = {r.run_id: r.customer_id for r in results if getattr(r, "customer_id", None)}
    unknown = sorted({r.run_id for r in results} - set(customers))
    if unknown:
        query = select(Run.id, Run.customer_id).where(Run.id.in_(unknown))
        customers.update((await session.execute(query)).all())
    await apply(session, db, looks_of(results, customers))


async def apply(session: AsyncSession, db: Database, looks: Sequence[Look]) -> None:
    """Apply ``looks`` to the findings, in ``session``: the executor's writer calls it once per
    run, with all of the run's looks, in the transaction that ends the run. A run sees and
    resolves at one time: that of its last look."""
    by_run: dict[tuple[int, str], list[Look]] = defaultdict(list)
    for one in looks:
        by_run[(one.run_id, one.customer_id)].append(one)
    for (run_id, customer_id), theirs in sorted(by_run.items()):  # oldest run first
        at = max(one.at for one in theirs)
        await _open(session, db, customer_id, run_id, at, theirs)
        await _resolve(session, db, customer_id, run_id, at, theirs)


async def _open(
    session: AsyncSession,
    db: Database,
    customer_id: str,
    run_id: int,
    at: datetime,
    looks: Sequence[Look],
) -> None:
    """The problems one run's looks saw: opened, kept open, or back. One statement however
    many: the lines go in as one array per column, not one parameter set per line."""
    # One row per fingerprint: PostgreSQL refuses to update a row twice in one statement.
    said = {s.fingerprint: s for one in looks for s in one.seen}
    where = {s.fingerprint: one for one in looks for s in one.seen}
    rows = [
        (fp, where[fp].account, s.region, where[fp].check, s.resource, s.severity, s.summary)
        for fp, s in said.items()
    ]
    if not said:
        return
    lines = _rows(_SAID, rows, db.is_sqlite)
    source = select(
        literal(customer_id, String),
        *(lines.c[name] for name in _SAID),
        literal("open", String),
        literal(at, Stamp).label("first_seen_at"),
        literal(at, Stamp).label("last_seen_at"),
        literal(run_id, Integer).label("last_run_id"),
        literal(run_id, Integer).label("looked_run_id"),
        literal(0, Integer).label("returns"),
        literal("1", String).label("history"),
    ).where(true())  # (SQLite: an upsert's SELECT needs a WHERE)
    columns = ["customer_id", *_SAID, "status", "first_seen_at", "last_seen_at",
               "last_run_id", "looked_run_id", "returns", "history"]  # fmt: skip
    insert = sqlite_insert(FINDINGS) if db.is_sqlite else pg_insert(FINDINGS)
    statement = insert.from_select(columns, source)
    new = statement.excluded
    here = FINDINGS.c
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id", "fingerprint"],
            set_={
                **{c: new[c] for c in _SAID[1:]},
                "status": "open",
                "last_seen_at": new.last_seen_at,
                "resolved_at": None,
                "last_run_id": new.last_run_id,
                "looked_run_id": new.looked_run_id,
                "returns": here.returns + case((here.status == "resolved", 1), else_=0),
                "history": _last(db, here.history + "1"),
            },
            where=here.looked_run_id < new.looked_run_id,
        )
    )


_SAID = ("fingerprint", "account", "region", "check", "resource", "severity", "summary")
"""What a look says of each problem it sees (besides when)."""


def _rows(names: Sequence[str], rows: Sequence[Sequence[str]], sqlite: bool) -> FromClause:
    """``rows`` of text as a table with columns ``names``, from one parameter per column on
    PostgreSQL (``unnest`` of arrays), one in all on SQLite (``json_each`` of a JSON array)."""
    if sqlite:
        each = func.json_each(bindparam(None, json.dumps(rows), type_=String)).table_valued("value")
        picked = [func.json_extract(each.c.value, f"$[{i}]").label(n) for i, n in enumerate(names)]
        return select(*picked).subquery()
    arrays = [
        bindparam(None, [row[i] for row in rows], type_=ARRAY(String)) for i in range(len(names))
    ]
    return func.unnest(*arrays).table_valued(*names).render_derived()  # AS x(fingerprint, …)


async def _resolve(
    session: AsyncSession,
    db: Database,
    customer_id: str,
    run_id: int,
    at: datetime,
    looks: Sequence[Look],
) -> None:
    """The open findings these looks (one run's, applied by :func:`_open` just before) decided
    were gone: resolved, with a ``0`` in their history. What the run saw is not among them:
    :func:`_open` marked it looked at by this run (``looked_run_id``), or a newer run had."""
    gone = _gone(looks, db.is_sqlite)
    if gone is None:
        return
    await session.execute(
        update(FINDINGS)
        .where(
            FINDINGS.c.customer_id == customer_id,
            FINDINGS.c.status == "open",
            gone,
            FINDINGS.c.looked_run_id < run_id,
        )
        .values(
            status="resolved",
            resolved_at=at,
            looked_run_id=run_id,
            history=_last(db, FINDINGS.c.history + "0"),
            **dict.fromkeys(ANSWER_COLUMNS),  # an answer ends when its finding resolves
        )
        .execution_options(synchronize_session=False)
    )


def _gone(looks: Sequence[Look], sqlite: bool) -> ColumnElement[bool] | None:
    """Which open findings ``looks`` resolve: of a complete look, everything of its account ×
    check but what it could not look at; of an incomplete one, the lines it reports as fine.
    Checks that looked at the same accounts (a whole run's, mostly) share one condition."""
    here = FINDINGS.c
    accounts: dict[str, set[str]] = defaultdict(set)  # check → accounts, complete looks
    for one in looks:
        if one.complete:
            accounts[one.check].add(one.account)
    checks: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for check, looked in sorted(accounts.items()):
        checks[tuple(sorted(looked))].append(check)
    scope = [
        and_(_among(here.check, theirs, sqlite), _among(here.account, names, sqlite))
        for names, theirs in checks.items()
    ]
    blind = sorted({fp for one in looks if one.complete for fp in one.blind})
    cleared = sorted({fp for one in looks if not one.complete for fp in one.cleared})
    gone: list[ColumnElement[bool]] = []
    if scope:
        whole = or_(*scope)
        gone.append(and_(whole, ~_among(here.fingerprint, blind, sqlite)) if blind else whole)
    if cleared:
        gone.append(_among(here.fingerprint, cleared, sqlite))
    return or_(*gone) if gone else None


def _among(column: ColumnElement[str], names: Sequence[str], sqlite: bool) -> ColumnElement[bool]:
    """``column IN names`` with one parameter however many the names (an array on PostgreSQL,
    a JSON array on SQLite): no limit on how many, and one statement to compile and plan."""
    if sqlite:
        each = func.json_each(bindparam(None, json.dumps(list(names)), type_=String))
        return column.in_(select(each.table_valued("value").c.value))
    return column == any_(bindparam(None, list(names), type_=ARRAY(String)))


def _last(db: Database, history: ColumnElement[str]) -> ColumnElement[str]:
    """The last :data:`HISTORY` characters of ``history``."""
    if db.is_sqlite:
        return func.substr(history, -HISTORY)
    return func.right(history, HISTORY)


# -- reading ----------------------------------------------------------------------------------

STATES = answers.STATES
LIST_LIMIT = 500
_SCAN = 20_000
"""Open findings read to answer a question about one standing (muted, snoozed…): a rule is a
glob, decided in Python, so a state other than ``resolved`` reads the open ones and sorts."""


async def listing(
    db: Database,
    customer_id: str,
    rules: Sequence[answers.Rule],
    now: datetime,
    accounts: Sequence[str] | None = None,
    state: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[tuple[Finding, answers.Standing]]:
    """A customer's findings (of ``accounts`` only, in ``state`` only — one of :data:`STATES`)
    with what each is now: open ones first, worst first, then the most recently seen; then the
    resolved ones, the most recently resolved first (``/api/findings`` answers in this order)."""
    here = Finding
    query = select(Finding).where(here.customer_id == customer_id)
    if accounts is not None:
        query = query.where(here.account.in_(list(accounts)))
    if state == "resolved":
        query = query.where(here.status == "resolved")
    elif state is not None:
        query = query.where(here.status == "open")
    worst = case((and_(here.status == "open", here.severity == "crit"), 0), else_=1)
    query = query.order_by(
        here.status.desc(), worst, here.resolved_at.desc(), here.last_seen_at.desc(), here.id
    )  # "resolved" < "open": open first (worst first), then the most recently resolved
    scan = limit if state in (None, "resolved") else _SCAN
    async with db.read() as session:
        found = list((await session.execute(query.limit(scan))).scalars().all())
    pairs = [(f, answers.standing(f, rules, now)) for f in found]
    if state is not None:
        pairs = [(f, s) for f, s in pairs if s.state == state]
    return pairs[:limit]


def finding_json(found: Finding, standing: answers.Standing) -> dict[str, Any]:
    """A finding as ``mhub findings --json`` and the API show it; ``by``, ``reason`` and
    ``until`` say who answered it (``until`` None while snoozed until it resolves)."""
    answered = standing.state in ("acknowledged", "snoozed", "muted", "maintenance")
    return {
        "id": found.id,
        "fingerprint": found.fingerprint,
        "account": found.account,
        "check": found.check,
        "region": found.region,
        "resource": found.resource,
        "severity": found.severity,
        "state": standing.state,
        "summary": found.summary,
        "first_seen": found.first_seen_at.isoformat(),
        "last_seen": found.last_seen_at.isoformat(),
        "resolved_at": found.resolved_at.isoformat() if found.resolved_at else None,
        "returns": found.returns,
        "flips": flips(found.history),
        "change": change(found.history, found.returns) if found.status == "open" else None,
        "last_run_id": found.last_run_id,
        **(
            {
                "by": standing.by,
                "at": standing.at.isoformat() if standing.at else None,
                "reason": standing.reason,
                "until": standing.until.isoformat() if standing.until else None,
            }
            if answered
            else {}
        ),
        "acknowledged_by": standing.ack_by,
        "rule": standing.rule.as_json() if standing.rule else None,
        "back": standing.back,
    }


def lines_of(
    check: str, account: str, severity: str, summary: str, details: Mapping[str, Any] | None
) -> tuple[Seen, ...]:
    """The problem lines of a result, each with its finding's fingerprint (what the card and
    the digest show, and answer)."""
    found = look("", 0, account, check, severity, summary, details, datetime.min)
    return found.seen if found is not None else ()


# -- in memory ---------------------------------------------------------------------------------


@dataclass
class Kept:
    """A finding as :class:`Fold` keeps it: the columns of a ``findings`` row."""

    customer_id: str
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
    looked_run_id: int
    returns: int = 0
    history: str = "1"


@dataclass
class Fold:
    """The same rule as :func:`keep`, over looks in memory in run order (the backfill)."""

    findings: dict[tuple[str, str], Kept] = field(default_factory=dict)
    _scopes: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)

    def add(self, looks: Iterable[Look]) -> None:
        """Apply one run's looks (call in run order)."""
        mine = list(looks)
        if not mine:
            return
        at = max(one.at for one in mine)  # a run sees and resolves at one time
        for one in mine:
            for s in one.seen:
                self._see(one, s, at)
        for one in mine:
            scope = self._scopes.get((one.customer_id, one.account, one.check), set())
            for fingerprint in [fp for fp in scope if not one.keeps(fp)]:
                found = self.findings[(one.customer_id, fingerprint)]
                if found.looked_run_id >= one.run_id:
                    continue
                if found.status != "open":
                    continue
                found.status, found.resolved_at = "resolved", at
                found.looked_run_id = one.run_id
                found.history = (found.history + "0")[-HISTORY:]

    def _see(self, one: Look, s: Seen, at: datetime) -> None:
        key = (one.customer_id, s.fingerprint)
        found = self.findings.get(key)
        if found is None:
            self.findings[key] = Kept(
                one.customer_id, s.fingerprint, one.account, s.region, one.check,
                s.resource, s.severity, s.summary, "open", at, at, None,
                one.run_id, one.run_id,
            )  # fmt: skip
            self._scopes.setdefault((one.customer_id, one.account, one.check), set()).add(
                s.fingerprint
            )
            return
        if found.looked_run_id >= one.run_id:
            return
        found.returns += found.status == "resolved"
        found.account, found.region, found.check = one.account, s.region, one.check
        found.resource, found.severity, found.summary = s.resource, s.severity, s.summary
        found.status, found.resolved_at = "open", None
        found.last_seen_at, found.last_run_id = at, one.run_id
        found.looked_run_id = one.run_id
        found.history = (found.history + "1")[-HISTORY:]
