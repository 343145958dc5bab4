"""RDS: every DB instance's CPU, free storage, connections and freeable memory over the window.

Per region: ``describe_db_instances`` (paginated), then ``get_metric_data`` carrying up to 500
metric queries per call, so a fleet of 120 instances costs one metrics call, not 480. The period
is chosen so each series has at most 48 points; a series is what the sparkline draws.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BeforeValidator, Field, model_validator

from app.config import Loc, LocatedError, format_window, window_setting
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource

MAX_QUERIES = 500
"""The most metric queries one ``get_metric_data`` call may carry."""
MAX_POINTS = 48
GIB = 1024**3
MIB = 1024**2
NOT_RUNNING = frozenset({"stopped", "stopping"})
BROKEN = frozenset(
    {
        "failed",
        "storage-full",
        "inaccessible-encryption-credentials",
        "incompatible-credentials",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "restore-error",
    }
)


Percent = Annotated[float, Field(ge=0, le=100)]
Amount = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


class Settings(CheckSettings):
    """Thresholds; ``None`` turns one off. CPU and connections alarm at or above, free storage
    and freeable memory at or below. Percentages are 0 to 100; no threshold may be ``nan`` or
    infinite (see :class:`CheckSettings`)."""

    window: Annotated[timedelta, BeforeValidator(window_setting)] = timedelta(hours=12)
    cpu_warn_pct: Percent | None = 80
    cpu_crit_pct: Percent | None = 90
    free_storage_warn_pct: Percent | None = 10
    free_storage_crit_pct: Percent | None = 5
    freeable_memory_warn_mib: Amount | None = 256
    freeable_memory_crit_mib: Amount | None = 128
    connections_warn: Count | None = None
    connections_crit: Count | None = None
    no_data: Literal["ok", "warn", "crit"] = "warn"

    @model_validator(mode="after")
    def _ordered(self) -> Settings:
        pairs = (
            ("cpu_warn_pct", "cpu_crit_pct", "CPU", True),
            ("connections_warn", "connections_crit", "connections", True),
            ("free_storage_warn_pct", "free_storage_crit_pct", "free storage", False),
            ("freeable_memory_warn_mib", "freeable_memory_crit_mib", "freeable memory", False),
        )
        found: list[tuple[Loc, str]] = []
        for warn_key, crit_key, what, high in pairs:
            warn, crit = getattr(self, warn_key), getattr(self, crit_key)
            if warn is None or crit is None or (crit >= warn if high else crit <= warn):
                continue
            # crit is the worse level: higher for what alarms when high, lower otherwise
            found.append(
                (
                    (crit_key,),
                    f"{crit_key} ({number(crit)}) must not be {'below' if high else 'above'} "
                    f"{warn_key} ({number(warn)}): the {'more' if high else 'less'} {what}, "
                    f"the worse, so crit is the {'higher' if high else 'lower'} number; "
                    "swap them or change one",
                )
            )
        if found:
            (loc, message), *more = found
            raise LocatedError(loc, message, tuple(more))
        return self


@dataclass(frozen=True)
class Metric:
    key: str  # series suffix: "<instance>:<key>"
    name: str  # CloudWatch metric name in AWS/RDS
    stat: str  # statistic per period
    scale: float  # raw value / scale = value in the series' unit


ASPECTS = {
    # series key: (aspect in the fingerprint, alarms when high?, unit of the threshold)
    "cpu": ("cpu", True, " %"),
    "free_storage_gib": ("storage", False, " %"),
    "freeable_memory_mib": ("memory", False, " MiB"),
    "connections": ("connections", True, ""),
}
METRICS = (
    Metric("cpu", "CPUUtilization", "Maximum", 1),
    Metric("free_storage_gib", "FreeStorageSpace", "Minimum", GIB),
    Metric("freeable_memory_mib", "FreeableMemory", "Minimum", MIB),
    Metric("connections", "DatabaseConnections", "Maximum", 1),
)


@dataclass(frozen=True)
class Finding:
    aspect: str
    severity: Severity
    text: str
    series: str | None = None


def period_for(window: timedelta) -> int:
    """Seconds per point: at most ``MAX_POINTS`` points, a multiple of 60 s (of 300 s beyond
    15 days, where CloudWatch keeps only 5-minute data)."""
    step = 300 if window > timedelta(days=15) else 60
    return max(step, math.ceil(window.total_seconds() / MAX_POINTS / step) * step)


def number(value: float) -> str:
    """93 → "93", 7.46 → "7.5", 1234.4 → "1,234": one decimal at most, thousands grouped."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}".removesuffix(".0")


def grade(value: float, warn: float | None, crit: float | None, high: bool) -> Severity:
    def crossed(limit: float | None) -> bool:
        return limit is not None and (value >= limit if high else value <= limit)

    if crossed(crit):
        return Severity.CRIT
    return Severity.WARN if crossed(warn) else Severity.OK


def threshold(
    severity: Severity, warn: float | None, crit: float | None, high: bool, unit: str
) -> str:
    if severity is Severity.OK:
        return ""
    limit = crit if severity is Severity.CRIT else warn
    return f" ({severity.value} {'≥' if high else '≤'} {number(limit or 0)}{unit})"


def findings(db: dict[str, Any], series: dict[str, list[float]], s: Settings) -> list[Finding]:
    """One finding per metric that has datapoints, graded against the settings."""
    out: list[Finding] = []

    def add(key: str, value: float, text: str, warn: float | None, crit: float | None) -> None:
        aspect, high, unit = ASPECTS[key]
        sev = grade(value, warn, crit, high)
        out.append(Finding(aspect, sev, text + threshold(sev, warn, crit, high, unit), key))

    if cpu := series.get("cpu"):
        add("cpu", max(cpu), f"CPU max {number(max(cpu))} %", s.cpu_warn_pct, s.cpu_crit_pct)
    allocated = float(db.get("AllocatedStorage") or 0)
    aurora = str(db.get("Engine", "")).startswith("aurora")  # cluster volume; no local free space
    if (free := series.get("free_storage_gib")) and allocated > 0 and not aurora:
        pct = min(free) / allocated * 100
        text = f"free {number(min(free))} GiB ({number(pct)} %)"
        add("free_storage_gib", pct, text, s.free_storage_warn_pct, s.free_storage_crit_pct)
    if memory := series.get("freeable_memory_mib"):
        text = f"memory min {number(min(memory))} MiB"
        warn, crit = s.freeable_memory_warn_mib, s.freeable_memory_crit_mib
        add("freeable_memory_mib", min(memory), text, warn, crit)
    if connections := series.get("connections"):
        text = f"connections max {number(max(connections))}"
        add("connections", max(connections), text, s.connections_warn, s.connections_crit)
    return out


def measured(db: dict[str, Any], series: dict[str, list[float]]) -> dict[str, float | None]:
    """The instance's figures over the window, kept for the monthly report: CPU peak, and the
    lowest free storage (GiB and % of allocated; None on Aurora or without datapoints)."""
    cpu, free = series.get("cpu"), series.get("free_storage_gib")
    allocated = float(db.get("AllocatedStorage") or 0)
    aurora = str(db.get("Engine", "")).startswith("aurora")
    low = min(free) if free and not aurora else None
    return {
        "cpu_max": round(max(cpu), 2) if cpu else None,
        "free_gib": round(low, 2) if low is not None else None,
        "free_pct": round(low / allocated * 100, 2) if low is not None and allocated else None,
    }


def assess(
    db: dict[str, Any], series: dict[str, list[float]], s: Settings, window: str
) -> list[Finding]:
    """What to say about one instance: its problems, or one line saying it is fine."""
    status = str(db.get("DBInstanceStatus", "unknown"))
    if status in NOT_RUNNING:
        return [Finding("status", Severity.OK, f"{status} — not checked")]
    found = findings(db, series, s)
    problems = [f for f in found if f.severity is not Severity.OK]
    if status in BROKEN:
        problems.insert(0, Finding("status", Severity.CRIT, f"status {status}"))
    if not found:
        return [
            *problems,
            Finding("data", Severity(s.no_data), f"no datapoints in the last {window}"),
        ]
    if problems:
        return problems
    return [Finding("health", Severity.OK, ", ".join(f.text for f in found), "cpu")]


class RdsCheck(Check):
    kind = "rds"
    Settings = Settings
    services = ("rds", "cloudwatch")
    actions = ("rds:DescribeDBInstances", "cloudwatch:GetMetricData")

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = ctx.settings
        assert isinstance(settings, Settings)
        period = period_for(ctx.window)
        window = format_window(ctx.window)
        per_region = await asyncio.gather(
            *(self._region(ctx, region, period) for region in ctx.account.regions)
        )
        multi = len(ctx.account.regions) > 1
        resources: list[dict[str, Any]] = []
        series: dict[str, list[float]] = {}
        worst: list[Severity] = []
        stopped = 0
        metrics: dict[str, dict[str, float | None]] = {}
        for region, (instances, data) in zip(ctx.account.regions, per_region, strict=True):
            for db in instances:
                name = db["DBInstanceIdentifier"]
                prefix = f"{region}/{name}" if multi else name
                stopped += db.get("DBInstanceStatus") in NOT_RUNNING
                metrics[prefix] = measured(db, data.get(name, {}))
                said = assess(db, data.get(name, {}), settings, window)
                worst.append(Severity.worst([f.severity for f in said]))
                for f in said:
                    extra: dict[str, Any] = {"status": db.get("DBInstanceStatus")}
                    if f.series and data.get(name, {}).get(f.series):
                        extra["series"] = key = f"{prefix}:{f.series}"
                        series[key] = data[name][f.series]
                    if f.series == "free_storage_gib":  # its thresholds are % of this
                        extra["allocated_gib"] = float(db.get("AllocatedStorage") or 0)
                    resources.append(
                        resource(
                            self.kind,
                            ctx.account.account_id,
                            region,
                            name,
                            f.aspect,
                            f.severity,
                            f.text,
                            **extra,
                        )
                    )
        resources.sort(key=lambda r: -Severity(r["severity"]).rank)
        counts = {
            sev.value: worst.count(sev) for sev in (Severity.CRIT, Severity.WARN, Severity.OK)
        }
        details = {
            "resources": resources,
            "instances": len(worst),
            "counts": counts,
            "stopped": stopped,
            "metrics": metrics,
            "period_s": period,
            "thresholds": settings.model_dump(mode="json", exclude={"window"}),
        }
        return CheckResult(
            Severity.worst(worst), summarize(counts, len(worst), stopped), details, series
        )

    async def _region(
        self, ctx: CheckContext, region: str, period: int
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, list[float]]]]:
        instances = await ctx.paginate(region, "rds", "describe_db_instances", "DBInstances")
        running = [
            d["DBInstanceIdentifier"]
            for d in instances
            if d.get("DBInstanceStatus") not in NOT_RUNNING
        ]
        data = await metric_data(ctx, region, running, period)
        return instances, data


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """The console page of DB instance ``resource_id``; the region's databases for a finding
    about the whole result (no resource)."""
    home = f"https://{region}.console.aws.amazon.com/rds/home?region={region}"
    if not resource_id or resource_id == "*":
        return f"{home}#databases:"
    return f"{home}#database:id={quote(resource_id, safe='')};is-cluster=false"


def summarize(counts: dict[str, int], total: int, stopped: int) -> str:
    if total == 0:
        return "no DB instances"
    noun = "instance" if total == 1 else "instances"
    note = f" ({stopped} stopped)" if stopped else ""
    problems = [
        f"{counts[sev]} {word}"
        for sev, word in (
            ("crit", "critical"),
            ("warn", "warning" if counts["warn"] == 1 else "warnings"),
        )
        if counts[sev]
    ]
    if not problems:
        return f"{total} {noun}, all OK{note}"
    return f"{total} {noun}: {', '.join(problems)}{note}"


async def metric_data(
    ctx: CheckContext, region: str, instances: list[str], period: int
) -> dict[str, dict[str, list[float]]]:
    """``{instance: {series key: values oldest first}}`` from as few calls as AWS allows."""
    pairs = [(db, m) for db in instances for m in METRICS]
    queries = [
        {
            "Id": f"q{n}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/RDS",
                    "MetricName": m.name,
                    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db}],
                },
                "Period": period,
                "Stat": m.stat,
            },
        }
        for n, (db, m) in enumerate(pairs)
    ]
    batches = await asyncio.gather(
        *(
            _query(ctx, region, queries[i : i + MAX_QUERIES], ctx.since, ctx.now)
            for i in range(0, len(queries), MAX_QUERIES)
        )
    )
    values = {qid: v for batch in batches for qid, v in batch.items()}
    out: dict[str, dict[str, list[float]]] = {db: {} for db in instances}
    for n, (db, m) in enumerate(pairs):
        out[db][m.key] = [round(v / m.scale, 3) for v in values.get(f"q{n}", [])]
    return out


async def _query(
    ctx: CheckContext, region: str, queries: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, list[float]]:
    """One batch of ≤ 500 queries, following NextToken; values by query id, oldest first."""
    values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
    kwargs: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    while True:
        page = await ctx.call(region, "cloudwatch", "get_metric_data", **kwargs)
        for item in page.get("MetricDataResults", []):
            values[item["Id"]].extend(float(v) for v in item.get("Values", []))
        if not page.get("NextToken"):
            return values
        kwargs["NextToken"] = page["NextToken"]
