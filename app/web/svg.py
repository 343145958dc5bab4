"""Inline SVG drawn on the server: metric sparklines with their thresholds, and budget bars.

Pure functions from numbers to markup. Only numbers and escaped text go in, no ``style``
attributes come out (the CSP forbids inline styles), so colours come from CSS classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

SEVERITIES = ("ok", "warn", "crit", "error", "skipped")


@dataclass(frozen=True)
class Threshold:
    value: float
    """Where the line is drawn, in the series' unit."""
    severity: Literal["warn", "crit"]
    label: str = ""
    """What the line means (``crit ≥ 90 %``), written beside it and as its tooltip."""


LABEL_SIZE = 9
"""The font size of a threshold's label, in viewBox units."""


def _sev(severity: str) -> str:
    return severity if severity in SEVERITIES else "ok"


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def sparkline(
    values: Sequence[float | None],
    *,
    thresholds: Sequence[Threshold] = (),
    severity: str = "ok",
    extreme: Literal["max", "min"] | None = None,
    label: str = "",
    width: int = 180,
    height: int = 40,
) -> Markup:
    """A line over ``values`` (oldest first) with each threshold drawn as a dashed line, its
    label (when it has one) written at its right end and given as its tooltip.

    The vertical range always includes the thresholds, so a line is never drawn off the
    chart; ``extreme`` marks the highest or lowest point with a dot.
    """
    points = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not points:
        return Markup("")
    limits = [t.value for t in thresholds if math.isfinite(t.value)]
    low, high = min(points + limits), max(points + limits)
    if high == low:
        low, high = low - 1, high + 1
    pad = 3.0
    span_y = height - 2 * pad
    step = (width - 2 * pad) / max(1, len(points) - 1)

    def y(value: float) -> float:
        return pad + (high - value) / (high - low) * span_y

    coords = [(pad + i * step, y(v)) for i, v in enumerate(points)]
    if len(coords) == 1:
        coords.append((width - pad, coords[0][1]))
    line = " ".join(f"{_num(x)},{_num(yy)}" for x, yy in coords)
    base = _num(height - pad)
    area = f"{_num(coords[0][0])},{base} {line} {_num(coords[-1][0])},{base}"
    parts = [
        f'<svg class="spark sev-{_sev(severity)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>" if label else "",
        f'<polygon class="area" points="{area}"/>',
    ]
    lines, labels = _limits([t for t in thresholds if math.isfinite(t.value)], y, width, height)
    parts += lines
    parts.append(f'<polyline class="line" points="{line}"/>')
    parts += labels  # over the series, on a halo of the background (hub.css)
    if extreme is not None:
        pick = max if extreme == "max" else min
        index = pick(range(len(points)), key=lambda i: points[i])
        cx, cy = coords[index]
        parts.append(f'<circle class="dot" cx="{_num(cx)}" cy="{_num(cy)}" r="2.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _limits(
    thresholds: Sequence[Threshold], y: Callable[[float], float], width: int, height: int
) -> tuple[list[str], list[str]]:
    """Each threshold's dashed line (its label as its tooltip), and its label as text: just
    above its line at the right end, else below it, else at the left end, where it stays on
    the chart and clear of the labels placed before it."""
    lines: list[str] = []
    labels: list[str] = []
    taken: list[tuple[bool, float]] = []
    for t in sorted(thresholds, key=lambda t: y(t.value)):
        ty, said = y(t.value), escape(t.label)
        tip = f"<title>{said}</title>" if t.label else ""
        lines.append(
            f'<line class="limit limit-{_sev(t.severity)}" x1="0" x2="{width}" '
            f'y1="{_num(ty)}" y2="{_num(ty)}">{tip}</line>'
        )
        if not t.label:
            continue
        right, at = _place(ty, taken, height)
        taken.append((right, at))
        x, anchor = (width - 2, "end") if right else (2, "start")
        labels.append(
            f'<text class="limit-label limit-label-{_sev(t.severity)}" x="{x}" '
            f'y="{_num(at)}" text-anchor="{anchor}" font-size="{LABEL_SIZE}">'
            f"{tip}{said}</text>"
        )
    return lines, labels


def _place(ty: float, taken: Sequence[tuple[bool, float]], height: int) -> tuple[bool, float]:
    """(at the right end?, baseline) for the label of a line at ``ty``."""
    options = [(right, at) for right in (True, False) for at in (ty - 2, ty + LABEL_SIZE + 1)]
    for right, at in options:
        inside = LABEL_SIZE - 1 <= at <= height
        clear = all(side != right or abs(at - other) >= LABEL_SIZE for side, other in taken)
        if inside and clear:
            return right, at
    return options[0]


def bar(
    fraction: float,
    *,
    severity: str = "ok",
    marker: float | None = None,
    label: str = "",
    width: int = 140,
    height: int = 14,
) -> Markup:
    """A horizontal bar filled to ``fraction`` (clamped to 0..1), with a tick at ``marker``
    (a forecast, say) when given; the scale ends at 100 %."""
    if not math.isfinite(fraction):
        return Markup("")
    filled = max(0.0, min(1.0, fraction)) * width
    parts = [
        f'<svg class="bar sev-{_sev(severity)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>" if label else "",
        f'<rect class="track" x="0" y="0" width="{width}" height="{height}" rx="3"/>',
        f'<rect class="fill" x="0" y="0" width="{_num(filled)}" height="{height}" rx="3"/>',
    ]
    if marker is not None and math.isfinite(marker):
        mx = _num(max(1.0, min(width - 1.0, marker * width)))
        parts.append(f'<line class="marker" x1="{mx}" x2="{mx}" y1="0" y2="{height}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
