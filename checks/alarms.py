"""Alarms: CloudWatch alarms in ALARM in each account region, labelled from config, and the
alarms that would not tell anyone: stuck in INSUFFICIENT_DATA, or with their actions off.

Asks AWS for every alarm, metric and composite, in one ``describe_alarms`` call per region and
page of 100 (no state filter: the two quiet cases are in the same answer, so they cost no
extra call). Every alarm in ALARM is a finding of the configured severity, with since-when and
AWS's own reason; an alarm in INSUFFICIENT_DATA for longer than ``insufficient_hours``, and an
alarm whose actions are disabled, are warnings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import Field

from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource

MAX_REASON = 160
"""Characters of AWS's state reason kept in a summary line; ``reason`` keeps up to 1000."""
PAGE = 100
"""The most alarms a ``describe_alarms`` page holds."""
NAMED = 3
"""Alarms named in a summary, per kind of problem."""


class Settings(CheckSettings):
    labels: dict[str, str] = Field(default_factory=dict)
    """Alarm-name glob → label, e.g. ``{"arbel-*": "Arbel"}``; the first match wins."""
    severity: Literal["warn", "crit"] = "crit"
    """The severity of an alarm in ALARM."""
    insufficient_hours: Annotated[float, Field(gt=0, le=24 * 31)] | None = 24
    """An alarm in INSUFFICIENT_DATA for longer than this (hours) is a warning: its metric
    stopped arriving, so it could not fire. ``null`` never reports it."""


def label_for(name: str, labels: dict[str, str]) -> str | None:
    return next((label for glob, label in labels.items() if fnmatchcase(name, glob)), None)


def duration(delta: timedelta) -> str:
    """``5 min``, ``2 h 5 min``, ``3 d 4 h``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def describe(
    alarm: dict[str, Any], label: str | None, now: datetime, tz: ZoneInfo, state: str = "in ALARM"
) -> str:
    """``Arbel · in ALARM since 21 Nov 06:12 WIB (2 h 5 min): <AWS's reason>``."""
    since = alarm.get("StateUpdatedTimestamp")
    reason = " ".join(str(alarm.get("StateReason", "")).split())
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1] + "…"
    parts = [f"{label} · " if label else "", state]
    if isinstance(since, datetime):
        parts.append(f" since {since.astimezone(tz):%d %b %H:%M %Z} ({duration(now - since)})")
    if reason:
        parts.append(f": {reason}")
    return "".join(parts)


def stuck(alarm: dict[str, Any], hours: float | None, now: datetime) -> bool:
    """In INSUFFICIENT_DATA for longer than ``hours`` (never, when ``hours`` is None)."""
    since = alarm.get("StateUpdatedTimestamp")
    return (
        hours is not None
        and alarm.get("StateValue") == "INSUFFICIENT_DATA"
        and isinstance(since, datetime)
        and now - since > timedelta(hours=hours)
    )


ASPECTS = ("state", "data", "actions")
"""In ALARM, stuck without data, actions off: the order findings and the summary take."""


def assess(
    ctx: CheckContext, region: str, alarm: dict[str, Any], composite: bool, settings: Settings
) -> list[dict[str, Any]]:
    """The findings about one alarm: in ALARM (the configured severity), in INSUFFICIENT_DATA
    for too long (warn), its actions disabled (warn); none when it is fine."""
    name = alarm["AlarmName"]
    label = label_for(name, settings.labels)
    since = alarm.get("StateUpdatedTimestamp")
    state = str(alarm.get("StateValue", ""))
    found: list[tuple[str, Severity, str]] = []
    if state == "ALARM":
        text = describe(alarm, label, ctx.now, ctx.customer.tz)
        found.append(("state", Severity(settings.severity), text))
    elif stuck(alarm, settings.insufficient_hours, ctx.now):
        text = describe(alarm, label, ctx.now, ctx.customer.tz, "no data (INSUFFICIENT_DATA)")
        found.append(("data", Severity.WARN, text))
    if alarm.get("ActionsEnabled") is False:
        prefix = f"{label} · " if label else ""
        text = f"{prefix}actions are off: it will not notify anyone (now {state or 'unknown'})"
        found.append(("actions", Severity.WARN, text))
    metric = (
        f"{alarm['Namespace']}/{alarm['MetricName']}"
        if alarm.get("Namespace") and alarm.get("MetricName")
        else None
    )
    return [
        resource(
            "alarms",
            ctx.account.account_id,
            region,
            name,
            aspect,
            severity,
            text,
            label=label,
            since=since.isoformat() if isinstance(since, datetime) else None,
            reason=str(alarm.get("StateReason", ""))[:1000],
            type="composite" if composite else "metric",
            metric=metric,
            arn=alarm.get("AlarmArn"),
            state=state,
            actions_enabled=alarm.get("ActionsEnabled") is not False,
        )
        for aspect, severity, text in found
    ]


class AlarmsCheck(Check):
    kind = "alarms"
    Settings = Settings
    services = ("cloudwatch",)
    actions = ("cloudwatch:DescribeAlarms",)

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = ctx.settings
        assert isinstance(settings, Settings)
        found = await asyncio.gather(*(every_alarm(ctx, region) for region in ctx.account.regions))
        resources: list[dict[str, Any]] = []
        for region, alarms in zip(ctx.account.regions, found, strict=True):
            for alarm, composite in alarms:
                resources += assess(ctx, region, alarm, composite, settings)
        # the worst first; in ALARM, then without data, then silent; the newest first within
        resources.sort(key=lambda r: r["since"] or "", reverse=True)
        resources.sort(key=lambda r: (-Severity(r["severity"]).rank, ASPECTS.index(aspect(r))))
        counts = {a: sum(aspect(r) == a for r in resources) for a in ASPECTS}
        return CheckResult(
            Severity.worst([r["severity"] for r in resources]),
            summarize(resources, settings.insufficient_hours),
            {
                "resources": resources,
                "in_alarm": counts["state"],
                "insufficient_data": counts["data"],
                "actions_off": counts["actions"],
                "alarms": sum(len(alarms) for alarms in found),
            },
        )


def aspect(line: dict[str, Any]) -> str:
    """What a finding is about: ``state`` (in ALARM), ``data`` or ``actions``."""
    return str(line.get("fingerprint", "")).rsplit(":", 1)[-1]


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """The console page of alarm ``resource_id`` (metric or composite, the page is the same);
    the region's alarms for a finding about the whole result."""
    home = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
    if not resource_id or resource_id == "*":
        return f"{home}#alarmsV2:"
    return f"{home}#alarmsV2:alarm/{quote(resource_id, safe='')}"


def summarize(resources: list[dict[str, Any]], insufficient_hours: float | None) -> str:
    """``2 alarms in ALARM: [Arbel] arbel-prod-cpu, billing-5xx; 1 alarm with actions off:
    queue-age``, naming up to three of each; ``no alarms in ALARM`` when there is nothing."""
    words = {
        "state": "in ALARM",
        "data": f"with no data for over {insufficient_hours or 0:g} h",
        "actions": "with actions off",
    }
    parts = []
    for which in ASPECTS:
        lines = [r for r in resources if aspect(r) == which]
        if not lines:
            continue
        names = [f"[{r['label']}] {r['id']}" if r["label"] else r["id"] for r in lines[:NAMED]]
        more = f" and {len(lines) - NAMED} more" if len(lines) > NAMED else ""
        noun = "alarm" if len(lines) == 1 else "alarms"
        parts.append(f"{len(lines)} {noun} {words[which]}: {', '.join(names)}{more}")
    return "; ".join(parts) or "no alarms in ALARM"


async def every_alarm(ctx: CheckContext, region: str) -> list[tuple[dict[str, Any], bool]]:
    """Every alarm in one region, whatever its state, with whether it is composite."""
    kwargs: dict[str, Any] = {
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "MaxRecords": PAGE,
    }
    alarms: list[tuple[dict[str, Any], bool]] = []
    while True:
        page = await ctx.call(region, "cloudwatch", "describe_alarms", **kwargs)
        alarms += [(a, False) for a in page.get("MetricAlarms", [])]
        alarms += [(a, True) for a in page.get("CompositeAlarms", [])]
        if not page.get("NextToken"):
            return alarms
        kwargs["NextToken"] = page["NextToken"]
