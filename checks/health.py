"""AWS Health: open and upcoming events affecting the account, in its regions — EC2 instance
retirements, RDS and ElastiCache maintenance, service issues — with when they start and the
resources they touch.

AWS Health is global and answers in us-east-1: ``describe_events`` (open and upcoming issues and
scheduled changes, every page; kept when their region is one of the account's, or ``global``),
then ``describe_affected_entities`` for up to 10 events a call. The Health API needs a Business
or Enterprise support plan; without one AWS answers ``SubscriptionRequiredException`` and the
check reads what EC2 and RDS say themselves, in each of the account's regions:
``describe_instance_status`` (scheduled events, impaired status checks) and
``describe_pending_maintenance_actions``. The result says which it read (``details["source"]``:
``health`` or ``ec2+rds``, and the summary).

An open issue affecting the account is critical; a scheduled change is critical when it starts
within ``crit_hours`` (or has started), a warning within ``warn_days``, and listed as OK later.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, model_validator

from app.config import Account
from checks.alarms import duration
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource
from checks.errors import CheckError, PermanentError, Reason

REGION = "us-east-1"
"""Where AWS Health answers for the whole account."""
GLOBAL = "global"
"""The region AWS Health gives events about global services (IAM, CloudFront, Route 53)."""
NOT_SUBSCRIBED = "SubscriptionRequiredException"
EVENT_STATUSES = ["open", "upcoming"]
EVENT_CATEGORIES = ["issue", "scheduledChange"]
ENTITY_STATUSES = ["IMPAIRED", "UNIMPAIRED", "UNKNOWN", "PENDING"]
"""Every affected-entity status but RESOLVED: a resource already dealt with is not listed."""
EVENTS_PER_CALL = 10
"""``describe_affected_entities`` takes at most 10 event ARNs."""
HEALTH_PAGE = 100
EC2_PAGE = 1000
DONE = ("[Completed]", "[Canceled]", "[Cancelled]")
"""How EC2 marks a scheduled event that no longer needs anything (its description's prefix)."""
NOT_AN_ENTITY = {"", "UNKNOWN", "AWS_ACCOUNT"}
STATUS_CHECKS = (
    ("system", "SystemStatus"),
    ("instance", "InstanceStatus"),
    ("attached EBS", "AttachedEbsStatus"),
)
HEALTH_HOME = "https://health.aws.amazon.com/health/home"
SOURCE_TEXT = {
    ("health", False): "AWS Health",
    ("ec2+rds", True): "EC2 + RDS: no AWS Health subscription",
    ("ec2+rds", False): "EC2 + RDS",
}


def _whole(name: str, low: int, high: int, example: int) -> BeforeValidator:
    """A whole number from ``low`` to ``high``, refused with what to write."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(
                f"{name} is a whole number from {low} to {high}, e.g. {name}: {example}"
            )
        return value

    return BeforeValidator(check)


class HealthSettings(CheckSettings):
    warn_days: Annotated[int, _whole("warn_days", 1, 365, 14)] = 14
    """A scheduled change starting within this many days is a warning."""
    crit_hours: Annotated[int, _whole("crit_hours", 0, 24 * 365, 72)] = 72
    """A scheduled change starting within this many hours (or already started) is critical."""
    public_issues: Literal["ok", "warn", "crit"] = "warn"
    """The severity of an open *public* service issue in the account's regions (one AWS posts
    for everyone there); an issue about this account itself is always critical."""
    source: Literal["auto", "health", "ec2+rds"] = "auto"
    """``auto``: AWS Health, or EC2 + RDS when the account has no Health subscription;
    ``health``: AWS Health only (no subscription is an error); ``ec2+rds``: never ask Health."""

    @model_validator(mode="after")
    def _ordered(self) -> HealthSettings:
        if self.crit_hours > self.warn_days * 24:
            raise ValueError(
                f"crit_hours ({self.crit_hours}) is beyond warn_days ({self.warn_days} d = "
                f"{self.warn_days * 24} h); write crit_hours of at most {self.warn_days * 24} "
                "or a larger warn_days"
            )
        return self


@dataclass(frozen=True)
class Event:
    """One event, whichever source told us, and the resources it touches."""

    region: str
    service: str
    code: str
    """The finding's aspect: ``AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED``, ``instance-retirement``,
    ``system-update``, ``status``."""
    what: str
    """``EC2 instance retirement scheduled``."""
    issue: bool
    """An issue (open now) rather than a scheduled change."""
    start: datetime | None
    end: datetime | None = None
    public: bool = False
    entities: tuple[tuple[str, dict[str, Any]], ...] = ()
    """(resource id, extras) for each resource it touches; none: the event itself is the line."""
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Found:
    events: list[Event]
    source: Literal["health", "ec2+rds"]
    fallback: str | None = None
    """Why Health was not read (the AWS error code), when the check fell back."""


class HealthCheck(Check):
    kind = "health"
    Settings = HealthSettings
    services = ("ec2", "rds")  # the fallback, in each of the account's regions
    actions = (
        "health:DescribeEvents",
        "health:DescribeAffectedEntities",
        # the fallback without a support plan (source: auto or ec2+rds)
        "ec2:DescribeInstanceStatus",
        "rds:DescribePendingMaintenanceActions",
    )

    def clients(self, account: Account) -> list[tuple[str, str]]:
        return [(REGION, "health"), *super().clients(account)]  # Health is global: us-east-1

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = ctx.settings
        assert isinstance(settings, HealthSettings)
        if settings.source == "ec2+rds":
            found = Found(await from_ec2_rds(ctx), "ec2+rds")
        else:
            try:
                found = Found(await from_health(ctx), "health")
            except CheckError as exc:
                if exc.code != NOT_SUBSCRIBED:
                    raise
                if settings.source == "health":
                    raise _needs_support(ctx.account, exc) from exc
                found = Found(await from_ec2_rds(ctx), "ec2+rds", fallback=exc.code)
        return summarise(ctx, settings, found)


def _needs_support(account: Account, exc: CheckError) -> PermanentError:
    return PermanentError(
        f"{account.id} ({account.account_id}): the AWS Health API needs a Business or "
        f"Enterprise support plan ({exc.code}). Upgrade the plan, or set checks.health.source "
        "to auto (or ec2+rds) to read EC2 and RDS instead.",
        reason=Reason.SUBSCRIPTION,
        call=exc.call,
        code=exc.code,
    )


async def _all(calls: Iterable[Awaitable[Any]]) -> list[Any]:
    """Every answer, in order; the first failure raised once all have finished."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers


# -- AWS Health --------------------------------------------------------------------------------


async def from_health(ctx: CheckContext) -> list[Event]:
    events = await ctx.paginate(
        REGION,
        "health",
        "describe_events",
        "events",
        filter={"eventStatusCodes": EVENT_STATUSES, "eventTypeCategories": EVENT_CATEGORIES},
        PaginationConfig={"PageSize": HEALTH_PAGE},
    )
    wanted = {*ctx.account.regions, GLOBAL}
    mine = list({e["arn"]: e for e in events if e.get("region", GLOBAL) in wanted}.values())
    arns = [e["arn"] for e in mine]
    pages = await _all(
        ctx.paginate(
            REGION,
            "health",
            "describe_affected_entities",
            "entities",
            filter={"eventArns": arns[i : i + EVENTS_PER_CALL], "statusCodes": ENTITY_STATUSES},
            PaginationConfig={"PageSize": HEALTH_PAGE},
        )
        for i in range(0, len(arns), EVENTS_PER_CALL)
    )
    touched: dict[str, dict[str, dict[str, Any]]] = {}
    for entity in (e for page in pages for e in page):
        value = str(entity.get("entityValue") or "")
        if entity.get("statusCode") == "RESOLVED" or value in NOT_AN_ENTITY:
            continue
        if value == ctx.account.account_id:
            continue  # the account itself: the event is about the account, listed once
        touched.setdefault(str(entity.get("eventArn")), {})[value] = {
            "entity_arn": entity.get("entityArn"),
            "entity_status": entity.get("statusCode"),
        }
    return [_health_event(e, touched.get(e["arn"], {})) for e in mine]


def _health_event(event: dict[str, Any], entities: dict[str, dict[str, Any]]) -> Event:
    service = str(event.get("service") or "AWS")
    code = str(event.get("eventTypeCode") or "AWS_EVENT")
    region = str(event.get("region") or GLOBAL)
    return Event(
        region=REGION if region == GLOBAL else region,
        service=service,
        code=code,
        what=_words(service, code),
        issue=event.get("eventTypeCategory") == "issue" and event.get("statusCode") == "open",
        start=event.get("startTime"),
        end=event.get("endTime"),
        public=event.get("eventScopeCode") == "PUBLIC",
        entities=tuple(sorted(entities.items())),
        extras={
            "event_arn": event["arn"],
            "event_type": code,
            "category": event.get("eventTypeCategory"),
            "status": event.get("statusCode"),
            "scope": event.get("eventScopeCode"),
            "event_region": region,
            "availability_zone": event.get("availabilityZone"),
        },
    )


def _words(service: str, code: str) -> str:
    """``EC2 instance retirement scheduled`` for ``AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED``."""
    rest = code.removeprefix("AWS_").removeprefix(f"{service.upper()}_")
    return f"{service} {rest.replace('_', ' ').lower()}".strip()


# -- without a Health subscription: EC2 and RDS themselves -------------------------------------


async def from_ec2_rds(ctx: CheckContext) -> list[Event]:
    regions = ctx.account.regions
    answers = await _all(
        [
            *(
                ctx.paginate(
                    region,
                    "ec2",
                    "describe_instance_status",
                    "InstanceStatuses",
                    PaginationConfig={"PageSize": EC2_PAGE},
                )
                for region in regions
            ),
            *(
                ctx.paginate(
                    region,
                    "rds",
                    "describe_pending_maintenance_actions",
                    "PendingMaintenanceActions",
                )
                for region in regions
            ),
        ]
    )
    statuses, pending = answers[: len(regions)], answers[len(regions) :]
    events: list[Event] = []
    for region, instances, resources in zip(regions, statuses, pending, strict=True):
        for status in instances:
            events += _ec2_events(region, status)
        for item in resources:
            events += _rds_events(region, item)
    return events


def _ec2_events(region: str, status: dict[str, Any]) -> list[Event]:
    instance = str(status["InstanceId"])
    found = []
    impaired = [
        (name, status[key])
        for name, key in STATUS_CHECKS
        if (status.get(key) or {}).get("Status") == "impaired"
    ]
    if impaired:
        since = [
            d["ImpairedSince"]
            for _, check in impaired
            for d in check.get("Details") or []
            if isinstance(d.get("ImpairedSince"), datetime)
        ]
        found.append(
            Event(
                region=region,
                service="EC2",
                code="status",
                what=f"EC2 status checks impaired ({', '.join(name for name, _ in impaired)})",
                issue=True,
                start=min(since) if since else None,
                entities=((instance, {}),),
                extras={"checks": [name for name, _ in impaired]},
            )
        )
    for event in status.get("Events") or []:
        description = " ".join(str(event.get("Description") or "").split())
        if description.startswith(DONE):
            continue
        code = str(event.get("Code") or "scheduled")
        found.append(
            Event(
                region=region,
                service="EC2",
                code=code,
                what=f"EC2 scheduled {code.replace('-', ' ')}",
                issue=False,
                start=event.get("NotBefore"),
                end=event.get("NotAfter"),
                entities=((instance, {}),),
                extras={"description": description, "event_id": event.get("InstanceEventId")},
            )
        )
    return found


def _rds_events(region: str, item: dict[str, Any]) -> list[Event]:
    arn = str(item.get("ResourceIdentifier") or "")
    name = arn.rsplit(":", 1)[-1]
    cluster = ":cluster:" in arn
    found = []
    for action in item.get("PendingMaintenanceActionDetails") or []:
        code = str(action.get("Action") or "maintenance")
        dates = [action.get(k) for k in ("AutoAppliedAfterDate", "ForcedApplyDate")]
        start = action.get("CurrentApplyDate") or min(
            (d for d in dates if isinstance(d, datetime)), default=None
        )
        description = " ".join(str(action.get("Description") or "").split())
        found.append(
            Event(
                region=region,
                service="RDS",
                code=code,
                what=f"RDS {code}" + (f' ("{description}")' if description else ""),
                issue=False,
                start=start,
                entities=((name, {"resource_arn": arn, "cluster": cluster}),),
                extras={
                    "description": description,
                    "opt_in_status": action.get("OptInStatus"),
                    "forced_apply": _iso(action.get("ForcedApplyDate")),
                    "auto_applied_after": _iso(action.get("AutoAppliedAfterDate")),
                },
            )
        )
    return found


# -- judging and saying it ---------------------------------------------------------------------


def grade(event: Event, settings: HealthSettings, now: datetime) -> tuple[Severity, str]:
    """The severity of one event and the threshold it crossed: ``(crit ≤ 72 h)``."""
    if event.issue:
        if event.public:
            return Severity(settings.public_issues), ""
        return Severity.CRIT, ""
    if event.start is None:
        return Severity.OK, ""
    left = event.start - now
    if left <= timedelta(hours=settings.crit_hours):
        return Severity.CRIT, f" (crit ≤ {settings.crit_hours} h)"
    if left <= timedelta(days=settings.warn_days):
        return Severity.WARN, f" (warn ≤ {settings.warn_days} d)"
    return Severity.OK, ""


def when(event: Event, now: datetime, tz: ZoneInfo) -> str:
    """``starts 24 Nov 09:00 WIB (in 1 d 3 h)``, ``open since …``, in the customer's zone."""
    if event.start is None:
        return "open" if event.issue else "no date set"
    at = _at(event.start, tz)
    if event.issue:
        return f"open since {at} ({duration(now - event.start)})"
    if event.start > now:
        return f"starts {at} (in {duration(event.start - now)})"
    text = f"started {at} ({duration(now - event.start)} ago)"
    if event.end is not None and event.end > now:
        text += f", until {_at(event.end, tz)}"
    return text


def _at(moment: datetime, tz: ZoneInfo) -> str:
    return f"{moment.astimezone(tz):%d %b %H:%M %Z}"


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def lines(
    ctx: CheckContext, settings: HealthSettings, events: list[Event]
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """One finding per event and resource it touches (or per event, when it names none),
    problems first; and the events counted by severity."""
    account_id, tz = ctx.account.account_id, ctx.customer.tz
    findings: dict[str, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for event in events:
        severity, crossed = grade(event, settings, ctx.now)
        counts[severity.value] += 1
        place = "global" if event.extras.get("event_region") == GLOBAL else event.region
        public = " (public issue)" if event.public else ""
        common = {
            **event.extras,
            "service": event.service,
            "start": _iso(event.start),
            "end": _iso(event.end),
        }
        touched = event.entities or ((event.service, {}),)
        for rid, extra in touched:
            head = f"{rid}: {event.what}" if event.entities else f"{event.what} in {place}"
            text = f"{head}{public}, {when(event, ctx.now, tz)}{crossed}"
            line = resource(
                "health", account_id, event.region, rid, event.code, severity, text,
                **common, **extra,
            )  # fmt: skip
            kept = findings.get(line["fingerprint"])
            if kept is None or Severity(kept["severity"]).rank < severity.rank:
                findings[line["fingerprint"]] = line
    ordered = sorted(
        findings.values(),
        key=lambda r: (-Severity(r["severity"]).rank, r["start"] or "~", r["region"], r["id"]),
    )
    return ordered, counts


def summarise(ctx: CheckContext, settings: HealthSettings, found: Found) -> CheckResult:
    findings, counts = lines(ctx, settings, found.events)
    source = SOURCE_TEXT[(found.source, found.fallback is not None)]
    total = len(found.events)
    details: dict[str, Any] = {
        "source": found.source,
        "fallback_reason": found.fallback,
        "events": total,
        "counts": {s: counts[s] for s in ("crit", "warn", "ok")},
        "affected": sum(len(e.entities) for e in found.events),
        "regions": list(ctx.account.regions),
        "thresholds": settings.model_dump(mode="json", exclude={"source"}),
        "resources": findings,
    }
    severity = Severity.worst([f["severity"] for f in findings])
    return CheckResult(severity, summary(findings, counts, total, settings, found, source), details)


def summary(
    findings: list[dict[str, Any]],
    counts: Counter[str],
    total: int,
    settings: HealthSettings,
    found: Found,
    source: str,
) -> str:
    """``i-0abc: EC2 instance retirement scheduled, starts … (crit ≤ 72 h) and 1 more;
    3 events: 1 critical, 1 warning (AWS Health)``."""
    if not findings:
        if found.source == "health":
            return f"no open or upcoming events ({source})"
        return f"no scheduled events, impaired instances or pending maintenance ({source})"
    noun = "event" if total == 1 else "events"
    problems = [f for f in findings if f["severity"] != Severity.OK.value]
    if not problems:
        return (
            f"{total} {noun}, none within {settings.warn_days} d; next: "
            f"{findings[0]['summary']} ({source})"
        )
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    parts = [
        f"{counts[s]} {word}{'s' if counts[s] > 1 and s == 'warn' else ''}"
        for s, word in (("crit", "critical"), ("warn", "warning"))
        if counts[s]
    ]
    return f"{problems[0]['summary']}{more}; {total} {noun}: {', '.join(parts)} ({source})"


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """The event's page in the AWS Health dashboard (global) when the line names one; an
    instance or a database in its console for what EC2 and RDS said themselves; the account's
    open issues otherwise."""
    arn = line.get("event_arn")
    if isinstance(arn, str) and arn:
        return f"{HEALTH_HOME}#/account/event-log?eventID={quote(arn, safe='')}&eventTab=details"
    home = f"https://{region}.console.aws.amazon.com"
    if resource_id and resource_id != "*" and line.get("service") == "EC2":
        page = f"InstanceDetails:instanceId={quote(resource_id, safe='')}"
        return f"{home}/ec2/home?region={region}#{page}"
    if resource_id and resource_id != "*" and line.get("service") == "RDS":
        cluster = "true" if line.get("cluster") else "false"
        page = f"database:id={quote(resource_id, safe='')};is-cluster={cluster}"
        return f"{home}/rds/home?region={region}#{page}"
    return f"{HEALTH_HOME}#/account/dashboard/open-issues"
