"""The one vocabulary of marks shared by Slack, the web view and the terminal."""

from __future__ import annotations

import math
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


SPARK_SPAN = 0.5
"""The smallest change a sparkline draws full height, as a share of the series' largest
magnitude: a smaller change is drawn that much smaller, about the middle, so 8.2 → 7.5 GiB moves
a step or two instead of falling from top to bottom."""
_UNITS = (("_gib", " GiB"), ("_mib", " MiB"), ("_pct", " %"), ("cpu", " %"))


def _resampled(values: Sequence[float | None], width: int) -> list[float]:
    """The finite values, at most ``width`` of them (each the max of its stretch)."""
    points = [float(v) for v in values if v is not None and math.isfinite(v)]
    if len(points) <= width:
        return points
    size = len(points) / width
    return [
        max(points[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
        for i in range(width)
    ]


def _scale(points: Sequence[float]) -> tuple[float, float]:
    """The bottom and height of the drawing: the series' own range, widened about its middle
    to at least :data:`SPARK_SPAN` of its largest magnitude."""
    low, high = min(points), max(points)
    span = max(high - low, SPARK_SPAN * max(abs(low), abs(high)))
    return (low + high - span) / 2, span


def sparkline(values: Sequence[float | None], width: int = 12) -> str:
    """``▁▂▃▄▅▆▇█`` for a series, resampled to at most ``width`` characters (by max).

    A flat series is a flat line in the middle; a series that moves by little next to its size
    stays near the middle (see :data:`SPARK_SPAN`), so the height of a step means the same
    share of the values whatever the series.
    """
    points = _resampled(values, width)
    if not points:
        return ""
    size = max(abs(v) for v in points)
    if min(points) == max(points):
        return SPARKS[3] * len(points)
    points = [v / size for v in points]  # -1 to 1: no sum below overflows
    bottom, span = _scale(points)
    top = len(SPARKS) - 1
    # half-way rounds down, so a value at the middle draws like a flat series
    return "".join(
        SPARKS[min(top, max(0, math.ceil((v - bottom) / span * top - 0.5)))] for v in points
    )


def unit_of(series: str) -> str:
    """The unit a series is in, from its name (``db:free_storage_gib`` → `` GiB``), else ""."""
    name = series.rsplit(":", 1)[-1].lower()
    return next((unit for end, unit in _UNITS if name.endswith(end)), "")


def trend(values: Sequence[float | None], unit: str = "", width: int = 12) -> str:
    """The sparkline, and the range it spans (``▅▅▄▄▃ 7.5–8.2 GiB``) when that is small next
    to the values, the drawing widened to show it: its height alone would not say how small."""
    line = sparkline(values, width)
    points = _resampled(values, len(values))  # the range of every value, not of the drawing's
    if not points or min(points) == max(points):
        return line
    low, high = min(points), max(points)
    if high - low >= SPARK_SPAN * max(abs(low), abs(high)):
        return line
    return f"{line} {_figure(low)}–{_figure(high)}{unit}"


def _figure(value: float) -> str:
    """7.46 → "7.5", 1234.4 → "1,234" (the checks' wording of a figure)."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}".removesuffix(".0")


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
