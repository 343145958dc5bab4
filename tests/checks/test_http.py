"""The http check against real local servers: plain http, and https with certificates made in
the test (a throwaway CA and a leaf for 127.0.0.1)."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from app.config import Customer
from app.engine.checking import CheckRunner
from app.engine.retry import RetryPolicy
from app.sandbox.moto import free_port
from checks.aws import AwsClients
from checks.base import CheckResult, Severity
from checks.http import HttpCheck, HttpSettings
from tests.checks.support import ARBEL, BILLING, account, customer

SLOW_S = 0.3


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="status: healthy")


async def _down(request: web.Request) -> web.Response:
    return web.Response(status=503, text="upstream unavailable")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", SLOW_S)))
    return web.Response(text="status: healthy")


async def _maintenance(request: web.Request) -> web.Response:
    return web.Response(text="down for maintenance")


def site() -> web.Application:
    app = web.Application()
    app.router.add_get("/health", _ok)
    app.router.add_get("/down", _down)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/maintenance", _maintenance)
    return app


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A plain-http site on loopback; yields its base URL."""
    runner = web.AppRunner(site(), shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    clients = AwsClients()
    yield clients
    clients.close()


def endpoint(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": url, **extra}


def shop(*endpoints: dict[str, Any], alias_checks: tuple[str, ...] = ("http",)) -> Customer:
    accounts = (
        account("arbel", ARBEL).model_copy(update={"checks": alias_checks}),
        account("billing", BILLING).model_copy(update={"checks": ("http",)}),
    )
    return customer(*accounts, checks={"http": {"endpoints": list(endpoints)}})


async def run_http(
    clients: AwsClients, who: Customer, alias: str = "arbel", check: HttpCheck | None = None
) -> CheckResult:
    """The executor's path for one target (settings from the customer, errors as results)."""
    runner = CheckRunner({"http": check or HttpCheck()}, clients, retry=RetryPolicy(max_tries=1))
    return await runner.run(who, alias, "http", run_id=1)


async def test_it_reports_a_healthy_endpoint_as_ok_with_its_latency(
    server: str, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server}/health", body_contains="healthy"))

    result = await run_http(clients, who)

    assert result.severity == Severity.OK
    assert result.summary.startswith("1 endpoint OK, slowest api ")
    (api,) = result.details["resources"]
    assert api["status"] == 200
    assert api["latency_ms"] > 0
    assert api["cert_days_left"] is None
    assert api["fingerprint"] == f"http:{ARBEL}:global:api:health"


async def test_it_is_critical_when_the_status_is_not_the_expected_one(
    server: str, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server}/health"), endpoint("shop", f"{server}/down"))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.summary.startswith("1 critical of 2 endpoints — shop: status 503, expected 200")
    assert [r["id"] for r in result.details["resources"]] == ["shop", "api"]


async def test_it_accepts_the_status_it_was_told_to_expect(
    server: str, clients: AwsClients
) -> None:
    who = shop(endpoint("legacy", f"{server}/down", expect_status=503))

    result = await run_http(clients, who)

    assert result.severity == Severity.OK


async def test_it_warns_when_an_endpoint_is_slower_than_its_threshold(
    server: str, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server}/slow", latency_warn_ms=100, latency_crit_ms=10_000))

    result = await run_http(clients, who)

    assert result.severity == Severity.WARN
    (api,) = result.details["resources"]
    assert api["latency_ms"] >= SLOW_S * 1000
    assert api["summary"].endswith("ms, warn ≥ 100 ms")


async def test_it_is_critical_when_the_body_lacks_the_expected_text(
    server: str, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server}/maintenance", body_contains="healthy"))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"].startswith(
        'api: body does not contain "healthy" · '
    )


async def test_it_is_critical_when_an_endpoint_does_not_answer_in_time(
    server: str, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server}/slow?s=5", timeout_s=0.2))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"] == "api: no answer within 0.2 s"


async def test_it_is_critical_when_nothing_listens(clients: AwsClients) -> None:
    who = shop(endpoint("api", f"http://127.0.0.1:{free_port()}/health"))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"].startswith("api: unreachable: ")


async def test_it_shows_each_endpoint_under_its_account_only(
    server: str, clients: AwsClients
) -> None:
    who = shop(
        endpoint("api", f"{server}/health"),
        endpoint("billing-portal", f"{server}/down", account="billing"),
        alias_checks=("backup",),  # arbel does not run http, so billing is the default owner
    )
    on_first = customer(
        *who.accounts[:1],
        account("charlie", "333333333333").model_copy(update={"checks": ("http",)}),
        checks={"http": {"endpoints": [endpoint("api", f"{server}/health")]}},
    )

    billing = await run_http(clients, who, "billing")
    arbel = await run_http(clients, who, "arbel")
    charlie = await run_http(clients, on_first, "charlie")

    assert [r["id"] for r in billing.details["resources"]] == ["billing-portal", "api"]
    assert arbel.severity == Severity.SKIPPED
    assert arbel.summary == (
        "no endpoints for arbel; endpoints without account: are checked under billing"
    )
    assert charlie.severity == Severity.OK


async def test_it_flags_an_endpoint_that_names_an_unknown_account(
    server: str, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server}/health", account="arbl"))

    result = await run_http(clients, who)

    assert result.severity == Severity.ERROR
    assert 'names account "arbl"' in result.details["resources"][0]["summary"]


def test_it_needs_endpoints_with_http_urls() -> None:
    with pytest.raises(ValidationError, match="endpoints"):
        HttpSettings.model_validate({})
    with pytest.raises(ValidationError, match="is not an http"):
        HttpSettings.model_validate({"endpoints": [{"name": "a", "url": "ftp://x/"}]})
    with pytest.raises(ValidationError, match="listed twice"):
        HttpSettings.model_validate(
            {"endpoints": [{"name": "a", "url": "http://x/"}, {"name": "a", "url": "http://y/"}]}
        )
    defaults = HttpSettings.model_validate({"endpoints": [{"name": "a", "url": "http://x/"}]})
    assert (defaults.cert_warn_days, defaults.cert_crit_days) == (21, 7)
    assert defaults.endpoints[0].expect_status == 200
    assert defaults.endpoints[0].timeout_s == 10


# -- TLS --------------------------------------------------------------------------------------


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_certs(directory: Path, days_left: float) -> tuple[Path, Path, Path]:
    """A CA, and a leaf for 127.0.0.1 it signed that expires in ``days_left`` days."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days_left))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
async def tls_site(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[str, Path]]:
    """An https site whose certificate expires in ``request.param`` days; (URL, CA file)."""
    ca, cert, key = make_certs(tmp_path, float(request.param))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(site(), shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    yield f"https://127.0.0.1:{port}", ca
    await runner.cleanup()


@pytest.mark.parametrize(
    ("tls_site", "days", "severity", "text"),
    [
        (90, 90, Severity.OK, None),
        (15, 15, Severity.WARN, "TLS certificate expires in 15 days, warn < 21 days"),
        (3, 3, Severity.CRIT, "TLS certificate expires in 3 days, crit < 7 days"),
    ],
    indirect=["tls_site"],
)
async def test_it_reads_how_many_days_the_tls_certificate_has_left(
    tls_site: tuple[str, Path],
    clients: AwsClients,
    days: int,
    severity: Severity,
    text: str | None,
) -> None:
    url, ca = tls_site
    check = HttpCheck(ssl.create_default_context(cafile=str(ca)))
    who = shop(endpoint("api", f"{url}/health"))

    result = await run_http(clients, who, check=check)

    (api,) = result.details["resources"]
    assert result.severity == severity
    assert api["status"] == 200
    assert api["cert_days_left"] in (days - 1, days)  # a few seconds have passed
    if text is not None:
        assert text in api["summary"]


@pytest.mark.parametrize("tls_site", [90], indirect=True)
async def test_it_is_critical_when_the_certificate_is_not_trusted(
    tls_site: tuple[str, Path], clients: AwsClients
) -> None:
    url, _ = tls_site
    who = shop(endpoint("api", f"{url}/health"))

    result = await run_http(clients, who)  # the system trust store does not know the test CA

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"].startswith(
        "api: TLS certificate not trusted: "
    )
