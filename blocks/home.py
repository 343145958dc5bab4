"""The App Home tab: the runboard (docs/slack-home.md).

Pure: a :class:`~app.engine.runboard.Runboard` snapshot (already narrowed to what the viewer may
see), the viewer's customers and their next schedules, and *their* findings — the ones they
acknowledged and the snoozes that end soon, of those customers — and their customers' blind
spots (listed first) in, a ``home`` view out. Every
part has a cap and summarises what it leaves out ("… and 14 more"), so the view stays far inside
Slack's 100 blocks however much history there is: at most
``FIXED + 2 × MAX_RUNNING + MAX_RECENT`` blocks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from blocks import findings as answered
from blocks import maintenance as maintenance_words
from blocks import text as t
from blocks.card import clock
from blocks.ids import ActionId, BlockId
from blocks.marks import BLIND_MARK, SEVERITY_MARK, STATUS_MARK, duration, mark, run_ref
from checks import kinds

if TYPE_CHECKING:
    from app.config import Customer
    from app.engine.answers import Standing
    from app.engine.blind import BlindSpot
    from app.engine.maintenance import Window
    from app.engine.runboard import Runboard, Steps
    from app.models import Finding, Run

MAX_RUNNING = 8
MAX_RECENT = 15
MAX_NEXT = 10
MAX_YOURS = 10
"""Lines of "Your findings"; the rest are counted."""
MAX_WINDOWS = 8
"""Maintenance windows listed; the rest are counted."""
MAX_BLIND = 5
"""Blind spots listed by name at the top; the rest are counted."""
STALE_HEARTBEAT_S = 60
FIXED = 22
"""Blocks outside the running and recent rows: title, notice, blind spots, summary, buttons,
section headings, dividers, the "and N more" lines, your findings, customers, next."""
UTC = ZoneInfo("UTC")
_PROBLEMS = ("crit", "error", "warn")


@dataclass(frozen=True)
class NextRun:
    customer_name: str
    schedule: str
    at: datetime
    """Aware, in the customer's zone."""


def home_view(
    board: Runboard,
    customers: Mapping[str, Customer],
    upcoming: Sequence[NextRun],
    *,
    now: datetime,
    web_url: str | None = None,
    notice: str | None = None,
    yours: Sequence[tuple[Finding, Standing]] = (),
    blind: Sequence[BlindSpot] = (),
    windows: Mapping[str, Sequence[Window]] | None = None,
) -> dict[str, Any]:
    """The runboard as a ``home`` view for ``views.publish``; ``yours`` are the viewer's
    findings (acknowledged by them, or snoozed until soon), shown under "Your findings";
    ``blind`` the blind spots of the viewer's customers, listed first; ``windows`` their
    maintenance windows open now or opening within a week, by customer."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "block_id": BlockId.HOME_TITLE, "text": t.plain("Monitoring Hub")}
    ]
    if notice:
        blocks.append(t.context([t.escape(notice)], BlockId.HOME_NOTICE))
    blocks += _blind(blind, customers, now)
    blocks.append(t.section(_summary(board), BlockId.HOME_SUMMARY))
    buttons = [t.button("Run checks", ActionId.HOME_RUN_CHECKS, value="open", style="primary")]
    if web_url:
        buttons.append(t.button("Web view", ActionId.OPEN_WEB, url=web_url))
    blocks.append({"type": "actions", "block_id": BlockId.HOME_BUTTONS, "elements": buttons})
    blocks += _maintenance(windows or {}, customers, now)
    blocks += _yours(yours, customers, now)
    blocks += _running(board, customers, now)
    blocks += _recent(board, customers, now)
    blocks += _customers(board, customers, now, Counter(spot.customer for spot in blind))
    blocks += _next(upcoming, now)
    return {"type": "home", "blocks": blocks[: t.MAX_VIEW_BLOCKS]}


# -- parts ------------------------------------------------------------------------------------


def _summary(board: Runboard) -> str:
    day = board.day
    parts = [f"Queue *{board.queued}*", f"Running *{len(board.running)}*"]
    last = f"last 24 h: {day.get('runs', 0)} runs"
    for key, word in (("crit", "critical"), ("error", "errors"), ("failed", "failed")):
        if day.get(key):
            last += f", {day[key]} {word}"
    return " · ".join([*parts, last])


def _heading(title: str, key: str) -> list[dict[str, Any]]:
    return [
        {"type": "divider", "block_id": f"{BlockId.HOME_SECTION}_{key}_rule"},
        t.section(f"*{title}*", f"{BlockId.HOME_SECTION}_{key}"),
    ]


def _more(key: str, hidden: int, what: str) -> list[dict[str, Any]]:
    if hidden <= 0:
        return []
    return [t.context([f"… and {hidden} more {what}"], f"{BlockId.HOME_MORE}_{key}")]


def _running(
    board: Runboard, customers: Mapping[str, Customer], now: datetime
) -> list[dict[str, Any]]:
    if not board.running:
        return []
    blocks = _heading("Running", "running")
    for run in board.running[:MAX_RUNNING]:
        steps = board.steps.get(run.id, {})
        line = (
            f"▶ *{run_ref(run.id)}* {_what(run, customers)} · "
            f"{len(steps)} of {len(run.targets)} · {_alive(run, now)}"
        )
        block = t.section(line, f"{BlockId.HOME_RUNNING}_{run.id}")
        if run.cancel_requested_by:
            block["text"] = t.mrkdwn(line + " · cancelling…")
        else:
            block["accessory"] = _cancel(run)
        blocks.append(block)
        blocks.append(t.context([step_list(run, steps)], f"{BlockId.HOME_STEPS}_{run.id}"))
    return blocks + _more("running", len(board.running) - MAX_RUNNING, "running")


def _recent(
    board: Runboard, customers: Mapping[str, Customer], now: datetime
) -> list[dict[str, Any]]:
    blocks = _heading("Recent", "recent")
    if not board.recent:
        return [*blocks, t.context(["No finished runs yet."], f"{BlockId.HOME_MORE}_recent")]
    for run in board.recent[:MAX_RECENT]:
        tz = _tz(run, customers)
        parts = [
            f"{mark(run.status, run.outcome)} *{run_ref(run.id)}* {_what(run, customers)}",
            _checks(run),
            _who(run.requested_by),
            clock(run.created_at, tz, now),
        ]
        took = _took(run)
        if took:
            parts.append(took)
        block = t.section(" · ".join(p for p in parts if p), f"{BlockId.HOME_RECENT}_{run.id}")
        if retryable(run, board.steps.get(run.id, {})):
            block["accessory"] = t.button(
                "Retry", ActionId.HOME_RETRY, value=str(run.id), style="primary"
            )
        blocks.append(block)
    return blocks + _more("recent", len(board.recent) - MAX_RECENT, "recent runs")


def _blind(
    blind: Sequence[BlindSpot], customers: Mapping[str, Customer], now: datetime
) -> list[dict[str, Any]]:
    """``🕳️ Not checked: Aryanoble · arbel · backup since Tue 07:00 WIB — why``, oldest first;
    nothing when every account × check could look."""
    lines = []
    for spot in blind:
        customer = customers.get(spot.customer)
        if customer is None:
            continue
        where = " · ".join(t.escape(p) for p in (customer.name, spot.account, spot.check))
        since = clock(spot.since, customer.tz, now)
        lines.append(f"{BLIND_MARK} *Not checked:* {where} since {since} — {t.escape(spot.why)}")
    if not lines:
        return []
    if len(lines) > MAX_BLIND:
        lines = [*lines[: MAX_BLIND - 1], f"{BLIND_MARK} … and {len(lines) - MAX_BLIND + 1} more"]
    text = t.fit_lines(lines, more=f"{BLIND_MARK} … and {{n}} more")
    return [t.section(text, BlockId.HOME_BLIND)]


def _maintenance(
    windows: Mapping[str, Sequence[Window]], customers: Mapping[str, Customer], now: datetime
) -> list[dict[str, Any]]:
    """``Maintenance``: the windows open now, then those opening within a week, soonest
    first, each with its customer; nothing when there are none."""
    found = [
        (window, customer)
        for customer_id, customer in customers.items()
        for window in windows.get(customer_id, ())
        if window.ends_at > now
    ]
    if not found:
        return []
    found.sort(key=lambda pair: (pair[0].starts_at > now, pair[0].starts_at, pair[1].name))
    lines = []
    for window, customer in found:
        state = "now" if window.starts_at <= now else "next"
        said = maintenance_words.line(window, customer.tz, now)
        lines.append(f"*{t.escape(customer.name)}* ({state}) {said}")
    if len(lines) > MAX_WINDOWS:
        lines = [*lines[: MAX_WINDOWS - 1], f"… and {len(lines) - MAX_WINDOWS + 1} more windows"]
    text = t.fit_lines(lines, more="… and {n} more windows")
    return [*_heading("Maintenance", "maintenance"), t.section(text, BlockId.HOME_MAINTENANCE)]


def _customers(
    board: Runboard,
    customers: Mapping[str, Customer],
    now: datetime,
    blind: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    if not customers:
        return [
            *_heading("Customers", "customers"),
            t.context(
                ["You can't see any customer yet. Ask an admin to add you to an access list."],
                BlockId.HOME_CUSTOMERS,
            ),
        ]
    lines = []
    ordered = sorted(customers.values(), key=lambda c: _rank(board.latest.get(c.id)))
    for customer in ordered:
        run = board.latest.get(customer.id)
        name = f"*{t.escape(customer.name)}*"
        if run is None:
            lines.append(f"▫️ {name} — no runs yet")
            continue
        when = clock(run.finished_at or run.created_at, customer.tz, now)
        found = _findings(run, board.steps.get(run.id, {}))
        sign = mark(run.status, run.outcome)
        unseen = (blind or {}).get(customer.id, 0)
        if unseen:  # never "all clear" while something is not checked
            sign = BLIND_MARK if sign == SEVERITY_MARK["ok"] else sign
            found += f" · {BLIND_MARK} {unseen} not checked"
        lines.append(f"{sign} {name} — {when}: {found}")
    text = t.fit_lines(lines, more="… and {n} more customers")
    return [*_heading("Customers", "customers"), t.section(text, BlockId.HOME_CUSTOMERS)]


def _yours(
    yours: Sequence[tuple[Finding, Standing]], customers: Mapping[str, Customer], now: datetime
) -> list[dict[str, Any]]:
    """``Your findings``: snoozes ending soonest first, then what you acknowledged, worst
    first; nothing at all when there are none."""
    if not yours:
        return []
    ordered = sorted(yours, key=_your_order)
    lines = [_your_line(found, standing, customers, now) for found, standing in ordered]
    if len(lines) > MAX_YOURS:
        lines = [*lines[:MAX_YOURS], f"… and {len(lines) - MAX_YOURS} more findings"]
    text = t.fit_lines(lines, more="… and {n} more findings")
    return [*_heading("Your findings", "yours"), t.section(text, BlockId.HOME_FINDINGS)]


def _your_order(pair: tuple[Finding, Standing]) -> tuple[int, float, int, int]:
    found, standing = pair
    if standing.state == "snoozed" and standing.until is not None:
        return 0, standing.until.timestamp(), 0, found.id
    return 1, 0.0, 0 if found.severity == "crit" else 1, found.id


def _your_line(
    found: Finding, standing: Standing, customers: Mapping[str, Customer], now: datetime
) -> str:
    """``🔴 *Aryanoble* · arbel · `arbel-prod-db` CPU max 93 % · open 2 d · 💤 until 09:00 WIB
    by @bob``: who and until in the customer's time zone."""
    customer = customers.get(found.customer_id)
    tz = customer.tz if customer else UTC
    name = t.escape(customer.name if customer else found.customer_id)
    what = f"`{t.escape(found.resource)}`" if found.resource else t.escape(kinds.title(found.check))
    note = answered.notes(answered.age(found, now), answered.answer_note(standing, tz, now))
    return (
        f"{SEVERITY_MARK.get(found.severity, '❔')} *{name}* · {t.escape(found.account)} · "
        f"{what} {t.escape(t.truncate(found.summary, 120))} · {note}"
    )


def _next(upcoming: Sequence[NextRun], now: datetime) -> list[dict[str, Any]]:
    if not upcoming:
        return []
    lines = [
        f"{t.escape(u.customer_name)} {t.escape(u.schedule)} — {_day(u.at, now)}"
        for u in upcoming[:MAX_NEXT]
    ]
    if len(upcoming) > MAX_NEXT:
        lines.append(f"… and {len(upcoming) - MAX_NEXT} more schedules")
    return [*_heading("Next", "next"), t.section(t.fit_lines(lines), BlockId.HOME_NEXT)]


# -- pieces -----------------------------------------------------------------------------------


def step_list(run: Run, steps: Steps) -> str:
    """``✅ arbel rds  ⏳ arbel backup  ⏸️ arbel budget``: each account × check with its state —
    its result's mark when done, ⏳ while the run is running, ⏸️ while it waits in the queue."""
    waiting = STATUS_MARK["running"] if run.status == "running" else STATUS_MARK["queued"]
    ordered = sorted(
        run.targets, key=lambda x: ((x["account"], x["check"]) not in steps, x["account"])
    )
    items = []
    for target in ordered:
        key = (target["account"], target["check"])
        state = SEVERITY_MARK.get(steps[key], "❔") if key in steps else waiting
        label = t.escape(kinds.title(key[1]))
        items.append(f"{state} {t.escape(key[0])} {label}")
    return _fit_inline(items)


def _fit_inline(items: list[str], limit: int = 2000) -> str:
    out: list[str] = []
    used = 0
    for index, item in enumerate(items):
        tail = len(items) - index
        if used + len(item) + 24 > limit and tail > 0:
            out.append(f"… and {tail} more")
            break
        out.append(item)
        used += len(item) + 2
    return "  ".join(out) or " "


def retryable(run: Run, steps: Steps) -> bool:
    """Retry is offered when the run failed or a check could not look (the card's rule)."""
    return run.status == "failed" or "error" in steps.values()


def _cancel(run: Run) -> dict[str, Any]:
    button = t.button("Cancel", ActionId.HOME_CANCEL, value=str(run.id), style="danger")
    button["confirm"] = {
        "title": t.plain("Cancel this run?", 100),
        "text": t.plain(f"Run #{run.id} stops; finished checks stay on its card.", 300),
        "confirm": t.plain("Cancel run", 30),
        "deny": t.plain("Keep running", 30),
        "style": "danger",
    }
    return button


def _alive(run: Run, now: datetime) -> str:
    beat = run.heartbeat_at or run.started_at
    if beat is None:
        return "starting"
    age = max(0, int((now - beat).total_seconds()))
    if age >= STALE_HEARTBEAT_S:
        return f"{SEVERITY_MARK['error']} no heartbeat for {duration(age)}"
    return f"alive {age} s ago"


def _took(run: Run) -> str:
    if run.started_at is None or run.finished_at is None:
        return ""
    return duration((run.finished_at - run.started_at).total_seconds())


def _what(run: Run, customers: Mapping[str, Customer]) -> str:
    customer = customers.get(run.customer_id)
    name = t.escape(customer.id if customer else run.customer_id)
    accounts = list(dict.fromkeys(x["account"] for x in run.targets))
    if len(accounts) > 3:
        return f"{name} / {len(accounts)} accounts"
    return f"{name} / {', '.join(t.escape(a) for a in accounts)}" if accounts else name


def _checks(run: Run) -> str:
    checks = list(dict.fromkeys(x["check"] for x in run.targets))
    return ", ".join(t.escape(c) for c in checks[:5]) + (" …" if len(checks) > 5 else "")


def _who(requested_by: str) -> str:
    if requested_by.startswith("schedule:"):
        return f"schedule {t.escape(requested_by.removeprefix('schedule:'))}"
    return t.user(requested_by)


def _tz(run: Run, customers: Mapping[str, Customer]) -> tzinfo:
    customer = customers.get(run.customer_id)
    return customer.tz if customer else UTC


def _findings(run: Run, steps: Steps) -> str:
    if run.status in ("failed", "cancelled"):
        return run.status
    counts = {s: sum(1 for v in steps.values() if v == s) for s in _PROBLEMS}
    words = {"crit": "critical", "error": "could not check", "warn": "warning"}
    found = [f"{counts[s]} {words[s]}" for s in _PROBLEMS if counts[s]]
    if not found:
        return "all OK"
    checks = sorted({c for (_, c), v in steps.items() if v in _PROBLEMS})
    return f"{', '.join(found)} ({', '.join(t.escape(c) for c in checks)})"


def _rank(run: Run | None) -> int:
    order = {"crit": 0, "error": 1, "warn": 2}
    if run is None:
        return 5
    if run.status == "failed":
        return 1
    return order.get(run.outcome or "ok", 3)


def _day(at: datetime, now: datetime) -> str:
    local_now = now.astimezone(at.tzinfo)
    if at.date() == local_now.date():
        return "today " + at.strftime("%H:%M %Z")
    if (at.date() - local_now.date()).days == 1:
        return "tomorrow " + at.strftime("%H:%M %Z")
    return at.strftime("%a %d %b %H:%M %Z")
