"""Alarms: CloudWatch alarms in ALARM in each account region, labelled from config.

Asks AWS only for alarms in ALARM (``describe_alarms(StateValue="ALARM")``), metric and
composite, following NextToken. Every alarm in ALARM is a finding of the configured severity,
with since-when and AWS's own reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import Field

from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource

MAX_REASON = 160
"""Characters of AWS's state reason kept in a summary line; ``reason`` keeps up to 1000."""


class Settings(CheckSettings):
    labels: dict[str, str] = Field(default_factory=dict)
    """Alarm-name glob → label, e.g. ``{"arbel-*": "Arbel"}``; the first match wins."""
    severity: Literal["warn", "crit"] = "crit"
    """The severity of an alarm in ALARM."""


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


def describe(alarm: dict[str, Any], label: str | None, now: datetime, tz: ZoneInfo) -> str:
    since = alarm.get("StateUpdatedTimestamp")
    reason = " ".join(str(alarm.get("StateReason", "")).split())
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1] + "…"
    parts = [f"{label} · " if label else "", "in ALARM"]
    if isinstance(since, datetime):
        parts.append(f" since {since.astimezone(tz):%d %b %H:%M %Z} ({duration(now - since)})")
    if reason:
        parts.append(f": {reason}")
    return "".join(parts)


class AlarmsCheck(Check):
    kind = "alarms"
    Settings = Settings
    services = ("cloudwatch",)

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = ctx.settings
        assert isinstance(settings, Settings)
        severity = Severity(settings.severity)
        found = await asyncio.gather(*(in_alarm(ctx, region) for region in ctx.account.regions))
        resources: list[dict[str, Any]] = []
        for region, alarms in zip(ctx.account.regions, found, strict=True):
            for alarm, composite in alarms:
                name = alarm["AlarmName"]
                label = label_for(name, settings.labels)
                since = alarm.get("StateUpdatedTimestamp")
                metric = (
                    f"{alarm['Namespace']}/{alarm['MetricName']}"
                    if alarm.get("Namespace") and alarm.get("MetricName")
                    else None
                )
                resources.append(
                    resource(
                        self.kind,
                        ctx.account.account_id,
                        region,
                        name,
                        "state",
                        severity,
                        describe(alarm, label, ctx.now, ctx.customer.tz),
                        label=label,
                        since=since.isoformat() if isinstance(since, datetime) else None,
                        reason=str(alarm.get("StateReason", ""))[:1000],
                        type="composite" if composite else "metric",
                        metric=metric,
                        arn=alarm.get("AlarmArn"),
                    )
                )
        resources.sort(key=lambda r: r["since"] or "", reverse=True)  # newest first
        return CheckResult(
            severity if resources else Severity.OK,
            summarize(resources),
            {"resources": resources, "in_alarm": len(resources)},
        )


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """The console page of alarm ``resource_id`` (metric or composite, the page is the same);
    the region's alarms for a finding about the whole result."""
    home = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
    if not resource_id or resource_id == "*":
        return f"{home}#alarmsV2:"
    return f"{home}#alarmsV2:alarm/{quote(resource_id, safe='')}"


def summarize(resources: list[dict[str, Any]]) -> str:
    if not resources:
        return "no alarms in ALARM"
    names = [f"[{r['label']}] {r['id']}" if r["label"] else r["id"] for r in resources[:3]]
    more = f" and {len(resources) - 3} more" if len(resources) > 3 else ""
    noun = "alarm" if len(resources) == 1 else "alarms"
    return f"{len(resources)} {noun} in ALARM: {', '.join(names)}{more}"


async def in_alarm(ctx: CheckContext, region: str) -> list[tuple[dict[str, Any], bool]]:
    """Every alarm in ALARM in one region, with whether it is composite."""
    kwargs: dict[str, Any] = {
        "StateValue": "ALARM",
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
    }
    alarms: list[tuple[dict[str, Any], bool]] = []
    while True:
        page = await ctx.call(region, "cloudwatch", "describe_alarms", **kwargs)
        alarms += [(a, False) for a in page.get("MetricAlarms", [])]
        alarms += [(a, True) for a in page.get("CompositeAlarms", [])]
        if not page.get("NextToken"):
            return alarms
        kwargs["NextToken"] = page["NextToken"]
