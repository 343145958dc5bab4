"""The rds check against a moto server over HTTP, in accounts reached by AssumeRole."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.sandbox.moto import seed_session
from checks.aws import AwsClients
from checks.base import Severity
from checks.rds import Settings, period_for
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

REGION = "eu-west-1"
GIB = 1024**3


@pytest.fixture
def clients(aws: str) -> Iterator[AwsClients]:
    clients = AwsClients()
    yield clients
    clients.close()


def create_db(rds: Any, name: str, storage: int = 100) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        AllocatedStorage=storage,
        MasterUsername="admin",
        MasterUserPassword="not-a-secret",
    )


def put(cw: Any, name: str, metric: str, values: list[float], unit: str) -> None:
    """Datapoints one hour apart, the last one an hour ago (oldest first)."""
    now = datetime.now(UTC)
    cw.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": name}],
                "Timestamp": now - timedelta(hours=len(values) - i),
                "Value": value,
                "Unit": unit,
            }
            for i, value in enumerate(values)
        ],
    )


def healthy(cw: Any, name: str) -> None:
    put(cw, name, "CPUUtilization", [12, 15], "Percent")
    put(cw, name, "FreeStorageSpace", [80 * GIB], "Bytes")
    put(cw, name, "FreeableMemory", [2 * GIB], "Bytes")
    put(cw, name, "DatabaseConnections", [40], "Count")


async def test_it_grades_each_instance_in_each_account_and_keeps_accounts_apart(
    aws: str, clients: AwsClients
) -> None:
    arbel = seed_session(aws, ARBEL, REGION)
    rds, cw = arbel.client("rds"), arbel.client("cloudwatch")
    for name in ("prod-db", "staging-db", "old-db", "new-db"):
        create_db(rds, name)
    rds.stop_db_instance(DBInstanceIdentifier="old-db")
    put(cw, "prod-db", "CPUUtilization", [35, 50, 93], "Percent")
    put(cw, "prod-db", "FreeStorageSpace", [60 * GIB], "Bytes")
    put(cw, "staging-db", "CPUUtilization", [20], "Percent")
    put(cw, "staging-db", "FreeStorageSpace", [9 * GIB, 7.5 * GIB], "Bytes")
    billing = seed_session(aws, BILLING, REGION)
    create_db(billing.client("rds"), "billing-db")
    healthy(billing.client("cloudwatch"), "billing-db")
    who = customer(
        account("arbel", ARBEL), account("billing", BILLING), checks={"rds": {"window": "12h"}}
    )

    result, other = await asyncio.gather(
        run_check(clients, who, "arbel", "rds"), run_check(clients, who, "billing", "rds")
    )

    assert result.severity is Severity.CRIT
    assert result.summary == "4 instances: 1 critical, 2 warnings (1 stopped)"
    lines = [(r["id"], r["severity"], r["summary"]) for r in result.details["resources"]]
    assert lines == [
        ("prod-db", "crit", "CPU max 93 % (crit ≥ 90 %)"),
        ("staging-db", "warn", "free 7.5 GiB (7.5 %) (warn ≤ 10 %)"),
        ("new-db", "warn", "no datapoints in the last 12h"),
        ("old-db", "ok", "stopped — not checked"),
    ]
    hot = result.details["resources"][0]
    assert hot["fingerprint"] == f"rds:{ARBEL}:{REGION}:prod-db:cpu"
    assert hot["series"] == "prod-db:cpu"
    assert result.series["prod-db:cpu"] == [35, 50, 93]
    assert result.series["staging-db:free_storage_gib"] == [9, 7.5]
    assert result.details["period_s"] == 900
    assert result.details["counts"] == {"crit": 1, "warn": 2, "ok": 1}
    # each instance's figures, for the monthly report (docs/reports.md)
    assert result.details["metrics"]["prod-db"]["cpu_max"] == 93
    assert result.details["metrics"]["staging-db"]["free_gib"] == 7.5
    assert result.details["metrics"]["staging-db"]["free_pct"] == 7.5
    assert result.details["metrics"]["old-db"] == {
        "cpu_max": None, "free_gib": None, "free_pct": None
    }  # fmt: skip

    assert other.severity is Severity.OK
    assert other.summary == "1 instance, all OK"
    (fine,) = other.details["resources"]
    assert fine["id"] == "billing-db"
    assert fine["summary"] == (
        "CPU max 15 %, free 80 GiB (80 %), memory min 2,048 MiB, connections max 40"
    )
    assert fine["series"] == "billing-db:cpu"


async def test_it_batches_metric_queries_for_a_large_fleet(aws: str, clients: AwsClients) -> None:
    session = seed_session(aws, ARBEL, REGION)
    rds, cw = session.client("rds"), session.client("cloudwatch")
    names = [f"db-{n:03d}" for n in range(130)]
    for name in names:
        create_db(rds, name)
    now = datetime.now(UTC)
    cw.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": name}],
                "Timestamp": now - timedelta(hours=1),
                "Value": 30.0,
            }
            for name in names
        ],
    )
    who = customer(account("arbel", ARBEL))
    batches: list[int] = []
    pages: list[str] = []
    clients.client(REGION, "cloudwatch").meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData",
        lambda params, **_: batches.append(len(params["MetricDataQueries"])),
    )
    clients.client(REGION, "rds").meta.events.register(
        "provide-client-params.rds.DescribeDBInstances",
        lambda params, **_: pages.append(params.get("Marker", "first")),
    )
    before = clients.calls  # building clients calls nothing: the role is assumed on first use

    result = await run_check(clients, who, "arbel", "rds")

    assert result.severity is Severity.OK
    assert result.summary == "130 instances, all OK"
    assert len(result.details["resources"]) == 130
    assert batches == [500, 20]  # 130 instances × 4 metrics in two calls, not 520
    assert len(pages) == 2  # moto pages describe_db_instances at 100
    assert (before, clients.calls - before) == (0, 5)  # AssumeRole, 2 pages, 2 metric batches


async def test_it_reports_an_unassumable_role_without_hiding_the_other_account(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = seed_session(aws, ARBEL, REGION)
    create_db(session.client("rds"), "prod-db")
    healthy(session.client("cloudwatch"), "prod-db")
    grant(aws, ARBEL, ["rds:DescribeDBInstances", "cloudwatch:GetMetricData"])
    grant(aws, BILLING, ["rds:DescribeDBInstances", "cloudwatch:GetMetricData"])
    for key, value in hub_principal(aws, may_assume=[role_arn(ARBEL)]).items():
        monkeypatch.setenv(key, value)
    who = customer(account("arbel", ARBEL), account("billing", BILLING))
    clients = AwsClients()
    try:
        with iam_enforced(aws):
            ok, denied = await asyncio.gather(
                run_check(clients, who, "arbel", "rds"), run_check(clients, who, "billing", "rds")
            )
    finally:
        clients.close()

    assert ok.severity is Severity.OK
    assert ok.summary == "1 instance, all OK"
    assert denied.severity is Severity.ERROR
    assert denied.summary.startswith(f"billing ({BILLING}): cannot assume {role_arn(BILLING)}")
    assert "(AccessDenied)" in denied.summary
    assert "trust policy" in denied.summary
    assert denied.details == {
        "error": "PermanentError",
        "permanent": True,
        "reason": "role",
        "call": "sts:AssumeRole",
        "code": "AccessDenied",
    }


async def test_it_says_plainly_when_there_are_no_instances(aws: str, clients: AwsClients) -> None:
    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "rds")

    assert (result.severity, result.summary) == (Severity.OK, "no DB instances")
    assert result.details["resources"] == []


async def test_it_takes_the_window_of_the_run_over_the_configured_one(
    aws: str, clients: AwsClients
) -> None:
    session = seed_session(aws, ARBEL, REGION)
    create_db(session.client("rds"), "prod-db")
    put(session.client("cloudwatch"), "prod-db", "CPUUtilization", [95, 10, 10], "Percent")
    who = customer(account("arbel", ARBEL), checks={"rds": {"window": "12h", "no_data": "crit"}})

    result = await run_check(clients, who, "arbel", "rds", window="30m")

    assert result.severity is Severity.CRIT
    assert result.details["resources"][0]["summary"] == "no datapoints in the last 30m"
    assert result.details["period_s"] == 60


async def test_it_applies_configured_thresholds_across_regions(
    aws: str, clients: AwsClients
) -> None:
    regions = ("eu-west-1", "us-east-1")
    for region in regions:
        session = seed_session(aws, ARBEL, region)
        create_db(session.client("rds"), "db")
        put(session.client("cloudwatch"), "db", "CPUUtilization", [70], "Percent")
        put(session.client("cloudwatch"), "db", "FreeableMemory", [200 * 1024**2], "Bytes")
        put(session.client("cloudwatch"), "db", "DatabaseConnections", [450], "Count")
    settings = {"cpu_warn_pct": 60, "freeable_memory_crit_mib": None, "connections_crit": 400}
    who = customer(account("arbel", ARBEL, regions), checks={"rds": settings})

    result = await run_check(clients, who, "arbel", "rds")

    found = sorted((r["region"], r["summary"]) for r in result.details["resources"])
    assert found == [
        ("eu-west-1", "CPU max 70 % (warn ≥ 60 %)"),
        ("eu-west-1", "connections max 450 (crit ≥ 400)"),
        ("eu-west-1", "memory min 200 MiB (warn ≤ 256 MiB)"),
        ("us-east-1", "CPU max 70 % (warn ≥ 60 %)"),
        ("us-east-1", "connections max 450 (crit ≥ 400)"),
        ("us-east-1", "memory min 200 MiB (warn ≤ 256 MiB)"),
    ]
    assert result.summary == "2 instances: 2 critical"
    assert set(result.series) >= {"eu-west-1/db:cpu", "us-east-1/db:connections"}


def test_it_reads_settings_written_in_yaml_and_refuses_inverted_thresholds() -> None:
    settings = Settings.model_validate({"window": "6h", "cpu_crit_pct": 95})

    assert settings.window == timedelta(hours=6)
    assert (settings.cpu_warn_pct, settings.cpu_crit_pct) == (80, 95)
    assert Settings().window == timedelta(hours=12)
    with pytest.raises(ValidationError) as raised:
        Settings.model_validate({"cpu_warn_pct": 95, "cpu_crit_pct": 90})
    assert raised.value.errors()[0]["msg"] == (
        "Value error, cpu_crit_pct (90) must not be below cpu_warn_pct (95): the more CPU, "
        "the worse, so crit is the higher number; swap them or change one"
    )
    with pytest.raises(ValidationError) as raised:
        Settings.model_validate({"free_storage_warn_pct": 5, "free_storage_crit_pct": 10})
    assert raised.value.errors()[0]["msg"] == (
        "Value error, free_storage_crit_pct (10) must not be above free_storage_warn_pct (5): "
        "the less free storage, the worse, so crit is the lower number; swap them or change one"
    )
    with pytest.raises(ValidationError, match="not a window"):
        Settings.model_validate({"window": "soon"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        Settings.model_validate({"cpu": 90})


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"cpu_warn_pct": float("nan")}, "Input should be a finite number"),
        ({"cpu_crit_pct": "inf"}, "Input should be a finite number"),
        ({"freeable_memory_warn_mib": "-inf"}, "Input should be a finite number"),
        ({"cpu_warn_pct": 150}, "Input should be less than or equal to 100"),
        ({"free_storage_crit_pct": -5}, "Input should be greater than or equal to 0"),
        ({"connections_warn": 10**20}, "Input should be less than or equal to 1000000"),
    ],
    ids=repr,
)
def test_it_refuses_a_threshold_that_would_never_be_crossed(
    settings: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings.model_validate(settings)

    assert [e["msg"] for e in raised.value.errors()] == [error]


def test_it_keeps_each_series_under_fifty_points_in_whole_minutes() -> None:
    for window, period in (
        (timedelta(minutes=30), 60),
        (timedelta(hours=12), 900),
        (timedelta(hours=24), 1800),
        (timedelta(days=7), 12600),
        (timedelta(days=31), 55800),
    ):
        assert period_for(window) == period
        assert period % 60 == 0 and window.total_seconds() / period <= 48
