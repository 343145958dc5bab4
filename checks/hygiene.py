"""Account hygiene: the handful of account-wide settings every AWS account should have, each one
resource line with the fix in it.

Controls (``skip`` names the ones an account deliberately does without):

- ``root_mfa``, ``root_keys``: the root user has MFA and no access keys — IAM
  ``GetAccountSummary`` (``AccountMFAEnabled``, ``AccountAccessKeysPresent``); critical.
- ``access_keys``: no active IAM user access key older than ``key_age_days`` or unused for
  ``unused_days`` — the IAM credential report: ``GenerateCredentialReport`` (AWS builds it at
  most every 4 hours and says ``COMPLETE`` while the last one is fresh), then
  ``GetCredentialReport``. While a new report is being built AWS answers ``ReportInProgress``:
  the check asks again after a short wait (:data:`REPORT_WAITS_S`), and if it is still not
  ready says so as a transient error (the next try reads it). A warning, one line per key.
- ``cloudtrail``: a multi-region trail that is logging — ``DescribeTrails`` (shadow trails
  included: a multi-region trail shows in every region, so the account's first region is
  enough) and ``GetTrailStatus`` per multi-region trail, by ARN; critical. A warning instead
  when the only multi-region trails are ones this account cannot read the status of
  (``TrailNotFoundException``: an organization's trail): the account that owns it can.
- ``config``: an AWS Config recorder recording in each of the account's regions —
  ``DescribeConfigurationRecorderStatus`` per region; a warning per region that is not.
- ``s3_public_access``: account-level S3 Block Public Access with all four settings on —
  S3 Control ``GetPublicAccessBlock`` (IAM: ``s3:GetAccountPublicAccessBlock``); a warning,
  also when none is set (``NoSuchPublicAccessBlockConfiguration``): buckets keep their own
  Block Public Access (on by default for every bucket created since April 2023), so nothing is
  known to be public — but nothing stops the next bucket policy from making one so.

IAM and S3 Control answer for the whole account from any region; the check asks them, and
CloudTrail, in the account's first region (enabled, and allowed by its policies) and reports
those lines there.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast
from urllib.parse import quote

from pydantic import AfterValidator, Field

from app.config import Account, clip, did_you_mean
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource
from checks.errors import CheckError, Reason, TransientError

KIND = "hygiene"
CONTROLS = ("root_mfa", "root_keys", "access_keys", "cloudtrail", "config", "s3_public_access")
"""Every control, in the order lines and ``skip`` name them."""
REPORT_WAITS_S = (1.0, 2.0, 4.0)
"""Waits between asking for the credential report again while AWS builds it (7 s at most)."""
REPORT_NOT_READY = frozenset({"ReportInProgress", "ReportNotPresent", "ReportExpired"})
NO_BLOCK = "NoSuchPublicAccessBlockConfiguration"
TRAIL_NOT_FOUND = "TrailNotFoundException"
BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
S3_CONTROL_CALL = ("s3control:GetPublicAccessBlock", "s3:GetAccountPublicAccessBlock")
"""How ``ctx.call`` names the S3 Control call, and the IAM action it needs."""
ROOT_ROW = "<root_account>"
"""The credential report's row for the root user (its keys are ``root_keys``)."""
NOT_A_DATE = frozenset({"", "N/A", "not_supported", "no_information"})
IAM_HOME = "https://us-east-1.console.aws.amazon.com/iam/home"
ORDER = {name: index for index, name in enumerate(CONTROLS)}


def _control(value: str) -> str:
    if value not in CONTROLS:
        raise ValueError(
            f'"{clip(value)}" is not a control.{did_you_mean(value, CONTROLS)} skip takes '
            f"{', '.join(CONTROLS)}"
        )
    return value


Control = Annotated[str, AfterValidator(_control)]
Days = Annotated[int, Field(ge=1, le=3650)]
"""Whole days, 1 to 3650."""


class HygieneSettings(CheckSettings):
    key_age_days: Days = 90
    """An active IAM user access key last rotated longer ago than this is a warning."""
    unused_days: Days = 90
    """An active IAM user access key not used for this long (or never used, and created this
    long ago) is a warning."""
    skip: tuple[Control, ...] = ()
    """Controls this account deliberately does without (:data:`CONTROLS`): not asked about,
    not reported. Every control skipped: the result is ``skipped``."""


@dataclass
class Looked:
    """What the controls found: their lines, and the counts ``details`` carries."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


class HygieneCheck(Check):
    kind = KIND
    Settings = HygieneSettings
    services = ("config",)
    """AWS Config in each region; IAM, CloudTrail and S3 Control once (:meth:`clients`)."""
    actions = (
        "iam:GetAccountSummary",
        "iam:GenerateCredentialReport",
        "iam:GetCredentialReport",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "config:DescribeConfigurationRecorderStatus",
        S3_CONTROL_CALL[1],  # s3:GetAccountPublicAccessBlock, behind S3 Control's call
    )

    def clients(self, account: Account) -> list[tuple[str, str]]:
        home = account.regions[0]
        once = [(home, "iam"), (home, "cloudtrail"), (home, "s3control")]
        return once + super().clients(account)

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = cast(HygieneSettings, ctx.settings)
        wanted = [name for name in CONTROLS if name not in settings.skip]
        if not wanted:
            return CheckResult(
                Severity.SKIPPED,
                "every control skipped (checks.hygiene.skip)",
                {"controls": 0, "resources": [], "skipped": list(settings.skip)},
            )
        looks: list[Awaitable[Looked]] = []
        if "root_mfa" in wanted or "root_keys" in wanted:
            looks.append(_root(ctx, wanted))
        if "access_keys" in wanted:
            looks.append(_access_keys(ctx, settings))
        if "cloudtrail" in wanted:
            looks.append(_cloudtrail(ctx))
        if "config" in wanted:
            looks.append(_config(ctx))
        if "s3_public_access" in wanted:
            looks.append(_s3_public_access(ctx))
        looked = await _all(*looks)
        return summarise(wanted, looked, settings)


async def _all(*calls: Awaitable[Any]) -> list[Any]:
    """Every call's answer; the first failure raised once all of them have ended."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers


def _line(
    ctx: CheckContext,
    region: str,
    rid: str,
    control: str,
    severity: Severity,
    summary: str,
    aspect: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A line about ``control``; its fingerprint's aspect is the control unless one is given."""
    return resource(
        KIND,
        ctx.account.account_id,
        region,
        rid,
        aspect or control,
        severity,
        summary,
        control=control,
        **extra,
    )


# -- root --------------------------------------------------------------------------------------


ROOT_PROBLEMS = {
    "root_mfa": "root has no MFA: sign in as root → Security credentials → Assign MFA device",
    "root_keys": (
        "root has access keys: sign in as root → Security credentials → Access keys → "
        "deactivate and delete them (move whatever uses them to an IAM role)"
    ),
}
ROOT_OK = {"root_mfa": "root has MFA", "root_keys": "root has no access keys"}


async def _root(ctx: CheckContext, wanted: list[str]) -> Looked:
    home = ctx.account.regions[0]
    summary = (await ctx.call(home, "iam", "get_account_summary"))["SummaryMap"]
    mfa = bool(summary.get("AccountMFAEnabled"))
    keys = bool(summary.get("AccountAccessKeysPresent"))
    failing = {"root_mfa": not mfa, "root_keys": keys}
    lines = [
        _line(ctx, home, "root", control, Severity.CRIT, ROOT_PROBLEMS[control])
        if failing[control]
        else _line(ctx, home, "root", control, Severity.OK, ROOT_OK[control])
        for control in ("root_mfa", "root_keys")
        if control in wanted
    ]
    return Looked(lines, {"root": {"mfa": mfa, "access_keys": keys}})


# -- IAM user access keys ------------------------------------------------------------------------


async def _access_keys(ctx: CheckContext, settings: HygieneSettings) -> Looked:
    content = await _credential_report(ctx, ctx.account.regions[0])
    return _judge_keys(ctx, content, settings)


async def _credential_report(ctx: CheckContext, region: str) -> bytes:
    """The credential report's CSV: asked to be generated (AWS keeps one for 4 hours and
    answers ``COMPLETE`` while it is fresh), then read; while AWS is still building it, asked
    again after each of :data:`REPORT_WAITS_S`."""
    state = "STARTED"
    for wait in (*REPORT_WAITS_S, None):
        state = (await ctx.call(region, "iam", "generate_credential_report")).get("State", state)
        try:
            answer = await ctx.call(region, "iam", "get_credential_report")
        except CheckError as exc:
            if exc.code not in REPORT_NOT_READY:
                raise
        else:
            return bytes(answer["Content"])
        if wait is not None:
            await asyncio.sleep(wait)
    account = ctx.account
    raise TransientError(
        f"{account.id} ({account.account_id}): the IAM credential report is still being "
        f"generated ({state}) after {sum(REPORT_WAITS_S):g} s; the next try will read it "
        "(AWS builds one in seconds for most accounts, minutes for thousands of users).",
        reason=Reason.OTHER,
        call="iam:GetCredentialReport",
        code="ReportInProgress",
    )


def _date(value: str | None) -> datetime | None:
    if value is None or value in NOT_A_DATE:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _judge_keys(ctx: CheckContext, content: bytes, settings: HygieneSettings) -> Looked:
    """A warning line per active user access key that is old or unused; one ``ok`` line when
    none is."""
    home = ctx.account.regions[0]
    old_after = timedelta(days=settings.key_age_days)
    idle_after = timedelta(days=settings.unused_days)
    lines: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for row in csv.DictReader(io.StringIO(content.decode("utf-8-sig"))):
        user = row.get("user") or "?"
        if user == ROOT_ROW:
            continue
        for slot in (1, 2):
            if row.get(f"access_key_{slot}_active") != "true":
                continue
            counts["active"] += 1
            rotated = _date(row.get(f"access_key_{slot}_last_rotated"))
            used = _date(row.get(f"access_key_{slot}_last_used_date"))
            age = ctx.now - rotated if rotated else None
            since = used or rotated
            idle = ctx.now - since if since else None
            old = age is not None and age > old_after
            unused = idle is not None and idle > idle_after
            counts["old"] += old
            counts["unused"] += unused
            if not (old or unused):
                continue
            lines.append(
                _line(
                    ctx,
                    home,
                    f"user/{user}",
                    "access_keys",
                    Severity.WARN,
                    _key_text(user, slot, age, idle, used is None, old, unused, settings),
                    aspect=f"access_key_{slot}",
                    user=user,
                    key=slot,
                    last_rotated=rotated.isoformat() if rotated else None,
                    last_used=used.isoformat() if used else None,
                    age_days=age.days if age else None,
                    unused_days=idle.days if idle else None,
                )
            )
    if not lines:
        active = counts["active"]
        noun = "active access key" if active == 1 else "active access keys"
        lines.append(
            _line(
                ctx,
                home,
                "access-keys",
                "access_keys",
                Severity.OK,
                f"{active} {noun}, none older than {settings.key_age_days} d or unused for "
                f"{settings.unused_days} d",
            )
        )
    facts = {key: counts[key] for key in ("active", "old", "unused")}
    return Looked(lines, {"access_keys": facts})


def _key_text(
    user: str,
    slot: int,
    age: timedelta | None,
    idle: timedelta | None,
    never_used: bool,
    old: bool,
    unused: bool,
    settings: HygieneSettings,
) -> str:
    """``alice's access key 1 is 412 days old (warn > 90 d): rotate it (…)``; an unused key's
    fix is to delete it, whatever its age."""
    where = f"IAM → Users → {user} → Security credentials"
    key = f"{user}'s access key {slot}"
    if not unused:
        assert age is not None
        return (
            f"{key} is {age.days} days old (warn > {settings.key_age_days} d): rotate it ({where}:"
            " create a second key, move its users to it, deactivate and delete this one)"
        )
    assert idle is not None
    if never_used:
        text = f"{key} was never used in the {idle.days} days since it was created"
    else:
        text = f"{key} was last used {idle.days} days ago"
        if old and age is not None:
            text += f" and is {age.days} days old"
    return f"{text} (warn > {settings.unused_days} d unused): deactivate, then delete it ({where})"


# -- CloudTrail --------------------------------------------------------------------------------


async def _cloudtrail(ctx: CheckContext) -> Looked:
    home = ctx.account.regions[0]
    answer = await ctx.call(home, "cloudtrail", "describe_trails", includeShadowTrails=True)
    trails = answer.get("trailList", [])
    multi = [t for t in trails if t.get("IsMultiRegionTrail")]
    statuses = await _all(*(_trail_status(ctx, home, trail) for trail in multi))
    logging = sorted(t["Name"] for t, on in zip(multi, statuses, strict=True) if on)
    unread = [t["Name"] for t, on in zip(multi, statuses, strict=True) if on is None]
    single = sorted(t["Name"] for t in trails if not t.get("IsMultiRegionTrail"))
    facts = {
        "trails": {
            "multi_region": sorted(t["Name"] for t in multi),
            "logging": logging,
            "unreadable": sorted(unread),
            "single_region": single,
        }
    }
    severity = Severity.CRIT
    if logging:
        more = f" (and {len(logging) - 1} more)" if len(logging) > 1 else ""
        severity, text = Severity.OK, f"multi-region trail {logging[0]} is logging{more}"
    elif unread:
        severity = Severity.WARN
        text = (
            f"multi-region trail {unread[0]}: this account cannot read its status "
            f"({TRAIL_NOT_FOUND}): check it is logging in the account that owns it"
        )
    elif multi:
        name = multi[0]["Name"]
        text = (
            f"multi-region trail {name} is not logging: CloudTrail → Trails → {name} → "
            "Start logging"
        )
    else:
        also = f" (single-region only: {', '.join(single[:3])})" if single else ""
        text = (
            f"no multi-region CloudTrail trail{also}: CloudTrail → Trails → Create trail (a "
            "console trail covers every region), or make a trail multi-region"
        )
    return Looked([_line(ctx, home, "cloudtrail", "cloudtrail", severity, text)], facts)


async def _trail_status(ctx: CheckContext, region: str, trail: Mapping[str, Any]) -> bool | None:
    """Whether the trail is logging, asked by ARN (a multi-region trail made in another
    region answers everywhere); None when this account cannot read it (an organization's
    trail, or one deleted meanwhile)."""
    try:
        status = await ctx.call(region, "cloudtrail", "get_trail_status", Name=trail["TrailARN"])
    except CheckError as exc:
        if exc.code == TRAIL_NOT_FOUND:
            return None
        raise
    return bool(status.get("IsLogging"))


# -- AWS Config --------------------------------------------------------------------------------


async def _config(ctx: CheckContext) -> Looked:
    regions = ctx.account.regions
    answers = await _all(
        *(
            ctx.call(region, "config", "describe_configuration_recorder_status")
            for region in regions
        )
    )
    looked = Looked(facts={"config": {}})
    for region, answer in zip(regions, answers, strict=True):
        recorders = [
            r
            for r in answer.get("ConfigurationRecordersStatus", [])
            if not r.get("servicePrincipal")
        ]  # a service-linked recorder records for its service only
        state, line = _recorder(ctx, region, recorders)
        looked.facts["config"][region] = state
        looked.lines.append(line)
    return looked


def _recorder(
    ctx: CheckContext, region: str, recorders: list[dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """(state, line) for AWS Config in one region."""
    recording = [r for r in recorders if r.get("recording")]
    failing = [r for r in recording if str(r.get("lastStatus", "")).upper() == "FAILURE"]
    if recording and len(failing) < len(recording):
        name = next(r for r in recording if r not in failing)["name"]
        return "recording", _line(
            ctx,
            region,
            "config",
            "config",
            Severity.OK,
            f"AWS Config recorder {name} is recording in {region}",
            recorder=name,
        )
    if failing:
        recorder = failing[0]
        why = recorder.get("lastErrorMessage") or recorder.get("lastErrorCode") or "no reason"
        return "failing", _line(
            ctx,
            region,
            "config",
            "config",
            Severity.WARN,
            f"AWS Config recorder {recorder['name']} in {region} is failing ({clip(str(why))}): "
            "check its IAM role and delivery channel (AWS Config → Settings)",
            recorder=recorder["name"],
        )
    if recorders:
        name = recorders[0]["name"]
        return "stopped", _line(
            ctx,
            region,
            "config",
            "config",
            Severity.WARN,
            f"AWS Config recorder {name} is not recording in {region}: AWS Config → Settings → "
            "Recorder → Start recording",
            recorder=name,
        )
    return "none", _line(
        ctx,
        region,
        "config",
        "config",
        Severity.WARN,
        f"AWS Config is not recording in {region} (no recorder): AWS Config → Get started "
        "(1-click setup) in this region",
    )


# -- S3 Block Public Access ----------------------------------------------------------------------


async def _s3_public_access(ctx: CheckContext) -> Looked:
    home = ctx.account.regions[0]
    wrong, right = S3_CONTROL_CALL
    try:
        answer = await ctx.call(
            home, "s3control", "get_public_access_block", AccountId=ctx.account.account_id
        )
    except CheckError as exc:
        if exc.code == NO_BLOCK:
            answer = None
        elif exc.call == wrong:  # ctx.call names the API; IAM names the action otherwise
            raise type(exc)(
                str(exc).replace(wrong, right), reason=exc.reason, call=right, code=exc.code
            ) from exc
        else:
            raise
    where = "S3 → Block Public Access settings for this account → Edit → Block all public access"
    rid = "s3-block-public-access"
    if answer is None:
        line = _line(
            ctx,
            home,
            rid,
            "s3_public_access",
            Severity.WARN,
            f"no account-level S3 Block Public Access: {where}",
        )
        return Looked([line], {"s3_public_access": {}})
    settings = answer.get("PublicAccessBlockConfiguration", {})
    off = [flag for flag in BLOCK_FLAGS if not settings.get(flag)]
    flags = {flag: bool(settings.get(flag)) for flag in BLOCK_FLAGS}
    if off:
        line = _line(
            ctx,
            home,
            rid,
            "s3_public_access",
            Severity.WARN,
            f"account-level S3 Block Public Access is partly off ({', '.join(off)}): {where}",
            off=off,
        )
    else:
        line = _line(
            ctx,
            home,
            rid,
            "s3_public_access",
            Severity.OK,
            "account-level S3 Block Public Access is on (all four settings)",
        )
    return Looked([line], {"s3_public_access": flags})


# -- the result --------------------------------------------------------------------------------


def summarise(wanted: list[str], looked: list[Looked], settings: HygieneSettings) -> CheckResult:
    lines = [line for answer in looked for line in answer.lines]
    lines.sort(
        key=lambda line: (
            -Severity(line["severity"]).rank,
            ORDER[line["control"]],
            line["region"],
            line["id"],
        )
    )
    worst: dict[str, Severity] = {}
    for line in lines:
        control = line["control"]
        worst[control] = Severity.worst([worst.get(control, Severity.OK), line["severity"]])
    counts = Counter(severity.value for severity in worst.values())
    details: dict[str, Any] = {
        "controls": len(wanted),
        "counts": dict(sorted(counts.items())),
        "resources": lines,
        "skipped": list(settings.skip),
        "key_age_days": settings.key_age_days,
        "unused_days": settings.unused_days,
    }
    for answer in looked:
        details.update(answer.facts)
    severity = Severity.worst(list(worst.values()))
    return CheckResult(severity, _summary(wanted, lines, counts, settings), details)


def _summary(
    wanted: list[str], lines: list[dict[str, Any]], counts: Counter[str], settings: HygieneSettings
) -> str:
    """The first problem, then the controls counted: ``root has no MFA: …; and 2 more — 6
    controls: 1 critical, 2 warnings``; ``6 controls OK`` when there is none."""
    skipped = f" (skipped: {', '.join(settings.skip)})" if settings.skip else ""
    problems = [line for line in lines if line["severity"] != Severity.OK.value]
    noun = "control" if len(wanted) == 1 else "controls"
    if not problems:
        return f"{len(wanted)} {noun} OK{skipped}"
    parts = [
        f"{counts[s]} {word}{'s' if counts[s] > 1 and s == 'warn' else ''}"
        for s, word in (("crit", "critical"), ("warn", "warning"))
        if counts[s]
    ]
    more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{problems[0]['summary']}{more} — {len(wanted)} {noun}: {', '.join(parts)}{skipped}"


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """Where the fix is: the root user's security credentials, an IAM user's access keys, the
    region's CloudTrail trails or AWS Config settings, the account's S3 Block Public Access
    settings; the IAM dashboard for a finding about the whole result."""
    if resource_id == "root":
        return f"{IAM_HOME}#/security_credentials"
    if resource_id.startswith("user/"):
        user = quote(resource_id.removeprefix("user/"), safe="")
        return f"{IAM_HOME}#/users/details/{user}?section=security_credentials"
    if resource_id == "access-keys":
        return f"{IAM_HOME}#/users"
    home = f"https://{region}.console.aws.amazon.com"
    if resource_id == "cloudtrail":
        return f"{home}/cloudtrail/home?region={region}#/trails"
    if resource_id == "config":
        return f"{home}/config/home?region={region}#/dashboard"
    if resource_id == "s3-block-public-access":
        return f"https://s3.console.aws.amazon.com/s3/settings?region={region}"
    return f"{IAM_HOME}#/home"
