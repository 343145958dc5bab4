"""The web view's read queries (the runboard's are :mod:`app.engine.runboard`, shared with the
App Home tab). Each one is shaped to walk an index, never the whole table.

=========================  ==========================================================
query                      index it walks
=========================  ==========================================================
runs page, no filter       the primary key (keyset on id)
… by customer / status     ``ix_runs_customer_id`` / ``ix_runs_status_id``
… by outcome               ``ix_runs_outcome_id`` (outcome, id)
… by check                 ``ix_results_check_run`` (check, run_id): at most CHECK_SCAN
                           entries per page, then primary-key lookups
… by check and outcome     ``ix_results_check_severity_run`` (check, severity, run_id),
                           the same bounded scan: runs where that check had that outcome
… by date range            two probes of ``ix_runs_created_at`` turn dates into id bounds
results of listed runs     ``uq_results_target`` (run_id, …)
metrics counts             ``ix_runs_status_id`` and ``ix_runs_outcome_id``, index only
blind spots, sights        ``uq_sights_target`` (customer_id, …), a range per customer
maintenance windows        ``ix_maintenance_customer`` (customer_id, ends_at), a range per
                           customer shown, in one statement (the YAML's are computed)
a customer's findings      open ones: ``ix_findings_open`` (customer_id, status, …), at
                           most OPEN_SCAN of them, narrow columns, sorted in the database
… resolved ones            ``ix_findings_resolved`` (customer_id, resolved_at), newest
                           first, a range of it for "the last 7 days"
… the lines shown          the primary key (at most a page of them)
=========================  ==========================================================

Run ids grow with creation time, so a date range becomes an id range and every listing stays
a keyset walk on one index: ``id < :before ORDER BY id DESC LIMIT n``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from app.config import Customer
from app.db import Database
from app.engine import blind, coverage, maintenance
from app.engine.maintenance import Window
from app.engine.runboard import first_id_at, queue_head, severities
from app.models import TERMINAL_STATUSES, Notice, Result, Run, RunStatus, Sight

PAGE_SIZE = 50
CHECK_SCAN = 2000
"""Results of one check kind examined per page of ``/runs?check=…``."""


@dataclass(frozen=True)
class RunFilter:
    """The filters of ``/runs`` and ``/api/runs``; ``since`` inclusive, ``until`` exclusive.

    ``outcome`` alone is the run's outcome (its worst result, the mark its row shows); with
    ``check`` it is that check's: the runs where a result of that check (in any account) had
    that severity.
    """

    customer: str | None = None
    status: str | None = None
    outcome: str | None = None
    check: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    among: frozenset[str] | None = None
    """Only these customers' runs (what the viewer may see); None: every customer's."""


@dataclass(frozen=True)
class Page:
    runs: Sequence[Run]
    older: int | None
    """Pass as ``before=`` for the next older page; None on the last page."""
    newer: int | None
    """Pass as ``after=`` for the next newer page; None on the first page."""
    steps: dict[int, dict[tuple[str, str], str]] = field(default_factory=dict)
    """run id → (account, check) → severity of its problems (OK results left out)."""
    partial: bool = False
    """A check filter searched its limit of results; older matches may follow."""


@dataclass(frozen=True, slots=True)
class Look:
    """How one account × check of a customer last fared at looking, for ``/metrics``."""

    customer: str
    account: str
    check: str
    last_ok_at: datetime | None
    """When a look last succeeded; None: never."""
    blind: bool
    """Whether it is a blind spot (:func:`app.engine.blind.is_blind`) when read."""


@dataclass(frozen=True)
class Figures:
    by_status: dict[str, int]
    by_outcome: dict[str, int]
    oldest_queued_at: datetime | None
    notices: dict[tuple[str, str], int] = field(default_factory=dict)
    """(status, destination kind) → notices for PagerDuty and webhooks not sent (yet): pending
    or failed for good."""
    oldest_notice_at: datetime | None = None
    """When the oldest notice still pending was queued."""
    looks: Sequence[Look] = ()
    """How each (account, check) of the customers asked about last fared at looking."""

    @property
    def queued(self) -> int:
        return self.by_status.get(RunStatus.QUEUED, 0)


# -- the runs list -----------------------------------------------------------------------------


async def runs_page(
    db: Database,
    flt: RunFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """One keyset page, newest first: older than ``before``, or else newer than ``after``.

    A link back the way the reader came is always offered once they are paging; a link
    onwards only when there is more (or, with a check filter, more left to search).
    """
    backwards = before is None and after is not None
    async with db.read() as session:
        span = await _id_span(session, flt)
        if span is None:
            return Page((), None, None)
        low, high = span
        if backwards:
            low = max(low or 0, (after or 0) + 1)
        elif before is not None:
            high = min(high, before) if high is not None else before
        query = _where(select(Run), flt, low, high)
        candidates = _check_candidates(flt, low, high, backwards)
        if candidates is not None:
            query = query.where(Run.id.in_(candidates))
        order = Run.id.asc() if backwards else Run.id.desc()
        rows = list((await session.scalars(query.order_by(order).limit(limit + 1))).all())
        onward: int | None = rows[limit - 1].id if len(rows) > limit else None
        if onward is None and candidates is not None:
            onward = await _scan_edge(session, candidates, backwards)
        runs = list(reversed(rows[:limit])) if backwards else list(rows[:limit])
        older: int | None
        newer: int | None
        if backwards:
            newer = onward
            older = runs[-1].id if runs else (after or 0) + 1
        else:
            older = onward
            newer = (runs[0].id if runs else before - 1) if before is not None else None
        steps = await severities(session, (r.id for r in runs), problems_only=True)
    return Page(runs, older, newer, steps, partial=candidates is not None and onward is not None)


def _where(query: Select[Run], flt: RunFilter, low: int | None, high: int | None) -> Select[Run]:
    """The run filters, with ids in ``[low, high)``."""
    if flt.customer is not None:
        query = query.where(Run.customer_id == flt.customer)
    if flt.among is not None:
        query = query.where(Run.customer_id.in_(sorted(flt.among)))
    if flt.status is not None:
        query = query.where(Run.status == flt.status)
    if flt.outcome is not None and flt.check is None:
        query = query.where(Run.outcome == flt.outcome)
    if low is not None:
        query = query.where(Run.id >= low)
    if high is not None:
        query = query.where(Run.id < high)
    return query


def _check_candidates(
    flt: RunFilter, low: int | None, high: int | None, backwards: bool
) -> Select[int] | None:
    """For a check filter: the run ids of the next ``CHECK_SCAN`` results of that check (with
    an outcome: of that check with that severity), from ``ix_results_check_run`` (or
    ``ix_results_check_severity_run``). Scanning runs and probing each for a result of a
    rarely used check would read the whole table; this reads at most ``CHECK_SCAN`` index
    entries."""
    if flt.check is None:
        return None
    candidates = select(Result.run_id).where(Result.check == flt.check)
    if flt.outcome is not None:
        candidates = candidates.where(Result.severity == flt.outcome)
    if low is not None:
        candidates = candidates.where(Result.run_id >= low)
    if high is not None:
        candidates = candidates.where(Result.run_id < high)
    order = Result.run_id.asc() if backwards else Result.run_id.desc()
    return candidates.order_by(order).limit(CHECK_SCAN)


async def _scan_edge(session: AsyncSession, candidates: Select[int], backwards: bool) -> int | None:
    """Where the next page should continue when the candidate scan stopped at its limit."""
    sub = candidates.subquery()
    count, low, high = (
        await session.execute(select(func.count(), func.min(sub.c.run_id), func.max(sub.c.run_id)))
    ).one()
    if count < CHECK_SCAN:
        return None
    return high + 1 if backwards else low


async def _id_span(session: AsyncSession, flt: RunFilter) -> tuple[int | None, int | None] | None:
    """The date range as ids ``[low, high)``; None when it holds no run at all."""
    low = high = None
    if flt.since is not None:
        low = await first_id_at(session, flt.since)
        if low is None:
            return None
    if flt.until is not None:
        high = await first_id_at(session, flt.until)
    return low, high


async def results_of(db: Database, run_ids: Sequence[int]) -> dict[int, list[Result]]:
    """Full results of the listed runs, in recording order (``uq_results_target``)."""
    out: dict[int, list[Result]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return out
    async with db.read() as session:
        rows = await session.execute(
            select(Result).where(Result.run_id.in_(list(run_ids))).order_by(Result.id)
        )
        for result in rows.scalars():
            out[result.run_id].append(result)
    return out


# -- live updates, metrics, readiness -----------------------------------------------------------


async def figures(
    db: Database, customer_ids: Collection[str] = (), now: datetime | None = None
) -> Figures:
    """Runs by status and by outcome: two scans of an index each, never of the table; and, with
    ``customer_ids`` and ``now``, how each of their (account, check) pairs last fared at
    looking."""
    async with db.read() as session:
        statuses = await session.execute(select(Run.status, func.count()).group_by(Run.status))
        outcomes = await session.execute(
            select(Run.outcome, func.count()).where(Run.outcome.is_not(None)).group_by(Run.outcome)
        )
        by_status = {status: count for status, count in statuses.all()}
        by_outcome = {outcome: count for outcome, count in outcomes.all() if outcome}
        _, oldest = await queue_head(session)
        unsent = await session.execute(
            select(Notice.status, Notice.destination, func.count())
            .where(Notice.status.in_(("pending", "failed")))
            .group_by(Notice.status, Notice.destination)
        )  # (a range of ix_notices_due: sent ones are never read)
        notices: dict[tuple[str, str], int] = {}
        for status, destination, count in unsent.all():
            key = (status, destination.partition(":")[0])
            notices[key] = notices.get(key, 0) + count
        waiting = await session.execute(
            select(func.min(Notice.created_at)).where(Notice.status == "pending")
        )
        looks = await _looks(session, customer_ids, now) if now is not None else []
    return Figures(by_status, by_outcome, oldest, notices, waiting.scalar_one_or_none(), looks)


async def _looks(session: AsyncSession, customer_ids: Collection[str], now: datetime) -> list[Look]:
    """Every sight of ``customer_ids`` (a range of ``uq_sights_target`` each), narrow."""
    if not customer_ids:
        return []
    columns = (Sight.customer_id, Sight.account, Sight.check, Sight.last_ok_at, Sight.failed,
               Sight.failing_since)  # fmt: skip
    rows = await session.scalars(
        select(Sight)
        .options(load_only(*columns))
        .where(Sight.customer_id.in_(sorted(customer_ids)))
    )
    return [
        Look(s.customer_id, s.account, s.check, s.last_ok_at, blind.is_blind(s, now)) for s in rows
    ]


# -- blind spots --------------------------------------------------------------------------------


async def blind_spots(
    db: Database, customers: Iterable[Customer], now: datetime
) -> list[blind.BlindSpot]:
    """The blind spots of ``customers`` (the ones the view shows) that their configuration
    still covers (:func:`app.engine.coverage.configured`), the oldest first."""
    shown = list(customers)
    async with db.read() as session:
        found = await blind.blind_spots(session, [c.id for c in shown], now)
    return coverage.configured(shown, found)


# -- maintenance windows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    """The maintenance windows of the customers shown: open now, and opening within
    :data:`app.engine.maintenance.UPCOMING`; each by start, then customer."""

    active: Sequence[tuple[Customer, Window]] = ()
    upcoming: Sequence[tuple[Customer, Window]] = ()


NO_WINDOWS = Windows()
_INSTANT = timedelta(microseconds=1)


async def maintenance_windows(
    db: Database, customers: Iterable[Customer], now: datetime
) -> Windows:
    """The windows of ``customers`` (the ones the view shows) active at ``now`` or opening
    within the next 7 days: those of their YAML, computed, and those started from Slack, read
    in one statement for all of them (a range of ``ix_maintenance_customer`` each) — what
    :func:`app.engine.maintenance.windows_in` reads for one customer."""
    shown = {c.id: c for c in customers}
    if not shown:
        return NO_WINDOWS
    end = now + maintenance.UPCOMING + _INSTANT  # "upcoming" includes its last instant
    async with db.read() as session:
        by_customer = await maintenance.windows_of(session, shown.values(), now, end)
    # Ended early, a window ends then (and may be over): the split below leaves it out.
    found = [(shown[cid], w) for cid, windows in by_customer.items() for w in windows]
    windows = [w for _, w in found]

    def picked(chosen: list[Window]) -> list[tuple[Customer, Window]]:
        keep = {id(w) for w in chosen}
        return sorted(((c, w) for c, w in found if id(w) in keep), key=_window_order)

    return Windows(
        picked(maintenance.active(windows, now)), picked(maintenance.upcoming(windows, now))
    )


def _window_order(pair: tuple[Customer, Window]) -> tuple[datetime, datetime, str, str]:
    customer, window = pair
    return window.starts_at, window.ends_at, customer.name.lower(), window.name


async def finished_run(
    db: Database, run_id: int
) -> tuple[Run, list[tuple[str, str, float]]] | None:
    """A run that has ended, with (check, severity, seconds) per timed result; else None."""
    async with db.read() as session:
        run = await session.get(Run, run_id)
        if run is None or run.status not in TERMINAL_STATUSES:
            return None
        rows = await session.execute(
            select(Result.check, Result.severity, Result.started_at, Result.finished_at).where(
                Result.run_id == run_id
            )
        )
        timed = [
            (check, severity, (end - start).total_seconds())
            for check, severity, start, end in rows.all()
            if start is not None and end is not None
        ]
    return run, timed


async def ping(db: Database) -> None:
    async with db.read() as session:
        await session.execute(text("SELECT 1"))
