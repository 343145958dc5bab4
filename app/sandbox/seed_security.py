"""Security Hub and GuardDuty in the demo estate, planted in moto (which implements
``enable_security_hub``, ``batch_import_findings``, ``get_findings``, ``create_detector`` and
``list_detectors``; it ignores ``get_findings``' filters, so only findings the check asks for
are planted):

- shop-prod has Security Hub and GuardDuty on, and three active findings: a security group
  open to the world on high-risk ports (critical), a public S3 bucket (high) and an EC2
  instance querying a Bitcoin domain, reported by GuardDuty (high);
- shop-staging has Security Hub on with nothing active, and GuardDuty was never enabled (a
  warning saying how to enable it);
- analytics has both on in ap-southeast-3 and nothing active, but Security Hub was never
  enabled in its second region, us-east-1 (a warning).

The builders (:func:`finding`, :func:`switch_on`, :func:`import_findings`) are what the tests
seed with too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session

PROD, STAGING, ANALYTICS = "111111111111", "222222222222", "333333333333"
REGION = "ap-southeast-3"
PRODUCTS = {"securityhub": "Security Hub", "guardduty": "GuardDuty", "inspector": "Inspector"}
IMPORT_BATCH = 100
"""``batch_import_findings`` takes at most 100 findings a call."""


def finding(
    account_id: str,
    region: str,
    title: str,
    resource_id: str,
    *,
    label: str = "HIGH",
    key: str = "1",
    resource_type: str = "AwsS3Bucket",
    product: str = "securityhub",
    control: str | None = None,
    created: datetime,
    updated: datetime | None = None,
    workflow: str = "NEW",
    record_state: str = "ACTIVE",
) -> dict[str, Any]:
    """One finding in the AWS Security Finding Format, as ``batch_import_findings`` takes it
    and ``get_findings`` answers it. ``key`` makes its ``Id`` unique; ``product`` is
    ``securityhub`` (a control finding: give ``control``, ``S3.8``), ``guardduty`` or
    ``inspector``."""
    if product == "securityhub":
        what = f"security-control/{control or 'custom'}"
        generator = f"security-control/{control or 'custom'}"
    else:
        what = f"{product}/finding"
        generator = f"{product}-generator"
    answer: dict[str, Any] = {
        "SchemaVersion": "2018-10-08",
        "Id": f"arn:aws:{product}:{region}:{account_id}:{what}/finding/{key}",
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/{product}",
        "ProductName": PRODUCTS.get(product, product),
        "CompanyName": "AWS",
        "GeneratorId": generator,
        "AwsAccountId": account_id,
        "Region": region,
        "Types": ["Software and Configuration Checks/AWS Security Best Practices"],
        "CreatedAt": _iso(created),
        "FirstObservedAt": _iso(created),
        "UpdatedAt": _iso(updated or created),
        "Severity": {"Label": label, "Original": label},
        "Title": title,
        "Description": f"{title} (demo).",
        "Resources": [{"Type": resource_type, "Id": resource_id, "Region": region}],
        "Workflow": {"Status": workflow},
        "RecordState": record_state,
    }
    if control:
        answer["Compliance"] = {"Status": "FAILED", "SecurityControlId": control}
        answer["Remediation"] = {
            "Recommendation": {
                "Text": f"For information on how to correct this issue, see {control}.",
                "Url": f"https://docs.aws.amazon.com/console/securityhub/{control}/remediation",
            }
        }
    return answer


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _client(moto_url: str, account_id: str, region: str, service: str) -> Any:
    return seed_session(moto_url, account_id, region).client(service, endpoint_url=moto_url)


def switch_on(
    moto_url: str,
    account_id: str,
    region: str,
    *,
    security_hub: bool = True,
    guardduty: bool | None = True,
) -> str | None:
    """Enable Security Hub (when ``security_hub``) and create a GuardDuty detector: enabled
    (``True``), suspended (``False``) or none (``None``). Returns the detector id."""
    if security_hub:
        _client(moto_url, account_id, region, "securityhub").enable_security_hub(
            EnableDefaultStandards=False
        )
    if guardduty is None:
        return None
    detector = _client(moto_url, account_id, region, "guardduty").create_detector(Enable=guardduty)
    return str(detector["DetectorId"])


def import_findings(
    moto_url: str, account_id: str, region: str, findings: Iterable[Mapping[str, Any]]
) -> None:
    """Import ``findings`` into the account's Security Hub in ``region``, 100 a call."""
    client = _client(moto_url, account_id, region, "securityhub")
    batch = [dict(f) for f in findings]
    for start in range(0, len(batch), IMPORT_BATCH):
        answer = client.batch_import_findings(Findings=batch[start : start + IMPORT_BATCH])
        if answer.get("FailedCount"):
            raise ValueError(f"Security Hub refused findings: {answer['FailedFindings']}")


def seed(moto_url: str, edge: Edge | None, now: datetime) -> None:
    """Plant the demo's Security Hub and GuardDuty (see the module docstring). moto answers
    every call the check makes: the edge is not needed."""
    switch_on(moto_url, PROD, REGION)
    import_findings(
        moto_url,
        PROD,
        REGION,
        [
            finding(
                PROD,
                REGION,
                "Security groups should not allow unrestricted access to ports with high risk",
                f"arn:aws:ec2:{REGION}:{PROD}:security-group/sg-0a1b2c3d4e5f60718",
                label="CRITICAL",
                key="7f3e2a10-5c4b-4d6e-9a8b-0c1d2e3f4a5b",
                resource_type="AwsEc2SecurityGroup",
                control="EC2.19",
                created=now - timedelta(hours=5),
            ),
            finding(
                PROD,
                REGION,
                "S3 general purpose buckets should block public access",
                "arn:aws:s3:::shop-assets",
                label="HIGH",
                key="1c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f",
                control="S3.8",
                created=now - timedelta(days=12),
            ),
            finding(
                PROD,
                REGION,
                "EC2 instance i-0a1b2c3d4e5f60718 is querying a domain name associated with "
                "Bitcoin-related activity",
                f"arn:aws:ec2:{REGION}:{PROD}:instance/i-0a1b2c3d4e5f60718",
                label="HIGH",
                key="a2c4e6f8b0d2e4f6a8c0e2f4b6d8f0a2",
                resource_type="AwsEc2Instance",
                product="guardduty",
                created=now - timedelta(days=2),
            ),
        ],
    )
    switch_on(moto_url, STAGING, REGION, guardduty=None)
    switch_on(moto_url, ANALYTICS, REGION)
    switch_on(moto_url, ANALYTICS, "us-east-1", security_hub=False)
