"""AWS Backup recovery points in the demo estate, the answers the edge gives for them, and the
demo's alarms that are not simply firing.

moto has no ``ListProtectedResources``, so the edge answers it (:meth:`Edge.answer`) with what
this module builds, per account and region of the demo estate:

- shop-prod: its database's newest recovery point is 30 hours old (last night's backup job
  failed): a warning against the default 24 h RPO. Its replica and the EBS volumes of the daily
  plan were backed up an hour or two ago;
- shop-staging: everything backed up within the day;
- analytics: the warehouse was backed up last night, the stopped archive database five days
  ago (within its own RPO when the config gives it 168 h, critical otherwise), and the
  DynamoDB table ``analytics-events`` (planted in moto here) has never been backed up:
  critical when ``must_protect`` names DynamoDB tables.

Every other account and region (analytics' us-east-1) answers "no protected resources".

The demo customer's config that makes the check look for all of it::

    checks:
      backup:
        must_protect: ["arn:aws:rds:*:*:db:*", "arn:aws:dynamodb:*:*:table/*"]
        rpo_overrides: {"arn:aws:rds:*:*:db:analytics-archive": 168}

Alarms (in moto's CloudWatch): shop-staging's ``shop-staging-queue-age`` has its actions
switched off (a warning at once: it would notify nobody), and analytics'
``etl-export-heartbeat`` is in INSUFFICIENT_DATA, which the alarms check reports once it has
been so for ``insufficient_hours`` (24 h by default: a demo left running overnight shows it).

:func:`protected_resource` and :func:`protected_pages` are what the tests seed with too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session

PROD, STAGING, ANALYTICS = "111111111111", "222222222222", "333333333333"
REGION = "ap-southeast-3"
UNPROTECTED_TABLE = "analytics-events"
VOLUMES = 14
"""The EBS volumes of the daily plan in each account (app.sandbox.seed backs them up)."""
_TYPES = {"rds": "RDS", "ec2": "EBS", "dynamodb": "DynamoDB"}


def protected_resource(
    arn: str,
    last_backup: datetime,
    *,
    name: str | None = None,
    resource_type: str | None = None,
    vault: str = "Default",
) -> dict[str, Any]:
    """One resource as ``ListProtectedResources`` answers it (``LastBackupTime`` is when its
    newest recovery point was made)."""
    _, partition, service, region, account, rest = arn.split(":", 5)
    return {
        "ResourceArn": arn,
        "ResourceType": resource_type or _TYPES.get(service, service.upper()),
        "ResourceName": name or rest.rsplit(":", 1)[-1].rsplit("/", 1)[-1],
        "LastBackupTime": last_backup.timestamp(),
        "LastBackupVaultArn": f"arn:{partition}:backup:{region}:{account}:backup-vault:{vault}",
        "LastRecoveryPointArn": (
            f"arn:{partition}:backup:{region}:{account}:recovery-point:"
            f"{int(last_backup.timestamp())}"
        ),
    }


def protected_pages(
    items: Iterable[Mapping[str, Any]], per_page: int = 1000
) -> list[dict[str, Any]]:
    """``items`` as ``ListProtectedResources`` pages, each but the last with ``NextToken:
    page-N+1`` (the edge's tokens)."""
    listed = [dict(item) for item in items]
    chunks = [listed[i : i + per_page] for i in range(0, len(listed), per_page)] or [[]]
    pages: list[dict[str, Any]] = []
    for number, chunk in enumerate(chunks, start=1):
        body: dict[str, Any] = {"Results": chunk}
        if number < len(chunks):
            body["NextToken"] = f"page-{number + 1}"
        pages.append({"json": body})
    return pages


def estate(now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The demo's protected resources by account, in ap-southeast-3."""

    def db(account: str, name: str, hours_ago: float) -> dict[str, Any]:
        arn = f"arn:aws:rds:{REGION}:{account}:db:{name}"
        return protected_resource(arn, now - timedelta(hours=hours_ago), vault="daily")

    def volumes(account: str) -> list[dict[str, Any]]:
        return [
            protected_resource(
                f"arn:aws:ec2:{REGION}:{account}:volume/vol-{i:04d}",
                now - timedelta(hours=1 + i % 20),
                vault="daily",
            )
            for i in range(VOLUMES)
        ]

    return {
        PROD: [db(PROD, "shop-prod-db", 30), db(PROD, "shop-prod-replica", 2), *volumes(PROD)],
        STAGING: [db(STAGING, "shop-staging-db", 3), *volumes(STAGING)],
        ANALYTICS: [
            db(ANALYTICS, "etl-warehouse", 7),
            db(ANALYTICS, "analytics-archive", 5 * 24),
            *volumes(ANALYTICS),
        ],
    }


def seed(moto_url: str, edge: Edge | None, now: datetime) -> None:
    """Plant the unprotected table and the alarms in moto, and the protected resources in the
    edge (without an edge, the backup check has no recovery points to judge)."""
    tables = seed_session(moto_url, ANALYTICS, REGION).client("dynamodb", endpoint_url=moto_url)
    tables.create_table(
        TableName=UNPROTECTED_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    _seed_alarms(moto_url)
    if edge is None:
        return
    edge.answer("backup", "ListProtectedResources", protected_pages([]))
    for account, items in estate(now).items():
        edge.answer(
            "backup",
            "ListProtectedResources",
            protected_pages(items),
            account_id=account,
            region=REGION,
        )


def _seed_alarms(moto_url: str) -> None:
    staging = seed_session(moto_url, STAGING, REGION).client("cloudwatch", endpoint_url=moto_url)
    staging.put_metric_alarm(
        AlarmName="shop-staging-queue-age",
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": "shop-staging-orders"}],
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=3,
        Threshold=600,
        ComparisonOperator="GreaterThanThreshold",
        ActionsEnabled=False,
        AlarmDescription="shop-staging-queue-age (demo): actions switched off",
    )
    analytics = seed_session(moto_url, ANALYTICS, REGION).client(
        "cloudwatch", endpoint_url=moto_url
    )
    analytics.put_metric_alarm(
        AlarmName="etl-export-heartbeat",
        Namespace="Analytics/ETL",
        MetricName="ExportHeartbeat",
        Statistic="Sum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        AlarmDescription="etl-export-heartbeat (demo): its metric stopped arriving",
    )
    analytics.set_alarm_state(
        AlarmName="etl-export-heartbeat",
        StateValue="INSUFFICIENT_DATA",
        StateReason="Insufficient Data: 1 datapoint was unknown.",
    )
