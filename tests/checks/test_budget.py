"""The budget check against a moto server over HTTP, in accounts reached by AssumeRole."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from app.sandbox.moto import seed_session
from checks.aws import AwsClients
from checks.base import Severity
from checks.budget import Settings, limit_for
from tests.checks.support import (
    ARBEL,
    BILLING,
    account,
    customer,
    grant,
    hub_principal,
    iam_enforced,
    role_arn,
    run_check,
)


@pytest.fixture
def clients(aws: str) -> Iterator[AwsClients]:
    clients = AwsClients()
    yield clients
    clients.close()


def budget(
    url: str,
    account_id: str,
    name: str,
    limit: float,
    actual: float,
    forecast: float | None,
    kind: str = "COST",
) -> None:
    spend: dict[str, Any] = {"ActualSpend": {"Amount": str(actual), "Unit": "USD"}}
    if forecast is not None:
        spend["ForecastedSpend"] = {"Amount": str(forecast), "Unit": "USD"}
    seed_session(url, account_id).client("budgets").create_budget(
        AccountId=account_id,
        Budget={
            "BudgetName": name,
            "BudgetLimit": {"Amount": str(limit), "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": kind,
            "CalculatedSpend": spend,
        },
    )


async def test_it_grades_actual_and_forecast_spend_against_each_limit(
    aws: str, clients: AwsClients
) -> None:
    budget(aws, ARBEL, "arbel-monthly", 5000, 3900, 5300)
    budget(aws, ARBEL, "ops", 1000, 1050, 1400)
    budget(aws, ARBEL, "sandbox", 200, 20, None)
    budget(aws, ARBEL, "reserved", 90, 70, None, kind="RI_UTILIZATION")
    budget(aws, BILLING, "billing-monthly", 100, 99, 99)
    # the account lists only ap-southeast-3; Budgets answers in us-east-1 whatever the regions
    who = customer(account("arbel", ARBEL, ("ap-southeast-3",)), account("billing", BILLING))

    result = await run_check(clients, who, "arbel", "budget")

    assert result.severity is Severity.CRIT
    assert result.summary == "4 budgets: 1 critical, 1 warning"
    lines = [(r["id"], r["severity"], r["summary"]) for r in result.details["resources"]]
    assert lines == [
        (
            "ops",
            "crit",
            "actual $1,050 (105 %) of $1,000, forecast $1,400 (140 %) (crit actual ≥ 100 %)",
        ),
        (
            "arbel-monthly",
            "warn",
            "actual $3,900 (78 %) of $5,000, forecast $5,300 (106 %) (warn forecast ≥ 100 %)",
        ),
        ("reserved", "ok", "RI_UTILIZATION budget — not checked"),
        ("sandbox", "ok", "actual $20.00 (10 %) of $200"),
    ]
    monthly = result.details["resources"][1]
    assert monthly["fraction"] == 0.78
    assert (monthly["actual_pct"], monthly["forecast_pct"]) == (78.0, 106.0)
    assert (monthly["limit"], monthly["unit"], monthly["time_unit"]) == (5000.0, "USD", "MONTHLY")
    assert monthly["region"] == "us-east-1"
    assert monthly["fingerprint"] == f"budget:{ARBEL}:us-east-1:arbel-monthly:spend"
    assert result.series == {}


async def test_it_summarises_a_single_budget_like_the_card(aws: str, clients: AwsClients) -> None:
    budget(aws, ARBEL, "arbel-monthly", 5000, 3900, 5300)
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "budget")

    assert result.severity is Severity.WARN
    assert result.summary == "arbel-monthly: actual 78 % of $5,000, forecast 106 %"


async def test_it_takes_thresholds_from_the_config(aws: str, clients: AwsClients) -> None:
    budget(aws, ARBEL, "a", 1000, 600, 900)
    budget(aws, ARBEL, "b", 1000, 100, 1300)
    settings = {"actual_warn_pct": 50, "forecast_warn_pct": None, "forecast_crit_pct": 120}
    who = customer(account("arbel", ARBEL), checks={"budget": settings})

    result = await run_check(clients, who, "arbel", "budget")

    found = {r["id"]: (r["severity"], r["summary"]) for r in result.details["resources"]}
    assert found["a"] == (
        "warn",
        "actual $600 (60 %) of $1,000, forecast $900 (90 %) (warn actual ≥ 50 %)",
    )
    assert found["b"][0] == "crit"
    assert found["b"][1].endswith("(crit forecast ≥ 120 %)")
    assert result.details["thresholds"]["actual_warn_pct"] == 50


async def test_it_says_plainly_when_there_are_no_budgets(aws: str, clients: AwsClients) -> None:
    budget(aws, BILLING, "not-ours", 100, 500, 500)

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "budget")

    assert (result.severity, result.summary) == (Severity.OK, "no budgets")


async def test_it_reports_access_denied_without_hiding_the_other_account(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget(aws, ARBEL, "arbel-monthly", 5000, 1000, 2000)
    grant(aws, ARBEL, ["budgets:ViewBudget", "budgets:DescribeBudgets"])
    grant(aws, BILLING, ["cloudwatch:DescribeAlarms"])
    keys = hub_principal(aws, may_assume=[role_arn(ARBEL), role_arn(BILLING)])
    for key, value in keys.items():
        monkeypatch.setenv(key, value)
    who = customer(account("arbel", ARBEL), account("billing", BILLING))
    clients = AwsClients()
    try:
        with iam_enforced(aws):
            ok, denied = await asyncio.gather(
                run_check(clients, who, "arbel", "budget"),
                run_check(clients, who, "billing", "budget"),
            )
    finally:
        clients.close()

    assert ok.severity is Severity.OK
    assert ok.summary == "arbel-monthly: actual 20 % of $5,000, forecast 40 %"
    assert denied.severity is Severity.ERROR
    assert denied.summary.startswith(f"billing ({BILLING}): access denied for budgets:")
    assert f"Grant it to {role_arn(BILLING)}" in denied.summary


def test_it_uses_the_planned_limit_in_force_now() -> None:
    now = datetime(2026, 11, 21, tzinfo=UTC)
    planned = {
        str(int(datetime(2026, month, 1, tzinfo=UTC).timestamp())): {
            "Amount": str(month * 100),
            "Unit": "USD",
        }
        for month in (10, 11, 12)
    }

    assert limit_for({"PlannedBudgetLimits": planned}, now) == {"Amount": "1100", "Unit": "USD"}
    assert limit_for({"PlannedBudgetLimits": {}}, now) is None
    with pytest.raises(ValidationError, match="actual_crit_pct must not be below"):
        Settings.model_validate({"actual_warn_pct": 90, "actual_crit_pct": 80})
