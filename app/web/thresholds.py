"""The threshold lines of the web view's sparklines: where each is drawn, in the series' unit,
and what it says (``crit ≥ 90 %``).

A resource may carry its own ``limits`` (``{"warn": 80, "crit": 90, "direction": "high",
"unit": " %"}``); RDS series take theirs from the run's settings (``details["thresholds"]``).
Free storage is graded in % of the allocated size but charted in GiB, so its lines are moved
to GiB with the instance's allocated size and say both: ``warn ≤ 10 % = 10 GiB``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from app.models import Result
from app.web.svg import Threshold
from checks import rds

Extreme = Literal["max", "min"]

RDS_SETTINGS: dict[str, tuple[str, str]] = {
    "cpu": ("cpu_warn_pct", "cpu_crit_pct"),
    "free_storage_gib": ("free_storage_warn_pct", "free_storage_crit_pct"),
    "freeable_memory_mib": ("freeable_memory_warn_mib", "freeable_memory_crit_mib"),
    "connections": ("connections_warn", "connections_crit"),
}
"""RDS series suffix → its (warn, crit) keys in the RDS settings (units: :data:`rds.ASPECTS`)."""
STORAGE = "free_storage_gib"


def limits(
    res: Mapping[str, Any], result: Result, key: str
) -> tuple[list[Threshold], Extreme | None]:
    """The warn and crit lines for the series ``key`` of ``res``, labelled, and which extreme
    of it matters (the dot on the chart)."""
    own = res.get("limits")
    if isinstance(own, Mapping):
        high = own.get("direction") != "low"
        unit = str(own.get("unit") or "")
        pairs = _pairs(own.get("warn"), own.get("crit"))
        return [_line(sev, v, high, unit) for sev, v in pairs], _extreme(high)
    metric = key.rsplit(":", 1)[-1]
    if result.check != "rds" or metric not in RDS_SETTINGS:
        return [], None
    _, high, unit = rds.ASPECTS[metric]
    settings = result.details.get("thresholds") or {}
    pairs = _pairs(*(settings.get(name) for name in RDS_SETTINGS[metric]))
    if metric != STORAGE:
        return [_line(sev, v, high, unit) for sev, v in pairs], _extreme(high)
    allocated = allocated_gib(res, result, key)
    if allocated is None:
        return [], _extreme(high)
    return [_storage(sev, v, allocated) for sev, v in pairs], _extreme(high)


def allocated_gib(res: Mapping[str, Any], result: Result, key: str) -> float | None:
    """The instance's allocated storage in GiB: the resource's ``allocated_gib``, else (runs
    recorded before it was kept) worked out from its lowest free storage in GiB and in %."""
    own = _number(res.get("allocated_gib"))
    if own is not None and own > 0:
        return own
    metrics = result.details.get("metrics")
    figures = metrics.get(key.rsplit(":", 1)[0]) if isinstance(metrics, Mapping) else None
    if not isinstance(figures, Mapping):
        return None
    gib, pct = _number(figures.get("free_gib")), _number(figures.get("free_pct"))
    if gib is not None and pct is not None and gib > 0 and pct > 0:
        return gib / pct * 100
    return None


def _pairs(warn: Any, crit: Any) -> list[tuple[Literal["warn", "crit"], float]]:
    """(severity, value) of the thresholds that are set."""
    found: list[tuple[Literal["warn", "crit"], float | None]] = [
        ("warn", _number(warn)),
        ("crit", _number(crit)),
    ]
    return [(sev, value) for sev, value in found if value is not None]


def _line(severity: Literal["warn", "crit"], value: float, high: bool, unit: str) -> Threshold:
    return Threshold(value, severity, f"{severity} {_sign(high)} {rds.number(value)}{unit}")


def _storage(severity: Literal["warn", "crit"], pct: float, allocated: float) -> Threshold:
    gib = pct / 100 * allocated
    said = f"{severity} {_sign(False)} {rds.number(pct)} % = {rds.number(gib)} GiB"
    return Threshold(gib, severity, said)


def _sign(high: bool) -> str:
    return "≥" if high else "≤"


def _extreme(high: bool) -> Extreme:
    return "max" if high else "min"


def _number(value: Any) -> float | None:
    """A finite number, else None (a threshold turned off, or not a number at all)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
