"""The backup check over HTTP through the edge (which answers ListBackupJobs, and
ListProtectedResources as seeded) to moto, in accounts reached by AssumeRole."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session
from app.sandbox.seed_backup_points import protected_pages, protected_resource
from checks.aws import AwsClients
from checks.backup import BackupSettings
from checks.base import Severity
from tests.checks.support import ARBEL, BILLING, account, customer, run_check

REGION = "eu-west-1"
LIST_PROTECTED = "backup:ListProtectedResources"


@pytest.fixture(autouse=True)
def nothing_protected(request: pytest.FixtureRequest) -> None:
    """Every account and region answers ListProtectedResources with no resources unless a test
    seeds its own (moto does not know the operation)."""
    if "edge" in request.fixturenames:
        edge: Edge = request.getfixturevalue("edge")
        edge.answer("backup", "ListProtectedResources", protected_pages([]))


def points(
    edge: Edge,
    account_id: str,
    region: str,
    hours_ago: dict[str, float],
    per_page: int = 1000,
    kind: str = "db",
) -> None:
    """Seed protected RDS databases (``kind`` db or cluster) by name → age of their newest
    recovery point."""
    now = datetime.now(UTC)
    edge.answer(
        "backup",
        "ListProtectedResources",
        protected_pages(
            [
                protected_resource(
                    f"arn:aws:rds:{region}:{account_id}:{kind}:{name}", now - timedelta(hours=h)
                )
                for name, h in hours_ago.items()
            ],
            per_page,
        ),
        account_id=account_id,
        region=region,
    )


def arn(name: str, account_id: str = ARBEL, region: str = REGION, kind: str = "db") -> str:
    return f"arn:aws:rds:{region}:{account_id}:{kind}:{name}"


def job(name: str, state: str = "COMPLETED", hours_ago: float = 2, **extra: Any) -> dict[str, Any]:
    return {
        "resource_arn": f"arn:aws:rds:{REGION}:{ARBEL}:db:{name}",
        "state": state,
        "created": datetime.now(UTC) - timedelta(hours=hours_ago),
        **extra,
    }


async def test_it_lists_failed_aborted_and_expired_jobs_with_resource_vault_and_message(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(
        ARBEL,
        REGION,
        [
            job("arbel-prod-db", "FAILED", status_message="Backup job failed: incompatible state"),
            job("arbel-files", "ABORTED", vault="Files", status_message="Aborted by user"),
            job("arbel-old", "EXPIRED", hours_ago=5),
            job("arbel-api-db"),
            job("arbel-web-db"),
        ],
    )
    edge.add_backup_jobs(BILLING, REGION, [job("billing-db"), job("billing-files")])
    who = customer(account("arbel", ARBEL), account("billing", BILLING))

    arbel = await run_check(clients, who, "arbel", "backup")
    billing = await run_check(clients, who, "billing", "backup")

    assert arbel.severity == Severity.CRIT
    assert arbel.summary.startswith("2 completed, 1 failed, 1 aborted, 1 expired: ")
    found = {r["id"]: r for r in arbel.details["resources"]}
    assert set(found) == {"arbel-prod-db", "arbel-files", "arbel-old"}
    assert found["arbel-prod-db"]["vault"] == "Default"
    assert found["arbel-prod-db"]["status_message"] == "Backup job failed: incompatible state"
    assert found["arbel-files"]["summary"] == (
        'arbel-files: aborted in vault Files — "Aborted by user"'
    )
    assert found["arbel-prod-db"]["fingerprint"] == (f"backup:{ARBEL}:{REGION}:arbel-prod-db:job")
    assert arbel.details["counts"] == {"ABORTED": 1, "COMPLETED": 2, "EXPIRED": 1, "FAILED": 1}
    # every job it saw, for the monthly report to count each once (docs/reports.md)
    seen = {(name, state) for _, state, region, name, _, _ in arbel.details["seen"]}
    assert seen == {("arbel-prod-db", "FAILED"), ("arbel-files", "ABORTED"),
                    ("arbel-old", "EXPIRED"), ("arbel-api-db", "COMPLETED"),
                    ("arbel-web-db", "COMPLETED")}  # fmt: skip
    assert len({job_id for job_id, *_ in arbel.details["seen"]}) == 5
    assert billing.severity == Severity.OK
    assert billing.summary == "2 completed in the last 24h"
    assert billing.details["resources"] == []


async def test_it_warns_when_an_account_that_expects_backups_had_none_in_the_window(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("arbel-prod-db", hours_ago=30)])
    edge.add_backup_jobs(BILLING, REGION, [job("billing-db", hours_ago=30)])
    who = customer(account("arbel", ARBEL), account("billing", BILLING), checks={"backup": {}})
    relaxed = customer(
        account("arbel", ARBEL),
        account("billing", BILLING),
        checks={"backup": {"expect_jobs": False}},
    )

    expected = await run_check(clients, who, "arbel", "backup")
    not_expected = await run_check(clients, relaxed, "billing", "backup")

    assert expected.severity == Severity.WARN
    assert expected.summary.startswith("no backup jobs in the last 24h in eu-west-1")
    assert not_expected.severity == Severity.OK
    assert not_expected.summary == "no backup jobs in the last 24h (none expected)"


async def test_it_looks_only_at_jobs_created_in_the_runs_window(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(
        ARBEL,
        REGION,
        [job("arbel-prod-db", "FAILED", hours_ago=5), job("arbel-api-db", hours_ago=1)],
    )
    who = customer(account("arbel", ARBEL))

    recent = await run_check(clients, who, "arbel", "backup", window="2h")
    day = await run_check(clients, who, "arbel", "backup")

    assert recent.severity == Severity.OK
    assert recent.summary == "1 completed in the last 2h"
    assert day.severity == Severity.CRIT


async def test_it_follows_next_token_through_every_page(edge: Edge, clients: AwsClients) -> None:
    edge.set_page_size(10)
    edge.add_backup_jobs(
        ARBEL,
        REGION,
        [
            job(f"db-{i:02d}", "FAILED" if i == 33 else "COMPLETED", hours_ago=i / 2)
            for i in range(35)
        ],
    )
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "backup")

    assert result.details["jobs"] == 35
    assert [r["id"] for r in result.details["resources"]] == ["db-33"]
    assert edge.calls("backup:ListBackupJobs", account=ARBEL) == 4


async def test_it_checks_every_region_of_the_account(edge: Edge, clients: AwsClients) -> None:
    edge.add_backup_jobs(ARBEL, "eu-west-1", [job("arbel-prod-db")])
    edge.add_backup_jobs(ARBEL, "ap-southeast-3", [job("arbel-jkt-db", "FAILED")])
    who = customer(account("arbel", ARBEL, regions=("eu-west-1", "ap-southeast-3")))

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.CRIT
    assert result.details["regions"] == {
        "eu-west-1": {"COMPLETED": 1},
        "ap-southeast-3": {"FAILED": 1},
    }
    assert result.details["resources"][0]["region"] == "ap-southeast-3"


async def test_it_warns_on_a_partial_job_and_notes_a_later_success(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(
        ARBEL,
        REGION,
        [
            job("arbel-fs", "PARTIAL", hours_ago=3, status_message="2 files skipped"),
            job("arbel-fs", hours_ago=1),
        ],
    )
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.WARN
    assert result.details["resources"][0]["summary"] == (
        'arbel-fs: partial in vault Default — "2 files skipped"; a later backup completed'
    )


def test_it_documents_its_defaults_and_rejects_a_bad_window() -> None:
    defaults = BackupSettings()

    assert defaults.window == timedelta(hours=24)
    assert defaults.expect_jobs is True
    assert BackupSettings.model_validate({"window": "12h"}).window == timedelta(hours=12)
    with pytest.raises(ValidationError, match="not a window"):
        BackupSettings.model_validate({"window": "yesterday"})
    with pytest.raises(ValidationError, match="expect_job"):
        BackupSettings.model_validate({"expect_job": False})


# -- recovery points ---------------------------------------------------------------------------

RDS_XMLNS = "http://rds.amazonaws.com/doc/2014-10-31/"


def instances_xml(*dbs: dict[str, Any]) -> str:
    """A DescribeDBInstances answer: each db a ``name``, ``days_old`` and optional ``cluster``
    and ``replica_of`` (moto cannot make an instance that is days old)."""
    members = "".join(
        "<DBInstance>"
        f"<DBInstanceIdentifier>{db['name']}</DBInstanceIdentifier>"
        f"<DBInstanceArn>{arn(db['name'])}</DBInstanceArn>"
        "<DBInstanceStatus>available</DBInstanceStatus>"
        "<InstanceCreateTime>"
        f"{(datetime.now(UTC) - timedelta(days=db['days_old'])):%Y-%m-%dT%H:%M:%S.000Z}"
        "</InstanceCreateTime>"
        + (f"<DBClusterIdentifier>{db['cluster']}</DBClusterIdentifier>" if "cluster" in db else "")
        + (
            f"<ReadReplicaSourceDBInstanceIdentifier>{db['replica_of']}"
            "</ReadReplicaSourceDBInstanceIdentifier>"
            if "replica_of" in db
            else ""
        )
        + "</DBInstance>"
        for db in dbs
    )
    return (
        f'<DescribeDBInstancesResponse xmlns="{RDS_XMLNS}"><DescribeDBInstancesResult>'
        f"<DBInstances>{members}</DBInstances></DescribeDBInstancesResult>"
        "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
        "</DescribeDBInstancesResponse>"
    )


def create_db(url: str, account_id: str, name: str, region: str = REGION) -> None:
    seed_session(url, account_id, region).client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
    )


async def test_it_warns_when_a_protected_resources_newest_recovery_point_is_older_than_its_rpo(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])
    points(edge, ARBEL, REGION, {"orders-db": 2, "reports-db": 30, "ledger-db": 50})
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.CRIT
    found = {r["name"]: r for r in result.details["resources"]}
    assert list(found) == ["ledger-db", "reports-db"]  # the worst first; orders-db is fine
    ledger, reports = found["ledger-db"], found["reports-db"]
    assert ledger["severity"] == "crit"
    assert ledger["summary"] == "newest recovery point 2 d 2 h old (crit > 2 × RPO 24 h)"
    assert reports["severity"] == "warn"
    assert reports["summary"] == "newest recovery point 1 d 6 h old (warn > RPO 24 h)"
    assert reports["id"] == arn("reports-db")
    assert reports["fingerprint"] == f"backup:{ARBEL}:{REGION}:{arn('reports-db')}:rpo"
    assert (reports["rpo_hours"], reports["age_hours"]) == (24, 30.0)
    assert reports["vault"] == "Default"
    assert result.summary == (
        "ledger-db: newest recovery point 2 d 2 h old (crit > 2 × RPO 24 h) and 1 more; "
        "1 completed in the last 24h"
    )
    details = result.details
    assert (details["protected"], details["stale"], details["unprotected"]) == (3, 2, 0)
    assert details["rpo_hours"] == 24
    assert [job_id for job_id, *_ in details["seen"]]  # the monthly report's jobs, as before


async def test_it_takes_the_first_matching_rpo_override_and_skips_a_null_one(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])
    points(
        edge,
        ARBEL,
        REGION,
        {"archive-2019": 100, "archive-2020": 200, "legacy-db": 2000, "orders-db": 30},
    )
    overrides = {
        "arn:aws:rds:*:*:db:archive-2020": 72,
        "arn:aws:rds:*:*:db:archive-*": 168,
        "arn:aws:rds:*:*:db:legacy-*": None,
    }
    who = customer(account("arbel", ARBEL), checks={"backup": {"rpo_overrides": overrides}})

    result = await run_check(clients, who, "arbel", "backup")

    lines = {r["name"]: (r["severity"], r["rpo_hours"]) for r in result.details["resources"]}
    assert lines == {"archive-2020": ("crit", 72), "orders-db": ("warn", 24)}
    assert result.details["stale"] == 2


async def test_it_is_critical_about_a_database_must_protect_names_that_has_no_recovery_point(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])
    points(edge, ARBEL, REGION, {"orders-db": 3})
    edge.answer(
        "rds",
        "DescribeDBInstances",
        [
            {
                "xml": instances_xml(
                    {"name": "orders-db", "days_old": 90},
                    {"name": "billing-db", "days_old": 40},
                    {"name": "orders-db-replica", "days_old": 40, "replica_of": "orders-db"},
                    {"name": "aurora-1", "days_old": 40, "cluster": "aurora"},
                    {"name": "scratch", "days_old": 40},
                )
            }
        ],
        account_id=ARBEL,
        region=REGION,
    )
    settings = {"must_protect": ["arn:aws:rds:*:*:db:*-db"]}
    who = customer(account("arbel", ARBEL), checks={"backup": settings})

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.CRIT
    [line] = result.details["resources"]
    assert line["id"] == arn("billing-db")
    assert line["fingerprint"] == f"backup:{ARBEL}:{REGION}:{arn('billing-db')}:unprotected"
    assert line["summary"] == (
        "no recovery point; must_protect names it (arn:aws:rds:*:*:db:*-db) — "
        "add it to a backup plan's resource assignment"
    )
    assert line["resource_type"] == "RDS DB instance"
    assert result.summary.startswith("billing-db: no recovery point; must_protect names it")
    # the replica and the Aurora member are not what AWS Backup protects; scratch is not named
    assert result.details["listed"] == {"RDS DB instance": 2}
    assert result.details["unprotected"] == 1
    assert edge.calls("rds:DescribeDBInstances", account=ARBEL) == 1
    assert edge.calls("rds:DescribeDBClusters") == 0  # no pattern names a cluster


async def test_it_gives_a_new_database_until_its_rpo_for_a_first_recovery_point(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])
    create_db(edge.upstream, ARBEL, "fresh-db")
    who = customer(
        account("arbel", ARBEL), checks={"backup": {"must_protect": ["arn:aws:rds:*:*:db:*"]}}
    )

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.OK
    [line] = result.details["resources"]
    assert line["severity"] == "ok"
    assert re.fullmatch(
        r"no recovery point yet; created \d+ min ago, due within 23 h \d+ min \(RPO 24 h\)",
        line["summary"],
    )
    assert result.summary == "1 completed in the last 24h"
    assert result.details["unprotected"] == 0


async def test_it_lists_dynamodb_tables_and_ebs_volumes_and_counts_a_volume_with_its_instance(
    edge: Edge, clients: AwsClients
) -> None:
    session = seed_session(edge.upstream, ARBEL, REGION)
    tables = session.client("dynamodb")
    for name in ("orders", "sessions"):
        tables.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    ec2 = session.client("ec2")
    server = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]
    now = datetime.now(UTC)
    table = f"arn:aws:dynamodb:{REGION}:{ARBEL}:table"
    instance = f"arn:aws:ec2:{REGION}:{ARBEL}:instance/{server['InstanceId']}"
    edge.answer(
        "backup",
        "ListProtectedResources",
        protected_pages(
            [
                protected_resource(f"{table}/orders", now - timedelta(hours=1)),
                protected_resource(instance, now - timedelta(hours=1)),
            ]
        ),
        account_id=ARBEL,
        region=REGION,
    )
    patterns = ["arn:aws:dynamodb:*:*:table/*", "arn:aws:ec2:*:*:volume/*"]
    who = customer(account("arbel", ARBEL), checks={"backup": {"must_protect": patterns}})
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.CRIT
    [line] = result.details["resources"]  # the instance's root volume is backed up with it
    assert (line["id"], line["severity"]) == (f"{table}/sessions", "crit")
    assert result.details["listed"] == {"DynamoDB table": 2, "EBS volume": 1}


async def test_it_does_not_judge_a_deleted_resource_whose_recovery_points_are_kept(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])
    create_db(edge.upstream, ARBEL, "orders-db")
    points(edge, ARBEL, REGION, {"orders-db": 2, "dropped-db": 400})
    who = customer(
        account("arbel", ARBEL), checks={"backup": {"must_protect": ["arn:aws:rds:*:*:db:*"]}}
    )

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.OK
    assert result.details["resources"] == []
    assert (result.details["protected"], result.details["gone"]) == (1, 1)


async def test_it_follows_list_protected_resources_through_every_page(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("db-00")])
    points(edge, ARBEL, REGION, {f"db-{i:02d}": 40 if i == 24 else 1 for i in range(25)}, 10)
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "backup")

    assert [r["name"] for r in result.details["resources"]] == ["db-24"]
    assert result.details["protected"] == 25
    assert edge.calls(LIST_PROTECTED, account=ARBEL) == 3


async def test_it_judges_recovery_points_in_every_region_and_keeps_accounts_apart(
    edge: Edge, clients: AwsClients
) -> None:
    regions = ("eu-west-1", "ap-southeast-3")
    for region in regions:
        edge.add_backup_jobs(ARBEL, region, [job("orders-db")])
    edge.add_backup_jobs(BILLING, REGION, [job("billing-db")])
    points(edge, ARBEL, "eu-west-1", {"orders-db": 1})
    points(edge, ARBEL, "ap-southeast-3", {"jakarta-db": 60})
    points(edge, BILLING, REGION, {"billing-db": 1})
    who = customer(account("arbel", ARBEL, regions), account("billing", BILLING))

    arbel = await run_check(clients, who, "arbel", "backup")
    billing = await run_check(clients, who, "billing", "backup")

    [line] = arbel.details["resources"]
    assert (line["region"], line["name"], line["severity"]) == (
        "ap-southeast-3",
        "jakarta-db",
        "crit",
    )
    assert arbel.details["protected"] == 2
    assert edge.calls(LIST_PROTECTED, account=ARBEL) == 2  # one per region
    assert (billing.severity, billing.summary) == (Severity.OK, "1 completed in the last 24h")
    assert billing.details["protected"] == 1


async def test_it_leads_with_a_stale_recovery_point_when_no_job_ran(
    edge: Edge, clients: AwsClients
) -> None:
    points(edge, ARBEL, REGION, {"orders-db": 60})
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.CRIT
    assert result.summary == (
        "orders-db: newest recovery point 2 d 12 h old (crit > 2 × RPO 24 h); "
        "no backup jobs in the last 24h in eu-west-1; expected at least one — "
        "check the backup plan and its resource selection"
    )


async def test_it_makes_one_call_per_region_for_jobs_and_one_for_recovery_points_by_default(
    edge: Edge, clients: AwsClients
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])
    who = customer(account("arbel", ARBEL, ("eu-west-1", "us-east-1")))

    await run_check(clients, who, "arbel", "backup")

    by_operation = {
        f"{row['service']}:{row['operation']}": row["count"]
        for row in edge.counts()
        if row["account"] == ARBEL
    }
    assert by_operation == {"backup:ListBackupJobs": 2, LIST_PROTECTED: 2}


async def test_it_rides_out_throttled_recovery_point_calls(edge: Edge, clients: AwsClients) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])
    points(edge, ARBEL, REGION, {"orders-db": 30})
    edge.inject(error="throttling", operations=[LIST_PROTECTED], times=2)
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "backup")

    assert result.severity == Severity.WARN
    assert edge.calls(LIST_PROTECTED, account=ARBEL) == 3


@pytest.mark.parametrize(
    ("operation", "settings"),
    [
        ("ListProtectedResources", {}),
        ("DescribeDBInstances", {"must_protect": ["arn:aws:rds:*:*:db:*"]}),
    ],
)
async def test_it_names_the_iam_action_it_was_refused_and_does_not_retry(
    edge: Edge, clients: AwsClients, operation: str, settings: dict[str, Any]
) -> None:
    edge.add_backup_jobs(ARBEL, REGION, [job("orders-db")])
    edge.inject(error="access-denied", operations=[operation], accounts=[ARBEL])
    who = customer(account("arbel", ARBEL), checks={"backup": settings})

    result = await run_check(clients, who, "arbel", "backup")

    service = "backup" if operation == "ListProtectedResources" else "rds"
    assert result.severity == Severity.ERROR
    assert result.summary.startswith(f"arbel ({ARBEL}): access denied for {service}:")
    assert f"(IAM action {service}:{operation})" in result.summary
    assert result.details["permanent"] is True
    assert edge.calls(operation, account=ARBEL) == 1


def test_it_documents_its_recovery_point_defaults_and_refuses_bad_patterns() -> None:
    defaults = BackupSettings()

    assert (defaults.rpo_hours, defaults.rpo_overrides, defaults.must_protect) == (24, {}, ())
    assert defaults.rpo_for("arn:aws:rds:eu-west-1:111111111111:db:x") == 24
    with pytest.raises(ValidationError, match='"archive-\\*" is not an ARN pattern; write one'):
        BackupSettings.model_validate({"rpo_overrides": {"archive-*": 168}})
    with pytest.raises(ValidationError, match="rpo_overrides"):
        BackupSettings.model_validate({"rpo_overrides": {"arn:aws:rds:*:*:db:*": 0}})
    with pytest.raises(ValidationError, match="rpo_hours"):
        BackupSettings.model_validate({"rpo_hours": 0})
    with pytest.raises(ValidationError, match="must_protect takes patterns of RDS DB instances"):
        BackupSettings.model_validate({"must_protect": ["arn:aws:s3:::*"]})
    either = BackupSettings.model_validate({"must_protect": ["arn:aws:rds:*:*:*"]})
    assert [lister.title for lister in either.listers()] == ["RDS DB instance", "RDS DB cluster"]
