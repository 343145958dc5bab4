"""The one vocabulary of marks shared by Slack, the web view and the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

SEVERITY_MARK = {
    "ok": "✅",
    "warn": "🟠",
    "crit": "🔴",
    "error": "⚠️",
    "skipped": "⏭️",
}
STATUS_MARK = {
    "queued": "⏸️",
    "running": "⏳",
    "cancelled": "✖️",
}
SEVERITY_WORD = {
    "ok": "OK",
    "warn": "Warning",
    "crit": "Critical",
    "error": "Error",
    "skipped": "Skipped",
}
SPARKS = "▁▂▃▄▅▆▇█"


def mark(status: str, outcome: str | None) -> str:
    """The mark for a run: its status while not finished, then its outcome."""
    if status in STATUS_MARK:
        return STATUS_MARK[status]
    if status == "failed":
        return SEVERITY_MARK["error"]
    return SEVERITY_MARK.get(outcome or "ok", "❔")


def sparkline(values: Sequence[float], width: int = 12) -> str:
    """``▁▂▃▄▅▆▇█`` for a series, resampled to at most ``width`` characters (by max)."""
    points = [v for v in values if v is not None]
    if not points:
        return ""
    if len(points) > width:
        size = len(points) / width
        points = [
            max(points[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
            for i in range(width)
        ]
    low, high = min(points), max(points)
    if high == low:
        return SPARKS[3] * len(points)
    scale = (len(SPARKS) - 1) / (high - low)
    return "".join(SPARKS[round((v - low) * scale)] for v in points)


def bar(fraction: float, width: int = 10) -> str:
    """``▕██████░░░░▏`` for a fraction (clamped to 0..1)."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "▕" + "█" * filled + "░" * (width - filled) + "▏"


def duration(seconds: float, *, precise: bool = True) -> str:
    """How long something took or has lasted, the one wording everywhere: ``42 s``, ``3 min``,
    ``2 h 5 min``, ``3 d 4 h`` (``precise=False``: the largest unit alone, ``2 h``)."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        hours, minutes = divmod(s // 60, 60)
        return f"{hours} h {minutes} min" if precise and minutes else f"{hours} h"
    days, hours = divmod(s // 3600, 24)
    return f"{days} d {hours} h" if precise and hours else f"{days} d"


def ago(seconds: float) -> str:
    """``3 min ago``: how long since something happened, to the largest unit (the web view's
    script keeps these fresh with the same rule, app/web/static/live.js)."""
    return f"{duration(seconds, precise=False)} ago"


def took(start: datetime | None, end: datetime | None) -> str:
    """`` in 42 s`` for a run that has finished, else "" (the card's and terminal's title)."""
    if start is None or end is None:
        return ""
    return f" in {duration(max(0.0, (end - start).total_seconds()))}"


def run_ref(run_id: int) -> str:
    return f"#{run_id}"


BLIND_MARK = "🕳️"
"""An account × check that could not look (a blind spot)."""
MAINTENANCE_MARK = "🛠️"
"""During a maintenance window."""
STANDING_MARK = {
    "acknowledged": "👀",
    "snoozed": "💤",
    "muted": "🔕",
    "maintenance": MAINTENANCE_MARK,
}
"""A finding's answer (shown beside its line with who and until)."""
CHANGE_MARK = {
    "new": "🆕",
    "regressed": "↩️",
    "flapping": "🔁",
}
"""What a finding's recent looks say."""
CHANGE_WORD = {
    "new": "new",
    "regressed": "came back",
    "flapping": "flapping",
}


def clock(moment: datetime | None, tz: tzinfo, now: datetime) -> str:
    """``07:03 WIB`` today, ``Fri 20 Nov 07:03 WIB`` on another day, in the customer's zone."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    today = now.astimezone(tz).date()
    if local.date() == today:
        return local.strftime("%H:%M %Z")
    if abs(local.date() - today) < timedelta(days=300):
        return local.strftime("%a %d %b %H:%M %Z")
    return local.strftime("%d %b %Y %H:%M %Z")
