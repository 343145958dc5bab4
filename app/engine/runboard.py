"""The runboard read model: one bounded snapshot of the run tables, shared by the App Home
tab and the web view's runboard, so the two always agree.

Each query walks an index, never the whole table:

=========================  ==========================================================
query                      index it walks
=========================  ==========================================================
queue depth, running       ``ix_runs_status_id`` (status, id)
recent finished runs       the primary key, newest first, skipping the few active ones
                           (``NOT IN`` on purpose: an ``IN`` list of statuses would sort)
latest run per customer    ``ix_runs_customer_id`` (customer_id, id), one probe each
last 24 h counts           ``ix_runs_created_at`` for the first id, then id ranges of the
                           primary key, ``ix_runs_outcome_id`` and ``ix_runs_status_id``
results of the runs        ``uq_results_target`` (run_id, …)
failed Slack deliveries    ``ix_outbox_due`` (status, next_attempt_at): a failed row's
                           ``next_attempt_at`` is when it failed
change token               the newest run event that is not a read (``ix_run_events_changes``,
                           partial); running runs' heartbeats
=========================  ==========================================================

However long the history, a snapshot reads a bounded number of rows (running runs are bounded
by the executors' concurrency). One snapshot serves every viewer: :meth:`Runboard.visible_to`
narrows it to the customers a person may see, without another query.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect

from app.db import Database
from app.engine.events import Event
from app.models import ACTIVE_STATUSES, Notice, Outbox, Result, Run, RunEvent, RunStatus

FINISHED = (RunStatus.COMPLETED, RunStatus.FAILED)
PROBLEMS = ("crit", "error", "warn")
DAY = timedelta(hours=24)
OUTBOX_FAILED = "failed"
NOTICE_FAILED = "failed"
"""``notices.status`` of an event a destination refused for good (:mod:`app.notify`)."""
"""``outbox.status`` of a message Slack refused for good (``app.slack.outbox.Status.FAILED``)."""

Steps = Mapping[tuple[str, str], str]
"""(account, check) → severity of the results written so far."""


@dataclass(frozen=True)
class FailedDelivery:
    """A Slack message that failed for good: which, where, Slack's answer, when."""

    key: str
    """The outbox key (``card:1842``, ``digest:1842``…), as in the log."""
    kind: str
    run_id: int | None
    customer_id: str | None
    channel: str | None
    error: str
    at: datetime


@dataclass(frozen=True)
class FailedDeliveries:
    """Slack deliveries that failed for good in the last 24 hours, and the latest of them.
    Shown, never a readiness failure: the hub still works, one message did not arrive."""

    count: int = 0
    latest: FailedDelivery | None = None


@dataclass(frozen=True)
class FailedNotice:
    """A finding's event that PagerDuty or a webhook refused for good (docs/routing.md)."""

    customer_id: str
    destination: str
    action: str
    error: str
    at: datetime


@dataclass(frozen=True)
class FailedNotices:
    """Notices refused for good in the last 24 hours, and the latest of them. Shown, never a
    readiness failure: nothing is wrong with the hub, a destination's setting is."""

    count: int = 0
    latest: FailedNotice | None = None


@dataclass(frozen=True)
class Runboard:
    queued: int
    oldest_queued_at: datetime | None
    running: Sequence[Run]
    waiting: Sequence[Run]
    """The first queued runs, oldest first."""
    recent: Sequence[Run]
    """The newest finished runs."""
    latest: Mapping[str, Run]
    """customer id → its latest finished run."""
    day: Mapping[str, int]
    """Counts of runs created in the last 24 hours: runs, crit, warn, error, failed."""
    steps: Mapping[int, Steps]
    """run id → (account, check) → severity, for every run on the board."""
    version: str
    """The live-update token as of this board (see :func:`version`)."""
    taken_at: datetime
    failed: FailedDeliveries = FailedDeliveries()
    """Slack deliveries that failed for good in the last 24 hours."""
    notices: FailedNotices = FailedNotices()
    """Events for PagerDuty and webhooks that failed for good in the last 24 hours."""

    def visible_to(self, customers: Collection[str]) -> Runboard:
        """The same snapshot with only the runs of ``customers``. Queue depth and the 24-hour
        counts stay global: they describe the hub, not a customer (the latest failed delivery
        is named only to those who may see its customer)."""
        latest = self.failed.latest
        hidden = latest is not None and latest.customer_id not in customers
        notice = self.notices.latest
        unseen = notice is not None and notice.customer_id not in customers
        return replace(
            self,
            running=[r for r in self.running if r.customer_id in customers],
            waiting=[r for r in self.waiting if r.customer_id in customers],
            recent=[r for r in self.recent if r.customer_id in customers],
            latest={c: r for c, r in self.latest.items() if c in customers},
            failed=replace(self.failed, latest=None) if hidden else self.failed,
            notices=replace(self.notices, latest=None) if unseen else self.notices,
        )


async def read(
    db: Database,
    customers: Iterable[str],
    now: datetime,
    *,
    recent: int = 15,
    waiting: int = 10,
) -> Runboard:
    """The runboard as of ``now``: queue and running runs, the ``recent`` newest finished runs,
    the first ``waiting`` queued ones, ``customers``' latest runs, the last 24 hours' counts."""
    async with db.read() as session:
        queued, oldest = await queue_head(session)
        running = await _scalars(
            session, select(Run).where(Run.status == RunStatus.RUNNING).order_by(Run.id)
        )
        queue = await _scalars(
            session,
            select(Run).where(Run.status == RunStatus.QUEUED).order_by(Run.id).limit(waiting),
        )
        latest_runs = await _scalars(
            session,
            select(Run)
            .where(Run.status.not_in(sorted(ACTIVE_STATUSES)))
            .order_by(Run.id.desc())
            .limit(recent),
        )
        latest = await _latest(session, list(customers))
        day = await _day(session, now - DAY)
        ids = {r.id for r in (*running, *latest_runs, *latest.values())}
        steps = await severities(session, ids)
        token = await _version(session)
        failed = await failed_deliveries(session, now - DAY)
        notices = await failed_notices(session, now - DAY)
    return Runboard(
        queued, oldest, running, queue, latest_runs, latest, day, steps, token, now, failed,
        notices,
    )  # fmt: skip


async def failed_notices(session: AsyncSession, since: datetime) -> FailedNotices:
    """Notices that failed for good since ``since`` (a failed notice's ``next_attempt_at`` is
    when it failed: a range of ``ix_notices_due``): how many, and the latest."""
    recent = (Notice.status == NOTICE_FAILED, Notice.next_attempt_at >= since)
    count = (await session.execute(select(func.count()).where(*recent))).scalar_one()
    if not count:
        return FailedNotices()
    columns = (Notice.customer_id, Notice.destination, Notice.action, Notice.last_error,
               Notice.next_attempt_at)  # fmt: skip
    query = select(*columns).where(*recent).order_by(Notice.next_attempt_at.desc()).limit(1)
    row = (await session.execute(query)).one()
    return FailedNotices(count, FailedNotice(row[0], row[1], row[2], row[3] or "", row[4]))


async def failed_deliveries(session: AsyncSession, since: datetime) -> FailedDeliveries:
    """Outbox rows that failed since ``since``: how many, and the latest (a range of
    ``ix_outbox_due``)."""
    recent = (Outbox.status == OUTBOX_FAILED, Outbox.next_attempt_at >= since)
    count = (await session.execute(select(func.count()).where(*recent))).scalar_one()
    if not count:
        return FailedDeliveries()
    row = (
        await session.execute(
            select(
                Outbox.dedupe_key,
                Outbox.kind,
                Outbox.run_id,
                Run.customer_id,
                Outbox.channel,
                Outbox.last_error,
                Outbox.next_attempt_at,
            )
            .outerjoin(Run, Run.id == Outbox.run_id)
            .where(*recent)
            .order_by(Outbox.next_attempt_at.desc(), Outbox.id.desc())
            .limit(1)
        )
    ).one()
    key, kind, run_id, customer_id, channel, error, at = row
    if customer_id is None and key.startswith("report:"):  # a monthly report: no run
        customer_id = key.split(":")[1]
    latest = FailedDelivery(key, kind, run_id, customer_id, channel, error or "unknown", at)
    return FailedDeliveries(count, latest)


async def _latest(session: AsyncSession, customers: Sequence[str]) -> dict[str, Run]:
    """Each customer's latest finished run: one probe of ``ix_runs_customer_id`` per customer,
    all in one statement, then one primary-key fetch."""
    found: dict[str, int] = {}
    for start in range(0, len(customers), 200):
        chunk = tuple(customers[start : start + 200])
        ids = (await session.execute(_latest_statement(chunk))).one()
        found.update({c: i for c, i in zip(chunk, ids, strict=True) if i is not None})
    if not found:
        return {}
    rows = await _scalars(session, select(Run).where(Run.id.in_(list(found.values()))))
    by_id = {run.id: run for run in rows}
    return {customer: by_id[run_id] for customer, run_id in found.items()}


@lru_cache(maxsize=8)
def _latest_statement(customers: tuple[str, ...]) -> Select[Any]:
    """Built once per set of customers: building twenty subqueries costs more than running
    them."""
    return select(
        *(
            select(Run.id)
            .where(Run.customer_id == customer, Run.status.in_(FINISHED))
            .order_by(Run.id.desc())
            .limit(1)
            .scalar_subquery()
            for customer in customers
        )
    )


async def queue_head(session: AsyncSession) -> tuple[int, datetime | None]:
    depth, oldest = (
        await session.execute(
            select(func.count(), func.min(Run.created_at)).where(Run.status == RunStatus.QUEUED)
        )
    ).one()
    return depth, oldest


DAY_KEYS = ("runs", "crit", "warn", "error", "failed")


async def _day(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Counts of the runs created since ``since``: all, by outcome, and failed. The date
    becomes an id bound; each count is then a range of one index, never the table."""
    first = await first_id_at(session, since)
    if first is None:
        return dict.fromkeys(DAY_KEYS, 0)
    counts = (await session.execute(_day_statement(), {"first": first})).one()
    return dict(zip(DAY_KEYS, counts, strict=True))


@lru_cache(maxsize=1)
def _day_statement() -> Select[int, int, int, int, int]:
    first = bindparam("first", type_=Integer)

    def count(*where: ColumnElement[bool]) -> ScalarSelect[int]:
        return select(func.count()).where(Run.id >= first, *where).scalar_subquery()

    return select(
        count(),
        count(Run.outcome == "crit"),
        count(Run.outcome == "warn"),
        count(Run.outcome == "error"),
        count(Run.status == RunStatus.FAILED),
    )


async def severities(
    session: AsyncSession, run_ids: Iterable[int], problems_only: bool = False
) -> dict[int, dict[tuple[str, str], str]]:
    """run id → (account, check) → severity; through ``uq_results_target``. Lists only show
    problems, so they ask for those alone (most results are OK)."""
    ids = sorted(set(run_ids))
    out: dict[int, dict[tuple[str, str], str]] = {run_id: {} for run_id in ids}
    if not ids:
        return out
    query = select(Result.run_id, Result.account, Result.check, Result.severity).where(
        Result.run_id.in_(ids)
    )
    if problems_only:
        query = query.where(Result.severity.in_(PROBLEMS))
    rows = await session.execute(query)
    for run_id, account, check, severity in rows.all():
        out[run_id][(account, check)] = severity
    return out


async def first_id_at(session: AsyncSession, moment: datetime) -> int | None:
    """The first run created at or after ``moment`` (one probe of ``ix_runs_created_at``)."""
    return (
        await session.execute(
            select(Run.id).where(Run.created_at >= moment).order_by(Run.created_at, Run.id).limit(1)
        )
    ).scalar_one_or_none()


async def _scalars(session: AsyncSession, query: Select[Run]) -> list[Run]:
    return list((await session.scalars(query)).all())


async def version(db: Database) -> str:
    """A token that changes whenever something on a page could have: any run event (every
    state change writes one) but a read of a page (``ix_run_events_changes``), or a running
    run's heartbeat."""
    async with db.read() as session:
        return await _version(session)


async def _version(session: AsyncSession) -> str:
    event, beat = (
        await session.execute(
            select(
                select(RunEvent.id)
                .where(RunEvent.type != literal_column(f"'{Event.READ.value}'"))  # the partial
                # index's own predicate, inlined: a bound value would not match it on PostgreSQL
                .order_by(RunEvent.id.desc())
                .limit(1)
                .scalar_subquery(),
                select(func.max(Run.heartbeat_at))
                .where(Run.status == RunStatus.RUNNING)
                .scalar_subquery(),
            )
        )
    ).one()
    return f"{event or 0}.{int(beat.timestamp()) if beat else 0}"
