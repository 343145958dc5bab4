"""Short messages: help, usage, errors and refusals, acknowledgements, lists.

Every builder returns a whole message (``text`` fallback plus ``blocks``) that fits Slack's
limits, marked ephemeral: only the person who asked sees it. Text that came from outside this
code base is escaped here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from blocks import text as t
from blocks.ids import COMMAND, BlockId
from blocks.marks import STATUS_MARK, clock, mark
from checks import kinds

USAGE = f"`{COMMAND} run TARGET [CHECK ...] [--window 12h]`"
HELP_LINES = (
    f"`{COMMAND} run TARGET [CHECK ...] [--window 12h]` — run checks on a customer or an "
    "account; with no CHECK, the account's configured checks",
    f"`{COMMAND} status RUN_ID` — one run and its results (`1842` or `#1842`)",
    f"`{COMMAND} list [CUSTOMER]` — recent runs",
    f"`{COMMAND} cancel RUN_ID` · `{COMMAND} retry RUN_ID`",
    f"`{COMMAND} customers` — customers, their accounts and checks",
    f"`{COMMAND} schedules` — schedules and when they fire next",
    f"`{COMMAND} maintenance TARGET DURATION [reason]` — start a maintenance window now",
    f"`{COMMAND} report CUSTOMER [YYYY-MM]` — a customer's monthly report (default: last "
    "month), with links to its page and PDF",
    f"`{COMMAND} help` — this list",
)
EXAMPLES = (
    f"`{COMMAND} run acme-prod rds --window 12h`",
    f"`{COMMAND} run acme budget`",
    f"`{COMMAND} status 1842`",
)


@dataclass(frozen=True)
class ListedRun:
    """A run in ``/monitor list``: the fields shown, and its customer's name and zone."""

    id: int
    status: str
    outcome: str | None
    customer_name: str
    accounts: Sequence[str]
    checks: Sequence[str]
    requested_by: str
    created_at: datetime | None
    tz: tzinfo


@dataclass(frozen=True)
class ListedAccount:
    id: str
    name: str
    checks: Sequence[str]


@dataclass(frozen=True)
class ListedCustomer:
    id: str
    name: str
    timezone: str
    accounts: Sequence[ListedAccount]


@dataclass(frozen=True)
class ListedSchedule:
    customer_id: str
    customer_name: str
    name: str
    cron: str
    checks: Sequence[str]
    next_fire: datetime
    """Aware, in the customer's time zone."""
    kind: str = "digest"
    """``report``: it posts last month's report instead of running checks."""


def ephemeral(text: str, *more: dict[str, Any]) -> dict[str, Any]:
    """A one-section message only the asker sees; ``text`` is already mrkdwn-safe."""
    return {
        "response_type": "ephemeral",
        "text": t.fallback(text),
        "blocks": [t.section(text, BlockId.TEXT), *more][: t.MAX_BLOCKS],
    }


def help_message() -> dict[str, Any]:
    body = "*Monitoring Hub* — run checks on customers' AWS accounts from here.\n" + "\n".join(
        f"• {line}" for line in HELP_LINES
    )
    return ephemeral(body, t.context(["Examples: " + " · ".join(EXAMPLES)], "examples"))


def usage(problem: str) -> dict[str, Any]:
    """Malformed command text: what was wrong, and the shape that works."""
    return ephemeral(
        t.truncate(t.escape(problem), 1500) + f"\nUsage: {USAGE} · `{COMMAND} help` for the rest."
    )


def error(message: str) -> dict[str, Any]:
    """A refusal or an error the person can act on (one or two lines)."""
    return ephemeral(t.truncate(t.escape(message), 2000))


def unexpected(error_id: str) -> dict[str, Any]:
    return ephemeral(
        f"⚠️ Something went wrong on our side (error `{t.escape(error_id)}`). "
        "Try again; if it keeps happening, give the error id to whoever runs the hub."
    )


def working() -> dict[str, Any]:
    return ephemeral("⏳ Working on it…")


def queued(
    run_id: int,
    customer_name: str,
    accounts: Sequence[str],
    checks: Sequence[str],
    window: str | None,
    created: bool,
) -> dict[str, Any]:
    """The acknowledgement of ``/monitor run``."""
    where = f"{t.escape(customer_name)} / {', '.join(t.escape(a) for a in accounts[:5])}"
    if len(accounts) > 5:
        where += f" (+{len(accounts) - 5})"
    what = ", ".join(t.escape(c) for c in checks)
    span = f" · window {t.escape(window)}" if window else ""
    if not created:
        return ephemeral(f"Already queued as *#{run_id}* — this command arrived twice.")
    return ephemeral(
        f"{STATUS_MARK['queued']} Queued *#{run_id}* · {where} · {what}{span}. "
        "The result card will appear in this channel."
    )


def notice(message: str) -> dict[str, Any]:
    """A confirmation (cancelled, retried)."""
    return ephemeral(t.truncate(t.escape(message), 2000))


def retried(original_id: int, run_id: int, created: bool) -> dict[str, Any]:
    if created:
        return ephemeral(f"🔁 Retrying #{original_id} as *#{run_id}*; its card follows here.")
    return ephemeral(f"#{original_id} was already retried as *#{run_id}* — see that card.")


def run_list(runs: Sequence[ListedRun], now: datetime, scope: str | None) -> dict[str, Any]:
    if not runs:
        where = f" for {t.escape(scope)}" if scope else ""
        return ephemeral(f"No runs yet{where}. Start one with {USAGE}.")
    lines = [_listed_run(r, now) for r in runs]
    title = f"*Recent runs{' for ' + t.escape(scope) if scope else ''}*"
    return _list_message(title, lines)


def customers(items: Sequence[ListedCustomer]) -> dict[str, Any]:
    if not items:
        return ephemeral(
            "You don't have access to any customer. Ask an admin to add you (or this channel) "
            "to a customer's access list."
        )
    lines = []
    for customer in items:
        lines.append(
            f"*{t.escape(customer.name)}* (`{t.escape(customer.id)}`) · "
            f"{t.escape(customer.timezone)}"
        )
        for account in customer.accounts:
            checks = ", ".join(t.escape(c) for c in account.checks) or "no checks"
            lines.append(f"      • `{t.escape(account.id)}` {t.escape(account.name)} — {checks}")
    return _list_message("*Customers*", lines)


def schedules(items: Sequence[ListedSchedule]) -> dict[str, Any]:
    if not items:
        return ephemeral("No schedules for the customers you can see.")
    lines = [
        f"*{t.escape(s.customer_name)}* `{t.escape(s.name)}` — `{t.escape(s.cron)}` · next "
        f"{s.next_fire.strftime('%a %d %b %H:%M %Z')} · "
        + (
            "last month's report (PDF)"
            if s.kind == "report"
            else ", ".join(t.escape(c) for c in s.checks) or "every configured check"
        )
        for s in items
    ]
    return _list_message("*Schedules*", lines)


# -- helpers ----------------------------------------------------------------------------------


def _listed_run(run: ListedRun, now: datetime) -> str:
    accounts = ", ".join(t.escape(a) for a in run.accounts[:3])
    if len(run.accounts) > 3:
        accounts += f" (+{len(run.accounts) - 3})"
    checks = ", ".join(t.escape(kinds.title(c)) for c in run.checks[:5])
    state = run.status if run.status in ("queued", "running") else (run.outcome or run.status)
    return (
        f"{mark(run.status, run.outcome)} *#{run.id}* {t.escape(run.customer_name)} / "
        f"{accounts} · {checks} · {t.user(run.requested_by)} · "
        f"{clock(run.created_at, run.tz, now)} · {t.escape(state)}"
    )


def _list_message(title: str, lines: Iterable[str]) -> dict[str, Any]:
    """A title and lines packed into sections of at most 3,000 characters, at most 50 blocks."""
    blocks: list[dict[str, Any]] = []
    chunk: list[str] = []
    size = 0
    items = list(lines)
    for index, line in enumerate(items):
        line = t.truncate(line, 1000)
        if size + len(line) + 1 > t.SECTION_TEXT and chunk:
            blocks.append(t.section("\n".join(chunk), f"{BlockId.LIST}_{len(blocks)}"))
            chunk, size = [], 0
        if len(blocks) == t.MAX_BLOCKS - 2:
            blocks.append(t.context([f"… and {len(items) - index} more"], f"{BlockId.LIST}_more"))
            chunk = []
            break
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(t.section("\n".join(chunk), f"{BlockId.LIST}_{len(blocks)}"))
    return {
        "response_type": "ephemeral",
        "text": t.fallback(title.strip("*")),
        "blocks": [t.section(title, BlockId.TEXT), *blocks][: t.MAX_BLOCKS],
    }
