"""The alarms check against a moto server over HTTP, in accounts reached by AssumeRole."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.sandbox.moto import seed_session
from checks.alarms import Settings, duration, label_for
from checks.aws import AwsClients
from checks.base import Severity
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

REASON = "Threshold Crossed: 1 datapoint [93.0] was greater than the threshold (90.0)."


@pytest.fixture
def clients(aws: str) -> Iterator[AwsClients]:
    clients = AwsClients()
    yield clients
    clients.close()


def alarm(cw: Any, name: str, state: str = "ALARM", reason: str = REASON) -> None:
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/RDS",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": name}],
        Statistic="Average",
        Period=300,
        EvaluationPeriods=1,
        Threshold=90,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


async def test_it_lists_alarms_in_alarm_with_label_since_and_reason(
    aws: str, clients: AwsClients
) -> None:
    west = seed_session(aws, ARBEL, "eu-west-1").client("cloudwatch")
    alarm(west, "arbel-prod-cpu")
    alarm(west, "arbel-quiet", state="OK", reason="Threshold Crossed: back to normal")
    alarm(seed_session(aws, ARBEL, "us-east-1").client("cloudwatch"), "billing-5xx")
    alarm(seed_session(aws, BILLING, "eu-west-1").client("cloudwatch"), "other-account")
    who = customer(
        account("arbel", ARBEL, ("eu-west-1", "us-east-1")),
        account("billing", BILLING),
        checks={"alarms": {"labels": {"arbel-*": "Arbel", "*": "other"}}},
        timezone="Asia/Jakarta",
    )

    result = await run_check(clients, who, "arbel", "alarms")

    assert result.severity is Severity.CRIT
    assert result.summary.startswith("2 alarms in ALARM: ")
    assert set(result.summary.removeprefix("2 alarms in ALARM: ").split(", ")) == {
        "[Arbel] arbel-prod-cpu",
        "[other] billing-5xx",
    }
    by_name = {r["id"]: r for r in result.details["resources"]}
    assert set(by_name) == {"arbel-prod-cpu", "billing-5xx"}
    prod = by_name["arbel-prod-cpu"]
    assert prod["severity"] == "crit"
    assert prod["region"] == "eu-west-1"
    assert prod["fingerprint"] == f"alarms:{ARBEL}:eu-west-1:arbel-prod-cpu:state"
    assert prod["label"] == "Arbel"
    assert prod["reason"] == REASON
    assert prod["metric"] == "AWS/RDS/CPUUtilization"
    assert prod["type"] == "metric"
    assert prod["since"]
    assert re.fullmatch(
        r"Arbel · in ALARM since \d\d \w{3} \d\d:\d\d WIB \(\d+ min\): " + re.escape(REASON),
        prod["summary"],
    )
    assert by_name["billing-5xx"]["region"] == "us-east-1"
    assert result.details["in_alarm"] == 2


async def test_it_is_ok_when_nothing_is_in_alarm(aws: str, clients: AwsClients) -> None:
    alarm(seed_session(aws, ARBEL, "eu-west-1").client("cloudwatch"), "fine", state="OK")
    alarm(seed_session(aws, BILLING, "eu-west-1").client("cloudwatch"), "not-ours")
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "alarms")

    assert (result.severity, result.summary) == (Severity.OK, "no alarms in ALARM")
    assert result.details["resources"] == []


async def test_it_uses_the_configured_severity(aws: str, clients: AwsClients) -> None:
    cw = seed_session(aws, ARBEL, "eu-west-1").client("cloudwatch")
    for n in range(5):
        alarm(cw, f"queue-depth-{n}")
    who = customer(account("arbel", ARBEL), checks={"alarms": {"severity": "warn"}})

    result = await run_check(clients, who, "arbel", "alarms")

    assert result.severity is Severity.WARN
    assert re.fullmatch(
        r"5 alarms in ALARM: (queue-depth-\d, ){2}queue-depth-\d and 2 more", result.summary
    )
    assert {r["severity"] for r in result.details["resources"]} == {"warn"}
    assert all(r["label"] is None for r in result.details["resources"])


async def test_it_reports_access_denied_naming_account_role_and_fix(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alarm(seed_session(aws, ARBEL, "eu-west-1").client("cloudwatch"), "arbel-prod-cpu")
    grant(aws, ARBEL, ["cloudwatch:DescribeAlarms"])
    grant(aws, BILLING, ["rds:DescribeDBInstances"])  # no cloudwatch:DescribeAlarms
    keys = hub_principal(aws, may_assume=[role_arn(ARBEL), role_arn(BILLING)])
    for key, value in keys.items():
        monkeypatch.setenv(key, value)
    who = customer(account("arbel", ARBEL), account("billing", BILLING))
    clients = AwsClients()
    try:
        with iam_enforced(aws):
            found, denied = await asyncio.gather(
                run_check(clients, who, "arbel", "alarms"),
                run_check(clients, who, "billing", "alarms"),
            )
    finally:
        clients.close()

    assert found.severity is Severity.CRIT
    assert found.summary == "1 alarm in ALARM: arbel-prod-cpu"
    assert denied.severity is Severity.ERROR
    assert denied.summary.startswith(f"billing ({BILLING}): access denied for cloudwatch:")
    assert f"Grant it to {role_arn(BILLING)}" in denied.summary
    assert "docs/checks.md" in denied.summary
    assert denied.details["permanent"] is True


def test_it_labels_by_the_first_matching_glob() -> None:
    labels = Settings.model_validate(
        {"labels": {"arbel-prod-*": "Prod", "arbel-*": "Arbel"}}
    ).labels

    assert label_for("arbel-prod-cpu", labels) == "Prod"
    assert label_for("arbel-staging-cpu", labels) == "Arbel"
    assert label_for("billing-5xx", labels) is None
    with pytest.raises(ValidationError):
        Settings.model_validate({"severity": "error"})


def test_it_says_how_long_an_alarm_has_been_firing() -> None:
    assert duration(timedelta(seconds=59)) == "0 min"
    assert duration(timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert duration(timedelta(hours=3)) == "3 h"
    assert duration(timedelta(days=3, hours=4, minutes=9)) == "3 d 4 h"
