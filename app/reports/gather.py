"""Reading a report's figures from the database: one customer's looks of the period (one
query over its runs by time, ``ix_runs_customer_created``), its findings and the answers
given to them, and the same counts for the period before. The sections themselves are worked
out by :mod:`app.reports.figures`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import Catalog
from app.config import Customer
from app.db import Database
from app.engine.events import Event
from app.models import Finding, Result, Run, RunEvent, Source
from app.reports import figures
from app.reports.figures import Frame, Look
from app.reports.model import Findings, LongOpen, Period, Reasoned, Report, Summary
from app.reports.period import ReportError, month_before
from app.reports.words import day
from app.schedules.slots import CronCadence, fires_between
from checks import kinds
from checks.kinds import title

LONGEST = 5
"""How many of the longest-open findings a report lists."""
_EARLY = timedelta(hours=6)
"""A run counts in the period by when its looks were made; one created this long before the
period may still have looked inside it."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Reports:
    """Builds a customer's report for a period from what the hub has kept."""

    def __init__(
        self, db: Database, catalog: Catalog, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock or _utcnow

    async def build(self, customer_id: str, period: Period) -> Report:
        """The report; :class:`~app.reports.period.ReportError` when the whole period is
        before monitoring of the customer began. An unknown customer is ``NotFound``."""
        customer = self.catalog.customer(customer_id)
        now = self.clock()
        tz = ZoneInfo(customer.timezone)
        async with self.db.read() as session:
            began = await _began(session, customer.id)
            if began is not None and period.end <= began:
                local = began.astimezone(tz)
                raise ReportError(
                    f"monitoring of {customer.name} began on {day(local)}: choose "
                    f"{local:%B %Y} or later"
                )
            start = max(period.start.astimezone(UTC), began or period.start)
            until = min(period.end.astimezone(UTC), now)
            frame = _frame(period, tz, start, until)
            at = _Reader(session, customer.id)
            # Every look without its details (counts, problem days, gaps), then each kind's
            # looks with theirs, one kind at a time (a month of details held at once costs
            # the garbage collector more than reading them), keeping those that could not look.
            looks = await at.looks(start, until)
            errors: list[Look] = []

            async def kind(name: str) -> list[Look]:
                found = await at.looks(start, until, name)
                errors.extend(look for look in found if look.severity == "error")
                return found

            rpo = {
                a.id: float(customer.checks.get("backup", {}).get("rpo_hours", 24.0))
                for a in customer.accounts
            }
            availability = figures.availability(await kind("http"), frame)
            backups = figures.backups(await kind("backup"), frame, rpo)
            databases = figures.databases(await kind("rds"), frame)
            alarms = figures.alarms(await kind("alarms"), frame)
            for other in sorted(set(kinds.NAMES) - {"http", "backup", "rds", "alarms", "budget"}):
                await kind(other)  # a kind with no section of its own: its gaps' reasons
            before = month_before(customer, period)
            old_start = max(before.start.astimezone(UTC), began or before.start)
            previous: list[Look] = []
            old_budgets: list[Look] = []
            if began is not None and old_start < start:
                previous = await at.looks(old_start, start)
                old_budgets = await at.looks(old_start, start, "budget")
            cost = figures.budgets(await kind("budget"), old_budgets, frame)
            scheduled = await _scheduled(session, customer.id, start, until)
            old_scheduled = await _scheduled(session, customer.id, old_start, start)
            answered = await _answers(session, customer.id, start, until)
            findings = await _findings(session, customer.id, frame)
        old_frame = _frame(before, tz, old_start, start) if previous else None
        said = {(e.account, e.check, e.at): e for e in errors}
        gaps = figures.gaps([said.get((x.account, x.check, x.at), x) for x in looks], frame)
        return Report(
            customer_id=customer.id,
            customer=customer.name,
            timezone=customer.timezone,
            period=period,
            began=began.astimezone(tz) if began and began > period.start else None,
            generated_at=now.astimezone(tz),
            summary=_summary(customer, looks, frame, scheduled),
            previous=(
                _summary(customer, previous, old_frame, old_scheduled) if old_frame else None
            ),
            availability=availability,
            backups=backups,
            databases=databases,
            alarms=alarms,
            cost=cost,
            findings=_answered(findings, answered),
            gaps=gaps,
            notes=_notes(period, now, tz, began),
        )


def _frame(period: Period, tz: ZoneInfo, start: datetime, until: datetime) -> Frame:
    return Frame(start=start, until=until, tz=tz, first_day=period.start, days=period.days)


async def _began(session: AsyncSession, customer_id: str) -> datetime | None:
    """When the customer's first run was made (run ids grow with time)."""
    query = select(Run.created_at).where(Run.customer_id == customer_id).order_by(Run.id)
    return (await session.execute(query.limit(1))).scalar()


def looks_query(
    customer_id: str,
    start: datetime,
    until: datetime,
    *,
    details: bool,
    check: str | None = None,
) -> Select[Any]:
    """The looks one customer's runs made in ``[start, until)``, oldest first: the customer's
    runs by time (``ix_runs_customer_created``), then each run's results (``uq_results_target``,
    or ``ix_results_check_run`` for one ``check``)."""
    columns: list[Any] = [Result.account, Result.check, Result.severity, Result.finished_at]
    if details:
        columns += [Result.summary, Result.details]
    query = (
        select(*columns)
        .join(Run, Run.id == Result.run_id)
        .where(
            Run.customer_id == customer_id,
            Run.created_at >= start - _EARLY,
            Run.created_at < until,
            Result.finished_at >= start,
            Result.finished_at < until,
        )
        .order_by(Result.finished_at, Result.id)
    )
    return query if check is None else query.where(Result.check == check)


@dataclass(frozen=True)
class _Reader:
    session: AsyncSession
    customer_id: str

    async def looks(
        self,
        start: datetime,
        until: datetime,
        check: str | None = None,
        *,
        details: bool | None = None,
    ) -> list[Look]:
        """The looks of ``[start, until)``: with their details when ``details``, which is
        the default for one ``check``."""
        full = check is not None if details is None else details
        query = looks_query(self.customer_id, start, until, details=full, check=check)
        rows = await self.session.execute(query)
        if full:
            return [Look(a, c, s, at, text, d or {}) for a, c, s, at, text, d in rows]
        return [Look(a, c, s, at, "", {}) for a, c, s, at in rows]


async def _scheduled(
    session: AsyncSession, customer_id: str, start: datetime, until: datetime
) -> dict[str, int]:
    """How many scheduled runs were made in the window, by schedule."""
    if until <= start:
        return {}
    query = select(Run.params).where(
        Run.customer_id == customer_id,
        Run.source == Source.SCHEDULE.value,
        Run.created_at >= start,
        Run.created_at < until,
    )
    return dict(Counter(str((p or {}).get("schedule")) for p in (await session.scalars(query))))


def _expected(customer: Customer, start: datetime, until: datetime) -> dict[str, int]:
    """How many slots each digest schedule had in the window."""
    out: dict[str, int] = {}
    for schedule in customer.schedules:
        if schedule.kind != "digest":
            continue
        cadence = CronCadence(schedule.cron, ZoneInfo(customer.timezone))
        tick = timedelta(
            microseconds=1
        )  # fires_between counts (start, end]: this is [start, until)
        out[schedule.name] = len(fires_between(cadence, start - tick, until - tick))
    return out


def _summary(
    customer: Customer, looks: Sequence[Look], frame: Frame, scheduled: dict[str, int]
) -> Summary:
    expected = _expected(customer, frame.start, frame.until)
    done = sum(min(n, scheduled.get(name, 0)) for name, n in expected.items())
    covered = (frame.local(frame.until - timedelta(microseconds=1)).date()) - (
        frame.local(frame.start).date()
    )
    return Summary(
        looks=sum(1 for look in looks if look.severity != "skipped"),
        scheduled_expected=sum(expected.values()),
        scheduled_done=done,
        accounts=len({look.account for look in looks if look.severity != "skipped"}),
        accounts_configured=len(customer.accounts),
        problem_days=figures.problem_days(looks, frame),
        days=covered.days + 1 if frame.until > frame.start else 0,
    )


async def _findings(session: AsyncSession, customer_id: str, frame: Frame) -> Findings:
    """Opened, resolved and still open, from each finding's first sight and resolution."""
    query = select(
        Finding.account,
        Finding.check,
        Finding.resource,
        Finding.summary,
        Finding.first_seen_at,
        Finding.resolved_at,
        Finding.status,
    ).where(
        Finding.customer_id == customer_id,
        Finding.first_seen_at < frame.until,
        or_(Finding.resolved_at.is_(None), Finding.resolved_at >= frame.start),
    )
    rows = list(await session.execute(query))
    opened = resolved = still = 0
    took: list[float] = []
    spans: list[LongOpen] = []
    for account, check, resource, summary, first, gone, status in rows:
        ended = gone if status == "resolved" and gone is not None and gone < frame.until else None
        if first >= frame.start:
            opened += 1
        if ended is not None:
            resolved += 1
            took.append((ended - first).total_seconds())
        else:
            still += 1
        spans.append(
            LongOpen(
                account,
                title(check),
                resource,
                figures.plain(summary),
                frame.local(first),
                frame.local(ended) if ended else None,
                frame.seconds(first, ended),
            )
        )
    spans.sort(key=lambda s: -s.seconds)
    return Findings(
        opened=opened,
        resolved=resolved,
        open_at_end=still,
        mean_resolve_s=sum(took) / len(took) if took else None,
        longest=tuple(spans[:LONGEST]),
        acknowledged=0,
        snoozed=(),
        muted=(),
    )


async def _answers(
    session: AsyncSession, customer_id: str, start: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The answers given to the customer's findings in the window (the audit rows)."""
    query = select(RunEvent.data).where(
        and_(
            RunEvent.run_id.is_(None),
            RunEvent.type == Event.ANSWER.value,
            RunEvent.created_at >= start,
            RunEvent.created_at < until,
        )
    )
    return [d for d in await session.scalars(query) if (d or {}).get("customer") == customer_id]


def _answered(findings: Findings, answers: list[dict[str, Any]]) -> Findings:
    acknowledged = 0
    snoozed: Counter[str] = Counter()
    muted: Counter[str] = Counter()
    for data in answers:
        match data.get("action"):
            case "ack":
                acknowledged += int(data.get("changed", 0))
            case "snooze" if data.get("changed"):
                snoozed[str(data.get("reason") or "no reason given")] += int(data["changed"])
            case "mute":
                muted[str((data.get("rule") or {}).get("reason") or "no reason given")] += 1
    return Findings(
        opened=findings.opened,
        resolved=findings.resolved,
        open_at_end=findings.open_at_end,
        mean_resolve_s=findings.mean_resolve_s,
        longest=findings.longest,
        acknowledged=acknowledged,
        snoozed=tuple(Reasoned(r, n) for r, n in snoozed.most_common()),
        muted=tuple(Reasoned(r, n) for r, n in muted.most_common()),
    )


def _notes(period: Period, now: datetime, tz: ZoneInfo, began: datetime | None) -> tuple[str, ...]:
    notes = []
    if began is None:
        notes.append("Nothing has been checked for this customer yet.")
    if period.end > now:
        local = now.astimezone(tz)
        notes.append(
            f"{period.label} is not over: this report covers it up to "
            f"{local.day} {local:%b %Y %H:%M} {local.tzname()}."
        )
    return tuple(notes)
