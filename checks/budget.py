"""Budget: every AWS Budgets budget of the account, actual and forecast spend against its limit.

Budgets is a global service answered in us-east-1, whatever regions the account lists. Cost
and usage budgets are graded; RI and Savings Plans utilization/coverage budgets (where lower is
worse) are listed as not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import Field, model_validator

from app.config import Account
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource

REGION = "us-east-1"
GRADED_TYPES = frozenset({"COST", "USAGE"})


Percent = Annotated[float, Field(ge=0)]
"""Of the budget's limit: 0 or more, and above 100 for "well over budget"; never nan or inf."""


class Settings(CheckSettings):
    """Percentages of the budget's limit for the current period; ``None`` turns one off."""

    actual_warn_pct: Percent | None = 80
    actual_crit_pct: Percent | None = 100
    forecast_warn_pct: Percent | None = 100
    forecast_crit_pct: Percent | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Settings:
        for name in ("actual", "forecast"):
            warn, crit = getattr(self, f"{name}_warn_pct"), getattr(self, f"{name}_crit_pct")
            if warn is not None and crit is not None and crit < warn:
                raise ValueError(f"{name}_crit_pct must not be below {name}_warn_pct")
        return self


def pct(value: float) -> str:
    return f"{value:.0f} %" if value >= 10 else f"{value:.1f} %".replace(".0 ", " ")


def money(amount: float, unit: str) -> str:
    text = f"{amount:,.0f}" if amount >= 100 else f"{amount:,.2f}"
    return f"${text}" if unit == "USD" else f"{text} {unit}"


def limit_for(budget: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The limit for the current period: BudgetLimit, else the planned limit in force now."""
    if budget.get("BudgetLimit"):
        return dict(budget["BudgetLimit"])
    planned = budget.get("PlannedBudgetLimits") or {}
    started = [int(k) for k in planned if int(k) <= now.timestamp()]
    return dict(planned[str(max(started))]) if started else None


def spend(budget: dict[str, Any], which: str) -> float | None:
    amount = (budget.get("CalculatedSpend") or {}).get(which, {}).get("Amount")
    return float(amount) if amount is not None else None


def grade(actual: float, forecast: float | None, s: Settings) -> tuple[Severity, str]:
    """The severity and the threshold crossed, e.g. ``(warn forecast ≥ 100 %)``."""
    rules = [
        (Severity.CRIT, "actual", actual, s.actual_crit_pct),
        (Severity.CRIT, "forecast", forecast, s.forecast_crit_pct),
        (Severity.WARN, "actual", actual, s.actual_warn_pct),
        (Severity.WARN, "forecast", forecast, s.forecast_warn_pct),
    ]
    for severity, name, value, limit in rules:
        if value is not None and limit is not None and value >= limit:
            return severity, f" ({severity.value} {name} ≥ {limit:g} %)"
    return Severity.OK, ""


def assess(
    budget: dict[str, Any], s: Settings, now: datetime
) -> tuple[Severity, str, dict[str, Any]]:
    """(severity, summary, extras) for one budget."""
    kind = str(budget.get("BudgetType", "COST"))
    limit = limit_for(budget, now)
    amount = float(limit["Amount"]) if limit else 0.0
    if kind not in GRADED_TYPES or amount <= 0:
        why = f"{kind} budget" if kind not in GRADED_TYPES else "no limit for this period"
        return Severity.OK, f"{why} — not checked", {"type": kind}
    unit = str(limit["Unit"]) if limit else "USD"
    actual = spend(budget, "ActualSpend") or 0.0
    forecast = spend(budget, "ForecastedSpend")
    actual_pct = actual / amount * 100
    forecast_pct = forecast / amount * 100 if forecast is not None else None
    severity, crossed = grade(actual_pct, forecast_pct, s)
    text = f"actual {money(actual, unit)} ({pct(actual_pct)}) of {money(amount, unit)}"
    if forecast is not None and forecast_pct is not None:
        text += f", forecast {money(forecast, unit)} ({pct(forecast_pct)})"
    extras = {
        "type": kind,
        "time_unit": budget.get("TimeUnit"),
        "limit": amount,
        "unit": unit,
        "actual": actual,
        "forecast": forecast,
        "actual_pct": round(actual_pct, 1),
        "forecast_pct": round(forecast_pct, 1) if forecast_pct is not None else None,
        "fraction": round(actual / amount, 4),
    }
    return severity, text + crossed, extras


def short(r: dict[str, Any]) -> str:
    """``monthly: actual 78 % of $5,000, forecast 106 %`` for a one-budget summary."""
    if "limit" not in r:
        return f"{r['id']}: {r['summary']}"
    text = f"{r['id']}: actual {pct(r['actual_pct'])} of {money(r['limit'], r['unit'])}"
    if r["forecast_pct"] is not None:
        text += f", forecast {pct(r['forecast_pct'])}"
    return text


class BudgetCheck(Check):
    kind = "budget"
    Settings = Settings
    services = ("budgets",)
    actions = ("budgets:ViewBudget",)  # the permission behind DescribeBudgets

    def clients(self, account: Account) -> list[tuple[str, str]]:
        return [(REGION, "budgets")]  # AWS Budgets is global: one endpoint, in us-east-1

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = ctx.settings
        assert isinstance(settings, Settings)
        budgets = await ctx.paginate(
            REGION, "budgets", "describe_budgets", "Budgets", AccountId=ctx.account.account_id
        )
        resources = []
        for budget in budgets:
            severity, text, extras = assess(budget, settings, ctx.now)
            resources.append(
                resource(
                    self.kind,
                    ctx.account.account_id,
                    REGION,
                    budget["BudgetName"],
                    "spend",
                    severity,
                    text,
                    **extras,
                )
            )
        resources.sort(key=lambda r: (-Severity(r["severity"]).rank, r["id"]))
        severity = Severity.worst([r["severity"] for r in resources])
        details = {
            "resources": resources,
            "budgets": len(resources),
            "thresholds": settings.model_dump(mode="json"),
        }
        return CheckResult(severity, summarize(resources), details)


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """The console page of budget ``resource_id``. AWS Budgets is global: the page is the same
    whatever the region; the account's budgets for a finding about the whole result."""
    home = "https://us-east-1.console.aws.amazon.com/costmanagement/home#/budgets"
    if not resource_id or resource_id == "*":
        return home
    return f"{home}/details?name={quote(resource_id, safe='')}"


def summarize(resources: list[dict[str, Any]]) -> str:
    if not resources:
        return "no budgets"
    if len(resources) == 1:
        return short(resources[0])
    counts = [
        f"{n} {word}{'s' if n > 1 and sev == 'warn' else ''}"
        for sev, word in (("crit", "critical"), ("warn", "warning"))
        if (n := sum(r["severity"] == sev for r in resources))
    ]
    if not counts:
        return f"{len(resources)} budgets, all OK"
    return f"{len(resources)} budgets: {', '.join(counts)}"
