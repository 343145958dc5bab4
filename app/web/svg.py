"""Inline SVG drawn on the server: metric sparklines with their thresholds, and budget bars.

Pure functions from numbers to markup. Only numbers and escaped text go in, no ``style``
attributes come out (the CSP forbids inline styles), so colours come from CSS classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

SEVERITIES = ("ok", "warn", "crit", "error", "skipped")


@dataclass(frozen=True)
class Threshold:
    value: float
    severity: Literal["warn", "crit"]


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
    """A line over ``values`` (oldest first) with each threshold drawn as a dashed line.

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
    for t in thresholds:
        ty = _num(y(t.value))
        parts.append(
            f'<line class="limit limit-{_sev(t.severity)}" x1="0" x2="{width}" '
            f'y1="{ty}" y2="{ty}"/>'
        )
    parts.append(f'<polyline class="line" points="{line}"/>')
    if extreme is not None:
        pick = max if extreme == "max" else min
        index = pick(range(len(points)), key=lambda i: points[i])
        cx, cy = coords[index]
        parts.append(f'<circle class="dot" cx="{_num(cx)}" cy="{_num(cy)}" r="2.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


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
