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

:func:`keep` applies the looks in the transaction that records the results, on SQLite and
PostgreSQL alike; the newest run's look stands whatever order results are recorded in
(``looked_run_id``), and a look recorded twice (a check finished again after a crash) counts
once. :class:`Fold` is the same rule over results in memory: the migration backfills with it,
and the tests hold the two to each other.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.db import Database
from app.engine import answers
from app.engine.answers import ANSWER_COLUMNS
from app.models import Finding, Run

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


@dataclass(frozen=True)
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
    """The look a result is, or None when it could not look at all."""
    resources = (details or {}).get("resources") or ()
    if severity == "skipped" or (severity == "error" and not resources):
        return None
    complete = severity != "error"
    seen: dict[str, Seen] = {}
    blind: set[str] = set()
    cleared: set[str] = set()
    for res in resources:
        if type(res) is not dict and not isinstance(res, Mapping):  # (the ABC check is slow)
            continue
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
    if severity in PROBLEMS and not any(isinstance(r, Mapping) for r in resources or ()):
        whole = f"{check}:{account}:*"
        seen[whole] = Seen(whole, "", "", severity, summary)
    return Look(
        customer_id, run_id, account, check, at, tuple(seen.values()), frozenset(cleared),
        complete, frozenset(blind),
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


async def keep(session: AsyncSession, db: Database, results: Sequence[Any]) -> None:
    """Apply the looks among ``results`` (rows with ``run_id``, ``account``, ``check``,
    ``severity``, ``summary``, ``details``, ``finished_at``) to the findings, in ``session``."""
    if not results:
        return
    customers = {r.run_id: r.customer_id for r in results if getattr(r, "customer_id", None)}
    unknown = sorted({r.run_id for r in results} - set(customers))
    if unknown:
        query = select(Run.id, Run.customer_id).where(Run.id.in_(unknown))
        customers.update((await session.execute(query)).all())
    looks = [
        found
        for r in results
        if r.run_id in customers
        and (
            found := look(
                customers[r.run_id],
                r.run_id,
                r.account,
                r.check,
                r.severity,
                r.summary,
                r.details,
                r.finished_at,
            )
        )
        is not None
    ]
    await _open(session, db, looks)
    by_run: dict[tuple[str, int], list[Look]] = defaultdict(list)
    for one in looks:
        by_run[(one.customer_id, one.run_id)].append(one)
    for (customer_id, run_id), theirs in by_run.items():
        await _resolve(session, db, customer_id, run_id, theirs)


async def _open(session: AsyncSession, db: Database, looks: Sequence[Look]) -> None:
    rows: list[dict[str, Any]] = [
        {
            "customer_id": one.customer_id,
            "fingerprint": s.fingerprint,
            "account": one.account,
            "region": s.region,
            "check": one.check,
            "resource": s.resource,
            "severity": s.severity,
            "summary": s.summary,
            "status": "open",
            "first_seen_at": one.at,
            "last_seen_at": one.at,
            "resolved_at": None,
            "last_run_id": one.run_id,
            "looked_run_id": one.run_id,
            "returns": 0,
            "history": "1",
        }
        for one in looks
        for s in one.seen
    ]
    if not rows:
        return
    insert = sqlite_insert(FINDINGS) if db.is_sqlite else pg_insert(FINDINGS)
    new = insert.excluded
    here = FINDINGS.c
    statement = insert.on_conflict_do_update(
        index_elements=["customer_id", "fingerprint"],
        set_={
            "account": new.account,
            "region": new.region,
            "check": new.check,
            "resource": new.resource,
            "severity": new.severity,
            "summary": new.summary,
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
    # Several runs of a batch may see the same finding: one statement per run, oldest first.
    by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_run[row["looked_run_id"]].append(row)
    for run_id in sorted(by_run):
        await session.execute(statement, by_run[run_id])


async def _resolve(
    session: AsyncSession, db: Database, customer_id: str, run_id: int, looks: Sequence[Look]
) -> None:
    """The open findings these looks (one run's) decided were gone: resolved, with a ``0`` in
    their history."""
    here = FINDINGS.c
    whole = [one for one in looks if one.complete]
    kept = {s.fingerprint for one in whole for s in one.seen} | {
        fp for one in whole for fp in one.blind
    }
    cleared = sorted({fp for one in looks if not one.complete for fp in one.cleared})
    gone: list[ColumnElement[bool]] = []
    if whole:
        scope = tuple_(here.account, here.check).in_(sorted({(o.account, o.check) for o in whole}))
        gone.append(and_(scope, here.fingerprint.not_in(sorted(kept))) if kept else scope)
    if cleared:
        gone.append(here.fingerprint.in_(cleared))
    if not gone:
        return
    at = max(one.at for one in looks)
    await session.execute(
        update(FINDINGS)
        .where(
            here.customer_id == customer_id,
            or_(*gone),
            here.status == "open",
            here.looked_run_id < run_id,
        )
        .values(
            status="resolved",
            resolved_at=at,
            looked_run_id=run_id,
            history=_last(db, here.history + "0"),
            **dict.fromkeys(ANSWER_COLUMNS),  # an answer ends when its finding resolves
        )
        .execution_options(synchronize_session=False)
    )


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
    answered = standing.state in ("acknowledged", "snoozed", "muted")
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
        for one in mine:
            for s in one.seen:
                self._see(one, s)
        at = max((one.at for one in mine), default=None)  # one resolution time per run
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

    def _see(self, one: Look, s: Seen) -> None:
        key = (one.customer_id, s.fingerprint)
        found = self.findings.get(key)
        if found is None:
            self.findings[key] = Kept(
                one.customer_id, s.fingerprint, one.account, s.region, one.check,
                s.resource, s.severity, s.summary, "open", one.at, one.at, None,
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
        found.last_seen_at, found.last_run_id = one.at, one.run_id
        found.looked_run_id = one.run_id
        found.history = (found.history + "1")[-HISTORY:]
