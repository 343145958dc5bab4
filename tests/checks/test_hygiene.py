"""The hygiene check over HTTP through the edge to moto, in accounts reached by AssumeRole.

moto keeps trails, Config recorders and S3 Block Public Access per account. The edge answers
the two IAM calls moto cannot answer like AWS: ``GetAccountSummary`` (moto's root never has
MFA) and ``GetCredentialReport`` when keys must be old (moto dates every key now).

S3 Control sends each request to ``<account id>.<endpoint host>``: boto3 reaches the edge as its
HTTP proxy here (the ``edge`` fixture below), so that host is never looked up on this side.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.sandbox import seed_hygiene
from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session
from app.sandbox.seed_hygiene import (
    ALL_BLOCKED,
    Key,
    account_summary_xml,
    credential_report_xml,
    root_row,
    s3control,
    user_row,
)
from checks import hygiene
from checks.aws import AwsClients
from checks.base import CheckResult, Severity
from checks.hygiene import CONTROLS, HygieneSettings, console_url
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
DAY = timedelta(days=1)
IAM_ACTIONS = [
    "iam:GetAccountSummary",
    "iam:GenerateCredentialReport",
    "iam:GetCredentialReport",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "config:DescribeConfigurationRecorderStatus",
    "s3:GetAccountPublicAccessBlock",
]
"""What the monitoring role may do for this check (its statements in docs/checks.md)."""


@pytest.fixture
def edge(edge: Edge, monkeypatch: pytest.MonkeyPatch) -> Edge:
    """The edge, also as boto3's HTTP proxy (see the module docstring)."""
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, edge.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return edge


@pytest.fixture(autouse=True)
def quick_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask again for a credential report being generated without waiting seconds."""
    monkeypatch.setattr(hygiene, "REPORT_WAITS_S", (0.01, 0.01, 0.01))


# -- arranging an account ------------------------------------------------------------------------


def client(url: str, account_id: str, service: str, region: str = REGION) -> Any:
    return seed_session(url, account_id, region).client(service, endpoint_url=url)


def root(edge: Edge, account_id: str, *, mfa: bool = True, keys: bool = False) -> None:
    xml = account_summary_xml(mfa=mfa, root_keys=keys)
    edge.answer("iam", "GetAccountSummary", [{"xml": xml}], account_id=account_id)


def report(edge: Edge, account_id: str, *rows: dict[str, str]) -> None:
    now = datetime.now(UTC)
    everyone = [root_row(account_id, now - 900 * DAY), *rows]
    xml = credential_report_xml(everyone, now)
    edge.answer("iam", "GetCredentialReport", [{"xml": xml}], account_id=account_id)


def trail(url: str, account_id: str, name: str, *, multi: bool = True, on: bool = True) -> None:
    bucket = f"{name}-{account_id}"
    client(url, account_id, "s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    trails = client(url, account_id, "cloudtrail")
    trails.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=multi)
    if on:
        trails.start_logging(Name=name)


def recorder(url: str, account_id: str, region: str, *, recording: bool = True) -> None:
    config = client(url, account_id, "config", region)
    config.put_configuration_recorder(
        ConfigurationRecorder={"name": "default", "roleARN": f"arn:aws:iam::{account_id}:role/c"}
    )
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "logs"})
    if recording:
        config.start_configuration_recorder(ConfigurationRecorderName="default")


def public_access_block(url: str, account_id: str, **off: bool) -> None:
    s3control(url, seed_session(url, account_id, REGION)).put_public_access_block(
        AccountId=account_id, PublicAccessBlockConfiguration={**ALL_BLOCKED, **off}
    )


def tidy(url: str, edge: Edge, account_id: str, regions: Iterable[str] = (REGION,)) -> None:
    """Every control in place: root with MFA and no keys, a logging multi-region trail, a
    recording Config recorder in each region, account-level S3 Block Public Access."""
    root(edge, account_id)
    trail(url, account_id, "all-regions")
    for region in regions:
        recorder(url, account_id, region)
    public_access_block(url, account_id)


def lines(result: CheckResult, control: str | None = None) -> list[dict[str, Any]]:
    found = result.details["resources"]
    return [line for line in found if control is None or line["control"] == control]


def problems(result: CheckResult) -> dict[str, str]:
    """Control (or id, for access keys) → summary of every line that is not OK."""
    return {
        (line["id"] if line["control"] == "access_keys" else line["control"]): line["summary"]
        for line in lines(result)
        if line["severity"] != "ok"
    }


# -- every control passing -----------------------------------------------------------------------


async def test_it_passes_an_account_with_every_control_in_place(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL)
    iam = client(aws, ARBEL, "iam")
    for user in ("ci-deploy", "backup-sync"):
        iam.create_user(UserName=user)
        iam.create_access_key(UserName=user)

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "hygiene")

    assert result.severity == Severity.OK
    assert result.summary == "6 controls OK"
    assert result.details["controls"] == 6
    assert result.details["counts"] == {"ok": 6}
    assert {line["control"]: line["summary"] for line in lines(result)} == {
        "root_mfa": "root has MFA",
        "root_keys": "root has no access keys",
        "access_keys": "2 active access keys, none older than 90 d or unused for 90 d",
        "cloudtrail": "multi-region trail all-regions is logging",
        "config": f"AWS Config recorder default is recording in {REGION}",
        "s3_public_access": "account-level S3 Block Public Access is on (all four settings)",
    }
    assert lines(result, "root_mfa")[0]["fingerprint"] == f"hygiene:{ARBEL}:{REGION}:root:root_mfa"


# -- root --------------------------------------------------------------------------------------


async def test_it_is_critical_when_root_has_no_mfa_or_has_access_keys(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL)
    root(edge, ARBEL, mfa=False, keys=True)

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "hygiene")

    assert result.severity == Severity.CRIT
    assert problems(result) == {
        "root_mfa": "root has no MFA: sign in as root → Security credentials → Assign MFA device",
        "root_keys": "root has access keys: sign in as root → Security credentials → Access keys "
        "→ deactivate and delete them (move whatever uses them to an IAM role)",
    }
    assert result.summary == (
        "root has no MFA: sign in as root → Security credentials → Assign MFA device; "
        "and 1 more — 6 controls: 2 critical"
    )
    assert [line["severity"] for line in lines(result)][:2] == ["crit", "crit"]  # problems first
    assert result.details["root"] == {"mfa": False, "access_keys": True}


# -- access keys -------------------------------------------------------------------------------


async def test_it_warns_on_access_keys_older_than_key_age_or_unused_for_unused_days(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    now = datetime.now(UTC)
    tidy(aws, edge, ARBEL)
    tidy(aws, edge, BILLING)
    fresh, stale = Key(now - 30 * DAY, now - 2 * DAY), Key(now - 400 * DAY, now - 100 * DAY)
    report(
        edge,
        ARBEL,
        user_row(ARBEL, "ci-deploy", Key(now - 200 * DAY, now - DAY)),
        user_row(ARBEL, "old-etl", Key(now - 120 * DAY)),
        user_row(ARBEL, "reports", fresh, stale),
        user_row(ARBEL, "retired", Key(now - 500 * DAY, active=False)),
        user_row(ARBEL, "fresh", Key(now - 10 * DAY)),
    )
    client(aws, BILLING, "iam").create_user(UserName="billing-only")
    client(aws, BILLING, "iam").create_access_key(UserName="billing-only")
    who = customer(account("arbel", ARBEL), account("billing", BILLING))

    arbel = await run_check(clients, who, "arbel", "hygiene")
    billing = await run_check(clients, who, "billing", "hygiene")

    assert arbel.severity == Severity.WARN
    where = "IAM → Users → {} → Security credentials"
    assert problems(arbel) == {
        "user/ci-deploy": "ci-deploy's access key 1 is 200 days old (warn > 90 d): rotate it ("
        + where.format("ci-deploy")
        + ": create a second key, move its users to it, deactivate and delete this one)",
        "user/old-etl": "old-etl's access key 1 was never used in the 120 days since it was "
        f"created (warn > 90 d unused): deactivate, then delete it ({where.format('old-etl')})",
        "user/reports": "reports's access key 2 was last used 100 days ago and is 400 days old "
        f"(warn > 90 d unused): deactivate, then delete it ({where.format('reports')})",
    }
    ci = next(line for line in lines(arbel) if line["id"] == "user/ci-deploy")
    assert ci["fingerprint"] == f"hygiene:{ARBEL}:{REGION}:user/ci-deploy:access_key_1"
    assert (ci["age_days"], ci["unused_days"], ci["key"]) == (200, 1, 1)
    assert arbel.details["access_keys"] == {"active": 5, "old": 3, "unused": 2}
    assert arbel.summary.endswith("; and 2 more — 6 controls: 1 warning")
    # billing's own report, from moto: its one fresh key, nothing of arbel's
    assert billing.severity == Severity.OK
    assert billing.details["access_keys"] == {"active": 1, "old": 0, "unused": 0}


async def test_it_takes_key_age_and_unused_days_from_the_settings(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    now = datetime.now(UTC)
    tidy(aws, edge, ARBEL)
    report(edge, ARBEL, user_row(ARBEL, "ci-deploy", Key(now - 200 * DAY, now - 40 * DAY)))
    relaxed = {"hygiene": {"key_age_days": 365, "unused_days": 30}}

    result = await run_check(
        clients, customer(account("arbel", ARBEL), checks=relaxed), "arbel", "hygiene"
    )

    assert problems(result) == {
        "user/ci-deploy": "ci-deploy's access key 1 was last used 40 days ago (warn > 30 d "
        "unused): deactivate, then delete it (IAM → Users → ci-deploy → Security credentials)"
    }
    assert (result.details["key_age_days"], result.details["unused_days"]) == (365, 30)


async def test_it_asks_again_while_the_credential_report_is_being_generated(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL)
    edge.inject(
        error="ReportInProgress",
        status=404,
        message="Report generation in progress",
        operations=["iam:GetCredentialReport"],
        times=2,
    )

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "hygiene")

    assert result.severity == Severity.OK, result.summary
    assert edge.calls("iam:GenerateCredentialReport", account=ARBEL) == 3
    assert edge.calls("iam:GetCredentialReport", account=ARBEL) == 3


async def test_it_says_so_when_the_credential_report_is_still_not_ready(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL)
    edge.inject(
        error="ReportInProgress",
        status=404,
        message="Report generation in progress",
        operations=["iam:GetCredentialReport"],
    )

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "hygiene")

    assert result.severity == Severity.ERROR
    assert result.summary.startswith(
        f"arbel ({ARBEL}): the IAM credential report is still being generated"
    )
    assert "the next try will read it" in result.summary
    assert (result.details["call"], result.details["code"]) == (
        "iam:GetCredentialReport",
        "ReportInProgress",
    )
    assert edge.calls("iam:GetCredentialReport", account=ARBEL) == 4  # 3 waits, then gave up


# -- CloudTrail --------------------------------------------------------------------------------


async def test_it_is_critical_without_a_multi_region_trail_that_is_logging(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    for account_id in (ARBEL, BILLING):
        root(edge, account_id)
        recorder(aws, account_id, REGION)
        public_access_block(aws, account_id)
    trail(aws, ARBEL, "local", multi=False)
    trail(aws, BILLING, "org", on=False)
    who = customer(account("arbel", ARBEL), account("billing", BILLING))

    arbel = await run_check(clients, who, "arbel", "hygiene")
    billing = await run_check(clients, who, "billing", "hygiene")

    assert arbel.severity == Severity.CRIT
    assert arbel.summary == (
        "no multi-region CloudTrail trail (single-region only: local): CloudTrail → Trails → "
        "Create trail (a console trail covers every region), or make a trail multi-region "
        "— 6 controls: 1 critical"
    )
    assert billing.severity == Severity.CRIT
    assert problems(billing) == {
        "cloudtrail": "multi-region trail org is not logging: CloudTrail → Trails → org → "
        "Start logging"
    }
    assert billing.details["trails"] == {
        "multi_region": ["org"],
        "logging": [],
        "unreadable": [],
        "single_region": [],
    }

    client(aws, BILLING, "cloudtrail").start_logging(Name="org")
    assert (await run_check(clients, who, "billing", "hygiene")).severity == Severity.OK


async def test_it_finds_a_multi_region_trail_made_in_another_region(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL, regions=("eu-central-1",))  # its trail is made in eu-west-1
    arbel = account("arbel", ARBEL, regions=("eu-central-1",))

    result = await run_check(clients, customer(arbel), "arbel", "hygiene")

    assert result.severity == Severity.OK, result.summary
    assert lines(result, "cloudtrail")[0]["summary"] == "multi-region trail all-regions is logging"
    assert edge.calls("cloudtrail:GetTrailStatus", account=ARBEL) == 1


async def test_it_warns_when_the_account_cannot_read_its_trails_status(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL)
    edge.inject(error="TrailNotFoundException", operations=["cloudtrail:GetTrailStatus"])

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "hygiene")

    assert result.severity == Severity.WARN
    assert problems(result) == {
        "cloudtrail": "multi-region trail all-regions: this account cannot read its status "
        "(TrailNotFoundException): check it is logging in the account that owns it"
    }


# -- AWS Config --------------------------------------------------------------------------------


async def test_it_warns_in_each_region_where_aws_config_is_not_recording(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    regions = ("eu-west-1", "eu-central-1", "ap-southeast-3")
    tidy(aws, edge, ARBEL, regions=("eu-west-1",))
    recorder(aws, ARBEL, "eu-central-1", recording=False)
    arbel = account("arbel", ARBEL, regions=regions)

    result = await run_check(clients, customer(arbel), "arbel", "hygiene")

    assert result.severity == Severity.WARN
    config = {line["region"]: line for line in lines(result, "config")}
    assert {region: line["severity"] for region, line in config.items()} == {
        "eu-west-1": "ok",
        "eu-central-1": "warn",
        "ap-southeast-3": "warn",
    }
    assert config["eu-central-1"]["summary"] == (
        "AWS Config recorder default is not recording in eu-central-1: AWS Config → Settings → "
        "Recorder → Start recording"
    )
    assert config["ap-southeast-3"]["summary"] == (
        "AWS Config is not recording in ap-southeast-3 (no recorder): AWS Config → Get started "
        "(1-click setup) in this region"
    )
    assert config["ap-southeast-3"]["fingerprint"] == (
        f"hygiene:{ARBEL}:ap-southeast-3:config:config"
    )
    assert result.details["config"] == {
        "eu-west-1": "recording",
        "eu-central-1": "stopped",
        "ap-southeast-3": "none",
    }
    assert result.details["counts"] == {"ok": 5, "warn": 1}  # one control, two regions
    assert result.summary.endswith("; and 1 more — 6 controls: 1 warning")
    assert edge.calls("config:DescribeConfigurationRecorderStatus", account=ARBEL) == 3
    assert edge.calls("iam:GetAccountSummary", account=ARBEL) == 1  # global: asked once


async def test_it_warns_on_a_failing_recorder_and_ignores_service_linked_ones(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    regions = ("eu-west-1", "eu-central-1")
    tidy(aws, edge, ARBEL)
    since = datetime.now(UTC).timestamp()
    linked = {"name": "AWSConfigurationRecorderForSecurityHub", "recording": True,
              "servicePrincipal": "securityhub.amazonaws.com", "lastStatus": "SUCCESS"}  # fmt: skip
    failing = {"name": "default", "recording": True, "lastStatus": "FAILURE",
               "lastErrorCode": "AccessDeniedException", "lastStartTime": since,
               "lastErrorMessage": "The role cannot write to the bucket"}  # fmt: skip
    answers = {"eu-west-1": [failing], "eu-central-1": [linked]}
    for region, recorders in answers.items():
        edge.answer(
            "config",
            "DescribeConfigurationRecorderStatus",
            [{"json": {"ConfigurationRecordersStatus": recorders}}],
            account_id=ARBEL,
            region=region,
        )

    result = await run_check(
        clients, customer(account("arbel", ARBEL, regions=regions)), "arbel", "hygiene"
    )

    config = {line["region"]: line["summary"] for line in lines(result, "config")}
    assert config == {
        "eu-west-1": "AWS Config recorder default in eu-west-1 is failing (The role cannot write "
        "to the bucket): check its IAM role and delivery channel (AWS Config → Settings)",
        "eu-central-1": "AWS Config is not recording in eu-central-1 (no recorder): AWS Config → "
        "Get started (1-click setup) in this region",
    }
    assert result.details["config"] == {"eu-west-1": "failing", "eu-central-1": "none"}


# -- S3 Block Public Access --------------------------------------------------------------------


async def test_it_warns_when_account_level_s3_block_public_access_is_missing_or_partly_off(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    for account_id in (ARBEL, BILLING):
        root(edge, account_id)
        trail(aws, account_id, "all-regions")
        recorder(aws, account_id, REGION)
    public_access_block(aws, BILLING, RestrictPublicBuckets=False, BlockPublicPolicy=False)
    who = customer(account("arbel", ARBEL), account("billing", BILLING))

    arbel = await run_check(clients, who, "arbel", "hygiene")
    billing = await run_check(clients, who, "billing", "hygiene")

    where = "S3 → Block Public Access settings for this account → Edit → Block all public access"
    assert arbel.severity == Severity.WARN
    assert arbel.summary == (
        f"no account-level S3 Block Public Access: {where} — 6 controls: 1 warning"
    )
    assert problems(billing) == {
        "s3_public_access": "account-level S3 Block Public Access is partly off "
        f"(BlockPublicPolicy, RestrictPublicBuckets): {where}"
    }
    assert billing.details["s3_public_access"]["BlockPublicAcls"] is True


# -- settings and skipped controls ---------------------------------------------------------------


async def test_it_skips_the_controls_an_account_deliberately_does_without(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    root(edge, ARBEL, mfa=False)  # no root credentials at all: an organization manages root
    trail(aws, ARBEL, "all-regions")
    public_access_block(aws, ARBEL)
    skip = {"hygiene": {"skip": ["root_mfa", "config"]}}

    result = await run_check(
        clients, customer(account("arbel", ARBEL), checks=skip), "arbel", "hygiene"
    )

    assert result.severity == Severity.OK
    assert result.summary == "4 controls OK (skipped: root_mfa, config)"
    assert result.details["controls"] == 4
    assert {line["control"] for line in lines(result)} == {
        "root_keys", "access_keys", "cloudtrail", "s3_public_access"
    }  # fmt: skip
    assert edge.calls("config:DescribeConfigurationRecorderStatus") == 0


async def test_it_is_skipped_when_every_control_is(edge: Edge, clients: AwsClients) -> None:
    every = {"hygiene": {"skip": list(CONTROLS)}}

    result = await run_check(
        clients, customer(account("arbel", ARBEL), checks=every), "arbel", "hygiene"
    )

    assert (result.severity, result.summary) == (
        Severity.SKIPPED,
        "every control skipped (checks.hygiene.skip)",
    )
    assert result.details["controls"] == 0
    assert edge.calls(account=ARBEL) == 0


def test_it_documents_its_defaults_and_refuses_what_it_cannot_use() -> None:
    defaults = HygieneSettings()

    assert (defaults.key_age_days, defaults.unused_days, defaults.skip) == (90, 90, ())
    with pytest.raises(
        ValidationError, match=re.escape('"root-mfa" is not a control. Did you mean "root_mfa"?')
    ):
        HygieneSettings.model_validate({"skip": ["root-mfa"]})
    with pytest.raises(ValidationError, match="skip takes root_mfa, root_keys, access_keys"):
        HygieneSettings.model_validate({"skip": ["guardduty"]})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        HygieneSettings.model_validate({"key_age_days": 0})
    with pytest.raises(ValidationError, match="key_age"):
        HygieneSettings.model_validate({"key_age": 30})


# -- could not look ------------------------------------------------------------------------------


async def test_access_denied_names_the_iam_action_and_is_not_retried(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL)
    edge.inject(error="access-denied", operations=["iam:GenerateCredentialReport"])

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "hygiene")

    assert result.severity == Severity.ERROR
    assert result.summary.startswith(f"arbel ({ARBEL}): access denied for iam:")
    assert "(IAM action iam:GenerateCredentialReport)" in result.summary
    assert result.details["call"] == "iam:GenerateCredentialReport"
    assert edge.calls("iam:GenerateCredentialReport", account=ARBEL) == 1


async def test_access_denied_on_s3_block_public_access_names_the_s3_action(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL)
    edge.inject(
        error="AccessDenied",
        status=403,
        message="Access Denied",
        operations=["s3control:GetPublicAccessBlock"],
    )

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "hygiene")

    assert result.severity == Severity.ERROR
    assert "(IAM action s3:GetAccountPublicAccessBlock)" in result.summary
    assert "s3control:GetPublicAccessBlock" not in result.summary
    assert result.details["call"] == "s3:GetAccountPublicAccessBlock"


async def test_the_documented_iam_actions_are_enough(
    aws: str, edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto checks IAM for every call but S3 Control's (it refuses that one whatever the policy
    says, unlike AWS): that control is skipped here. The edge cannot tell the account of a
    request moto checks the signature of: the root answer is for every account."""
    tidy(aws, edge, ARBEL)
    summary = account_summary_xml(mfa=True, root_keys=False)
    edge.answer("iam", "GetAccountSummary", [{"xml": summary}])
    grant(aws, ARBEL, [action for action in IAM_ACTIONS if not action.startswith("s3:")])
    for key, value in hub_principal(aws, may_assume=[role_arn(ARBEL)]).items():
        monkeypatch.setenv(key, value)
    who = customer(account("arbel", ARBEL), checks={"hygiene": {"skip": ["s3_public_access"]}})
    clients = AwsClients()
    try:
        with iam_enforced(aws):
            result = await run_check(clients, who, "arbel", "hygiene")
    finally:
        clients.close()

    assert result.severity == Severity.OK, result.summary


async def test_it_rides_out_throttling(aws: str, edge: Edge, clients: AwsClients) -> None:
    tidy(aws, edge, ARBEL)
    edge.inject(error="throttling", operations=["cloudtrail:DescribeTrails"], times=2)

    result = await run_check(clients, customer(account("arbel", ARBEL)), "arbel", "hygiene")

    assert result.severity == Severity.OK, result.summary
    assert edge.calls("cloudtrail:DescribeTrails", account=ARBEL) == 3


# -- wiring ------------------------------------------------------------------------------------


def test_it_declares_every_client_it_calls() -> None:
    two = account("arbel", ARBEL, regions=("eu-west-1", "eu-central-1"))

    assert REGISTRY["hygiene"].clients(two) == [
        ("eu-west-1", "iam"),
        ("eu-west-1", "cloudtrail"),
        ("eu-west-1", "s3control"),
        ("eu-west-1", "config"),
        ("eu-central-1", "config"),
    ]


def test_its_lines_open_where_the_fix_is() -> None:
    iam = "https://us-east-1.console.aws.amazon.com/iam/home"
    assert console_url(REGION, "root", {}) == f"{iam}#/security_credentials"
    assert console_url(REGION, "user/ci-deploy", {}) == (
        f"{iam}#/users/details/ci-deploy?section=security_credentials"
    )
    assert console_url("eu-central-1", "config", {}) == (
        "https://eu-central-1.console.aws.amazon.com/config/home?region=eu-central-1#/dashboard"
    )
    assert console_url(REGION, "cloudtrail", {}).endswith(
        "/cloudtrail/home?region=eu-west-1#/trails"
    )
    assert console_url(REGION, "s3-block-public-access", {}) == (
        "https://s3.console.aws.amazon.com/s3/settings?region=eu-west-1"
    )
    assert console_url(REGION, "*", {}) == f"{iam}#/home"


async def test_two_accounts_are_looked_at_side_by_side(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    tidy(aws, edge, ARBEL)
    root(edge, BILLING, mfa=False)
    who = customer(account("arbel", ARBEL), account("billing", BILLING))

    arbel, billing = await asyncio.gather(
        run_check(clients, who, "arbel", "hygiene"), run_check(clients, who, "billing", "hygiene")
    )

    assert arbel.severity == Severity.OK
    assert billing.severity == Severity.CRIT
    assert set(problems(billing)) == {"root_mfa", "cloudtrail", "config", "s3_public_access"}


async def test_the_demo_estate_has_something_for_it_to_find(
    aws: str, edge: Edge, clients: AwsClients
) -> None:
    seed_hygiene.seed(aws, edge, datetime.now(UTC))
    demo = seed_hygiene.REGION
    who = customer(
        account("prod", seed_hygiene.PROD, regions=(demo,)),
        account("staging", seed_hygiene.STAGING, regions=(demo,)),
        account("analytics", seed_hygiene.ANALYTICS, regions=(demo, "us-east-1")),
    )

    prod, staging, analytics = [
        await run_check(clients, who, alias, "hygiene")
        for alias in ("prod", "staging", "analytics")
    ]

    assert (prod.severity, set(problems(prod))) == (Severity.WARN, {"user/ci-deploy"})
    assert staging.severity == Severity.CRIT
    assert set(problems(staging)) == {"root_mfa", "user/old-etl", "config", "s3_public_access"}
    assert (analytics.severity, analytics.details["config"]) == (
        Severity.WARN,
        {demo: "recording", "us-east-1": "none"},
    )
