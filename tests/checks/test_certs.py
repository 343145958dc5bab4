"""The certs check over HTTP to moto (which imports and issues ACM certificates), through the edge
(which answers what moto cannot: pages, failed renewals, faults), in accounts reached by
AssumeRole. Certificates are imported with the expiry each test needs; the check's notion of now
is the context's, so one certificate can be looked at on two days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.config import Customer
from app.engine.checking import CheckRunner
from app.engine.retry import RetryPolicy
from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session
from app.sandbox.seed_certs import description, import_certificate, pages, summary
from checks.aws import AwsClients
from checks.base import CheckContext, CheckResult, Severity
from checks.certs import (
    CRIT_DAYS,
    WARN_DAYS,
    CertsCheck,
    CertsSettings,
    assess,
    console_url,
)
from checks.http import HttpSettings
from checks.registry import REGISTRY
from tests.checks.support import (
    ARBEL,
    BILLING,
    account,
    customer,
    grant,
    hub_principal,
    iam_enforced,
    role_arn,
    run_check,
)

REGION = "eu-west-1"
JAKARTA = "Asia/Jakarta"
TZ = ZoneInfo(JAKARTA)


@pytest.fixture
def moto(edge: Edge) -> str:
    """The moto server behind the edge (certificates are imported straight into it)."""
    return edge.upstream


def imported(
    moto: str, domain: str, left: timedelta, account_id: str = ARBEL, region: str = REGION
) -> str:
    """Import a certificate for ``domain`` expiring ``left`` from now (and an hour: whole days
    read as they were written)."""
    return import_certificate(moto, account_id, region, domain, _now() + left + timedelta(hours=1))


def _now() -> datetime:
    return datetime.now(UTC)


def only(who: Customer) -> Customer:
    """``who`` with the certs check looking only at the accounts' own regions."""
    return who.model_copy(update={"checks": {"certs": {"cloudfront_region": False}}})


async def look(clients: AwsClients, who: Customer, alias: str, now: datetime) -> CheckResult:
    """The check at a chosen now, with the customer's settings (as the executor builds them)."""
    found = who.account(alias)
    assert found is not None
    ctx = CheckContext(
        customer=who,
        account=found,
        window=timedelta(hours=24),
        settings=CertsSettings.model_validate(who.checks.get("certs") or {}),
        aws=clients,
        now=now,
    )
    return await CertsCheck().run(ctx)


def wib(moment: datetime) -> str:
    return f"{moment.astimezone(TZ):%d %b %Y %H:%M %Z}"


# -- severities and what a person reads ---------------------------------------------------------


async def test_it_is_critical_for_an_imported_certificate_in_its_last_days_with_its_local_date(
    edge: Edge, moto: str, clients: AwsClients
) -> None:
    ends = _now() + timedelta(days=5, hours=3)
    import_certificate(moto, ARBEL, REGION, "api.shop.example", ends)
    who = only(customer(account("arbel", ARBEL), timezone=JAKARTA))

    result = await run_check(clients, who, "arbel", "certs")

    assert result.severity == Severity.CRIT
    line = result.details["resources"][0]
    assert line["summary"] == (
        f"api.shop.example: expires in 5 d (crit < 7 d) on {wib(ends)}, "
        "imported: renew it yourself, not in use"
    )
    assert result.summary == f"1 critical of 1 certificate — {line['summary']}"
    assert line["days_left"] == 5
    assert line["type"] == "IMPORTED"
    assert line["id"] == f"api.shop.example ({line['certificate_id'][:8]})"
    assert line["fingerprint"] == f"certs:{ARBEL}:{REGION}:{line['id']}:certificate"
    assert result.details["certificates"] == 1
    assert result.details["imported"] == 1


async def test_the_same_certificate_turns_from_warning_to_critical_as_its_expiry_nears(
    edge: Edge, moto: str, clients: AwsClients
) -> None:
    today = _now()
    ends = today + timedelta(days=10, hours=1)
    import_certificate(moto, ARBEL, REGION, "shop.example", ends)
    who = only(customer(account("arbel", ARBEL)))

    before = await look(clients, who, "arbel", today)
    after = await look(clients, who, "arbel", today + timedelta(days=4))

    assert before.severity == Severity.WARN
    assert before.details["resources"][0]["summary"].startswith(
        "shop.example: expires in 10 d (warn < 21 d) on "
    )
    assert after.severity == Severity.CRIT
    assert after.details["resources"][0]["summary"].startswith(
        "shop.example: expires in 6 d (crit < 7 d) on "
    )
    assert (
        before.details["resources"][0]["fingerprint"]
        == after.details["resources"][0]["fingerprint"]
    )


async def test_it_is_critical_when_a_certificate_has_expired(
    edge: Edge, moto: str, clients: AwsClients
) -> None:
    ends = _now() + timedelta(hours=1)
    import_certificate(moto, ARBEL, REGION, "old.shop.example", ends)
    who = only(customer(account("arbel", ARBEL)))

    result = await look(clients, who, "arbel", ends + timedelta(days=2, hours=3))

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"] == (
        f"old.shop.example: expired 2 d ago on {ends:%d %b %Y %H:%M} UTC, "
        "imported: renew it yourself, not in use"
    )


async def test_it_is_ok_and_names_the_certificate_that_expires_next(
    edge: Edge, moto: str, clients: AwsClients
) -> None:
    far = _now() + timedelta(days=300, hours=1)
    near = _now() + timedelta(days=100, hours=1)
    import_certificate(moto, ARBEL, REGION, "far.shop.example", far)
    import_certificate(moto, ARBEL, REGION, "near.shop.example", near)
    who = only(customer(account("arbel", ARBEL), timezone=JAKARTA))

    result = await run_check(clients, who, "arbel", "certs")

    assert result.severity == Severity.OK
    assert result.summary == (
        f"2 certificates OK, the next to expire near.shop.example in 100 d on "
        f"{near.astimezone(TZ):%d %b %Y}"
    )
    assert [r["domain"] for r in result.details["resources"]] == [
        "near.shop.example",
        "far.shop.example",
    ]


async def test_it_is_ok_with_no_certificates_and_says_where_it_looked(
    edge: Edge, clients: AwsClients
) -> None:
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "certs")

    assert result.severity == Severity.OK
    assert result.summary == "no certificates in eu-west-1, us-east-1"
    assert result.details["certificates"] == 0
    assert result.details["resources"] == []


async def test_it_warns_when_a_requested_certificate_is_stuck_in_pending_validation(
    edge: Edge, moto: str, clients: AwsClients
) -> None:
    acm = seed_session(moto, ARBEL, REGION).client("acm", endpoint_url=moto)
    acm.request_certificate(DomainName="new.shop.example", ValidationMethod="DNS")
    who = only(customer(account("arbel", ARBEL)))

    fresh = await look(clients, who, "arbel", _now())
    stuck = await look(clients, who, "arbel", _now() + timedelta(hours=30))

    assert fresh.severity == Severity.OK
    assert fresh.details["resources"][0]["summary"].startswith(
        "new.shop.example: pending validation for "
    )
    assert fresh.details["resources"][0]["days_left"] is None
    assert stuck.severity == Severity.WARN
    assert stuck.details["resources"][0]["summary"] == (
        "new.shop.example: pending validation for 30 h (warn ≥ 24 h): add the DNS record ACM "
        "shows for it; ACM gives up after 72 h"
    )


async def test_it_warns_when_acm_could_not_renew_a_certificate_it_issued(
    edge: Edge, clients: AwsClients
) -> None:
    soon = summary(ARBEL, REGION, "staging.shop.example", _now() + timedelta(days=40, hours=1))
    later = summary(ARBEL, REGION, "www.shop.example", _now() + timedelta(days=200))
    edge.answer("acm", "ListCertificates", pages([later, soon]), account_id=ARBEL, region=REGION)
    edge.answer(
        "acm",
        "DescribeCertificate",
        [{"json": description(soon, "FAILED", "CAA_ERROR")}],
        account_id=ARBEL,
        region=REGION,
    )
    who = only(customer(account("arbel", ARBEL)))

    result = await run_check(clients, who, "arbel", "certs")

    assert result.severity == Severity.WARN
    line = result.details["resources"][0]
    assert line["summary"].startswith("staging.shop.example: expires in 40 d on ")
    assert line["summary"].endswith(
        ", renewal failed (CAA_ERROR): fix the cause and request a new certificate"
    )
    assert line["renewal_status"] == "FAILED"
    assert result.details["resources"][1]["severity"] == Severity.OK
    # only the certificate in its renewal window is described; the other needs no call
    assert edge.calls("acm:DescribeCertificate", account=ARBEL) == 1


async def test_it_says_when_an_acm_issued_certificate_not_in_use_will_not_be_renewed(
    edge: Edge, clients: AwsClients
) -> None:
    idle = summary(ARBEL, REGION, "idle.shop.example", _now() + timedelta(days=15), in_use=False)
    edge.answer("acm", "ListCertificates", pages([idle]), account_id=ARBEL, region=REGION)
    edge.answer(
        "acm", "DescribeCertificate", [{"json": description(idle)}], account_id=ARBEL, region=REGION
    )
    who = only(customer(account("arbel", ARBEL)))

    result = await run_check(clients, who, "arbel", "certs")

    assert result.severity == Severity.WARN
    text = result.details["resources"][0]["summary"]
    assert text.startswith("idle.shop.example: expires in 14 d (warn < 21 d) on ")
    assert text.endswith(" UTC, not in use, so ACM will not renew it")


async def test_it_uses_the_customers_thresholds(edge: Edge, moto: str, clients: AwsClients) -> None:
    import_certificate(moto, ARBEL, REGION, "shop.example", _now() + timedelta(days=40, hours=1))
    who = customer(
        account("arbel", ARBEL),
        checks={"certs": {"warn_days": 60, "crit_days": 45, "cloudfront_region": False}},
    )

    result = await run_check(clients, who, "arbel", "certs")

    assert result.severity == Severity.CRIT
    assert "expires in 40 d (crit < 45 d)" in result.summary
    assert result.details["thresholds"]["warn_days"] == 60


@pytest.mark.parametrize(
    ("cert", "severity", "text"),
    [
        ({"Status": "REVOKED", "InUse": True}, "crit", "revoked: replace it"),
        ({"Status": "REVOKED", "InUse": False}, "crit", "revoked: replace it (not in use)"),
        (
            {"Status": "VALIDATION_TIMED_OUT"},
            "warn",
            "validation timed out: request it again, or delete it",
        ),
        (
            {"Status": "FAILED", "FailureReason": "CAA_ERROR"},
            "warn",
            "request failed (CAA_ERROR): fix the cause and request it again",
        ),
        ({"Status": "INACTIVE"}, "ok", "inactive"),
        (
            {
                "Status": "ISSUED",
                "Type": "AMAZON_ISSUED",
                "InUse": True,
                "RenewalSummary": {"RenewalStatus": "PENDING_VALIDATION"},
            },
            "warn",
            "expires in 30 d on 31 Jan 2026 00:00 UTC, renewal waits for domain validation: "
            "restore the CNAME record ACM shows for it",
        ),
        (
            {
                "Status": "ISSUED",
                "Type": "AMAZON_ISSUED",
                "InUse": True,
                "RenewalSummary": {"RenewalStatus": "PENDING_AUTO_RENEWAL"},
            },
            "ok",
            "expires in 30 d on 31 Jan 2026 00:00 UTC, renewal in progress",
        ),
        (
            {"Status": "EXPIRED", "Type": "AMAZON_ISSUED", "InUseBy": ["arn:aws:elb:…"]},
            "crit",
            "expired 12 h ago on 31 Jan 2026 00:00 UTC",
        ),
    ],
)
def test_it_judges_each_status_acm_reports(cert: dict[str, Any], severity: str, text: str) -> None:
    ends = datetime(2026, 1, 31, tzinfo=UTC)
    now = ends - timedelta(days=30) if cert["Status"] == "ISSUED" else ends + timedelta(hours=12)
    settings = CertsSettings.model_validate({})

    assert assess({"NotAfter": ends, **cert}, now, ZoneInfo("UTC"), settings) == (
        Severity(severity),
        text,
    )


# -- where it looks ------------------------------------------------------------------------------


async def test_it_follows_next_token_through_every_page(edge: Edge, clients: AwsClients) -> None:
    certs = [
        summary(
            ARBEL,
            REGION,
            f"site-{i:02d}.example",
            _now() + timedelta(days=5 if i == 23 else 100 + i, hours=1),
            kind="IMPORTED",
        )
        for i in range(25)
    ]
    edge.answer(
        "acm", "ListCertificates", pages(certs, per_page=10), account_id=ARBEL, region=REGION
    )
    who = only(customer(account("arbel", ARBEL)))

    result = await run_check(clients, who, "arbel", "certs")

    assert result.details["certificates"] == 25
    assert result.details["resources"][0]["domain"] == "site-23.example"
    assert result.severity == Severity.CRIT
    assert edge.calls("acm:ListCertificates", account=ARBEL) == 3
    assert edge.calls("acm:DescribeCertificate") == 0  # imported: the list says it all


async def test_it_checks_every_region_and_us_east_1_for_cloudfront(
    edge: Edge, moto: str, clients: AwsClients
) -> None:
    imported(moto, "shop.example", timedelta(days=100), region="eu-west-1")
    imported(moto, "jkt.shop.example", timedelta(days=10), region="ap-southeast-3")
    imported(moto, "cdn.shop.example", timedelta(days=3), region="us-east-1")
    regions = ("eu-west-1", "ap-southeast-3")
    who = customer(account("arbel", ARBEL, regions=regions))

    result = await run_check(clients, who, "arbel", "certs")
    without = await run_check(clients, only(who), "arbel", "certs")

    assert result.severity == Severity.CRIT
    assert result.details["regions"] == {"eu-west-1": 1, "ap-southeast-3": 1, "us-east-1": 1}
    assert [(r["region"], r["severity"]) for r in result.details["resources"]] == [
        ("us-east-1", "crit"),
        ("ap-southeast-3", "warn"),
        ("eu-west-1", "ok"),
    ]
    assert result.summary.startswith("1 critical, 1 warning of 3 certificates — cdn.shop.")
    assert without.severity == Severity.WARN
    assert without.details["regions"] == {"eu-west-1": 1, "ap-southeast-3": 1}


async def test_two_accounts_never_see_each_others_certificates(
    edge: Edge, moto: str, clients: AwsClients
) -> None:
    imported(moto, "arbel.example", timedelta(days=3))
    imported(moto, "billing.example", timedelta(days=200), account_id=BILLING)
    who = only(customer(account("arbel", ARBEL), account("billing", BILLING)))

    arbel = await run_check(clients, who, "arbel", "certs")
    billing = await run_check(clients, who, "billing", "certs")

    assert [r["domain"] for r in arbel.details["resources"]] == ["arbel.example"]
    assert arbel.severity == Severity.CRIT
    assert [r["domain"] for r in billing.details["resources"]] == ["billing.example"]
    assert billing.severity == Severity.OK


# -- when it could not look ----------------------------------------------------------------------


async def test_an_access_denied_list_names_the_iam_action_and_is_not_retried(
    edge: Edge, clients: AwsClients
) -> None:
    edge.inject(error="access-denied", operations=["acm:ListCertificates"], accounts=[ARBEL])
    who = only(customer(account("arbel", ARBEL)))
    runner = CheckRunner(REGISTRY, clients, retry=RetryPolicy())  # retries what may pass

    result = await runner.run(who, "arbel", "certs", run_id=1)

    assert result.severity == Severity.ERROR
    assert result.summary.startswith(
        "arbel (111111111111): access denied for acm:list_certificates"
    )
    assert "(IAM action acm:ListCertificates)" in result.summary
    assert result.details["permanent"] is True
    assert edge.calls("acm:ListCertificates", account=ARBEL) == 1


async def test_an_access_denied_describe_names_its_iam_action(
    edge: Edge, clients: AwsClients
) -> None:
    soon = summary(ARBEL, REGION, "shop.example", _now() + timedelta(days=30))
    edge.answer("acm", "ListCertificates", pages([soon]), account_id=ARBEL, region=REGION)
    edge.inject(error="access-denied", operations=["acm:DescribeCertificate"])
    who = only(customer(account("arbel", ARBEL)))

    result = await run_check(clients, who, "arbel", "certs")

    assert result.severity == Severity.ERROR
    assert "(IAM action acm:DescribeCertificate)" in result.summary


async def test_it_rides_out_throttling(edge: Edge, moto: str, clients: AwsClients) -> None:
    imported(moto, "shop.example", timedelta(days=3))
    edge.inject(error="throttling", operations=["acm:ListCertificates"], times=2)
    who = only(customer(account("arbel", ARBEL)))

    result = await run_check(clients, who, "arbel", "certs")

    assert result.severity == Severity.CRIT
    assert edge.calls("acm:ListCertificates") == 3


async def test_the_documented_iam_actions_are_enough(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported(aws, "shop.example", timedelta(days=3))
    imported(aws, "cdn.shop.example", timedelta(days=90), region="us-east-1")
    grant(aws, ARBEL, ["acm:ListCertificates", "acm:DescribeCertificate"])
    for key, value in hub_principal(aws, may_assume=[role_arn(ARBEL)]).items():
        monkeypatch.setenv(key, value)
    who = customer(account("arbel", ARBEL))
    clients = AwsClients()
    try:
        with iam_enforced(aws):
            result = await run_check(clients, who, "arbel", "certs")
    finally:
        clients.close()

    assert result.severity == Severity.CRIT, result.summary
    assert result.details["regions"] == {"eu-west-1": 1, "us-east-1": 1}


# -- what it declares, its settings, its links --------------------------------------------------


def test_it_declares_acm_in_each_region_and_in_us_east_1() -> None:
    check = REGISTRY["certs"]

    assert check.clients(account("arbel", ARBEL, regions=("eu-west-1", "ap-southeast-3"))) == [
        ("eu-west-1", "acm"),
        ("ap-southeast-3", "acm"),
        ("us-east-1", "acm"),
    ]
    assert check.clients(account("arbel", ARBEL, regions=("us-east-1",))) == [("us-east-1", "acm")]


def test_its_expiry_thresholds_are_the_http_checks_tls_ones() -> None:
    defaults = CertsSettings.model_validate({})

    assert (defaults.warn_days, defaults.crit_days) == (WARN_DAYS, CRIT_DAYS) == (21, 7)
    assert defaults.warn_days == HttpSettings.model_fields["cert_warn_days"].default
    assert defaults.crit_days == HttpSettings.model_fields["cert_crit_days"].default
    assert defaults.pending_hours == 24
    assert defaults.cloudfront_region is True


def test_it_refuses_a_crit_threshold_that_is_not_below_the_warn_one() -> None:
    with pytest.raises(ValidationError, match=r"crit_days \(30\) must be below warn_days \(21\)"):
        CertsSettings.model_validate({"crit_days": 30})
    with pytest.raises(ValidationError, match="write for example warn_days: 21 and crit_days: 7"):
        CertsSettings.model_validate({"warn_days": 14, "crit_days": 14})
    with pytest.raises(ValidationError, match="pending_hours"):
        CertsSettings.model_validate({"pending_hours": 100})
    with pytest.raises(ValidationError, match="warn_day"):
        CertsSettings.model_validate({"warn_day": 30})


def test_it_links_a_certificate_to_its_page_in_the_acm_console() -> None:
    line = {"certificate_id": "0f1e2d3c-aaaa-bbbb-cccc-123456789012"}

    assert console_url("ap-southeast-3", "shop.example (0f1e2d3c)", line) == (
        "https://ap-southeast-3.console.aws.amazon.com/acm/home?region=ap-southeast-3"
        "#/certificates/0f1e2d3c-aaaa-bbbb-cccc-123456789012"
    )
    assert console_url("eu-west-1", "*", {}).endswith("#/certificates/list")
