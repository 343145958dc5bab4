"""The alarms check against a moto server over HTTP, in accounts reached by AssumeRole."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session
from checks.alarms import Settings, duration, label_for, stuck
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


def quiet_alarm(cw: Any, name: str, *, actions: bool = True, no_data: bool = False) -> None:
    """An alarm in OK (or INSUFFICIENT_DATA), its actions on or off."""
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=600,
        ComparisonOperator="GreaterThanThreshold",
        ActionsEnabled=actions,
    )
    state = "INSUFFICIENT_DATA" if no_data else "OK"
    cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"{state} (test)")


async def test_it_warns_about_an_alarm_whose_actions_are_off_whatever_its_state(
    aws: str, clients: AwsClients
) -> None:
    cw = seed_session(aws, ARBEL, "eu-west-1").client("cloudwatch")
    quiet_alarm(cw, "arbel-queue-age", actions=False)
    quiet_alarm(cw, "arbel-fine")
    alarm(cw, "arbel-prod-cpu")
    cw.disable_alarm_actions(AlarmNames=["arbel-prod-cpu"])
    quiet_alarm(seed_session(aws, BILLING, "eu-west-1").client("cloudwatch"), "x", actions=False)
    who = customer(account("arbel", ARBEL), checks={"alarms": {"labels": {"arbel-q*": "Queue"}}})

    result = await run_check(clients, who, "arbel", "alarms")

    assert result.severity is Severity.CRIT
    lines = [
        (r["id"], r["fingerprint"].rsplit(":", 1)[-1], r["severity"])
        for r in result.details["resources"]
    ]
    assert lines == [
        ("arbel-prod-cpu", "state", "crit"),
        ("arbel-prod-cpu", "actions", "warn"),
        ("arbel-queue-age", "actions", "warn"),
    ]
    off = result.details["resources"][2]
    assert off["summary"] == "Queue · actions are off: it will not notify anyone (now OK)"
    assert off["fingerprint"] == f"alarms:{ARBEL}:eu-west-1:arbel-queue-age:actions"
    assert off["actions_enabled"] is False
    assert result.summary == (
        "1 alarm in ALARM: arbel-prod-cpu; "
        "2 alarms with actions off: arbel-prod-cpu, [Queue] arbel-queue-age"
    )
    assert (result.details["in_alarm"], result.details["actions_off"]) == (1, 2)
    assert result.details["alarms"] == 3


async def test_it_warns_about_an_alarm_in_insufficient_data_for_longer_than_the_setting(
    aws: str, clients: AwsClients
) -> None:
    cw = seed_session(aws, ARBEL, "eu-west-1").client("cloudwatch")
    quiet_alarm(cw, "etl-heartbeat", no_data=True)
    quiet_alarm(cw, "etl-fine")
    impatient = customer(account("arbel", ARBEL), checks={"alarms": {"insufficient_hours": 1e-9}})
    default = customer(account("arbel", ARBEL))
    off = customer(account("arbel", ARBEL), checks={"alarms": {"insufficient_hours": None}})

    stuck_for_long = await run_check(clients, impatient, "arbel", "alarms")
    just_now = await run_check(clients, default, "arbel", "alarms")
    never = await run_check(clients, off, "arbel", "alarms")

    assert stuck_for_long.severity is Severity.WARN
    [line] = stuck_for_long.details["resources"]
    assert line["fingerprint"] == f"alarms:{ARBEL}:eu-west-1:etl-heartbeat:data"
    assert re.fullmatch(
        r"no data \(INSUFFICIENT_DATA\) since \d\d \w{3} \d\d:\d\d UTC \(0 min\): "
        r"INSUFFICIENT_DATA \(test\)",
        line["summary"],
    )
    assert stuck_for_long.summary == "1 alarm with no data for over 1e-09 h: etl-heartbeat"
    assert (stuck_for_long.details["in_alarm"], stuck_for_long.details["insufficient_data"]) == (
        0,
        1,
    )
    # in INSUFFICIENT_DATA for a moment only: not yet a problem under the default 24 h
    assert (just_now.severity, just_now.summary) == (Severity.OK, "no alarms in ALARM")
    assert never.details["resources"] == []


def test_it_counts_insufficient_data_from_the_last_state_change() -> None:
    now = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)

    def since(hours: float, state: str = "INSUFFICIENT_DATA") -> dict[str, Any]:
        return {"StateValue": state, "StateUpdatedTimestamp": now - timedelta(hours=hours)}

    assert stuck(since(25), 24, now)
    assert not stuck(since(23), 24, now)
    assert not stuck(since(72, "OK"), 24, now)
    assert not stuck(since(72), None, now)
    assert not stuck({"StateValue": "INSUFFICIENT_DATA"}, 24, now)


async def test_it_asks_for_every_alarm_in_one_describe_alarms_call_per_region(
    edge: Edge,
) -> None:
    for region in ("eu-west-1", "us-east-1"):
        cw = seed_session(edge.upstream, ARBEL, region).client("cloudwatch")
        alarm(cw, f"cpu-{region}")
        quiet_alarm(cw, f"queue-{region}", actions=False)
        quiet_alarm(cw, f"heartbeat-{region}", no_data=True)
    who = customer(account("arbel", ARBEL, ("eu-west-1", "us-east-1")))
    clients = AwsClients()
    edge.reset_counts()
    try:
        result = await run_check(clients, who, "arbel", "alarms")
    finally:
        clients.close()

    assert result.details["alarms"] == 6
    assert (result.details["in_alarm"], result.details["actions_off"]) == (2, 2)
    assert edge.calls("cloudwatch:DescribeAlarms", account=ARBEL) == 2


def test_it_documents_its_defaults_and_refuses_a_bad_insufficient_hours() -> None:
    defaults = Settings()

    assert (defaults.severity, defaults.insufficient_hours, defaults.labels) == ("crit", 24, {})
    assert Settings.model_validate({"insufficient_hours": 6}).insufficient_hours == 6
    with pytest.raises(ValidationError, match="insufficient_hours"):
        Settings.model_validate({"insufficient_hours": 0})
    with pytest.raises(ValidationError, match="insufficient_hours"):
        Settings.model_validate({"insufficient_hours": "a day"})
