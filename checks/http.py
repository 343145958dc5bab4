"""HTTP: the customer's endpoints answer, in time, with the expected status and body, and their
TLS certificates are not about to expire.

Endpoints are configured once per customer (``checks.http.endpoints``) but a result is per
account × check, so each endpoint belongs to one account: the one it names with ``account:``,
or else the customer's first account that runs ``http`` (the first account if none does). An
account with no endpoints gets a ``skipped`` result. An unreachable endpoint, a timeout or an
untrusted certificate is a finding (``crit``), not an ``error``: the check did look, and what it
found is that the endpoint is down. Whatever goes wrong with one endpoint is that endpoint's
finding; it never hides the others.

Whoever runs a monitored site controls what it answers, so the hub requests only what the
configuration names:

- only public addresses, unless the endpoint says ``allow_private: true``, vetted where they
  are resolved and connected to as vetted (:mod:`checks.addresses`);
- redirects are followed hop by hop, at most :data:`MAX_REDIRECTS`, only while they stay on the
  configured host and port (or move from http to https on the default port); a redirect
  anywhere else is reported on the endpoint's line and never requested;
- results name the configured host, never a resolved address; they never hold credentials:
  ``user:password@`` in a URL is refused by the settings, and ``headers_env`` values are read
  from the environment at check time and kept out of results and logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
from pydantic import ConfigDict, Field, field_validator, model_validator
from yarl import URL

from app.config import Account, Customer
from checks.addresses import Refused, Vetted, is_ip, same_site
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity, resource

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
"""Bytes of a response body read for ``body_contains``; the rest is not downloaded."""
MAX_REDIRECTS = 5
"""Redirects followed on the configured host before the endpoint is reported as looping."""
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PARALLEL = 8
"""Endpoints of one account requested at once."""
USER_AGENT = "monitoring-hub/0.1 (http check)"
REGION = "global"

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONNECT_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
}


class Endpoint(CheckSettings):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

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
    """Follow redirects that stay on the URL's host; a redirect elsewhere is reported."""
    allow_private: bool = False
    """Request loopback, private, link-local and other non-public addresses (internal sites)."""
    headers_env: dict[str, str] = Field(default_factory=dict)
    """Header name → the environment variable holding its value, read at check time."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f'"{_shown(value)}" is not an http(s) URL such as https://api.example.com/health'
            )
        if "@" in parts.netloc:
            raise ValueError(
                f'"{_shown(value)}" has user:password@ in it, which would be copied into every '
                "result; remove it and send the credentials in a header read from the "
                "environment (headers_env: {Authorization: NAME_OF_VARIABLE})"
            )
        _ = parts.port  # an invalid port raises ValueError, which says what is wrong
        return value

    @field_validator("headers_env")
    @classmethod
    def _headers_env(cls, value: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for header, variable in value.items():
            if not _HEADER_NAME.fullmatch(header) or header.lower() in ("host", *seen):
                raise ValueError(
                    f'"{header}" is not a header name the check can send (Host is not, '
                    "nor one listed twice); write a name such as Authorization"
                )
            if not _ENV_NAME.fullmatch(variable):  # the value itself may be a secret: not shown
                raise ValueError(
                    f"{header}: give the name of an environment variable that holds the value "
                    "(such as ACME_HEALTH_AUTH), not the value itself"
                )
            seen.add(header.lower())
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> Endpoint:
        if self.latency_warn_ms > self.latency_crit_ms:
            raise ValueError("latency_warn_ms must not be above latency_crit_ms")
        return self


class HttpSettings(CheckSettings):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

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


def console_url(region: str, resource_id: str, line: Mapping[str, Any]) -> None:
    """Endpoints are not AWS resources: nothing to open in the AWS console."""
    return None


def default_owner(customer: Customer) -> Account:
    """The account that shows endpoints without ``account:``."""
    return next((a for a in customer.accounts if "http" in a.checks), customer.accounts[0])


class HttpCheck(Check):
    kind = "http"
    Settings = HttpSettings
    actions = ()  # it asks the customer's endpoints, not AWS

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, environ: Mapping[str, str] = os.environ
    ) -> None:
        self.ssl_context = ssl_context
        """Trust store for https; None means the system's (tests pass their own CA)."""
        self.environ = environ
        """Where ``headers_env`` values are read, at check time (tests pass their own)."""

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
        parallel = asyncio.Semaphore(PARALLEL)
        findings = list(
            await asyncio.gather(*(self._probe_alone(parallel, e, ctx, settings) for e in mine))
        )
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

    async def _probe_alone(
        self,
        parallel: asyncio.Semaphore,
        endpoint: Endpoint,
        ctx: CheckContext,
        settings: HttpSettings,
    ) -> dict[str, Any]:
        """:meth:`probe`, and a bug in it is this endpoint's ``error``, not the account's."""
        async with parallel:
            try:
                return await self.probe(endpoint, ctx, settings)
            except Exception:
                log.exception("http: endpoint %s of %s crashed", endpoint.name, ctx.customer.id)
                text = "the check crashed on this endpoint (the hub's log has the details)"
                return _finding(ctx, endpoint, Severity.ERROR, "crash", text)

    async def probe(
        self, endpoint: Endpoint, ctx: CheckContext, settings: HttpSettings
    ) -> dict[str, Any]:
        """Request one endpoint and judge the answer."""
        try:
            headers = _headers(endpoint, self.environ)
        except _Unset as exc:
            return _finding(ctx, endpoint, Severity.ERROR, "config", str(exc))
        try:
            answer = await self._fetch(endpoint, headers)
        except (OSError, aiohttp.ClientError) as exc:  # TimeoutError and Refused are OSErrors
            severity, aspect, text = _failure(exc, endpoint)
            return _finding(ctx, endpoint, severity, aspect, text)
        if answer.stopped is not None:
            severity, aspect, text = _stopped(answer, endpoint)
            return _finding(ctx, endpoint, severity, aspect, text, status=answer.status)
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

    async def _fetch(self, endpoint: Endpoint, headers: dict[str, str]) -> _Answer:
        """GET the endpoint (timed), hop by hop through the redirects it may follow; then, for
        https, read the certificate on a second handshake to the same vetted address (aiohttp
        hands a small response's connection back to its pool before the caller sees it)."""
        vetted = Vetted(endpoint.allow_private)
        connector = aiohttp.TCPConnector(ssl=self.ssl_context or True, resolver=vetted)
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector, headers={"User-Agent": USER_AGENT}
                ) as session,
                asyncio.timeout(endpoint.timeout_s),
            ):
                started = time.perf_counter()
                url, stopped = endpoint.url, None
                for hops in itertools.count():
                    status, location, text = await _get(session, vetted, url, headers)
                    if location is None or not _follows(endpoint, status):
                        break
                    if not same_site(url, location):
                        stopped = "elsewhere"
                        break
                    if hops == MAX_REDIRECTS:
                        stopped = "too many"
                        break
                    url = location
                latency_ms = (time.perf_counter() - started) * 1000
                expires = await _cert_expiry(url, vetted, self.ssl_context)
        finally:
            await vetted.close()
        return _Answer(status, text, latency_ms, expires, location, stopped)


@dataclass(frozen=True)
class _Answer:
    status: int
    text: str
    latency_ms: float
    expires: datetime | None
    location: str | None
    """Where a redirect answer points (absolute); None for any other answer."""
    stopped: str | None = None
    """Why a redirect was not followed: "elsewhere" or "too many"; None when it was not one."""

    @property
    def days_left(self) -> float | None:
        if self.expires is None:
            return None
        return (self.expires - datetime.now(UTC)).total_seconds() / 86400


class _Unset(Exception):
    """A ``headers_env`` variable is not set (or not usable) in the hub's environment."""


async def _get(
    session: aiohttp.ClientSession, vetted: Vetted, url: str, headers: dict[str, str]
) -> tuple[int, str | None, str]:
    """One GET, redirects not followed: (status, absolute redirect target or None, body text)."""
    parts = URL(url)
    host = parts.raw_host or ""
    if is_ip(host):  # aiohttp does not resolve an IP literal, so it is vetted here
        vetted.vet(urlsplit(url).hostname or host, host, resolved=False)
    async with session.get(url, allow_redirects=False, headers=headers) as response:
        body = await _read_capped(response)
        location = response.headers.get("Location")
        if response.status not in REDIRECT_STATUSES or not location:
            location = None
        return response.status, location and urljoin(url, location), _decode(body, response)


def _follows(endpoint: Endpoint, status: int) -> bool:
    """Whether a redirect answer is followed: it is judged as is when it is what was expected."""
    return endpoint.follow_redirects and status != endpoint.expect_status


def _headers(endpoint: Endpoint, environ: Mapping[str, str]) -> dict[str, str]:
    """The endpoint's ``headers_env`` headers, their values read from ``environ`` now."""
    headers: dict[str, str] = {}
    for header, variable in endpoint.headers_env.items():
        value = environ.get(variable, "")
        if not value or "\n" in value or "\r" in value:
            problem = "is not set" if not value else "holds a line break"
            raise _Unset(
                f"environment variable {variable} (the {header} header) {problem} in the "
                "hub's environment; set it where the hub runs"
            )
        headers[header] = value
    return headers


def _decode(body: bytes, response: aiohttp.ClientResponse) -> str:
    """The body as text; a charset Python does not know is read as UTF-8, undecodable bytes
    replaced (``body_contains`` is still answered)."""
    try:
        return body.decode(response.charset or "utf-8", "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def _failure(exc: Exception, endpoint: Endpoint) -> tuple[Severity, str, str]:
    """(severity, aspect, text) for a request that got no answer. The text names the configured
    host, never an address it resolved to."""
    host = urlsplit(endpoint.url).hostname
    cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(cause, Refused):
        return Severity.ERROR, "address", str(cause)
    if isinstance(exc, TimeoutError):
        return Severity.CRIT, "timeout", f"no answer within {endpoint.timeout_s:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or "verification failed"
        return Severity.CRIT, "cert", f"TLS certificate not trusted: {reason}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = exc.os_error.strerror or "no such host"
        return Severity.CRIT, "reachable", f"unreachable: could not resolve {host} ({reason})"
    if isinstance(exc, aiohttp.ClientSSLError):
        reason = getattr(cause, "reason", None) or "handshake failed"
        return Severity.CRIT, "reachable", f"unreachable: TLS with {host} failed ({reason})"
    if isinstance(exc, aiohttp.ClientResponseError):
        return Severity.CRIT, "reachable", f"request failed: invalid response ({exc.message})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Severity.CRIT, "reachable", "request failed: the server closed the connection"
    if isinstance(cause, OSError):
        return Severity.CRIT, "reachable", f"unreachable: could not connect ({_reason(cause)})"
    return Severity.CRIT, "reachable", f"request failed ({type(exc).__name__})"


def _reason(error: OSError) -> str:
    """Why a connection failed, in words that carry no address."""
    if error.errno in _CONNECT_ERRORS:
        return _CONNECT_ERRORS[error.errno]
    return os.strerror(error.errno).lower() if error.errno else "connection failed"


def _stopped(answer: _Answer, endpoint: Endpoint) -> tuple[Severity, str, str]:
    """(severity, aspect, text) for a redirect that was not followed."""
    target = _shown(answer.location or "")
    if answer.stopped == "too many":
        text = f"more than {MAX_REDIRECTS} redirects (the last to {target})"
        return Severity.CRIT, "redirect", text
    here = urlsplit(endpoint.url).netloc
    text = (
        f"redirects away from {here}, to {target}; not followed (the hub requests only the "
        "configured host): point url at the final URL"
    )
    return Severity.ERROR, "redirect", text


def _shown(url: str) -> str:
    """``url`` as a message may show it: without user:password@, query or fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _judge(
    answer: _Answer, endpoint: Endpoint, settings: HttpSettings
) -> list[tuple[Severity, str, str]]:
    """(severity, aspect, text) for each problem, worst first."""
    problems: list[tuple[Severity, str, str]] = []
    if answer.status != endpoint.expect_status:
        text = f"status {answer.status}, expected {endpoint.expect_status}"
        if answer.location is not None:
            text += f" (redirects to {_shown(answer.location)})"
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
        url=endpoint.url,  # the settings refuse user:password@ in it
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


async def _cert_expiry(url: str, vetted: Vetted, context: ssl.SSLContext | None) -> datetime | None:
    """When the TLS certificate at ``url`` expires, read from the address the GET went to;
    None for http."""
    parts = URL(url)
    if parts.scheme != "https" or not parts.raw_host or parts.port is None:
        return None
    address = vetted.address(parts.raw_host, parts.port)
    if address is None:
        return None
    try:
        _, writer = await asyncio.open_connection(
            address,
            parts.port,
            ssl=context or ssl.create_default_context(),
            server_hostname=parts.raw_host,
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
