"""The security check against moto over HTTP (Security Hub and GuardDuty), through the edge (for
faults and call counts), in accounts reached by AssumeRole.

moto keeps Security Hub findings per account and region and pages ``get_findings`` by 100, but
ignores its filters: tests plant only what AWS would answer, and read the filters the check
sends from the request itself."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.engine.checking import CheckRunner
from app.engine.findings import Fold, change, look
from app.engine.retry import RetryPolicy
from app.sandbox.edge import Edge
from app.sandbox.seed_security import finding, import_findings, switch_on
from checks.aws import AwsClients
from checks.base import CheckResult, Severity
from checks.registry import REGISTRY
from checks.security import SecurityCheck, SecuritySettings, console_url, label_of
from tests.checks.support import ARBEL, BILLING, account, customer, run_check

REGION = "eu-west-1"
NOW = datetime.now(UTC)
OPEN_PORTS = "Security groups should not allow unrestricted access to ports with high risk"
PUBLIC_BUCKET = "S3 general purpose buckets should block public access"


def open_ports(
    key: str, days: float = 1, account_id: str = ARBEL, region: str = REGION, **extra: Any
) -> dict[str, Any]:
    return finding(
        account_id,
        region,
        OPEN_PORTS,
        f"arn:aws:ec2:{region}:{account_id}:security-group/sg-{key}",
        label=extra.pop("label", "CRITICAL"),
        key=key,
        resource_type="AwsEc2SecurityGroup",
        control="EC2.19",
        created=NOW - timedelta(days=days),
        **extra,
    )


def public_bucket(
    bucket: str, days: float = 1, account_id: str = ARBEL, region: str = REGION, **extra: Any
) -> dict[str, Any]:
    return finding(
        account_id,
        region,
        PUBLIC_BUCKET,
        f"arn:aws:s3:::{bucket}",
        label=extra.pop("label", "HIGH"),
        key=bucket,
        control="S3.8",
        created=NOW - timedelta(days=days),
        **extra,
    )


def fingerprint(of: dict[str, Any], account_id: str = ARBEL, region: str = REGION) -> str:
    return f"security:{account_id}:{region}:{of['Id']}:finding"


def fingerprints(result: CheckResult) -> set[str]:
    return {line["fingerprint"] for line in result.details["resources"]}


# -- what it finds -------------------------------------------------------------------------------


async def test_it_is_critical_for_a_critical_finding_and_lists_each_with_resource_and_title(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, REGION)
    switch_on(aws, BILLING, REGION)
    ports = open_ports("0a1b", days=2)
    import_findings(
        aws,
        ARBEL,
        REGION,
        [public_bucket("shop-logs", days=9), ports, public_bucket("shop-assets")],
    )
    import_findings(aws, BILLING, REGION, [public_bucket("billing-exports", account_id=BILLING)])
    who = customer(account("arbel", ARBEL), account("billing", BILLING))

    arbel = await run_check(clients, who, "arbel", "security")
    billing = await run_check(clients, who, "billing", "security")

    assert arbel.severity == Severity.CRIT
    assert arbel.summary == (
        f'3 active findings (1 critical, 2 high): "{OPEN_PORTS}", "{PUBLIC_BUCKET}" ×2'
    )
    lines = arbel.details["resources"]
    assert [(line["severity"], line["summary"]) for line in lines] == [
        ("crit", f"sg-0a1b: {OPEN_PORTS} (CRITICAL, Security Hub EC2.19)"),
        ("warn", f"shop-assets: {PUBLIC_BUCKET} (HIGH, Security Hub S3.8)"),  # newest first
        ("warn", f"shop-logs: {PUBLIC_BUCKET} (HIGH, Security Hub S3.8)"),
    ]
    assert lines[0]["id"] == ports["Id"]
    assert lines[0]["fingerprint"] == fingerprint(ports)
    assert lines[0]["resource_type"] == "AwsEc2SecurityGroup"
    assert lines[0]["recommendation"].endswith("/EC2.19/remediation")
    assert arbel.details["findings"] == 3
    assert arbel.details["counts"] == {"CRITICAL": 1, "HIGH": 2}
    assert arbel.details["titles"][0] == {"title": OPEN_PORTS, "label": "CRITICAL", "count": 1}
    assert billing.severity == Severity.WARN
    assert billing.summary == f'1 active finding (1 high): "{PUBLIC_BUCKET}"'
    assert [line["resource_id"] for line in billing.details["resources"]] == [
        "arn:aws:s3:::billing-exports"
    ]


async def test_it_is_ok_when_nothing_is_active_and_both_services_are_on(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, REGION)
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "security")

    assert result.severity == Severity.OK
    assert result.summary == (
        "no active critical or high findings in eu-west-1 (Security Hub and GuardDuty on)"
    )
    assert result.details["findings"] == 0
    assert result.details["resources"] == []
    assert result.details["regions"] == {
        REGION: {"security_hub": True, "guardduty": "enabled", "findings": 0}
    }


async def test_it_warns_for_high_medium_and_low_and_lists_informational_as_ok(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, REGION)
    import_findings(
        aws,
        ARBEL,
        REGION,
        [
            public_bucket("a-medium", label="MEDIUM"),
            public_bucket("a-low", label="LOW"),
            public_bucket("an-info", label="INFORMATIONAL"),
        ],
    )
    who = customer(
        account("arbel", ARBEL),
        checks={"security": {"severities": ["MEDIUM", "LOW", "INFORMATIONAL"]}},
    )

    result = await run_check(clients, who, "arbel", "security")

    assert result.severity == Severity.WARN
    assert {
        line["id"].rsplit("/", 1)[-1]: line["severity"] for line in result.details["resources"]
    } == {
        "a-medium": "warn",
        "a-low": "warn",
        "an-info": "ok",
    }
    assert result.summary.startswith("3 active findings (1 medium, 1 low, 1 informational): ")


def test_it_reads_the_label_or_else_the_older_normalized_score() -> None:
    assert label_of({"Severity": {"Label": "CRITICAL", "Normalized": 10}}) == "CRITICAL"
    assert label_of({"Severity": {"Normalized": 90}}) == "CRITICAL"
    assert label_of({"Severity": {"Normalized": 70}}) == "HIGH"
    assert label_of({"Severity": {"Normalized": 40}}) == "MEDIUM"
    assert label_of({"Severity": {"Normalized": 1}}) == "LOW"
    assert label_of({"Severity": {"Normalized": 0}}) == "INFORMATIONAL"
    assert label_of({}) == "INFORMATIONAL"


# -- new since the previous digest ---------------------------------------------------------------


async def test_a_new_finding_in_a_second_run_has_a_fingerprint_the_first_run_did_not(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, REGION)
    bucket = public_bucket("shop-assets", days=3)
    import_findings(aws, ARBEL, REGION, [bucket])
    who = customer(account("arbel", ARBEL))

    first = await run_check(clients, who, "arbel", "security")
    ports = open_ports("0a1b", days=0.1)
    import_findings(aws, ARBEL, REGION, [ports])
    # AWS updates the old finding between the runs: it is still the same finding
    import_findings(aws, ARBEL, REGION, [{**bucket, "UpdatedAt": ports["UpdatedAt"]}])
    second = await run_check(clients, who, "arbel", "security")

    assert fingerprints(first) == {fingerprint(bucket)}
    assert fingerprints(second) == {fingerprint(bucket), fingerprint(ports)}
    # … so the hub's findings call the second one new, and keep the first one open
    fold = Fold()
    for run_id, result in enumerate((first, second), start=1):
        at = NOW + timedelta(hours=run_id)
        seen = look("aryanoble", run_id, "arbel", "security", result.severity.value,
                    result.summary, result.details, at)  # fmt: skip
        fold.add([seen] if seen else [])
    kept = {fp: found for (_, fp), found in fold.findings.items()}
    assert set(kept) == {fingerprint(bucket), fingerprint(ports)}
    assert change(kept[fingerprint(ports)].history, kept[fingerprint(ports)].returns) == "new"
    assert kept[fingerprint(bucket)].history == "11"
    assert kept[fingerprint(bucket)].status == "open"


# -- Security Hub and GuardDuty switched on --------------------------------------------------------


async def test_it_warns_when_security_hub_is_not_enabled_and_says_how_to_enable_it(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, REGION, security_hub=False)
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "security")

    assert result.severity == Severity.WARN
    assert result.summary == (
        "Security Hub not enabled in eu-west-1 (aws securityhub enable-security-hub)"
    )
    [line] = result.details["resources"]
    assert line["fingerprint"] == f"security:{ARBEL}:{REGION}:securityhub:enabled"
    assert line["severity"] == "warn"
    assert line["summary"].startswith(
        "Security Hub is not enabled in eu-west-1 (InvalidAccessException): enable it in the "
        "Security Hub console, or run `aws securityhub enable-security-hub --region eu-west-1`"
    )
    assert result.details["regions"][REGION]["security_hub"] is False
    assert edge.calls("securityhub:DescribeHub", account=ARBEL) == 1
    assert edge.calls("securityhub:GetFindings") == 0


async def test_it_takes_resource_not_found_from_describe_hub_as_not_enabled(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, REGION)
    edge.inject(error="ResourceNotFoundException", operations=["securityhub:DescribeHub"])
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "security")

    assert result.severity == Severity.WARN
    assert [line["id"] for line in result.details["resources"]] == ["securityhub"]


async def test_it_warns_when_guardduty_is_not_enabled_or_suspended_and_says_how_to_fix_it(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, "eu-west-1", guardduty=None)
    detector = switch_on(aws, ARBEL, "eu-central-1", guardduty=False)
    regions = ("eu-west-1", "eu-central-1")
    who = customer(account("arbel", ARBEL, regions))
    relaxed = customer(
        account("arbel", ARBEL, regions), checks={"security": {"require_guardduty": False}}
    )

    result = await run_check(clients, who, "arbel", "security")
    asked = edge.calls("guardduty:ListDetectors")
    unasked = await run_check(clients, relaxed, "arbel", "security")

    assert result.severity == Severity.WARN
    assert result.summary == (
        "GuardDuty not enabled in eu-west-1 (aws guardduty create-detector --enable); "
        "GuardDuty suspended in eu-central-1 (aws guardduty update-detector --enable)"
    )
    missing, suspended = result.details["resources"]
    assert missing["fingerprint"] == f"security:{ARBEL}:eu-west-1:guardduty:enabled"
    assert "`aws guardduty create-detector --enable --region eu-west-1`" in missing["summary"]
    assert "checks.security.require_guardduty: false" in missing["summary"]
    assert suspended["summary"].startswith("GuardDuty is suspended in eu-central-1: ")
    assert (
        f"`aws guardduty update-detector --detector-id {detector} --enable --region eu-central-1`"
        in suspended["summary"]
    )
    assert {r: s["guardduty"] for r, s in result.details["regions"].items()} == {
        "eu-west-1": "not enabled",
        "eu-central-1": "suspended",
    }
    assert unasked.severity == Severity.OK
    assert unasked.summary == (
        "no active critical or high findings in eu-west-1, eu-central-1 (Security Hub on)"
    )
    assert edge.calls("guardduty:ListDetectors") == asked == 2


# -- pages, caps, regions, accounts ------------------------------------------------------------


async def test_it_follows_every_page_of_findings(aws: str, edge: Edge, clients: AwsClients) -> None:
    switch_on(aws, ARBEL, REGION)
    import_findings(
        aws, ARBEL, REGION, [public_bucket(f"bucket-{i:03d}", days=i / 10) for i in range(250)]
    )
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "security")

    assert result.details["findings"] == 250
    assert result.details["counts"] == {"CRITICAL": 0, "HIGH": 250}
    assert edge.calls("securityhub:GetFindings", account=ARBEL) == 3  # pages of 100
    assert result.details["listed"] == 100
    assert result.summary == (
        f'250 active findings (250 high): "{PUBLIC_BUCKET}" ×250 — 100 of 250 listed '
        "(max_findings: 100)"
    )


async def test_it_keeps_at_most_max_findings_lines_the_oldest_but_counts_every_finding(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, REGION)
    import_findings(
        aws,
        ARBEL,
        REGION,
        [
            open_ports("new", days=0.5),
            *(public_bucket(f"b-{day}", days=day) for day in range(1, 9)),
        ],
    )
    who = customer(account("arbel", ARBEL), checks={"security": {"max_findings": 3}})

    result = await run_check(clients, who, "arbel", "security")

    names = [line["resource_id"].rsplit(":", 1)[-1] for line in result.details["resources"]]
    assert names == ["security-group/sg-new", "b-7", "b-8"]  # criticals first; then the oldest
    assert result.details["findings"] == 9
    assert (result.details["listed"], result.details["omitted"]) == (3, 6)
    assert result.summary.endswith(" — 3 of 9 listed (max_findings: 3)")


async def test_it_checks_every_region_and_counts_an_aggregated_finding_once(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, "eu-west-1")
    switch_on(aws, ARBEL, "us-east-1")  # aggregates eu-west-1's findings too
    ireland = public_bucket("shop-assets", region="eu-west-1")
    virginia = open_ports("0a1b", region="us-east-1")
    import_findings(aws, ARBEL, "eu-west-1", [ireland])
    import_findings(aws, ARBEL, "us-east-1", [virginia, ireland])
    who = customer(account("arbel", ARBEL, ("eu-west-1", "us-east-1")))

    result = await run_check(clients, who, "arbel", "security")

    assert result.severity == Severity.CRIT
    assert result.details["findings"] == 2
    assert fingerprints(result) == {
        fingerprint(virginia, region="us-east-1"),
        fingerprint(ireland, region="eu-west-1"),
    }
    assert {r: s["findings"] for r, s in result.details["regions"].items()} == {
        "eu-west-1": 1,
        "us-east-1": 1,
    }


async def test_it_asks_aws_for_this_accounts_active_unhandled_findings_of_the_severities(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    switch_on(aws, ARBEL, REGION)
    arbel = account("arbel", ARBEL)
    who = customer(arbel, checks={"security": {"severities": ["high", "Critical", "MEDIUM"]}})
    sent: list[dict[str, Any]] = []
    hub = clients.client(REGION, "securityhub")
    hub.meta.events.register(
        "provide-client-params.securityhub.GetFindings",
        lambda params, **_: sent.append(copy.deepcopy(params)),
    )

    await run_check(clients, who, "arbel", "security")

    assert sent == [
        {
            "Filters": {
                "AwsAccountId": [{"Value": ARBEL, "Comparison": "EQUALS"}],
                "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
                "WorkflowStatus": [
                    {"Value": "NEW", "Comparison": "EQUALS"},
                    {"Value": "NOTIFIED", "Comparison": "EQUALS"},
                ],
                "SeverityLabel": [
                    {"Value": "CRITICAL", "Comparison": "EQUALS"},
                    {"Value": "HIGH", "Comparison": "EQUALS"},
                    {"Value": "MEDIUM", "Comparison": "EQUALS"},
                ],
            },
            "MaxResults": 100,
        }
    ]


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "method"),
    [
        ("securityhub:GetFindings", "get_findings"),
        ("securityhub:DescribeHub", "describe_hub"),
        ("guardduty:ListDetectors", "list_detectors"),
        ("guardduty:GetDetector", "get_detector"),
    ],
)
async def test_an_access_denied_call_names_its_iam_action_and_is_not_retried(
    aws: str, edge: Edge, clients: AwsClients, operation: str, method: str
) -> None:
    switch_on(aws, ARBEL, REGION)
    edge.inject(error="access-denied", operations=[operation], accounts=[ARBEL])
    who = customer(account("arbel", ARBEL))
    runner = CheckRunner(REGISTRY, clients, retry=RetryPolicy())  # retries what may pass

    result = await runner.run(who, "arbel", "security", run_id=1)

    service = operation.split(":")[0]
    assert result.severity == Severity.ERROR
    assert result.summary.startswith(f"arbel (111111111111): access denied for {service}:{method}")
    assert f"(IAM action {operation})" in result.summary
    assert result.details["permanent"] is True
    assert edge.calls(operation, account=ARBEL) == 1


async def test_it_rides_out_throttling(aws: str, edge: Edge, clients: AwsClients) -> None:
    switch_on(aws, ARBEL, REGION)
    import_findings(aws, ARBEL, REGION, [open_ports("0a1b")])
    edge.inject(error="throttling", operations=["securityhub:GetFindings"], times=2)
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "security")

    assert result.severity == Severity.CRIT
    assert edge.calls("securityhub:GetFindings") == 3


# -- what it declares, its settings, its links ---------------------------------------------------


def test_it_declares_security_hub_and_guardduty_in_each_region() -> None:
    arbel = account("arbel", ARBEL, ("eu-west-1", "us-east-1"))

    assert SecurityCheck().clients(arbel) == [
        ("eu-west-1", "securityhub"),
        ("eu-west-1", "guardduty"),
        ("us-east-1", "securityhub"),
        ("us-east-1", "guardduty"),
    ]


def test_it_documents_its_defaults_and_refuses_bad_values_saying_what_to_write() -> None:
    defaults = SecuritySettings()

    assert defaults.severities == ("CRITICAL", "HIGH")
    assert defaults.max_findings == 100
    assert defaults.require_guardduty is True
    assert SecuritySettings.model_validate(
        {"severities": ["high", "CRITICAL", "High"]}
    ).severities == ("CRITICAL", "HIGH")
    with pytest.raises(ValidationError, match=r'"SEVERE" is not a Security Hub severity label; '
                       r"write e.g. severities: \[CRITICAL, HIGH\]"):  # fmt: skip
        SecuritySettings.model_validate({"severities": ["CRITICAL", "SEVERE"]})
    with pytest.raises(ValidationError, match="severities is a list of Security Hub severity"):
        SecuritySettings.model_validate({"severities": []})
    for bad in (0, 1001, "lots", True):
        with pytest.raises(ValidationError, match="max_findings is a whole number from 1 to 1000"):
            SecuritySettings.model_validate({"max_findings": bad})
    with pytest.raises(ValidationError, match="max_finding"):
        SecuritySettings.model_validate({"max_finding": 5})


def test_it_links_a_finding_to_its_page_and_a_service_to_where_it_is_switched_on() -> None:
    found = open_ports("0a1b")
    home = "https://eu-west-1.console.aws.amazon.com"

    assert console_url(REGION, found["Id"], {}) == (
        f"{home}/securityhub/home?region=eu-west-1#/findings?search="
        "Id%3D%255Coperator%255C%253AEQUALS%255C%253A"
        "arn%253Aaws%253Asecurityhub%253Aeu-west-1%253A111111111111%253Asecurity-control"
        "%252FEC2.19%252Ffinding%252F0a1b"
    )
    assert console_url(REGION, "securityhub", {}) == (
        f"{home}/securityhub/home?region=eu-west-1#/landing"
    )
    assert console_url(REGION, "guardduty", {}) == f"{home}/guardduty/home?region=eu-west-1#/"
    assert console_url(REGION, "*", {}) == f"{home}/securityhub/home?region=eu-west-1#/findings"
