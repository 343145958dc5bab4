"""Cost: yesterday's spend against the 7-day average, by service and by linked account, and
Cost Anomaly Detection's anomalies — read once per customer, on its payer account.

Cost Explorer is global and answers in us-east-1. On the payer account (``checks.cost.payer``)
one look asks it twice: ``GetCostAndUsage`` (DAILY, the last 8 UTC days, grouped by SERVICE and
LINKED_ACCOUNT at once, so one answer gives both breakdowns) and ``GetAnomalies`` (the last
``anomaly_days``, AWS keeping only anomalies whose total impact reaches
``anomaly_min_impact``). Every other account of the customer is ``skipped``.

Cost Explorer bills every request ($0.01), so a payer's figures for a UTC day are kept in the
process (:data:`FIGURES`): later looks the same day ask AWS nothing.

A rise counts when it passes both thresholds: ``warn_percent`` / ``crit_percent`` on the
7-day average and at least ``min_increase`` more (in the account's currency). An anomaly is a
warning, or critical from ``anomaly_crit_impact``; one marked "not an anomaly" or "planned
activity" in the console is left out.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any, Literal, cast

from pydantic import Field, model_validator

from app.config import Account, Alias, Customer
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource
from checks.budget import money, pct
from checks.errors import CheckError, PermanentError, Reason

REGION = "us-east-1"
"""Where Cost Explorer answers for the whole organization."""
DAYS = 7
"""The days yesterday is compared with."""
GROUP_BY = [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}]
MAX_PAGES = 20
"""``GetCostAndUsage`` pages read at most (each is billed); one is the rule."""
DISMISSED = frozenset({"NO", "PLANNED_ACTIVITY"})
"""Console feedback that says an anomaly is not one to report."""
MAX_CAUSES = 3
"""Root causes named in an anomaly's line; ``root_causes`` keeps them all."""
NO_DATA = "DataUnavailableException"
HOME = "https://us-east-1.console.aws.amazon.com/costmanagement/home"
ORDER = {"service": 0, "account": 1, "anomaly": 2}

Metric = Literal[
    "UnblendedCost", "AmortizedCost", "NetUnblendedCost", "NetAmortizedCost", "BlendedCost"
]


class CostSettings(CheckSettings):
    payer: Alias
    """The alias of the customer's account that holds Cost Explorer (the payer, or
    management, account of the organization); required."""
    warn_percent: float = Field(30, gt=0)
    """Yesterday this much above the 7-day average (and by ``min_increase``) is a warning."""
    crit_percent: float = Field(100, gt=0)
    """… and this much above it is critical."""
    min_increase: float = Field(50, ge=0)
    """A rise smaller than this (in the account's currency) is never reported."""
    anomaly_days: int = Field(3, ge=1, le=90)
    """Anomalies of the last this many UTC days are listed."""
    anomaly_min_impact: float = Field(100, ge=0)
    """Anomalies with a smaller total impact are not listed."""
    anomaly_crit_impact: float | None = Field(1000, ge=0)
    """An anomaly with this total impact or more is critical; ``null``: never."""
    metric: Metric = "UnblendedCost"
    """Cost Explorer's cost metric; ``AmortizedCost`` spreads upfront reservation fees."""

    @model_validator(mode="after")
    def _ordered(self) -> CostSettings:
        if self.crit_percent < self.warn_percent:
            raise ValueError(
                f"crit_percent ({self.crit_percent:g}) is below warn_percent "
                f"({self.warn_percent:g}); write a crit_percent of at least {self.warn_percent:g}"
            )
        crit = self.anomaly_crit_impact
        if crit is not None and crit < self.anomaly_min_impact:
            raise ValueError(
                f"anomaly_crit_impact ({crit:g}) is below anomaly_min_impact "
                f"({self.anomaly_min_impact:g}); write at least {self.anomaly_min_impact:g}, "
                "or null for no critical anomalies"
            )
        return self


@dataclass(frozen=True)
class Figures:
    """What Cost Explorer said for one payer account on one UTC day."""

    days: tuple[date, ...]
    """The 8 days asked for, oldest first; the last is yesterday."""
    services: Mapping[str, tuple[float, ...]]
    """Service → daily spend across every account, oldest first."""
    accounts: Mapping[str, tuple[float, ...]]
    """Linked account id → daily spend across every service, oldest first."""
    names: Mapping[str, str]
    """Linked account id → its name in AWS Organizations."""
    unit: str
    estimated: bool
    """Cost Explorer says yesterday's figures are still estimated."""
    anomalies: tuple[Mapping[str, Any], ...]


class DayCache:
    """Figures per (payer account id, UTC day, query), kept for the life of the process so a
    day's later looks cost nothing; beyond ``size`` entries the oldest goes."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Figures] = OrderedDict()

    def get(self, key: Hashable) -> Figures | None:
        return self._items.get(key)

    def put(self, key: Hashable, figures: Figures) -> None:
        self._items[key] = figures
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


FIGURES = DayCache()
"""The process's Cost Explorer figures (tests clear it)."""


class CostCheck(Check):
    kind = "cost"
    Settings = CostSettings
    services = ()
    actions = ("ce:GetCostAndUsage", "ce:GetAnomalies")  # on the payer account only

    def clients(self, account: Account) -> list[tuple[str, str]]:
        return [(REGION, "ce")]  # Cost Explorer is global: one endpoint, in us-east-1

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = cast(CostSettings, ctx.settings)
        payer = payer_of(ctx.customer, settings)
        if ctx.account.id != payer.id:
            if self.kind not in payer.checks:
                raise PermanentError(
                    f"cost is read once per customer, on {payer.id} (checks.cost.payer), "
                    f"which does not run it: add cost to the checks of {payer.id}"
                )
            return CheckResult(
                Severity.SKIPPED,
                f"cost is read once per customer, on {payer.id}",
                {"resources": [], "services": 0, "payer": payer.id},
            )
        today = ctx.now.astimezone(UTC).date()
        key = (
            payer.account_id,
            today,
            settings.metric,
            settings.anomaly_days,
            settings.anomaly_min_impact,
        )
        figures = FIGURES.get(key)
        cached = figures is not None
        if figures is None:
            figures = await read(ctx, settings, today)
            FIGURES.put(key, figures)
        return summarise(ctx.customer, payer, settings, figures, cached)


def payer_of(customer: Customer, settings: CostSettings) -> Account:
    payer = customer.account(settings.payer)
    if payer is None:
        aliases = ", ".join(a.id for a in customer.accounts)
        raise PermanentError(
            f'checks.cost.payer is "{settings.payer}", which is not one of the accounts of '
            f"{customer.id} ({aliases}); set it to the alias of the account that holds Cost "
            "Explorer (the payer or management account)"
        )
    return payer


# -- asking Cost Explorer ---------------------------------------------------------------------


async def read(ctx: CheckContext, settings: CostSettings, today: date) -> Figures:
    """One ``GetCostAndUsage`` and one ``GetAnomalies`` (more only when AWS pages them)."""
    days = tuple(today - timedelta(days=DAYS + 1 - i) for i in range(DAYS + 1))
    answers = await asyncio.gather(
        _costs(ctx, settings, days[0], today),
        ctx.paginate(
            REGION,
            "ce",
            "get_anomalies",
            "Anomalies",
            DateInterval={
                "StartDate": (today - timedelta(days=settings.anomaly_days)).isoformat(),
                "EndDate": today.isoformat(),
            },
            TotalImpact={
                "NumericOperator": "GREATER_THAN_OR_EQUAL",
                "StartValue": settings.anomaly_min_impact,
            },
        ),
        return_exceptions=True,
    )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise _explained(ctx.account, answer)
    pages, anomalies = cast(tuple[list[dict[str, Any]], list[dict[str, Any]]], tuple(answers))
    return figures_from(pages, anomalies, days, settings.metric)


async def _costs(
    ctx: CheckContext, settings: CostSettings, start: date, end: date
) -> list[dict[str, Any]]:
    query: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [settings.metric],
        "GroupBy": GROUP_BY,
    }
    pages: list[dict[str, Any]] = []
    token: str | None = None
    while len(pages) < MAX_PAGES:
        more = {"NextPageToken": token} if token else {}
        page = await ctx.call(REGION, "ce", "get_cost_and_usage", **query, **more)
        pages.append(page)
        token = page.get("NextPageToken")
        if not token:
            return pages
    raise PermanentError(
        f"{ctx.account.id} ({ctx.account.account_id}): Cost Explorer answered more than "
        f"{MAX_PAGES} pages for 8 days of spend by service and account; tell the hub's "
        "maintainers (raise MAX_PAGES in checks/cost.py)"
    )


def _explained(account: Account, error: BaseException) -> BaseException:
    """Cost Explorer's "no data" said with what to do; anything else as it is."""
    if not isinstance(error, CheckError) or error.code != NO_DATA:
        return error
    return PermanentError(
        f"{account.id} ({account.account_id}): Cost Explorer has no data ({NO_DATA}). "
        "Enable Cost Explorer in the Billing and Cost Management console of this account "
        "(its data appears within 24 hours), or set checks.cost.payer to the payer account.",
        reason=Reason.SUBSCRIPTION,
        call=error.call,
        code=error.code,
    )


def figures_from(
    pages: Sequence[Mapping[str, Any]],
    anomalies: Sequence[Mapping[str, Any]],
    days: tuple[date, ...],
    metric: str,
) -> Figures:
    """The daily spend by service and by account, summed over every page."""
    index = {day.isoformat(): i for i, day in enumerate(days)}
    services: dict[str, list[float]] = {}
    accounts: dict[str, list[float]] = {}
    names: dict[str, str] = {}
    units: list[str] = []
    estimated = False
    for page in pages:
        for item in page.get("DimensionValueAttributes") or []:
            name = (item.get("Attributes") or {}).get("description")
            if item.get("Value") and name:
                names[str(item["Value"])] = str(name)
        for period in page.get("ResultsByTime") or []:
            i = index.get(str(period.get("TimePeriod", {}).get("Start", ""))[:10])
            if i is None:
                continue
            estimated = estimated or (i == len(days) - 1 and bool(period.get("Estimated")))
            for group in period.get("Groups") or []:
                keys = [str(k) for k in group.get("Keys") or []] + ["?", "?"]
                value = (group.get("Metrics") or {}).get(metric) or {}
                amount = float(value.get("Amount") or 0)
                if value.get("Unit"):
                    units.append(str(value["Unit"]))
                services.setdefault(keys[0], [0.0] * len(days))[i] += amount
                accounts.setdefault(keys[1], [0.0] * len(days))[i] += amount
    return Figures(
        days=days,
        services={k: tuple(v) for k, v in services.items() if any(v)},
        accounts={k: tuple(v) for k, v in accounts.items() if any(v)},
        names=names,
        unit=units[0] if units else "USD",
        estimated=estimated,
        anomalies=tuple(anomalies),
    )


# -- grading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """Yesterday against the average of the days before it."""

    yesterday: float
    average: float

    @classmethod
    def of(cls, daily: Sequence[float]) -> Change:
        before = daily[:-1]
        return cls(daily[-1], sum(before) / len(before) if before else 0.0)

    @property
    def increase(self) -> float:
        return self.yesterday - self.average

    @property
    def percent(self) -> float | None:
        """None when nothing was spent before (new spend)."""
        return self.increase / self.average * 100 if self.average > 0 else None


def grade(change: Change, s: CostSettings) -> tuple[Severity, str]:
    """The severity and the percentage crossed (``crit ≥ 100 %``); OK under either threshold."""
    if change.increase <= 0 or change.increase < s.min_increase:
        return Severity.OK, ""
    rise = change.percent
    for severity, limit in ((Severity.CRIT, s.crit_percent), (Severity.WARN, s.warn_percent)):
        if rise is None or rise >= limit:
            return severity, f"{severity.value} ≥ {limit:g} %"
    return Severity.OK, ""


def signed(percent: float) -> str:
    return f"+{pct(percent)}" if percent >= 0 else f"−{pct(-percent)}"


def spend_line(
    label: str, change: Change, severity: Severity, rule: str, s: CostSettings, unit: str
) -> tuple[str, str]:
    """(the finding's summary, its short form for the result's summary)."""
    minimum = money(s.min_increase, unit)
    now = money(change.yesterday, unit)
    if change.percent is None:
        crossed = f"{severity.value}: new spend ≥ {minimum}"
        return (
            f"{label}: {now} yesterday, nothing in the {DAYS} days before ({crossed})",
            f"{label} {now} yesterday, new ({crossed})",
        )
    before = money(change.average, unit)
    rise = signed(change.percent)
    return (
        f"{label}: {now} yesterday, {rise} on its {DAYS}-day average of {before} "
        f"({rule} and ≥ {minimum} more)",
        f"{label} {rise} ({now} yesterday, {before} average; {rule})",
    )


def account_label(account_id: str, customer: Customer, names: Mapping[str, str]) -> str:
    """``shop-staging (222222222222)``: the customer's alias, else the Organizations name."""
    ours = next((a.id for a in customer.accounts if a.account_id == account_id), None)
    name = ours or names.get(account_id)
    return f"{name} ({account_id})" if name else account_id


def spend_findings(
    customer: Customer, payer: Account, s: CostSettings, figures: Figures
) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    findings: list[dict[str, Any]] = []
    series: dict[str, list[float]] = {}
    rows = [("service", name, name, daily) for name, daily in figures.services.items()] + [
        ("account", account, account_label(account, customer, figures.names), daily)
        for account, daily in figures.accounts.items()
    ]
    for dimension, rid, label, daily in rows:
        change = Change.of(daily)
        severity, rule = grade(change, s)
        if severity is Severity.OK:
            continue
        text, short = spend_line(label, change, severity, rule, s, figures.unit)
        key = f"{dimension}:{rid}"
        series[key] = [round(v, 2) for v in daily]
        findings.append(
            resource(
                "cost",
                payer.account_id,
                REGION,
                rid,
                f"{dimension}-spend",
                severity,
                text,
                short=short,
                dimension=dimension,
                label=label,
                yesterday=round(change.yesterday, 2),
                average=round(change.average, 2),
                increase=round(change.increase, 2),
                change_percent=None if change.percent is None else round(change.percent, 1),
                unit=figures.unit,
                series=key,
            )
        )
    return findings, series


def anomaly_findings(
    customer: Customer, payer: Account, s: CostSettings, figures: Figures
) -> list[dict[str, Any]]:
    """One finding per anomaly with at least ``anomaly_min_impact``, unless dismissed."""
    findings = []
    for anomaly in figures.anomalies:
        impact = float((anomaly.get("Impact") or {}).get("TotalImpact") or 0)
        if impact >= s.anomaly_min_impact and anomaly.get("Feedback") not in DISMISSED:
            findings.append(_anomaly(anomaly, impact, customer, payer, s, figures))
    return findings


def _anomaly(
    anomaly: Mapping[str, Any],
    impact: float,
    customer: Customer,
    payer: Account,
    s: CostSettings,
    figures: Figures,
) -> dict[str, Any]:
    unit = figures.unit
    crit = s.anomaly_crit_impact
    if crit is not None and impact >= crit:
        severity, rule = Severity.CRIT, f"crit ≥ {money(crit, unit)}"
    else:
        severity, rule = Severity.WARN, f"warn ≥ {money(s.anomaly_min_impact, unit)}"
    causes = [_cause(c, customer, figures.names) for c in anomaly.get("RootCauses") or []]
    start = str(anomaly.get("AnomalyStartDate") or "?")[:10]
    end = str(anomaly.get("AnomalyEndDate") or "")[:10]
    dimension = str(anomaly.get("DimensionValue") or (causes[0]["service"] if causes else "?"))
    spent = (anomaly.get("Impact") or {}).get("TotalActualSpend")
    expected = (anomaly.get("Impact") or {}).get("TotalExpectedSpend")
    text = f"anomaly on {dimension}: {money(impact, unit)} over the expected"
    if spent is not None and expected is not None:
        text += f" ({money(float(spent), unit)} spent, {money(float(expected), unit)} expected)"
    text += f", since {start}" + (f", ended {end}" if end else ", still open")
    if causes:
        named = "; ".join(c["text"] for c in causes[:MAX_CAUSES])
        more = f" and {len(causes) - MAX_CAUSES} more" if len(causes) > MAX_CAUSES else ""
        text += f" — root cause: {named}{more}"
    return resource(
        "cost",
        payer.account_id,
        REGION,
        str(anomaly.get("AnomalyId") or f"{dimension}:{start}"),
        "anomaly",
        severity,
        f"{text} ({rule})",
        short=f"anomaly on {dimension} {money(impact, unit)} ({rule})",
        dimension="anomaly",
        anomaly_id=anomaly.get("AnomalyId"),
        monitor_arn=anomaly.get("MonitorArn"),
        start=start,
        end=end or None,
        impact=round(impact, 2),
        actual=spent,
        expected=expected,
        unit=unit,
        root_causes=[{k: v for k, v in c.items() if k != "text"} for c in causes],
    )


def _cause(
    cause: Mapping[str, Any], customer: Customer, names: Mapping[str, str]
) -> dict[str, Any]:
    """One root cause: its fields, and its words: ``Amazon Elastic Compute Cloud - Compute in
    shop-prod (111111111111), ap-southeast-3, APS3-BoxUsage:m5.large``."""
    account = str(cause.get("LinkedAccount") or "")
    name = cause.get("LinkedAccountName")
    known = {**names, account: str(name)} if account and name else names
    label = account_label(account, customer, known) if account else None
    found = {
        "service": cause.get("Service"),
        "account": account or None,
        "account_name": label,
        "region": cause.get("Region"),
        "usage_type": cause.get("UsageType"),
    }
    where = ", ".join(str(w) for w in (label, found["region"], found["usage_type"]) if w)
    service = str(found["service"] or "a service")
    return {**found, "text": f"{service} in {where}" if where else service}


# -- the result -------------------------------------------------------------------------------


def summarise(
    customer: Customer, payer: Account, s: CostSettings, figures: Figures, cached: bool
) -> CheckResult:
    spend, series = spend_findings(customer, payer, s, figures)
    findings = spend + anomaly_findings(customer, payer, s, figures)
    findings.sort(
        key=lambda f: (
            -Severity(f["severity"]).rank,
            ORDER[f["dimension"]],
            -float(f.get("increase") or f.get("impact") or 0),
        )
    )
    totals = [sum(day) for day in zip(*figures.services.values(), strict=True)] or [0.0] * len(
        figures.days
    )
    total = Change.of(totals)
    series["total"] = [round(v, 2) for v in totals]
    details: dict[str, Any] = {
        "resources": findings,
        "services": len(figures.services),
        "accounts": len(figures.accounts),
        "anomalies": sum(f["dimension"] == "anomaly" for f in findings),
        "payer": payer.id,
        "day": figures.days[-1].isoformat(),
        "metric": s.metric,
        "currency": figures.unit,
        "yesterday": round(total.yesterday, 2),
        "average": round(total.average, 2),
        "change_percent": None if total.percent is None else round(total.percent, 1),
        "estimated": figures.estimated,
        "cached": cached,
        "thresholds": s.model_dump(mode="json", exclude={"payer"}),
    }
    severity = Severity.worst([f["severity"] for f in findings])
    return CheckResult(severity, _summary(findings, figures, total, s), details, series)


def _summary(
    findings: list[dict[str, Any]], figures: Figures, total: Change, s: CostSettings
) -> str:
    unit = figures.unit
    if not figures.services:
        return f"no spend in Cost Explorer in the last {DAYS + 1} days (UTC)"
    spent = f"yesterday {money(total.yesterday, unit)}"
    if total.percent is not None:
        spent += (
            f" ({signed(total.percent)} on the {DAYS}-day average {money(total.average, unit)})"
        )
    if findings:
        more = f" and {len(findings) - 1} more" if len(findings) > 1 else ""
        return f"{findings[0]['short']}{more}; {spent}"
    services = len(figures.services)
    accounts = len(figures.accounts)
    return (
        f"{spent} across {services} service{'s' if services != 1 else ''} in {accounts} "
        f"account{'s' if accounts != 1 else ''}; no anomalies over "
        f"{money(s.anomaly_min_impact, unit)}"
    )


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """Cost Explorer, or Cost Anomaly Detection for an anomaly's line. Both are global: the
    page is the same whatever the region."""
    if line.get("dimension") == "anomaly":
        return f"{HOME}#/anomaly-detection/overview"
    return f"{HOME}#/cost-explorer"
