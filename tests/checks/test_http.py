"""The http check against real local servers: plain http, and https with certificates made in
the test (a throwaway CA and a leaf for 127.0.0.1). The servers are on loopback, so the
endpoints here say ``allow_private: true`` unless a test is about what the hub refuses."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
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
from app.loader import check_config
from app.sandbox.moto import free_port
from checks.aws import AwsClients
from checks.base import CheckResult, Severity
from checks.http import HttpCheck, HttpSettings
from tests.checks.support import ARBEL, BILLING, account, customer

SLOW_S = 0.3
SECRET = "Bearer s3cret-token"
HITS = web.AppKey("hits", list[str])


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="status: healthy")


async def _down(request: web.Request) -> web.Response:
    return web.Response(status=503, text="upstream unavailable")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", SLOW_S)))
    return web.Response(text="status: healthy")


async def _maintenance(request: web.Request) -> web.Response:
    return web.Response(text="down for maintenance")


async def _bogus_charset(request: web.Request) -> web.Response:
    return web.Response(
        body=b"status: healthy", headers={"Content-Type": "text/plain; charset=no-such-charset"}
    )


async def _moved(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query.get("to", "/health"))


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _private(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != SECRET:
        return web.Response(status=401, text="who are you?")
    return web.Response(text="status: healthy")


@web.middleware
async def _record(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request.app[HITS].append(request.path_qs)
    return await handler(request)


def site() -> web.Application:
    app = web.Application(middlewares=[_record])
    app[HITS] = []
    app.router.add_get("/health", _ok)
    app.router.add_get("/down", _down)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/maintenance", _maintenance)
    app.router.add_get("/charset", _bogus_charset)
    app.router.add_get("/moved", _moved)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/private", _private)
    return app


@dataclass(frozen=True)
class Site:
    url: str
    """The base URL, http://127.0.0.1:port."""
    hits: list[str]
    """Every path (and query) requested from it, in order."""


async def serve() -> AsyncIterator[Site]:
    app = site()
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield Site(f"http://127.0.0.1:{port}", app[HITS])
    await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Site]:
    """The monitored site: plain http on loopback."""
    async for running in serve():
        yield running


@pytest.fixture
async def internal() -> AsyncIterator[Site]:
    """Another server on loopback, standing for something in the hub's own network."""
    async for running in serve():
        yield running


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    clients = AwsClients()
    yield clients
    clients.close()


def endpoint(name: str, url: str, **extra: Any) -> dict[str, Any]:
    """An endpoint that may be on loopback (the test servers are), unless ``extra`` says not."""
    return {"name": name, "url": url, "allow_private": True, **extra}


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
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server.url}/health", body_contains="healthy"))

    result = await run_http(clients, who)

    assert result.severity == Severity.OK
    assert result.summary.startswith("1 endpoint OK, slowest api ")
    (api,) = result.details["resources"]
    assert api["status"] == 200
    assert api["latency_ms"] > 0
    assert api["cert_days_left"] is None
    assert api["fingerprint"] == f"http:{ARBEL}:global:api:health"


async def test_it_is_critical_when_the_status_is_not_the_expected_one(
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server.url}/health"), endpoint("shop", f"{server.url}/down"))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.summary.startswith("1 critical of 2 endpoints — shop: status 503, expected 200")
    assert [r["id"] for r in result.details["resources"]] == ["shop", "api"]


async def test_it_accepts_the_status_it_was_told_to_expect(
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("legacy", f"{server.url}/down", expect_status=503))

    result = await run_http(clients, who)

    assert result.severity == Severity.OK


async def test_it_warns_when_an_endpoint_is_slower_than_its_threshold(
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server.url}/slow", latency_warn_ms=100, latency_crit_ms=10_000))

    result = await run_http(clients, who)

    assert result.severity == Severity.WARN
    (api,) = result.details["resources"]
    assert api["latency_ms"] >= SLOW_S * 1000
    assert api["summary"].endswith("ms, warn ≥ 100 ms")


async def test_it_is_critical_when_the_body_lacks_the_expected_text(
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server.url}/maintenance", body_contains="healthy"))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"].startswith(
        'api: body does not contain "healthy" · '
    )


async def test_it_is_critical_when_an_endpoint_does_not_answer_in_time(
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server.url}/slow?s=5", timeout_s=0.2))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"] == "api: no answer within 0.2 s"


async def test_it_is_critical_when_nothing_listens(clients: AwsClients) -> None:
    who = shop(endpoint("api", f"http://127.0.0.1:{free_port()}/health"))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"] == (
        "api: unreachable: could not connect (connection refused)"
    )


async def test_it_shows_each_endpoint_under_its_account_only(
    server: Site, clients: AwsClients
) -> None:
    who = shop(
        endpoint("api", f"{server.url}/health"),
        endpoint("billing-portal", f"{server.url}/down", account="billing"),
        alias_checks=("backup",),  # arbel does not run http, so billing is the default owner
    )
    on_first = customer(
        *who.accounts[:1],
        account("charlie", "333333333333").model_copy(update={"checks": ("http",)}),
        checks={"http": {"endpoints": [endpoint("api", f"{server.url}/health")]}},
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
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server.url}/health", account="arbl"))

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


# -- what the hub requests, and what a result keeps -------------------------------------------


async def test_it_follows_a_redirect_that_stays_on_the_configured_host(
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server.url}/moved", body_contains="healthy"))

    result = await run_http(clients, who)

    assert result.severity == Severity.OK
    assert result.details["resources"][0]["status"] == 200
    assert server.hits == ["/moved", "/health"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_it_does_not_follow_a_redirect_away_from_the_configured_host(
    server: Site, internal: Site, clients: AwsClients, host: str
) -> None:
    target = internal.url.replace("127.0.0.1", host) + "/admin/reset"
    who = shop(endpoint("api", f"{server.url}/moved?to={target}?token=abc"))

    result = await run_http(clients, who)

    (api,) = result.details["resources"]
    here = server.url.removeprefix("http://")
    assert result.severity == Severity.ERROR
    assert api["summary"] == (
        f"api: redirects away from {here}, to {target}; not followed (the hub requests only "
        "the configured host): point url at the final URL"
    )
    assert api["status"] == 302
    assert internal.hits == []


async def test_it_shows_where_a_redirect_goes_when_told_not_to_follow_it(
    server: Site, clients: AwsClients
) -> None:
    who = shop(endpoint("api", f"{server.url}/moved", follow_redirects=False))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"].startswith(
        f"api: status 302, expected 200 (redirects to {server.url}/health) · "
    )
    assert server.hits == ["/moved"]


async def test_it_stops_after_five_redirects(server: Site, clients: AwsClients) -> None:
    who = shop(endpoint("api", f"{server.url}/loop"))

    result = await run_http(clients, who)

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"] == (
        f"api: more than 5 redirects (the last to {server.url}/loop)"
    )
    assert server.hits == ["/loop"] * 6


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "localhost resolves to a loopback address"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 is a loopback address"),
        ("[64:ff9b::a00:1]", "64:ff9b::a00:1 is a private address"),
        ("[2002:a9fe:a9fe::]", "2002:a9fe:a9fe:: is a link-local address"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address"),
        ("100.64.0.1", "100.64.0.1 is a non-public address"),
    ],
)
async def test_it_refuses_addresses_outside_the_internet_unless_the_endpoint_allows_them(
    internal: Site, clients: AwsClients, host: str, says: str
) -> None:
    port = internal.url.rpartition(":")[2]
    who = shop(endpoint("api", f"http://{host}:{port}/admin", allow_private=False))

    result = await run_http(clients, who)

    (api,) = result.details["resources"]
    assert result.severity == Severity.ERROR
    assert api["summary"] == (
        f"api: {says}, which the hub does not request; set allow_private: true on this "
        "endpoint if it is meant to be internal"
    )
    assert api["fingerprint"] == f"http:{ARBEL}:global:api:address"
    assert internal.hits == []


async def test_it_names_the_configured_host_not_an_address_when_it_cannot_connect(
    clients: AwsClients,
) -> None:
    who = shop(endpoint("api", f"http://localhost:{free_port()}/health"))

    result = await run_http(clients, who)

    (api,) = result.details["resources"]
    assert result.severity == Severity.CRIT
    assert api["summary"] == "api: unreachable: could not connect (connection refused)"


async def test_it_reads_a_body_in_an_unknown_charset_and_still_reports_a_down_endpoint(
    server: Site, clients: AwsClients
) -> None:
    who = shop(
        endpoint("odd", f"{server.url}/charset", body_contains="healthy"),
        endpoint("gone", f"http://127.0.0.1:{free_port()}/health"),
    )

    result = await run_http(clients, who)

    gone, odd = result.details["resources"]
    assert result.severity == Severity.CRIT
    assert result.summary.startswith("1 critical of 2 endpoints — gone: unreachable: ")
    assert (gone["id"], gone["severity"]) == ("gone", "crit")
    assert (odd["id"], odd["severity"], odd["status"]) == ("odd", "ok", 200)


async def test_it_sends_a_header_from_the_environment_and_keeps_its_value_out_of_the_result(
    server: Site, clients: AwsClients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    check = HttpCheck(environ={"ACME_HEALTH_AUTH": SECRET})
    who = shop(
        endpoint("api", f"{server.url}/private", headers_env={"Authorization": "ACME_HEALTH_AUTH"})
    )

    result = await run_http(clients, who, check=check)

    assert result.severity == Severity.OK
    stored = json.dumps([result.summary, result.details])
    assert "s3cret" not in stored
    assert "s3cret" not in caplog.text


async def test_it_does_not_check_an_endpoint_whose_header_variable_is_unset(
    server: Site, clients: AwsClients
) -> None:
    who = shop(
        endpoint("api", f"{server.url}/private", headers_env={"Authorization": "ACME_HEALTH_AUTH"}),
        endpoint("shop", f"{server.url}/health"),
    )

    result = await run_http(clients, who, check=HttpCheck(environ={}))

    api, shop_ = result.details["resources"]
    assert result.severity == Severity.ERROR
    assert api["summary"] == (
        "api: environment variable ACME_HEALTH_AUTH (the Authorization header) is not set in "
        "the hub's environment; set it where the hub runs"
    )
    assert shop_["severity"] == Severity.OK
    assert server.hits == ["/health"]


def test_it_refuses_credentials_in_an_endpoint_url(tmp_path: Path) -> None:
    customers = tmp_path / "customers"
    customers.mkdir()
    (customers / "acme.yaml").write_text(
        textwrap.dedent(
            """\
            id: acme
            name: Acme
            slack: {channel: C0123456789}
            accounts:
              - id: acme-prod
                name: Acme Production
                account_id: "123456789012"
                regions: [eu-west-1]
                checks: [http]
            checks:
              http:
                endpoints:
                  - name: api
                    url: https://ops:hunter2@api.example.com/health
            """
        )
    )

    _, found = check_config(tmp_path)

    assert [f"{p.path.name}:{p.line}: {p.message}" for p in found] == [
        'acme.yaml:14: checks.http.endpoints[0].url: "https://api.example.com/health" has '
        "user:password@ in it, which would be copied into every result; remove it and send the "
        "credentials in a header read from the environment "
        "(headers_env: {Authorization: NAME_OF_VARIABLE})"
    ]
    with pytest.raises(ValidationError) as caught:
        HttpSettings.model_validate(
            {"endpoints": [{"name": "a", "url": "https://ops:hunter2@api.example.com/health"}]}
        )
    assert "hunter2" not in str(caught.value)


def test_it_wants_header_names_and_variable_names_in_headers_env() -> None:
    def settings(headers_env: dict[str, str]) -> HttpSettings:
        return HttpSettings.model_validate(
            {"endpoints": [{"name": "a", "url": "https://x/", "headers_env": headers_env}]}
        )

    with pytest.raises(ValidationError, match='"Host" is not a header name the check can send'):
        settings({"Host": "HOST_NAME"})
    with pytest.raises(ValidationError, match="not the value itself") as caught:
        settings({"Authorization": "Bearer s3cret-token"})
    assert "s3cret" not in str(caught.value)
    assert settings({"X-Api-Key": "ACME_KEY"}).endpoints[0].headers_env == {"X-Api-Key": "ACME_KEY"}
