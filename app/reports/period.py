"""Which days a report covers: a calendar month (``2026-11``) or an inclusive range of days,
both in the customer's time zone, checked against what can be reported on."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.config import Customer
from app.errors import UsageError, quoted
from app.reports.model import Period

MAX_DAYS = 366
"""The longest range one report covers."""

_MONTH = re.compile(r"(\d{4})-(\d{2})")


class ReportError(UsageError):
    """A report that cannot be made as asked; the message says what to ask instead."""


def month_of(customer: Customer, text: str, now: datetime) -> Period:
    """The calendar month ``text`` (``2026-11``) in the customer's zone."""
    first = month_start(text)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return _period(customer, first, following - timedelta(days=1), now)


def month_start(text: str) -> date:
    """The first day of the month ``text`` names (``2026-11``): the shape alone, with no
    customer (the ``/monitor report`` grammar checks it before anything is looked up)."""
    found = _MONTH.fullmatch(text.strip())
    if not found or not 1 <= int(found[2]) <= 12 or int(found[1]) < 2000:
        raise ReportError(f"{quoted(text, 20)} is not a month: give it as YYYY-MM, such as 2026-11")
    return date(int(found[1]), int(found[2]), 1)


def last_month(customer: Customer, now: datetime) -> Period:
    """The last whole calendar month in the customer's zone (the default report)."""
    today = now.astimezone(ZoneInfo(customer.timezone)).date()
    last = today.replace(day=1) - timedelta(days=1)
    return _make(ZoneInfo(customer.timezone), last.replace(day=1), last)


def between(
    customer: Customer,
    first: str,
    last: str,
    now: datetime,
    names: tuple[str, str] = ("--from", "--to"),
) -> Period:
    """Days ``first`` to ``last`` inclusive (``2026-11-01``), in the customer's zone;
    ``names`` are what the asker called them (options, or a web page's parameters)."""
    start, end = _day(first, names[0]), _day(last, names[1])
    if start > end:
        raise ReportError(
            f"{names[0]} {start.isoformat()} is after {names[1]} {end.isoformat()}: give the "
            "earlier day first (both days are included)"
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportError(f"a report covers at most {MAX_DAYS} days; choose a shorter range")
    return _period(customer, start, end, now)


def month_before(customer: Customer, period: Period) -> Period:
    """The calendar month before a month's report, or the same number of days before a
    range's (never checked against today: it is in the past)."""
    tz = ZoneInfo(customer.timezone)
    if period.month is not None:
        last = period.first - timedelta(days=1)
        first = last.replace(day=1)
    else:
        first = period.first - timedelta(days=period.days)
        last = period.first - timedelta(days=1)
    return _make(tz, first, last)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(
            f'{option} "{text[:20]}" is not a day: give it as YYYY-MM-DD, such as 2026-11-01'
        ) from None


def _period(customer: Customer, first: date, last: date, now: datetime) -> Period:
    tz = ZoneInfo(customer.timezone)
    today = now.astimezone(tz).date()
    if first > today:
        raise ReportError(
            f"{_name(first, last)} has not begun yet in {customer.name}'s time zone "
            f"({customer.timezone}; today is {today.isoformat()}): choose a period that has"
        )
    return _make(tz, first, last)


def _make(tz: ZoneInfo, first: date, last: date) -> Period:
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    after = last + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=tz)
    whole = first.day == 1 and after.day == 1 and (after - first).days <= 31
    return Period(
        first=first,
        last=last,
        start=start,
        end=end,
        month=f"{first:%Y-%m}" if whole else None,
        label=_name(first, last),
    )


def _name(first: date, last: date) -> str:
    after = last + timedelta(days=1)
    if first.day == 1 and after.day == 1 and (after - first).days <= 31:
        return f"{first:%B %Y}"
    if first == last:
        return f"{first.day} {first:%b %Y}"
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
