"""HTTP: the customer's endpoints answer, in time, with the expected status and body, and their
TLS certificates are not about to expire.

Endpoints are configured once per customer (``checks.http.endpoints``) but a result is per
account × check, so each endpoint belongs to one account: the one it names with ``account:``,
or else the customer's first account that runs ``http`` (the first account if none does). An
account with no endpoints gets a ``skipped`` result. An unreachable endpoint, a timeout or an
untrusted certificate is a finding (``crit``), not an ``error``: the check did look, and what it
found is that the endpoint is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, field_validator, model_validator

from app.config import Account, Customer
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource

MAX_BODY = 1024 * 1024
"""Bytes of a response body read for ``body_contains``; the rest is not downloaded."""
PARALLEL = 8
USER_AGENT = "monitoring-hub/0.1 (http check)"
REGION = "global"


class Endpoint(CheckSettings):
    name: str = Field(min_length=1, max_length=64)
    url: str
    account: str | None = None
    """The account alias whose result shows this endpoint; default: see the module doc."""
    expect_status: int = Field(200, ge=100, le=599)
    body_contains: str | None = None
    """Text the body must contain (first MiB, case-sensitive)."""
    timeout_s: float = Field(10.0, gt=0, le=120)
    latency_warn_ms: float = Field(1000.0, gt=0)
    latency_crit_ms: float = Field(3000.0, gt=0)
    follow_redirects: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f'"{value}" is not an http(s) URL such as https://api.example.com/health'
            )
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> Endpoint:
        if self.latency_warn_ms > self.latency_crit_ms:
            raise ValueError("latency_warn_ms must not be above latency_crit_ms")
        return self


class HttpSettings(CheckSettings):
    endpoints: tuple[Endpoint, ...] = Field(min_length=1)
    cert_warn_days: int = Field(21, ge=0)
    """Warn when an https endpoint's certificate expires in fewer days than this."""
    cert_crit_days: int = Field(7, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> HttpSettings:
        names = [e.name for e in self.endpoints]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f'endpoint "{name}" is listed twice; give each a unique name')
        if self.cert_crit_days > self.cert_warn_days:
            raise ValueError("cert_crit_days must not be above cert_warn_days")
        return self


def default_owner(customer: Customer) -> Account:
    """The account that shows endpoints without ``account:``."""
    return next((a for a in customer.accounts if "http" in a.checks), customer.accounts[0])


class HttpCheck(Check):
    kind = "http"
    Settings = HttpSettings

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        """Trust store for https; None means the system's (tests pass their own CA)."""

    async def run(self, ctx: CheckContext) -> CheckResult:
        settings = cast(HttpSettings, ctx.settings)
        owner = default_owner(ctx.customer)
        mine = [
            e
            for e in settings.endpoints
            if e.account == ctx.account.id or (e.account is None and ctx.account.id == owner.id)
        ]
        known = {a.id for a in ctx.customer.accounts}
        strays = [e for e in settings.endpoints if e.account is not None and e.account not in known]
        if ctx.account.id != owner.id:
            strays = []
        if not mine and not strays:
            return CheckResult(
                Severity.SKIPPED,
                f"no endpoints for {ctx.account.id}; endpoints without account: "
                f"are checked under {owner.id}",
            )
        connector = aiohttp.TCPConnector(ssl=self.ssl_context or True, limit=PARALLEL)
        async with aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT}
        ) as session:
            findings = await asyncio.gather(*(self.probe(session, e, ctx, settings) for e in mine))
        findings.extend(_stray(e, ctx, known) for e in strays)
        findings.sort(key=lambda f: (-Severity(f["severity"]).rank, f["id"]))
        return CheckResult(
            Severity.worst([f["severity"] for f in findings]),
            _summary(findings),
            {
                "endpoints": len(findings),
                "resources": findings,
            },
        )

    async def probe(
        self,
        session: aiohttp.ClientSession,
        endpoint: Endpoint,
        ctx: CheckContext,
        settings: HttpSettings,
    ) -> dict[str, Any]:
        """Request one endpoint and judge the answer."""
        try:
            answer = await _fetch(session, endpoint, self.ssl_context)
        except TimeoutError:
            text = f"no answer within {endpoint.timeout_s:g} s"
            return _finding(ctx, endpoint, Severity.CRIT, "timeout", text)
        except aiohttp.ClientConnectorCertificateError as exc:
            reason = getattr(exc.certificate_error, "verify_message", None) or str(exc)
            text = f"TLS certificate not trusted: {reason}"
            return _finding(ctx, endpoint, Severity.CRIT, "cert", text)
        except aiohttp.ClientConnectorError as exc:
            text = f"unreachable: {exc.os_error.strerror or exc.os_error}"
            return _finding(ctx, endpoint, Severity.CRIT, "reachable", text)
        except aiohttp.ClientError as exc:
            text = f"request failed: {exc or type(exc).__name__}"
            return _finding(ctx, endpoint, Severity.CRIT, "reachable", text)
        problems = _judge(answer, endpoint, settings)
        severity = problems[0][0] if problems else Severity.OK
        aspect = problems[0][1] if problems else "health"
        latency = f"{answer.latency_ms:,.0f} ms"
        texts = [text for _, _, text in problems] or [f"status {answer.status}, {latency}"]
        if problems and all(a != "latency" for _, a, _ in problems):
            texts.append(latency)
        return _finding(
            ctx,
            endpoint,
            severity,
            aspect,
            " · ".join(texts),
            status=answer.status,
            latency_ms=round(answer.latency_ms, 1),
            cert_expires=answer.expires.isoformat() if answer.expires else None,
            cert_days_left=None if answer.days_left is None else int(answer.days_left),
        )


@dataclass(frozen=True)
class _Answer:
    status: int
    text: str
    latency_ms: float
    expires: datetime | None

    @property
    def days_left(self) -> float | None:
        if self.expires is None:
            return None
        return (self.expires - datetime.now(UTC)).total_seconds() / 86400


async def _fetch(
    session: aiohttp.ClientSession, endpoint: Endpoint, context: ssl.SSLContext | None
) -> _Answer:
    """GET the endpoint (timed), then, for https, read its certificate on a second handshake:
    aiohttp hands a small response's connection back to its pool before the caller sees it."""
    async with asyncio.timeout(endpoint.timeout_s):
        started = time.perf_counter()
        async with session.get(endpoint.url, allow_redirects=endpoint.follow_redirects) as response:
            body = await _read_capped(response)
            text = body.decode(response.charset or "utf-8", "replace")
            status = response.status
        latency_ms = (time.perf_counter() - started) * 1000
        expires = await _cert_expiry(endpoint.url, context)
    return _Answer(status, text, latency_ms, expires)


def _judge(
    answer: _Answer, endpoint: Endpoint, settings: HttpSettings
) -> list[tuple[Severity, str, str]]:
    """(severity, aspect, text) for each problem, worst first."""
    problems: list[tuple[Severity, str, str]] = []
    if answer.status != endpoint.expect_status:
        text = f"status {answer.status}, expected {endpoint.expect_status}"
        problems.append((Severity.CRIT, "status", text))
    if endpoint.body_contains is not None and endpoint.body_contains not in answer.text:
        problems.append(
            (Severity.CRIT, "body", f'body does not contain "{endpoint.body_contains}"')
        )
    ms = answer.latency_ms
    if ms >= endpoint.latency_crit_ms:
        text = f"{ms:,.0f} ms, crit ≥ {endpoint.latency_crit_ms:,.0f} ms"
        problems.append((Severity.CRIT, "latency", text))
    elif ms >= endpoint.latency_warn_ms:
        text = f"{ms:,.0f} ms, warn ≥ {endpoint.latency_warn_ms:,.0f} ms"
        problems.append((Severity.WARN, "latency", text))
    days = answer.days_left
    if days is not None and days < settings.cert_crit_days:
        problems.append((Severity.CRIT, "cert", _cert_text(days, "crit", settings)))
    elif days is not None and days < settings.cert_warn_days:
        problems.append((Severity.WARN, "cert", _cert_text(days, "warn", settings)))
    problems.sort(key=lambda p: -p[0].rank)
    return problems


def _finding(
    ctx: CheckContext,
    endpoint: Endpoint,
    severity: Severity,
    aspect: str,
    text: str,
    **extra: Any,
) -> dict[str, Any]:
    return resource(
        "http",
        ctx.account.account_id,
        REGION,
        endpoint.name,
        aspect,
        severity,
        f"{endpoint.name}: {text}",
        url=endpoint.url,
        **extra,
    )


def _stray(endpoint: Endpoint, ctx: CheckContext, known: set[str]) -> dict[str, Any]:
    return _finding(
        ctx,
        endpoint,
        Severity.ERROR,
        "config",
        f'names account "{endpoint.account}", which is not one of this customer\'s accounts '
        f"({', '.join(sorted(known))}); fix checks.http.endpoints",
    )


def _cert_text(days_left: float, level: str, settings: HttpSettings) -> str:
    limit = settings.cert_crit_days if level == "crit" else settings.cert_warn_days
    if days_left < 0:
        return f"TLS certificate expired {-days_left:.0f} days ago"
    return f"TLS certificate expires in {days_left:.0f} days, {level} < {limit} days"


async def _cert_expiry(url: str, context: ssl.SSLContext | None) -> datetime | None:
    """When the TLS certificate at ``url`` expires; None for http."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname is None:
        return None
    try:
        _, writer = await asyncio.open_connection(
            parts.hostname,
            parts.port or 443,
            ssl=context or ssl.create_default_context(),
            server_hostname=parts.hostname,
        )
    except OSError:  # the GET just succeeded on this host; report what it found, no cert days
        return None
    try:
        cert = writer.get_extra_info("peercert")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if not cert or "notAfter" not in cert:
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY:
            break
    return b"".join(chunks)[:MAX_BODY]


def _summary(findings: list[dict[str, Any]]) -> str:
    total = len(findings)
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in Severity}
    noun = "endpoint" if total == 1 else "endpoints"
    problems = [f for f in findings if f["severity"] != Severity.OK]
    if not problems:
        slowest = max(findings, key=lambda f: f.get("latency_ms") or 0)
        return f"{total} {noun} OK, slowest {slowest['id']} {slowest['latency_ms']:,.0f} ms"
    parts = [
        f"{counts[s]} {label}"
        for s, label in (
            (Severity.CRIT, "critical"),
            (Severity.ERROR, "not checked"),
            (Severity.WARN, "warning"),
        )
        if counts[s]
    ]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{', '.join(parts)} of {total} {noun} — {problems[0]['summary']}{more}"
