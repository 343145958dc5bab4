"""Faults on the wire, injected at the edge between boto3 and moto: throttling is ridden out,
access errors are reported once with the fix and never retried, and one failing account never
hides the others."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from app.catalog import Catalog
from app.config import Customer
from app.db import Database
from app.engine.checking import CheckRunner
from app.engine.executor import Executor
from app.engine.retry import RetryPolicy
from app.engine.runs import RunService, Submit
from app.models import RunStatus, Source
from app.sandbox.edge import Edge
from checks.aws import AwsClients, AwsOptions
from checks.base import CheckResult, Severity
from checks.registry import REGISTRY
from tests.checks.support import ARBEL, BILLING, account, customer

REGION = "eu-west-1"
CHARLIE = "333333333333"
QUICK = RetryPolicy(max_tries=3, base_s=0.01, cap_s=0.05)


def completed(account_id: str) -> dict[str, Any]:
    return {
        "resource_arn": f"arn:aws:rds:{REGION}:{account_id}:db:main",
        "created": datetime.now(UTC) - timedelta(hours=1),
    }


def backups(*account_ids: str) -> Customer:
    accounts = [
        account(alias, account_id).model_copy(update={"checks": ("backup",)})
        for alias, account_id in zip(("arbel", "billing", "charlie"), account_ids, strict=False)
    ]
    return customer(*accounts)


async def check(
    clients: AwsClients, who: Customer, alias: str, retry: RetryPolicy = QUICK
) -> CheckResult:
    """The executor's own path for one target, with its retry policy."""
    runner = CheckRunner(REGISTRY, clients, retry=retry)
    return await runner.run(who, alias, "backup", run_id=1)


async def test_it_rides_out_throttling_twice_then_reports_ok(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [completed(ARBEL)])
    edge.inject(error="throttling", operations=["backup:ListBackupJobs"], times=2)

    result = await check(clients, backups(ARBEL), "arbel")

    assert result.severity == Severity.OK
    assert result.summary == "1 completed in the last 24h"
    assert edge.calls("ListBackupJobs", account=ARBEL) == 3


async def test_it_does_not_retry_the_check_when_botocore_gave_up_on_throttling(
    edge: Edge,
) -> None:
    clients = AwsClients(AwsOptions(max_attempts=2))
    edge.add_backup_jobs(ARBEL, REGION, [completed(ARBEL)])
    edge.inject(error="throttling", operations=["ListBackupJobs"], times=3)
    try:
        result = await check(clients, backups(ARBEL), "arbel")
    finally:
        clients.close()

    assert result.severity == Severity.ERROR
    # one retry layer (botocore's): two requests, and the check is not tried again
    assert edge.calls("ListBackupJobs", account=ARBEL) == 2


async def test_it_reports_throttling_that_never_ends_as_an_error_saying_it_retried(
    edge: Edge,
) -> None:
    clients = AwsClients(AwsOptions(max_attempts=3))
    edge.inject(error="throttling", operations=["ListBackupJobs"])
    try:
        result = await check(clients, backups(ARBEL), "arbel")
    finally:
        clients.close()

    assert result.severity == Severity.ERROR
    assert result.summary.startswith("arbel (111111111111): AWS said ThrottlingException")
    assert "(3 requests)" in result.summary
    assert edge.calls("ListBackupJobs") == 3


async def test_it_reports_access_denied_with_the_account_and_the_fix_and_does_not_retry(
    edge: Edge, clients: AwsClients
) -> None:
    edge.inject(error="access-denied", operations=["ListBackupJobs"], accounts=[ARBEL])

    result = await check(clients, backups(ARBEL), "arbel", retry=RetryPolicy())

    assert result.severity == Severity.ERROR
    assert result.summary.startswith(
        "arbel (111111111111): access denied for backup:list_backup_jobs (AccessDeniedException)"
    )
    assert "see docs/checks.md for the IAM policy" in result.summary
    assert result.details["permanent"] is True
    assert edge.calls("ListBackupJobs", account=ARBEL) == 1
    assert edge.calls("AssumeRole") == 1


async def test_it_never_lets_one_failing_account_hide_the_others(
    edge: Edge, clients: AwsClients, db: Database
) -> None:
    for account_id in (ARBEL, BILLING, CHARLIE):
        edge.add_backup_jobs(account_id, REGION, [completed(account_id)])
    edge.inject(error="access-denied", accounts=[BILLING])
    who = backups(ARBEL, BILLING, CHARLIE)
    catalog = Catalog([who])
    runs = RunService(db)
    run, _ = await runs.submit(Submit(catalog.plan("aryanoble"), "U0TEST", Source.CLI))

    await Executor(db, catalog, REGISTRY, clients, retry=QUICK).run_until_done(run.id)

    view = await runs.get(run.id)
    by_account = {r.account: (r.severity, r.summary) for r in view.results}
    assert view.run.status == RunStatus.COMPLETED
    assert view.run.outcome == Severity.ERROR
    assert by_account["arbel"] == ("ok", "1 completed in the last 24h")
    assert by_account["charlie"] == ("ok", "1 completed in the last 24h")
    assert by_account["billing"][0] == "error"
    assert by_account["billing"][1].startswith("billing (222222222222): access denied")
    assert edge.calls("ListBackupJobs", account=BILLING) == 1


def client(edge: Edge, service: str) -> Any:
    """A plain boto3 client through the edge that does not retry, so each error is seen."""
    return boto3.client(
        service,
        endpoint_url=edge.url,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


@pytest.mark.parametrize(
    ("service", "operation", "call", "code"),
    [
        ("sts", "GetCallerIdentity", lambda c: c.get_caller_identity(), "Throttling"),
        ("rds", "DescribeDBInstances", lambda c: c.describe_db_instances(), "Throttling"),
        ("cloudwatch", "DescribeAlarms", lambda c: c.describe_alarms(), "Throttling"),
        (
            "budgets",
            "DescribeBudgets",
            lambda c: c.describe_budgets(AccountId="123456789012"),
            "ThrottlingException",
        ),
        ("backup", "ListBackupJobs", lambda c: c.list_backup_jobs(), "ThrottlingException"),
    ],
)
def test_it_throttles_in_each_protocols_own_error_shape(
    edge: Edge, service: str, operation: str, call: Any, code: str
) -> None:
    edge.inject(error="throttling", operations=[operation], times=1)

    with pytest.raises(ClientError) as raised:
        call(client(edge, service))
    call(client(edge, service))  # the second call goes through to moto (or the edge's store)

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert edge.calls(f"{service}:{operation}") == 2


def test_it_scopes_faults_to_the_accounts_it_names(edge: Edge) -> None:
    sts = client(edge, "sts")
    keys = {
        account_id: sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/monitoring", RoleSessionName="test"
        )["Credentials"]
        for account_id in (ARBEL, BILLING)
    }
    edge.inject(error="access-denied", accounts=[BILLING])

    def rds(account_id: str) -> Any:
        creds = keys[account_id]
        return boto3.client(
            "rds",
            endpoint_url=edge.url,
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    assert rds(ARBEL).describe_db_instances()["DBInstances"] == []
    with pytest.raises(ClientError, match="AccessDenied"):
        rds(BILLING).describe_db_instances()
    assert edge.calls("DescribeDBInstances", account=ARBEL) == 1
    assert edge.calls("DescribeDBInstances", account=BILLING) == 1


def test_it_adds_latency_only_to_the_operations_it_names(edge: Edge) -> None:
    rds = client(edge, "rds")
    rds.describe_db_instances()  # warm up: the connection, and the edge's lookup of the key
    edge.inject(latency_ms=300, operations=["DescribeDBInstances"])

    started = time.perf_counter()
    rds.describe_db_instances()
    slow = time.perf_counter() - started
    rds.describe_db_subnet_groups()

    assert slow >= 0.3
    assert edge.calls("DescribeDBInstances") == 2
    assert edge.calls("rds:DescribeDBSubnetGroups") == 1
