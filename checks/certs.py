"""Certs: the ACM certificates of each account region, in use or not — days to expiry, imported
ones (ACM cannot renew them), requests stuck in validation, managed renewals that failed.

Per region, one ``ListCertificates`` call per 1000 certificates (every key type: without
``Includes.keyTypes`` AWS lists only RSA-1024 and RSA-2048 ones). The list already carries each
certificate's status, type, expiry and whether it is in use; ``DescribeCertificate`` is asked
only for what the list lacks: the managed-renewal status of an ACM-issued certificate in its
renewal window (:data:`RENEWAL_WINDOW`) and why a request failed. CloudFront takes certificates
only from us-east-1, so that region is looked at too unless ``cloudfront_region: false``.

The expiry thresholds are the ``http`` check's TLS ones (:data:`WARN_DAYS`, :data:`CRIT_DAYS`,
read from :class:`checks.http.HttpSettings`), compared the same way (fewer days left than the
threshold), so a certificate behind a monitored endpoint gets one severity from both checks.
An account with no certificates is ``ok``: the check did look, and found nothing that can
expire.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from app.config import Account
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource
from checks.errors import CheckError
from checks.http import HttpSettings

WARN_DAYS: int = HttpSettings.model_fields["cert_warn_days"].default
"""Days left below which a certificate is a warning: the ``http`` check's ``cert_warn_days``."""
CRIT_DAYS: int = HttpSettings.model_fields["cert_crit_days"].default
"""Days left below which a certificate is critical: the ``http`` check's ``cert_crit_days``."""
RENEWAL_WINDOW = timedelta(days=60)
"""ACM starts renewing a certificate it issued this long before it expires; its renewal status
is asked for (one ``DescribeCertificate``) only inside this window."""
CLOUDFRONT_REGION = "us-east-1"
KEY_TYPES = (
    "RSA_1024",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "EC_prime256v1",
    "EC_secp384r1",
    "EC_secp521r1",
)
PAGE_SIZE = 1000
"""``MaxItems`` of a ListCertificates page (AWS's largest)."""
MAX_NAMES = 10
"""Subject alternative names kept on a resource line."""


class CertsSettings(CheckSettings):
    warn_days: int = Field(WARN_DAYS, ge=1, le=365)
    """Warn when a certificate expires in fewer days than this (the ``http`` check's
    ``cert_warn_days`` by default)."""
    crit_days: int = Field(CRIT_DAYS, ge=0, le=365)
    """Critical when it expires in fewer days than this; an expired certificate always is."""
    pending_hours: float = Field(24, gt=0, le=72)
    """Warn when a requested certificate has waited this long for domain validation (ACM
    gives up at 72 h)."""
    cloudfront_region: bool = True
    """Also look in us-east-1, where CloudFront's certificates live, when the account does not
    list it. Turn off when an SCP keeps the account out of us-east-1."""

    @model_validator(mode="after")
    def _ordered(self) -> CertsSettings:
        if self.crit_days >= self.warn_days:
            raise ValueError(
                f"crit_days ({self.crit_days}) must be below warn_days ({self.warn_days}), so "
                f"that a certificate warns before it turns critical; write for example "
                f"warn_days: {WARN_DAYS} and crit_days: {CRIT_DAYS}"
            )
        return self


class CertsCheck(Check):
    kind = "certs"
    Settings = CertsSettings
    services = ("acm",)
    actions = ("acm:ListCertificates", "acm:DescribeCertificate")

    def clients(self, account: Account) -> list[tuple[str, str]]:
        """ACM in each region of the account, and in us-east-1 (``cloudfront_region``)."""
        return [(region, "acm") for region in regions_of(account, cloudfront=True)]

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = cast(CertsSettings, ctx.settings)
        regions = regions_of(ctx.account, cloudfront=settings.cloudfront_region)
        listed = await _all(
            ctx.paginate(
                region,
                "acm",
                "list_certificates",
                "CertificateSummaryList",
                Includes={"keyTypes": list(KEY_TYPES)},
                PaginationConfig={"PageSize": PAGE_SIZE},
            )
            for region in regions
        )
        found = [
            (region, cast(dict[str, Any], cert))
            for region, certs in zip(regions, listed, strict=True)
            for cert in certs
        ]
        certs = await _all(_completed(ctx, region, cert) for region, cert in found)
        findings = [
            _finding(ctx, region, cert, settings)
            for (region, _), cert in zip(found, certs, strict=True)
            if cert is not None
        ]
        findings.sort(key=_order)
        return summarise(findings, regions, settings, ctx.customer.tz)


def regions_of(account: Account, *, cloudfront: bool) -> list[str]:
    """The account's regions, and us-east-1 after them when ``cloudfront`` and not listed."""
    regions = list(account.regions)
    if cloudfront and CLOUDFRONT_REGION not in regions:
        regions.append(CLOUDFRONT_REGION)
    return regions


async def _all(calls: Any) -> list[Any]:
    """Every call's answer, in order; the first failure raised once all have finished."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return list(answers)


async def _completed(ctx: CheckContext, region: str, cert: dict[str, Any]) -> dict[str, Any] | None:
    """The listed certificate, with what only DescribeCertificate tells when it is needed;
    None when it was deleted since it was listed."""
    if not _needs_description(cert, ctx.now):
        return cert
    try:
        answer = await _described(ctx, region, str(cert["CertificateArn"]))
    except CheckError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise
    return {**cert, **answer.get("Certificate", {})}


def _described(ctx: CheckContext, region: str, arn: str) -> Awaitable[dict[str, Any]]:
    return cast(
        Awaitable[dict[str, Any]],
        ctx.call(region, "acm", "describe_certificate", CertificateArn=arn),
    )


def _needs_description(cert: Mapping[str, Any], now: datetime) -> bool:
    """Whether the list's summary lacks something the verdict needs: the renewal status of an
    ACM-issued certificate in its renewal window, why a request failed, or (from an older
    answer) the status, type or expiry themselves."""
    status, kind, not_after = cert.get("Status"), cert.get("Type"), cert.get("NotAfter")
    if status is None or kind is None:
        return True
    if status == "FAILED":
        return True
    if status != "ISSUED":
        return False
    if not isinstance(not_after, datetime):
        return True
    return kind != "IMPORTED" and not_after - now <= RENEWAL_WINDOW


def assess(
    cert: Mapping[str, Any], now: datetime, tz: ZoneInfo, settings: CertsSettings
) -> tuple[Severity, str]:
    """The severity of one certificate and what to say about it (after its domain name)."""
    status = str(cert.get("Status", "?"))
    not_after = cert.get("NotAfter")
    if status in ("ISSUED", "EXPIRED") and isinstance(not_after, datetime):
        severity, text = _expiry(not_after, now, tz, settings)
        notes = _notes(cert, status == "ISSUED" and not_after - now <= RENEWAL_WINDOW)
        if status == "ISSUED":
            renewal = _renewal(cert)
            if renewal is not None:
                severity = Severity.worst([severity, renewal[0]])
                notes.insert(0, renewal[1])
        return severity, ", ".join([text, *notes])
    return _not_issued(cert, status, now, settings)


def _expiry(
    not_after: datetime, now: datetime, tz: ZoneInfo, settings: CertsSettings
) -> tuple[Severity, str]:
    left = not_after - now
    on = f"on {not_after.astimezone(tz):%d %b %Y %H:%M %Z}"
    if left <= timedelta(0):
        return Severity.CRIT, f"expired {_span(-left)} ago {on}"
    days = left / timedelta(days=1)
    if days < settings.crit_days:
        return Severity.CRIT, f"expires in {_span(left)} (crit < {settings.crit_days} d) {on}"
    if days < settings.warn_days:
        return Severity.WARN, f"expires in {_span(left)} (warn < {settings.warn_days} d) {on}"
    return Severity.OK, f"expires in {_span(left)} {on}"


def _notes(cert: Mapping[str, Any], renewing: bool) -> list[str]:
    """What the reader must know about who renews it: ``imported: renew it yourself``, and a
    certificate not in use (ACM renews only those in use)."""
    notes = []
    if cert.get("Type") == "IMPORTED":
        notes.append("imported: renew it yourself")
    if not in_use(cert):
        unrenewed = renewing and cert.get("Type") != "IMPORTED"
        notes.append("not in use, so ACM will not renew it" if unrenewed else "not in use")
    return notes


def _renewal(cert: Mapping[str, Any]) -> tuple[Severity, str] | None:
    """ACM's managed renewal of a certificate it issued, when there is something to say."""
    summary = cert.get("RenewalSummary") or {}
    status = summary.get("RenewalStatus")
    if status == "FAILED":
        why = summary.get("RenewalStatusReason") or "no reason given"
        return (
            Severity.WARN,
            f"renewal failed ({why}): fix the cause and request a new certificate",
        )
    if status == "PENDING_VALIDATION":
        return (
            Severity.WARN,
            "renewal waits for domain validation: restore the CNAME record ACM shows for it",
        )
    if status == "PENDING_AUTO_RENEWAL":
        return Severity.OK, "renewal in progress"
    return None


def _not_issued(
    cert: Mapping[str, Any], status: str, now: datetime, settings: CertsSettings
) -> tuple[Severity, str]:
    """A certificate that is not (or never was) issued: a request, a revoked one, …"""
    if status == "PENDING_VALIDATION":
        created = cert.get("CreatedAt")
        waited = now - created if isinstance(created, datetime) else None
        if waited is None or waited < timedelta(hours=settings.pending_hours):
            since = f" for {_span(waited, days=False)}" if waited is not None else ""
            return Severity.OK, f"pending validation{since}"
        limit = f"warn ≥ {settings.pending_hours:g} h"
        return (
            Severity.WARN,
            f"pending validation for {_span(waited, days=False)} ({limit}): "
            "add the DNS record ACM shows for it; ACM gives up after 72 h",
        )
    if status == "VALIDATION_TIMED_OUT":
        return Severity.WARN, "validation timed out: request it again, or delete it"
    if status == "FAILED":
        why = cert.get("FailureReason") or "no reason given"
        return Severity.WARN, f"request failed ({why}): fix the cause and request it again"
    if status == "REVOKED":
        return Severity.CRIT, "revoked: replace it" + ("" if in_use(cert) else " (not in use)")
    if status == "INACTIVE":
        return Severity.OK, "inactive"
    return Severity.WARN, f"status {status}"


def in_use(cert: Mapping[str, Any]) -> bool:
    """Whether anything uses the certificate: ``InUseBy`` when described, else ``InUse``."""
    if "InUseBy" in cert:
        return bool(cert["InUseBy"])
    return bool(cert.get("InUse", False))


def _span(delta: timedelta, *, days: bool = True) -> str:
    """Whole days (``5 d``), below a day (or with ``days=False``) whole hours (``14 h``),
    below an hour minutes."""
    if days and delta >= timedelta(days=1):
        return f"{delta // timedelta(days=1)} d"
    if delta >= timedelta(hours=1):
        return f"{delta // timedelta(hours=1)} h"
    minutes = delta // timedelta(minutes=1)
    return f"{minutes} min" if minutes >= 1 else "< 1 min"


def _finding(
    ctx: CheckContext, region: str, cert: Mapping[str, Any], settings: CertsSettings
) -> dict[str, Any]:
    arn = str(cert.get("CertificateArn", "?"))
    certificate_id = arn.rsplit("/", 1)[-1]
    domain = str(cert.get("DomainName") or "(no domain)")
    severity, text = assess(cert, ctx.now, ctx.customer.tz, settings)
    not_after = cert.get("NotAfter")
    days_left = (
        math.floor((not_after - ctx.now) / timedelta(days=1))
        if isinstance(not_after, datetime)
        else None
    )
    renewal = (cert.get("RenewalSummary") or {}).get("RenewalStatus")
    return resource(
        "certs",
        ctx.account.account_id,
        region,
        f"{domain} ({certificate_id[:8]})",
        "certificate",
        severity,
        f"{domain}: {text}",
        arn=arn,
        certificate_id=certificate_id,
        domain=domain,
        names=_names(cert)[:MAX_NAMES],
        type=cert.get("Type"),
        status=cert.get("Status"),
        in_use=in_use(cert),
        not_after=not_after.isoformat() if isinstance(not_after, datetime) else None,
        days_left=days_left if cert.get("Status") in ("ISSUED", "EXPIRED") else None,
        renewal_status=renewal,
    )


def _names(cert: Mapping[str, Any]) -> list[str]:
    names = cert.get("SubjectAlternativeNames") or cert.get("SubjectAlternativeNameSummaries")
    return [str(n) for n in names or []]


def _order(finding: Mapping[str, Any]) -> tuple[int, float, str, str]:
    """Problems first, and among equals the soonest to expire."""
    days = finding["days_left"]
    return (
        -Severity(finding["severity"]).rank,
        days if days is not None else math.inf,
        finding["region"],
        finding["id"],
    )


def summarise(
    findings: Sequence[dict[str, Any]],
    regions: Sequence[str],
    settings: CertsSettings,
    tz: ZoneInfo,
) -> CheckResult:
    total = len(findings)
    counts = Counter(f["severity"] for f in findings)
    details: dict[str, Any] = {
        "certificates": total,
        "counts": {s.value: counts[s.value] for s in Severity if counts[s.value]},
        "regions": {r: sum(1 for f in findings if f["region"] == r) for r in regions},
        "imported": sum(1 for f in findings if f["type"] == "IMPORTED"),
        "in_use": sum(1 for f in findings if f["in_use"]),
        "thresholds": settings.model_dump(
            mode="json", include={"warn_days", "crit_days", "pending_hours"}
        ),
        "resources": list(findings),
    }
    if not findings:
        return CheckResult(Severity.OK, f"no certificates in {', '.join(regions)}", details)
    severity = Severity.worst([f["severity"] for f in findings])
    noun = "certificate" if total == 1 else "certificates"
    problems = [f for f in findings if f["severity"] != Severity.OK]
    if problems:
        parts = [
            f"{counts[s.value]} {label}"
            for s, label in ((Severity.CRIT, "critical"), (Severity.WARN, "warning"))
            if counts[s.value]
        ]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        text = f"{', '.join(parts)} of {total} {noun} — {problems[0]['summary']}{more}"
        return CheckResult(severity, text, details)
    expiring = [f for f in findings if f["days_left"] is not None and f["not_after"]]
    if not expiring:
        return CheckResult(severity, f"{total} {noun} OK", details)
    soonest = min(expiring, key=lambda f: f["not_after"])
    on = datetime.fromisoformat(soonest["not_after"]).astimezone(tz)
    return CheckResult(
        severity,
        f"{total} {noun} OK, the next to expire {soonest['domain']} in "
        f"{soonest['days_left']} d on {on:%d %b %Y}",
        details,
    )


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> str:
    """The certificate's page in the ACM console when the line is at hand (its id is there);
    the region's certificates otherwise."""
    home = f"https://{region}.console.aws.amazon.com/acm/home?region={region}"
    certificate = line.get("certificate_id")
    if isinstance(certificate, str) and certificate:
        return f"{home}#/certificates/{quote(certificate, safe='')}"
    return f"{home}#/certificates/list"
