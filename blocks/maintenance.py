"""Maintenance windows in words: what a window covers and when, and the reply to
``/monitor maintenance``. Pure builders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from app.config import format_window
from app.engine.maintenance import Window
from blocks import text as t
from blocks.marks import MAINTENANCE_MARK as MARK
from blocks.marks import clock
from blocks.messages import ephemeral


def scope(window: Window) -> str:
    """``arbel, arbel-dr · rds`` or ``every account · every check`` (escaped)."""
    accounts = ", ".join(t.escape(a) for a in window.accounts) if window.accounts else None
    checks = ", ".join(t.escape(c) for c in window.checks) if window.checks else None
    return f"{accounts or 'every account'} · {checks or 'every check'}"


def span(window: Window, tz: tzinfo, now: datetime) -> str:
    """``10:02 – 12:02 WIB (2h)`` in ``tz``, with the day when it is not today's; each end
    keeps its zone's name when a clock change lies between them (``02:00 CEST – 03:00 CET``)."""
    closes = clock(window.ends_at, tz, now)
    if window.starts_at.astimezone(tz).date() == window.ends_at.astimezone(tz).date():
        closes = window.ends_at.astimezone(tz).strftime("%H:%M %Z")  # the day is said once
    opens = clock(window.starts_at, tz, now).removesuffix(" " + closes.rsplit(" ", 1)[-1])
    return f"{opens} – {closes} ({format_window(window.ends_at - window.starts_at)})"


def line(window: Window, tz: tzinfo, now: datetime) -> str:
    """One window on one line: mark, name, scope, when, why."""
    why = f" — {t.escape(window.reason)}" if window.reason else ""
    return f"{MARK} *{t.escape(window.name)}* · {scope(window)} · {span(window, tz, now)}{why}"


def during_run(windows: Sequence[Window], tz: tzinfo, now: datetime, limit: int = 3) -> str:
    """The windows that were open while a run looked, one per line (a card's or a digest's
    context), or "" when none was."""
    lines = [line(window, tz, now) for window in windows[:limit]]
    if len(windows) > limit:
        lines.append(f"{MARK} … and {len(windows) - limit} more windows")
    if not lines:
        return ""
    return t.truncate("During maintenance: " + "\n".join(lines), t.SECTION_TEXT)


def started(window: Window, customer_name: str, tz: tzinfo, now: datetime) -> dict[str, Any]:
    """The reply to ``/monitor maintenance``: what was started, for whom, from when to when
    in the customer's zone, and why."""
    text = (
        f"{MARK} Maintenance started for *{t.escape(customer_name)}*\n"
        f"{line(window, tz, now)}\n"
        "Findings in it are labelled “during maintenance”, are not routed and do not raise "
        "the outcome until it ends."
    )
    return ephemeral(t.truncate(text, t.SECTION_TEXT))
