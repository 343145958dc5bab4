"""How a report says its figures, the one wording every renderer uses (page, PDF, CSV, Slack):
percentages, lengths of time, money and times in the customer's zone — in words a customer
reads, with no internal ids or severity codes."""

from __future__ import annotations

from datetime import date, datetime

from app.reports.model import Report, Summary
from blocks.marks import duration
from checks.budget import money as _money

NONE = "—"
"""What a figure with nothing behind it shows."""


def pct(value: float | None, digits: int = 1) -> str:
    """``99.5 %``; ``100 %`` and ``0 %`` without decimals; ``—`` for nothing."""
    if value is None:
        return NONE
    text = f"{value:.{digits}f}"
    if value < 100 and float(text) >= 100:  # never round a gap away: 99.96 % is not 100 %
        text = f"{min(value, 99.99):.2f}"
    elif float(text) in (0.0, 100.0) and value in (0.0, 100.0):
        text = f"{value:.0f}"
    return f"{text} %"


def span(seconds: float | None) -> str:
    """``3 h 36 min``: how long something lasted (``—`` for nothing)."""
    return NONE if seconds is None else duration(seconds)


def money(amount: float | None, unit: str) -> str:
    """``$5,200`` for USD, ``5,200 EUR`` otherwise (as the cards say it)."""
    return NONE if amount is None else _money(amount, unit)


def when(moment: datetime | None) -> str:
    """``10 Nov 2026 02:00 WIB``: a moment in the zone it carries (the customer's)."""
    if moment is None:
        return NONE
    return f"{moment.day} {moment:%b %Y %H:%M} {moment.tzname() or ''}".rstrip()


def day(value: date | datetime) -> str:
    """``10 Nov 2026``."""
    return f"{value.day} {value:%b %Y}"


def count(n: int, one: str, many: str | None = None) -> str:
    """``1 job``, ``62 jobs``, with thousands separated."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def versus(now: float | None, before: float | None, unit: str = "") -> str:
    """``+3``, ``−1.5 %``, ``same``: a figure against the period before (``—`` without one)."""
    if now is None or before is None:
        return NONE
    delta = now - before
    if abs(delta) < 0.05:
        return "same"
    sign = "+" if delta > 0 else "−"
    number = f"{abs(delta):,.0f}" if float(delta).is_integer() else f"{abs(delta):,.1f}"
    return f"{sign}{number}{unit}"


def coverage(summary: Summary) -> str:
    """``29 of 30 scheduled runs (96.7 %)``."""
    if not summary.scheduled_expected:
        return "no scheduled runs"
    return (
        f"{summary.scheduled_done:,} of {count(summary.scheduled_expected, 'scheduled run')}"
        f" ({pct(summary.scheduled_pct)})"
    )


def headline(report: Report) -> tuple[str, str]:
    """The two lines posted with the PDF in the customer's channel."""
    s = report.summary
    first = f"Monthly report for {report.customer}, {report.period.label}."
    parts = [
        count(s.looks, "check") + " run",
        coverage(s),
        f"problems on {count(s.problem_days, 'day')} of {s.days}",
    ]
    up = [e.uptime_pct for e in report.availability if e.uptime_pct is not None]
    if up:
        parts.append(f"lowest uptime {pct(min(up))}")
    if report.backups.jobs:
        parts.append(
            f"{report.backups.failed} of {count(report.backups.jobs, 'backup job')} failed"
        )
    if report.gaps:
        parts.append(f"{count(len(report.gaps), 'gap')} where the hub could not look")
    return first, "; ".join(parts) + "."


def before(report: Report) -> str:
    """The period a report compares with: ``October 2026``, or ``the 15 days before``."""
    period = report.period
    if period.month is not None:
        last = date.fromordinal(period.first.toordinal() - 1)
        return f"{last:%B %Y}"
    return f"the {count(period.days, 'day')} before"


def latency(ms: float | None) -> str:
    """``2,350 ms``."""
    return NONE if ms is None else f"{ms:,.0f} ms"


def gib(value: float | None) -> str:
    """``33.5 GiB``."""
    return NONE if value is None else f"{value:,.1f} GiB"
