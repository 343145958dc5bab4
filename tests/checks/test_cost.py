"""The cost check over HTTP through the edge to moto, in accounts reached by AssumeRole: moto
answers GetCostAndUsage from its queue of results (app/sandbox/seed_cost.py), the edge answers
GetAnomalies (moto has none) and counts every Cost Explorer request."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.config import Customer
from app.loader import check_config
from app.sandbox import seed_cost
from app.sandbox.edge import Edge
from app.sandbox.seed_cost import (
    ATHENA,
    EC2,
    RDS,
    S3,
    anomalies_page,
    anomaly,
    cost_and_usage,
    queue_costs,
)
from checks.aws import AwsClients
from checks.base import Severity
from checks.cost import FIGURES, CostSettings, DayCache, Figures
from checks.registry import REGISTRY
from tests.checks.support import ARBEL, BILLING, account, customer, run_check

GET_COSTS = "ce:GetCostAndUsage"
GET_ANOMALIES = "ce:GetAnomalies"


@pytest.fixture(autouse=True)
def no_cached_figures() -> Iterator[None]:
    """Each test starts, and leaves, with nothing in the process's Cost Explorer cache."""
    FIGURES.clear()
    yield
    FIGURES.clear()


def today() -> date:
    return datetime.now(UTC).date()


def week(average: float, yesterday: float) -> list[float]:
    """Seven days at ``average``, then yesterday."""
    return [average] * 7 + [yesterday]


def who(payer: str = "arbel", *, payer_runs_cost: bool = True, **settings: Any) -> Customer:
    """arbel (the payer) and billing, both running cost."""
    arbel = account("arbel", ARBEL, regions=("eu-west-1", "ap-southeast-3"))
    billing = account("billing", BILLING)
    return customer(
        arbel.model_copy(update={"checks": ("cost",) if payer_runs_cost else ()}),
        billing.model_copy(update={"checks": ("cost",)}),
        checks={"cost": {"payer": payer, **settings}},
    )


def spend(
    aws: str, account_id: str, daily: Mapping[tuple[str, str], Sequence[float]], **kw: Any
) -> None:
    queue_costs(aws, account_id, cost_and_usage(daily, today(), **kw))


def anomalies(edge: Edge, account_id: str, *found: dict[str, Any]) -> None:
    edge.answer("ce", "GetAnomalies", [anomalies_page(found)], account_id=account_id)


def lines(result: Any) -> list[tuple[str, str, str]]:
    return [(r["id"], r["severity"], r["summary"]) for r in result.details["resources"]]


# -- spend against the 7-day average ----------------------------------------------------------


async def test_it_is_critical_when_a_service_and_its_account_jump_past_both_thresholds(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    spend(
        aws,
        ARBEL,
        {
            (EC2, ARBEL): week(120, 121),
            (ATHENA, BILLING): week(10, 95),
            (S3, BILLING): week(20, 20),
        },
    )
    anomalies(edge, ARBEL)

    result = await run_check(clients, who(), "arbel", "cost")

    assert result.severity is Severity.CRIT
    assert result.summary == (
        "Amazon Athena +850 % ($95.00 yesterday, $10.00 average; crit ≥ 100 %) and 1 more; "
        "yesterday $236 (+57 % on the 7-day average $150)"
    )
    assert lines(result) == [
        (
            ATHENA,
            "crit",
            "Amazon Athena: $95.00 yesterday, +850 % on its 7-day average of $10.00 "
            "(crit ≥ 100 % and ≥ $50.00 more)",
        ),
        (
            BILLING,
            "crit",
            f"billing ({BILLING}): $115 yesterday, +283 % on its 7-day average of $30.00 "
            "(crit ≥ 100 % and ≥ $50.00 more)",
        ),
    ]
    athena = result.details["resources"][0]
    assert athena["fingerprint"] == f"cost:{ARBEL}:us-east-1:{ATHENA}:service-spend"
    assert result.details["resources"][1]["fingerprint"] == (
        f"cost:{ARBEL}:us-east-1:{BILLING}:account-spend"
    )
    assert result.series[athena["series"]] == week(10, 95)
    assert result.series["total"] == week(150, 236)
    assert result.details["services"] == 3
    assert result.details["accounts"] == 2
    assert result.details["day"] == (today() - timedelta(days=1)).isoformat()
    assert result.details["estimated"] is True
    assert result.details["cached"] is False


async def test_it_warns_on_a_rise_between_the_warning_and_critical_percentages(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    spend(aws, ARBEL, {(RDS, ARBEL): week(100, 160), (EC2, ARBEL): week(400, 400)})
    anomalies(edge, ARBEL)

    result = await run_check(clients, who(), "arbel", "cost")

    assert result.severity is Severity.WARN
    assert lines(result) == [
        (
            RDS,
            "warn",
            "Amazon Relational Database Service: $160 yesterday, +60 % on its 7-day average "
            "of $100 (warn ≥ 30 % and ≥ $50.00 more)",
        )
    ]  # the account rose 12 %: under warn_percent
    assert result.summary.startswith("Amazon Relational Database Service +60 % (")


async def test_it_ignores_a_steep_rise_under_the_absolute_minimum(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    daily = {(EC2, ARBEL): week(10, 40), (S3, BILLING): week(5, 5)}
    spend(aws, ARBEL, daily)
    spend(aws, BILLING, daily)
    anomalies(edge, ARBEL)
    anomalies(edge, BILLING)
    strict = customer(
        account("billing", BILLING).model_copy(update={"checks": ("cost",)}),
        checks={"cost": {"payer": "billing", "min_increase": 20}},
    )

    result = await run_check(clients, who(), "arbel", "cost")
    stricter = await run_check(clients, strict, "billing", "cost")

    assert result.severity is Severity.OK
    assert result.summary == (
        "yesterday $45.00 (+200 % on the 7-day average $15.00) across 2 services in "
        "2 accounts; no anomalies over $100"
    )
    assert result.details["resources"] == []
    assert stricter.severity is Severity.CRIT  # +$30 passes a minimum of $20
    assert [r["id"] for r in stricter.details["resources"]] == [EC2, ARBEL]


async def test_new_spend_over_the_minimum_is_critical(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    spend(aws, ARBEL, {(EC2, ARBEL): week(100, 100), (ATHENA, ARBEL): [0] * 7 + [70]})
    anomalies(edge, ARBEL)

    result = await run_check(clients, who(), "arbel", "cost")

    assert result.severity is Severity.CRIT
    assert lines(result)[0] == (
        ATHENA,
        "crit",
        "Amazon Athena: $70.00 yesterday, nothing in the 7 days before (crit: new spend ≥ $50.00)",
    )
    assert result.details["resources"][0]["change_percent"] is None


async def test_it_reads_every_page_of_cost_and_usage(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    first = cost_and_usage({(EC2, ARBEL): week(100, 100)}, today(), next_page="p2")
    second = cost_and_usage({(ATHENA, BILLING): week(10, 95)}, today())
    queue_costs(aws, ARBEL, first, second)
    anomalies(edge, ARBEL)

    result = await run_check(clients, who(), "arbel", "cost")

    assert result.details["services"] == 2
    assert [r["id"] for r in result.details["resources"]] == [ATHENA, BILLING]
    assert edge.calls(GET_COSTS, account=ARBEL) == 2


# -- Cost Anomaly Detection -------------------------------------------------------------------


async def test_it_lists_anomalies_over_the_minimum_impact_with_their_root_causes(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    spend(aws, ARBEL, {(EC2, ARBEL): week(100, 100)})
    start = today() - timedelta(days=2)
    anomalies(
        edge,
        ARBEL,
        anomaly(
            "a-athena",
            180,
            start,
            expected=10,
            service=ATHENA,
            account=BILLING,
            region="us-east-1",
            usage_type="USE1-DataScannedInTB",
        ),
        anomaly("a-huge", 1500, start, end=today() - timedelta(days=1), expected=500),
        anomaly("a-small", 40, start),  # under anomaly_min_impact
        anomaly("a-planned", 900, start, feedback="PLANNED_ACTIVITY"),
    )

    result = await run_check(clients, who(), "arbel", "cost")

    assert result.severity is Severity.CRIT
    assert lines(result) == [
        (
            "a-huge",
            "crit",
            f"anomaly on {EC2}: $1,500 over the expected ($2,000 spent, $500 expected), "
            f"since {start}, ended {today() - timedelta(days=1)} — root cause: {EC2} in "
            f"arbel ({ARBEL}), ap-southeast-3, APS3-BoxUsage:m5.xlarge (crit ≥ $1,000)",
        ),
        (
            "a-athena",
            "warn",
            f"anomaly on {ATHENA}: $180 over the expected ($190 spent, $10.00 expected), "
            f"since {start}, still open — root cause: {ATHENA} in billing ({BILLING}), "
            "us-east-1, USE1-DataScannedInTB (warn ≥ $100)",
        ),
    ]
    assert result.summary.startswith(f"anomaly on {EC2} $1,500 (crit ≥ $1,000) and 1 more; ")
    athena = result.details["resources"][1]
    assert athena["fingerprint"] == f"cost:{ARBEL}:us-east-1:a-athena:anomaly"
    assert athena["root_causes"] == [
        {
            "service": ATHENA,
            "account": BILLING,
            "account_name": f"billing ({BILLING})",
            "region": "us-east-1",
            "usage_type": "USE1-DataScannedInTB",
        }
    ]
    assert result.details["anomalies"] == 2


async def test_anomalies_under_a_raised_minimum_are_left_out(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    spend(aws, ARBEL, {(EC2, ARBEL): week(100, 100)})
    anomalies(edge, ARBEL, anomaly("a-athena", 180, today(), service=ATHENA))

    result = await run_check(clients, who(anomaly_min_impact=250), "arbel", "cost")

    assert result.severity is Severity.OK
    assert result.summary.endswith("; no anomalies over $250")


# -- once per customer, on its payer ----------------------------------------------------------


async def test_a_second_look_the_same_day_asks_cost_explorer_nothing(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    spend(aws, ARBEL, {(ATHENA, ARBEL): week(10, 95)})
    anomalies(edge, ARBEL, anomaly("a-athena", 180, today(), service=ATHENA))

    first = await run_check(clients, who(), "arbel", "cost")
    again = await run_check(clients, who(), "arbel", "cost")

    assert edge.calls(GET_COSTS) == 1
    assert edge.calls(GET_ANOMALIES) == 1
    assert again.summary == first.summary
    assert again.details["resources"] == first.details["resources"]
    assert (first.details["cached"], again.details["cached"]) == (False, True)

    FIGURES.clear()  # a new process, or a new UTC day
    await run_check(clients, who(), "arbel", "cost")
    assert edge.calls(GET_COSTS) == 2


def test_the_day_cache_keeps_the_newest_entries_up_to_its_size() -> None:
    cache = DayCache(size=2)
    figures = Figures((), {}, {}, {}, "USD", False, ())
    for day in (1, 2, 3):
        cache.put((ARBEL, date(2025, 1, day)), figures)

    assert len(cache) == 2
    assert cache.get((ARBEL, date(2025, 1, 1))) is None
    assert cache.get((ARBEL, date(2025, 1, 3))) is figures


async def test_every_other_account_is_skipped_without_a_call(
    edge: Edge, clients: AwsClients
) -> None:
    result = await run_check(clients, who(), "billing", "cost")

    assert result.severity is Severity.SKIPPED
    assert result.summary == "cost is read once per customer, on arbel"
    assert result.details["services"] == 0
    assert edge.calls(GET_COSTS) == edge.calls(GET_ANOMALIES) == 0


async def test_a_payer_that_is_not_one_of_the_customers_accounts_is_a_clear_error(
    edge: Edge, clients: AwsClients
) -> None:
    result = await run_check(clients, who("shop-prod"), "arbel", "cost")

    assert result.severity is Severity.ERROR
    assert result.summary.startswith(
        'checks.cost.payer is "shop-prod", which is not one of the accounts of aryanoble '
        "(arbel, billing); set it to the alias of the account that holds Cost Explorer"
    )
    assert edge.calls(GET_COSTS) == 0


async def test_a_payer_that_does_not_run_cost_is_an_error_on_the_other_accounts(
    edge: Edge, clients: AwsClients
) -> None:
    result = await run_check(clients, who(payer_runs_cost=False), "billing", "cost")

    assert result.severity is Severity.ERROR
    assert "add cost to the checks of arbel" in result.summary


async def test_two_customers_payers_never_see_each_others_figures(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    spend(aws, ARBEL, {(ATHENA, ARBEL): week(10, 95)})
    spend(aws, BILLING, {(S3, BILLING): week(7, 7)})
    anomalies(edge, ARBEL, anomaly("arbel-only", 300, today(), account=ARBEL))
    anomalies(edge, BILLING)
    first = customer(
        account("arbel", ARBEL).model_copy(update={"checks": ("cost",)}),
        checks={"cost": {"payer": "arbel"}},
    )
    second = customer(
        account("billing", BILLING).model_copy(update={"checks": ("cost",)}),
        checks={"cost": {"payer": "billing"}},
    )

    arbel = await run_check(clients, first, "arbel", "cost")
    billing = await run_check(clients, second, "billing", "cost")

    assert arbel.severity is Severity.CRIT
    assert {r["id"] for r in arbel.details["resources"]} == {ATHENA, ARBEL, "arbel-only"}
    assert billing.severity is Severity.OK
    assert billing.summary == (
        "yesterday $7.00 (+0 % on the 7-day average $7.00) across 1 service in 1 account; "
        "no anomalies over $100"
    )
    assert edge.calls(GET_COSTS, account=ARBEL) == edge.calls(GET_COSTS, account=BILLING) == 1


async def test_it_asks_us_east_1_once_whatever_the_accounts_regions(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    spend(aws, ARBEL, {(EC2, ARBEL): week(100, 100)})
    edge.answer("ce", "GetAnomalies", [anomalies_page([])], account_id=ARBEL, region="us-east-1")
    both = who()
    payer = both.account("arbel")
    assert payer is not None and payer.regions == ("eu-west-1", "ap-southeast-3")

    result = await run_check(clients, both, "arbel", "cost")

    assert result.severity is Severity.OK  # the answer seeded for us-east-1 only was read
    assert REGISTRY["cost"].clients(payer) == [("us-east-1", "ce")]
    assert edge.calls(GET_COSTS) == edge.calls(GET_ANOMALIES) == 1


# -- could not look ---------------------------------------------------------------------------


async def test_access_denied_names_the_iam_action_and_is_not_retried(
    edge: Edge, clients: AwsClients
) -> None:
    anomalies(edge, ARBEL)
    edge.inject(error="access-denied", operations=[GET_COSTS], accounts=[ARBEL])

    result = await run_check(clients, who(), "arbel", "cost")

    assert result.severity is Severity.ERROR
    assert f"arbel ({ARBEL}): access denied" in result.summary
    assert "ce:GetCostAndUsage" in result.summary
    assert result.details["permanent"] is True
    assert edge.calls(GET_COSTS) == 1
    assert len(FIGURES) == 0  # nothing half-read is kept


async def test_throttling_is_retried_and_ends_ok(aws: str, edge: Edge, clients: AwsClients) -> None:
    spend(aws, ARBEL, {(EC2, ARBEL): week(100, 100)})
    anomalies(edge, ARBEL)
    edge.inject(error="throttling", operations=[GET_COSTS], times=2)

    result = await run_check(clients, who(), "arbel", "cost")

    assert result.severity is Severity.OK
    assert edge.calls(GET_COSTS) == 3


async def test_cost_explorer_without_data_says_to_enable_it(
    edge: Edge, clients: AwsClients
) -> None:
    anomalies(edge, ARBEL)
    edge.inject(
        error="DataUnavailableException", operations=[GET_COSTS], message="Data is not available."
    )

    result = await run_check(clients, who(), "arbel", "cost")

    assert result.severity is Severity.ERROR
    assert "Enable Cost Explorer in the Billing and Cost Management console" in result.summary
    assert result.details["reason"] == "subscription"


# -- settings ---------------------------------------------------------------------------------


def test_it_documents_its_defaults_and_refuses_bad_values() -> None:
    defaults = CostSettings.model_validate({"payer": "shop-prod"})

    assert (defaults.warn_percent, defaults.crit_percent, defaults.min_increase) == (30, 100, 50)
    assert (defaults.anomaly_days, defaults.anomaly_min_impact) == (3, 100)
    assert defaults.anomaly_crit_impact == 1000
    assert defaults.metric == "UnblendedCost"
    with pytest.raises(ValidationError, match="payer"):
        CostSettings.model_validate({})
    with pytest.raises(ValidationError, match="write a crit_percent of at least 50"):
        CostSettings.model_validate({"payer": "p", "warn_percent": 50, "crit_percent": 40})
    with pytest.raises(ValidationError, match="or null for no critical anomalies"):
        CostSettings.model_validate({"payer": "p", "anomaly_crit_impact": 50})
    with pytest.raises(ValidationError, match="metric"):
        CostSettings.model_validate({"payer": "p", "metric": "Unblended"})
    with pytest.raises(ValidationError, match="not a valid id"):
        CostSettings.model_validate({"payer": "Shop Prod"})


def test_the_loader_asks_for_the_payer(tmp_path: Path) -> None:
    (tmp_path / "customers").mkdir()
    (tmp_path / "customers" / "acme.yaml").write_text(
        "id: acme\nname: Acme\nslack: {channel: C0123456789}\naccounts:\n"
        "  - id: acme-prod\n    name: Acme Production\n"
        '    account_id: "123456789012"\n    regions: [eu-west-1]\n    checks: [cost]\n',
        encoding="utf-8",
    )

    _, problems = check_config(tmp_path)

    assert [p.message for p in problems] == [
        '"cost" needs settings; add checks.cost with payer (see docs/checks.md#cost)'
    ]


# -- the demo ---------------------------------------------------------------------------------


async def test_the_demo_estate_has_a_spike_and_an_anomaly_to_find(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    seed_cost.seed(aws, edge, datetime.now(UTC))
    shop = customer(
        account("shop-prod", seed_cost.PROD).model_copy(update={"checks": ("cost",)}),
        checks={"cost": {"payer": "shop-prod"}},
    )

    result = await run_check(clients, shop, "shop-prod", "cost")

    assert result.severity is Severity.CRIT
    assert [(r["id"], r["severity"]) for r in result.details["resources"]] == [
        (ATHENA, "crit"),
        (seed_cost.ANALYTICS, "crit"),
        ("demo-athena-scan", "warn"),
    ]
    assert result.details["resources"][1]["label"] == f"Analytics ({seed_cost.ANALYTICS})"
