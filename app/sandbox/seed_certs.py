"""ACM certificates in the demo estate, and the answers the edge gives for what moto cannot do.

moto imports real certificates (it reads their expiry from the PEM, and refuses an expired
one) and issues requested ones after a minute, but never renews one: a managed renewal that
failed is answered by the edge (:meth:`Edge.answer`). What the certs check finds:

- shop-prod: ``api.shop.example``, imported, served by the ``shop-api`` load balancer and in its
  last days (critical: ACM cannot renew an imported certificate), and ``www.shop.example``,
  requested from ACM (pending validation for its first minute, then issued for a year: OK);
- shop-staging: ``staging.shop.example``, issued by ACM and in use, whose renewal failed on a
  CAA record (a warning; answered by the edge, so only with one), and ``legacy.shop.example``,
  imported, with most of a year left;
- analytics: ``dashboards.analytics.example`` in us-east-1, imported, served by the
  ``dashboards`` load balancer there and expiring in two weeks (a warning).

:func:`self_signed`, :func:`summary` and :func:`description` are what the tests build with too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session

PROD, STAGING, ANALYTICS = "111111111111", "222222222222", "333333333333"
REGION = "ap-southeast-3"
US_EAST_1 = "us-east-1"


def self_signed(
    domain: str,
    not_after: datetime,
    *,
    not_before: datetime | None = None,
    names: Sequence[str] = (),
) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``domain`` (and ``names``) valid until ``not_after``, and
    its private key, both PEM: what ``acm.import_certificate`` takes. EC P-256: quick to make."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    start = not_before or min(datetime.now(UTC), not_after) - timedelta(days=30)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in (domain, *names)]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), private


def import_certificate(
    moto_url: str, account_id: str, region: str, domain: str, not_after: datetime
) -> str:
    """Import a fresh self-signed certificate into moto; its ARN."""
    pem, key = self_signed(domain, not_after)
    acm = seed_session(moto_url, account_id, region).client("acm", endpoint_url=moto_url)
    return str(acm.import_certificate(Certificate=pem, PrivateKey=key)["CertificateArn"])


def arn(account_id: str, region: str, name: str) -> str:
    """The ARN of the certificate called ``name`` (the same every time: its id is a UUID
    derived from the account, region and name)."""
    certificate_id = uuid.uuid5(uuid.NAMESPACE_URL, f"acm:{account_id}:{region}:{name}")
    return f"arn:aws:acm:{region}:{account_id}:certificate/{certificate_id}"


def summary(
    account_id: str,
    region: str,
    domain: str,
    not_after: datetime,
    *,
    kind: str = "AMAZON_ISSUED",
    status: str = "ISSUED",
    in_use: bool = True,
    created: datetime | None = None,
) -> dict[str, Any]:
    """One certificate as ``ListCertificates`` answers it (JSON, times as epoch seconds)."""
    return {
        "CertificateArn": arn(account_id, region, domain),
        "DomainName": domain,
        "SubjectAlternativeNameSummaries": [domain],
        "Status": status,
        "Type": kind,
        "KeyAlgorithm": "RSA_2048",
        "InUse": in_use,
        "RenewalEligibility": "ELIGIBLE" if kind != "IMPORTED" and in_use else "INELIGIBLE",
        "NotBefore": (not_after - timedelta(days=395)).timestamp(),
        "NotAfter": not_after.timestamp(),
        "CreatedAt": (created or not_after - timedelta(days=395)).timestamp(),
    }


def description(
    listed: dict[str, Any], renewal: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    """``DescribeCertificate``'s answer for a listed certificate, with a managed renewal in
    state ``renewal`` (``FAILED``, ``PENDING_VALIDATION``, …) for ``reason``."""
    dropped = ("InUse", "SubjectAlternativeNameSummaries")
    certificate = {k: v for k, v in listed.items() if k not in dropped}
    certificate["SubjectAlternativeNames"] = listed["SubjectAlternativeNameSummaries"]
    _, _, _, region, account_id, _ = str(listed["CertificateArn"]).split(":", 5)
    balancer = f"arn:aws:elasticloadbalancing:{region}:{account_id}:loadbalancer/app/web/1"
    certificate["InUseBy"] = [balancer] if listed["InUse"] else []
    if renewal is not None:
        certificate["RenewalSummary"] = {
            "RenewalStatus": renewal,
            "DomainValidationOptions": [
                {"DomainName": listed["DomainName"], "ValidationStatus": "FAILED"}
            ],
            "UpdatedAt": listed["NotAfter"] - 40 * 86400,
            **({"RenewalStatusReason": reason} if reason else {}),
        }
    return {"Certificate": certificate}


def pages(certificates: Iterable[dict[str, Any]], per_page: int = 1000) -> list[dict[str, Any]]:
    """ListCertificates answers for the edge: ``per_page`` a page, ``NextToken: page-N``."""
    items = list(certificates)
    chunks = [items[i : i + per_page] for i in range(0, len(items), per_page)] or [[]]
    answers = []
    for number, chunk in enumerate(chunks, start=1):
        body: dict[str, Any] = {"CertificateSummaryList": chunk}
        if number < len(chunks):
            body["NextToken"] = f"page-{number + 1}"
        answers.append({"json": body})
    return answers


def serve(moto_url: str, account_id: str, region: str, balancer: str, certificate: str) -> None:
    """Put ``certificate`` in use: a classic load balancer's HTTPS listener serves it (moto
    then lists the certificate as in use)."""
    elb = seed_session(moto_url, account_id, region).client("elb", endpoint_url=moto_url)
    elb.create_load_balancer(
        LoadBalancerName=balancer,
        Listeners=[
            {
                "Protocol": "HTTPS",
                "LoadBalancerPort": 443,
                "InstanceProtocol": "HTTP",
                "InstancePort": 8080,
                "SSLCertificateId": certificate,
            }
        ],
        AvailabilityZones=[f"{region}a"],
    )


def seed(moto_url: str, edge: Edge | None, now: datetime) -> None:
    """Plant the demo's certificates (see the module docstring)."""
    api = import_certificate(
        moto_url, PROD, REGION, "api.shop.example", now + timedelta(days=5, hours=6)
    )
    serve(moto_url, PROD, REGION, "shop-api", api)
    acm = seed_session(moto_url, PROD, REGION).client("acm", endpoint_url=moto_url)
    acm.request_certificate(DomainName="www.shop.example", ValidationMethod="DNS")
    legacy_ends = now + timedelta(days=200, hours=6)
    import_certificate(moto_url, STAGING, REGION, "legacy.shop.example", legacy_ends)
    dashboards = import_certificate(
        moto_url,
        ANALYTICS,
        US_EAST_1,
        "dashboards.analytics.example",
        now + timedelta(days=15, hours=6),
    )
    serve(moto_url, ANALYTICS, US_EAST_1, "dashboards", dashboards)
    if edge is None:
        return
    # The edge answers shop-staging's ap-southeast-3 list in moto's place: both certificates.
    staging_ends = now + timedelta(days=40, hours=6)
    staging = summary(STAGING, REGION, "staging.shop.example", staging_ends)
    legacy = summary(STAGING, REGION, "legacy.shop.example", legacy_ends, kind="IMPORTED")
    edge.answer(
        "acm", "ListCertificates", pages([staging, legacy]), account_id=STAGING, region=REGION
    )
    edge.answer(
        "acm",
        "DescribeCertificate",
        [{"json": description(staging, "FAILED", "CAA_ERROR")}],
        account_id=STAGING,
        region=REGION,
    )
