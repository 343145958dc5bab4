"""The backup check over HTTP through the edge (which answers ListBackupJobs) to moto, in
accounts reached by AssumeRole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.sandbox.edge import Edge
from checks.aws import AwsClients
from checks.backup import BackupSettings
from checks.base import Severity
from tests.checks.support import ARBEL, BILLING, account, customer, run_check

REGION = "eu-west-1"


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
