"""Security: the active Security Hub findings of the severities asked for (critical and high by
default), and whether Security Hub and GuardDuty are switched on, in each of the account's
regions.

In each region, at once: ``securityhub:describe_hub`` (``InvalidAccessException`` or
``ResourceNotFoundException``: Security Hub is not enabled there), then ``get_findings``
filtered by AWS — this account's findings (``AwsAccountId``), ``RecordState`` ACTIVE,
``WorkflowStatus`` NEW or NOTIFIED, ``SeverityLabel`` one of ``severities`` — every page of
100; and ``guardduty:list_detectors`` (none: GuardDuty is not enabled) then ``get_detector``
(``DISABLED``: suspended). A region where either is off is a warning whose line says how to
switch it on.

One line per finding, its fingerprint built from the finding's ``Id`` (``aspect`` ``finding``):
the same finding is the same line run after run, so the hub's findings lifecycle and a
digest's "new since" work. ``CRITICAL`` is critical; ``HIGH``, ``MEDIUM`` and ``LOW`` are
warnings; ``INFORMATIONAL`` is listed as OK. A region that aggregates others answers their
findings too: a finding is counted once, in the region it names.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import BeforeValidator

from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource
from checks.errors import CheckError

LABELS = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL")
"""Security Hub's severity labels, worst first."""
GRADES = {
    "CRITICAL": Severity.CRIT,
    "HIGH": Severity.WARN,
    "MEDIUM": Severity.WARN,
    "LOW": Severity.WARN,
    "INFORMATIONAL": Severity.OK,
}
"""By AWS's own words for each label: CRITICAL "must be remediated immediately to avoid it
escalating" (something is wrong now); HIGH "must be addressed as a priority", MEDIUM "must be
addressed but not urgently" and LOW "does not require action on its own" (asked for, they are
worth a look, not a page); INFORMATIONAL "no issue was found" (a passed control)."""
WORKFLOW = ("NEW", "NOTIFIED")
"""Findings nobody has dealt with yet: not SUPPRESSED, not RESOLVED."""
PAGE = 100
"""The largest page ``get_findings`` answers."""
NOT_ENABLED = frozenset({"InvalidAccessException", "ResourceNotFoundException"})
"""What Security Hub answers in a region where it is not enabled (InvalidAccessException: "Either
Security Hub is not enabled for the account, or the account does not have permission": a role
without ``securityhub:DescribeHub`` gets AccessDeniedException, an error)."""
SUSPENDED = "DISABLED"
TOP_TITLES = 3
"""Titles the summary names."""
TITLES_KEPT = 10
"""Titles ``details["titles"]`` keeps."""
MAX_TITLE = 90
ENABLEMENT = "enabled"
"""The aspect of a "not switched on" line (its id: ``securityhub`` or ``guardduty``)."""


def _labels(value: Any) -> Any:
    """``[CRITICAL, HIGH]`` (any case), worst first; refused with what to write."""
    words = [value] if isinstance(value, str) else value
    hint = f"write e.g. severities: [CRITICAL, HIGH] (labels: {', '.join(LABELS)})"
    if not isinstance(words, list | tuple) or not words:
        raise ValueError(f"severities is a list of Security Hub severity labels; {hint}")
    wanted = set()
    for word in words:
        label = word.strip().upper() if isinstance(word, str) else None
        if label not in LABELS:
            raise ValueError(f'"{word}" is not a Security Hub severity label; {hint}')
        wanted.add(label)
    return tuple(label for label in LABELS if label in wanted)


def _whole(name: str, low: int, high: int, example: int) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(
                f"{name} is a whole number from {low} to {high}, e.g. {name}: {example}"
            )
        return value

    return BeforeValidator(check)


class SecuritySettings(CheckSettings):
    severities: Annotated[tuple[str, ...], BeforeValidator(_labels)] = ("CRITICAL", "HIGH")
    """The severity labels of the findings asked for."""
    max_findings: Annotated[int, _whole("max_findings", 1, 1000, 100)] = 100
    """Finding lines kept in the result (every finding is counted). Past it the oldest are
    kept: a line leaves only when its finding does, so nothing looks resolved that is not."""
    require_guardduty: bool = True
    """Warn for a region without GuardDuty (or with it suspended); false: do not ask."""


@dataclass
class Region:
    """What one region said."""

    name: str
    hub: bool = True
    """Security Hub is enabled."""
    hub_answer: str | None = None
    """What AWS answered when it is not (``InvalidAccessException``)."""
    guardduty: str | None = None
    """``ENABLED``, ``DISABLED`` (suspended), ``missing`` (no detector), None (not asked)."""
    detector: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)


class SecurityCheck(Check):
    kind = "security"
    Settings = SecuritySettings
    services = ("securityhub", "guardduty")
    actions = (
        "securityhub:DescribeHub",
        "securityhub:GetFindings",
        # unless require_guardduty: false
        "guardduty:ListDetectors",
        "guardduty:GetDetector",
    )

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = ctx.settings
        assert isinstance(settings, SecuritySettings)
        regions = await _all(look_in(ctx, settings, region) for region in ctx.account.regions)
        return summarise(ctx, settings, regions)


async def _all(calls: Iterable[Awaitable[Any]]) -> list[Any]:
    """Every answer, in order; the first failure raised once all have finished."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers


async def look_in(ctx: CheckContext, settings: SecuritySettings, region: str) -> Region:
    """Security Hub's findings, and GuardDuty's detector when asked for, at once."""
    found = Region(region)
    calls = [_hub(ctx, settings, found)]
    if settings.require_guardduty:
        calls.append(_guardduty(ctx, found))
    await _all(calls)
    return found


def filters(account_id: str, settings: SecuritySettings) -> dict[str, list[dict[str, str]]]:
    """``get_findings``' filters: values of one attribute are ORed, attributes ANDed."""

    def equals(*values: str) -> list[dict[str, str]]:
        return [{"Value": value, "Comparison": "EQUALS"} for value in values]

    return {
        "AwsAccountId": equals(account_id),
        "RecordState": equals("ACTIVE"),
        "WorkflowStatus": equals(*WORKFLOW),
        "SeverityLabel": equals(*settings.severities),
    }


async def _hub(ctx: CheckContext, settings: SecuritySettings, found: Region) -> None:
    try:
        await ctx.call(found.name, "securityhub", "describe_hub")
        found.findings = await ctx.paginate(
            found.name,
            "securityhub",
            "get_findings",
            "Findings",
            Filters=filters(ctx.account.account_id, settings),
            PaginationConfig={"PageSize": PAGE},
        )
    except CheckError as exc:
        if exc.code not in NOT_ENABLED:
            raise
        found.hub, found.hub_answer = False, exc.code


async def _guardduty(ctx: CheckContext, found: Region) -> None:
    answer = await ctx.call(found.name, "guardduty", "list_detectors")
    detectors = answer.get("DetectorIds") or []
    if not detectors:  # one detector per account and region, at most
        found.guardduty = "missing"
        return
    found.detector = str(detectors[0])
    detector = await ctx.call(found.name, "guardduty", "get_detector", DetectorId=found.detector)
    found.guardduty = str(detector.get("Status", "ENABLED"))


# -- what it says ------------------------------------------------------------------------------


def label_of(finding: Mapping[str, Any]) -> str:
    """The finding's severity label; from the older ``Normalized`` score when it has none."""
    severity = finding.get("Severity") or {}
    label = str(severity.get("Label") or "").upper()
    if label in LABELS:
        return label
    score = severity.get("Normalized")
    if not isinstance(score, int | float):
        return "INFORMATIONAL"
    for floor, name in ((90, "CRITICAL"), (70, "HIGH"), (40, "MEDIUM"), (1, "LOW")):
        if score >= floor:
            return name
    return "INFORMATIONAL"


def _first_seen(finding: Mapping[str, Any]) -> str:
    return str(finding.get("FirstObservedAt") or finding.get("CreatedAt") or "")


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _name(resource_id: str) -> str:
    """``shop-assets`` for ``arn:aws:s3:::shop-assets``; ``sg-0abc`` for its ARN."""
    return resource_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1] or resource_id


def finding_line(account_id: str, asked_in: str, finding: Mapping[str, Any]) -> dict[str, Any]:
    """One finding as a resource line: ``shop-assets: S3 general purpose buckets should block
    public access (HIGH, Security Hub S3.8)``."""
    label = label_of(finding)
    region = str(finding.get("Region") or asked_in)
    resources = finding.get("Resources") or [{}]
    first = resources[0]
    resource_id = str(first.get("Id") or "?")
    title = " ".join(str(finding.get("Title") or "untitled finding").split())
    product = str(finding.get("ProductName") or _product(str(finding.get("ProductArn", ""))))
    control = (finding.get("Compliance") or {}).get("SecurityControlId")
    source = f"{product} {control}" if control else product
    more = f" and {len(resources) - 1} more" if len(resources) > 1 else ""
    text = f"{_name(resource_id)}{more}: {title} ({label}, {source})"
    recommendation = ((finding.get("Remediation") or {}).get("Recommendation") or {}).get("Url")
    return resource(
        "security",
        account_id,
        region,
        str(finding["Id"]),
        "finding",
        GRADES[label],
        text,
        label=label,
        title=title,
        product=product,
        control=control,
        resource_type=first.get("Type"),
        resource_id=resource_id,
        resources=len(resources),
        workflow=(finding.get("Workflow") or {}).get("Status"),
        first_seen=_first_seen(finding) or None,
        updated=finding.get("UpdatedAt"),
        recommendation=recommendation,
    )


def _product(product_arn: str) -> str:
    """``guardduty`` for ``arn:aws:securityhub:…:product/aws/guardduty``."""
    return product_arn.rsplit("/", 1)[-1] or "Security Hub"


def enablement_lines(account_id: str, region: Region) -> list[dict[str, Any]]:
    """A warning, saying how to switch it on, for Security Hub or GuardDuty off in a region."""
    where = region.name
    lines = []
    if not region.hub:
        lines.append(
            resource(
                "security", account_id, where, "securityhub", ENABLEMENT, Severity.WARN,
                f"Security Hub is not enabled in {where} ({region.hub_answer}): enable it in "
                f"the Security Hub console, or run `aws securityhub enable-security-hub "
                f"--region {where}` (in an organization, from the Security Hub delegated "
                "administrator)",
                service="Security Hub",
                answer=region.hub_answer,
            )
        )  # fmt: skip
    if region.guardduty == "missing":
        lines.append(
            resource(
                "security", account_id, where, "guardduty", ENABLEMENT, Severity.WARN,
                f"GuardDuty is not enabled in {where}: enable it in the GuardDuty console, or "
                f"run `aws guardduty create-detector --enable --region {where}`; or set "
                "checks.security.require_guardduty: false",
                service="GuardDuty",
            )
        )  # fmt: skip
    elif region.guardduty == SUSPENDED:
        lines.append(
            resource(
                "security", account_id, where, "guardduty", ENABLEMENT, Severity.WARN,
                f"GuardDuty is suspended in {where}: resume it in the GuardDuty console, or "
                f"run `aws guardduty update-detector --detector-id {region.detector} --enable "
                f"--region {where}`",
                service="GuardDuty",
                detector=region.detector,
            )
        )  # fmt: skip
    return lines


def summarise(ctx: CheckContext, settings: SecuritySettings, regions: list[Region]) -> CheckResult:
    account_id = ctx.account.account_id
    unique: dict[str, tuple[str, dict[str, Any]]] = {}
    for region in regions:
        for finding in region.findings:
            unique.setdefault(str(finding["Id"]), (region.name, finding))
    findings = [finding_line(account_id, asked_in, f) for asked_in, f in unique.values()]
    counts = Counter(line["label"] for line in findings)
    titles = top_titles(findings)
    where = Counter(line["region"] for line in findings)  # the region each finding names
    # Kept: the oldest of each severity, so a line leaves only when its finding does (a
    # complete result resolves every finding it does not list). Shown newest first.
    kept = sorted(findings, key=lambda r: (-_rank(r), _age(r), r["id"]))[: settings.max_findings]
    kept.sort(key=lambda r: (-_rank(r), -_age(r), r["id"]))
    switched = [line for region in regions for line in enablement_lines(account_id, region)]
    # stable: the "switch it on" warnings after the critical findings, before the other warnings
    lines = sorted([*switched, *kept], key=lambda r: -_rank(r))
    details: dict[str, Any] = {
        "findings": len(findings),
        "counts": {
            label: counts[label]
            for label in LABELS
            if label in settings.severities or counts[label]
        },
        "titles": titles[:TITLES_KEPT],
        "listed": len(kept),
        "omitted": len(findings) - len(kept),
        "regions": {
            region.name: {
                "security_hub": region.hub,
                "guardduty": _guardduty_state(region.guardduty),
                "findings": where[region.name],
            }
            for region in regions
        },
        "severities": list(settings.severities),
        "max_findings": settings.max_findings,
        "resources": lines,
    }
    severity = Severity.worst([line["severity"] for line in lines])
    return CheckResult(severity, summary(settings, regions, details, titles), details)


def _age(line: Mapping[str, Any]) -> float:
    return _when(str(line.get("first_seen") or "")).timestamp()


def _rank(line: Mapping[str, Any]) -> int:
    return Severity(line["severity"]).rank


def _guardduty_state(state: str | None) -> str | None:
    """``enabled``, ``suspended``, ``not enabled``; None when not asked."""
    names = {"missing": "not enabled", SUSPENDED: "suspended", "ENABLED": "enabled"}
    return names.get(state, state.lower()) if state else None


def top_titles(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings' titles, worst and most frequent first: ``{title, label, count}``."""
    count: Counter[str] = Counter(line["title"] for line in findings)
    worst: dict[str, str] = {}
    for line in findings:
        known = worst.get(line["title"])
        if known is None or LABELS.index(line["label"]) < LABELS.index(known):
            worst[line["title"]] = line["label"]
    ordered = sorted(count, key=lambda title: (LABELS.index(worst[title]), -count[title], title))
    return [{"title": title, "label": worst[title], "count": count[title]} for title in ordered]


def summary(
    settings: SecuritySettings,
    regions: list[Region],
    details: Mapping[str, Any],
    titles: list[dict[str, Any]],
) -> str:
    """``3 active findings (1 critical, 2 high): "Security groups should not allow …",
    "S3 general purpose buckets should block public access" ×2; GuardDuty not enabled in
    eu-west-1 (aws guardduty create-detector --enable)``."""
    parts = []
    total = int(details["findings"])
    if total:
        counted = ", ".join(f"{n} {label.lower()}" for label, n in details["counts"].items() if n)
        named = ", ".join(
            f'"{_cut(t["title"])}"' + (f" ×{t['count']}" if t["count"] > 1 else "")
            for t in titles[:TOP_TITLES]
        )
        text = f"{total} active finding{'s' if total > 1 else ''} ({counted}): {named}"
        if len(titles) > TOP_TITLES:
            text += f" and {len(titles) - TOP_TITLES} more titles"
        if details["omitted"]:
            text += (
                f" — {details['listed']} of {total} listed (max_findings: {settings.max_findings})"
            )
        parts.append(text)
    off = {
        "Security Hub not enabled": [r.name for r in regions if not r.hub],
        "GuardDuty not enabled": [r.name for r in regions if r.guardduty == "missing"],
        "GuardDuty suspended": [r.name for r in regions if r.guardduty == SUSPENDED],
    }
    how = {
        "Security Hub not enabled": "aws securityhub enable-security-hub",
        "GuardDuty not enabled": "aws guardduty create-detector --enable",
        "GuardDuty suspended": "aws guardduty update-detector --enable",
    }
    parts += [f"{what} in {', '.join(where)} ({how[what]})" for what, where in off.items() if where]
    if parts:
        return "; ".join(parts)
    services = "Security Hub and GuardDuty" if settings.require_guardduty else "Security Hub"
    return (
        f"no active {_or([s.lower() for s in settings.severities])} findings in "
        f"{', '.join(r.name for r in regions)} ({services} on)"
    )


def _cut(title: str) -> str:
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """A finding's page in the Security Hub console; where to switch Security Hub or GuardDuty
    on for a "not enabled" line; the region's findings for a finding about the whole result."""
    home = f"https://{region}.console.aws.amazon.com"
    if resource_id == "guardduty":
        return f"{home}/guardduty/home?region={region}#/"
    hub = f"{home}/securityhub/home?region={region}"
    if resource_id == "securityhub":
        return f"{hub}#/landing"
    if not resource_id or resource_id == "*":
        return f"{hub}#/findings"
    # the console's own search link: "Id = <id>", its operator and the id encoded twice
    finding = quote(quote(resource_id, safe=""), safe="")
    return f"{hub}#/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253A{finding}"
