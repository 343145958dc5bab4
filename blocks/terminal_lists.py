"""The terminal's lists — recent runs (``mhub list``), customers (``mhub customers``) and
schedules (``mhub schedules``) — as text, with the marks and words of their Slack twins
(``/monitor list``, ``customers``, ``schedules``) and each time in its customer's time zone.
Pure: values in, text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from app.config import Customer, Schedule
from app.models import Run
from blocks.marks import clock, mark
from blocks.terminal import person
from checks import kinds

MAX_ACCOUNTS = 3
MAX_CHECKS = 5
NOT_PEOPLE = ("cli", "demo", "api")
"""Who asked, when it was no person: shown as it is, not as ``@cli``."""


def render_run_list(
    runs: Sequence[Run], customers: Mapping[str, Customer], now: datetime, scope: str | None
) -> str:
    """``🔴 #12 Demo Retail / shop-prod · RDS · cli:alice · 08:34 WIB · crit``, newest first."""
    if not runs:
        where = f" for {scope}" if scope else ""
        return f"No runs yet{where}. Start one with `mhub run TARGET`."
    lines = [f"Recent runs{' for ' + scope if scope else ''}:"]
    lines.extend(_run_line(run, customers.get(run.customer_id), now) for run in runs)
    return "\n".join(lines)


def _run_line(run: Run, customer: Customer | None, now: datetime) -> str:
    accounts = list(dict.fromkeys(t["account"] for t in run.targets))
    shown = ", ".join(accounts[:MAX_ACCOUNTS]) + (
        f" (+{len(accounts) - MAX_ACCOUNTS})" if len(accounts) > MAX_ACCOUNTS else ""
    )
    checks = list(dict.fromkeys(t["check"] for t in run.targets))
    titles = ", ".join(kinds.title(c) for c in checks[:MAX_CHECKS]) + (
        f" (+{len(checks) - MAX_CHECKS})" if len(checks) > MAX_CHECKS else ""
    )
    state = run.status if run.status in ("queued", "running") else (run.outcome or run.status)
    name = customer.name if customer else run.customer_id
    tz = customer.tz if customer else UTC
    return (
        f"{mark(run.status, run.outcome)} #{run.id} {name} / {shown} · {titles} · "
        f"{_by(run.requested_by)} · {clock(run.created_at, tz, now)} · {state}"
    )


def _by(ref: str) -> str:
    """``@alice`` for a Slack user; ``cli``, ``demo`` and ``cli:bob`` as they are."""
    return ref if ref in NOT_PEOPLE else person(ref)


def render_customers(customers: Sequence[Customer]) -> str:
    """Each customer with its zone and channel, then its accounts with their checks."""
    if not customers:
        return "No customers: add a file to configs/customers/ (docs/configuration.md)."
    lines: list[str] = []
    for customer in customers:
        channel = customer.slack.channel or "no channel"
        lines.append(f"{customer.name} ({customer.id}) · {customer.timezone} · {channel}")
        width = max(len(a.id) for a in customer.accounts)
        for account in customer.accounts:
            checks = ", ".join(account.checks) or "no checks"
            lines.append(
                f"  {account.id.ljust(width)}  {account.name} ({account.account_id}, "
                f"{', '.join(account.regions)}) — {checks}"
            )
    return "\n".join(lines)


def render_schedules(items: Sequence[tuple[Customer, Schedule, datetime]]) -> str:
    """Soonest first: ``Demo Retail daily — 0 7 * * * · next Sat 05 Dec 07:00 WIB · rds``."""
    if not items:
        return "No schedules: add schedules: to a customer's file (docs/schedules.md)."
    return "\n".join(
        f"{customer.name} {schedule.name} — {schedule.cron} · next "
        f"{fire.strftime('%a %d %b %H:%M %Z')} · {what_it_does(schedule)}"
        + (f" · {channel}" if (channel := schedule.channel or customer.slack.channel) else "")
        for customer, schedule, fire in items
    )


def what_it_does(schedule: Schedule) -> str:
    if schedule.kind == "report":
        return "last month's report (PDF)"
    return ", ".join(schedule.checks) or "every configured check"
