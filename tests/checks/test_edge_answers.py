"""The edge answers operations moto lacks from what a test (or the demo) seeded: JSON and
REST-JSON pages, query-protocol XML, error pages, per account and region, page by page."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from app.sandbox.edge import Edge

RDS_XML = (
    '<DescribePendingMaintenanceActionsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
    "<DescribePendingMaintenanceActionsResult><PendingMaintenanceActions>"
    "<ResourcePendingMaintenanceActions>"
    "<ResourceIdentifier>arn:aws:rds:eu-west-1:123456789012:db:shop</ResourceIdentifier>"
    "<PendingMaintenanceActionDetails><PendingMaintenanceAction>"
    "<Action>system-update</Action></PendingMaintenanceAction></PendingMaintenanceActionDetails>"
    "</ResourcePendingMaintenanceActions></PendingMaintenanceActions>"
    "</DescribePendingMaintenanceActionsResult></DescribePendingMaintenanceActionsResponse>"
)


def client(edge: Edge, service: str, region: str = "us-east-1") -> object:
    return boto3.client(
        service,
        endpoint_url=edge.url,
        region_name=region,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="x",
    )


def test_it_pages_json_answers_by_their_tokens(edge: Edge) -> None:
    edge.answer(
        "health",
        "DescribeEvents",
        [
            {"json": {"events": [{"arn": "first"}], "nextToken": "page-2"}},
            {"json": {"events": [{"arn": "second"}]}},
        ],
    )
    health = client(edge, "health")
    pages = health.get_paginator("describe_events").paginate()  # type: ignore[attr-defined]
    assert [e["arn"] for page in pages for e in page["events"]] == ["first", "second"]
    assert edge.calls("health:DescribeEvents") == 2


def test_it_answers_query_protocol_calls_with_seeded_xml(edge: Edge) -> None:
    edge.answer("rds", "DescribePendingMaintenanceActions", [{"xml": RDS_XML}])
    rds = client(edge, "rds", "eu-west-1")
    found = rds.describe_pending_maintenance_actions()  # type: ignore[attr-defined]
    [pending] = found["PendingMaintenanceActions"]
    assert pending["PendingMaintenanceActionDetails"] == [{"Action": "system-update"}]


def test_a_seeded_error_reaches_the_caller_as_that_error(edge: Edge) -> None:
    edge.answer(
        "health",
        "DescribeEvents",
        [
            {
                "status": 400,
                "json": {
                    "__type": "SubscriptionRequiredException",
                    "message": "The AWS Health API requires a Business or Enterprise plan",
                },
            }
        ],
    )
    with pytest.raises(ClientError) as raised:
        client(edge, "health").describe_events()  # type: ignore[attr-defined]
    assert raised.value.response["Error"]["Code"] == "SubscriptionRequiredException"


def test_answers_for_one_region_leave_the_others_to_moto(edge: Edge) -> None:
    edge.answer(
        "backup",
        "ListRecoveryPointsByBackupVault",
        [{"json": {"RecoveryPoints": [{"RecoveryPointArn": "arn:one"}]}}],
        region="eu-west-1",
    )
    west = client(edge, "backup", "eu-west-1")
    seeded = west.list_recovery_points_by_backup_vault(BackupVaultName="Default")  # type: ignore[attr-defined]
    assert [r["RecoveryPointArn"] for r in seeded["RecoveryPoints"]] == ["arn:one"]
    # us-east-1 was not seeded: the call goes on to moto, which does not know the operation.
    with pytest.raises(ClientError):
        client(edge, "backup", "us-east-1").list_recovery_points_by_backup_vault(  # type: ignore[attr-defined]
            BackupVaultName="Default"
        )


def test_it_answers_protected_resources_from_the_completed_jobs_unless_seeded(edge: Edge) -> None:
    arn = "arn:aws:rds:eu-west-1:123456789012:db:shop"
    edge.add_backup_jobs(
        "123456789012",
        "eu-west-1",
        [
            {"resource_arn": arn, "created": "2026-12-01T01:00:00Z"},
            {"resource_arn": arn, "created": "2026-12-02T01:00:00Z", "state": "FAILED"},
            {"resource_arn": arn + "-never", "state": "FAILED"},
        ],
    )
    found = client(edge, "backup", "eu-west-1").list_protected_resources()  # type: ignore[attr-defined]
    [shop] = found["Results"]
    assert shop["ResourceArn"] == arn
    assert shop["LastBackupTime"].isoformat() == "2026-12-01T01:00:00+00:00"


def test_a_token_it_never_gave_is_refused(edge: Edge) -> None:
    edge.answer("health", "DescribeEvents", [{"json": {"events": []}}])
    with pytest.raises(ClientError) as raised:
        client(edge, "health").describe_events(nextToken="page-9")  # type: ignore[attr-defined]
    assert raised.value.response["Error"]["Code"] == "InvalidNextTokenException"
