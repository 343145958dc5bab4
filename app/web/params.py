"""Query-string parsing for the runs and findings filters and the reports' periods: a clear 400
for anything malformed, a 404 for a customer that is not configured."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from app.catalog import Catalog
from app.config import Customer
from app.engine import findings
from app.errors import quoted
from app.models import RunStatus
from app.reports import period
from app.reports.model import Period
from app.web.present import UTC_ZONE
from app.web.queries import RunFilter
from app.web.standings import GROUPS
from checks import kinds

STATUSES = tuple(s.value for s in RunStatus)
OUTCOMES = ("crit", "error", "warn", "ok", "skipped")
_CUSTOMER = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,16}", re.ASCII)
MAX_ID = 2**53


class BadParam(web.HTTPBadRequest):
    def __init__(self, message: str) -> None:
        super().__init__(text=message)


def _choice(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = query.get(name, "").strip().lower()
    if not value:
        return None
    if value not in choices:
        raise BadParam(f"Unknown {name} {quoted(value)}. Use one of: {', '.join(choices)}.")
    return value


def _day(query: Mapping[str, str], name: str) -> date | None:
    value = query.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadParam(f"{quoted(value)} is not a date; write it as YYYY-MM-DD.") from None


def cursor(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name, "").strip().removeprefix("#")
    if not value:
        return None
    if not _DIGITS.fullmatch(value) or not 0 < int(value) < MAX_ID:
        raise BadParam(f"{quoted(value)} is not a run id.")
    return int(value)


def run_filter(query: Mapping[str, str], catalog: Catalog) -> tuple[RunFilter, ZoneInfo]:
    """The filter, and the zone its dates were read in (the customer's, else UTC)."""
    customer = query.get("customer", "").strip().lower() or None
    if customer is not None and not _CUSTOMER.fullmatch(customer):
        raise BadParam(f"{quoted(customer)} is not a customer id.")
    known = catalog.customers.get(customer) if customer else None
    tz = known.tz if known is not None else UTC_ZONE
    since, until = _day(query, "from"), _day(query, "to")
    if since and until and until < since:
        raise BadParam("The date range ends before it starts; swap from and to.")
    flt = RunFilter(
        customer=customer,
        status=_choice(query, "status", STATUSES),
        outcome=_choice(query, "outcome", OUTCOMES),
        check=_choice(query, "check", kinds.NAMES),
        since=datetime.combine(since, time(), tz) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), tz) if until else None,
    )
    return flt, tz


def filter_query(query: Mapping[str, str]) -> dict[str, str]:
    """The filter part of a query string, to carry into pagination links."""
    keys = ("customer", "status", "outcome", "check", "from", "to")
    return {k: query[k] for k in keys if query.get(k, "").strip()}


def findings_query(query: Mapping[str, str]) -> tuple[str, str | None]:
    """``/api/findings``: the customer id (required) and the optional state."""
    customer = query.get("customer", "").strip().lower()
    if not customer:
        raise BadParam("Say which customer: /api/findings?customer=ID (ids: /customers).")
    if not _CUSTOMER.fullmatch(customer):
        raise BadParam(f"{quoted(customer)} is not a customer id.")
    return customer, _choice(query, "state", findings.STATES)


def one_customer(query: Mapping[str, str]) -> str | None:
    """``/api/blind-spots`` and ``/api/maintenance``: one customer's id (``?customer=ID``),
    or None for all the viewer may see."""
    customer = query.get("customer", "").strip().lower()
    if not customer:
        return None
    if not _CUSTOMER.fullmatch(customer):
        raise BadParam(f"{quoted(customer)} is not a customer id.")
    return customer


def findings_group(query: Mapping[str, str]) -> str | None:
    """The findings page's ``?group=GROUP``: one group listed whole (up to 500 lines)."""
    return _choice(query, "group", GROUPS)


def report_period(
    customer: Customer, month: str | None, query: Mapping[str, str], now: datetime
) -> Period:
    """A report's days: the calendar ``month`` (``2026-11``), else ``?from=…&to=…`` (both days
    included), in the customer's zone; a 400 saying what to ask instead when it cannot be."""
    try:
        if month is not None:
            return period.month_of(customer, month, now)
        first, last = query.get("from", "").strip(), query.get("to", "").strip()
        if not first or not last:
            raise BadParam(
                "Say which days: ?from=YYYY-MM-DD&to=YYYY-MM-DD (both included), "
                "or a month: /reports/YYYY-MM."
            )
        return period.between(customer, first, last, now, names=("from", "to"))
    except period.ReportError as exc:
        raise BadParam(str(exc)) from None
