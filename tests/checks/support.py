"""What the check tests share: accounts reached by AssumeRole inside moto, running a check the
way the executor does, and moto's IAM enforcement switched on for a block.

moto isolates accounts by credentials: a role assumed in account 111111111111 gets keys whose
calls land in that account's backends, so two accounts seeded with ``seed_session`` never see
each other's resources, and AwsClients (which assumes ``role_arn``) reads the right one.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from app.config import Account, Customer, parse_window
from app.engine.checking import CheckRunner
from app.engine.retry import RetryPolicy
from app.sandbox.moto import seed_session
from checks.aws import AwsClients
from checks.base import CheckResult
from checks.registry import REGISTRY

ROLE = "MonitoringReadOnly"
ARBEL = "111111111111"
BILLING = "222222222222"


def role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{ROLE}"


def account(alias: str, account_id: str, regions: tuple[str, ...] = ("eu-west-1",)) -> Account:
    return Account(
        id=alias,
        name=alias.title(),
        account_id=account_id,
        regions=regions,
        role_arn=role_arn(account_id),
    )


def customer(
    *accounts: Account, checks: dict[str, dict[str, Any]] | None = None, timezone: str = "UTC"
) -> Customer:
    return Customer(
        id="aryanoble",
        name="Aryanoble",
        timezone=timezone,
        accounts=accounts,
        checks=checks or {},
    )


async def run_check(
    clients: AwsClients, who: Customer, alias: str, kind: str, window: str | None = None
) -> CheckResult:
    """Exactly the executor's path: settings from the customer, the window, the context, and
    errors turned into ``error`` results. ``run_check`` does not touch the database."""
    runner = CheckRunner(REGISTRY, clients, retry=RetryPolicy(max_tries=1))
    span = parse_window(window) if window else None
    return await runner.run(who, alias, kind, run_id=1, window=span)


def grant(url: str, account_id: str, actions: list[str]) -> None:
    """Create the monitoring role in ``account_id`` allowed exactly ``actions``.

    moto names CloudWatch's IAM actions after its endpoint (``monitoring:GetMetricData``), so
    each ``cloudwatch:`` action is granted under both names."""
    actions = actions + [
        a.replace("cloudwatch:", "monitoring:") for a in actions if a.startswith("cloudwatch:")
    ]
    iam = seed_session(url, account_id).client("iam")
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(_policy(["sts:*"], "*")))
    iam.put_role_policy(
        RoleName=ROLE, PolicyName="read-only", PolicyDocument=json.dumps(_policy(actions, "*"))
    )


def hub_principal(url: str, may_assume: list[str]) -> dict[str, str]:
    """An IAM user in moto's default account that may assume only ``may_assume``; its keys,
    as environment variables."""
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_user(UserName="hub")
    iam.put_user_policy(
        UserName="hub",
        PolicyName="assume",
        PolicyDocument=json.dumps(_policy(["sts:AssumeRole"], may_assume)),
    )
    key = iam.create_access_key(UserName="hub")["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


@contextmanager
def iam_enforced(url: str) -> Iterator[None]:
    """moto checks every request against IAM policies inside the block (off by default)."""
    _auth(url, "0")
    try:
        yield
    finally:
        _auth(url, "inf")


def _auth(url: str, unauthenticated_requests: str) -> None:
    request = urllib.request.Request(
        f"{url}/moto-api/reset-auth",
        data=unauthenticated_requests.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def _policy(actions: list[str], resources: list[str] | str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}],
    }
