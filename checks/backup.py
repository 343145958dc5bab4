"""AWS Backup: the backup jobs created in the window, and how old each protected resource's
newest recovery point is, in each of the account's regions.

Jobs: failed, aborted and expired jobs are critical and each resource is listed with its vault
and AWS's status message; partially completed jobs are a warning; an account that expects
backups and had none in the window is a warning (a deleted plan or an emptied selection looks
exactly like that). One ``ListBackupJobs`` call per region and page, filtered by AWS on
creation date.

Recovery points: one ``ListProtectedResources`` call per region and page gives every resource
with a recovery point and when it was last backed up; older than its RPO is a warning, older
than twice its RPO critical. Resources that ``must_protect`` names and that have no recovery
point at all are critical: the check lists the resource types those patterns name (RDS DB
instances and clusters, EBS volumes, DynamoDB tables), one paginated call per type and region,
and only when a pattern names the type.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, cast
from urllib.parse import quote

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from app.config import LocatedError, format_window, window_setting
from checks.alarms import duration
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource

PROBLEM_STATES = {"FAILED": Severity.CRIT, "ABORTED": Severity.CRIT, "EXPIRED": Severity.CRIT}
WARN_STATES = {"PARTIAL": Severity.WARN}
RUNNING_STATES = ("CREATED", "PENDING", "RUNNING", "ABORTING")
MAX_MESSAGE = 200
MAX_RPO_HOURS = 24 * 31
PROTECTED_PAGE = 1000
"""The most results a ``ListProtectedResources`` page holds."""


def _arn_pattern(value: str) -> str:
    if not value.startswith("arn:") or value.count(":") < 5:
        raise ValueError(
            f'"{value[:80]}" is not an ARN pattern; write one such as '
            '"arn:aws:rds:*:*:db:archive-*" (* matches any text)'
        )
    return value


ArnPattern = Annotated[str, AfterValidator(_arn_pattern)]
"""An fnmatch pattern on a resource ARN: ``arn:aws:rds:*:*:db:archive-*``."""
Hours = Annotated[float, Field(gt=0, le=MAX_RPO_HOURS)]
"""A recovery point objective in hours: more than 0, at most 31 days."""


class BackupSettings(CheckSettings):
    window: Annotated[timedelta, BeforeValidator(window_setting)] = timedelta(hours=24)
    """Jobs created this far back are looked at (``--window`` overrides it per run)."""
    expect_jobs: bool = True
    """Warn when the account had no backup job at all in the window."""
    rpo_hours: Hours = 24
    """The recovery point objective: a protected resource whose newest recovery point is older
    warns (twice as old: critical); the monthly report counts a resource whose newest
    completed backup is older than this as breaking it, and for how long."""
    rpo_overrides: dict[ArnPattern, Hours | None] = Field(default_factory=dict)
    """Resource ARN pattern → its own RPO in hours, or ``null`` for resources whose age is not
    judged (an archive backed up by hand, a deleted resource whose recovery points are kept);
    the first matching pattern wins."""
    must_protect: tuple[ArnPattern, ...] = ()
    """ARN patterns of resources that must have a recovery point; each must name a type the
    check can list (:data:`LISTERS`)."""

    @field_validator("must_protect")
    @classmethod
    def _listable(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, pattern in enumerate(value):
            if not any(lister.names(pattern) for lister in LISTERS):
                kinds = "; ".join(f"{lister.title}s ({lister.example})" for lister in LISTERS)
                raise LocatedError(
                    (index,),
                    f'the check cannot list the resources "{pattern[:80]}" names; '
                    f"must_protect takes patterns of {kinds}",
                )
        return value

    def rpo_for(self, arn: str) -> float | None:
        """The RPO in hours of the resource ``arn``; None: its age is not judged."""
        for pattern, hours in self.rpo_overrides.items():
            if fnmatchcase(arn, pattern):
                return hours
        return self.rpo_hours

    def listers(self) -> tuple[Lister, ...]:
        """The resource types ``must_protect`` names: the only ones listed."""
        return tuple(
            lister for lister in LISTERS if any(lister.names(p) for p in self.must_protect)
        )


# -- resources that must be protected ----------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A resource listed to see whether it has a recovery point."""

    arn: str
    name: str
    title: str
    created: datetime | None
    """When it was created (None when the listing does not say: no grace for a first backup)."""
    covered_by: tuple[str, ...] = ()
    """Other ARNs whose recovery point covers it (an EBS volume backed up with its instance)."""
    exempt: bool = False
    """It exists but is not expected to have recovery points of its own: a cluster member (AWS
    Backup protects the cluster), a read replica (its source is backed up), or it is being
    deleted."""


Fetch = Callable[[CheckContext, str], Awaitable[list[Candidate]]]


@dataclass(frozen=True)
class Lister:
    """A resource type the check can list, and how."""

    service: str
    """The ARN's service and the client's."""
    prefix: str
    """How the resource part of its ARN starts: ``db:``, ``volume/``."""
    title: str
    example: str
    fetch: Fetch

    def names(self, pattern: str) -> bool:
        """Whether an ARN pattern could match resources of this type."""
        parts = pattern.split(":", 5)
        return (
            len(parts) == 6
            and fnmatchcase(self.service, parts[2])
            and _may_start_with(parts[5], self.prefix)
        )

    def owns(self, arn: str) -> bool:
        parts = arn.split(":", 5)
        return len(parts) == 6 and parts[2] == self.service and parts[5].startswith(self.prefix)


def _may_start_with(glob: str, prefix: str) -> bool:
    """Whether text matching ``glob`` may start with ``prefix``: the glob's literal start and
    the prefix agree as far as both go."""
    literal = re.split(r"[*?\[]", glob, maxsplit=1)[0]
    return literal.startswith(prefix) or prefix.startswith(literal)


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


async def _rds_instances(ctx: CheckContext, region: str) -> list[Candidate]:
    found = await ctx.paginate(region, "rds", "describe_db_instances", "DBInstances")
    return [
        Candidate(
            db["DBInstanceArn"],
            db["DBInstanceIdentifier"],
            "RDS DB instance",
            db.get("InstanceCreateTime"),
            exempt=bool(
                db.get("DBClusterIdentifier")
                or db.get("ReadReplicaSourceDBInstanceIdentifier")
                or db.get("DBInstanceStatus") == "deleting"
            ),
        )
        for db in found
    ]


async def _rds_clusters(ctx: CheckContext, region: str) -> list[Candidate]:
    found = await ctx.paginate(region, "rds", "describe_db_clusters", "DBClusters")
    return [
        Candidate(
            cluster["DBClusterArn"],
            cluster["DBClusterIdentifier"],
            "RDS DB cluster",
            cluster.get("ClusterCreateTime"),
            exempt=cluster.get("Status") == "deleting",
        )
        for cluster in found
    ]


async def _ebs_volumes(ctx: CheckContext, region: str) -> list[Candidate]:
    found = await ctx.paginate(
        region, "ec2", "describe_volumes", "Volumes", PaginationConfig={"PageSize": 500}
    )
    arn = f"arn:{_partition(region)}:ec2:{region}:{ctx.account.account_id}"
    return [
        Candidate(
            f"{arn}:volume/{volume['VolumeId']}",
            volume["VolumeId"],
            "EBS volume",
            volume.get("CreateTime"),
            covered_by=tuple(
                f"{arn}:instance/{a['InstanceId']}"
                for a in volume.get("Attachments", [])
                if a.get("InstanceId")
            ),
            exempt=volume.get("State") in ("deleting", "deleted"),
        )
        for volume in found
    ]


async def _dynamodb_tables(ctx: CheckContext, region: str) -> list[Candidate]:
    names = await ctx.paginate(
        region, "dynamodb", "list_tables", "TableNames", PaginationConfig={"PageSize": 100}
    )
    arn = f"arn:{_partition(region)}:dynamodb:{region}:{ctx.account.account_id}"
    return [Candidate(f"{arn}:table/{name}", name, "DynamoDB table", None) for name in names]


LISTERS: tuple[Lister, ...] = (
    Lister("rds", "db:", "RDS DB instance", "arn:aws:rds:*:*:db:*", _rds_instances),
    Lister("rds", "cluster:", "RDS DB cluster", "arn:aws:rds:*:*:cluster:*", _rds_clusters),
    Lister("ec2", "volume/", "EBS volume", "arn:aws:ec2:*:*:volume/*", _ebs_volumes),
    Lister(
        "dynamodb", "table/", "DynamoDB table", "arn:aws:dynamodb:*:*:table/*", _dynamodb_tables
    ),
)
"""What ``must_protect`` can name: each listed with one paginated call per region."""


# -- the check ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Looked:
    """What one region answered."""

    jobs: list[dict[str, Any]]
    protected: list[dict[str, Any]]
    listed: list[Candidate]


class BackupCheck(Check):
    kind = "backup"
    Settings = BackupSettings
    services = ("backup", "rds", "ec2", "dynamodb")
    """``rds``, ``ec2`` and ``dynamodb`` only when ``must_protect`` names their resources."""
    actions = (
        "backup:ListBackupJobs",
        "backup:ListProtectedResources",
        # only when must_protect names their resources
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "ec2:DescribeVolumes",
        "dynamodb:ListTables",
    )

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = cast(BackupSettings, ctx.settings)
        regions = ctx.account.regions
        listers = settings.listers()
        answers = await _all(*(_look(ctx, region, listers) for region in regions))
        looked = dict(zip(regions, cast(list[Looked], answers), strict=True))
        return summarise(ctx, looked, settings)


async def _all(*calls: Awaitable[Any]) -> list[Any]:
    """Every call's answer; the first failure raised once all of them have ended."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers


async def _look(ctx: CheckContext, region: str, listers: tuple[Lister, ...]) -> Looked:
    jobs, protected, *listed = await _all(
        ctx.paginate(region, "backup", "list_backup_jobs", "BackupJobs", ByCreatedAfter=ctx.since),
        ctx.paginate(
            region,
            "backup",
            "list_protected_resources",
            "Results",
            PaginationConfig={"PageSize": PROTECTED_PAGE},
        ),
        *(lister.fetch(ctx, region) for lister in listers),
    )
    return Looked(jobs, protected, [c for found in listed for c in found])


def summarise(
    ctx: CheckContext, looked: dict[str, Looked], settings: BackupSettings
) -> CheckResult:
    window = _window_text(ctx.window)
    jobs = {region: answer.jobs for region, answer in looked.items()}
    counts: Counter[str] = Counter(
        job["State"] for region_jobs in jobs.values() for job in region_jobs
    )
    account_id = ctx.account.account_id
    findings = [
        finding
        for region, region_jobs in jobs.items()
        for finding in _problems(account_id, region, region_jobs)
    ]
    points = _recovery_points(ctx, looked, settings)
    findings += points.findings
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
        "rpo_hours": settings.rpo_hours,
        **points.details(),
    }
    severities = [f["severity"] for f in findings]
    if not counts and settings.expect_jobs:
        severities.append(Severity.WARN)
    severity = Severity.worst(severities)
    return CheckResult(severity, _summary(counts, findings, window, list(jobs), settings), details)


# -- recovery points ---------------------------------------------------------------------------


@dataclass
class Points:
    """Findings about recovery points, and what they were drawn from."""

    findings: list[dict[str, Any]]
    protected: int = 0
    stale: int = 0
    unprotected: int = 0
    gone: int = 0
    listed: Counter[str] = field(default_factory=Counter)

    def details(self) -> dict[str, Any]:
        return {
            "protected": self.protected,
            "stale": self.stale,
            "unprotected": self.unprotected,
            "gone": self.gone,
            "listed": dict(sorted(self.listed.items())),
        }


def _recovery_points(
    ctx: CheckContext, looked: dict[str, Looked], settings: BackupSettings
) -> Points:
    """A finding per protected resource older than its RPO, and per resource ``must_protect``
    names that has no recovery point (an ``ok`` line while it is younger than its RPO)."""
    listers = settings.listers()
    existing = {c.arn for answer in looked.values() for c in answer.listed}
    protected = {str(p["ResourceArn"]) for answer in looked.values() for p in answer.protected}
    points = Points([])
    for region, answer in looked.items():
        for item in answer.protected:
            if _gone(str(item["ResourceArn"]), ctx, listers, existing):
                points.gone += 1
                continue
            points.protected += 1
            finding = _age(ctx, region, item, settings)
            if finding is not None:
                points.stale += 1
                points.findings.append(finding)
        for candidate in answer.listed:
            _must_protect(ctx, region, candidate, protected, settings, points)
    return points


def _must_protect(
    ctx: CheckContext,
    region: str,
    candidate: Candidate,
    protected: set[str],
    settings: BackupSettings,
    points: Points,
) -> None:
    """Count ``candidate`` if ``must_protect`` names it, and add a finding when it has no
    recovery point."""
    pattern = next((p for p in settings.must_protect if fnmatchcase(candidate.arn, p)), None)
    if pattern is None or candidate.exempt:
        return
    points.listed[candidate.title] += 1
    if candidate.arn in protected or protected.intersection(candidate.covered_by):
        return
    finding = _unprotected(ctx, region, candidate, pattern, settings)
    if finding["severity"] != Severity.OK.value:
        points.unprotected += 1
    points.findings.append(finding)


def _gone(arn: str, ctx: CheckContext, listers: tuple[Lister, ...], existing: set[str]) -> bool:
    """A protected resource this run listed the type of, in this account and its regions, and
    did not find: deleted, its recovery points kept."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[4] != ctx.account.account_id:
        return False
    if parts[3] not in ctx.account.regions or not any(lister.owns(arn) for lister in listers):
        return False
    return arn not in existing


def _age(
    ctx: CheckContext, region: str, item: dict[str, Any], settings: BackupSettings
) -> dict[str, Any] | None:
    """The finding for a protected resource whose newest recovery point is older than its RPO;
    None when it is within it, or its age is not judged."""
    arn = str(item["ResourceArn"])
    rpo = settings.rpo_for(arn)
    last = item.get("LastBackupTime")
    last = last if isinstance(last, datetime) else None
    age = ctx.now - last if last is not None else None
    if rpo is None or (age is not None and age <= timedelta(hours=rpo)):
        return None
    if age is None:
        severity = Severity.WARN
        text = f"AWS did not say when it was last backed up (RPO {rpo:g} h)"
    elif age > timedelta(hours=2 * rpo):
        severity = Severity.CRIT
        text = f"newest recovery point {duration(age)} old (crit > 2 × RPO {rpo:g} h)"
    else:
        severity = Severity.WARN
        text = f"newest recovery point {duration(age)} old (warn > RPO {rpo:g} h)"
    vault = str(item.get("LastBackupVaultArn") or "")
    return resource(
        "backup",
        ctx.account.account_id,
        region,
        arn,
        "rpo",
        severity,
        text,
        name=_name(item.get("ResourceName"), arn),
        resource_arn=arn,
        resource_type=item.get("ResourceType"),
        last_backup=last.isoformat() if last is not None else None,
        age_hours=round(age / timedelta(hours=1), 1) if age is not None else None,
        rpo_hours=rpo,
        vault=vault.rsplit(":", 1)[-1] or None,
        recovery_point_arn=item.get("LastRecoveryPointArn"),
    )


def _unprotected(
    ctx: CheckContext, region: str, candidate: Candidate, pattern: str, settings: BackupSettings
) -> dict[str, Any]:
    """A resource ``must_protect`` names with no recovery point: critical, unless it was
    created less than its RPO ago (its first backup is not due yet)."""
    rpo = settings.rpo_for(candidate.arn) or settings.rpo_hours
    created = candidate.created
    young = created is not None and ctx.now - created < timedelta(hours=rpo)
    if young:
        assert created is not None
        due = created + timedelta(hours=rpo) - ctx.now
        severity = Severity.OK
        text = (
            f"no recovery point yet; created {duration(ctx.now - created)} ago, "
            f"due within {duration(due)} (RPO {rpo:g} h)"
        )
    else:
        severity = Severity.CRIT
        text = (
            f"no recovery point; must_protect names it ({pattern}) — "
            "add it to a backup plan's resource assignment"
        )
    return resource(
        "backup",
        ctx.account.account_id,
        region,
        candidate.arn,
        "unprotected",
        severity,
        text,
        name=candidate.name,
        resource_arn=candidate.arn,
        resource_type=candidate.title,
        created=created.isoformat() if created is not None else None,
        rpo_hours=rpo,
        pattern=pattern,
    )


# -- jobs --------------------------------------------------------------------------------------


def _seen(region: str, job: dict[str, Any]) -> list[Any]:
    """One job as the monthly report counts it: ``[job id, state, region, resource name,
    created, completed]`` (times ISO 8601; a job is counted once however many looks see it)."""
    arn = str(job.get("ResourceArn", "?"))
    name = _name(job.get("ResourceName"), arn)
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
        name = _name(latest.get("ResourceName"), arn)
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
    """Where to look at a finding in the AWS Backup console. A job line names the protected
    resource (``resource_id``) and its latest failed job (``job_id``): the job's page when the
    line is at hand, else the region's backup jobs. A recovery-point line (its id an ARN) opens
    the protected resources, or the backup plans when it has none at all (its fix is a resource
    assignment). A finding about the whole result (no backup jobs at all) opens the backup
    plans, where a deleted plan or an emptied resource selection shows."""
    home = f"https://{region}.console.aws.amazon.com/backup/home?region={region}"
    if not resource_id or resource_id == "*":
        return f"{home}#/backupplan"
    line = line or {}
    if resource_id.startswith("arn:"):
        unprotected = str(line.get("fingerprint", "")).endswith(":unprotected")
        return f"{home}#/backupplan" if unprotected else f"{home}#/resources"
    job = line.get("job_id")
    if isinstance(job, str) and job:
        return f"{home}#/jobs/backup/details/{quote(job, safe='')}"
    return f"{home}#/jobs/backup"


# -- the summary -------------------------------------------------------------------------------


def _summary(
    counts: Counter[str],
    findings: list[dict[str, Any]],
    window: str,
    regions: list[str],
    settings: BackupSettings,
) -> str:
    """Jobs counted and the first problem named: a job's problem after the counts (``42
    completed, 1 failed: db "message"``), a recovery point's before them."""
    problems = [f for f in findings if f["severity"] != Severity.OK.value]
    if counts:
        jobs = _counted(counts)
    elif settings.expect_jobs:
        jobs = (
            f"no backup jobs in the last {window} in {', '.join(regions)}; expected at least "
            "one — check the backup plan and its resource selection"
        )
    else:
        jobs = f"no backup jobs in the last {window} (none expected)"
    if not problems:
        return f"{jobs} in the last {window}" if counts else jobs
    first = problems[0]
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    if "status_message" in first:
        lead = f'{first["id"]} "{first["status_message"]}"{more}'
        return f"{jobs}: {lead}" if counts else f"{lead}; {jobs}"
    lead = f"{first['name']}: {first['summary']}{more}"
    return f"{lead}; {jobs} in the last {window}" if counts else f"{lead}; {jobs}"


def _counted(counts: Counter[str]) -> str:
    parts = [f"{counts['COMPLETED']} completed"]
    parts += [f"{counts[s]} {s.lower()}" for s in (*PROBLEM_STATES, *WARN_STATES) if counts[s]]
    running = sum(counts[s] for s in RUNNING_STATES)
    if running:
        parts.append(f"{running} running")
    return ", ".join(parts)


def _window_text(window: timedelta) -> str:
    """``24h`` rather than ``1d`` up to two days; the config's own spelling beyond."""
    if window <= timedelta(days=2) and window % timedelta(hours=1) == timedelta(0):
        return f"{window // timedelta(hours=1)}h"
    return format_window(window)


def _name(name: Any, arn: str) -> str:
    return str(name or arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1])


def _created(job: dict[str, Any]) -> datetime:
    return cast(datetime, job["CreationDate"])


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
