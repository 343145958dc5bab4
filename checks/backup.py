"""AWS Backup: the backup jobs created in the window, in each of the account's regions.

Failed, aborted and expired jobs are critical and each resource is listed with its vault and
AWS's status message; partially completed jobs are a warning; an account that expects backups
and had none in the window is a warning (a deleted plan or an emptied selection looks exactly
like that). One ``ListBackupJobs`` call per region and page, filtered by AWS on creation date.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, cast
from urllib.parse import quote

from pydantic import BeforeValidator, Field

from app.config import format_window, window_setting
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource

PROBLEM_STATES = {"FAILED": Severity.CRIT, "ABORTED": Severity.CRIT, "EXPIRED": Severity.CRIT}
WARN_STATES = {"PARTIAL": Severity.WARN}
RUNNING_STATES = ("CREATED", "PENDING", "RUNNING", "ABORTING")
MAX_MESSAGE = 200


class BackupSettings(CheckSettings):
    window: Annotated[timedelta, BeforeValidator(window_setting)] = timedelta(hours=24)
    """Jobs created this far back are looked at (``--window`` overrides it per run)."""
    expect_jobs: bool = True
    """Warn when the account had no backup job at all in the window."""
    rpo_hours: float = Field(24, gt=0, le=24 * 31)
    """The recovery point objective: the monthly report counts a resource whose newest
    completed backup is older than this as breaking it, and for how long."""


class BackupCheck(Check):
    kind = "backup"
    Settings = BackupSettings
    services = ("backup",)

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = cast(BackupSettings, ctx.settings)
        regions = ctx.account.regions
        answers = await asyncio.gather(
            *(
                ctx.paginate(
                    region, "backup", "list_backup_jobs", "BackupJobs", ByCreatedAfter=ctx.since
                )
                for region in regions
            ),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        jobs = {
            region: cast(list[dict[str, Any]], a)
            for region, a in zip(regions, answers, strict=True)
        }
        return summarise(ctx, jobs, settings)


def summarise(
    ctx: CheckContext, jobs: dict[str, list[dict[str, Any]]], settings: BackupSettings
) -> CheckResult:
    window = _window_text(ctx.window)
    counts: Counter[str] = Counter(
        job["State"] for region_jobs in jobs.values() for job in region_jobs
    )
    findings = [
        finding
        for region, region_jobs in jobs.items()
        for finding in _problems(ctx.account.account_id, region, region_jobs)
    ]
    findings.sort(key=lambda f: (-Severity(f["severity"]).rank, f["region"], f["id"]))
    details: dict[str, Any] = {
        "window": window,
        "jobs": sum(counts.values()),
        "counts": dict(sorted(counts.items())),
        "regions": {
            region: dict(sorted(Counter(job["State"] for job in region_jobs).items()))
            for region, region_jobs in jobs.items()
        },
        "resources": findings,
        "seen": [_seen(region, job) for region, region_jobs in jobs.items() for job in region_jobs],
    }
    where = ", ".join(jobs)
    if not counts:
        if settings.expect_jobs:
            return CheckResult(
                Severity.WARN,
                f"no backup jobs in the last {window} in {where}; expected at least one — "
                "check the backup plan and its resource selection",
                details,
            )
        return CheckResult(
            Severity.OK, f"no backup jobs in the last {window} (none expected)", details
        )
    severity = Severity.worst([f["severity"] for f in findings])
    return CheckResult(severity, _summary(counts, findings, window), details)


def _seen(region: str, job: dict[str, Any]) -> list[Any]:
    """One job as the monthly report counts it: ``[job id, state, region, resource name,
    created, completed]`` (times ISO 8601; a job is counted once however many looks see it)."""
    arn = str(job.get("ResourceArn", "?"))
    name = str(job.get("ResourceName") or arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1])
    done = job.get("CompletionDate")
    return [
        str(job.get("BackupJobId", "")),
        job["State"],
        region,
        name,
        _created(job).isoformat(),
        done.isoformat() if isinstance(done, datetime) else None,
    ]


def _problems(account_id: str, region: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One finding per resource whose jobs failed, aborted, expired or partly completed."""
    bad: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        if job["State"] in PROBLEM_STATES or job["State"] in WARN_STATES:
            bad.setdefault(job.get("ResourceArn", "?"), []).append(job)
    findings = []
    for arn, failures in bad.items():
        failures.sort(key=lambda job: _created(job), reverse=True)
        latest = failures[0]
        state = latest["State"]
        severity = Severity.worst(
            [PROBLEM_STATES.get(j["State"]) or WARN_STATES[j["State"]] for j in failures]
        )
        recovered = any(
            job.get("ResourceArn") == arn
            and job["State"] == "COMPLETED"
            and _created(job) > _created(latest)
            for job in jobs
        )
        name = str(latest.get("ResourceName") or arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1])
        vault = str(latest.get("BackupVaultName", "?"))
        message = _short(str(latest.get("StatusMessage") or "no status message"))
        text = f'{name}: {state.lower()} in vault {vault} — "{message}"'
        if len(failures) > 1:
            text += f" ({len(failures)} jobs)"
        if recovered:
            text += "; a later backup completed"
        findings.append(
            resource(
                "backup",
                account_id,
                region,
                name,
                "job",
                severity,
                text,
                resource_arn=arn,
                resource_type=latest.get("ResourceType"),
                vault=vault,
                state=state,
                status_message=message,
                job_id=latest.get("BackupJobId"),
                created=_created(latest).isoformat(),
                jobs=len(failures),
                recovered=recovered,
            )
        )
    return findings


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """Where to look at a finding in the AWS Backup console. A resource line names the
    protected resource (``resource_id``) and its latest failed job (``job_id``): the job's page
    when the line is at hand, else the region's backup jobs. A finding about the whole result
    (no backup jobs at all) opens the backup plans, where a deleted plan or an emptied
    resource selection shows."""
    home = f"https://{region}.console.aws.amazon.com/backup/home?region={region}"
    if not resource_id or resource_id == "*":
        return f"{home}#/backupplan"
    job = line.get("job_id")
    if isinstance(job, str) and job:
        return f"{home}#/jobs/backup/details/{quote(job, safe='')}"
    return f"{home}#/jobs/backup"


def _summary(counts: Counter[str], findings: list[dict[str, Any]], window: str) -> str:
    parts = [f"{counts['COMPLETED']} completed"]
    parts += [f"{counts[s]} {s.lower()}" for s in (*PROBLEM_STATES, *WARN_STATES) if counts[s]]
    running = sum(counts[s] for s in RUNNING_STATES)
    if running:
        parts.append(f"{running} running")
    text = ", ".join(parts)
    if not findings:
        return f"{text} in the last {window}"
    first = findings[0]
    more = f" and {len(findings) - 1} more" if len(findings) > 1 else ""
    return f'{text}: {first["id"]} "{first["status_message"]}"{more}'


def _window_text(window: timedelta) -> str:
    """``24h`` rather than ``1d`` up to two days; the config's own spelling beyond."""
    if window <= timedelta(days=2) and window % timedelta(hours=1) == timedelta(0):
        return f"{window // timedelta(hours=1)}h"
    return format_window(window)


def _created(job: dict[str, Any]) -> datetime:
    return cast(datetime, job["CreationDate"])


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
