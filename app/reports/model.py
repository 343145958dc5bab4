"""What a report says, as plain values: one dataclass per section, no database and no
rendering. Times are aware datetimes in the customer's zone; amounts are floats in the budget's
own unit. Every renderer (page, PDF, CSV, JSON) reads this and nothing else."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last`` inclusive in ``tz``: ``[start, end)`` as instants."""

    first: date
    last: date
    start: datetime
    """Midnight starting ``first``, in the customer's zone."""
    end: datetime
    """Midnight after ``last`` (exclusive), in the customer's zone."""
    month: str | None
    """``2026-11`` when the period is one calendar month."""
    label: str
    """``November 2026``, or ``3 Nov 2026 – 17 Nov 2026``."""

    @property
    def hours(self) -> float:
        """Real elapsed hours (743 or 745 in a month with a clock change)."""
        return (self.end.astimezone(UTC) - self.start.astimezone(UTC)).total_seconds() / 3600

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class Summary:
    looks: int
    """Checks run: one per account and check kind each run looked at."""
    scheduled_expected: int
    """Scheduled runs the customer's schedules should have made in the period (since
    monitoring began)."""
    scheduled_done: int
    """Of those, how many ran."""
    accounts: int
    """Accounts looked at at least once."""
    accounts_configured: int
    problem_days: int
    """Days on which some look found a problem (a warning or worse)."""
    days: int
    """Days in the period that monitoring covered."""

    @property
    def scheduled_pct(self) -> float | None:
        if not self.scheduled_expected:
            return None
        return min(100.0, 100 * self.scheduled_done / self.scheduled_expected)


@dataclass(frozen=True)
class Outage:
    start: datetime
    """The first look that found it down."""
    end: datetime | None
    """The first look that found it up again; None: still down when the period ended."""
    seconds: float
    """``end - start``, or to the period's end while still down."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    account: str
    url: str | None
    looks: int
    up_looks: int
    worst_latency_ms: float | None
    worst_latency_at: datetime | None
    outages: int
    longest: Outage | None
    cert_days_left: int | None
    """At the last look of the period."""
    daily_uptime: tuple[float | None, ...]
    """Uptime % per day of the period (None: no look that day), for the chart."""

    @property
    def uptime_pct(self) -> float | None:
        return 100 * self.up_looks / self.looks if self.looks else None


@dataclass(frozen=True)
class BackupAccount:
    account: str
    completed: int
    failed: int
    """Failed, aborted or expired jobs."""
    other: int
    """Partly completed, or still running when last seen."""

    @property
    def success_pct(self) -> float | None:
        return _success(self.completed, self.failed)


@dataclass(frozen=True)
class RpoBreach:
    account: str
    resource: str
    start: datetime
    """When its newest completed backup became older than the RPO."""
    end: datetime | None
    """When a completed backup came again; None: not by the period's end."""
    seconds: float


@dataclass(frozen=True)
class Backups:
    accounts: tuple[BackupAccount, ...]
    breaches: tuple[RpoBreach, ...]
    rpo_hours: float

    @property
    def completed(self) -> int:
        return sum(a.completed for a in self.accounts)

    @property
    def failed(self) -> int:
        return sum(a.failed for a in self.accounts)

    @property
    def jobs(self) -> int:
        return sum(a.completed + a.failed + a.other for a in self.accounts)

    @property
    def success_pct(self) -> float | None:
        return _success(self.completed, self.failed)


@dataclass(frozen=True)
class Crossing:
    """A database metric that crossed a threshold: when first, at what level."""

    metric: str
    """``CPU``, ``free storage``, ``memory``, ``connections``, ``status``."""
    level: str
    """``warning`` or ``critical`` (the worst it reached)."""
    first_at: datetime
    text: str
    """What the check said the first time, in the customer's words."""


@dataclass(frozen=True)
class Database:
    account: str
    region: str
    name: str
    cpu_peak: float | None
    cpu_peak_at: datetime | None
    free_start_pct: float | None
    free_end_pct: float | None
    free_start_gib: float | None
    free_end_gib: float | None
    daily_cpu_peak: tuple[float | None, ...]
    daily_free_pct: tuple[float | None, ...]
    """The lowest free storage % each day (None: no look that day)."""
    crossings: tuple[Crossing, ...]


@dataclass(frozen=True)
class Alarm:
    account: str
    name: str
    label: str | None
    fired: int
    """Times it went into ALARM within the period."""
    seconds: float
    """How long it was in ALARM in total within the period."""
    last_at: datetime


@dataclass(frozen=True)
class Budget:
    account: str
    name: str
    unit: str
    limit: float
    actual: float
    forecast: float | None
    as_of: datetime
    """The last look of the period."""
    previous_actual: float | None
    """The previous period's actual, where a look then saw this budget."""

    @property
    def actual_pct(self) -> float:
        return 100 * self.actual / self.limit if self.limit else 0.0

    @property
    def forecast_pct(self) -> float | None:
        if self.forecast is None or not self.limit:
            return None
        return 100 * self.forecast / self.limit


@dataclass(frozen=True)
class LongOpen:
    account: str
    check: str
    """The check's title: ``Backup``, ``RDS``."""
    resource: str
    summary: str
    since: datetime
    resolved_at: datetime | None
    """None: still open at the period's end."""
    seconds: float


@dataclass(frozen=True)
class Reasoned:
    """Answers of one kind given for one reason."""

    reason: str
    count: int


@dataclass(frozen=True)
class Findings:
    opened: int
    resolved: int
    open_at_end: int
    mean_resolve_s: float | None
    longest: tuple[LongOpen, ...]
    acknowledged: int
    snoozed: tuple[Reasoned, ...]
    muted: tuple[Reasoned, ...]


@dataclass(frozen=True)
class Gap:
    """An account and check the hub could not look at for a while (a blind spot)."""

    account: str
    check: str
    start: datetime
    end: datetime | None
    """The first look that worked again; None: still failing at the period's end."""
    seconds: float
    looks: int
    why: str


@dataclass(frozen=True)
class Report:
    customer_id: str
    customer: str
    """The customer's name."""
    timezone: str
    period: Period
    began: datetime | None
    """When monitoring of the customer began (its first look), when that is inside the
    period; None: before it."""
    generated_at: datetime
    summary: Summary
    previous: Summary | None
    """The same figures for the period before (None: monitoring had not begun)."""
    availability: tuple[Endpoint, ...]
    backups: Backups
    databases: tuple[Database, ...]
    alarms: tuple[Alarm, ...]
    cost: tuple[Budget, ...]
    findings: Findings
    gaps: tuple[Gap, ...]
    notes: tuple[str, ...] = field(default=())
    """Things a reader should know about the figures (a period cut at today, and so on)."""

    def as_json(self) -> dict[str, Any]:
        """Every field as JSON values: times as ISO 8601 with their offset."""
        return cast(dict[str, Any], _plain(self))


def _success(completed: int, failed: int) -> float | None:
    """Completed jobs as a share of those that finished (None: none did)."""
    done = completed + failed
    return 100 * completed / done if done else None


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in _DERIVED.get(type(value).__name__, ()):
            out[name] = _plain(getattr(value, name))
        return out
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


_DERIVED: dict[str, tuple[str, ...]] = {
    "Summary": ("scheduled_pct",),
    "Endpoint": ("uptime_pct",),
    "BackupAccount": ("success_pct",),
    "Backups": ("completed", "failed", "jobs", "success_pct"),
    "Budget": ("actual_pct", "forecast_pct"),
}
"""Properties that JSON carries as well, by class."""
