"""Why a check could not look, in a word a machine can read: each kind of failure, injected on
the wire at the edge between boto3 and moto, comes back as an ``error`` result whose details
carry its ``reason``, the AWS call it was making (as IAM names it) and AWS's error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.config import Customer
from app.engine.checking import CheckRunner
from app.engine.retry import RetryPolicy
from app.sandbox.edge import Edge
from checks.aws import AwsClients, AwsOptions
from checks.base import Check, CheckContext, CheckResult, Severity
from checks.registry import REGISTRY
from tests.checks.support import ARBEL, account, customer

LIST_JOBS = "backup:ListBackupJobs"
ASSUME = "sts:AssumeRole"
QUICK = RetryPolicy(max_tries=2, base_s=0.01, cap_s=0.02)


def arbel(region: str = "eu-west-1") -> Customer:
    return customer(account("arbel", ARBEL, (region,)).model_copy(update={"checks": ("backup",)}))


async def details_of(
    who: Customer, options: AwsOptions | None = None, timeout_s: float = 30.0
) -> tuple[str, dict[str, Any]]:
    """The backup check on arbel, the executor's way (fresh clients: the role assumed now)."""
    clients = AwsClients(options or AwsOptions(max_attempts=1))
    try:
        runner = CheckRunner(REGISTRY, clients, retry=QUICK, timeout_s=timeout_s)
        result = await runner.run(who, "arbel", "backup", run_id=1)
    finally:
        clients.close()
    assert result.severity == Severity.ERROR
    return result.summary, dict(result.details)


@pytest.mark.parametrize(
    ("fault", "region", "reason", "call", "code"),
    [
        ({"error": "access-denied", "operations": [LIST_JOBS]}, "eu-west-1",
         "access", LIST_JOBS, "AccessDeniedException"),
        ({"error": "access-denied", "operations": [ASSUME]}, "eu-west-1",
         "role", ASSUME, "AccessDenied"),
        ({"error": "throttling", "operations": [LIST_JOBS]}, "eu-west-1",
         "throttled", LIST_JOBS, "ThrottlingException"),
        ({"error": "SubscriptionRequiredException", "operations": [LIST_JOBS]}, "eu-west-1",
         "subscription", LIST_JOBS, "SubscriptionRequiredException"),
        ({"error": "OptInRequired", "operations": [LIST_JOBS]}, "eu-west-1",
         "subscription", LIST_JOBS, "OptInRequired"),
        ({"error": "UnrecognizedClientException", "operations": [LIST_JOBS]}, "ap-southeast-3",
         "region", LIST_JOBS, "UnrecognizedClientException"),
        ({"error": "RegionDisabledException", "operations": [ASSUME]}, "ap-southeast-3",
         "region", ASSUME, "RegionDisabledException"),
        ({"error": "UnrecognizedClientException", "operations": [LIST_JOBS]}, "eu-west-1",
         "role", LIST_JOBS, "UnrecognizedClientException"),
        ({"error": "InvalidParameterValueException", "operations": [LIST_JOBS]}, "eu-west-1",
         "other", LIST_JOBS, "InvalidParameterValueException"),
        ({"error": "ServiceUnavailable", "status": 503, "operations": [LIST_JOBS]}, "eu-west-1",
         "other", LIST_JOBS, "ServiceUnavailable"),
    ],
)  # fmt: skip
async def test_each_failure_says_why_and_which_call(
    edge: Edge, fault: dict[str, Any], region: str, reason: str, call: str, code: str
) -> None:
    edge.inject(**fault)

    summary, details = await details_of(arbel(region))

    assert (details["reason"], details["call"], details["code"]) == (reason, call, code)
    assert summary.startswith(f"arbel ({ARBEL}): ")


async def test_access_denied_names_the_iam_action_to_grant(edge: Edge) -> None:
    edge.inject(error="access-denied", operations=[LIST_JOBS])

    summary, _ = await details_of(arbel())

    assert f"(IAM action {LIST_JOBS})" in summary
    assert "see docs/checks.md for the IAM policy" in summary


async def test_a_region_not_enabled_says_how_to_enable_it(edge: Edge) -> None:
    edge.inject(error="UnrecognizedClientException", operations=[LIST_JOBS])

    summary, _ = await details_of(arbel("ap-southeast-3"))

    assert "ap-southeast-3" in summary
    assert "not enabled for this account" in summary
    assert "regions:" in summary


async def test_a_subscription_required_says_what_to_do(edge: Edge) -> None:
    edge.inject(error="SubscriptionRequiredException", operations=[LIST_JOBS])

    summary, details = await details_of(arbel())

    assert "Subscribe the account to the service" in summary
    assert details["permanent"] is True
    assert edge.calls("ListBackupJobs") == 1  # not retried: it would fail the same way


async def test_throttled_assume_role_is_retried_not_called_a_broken_role(edge: Edge) -> None:
    edge.inject(error="throttling", operations=[ASSUME], times=1)
    edge.add_backup_jobs(
        ARBEL,
        "eu-west-1",
        [{"resource_arn": f"arn:aws:rds:eu-west-1:{ARBEL}:db:main",
          "created": datetime.now(UTC) - timedelta(hours=1)}],
    )  # fmt: skip

    clients = AwsClients(AwsOptions(max_attempts=2))  # botocore retries it: the one layer
    try:
        runner = CheckRunner(REGISTRY, clients, retry=QUICK)
        result = await runner.run(arbel(), "arbel", "backup", run_id=1)
    finally:
        clients.close()

    assert result.severity == Severity.OK


async def test_a_call_aws_does_not_answer_in_time_is_a_timeout(edge: Edge) -> None:
    edge.inject(latency_ms=1500, operations=[LIST_JOBS])

    _, details = await details_of(arbel(), AwsOptions(max_attempts=1, read_timeout_s=0.2))

    assert (details["reason"], details["call"]) == ("timeout", LIST_JOBS)


async def test_a_check_out_of_time_is_a_timeout(edge: Edge) -> None:
    edge.inject(latency_ms=1500, operations=[LIST_JOBS])

    summary, details = await details_of(arbel(), timeout_s=0.3)

    assert summary.startswith("timed out after 0.3 s")
    assert details["reason"] == "timeout"


class Crashes(Check):
    kind = "backup"

    async def run(self, ctx: CheckContext) -> CheckResult:
        raise ZeroDivisionError("a bug")


async def test_a_check_that_crashes_is_other() -> None:
    clients = AwsClients()
    try:
        runner = CheckRunner({"backup": Crashes()}, clients)
        result = await runner.run(arbel(), "arbel", "backup", run_id=7)
    finally:
        clients.close()

    assert result.severity == Severity.ERROR
    assert result.details["reason"] == "other"
    assert "see the hub's log for run #7" in result.summary
