"""A result is never attributed to the wrong account: 200 accounts swept at once through the
real AwsClients against moto over HTTP, each holding its own alarms, with the shared-client
cache so small that clients are evicted and rebuilt while other calls still use them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import NoCredentialsError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Account
from app.sandbox import moto
from checks.aws import AwsClients, AwsOptions

ACCOUNTS = 200
REGIONS = ("eu-west-1", "ap-southeast-3")
FIRST = 300_000_000_000


def alarm_name(account_id: str, region: str) -> str:
    return f"only-in-{account_id}-{region}"


@pytest.fixture(scope="module")
def account_ids(moto_url: str) -> Iterator[list[str]]:
    """200 moto accounts, each with one alarm named after it (in the first region), created
    through that account's own role; this process's AWS pointed at moto."""
    moto.reset(moto_url)
    ids = [str(FIRST + n) for n in range(ACCOUNTS)]

    botocore_session = botocore.session.get_session()
    sts = botocore_session.create_client(
        "sts",
        endpoint_url=moto_url,
        region_name=REGIONS[0],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def seed(account_id: str) -> None:
        role = f"arn:aws:iam::{account_id}:role/seed"
        keys = sts.assume_role(RoleArn=role, RoleSessionName="seed")["Credentials"]
        cloudwatch = botocore_session.create_client(
            "cloudwatch",
            endpoint_url=moto_url,
            region_name=REGIONS[0],
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
        )
        cloudwatch.put_metric_alarm(
            AlarmName=alarm_name(account_id, REGIONS[0]),
            MetricName="Errors",
            Namespace="Test",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.close()

    with pytest.MonkeyPatch.context() as env:
        for key, value in moto.FAKE_ENV.items():
            env.setenv(key, value)
        env.setenv("AWS_ENDPOINT_URL", moto_url)
        env.delenv("AWS_PROFILE", raising=False)
        for account_id in ids:  # botocore sessions are not thread-safe
            seed(account_id)
        sts.close()
        yield ids
    moto.reset(moto_url)


def accounts(ids: list[str], aliases: int) -> list[Account]:
    """The accounts, with only ``aliases`` distinct aliases among them: two customers may
    both call an account ``acct-3``; only the account id tells them apart."""
    return [
        Account(
            id=f"acct-{n % aliases}",
            name=f"Account {n}",
            account_id=account_id,
            regions=REGIONS[:: 1 if n % 2 else -1],  # AssumeRole in either region
            role_arn=f"arn:aws:iam::{account_id}:role/MonitoringReadOnly",
        )
        for n, account_id in enumerate(ids)
    ]


async def sweep(clients: AwsClients, order: list[Account]) -> list[tuple[Account, str, Any]]:
    """For every account and region, at once: its alarms and who AWS says the caller is."""
    calls = [
        (account, region, what)
        for account in order
        for region, what in (
            (REGIONS[0], "alarms"),
            (REGIONS[0], "identity"),
            (REGIONS[1], "identity"),
        )
    ]

    async def one(account: Account, region: str, what: str) -> Any:
        if what == "alarms":
            return await clients.paginate(
                account, region, "cloudwatch", "describe_alarms", "MetricAlarms"
            )
        return await clients.call(account, region, "sts", "get_caller_identity")

    answers = await asyncio.gather(*(one(*call) for call in calls))
    return [
        (account, f"{what}@{region}", answer)
        for (account, region, what), answer in zip(calls, answers, strict=True)
    ]


@pytest.mark.timeout(600)
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    order=st.permutations(range(ACCOUNTS)),
    max_clients=st.integers(min_value=1, max_value=2),
    aliases=st.sampled_from([1, 7, ACCOUNTS]),
)
def test_every_result_belongs_to_the_account_it_was_asked_for(
    account_ids: list[str], order: list[int], max_clients: int, aliases: int
) -> None:
    assert os.environ["AWS_ENDPOINT_URL"]  # the module's moto, not AWS
    every = accounts(account_ids, aliases)
    clients = AwsClients(AwsOptions(max_clients=max_clients))
    try:
        results = asyncio.run(sweep(clients, [every[n] for n in order]))
    finally:
        clients.close()

    assert len(results) == ACCOUNTS * 3
    alarms = 0
    for account, what, answer in results:
        region = what.split("@")[1]
        if what.startswith("alarms"):
            names = [alarm["AlarmName"] for alarm in answer]
            assert names == [alarm_name(account.account_id, region)], (account, what)
            alarms += 1
        else:
            assert answer["Account"] == account.account_id, (account, what)
    assert alarms == ACCOUNTS
    # 3 (region, service) clients, at most 2 kept: evicted and rebuilt during the sweep
    assert clients.built > 3


def test_a_call_that_does_not_say_whose_it_is_is_refused_not_signed_as_the_hub(aws: str) -> None:
    """The shared clients hold no credentials: even with the hub's own keys in the
    environment, a call made on one without an account's credentials is not sent."""
    clients = AwsClients()
    try:
        sts = clients.client(REGIONS[0], "sts")
        with pytest.raises(NoCredentialsError):
            sts.get_caller_identity()
    finally:
        clients.close()
