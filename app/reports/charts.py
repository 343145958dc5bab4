"""A report's charts as inline SVG: daily uptime bars, a database's daily CPU peak and lowest
free storage, and each budget's actual and forecast against its limit.

Pure functions from report values to markup. Each chart is an ``<svg role="img">`` whose
``aria-label`` and ``<title>`` say its figures in words (the one wording, :mod:`words`), with a
``viewBox`` so it scales to a phone's width, and colours given as attributes in a palette that
prints on white (the web page's stylesheet may restyle them by class; app.web.svg's sparklines
are the live pages' and sit in a layer above this one). Only numbers and escaped text go in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

from markupsafe import Markup, escape

from app.reports import words
from app.reports.model import Budget, Database, Endpoint, Period

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 320
"""Every chart's width in viewBox units; it is drawn at the width of its container."""
FONT = 10

INK = "#1c2128"
MUTED = "#5b6470"
TRACK = "#e6e9ed"
UP = "#1a7f37"
LOST = "#f4b8bd"
"""The part of a day's bar that was down."""
LINE = "#0a62c9"
WITHIN = "#0a62c9"
WITHIN_FORECAST = "#8db8ea"
OVER = "#c8202c"
OVER_FORECAST = "#ec9aa0"

BUDGET_SCALE_CAP = 200.0
"""A budget's bars end at this % of its limit (the label still says the whole figure)."""


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _svg(kind: str, height: int, label: str, body: Sequence[str]) -> Markup:
    said = escape(label)
    return Markup(
        f'<svg xmlns="{SVG_NS}" class="chart chart-{kind}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{said}">'
        f"<title>{said}</title>{''.join(body)}</svg>"
    )


def _rect(cls: str, x: float, y: float, w: float, h: float, fill: str) -> str:
    return (
        f'<rect class="{cls}" x="{_num(x)}" y="{_num(y)}" width="{_num(max(0.0, w))}" '
        f'height="{_num(max(0.0, h))}" fill="{fill}"/>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", fill: str = MUTED) -> str:
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" font-size="{FONT}" text-anchor="{anchor}" '
        f'fill="{fill}" font-family="sans-serif">{escape(text)}</text>'
    )


def _short(day: date) -> str:
    return f"{day.day} {day:%b}"


def _days(period: Period, n: int) -> list[date]:
    return [period.first + timedelta(days=i) for i in range(n)]


def _clean(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


def _missing(values: Sequence[float | None]) -> str:
    gaps = sum(v is None for v in values)
    return f"; no look on {words.count(gaps, 'day')}" if gaps else ""


def daily_uptime(endpoint: Endpoint, period: Period) -> Markup:
    """One bar a day on a 0–100 % scale, green up to the day's uptime and pale red for the
    rest; a day without a look is left empty. Nothing at all when no day had a look."""
    values = _clean(endpoint.daily_uptime)
    seen = [
        (d, v) for d, v in zip(_days(period, len(values)), values, strict=True) if v is not None
    ]
    if not seen:
        return Markup("")
    label = f"Daily uptime of {endpoint.name}, {period.label}: {words.pct(endpoint.uptime_pct)}"
    low_day, low = min(seen, key=lambda p: p[1])
    label += (
        f" overall; lowest {words.pct(low)} on {words.day(low_day)}"
        if low < 100
        else " overall; every day with a look 100 %"
    )
    label += _missing(values)
    top, bottom, height = 4.0, 60.0, 74
    slot = WIDTH / len(values)
    gap = min(2.0, slot * 0.2)
    body: list[str] = []
    for i, (day, value) in enumerate(zip(_days(period, len(values)), values, strict=True)):
        if value is None:
            continue
        x, w = i * slot + gap / 2, slot - gap
        up = (bottom - top) * max(0.0, min(100.0, value)) / 100
        body.append(
            f'<g class="day"><title>{escape(words.day(day))}: {escape(words.pct(value))}</title>'
            + _rect("slot lost" if value < 100 else "slot", x, top, w, bottom - top, LOST)
            + _rect("up", x, bottom - up, w, up, UP)
            + "</g>"
        )
    first, last = period.first, period.first + timedelta(days=len(values) - 1)
    body.append(_text(0, height - 2, _short(first)))
    body.append(_text(WIDTH, height - 2, _short(last), anchor="end"))
    return _svg("uptime", height, label, body)


def _daily_line(
    values: Sequence[float | None], period: Period, kind: str, label: str, extreme: str
) -> Markup:
    """A line a day on a 0–100 % scale, broken where a day had no look, with gridlines at 0, 50
    and 100 % and a dot on the ``extreme`` (``max`` or ``min``) day."""
    clean = _clean(values)
    left, top, bottom, height = 34.0, 6.0, 62.0, 76
    slot = (WIDTH - left) / max(1, len(clean))

    def xy(i: int, value: float) -> tuple[float, float]:
        return left + (i + 0.5) * slot, bottom - (bottom - top) * max(0.0, min(100.0, value)) / 100

    body: list[str] = []
    for level in (0, 50, 100):
        y = bottom - (bottom - top) * level / 100
        body.append(
            f'<line class="grid" x1="{_num(left)}" x2="{WIDTH}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="{TRACK}" stroke-width="1"/>'
        )
        body.append(_text(left - 4, y + 3, f"{level} %", anchor="end"))
    runs: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(clean):
        if value is None:
            runs.append([])
        else:
            runs[-1].append(xy(i, value))
    for run in runs:
        if len(run) == 1:
            x, y = run[0]
            body.append(
                f'<circle class="point" cx="{_num(x)}" cy="{_num(y)}" r="1.8" fill="{LINE}"/>'
            )
        elif run:
            points = " ".join(f"{_num(x)},{_num(y)}" for x, y in run)
            body.append(
                f'<polyline class="line" points="{points}" fill="none" stroke="{LINE}" '
                'stroke-width="1.8" stroke-linejoin="round"/>'
            )
    seen = [(i, v) for i, v in enumerate(clean) if v is not None]
    pick = max if extreme == "max" else min
    at, value = pick(seen, key=lambda p: p[1])
    x, y = xy(at, value)
    body.append(f'<circle class="dot" cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{INK}"/>')
    first, last = period.first, period.first + timedelta(days=len(clean) - 1)
    body.append(_text(left, height - 2, _short(first)))
    body.append(_text(WIDTH, height - 2, _short(last), anchor="end"))
    return _svg(kind, height, label, body)


def _series_words(values: Sequence[float | None], period: Period, extreme: str) -> str:
    """``40 % on 1 Nov 2026 to 69 % on 30 Nov 2026; highest 69 % on 30 Nov 2026``."""
    days = _days(period, len(values))
    seen = [(d, v) for d, v in zip(days, _clean(values), strict=True) if v is not None]
    (d0, v0), (d1, v1) = seen[0], seen[-1]
    pick, word = (max, "highest") if extreme == "max" else (min, "lowest")
    dx, vx = pick(seen, key=lambda p: p[1])
    return (
        f"{words.pct(v0)} on {words.day(d0)} to {words.pct(v1)} on {words.day(d1)}; "
        f"{word} {words.pct(vx)} on {words.day(dx)}{_missing(values)}"
    )


def database_cpu(database: Database, period: Period) -> Markup:
    """The highest CPU each day (nothing when no day had a figure)."""
    values = database.daily_cpu_peak
    if all(v is None for v in _clean(values)):
        return Markup("")
    label = (
        f"Highest CPU each day on {database.name}, {period.label}: "
        f"{_series_words(values, period, 'max')}"
    )
    return _daily_line(values, period, "cpu", label, "max")


def database_storage(database: Database, period: Period) -> Markup:
    """The lowest free storage each day (nothing when no day had a figure)."""
    values = database.daily_free_pct
    if all(v is None for v in _clean(values)):
        return Markup("")
    label = (
        f"Lowest free storage each day on {database.name}, {period.label}: "
        f"{_series_words(values, period, 'min')}"
    )
    return _daily_line(values, period, "storage", label, "min")


def budget(item: Budget) -> Markup:
    """The actual (and forecast) spend as bars against the limit, marked by a line: blue up to
    the limit, red beyond it; the scale runs to the larger of 100 % and the figures (at most
    :data:`BUDGET_SCALE_CAP`)."""
    actual, forecast = item.actual_pct, item.forecast_pct
    label = (
        f"Budget {item.name} ({item.account}): actual {words.money(item.actual, item.unit)}, "
        f"{words.pct(actual, 0)} of the {words.money(item.limit, item.unit)} limit"
    )
    if forecast is not None and item.forecast is not None:
        label += f"; forecast {words.money(item.forecast, item.unit)}, {words.pct(forecast, 0)}"
    rows = [("actual", actual, WITHIN, OVER)]
    if forecast is not None and math.isfinite(forecast):
        rows.append(("forecast", forecast, WITHIN_FORECAST, OVER_FORECAST))
    shown = [max(0.0, p) if math.isfinite(p) else 0.0 for _, p, _, _ in rows]
    scale = min(BUDGET_SCALE_CAP, max([100.0, *shown]))
    left, right, top, bar_h, step = 92.0, WIDTH - 2.0, 14.0, 14.0, 20.0

    def x(pct: float) -> float:
        return left + (right - left) * min(pct, scale) / scale

    height = int(top + step * len(rows) + 2)
    body: list[str] = []
    for n, ((name, _, within, over), pct) in enumerate(zip(rows, shown, strict=True)):
        y = top + n * step
        body.append(_text(0, y + bar_h - 3, f"{name} {words.pct(pct, 0)}", fill=INK))
        body.append(_rect(f"track {name}", left, y, right - left, bar_h, TRACK))
        body.append(_rect(f"within {name}", left, y, x(min(pct, 100.0)) - left, bar_h, within))
        if pct > 100:
            body.append(_rect(f"over {name}", x(100), y, x(pct) - x(100), bar_h, over))
    limit = x(100)
    body.append(
        f'<line class="limit" x1="{_num(limit)}" x2="{_num(limit)}" y1="{_num(top - 3)}" '
        f'y2="{height}" stroke="{INK}" stroke-width="1.5" stroke-dasharray="3 2"/>'
    )
    said = f"limit {words.money(item.limit, item.unit)}"
    body.append(_text(limit, top - 5, said, anchor="end" if limit > left + 60 else "start"))
    return _svg("budget", height, label, body)
