"""Account hygiene in the demo estate, and the answers the edge gives for it.

moto keeps CloudTrail trails, AWS Config recorders and S3 Block Public Access per account, and
they are planted there. Two IAM answers it cannot give are the edge's (:meth:`Edge.answer`):
``GetAccountSummary`` (moto always says the root user has no MFA and no access keys) and
``GetCredentialReport`` (moto dates every key now and has no root row), built here:

- shop-prod is tidy but for a CI user's access key rotated 200 days ago (a warning);
- shop-staging's root user has no MFA (critical), an ETL user's key was never used in the 120
  days since it was made, its AWS Config recorder is stopped and it has no account-level S3
  Block Public Access (warnings);
- analytics records with AWS Config in ap-southeast-3 but not in us-east-1 (a warning).

Without an edge, moto answers the IAM calls itself: every root user then lacks MFA.

S3 Control puts the account id in front of the endpoint's host (``111111111111.127.0.0.1``),
which nothing resolves: the seeding client reaches moto as its HTTP proxy, so the host is
never looked up on this side.

The builders (:func:`account_summary_xml`, :func:`credential_report_xml`, :func:`user_row`,
:func:`root_row`) are what the tests seed with too.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config

from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session

PROD, STAGING, ANALYTICS = "111111111111", "222222222222", "333333333333"
REGION = "ap-southeast-3"
IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
KEY_COLUMNS = ("active", "last_rotated", "last_used_date", "last_used_region", "last_used_service")
REPORT_COLUMNS = (
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    *(f"access_key_{slot}_{column}" for slot in (1, 2) for column in KEY_COLUMNS),
    *(f"cert_{slot}_{column}" for slot in (1, 2) for column in ("active", "last_rotated")),
)
"""The credential report's columns, as AWS writes them."""
ALL_BLOCKED = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
)


@dataclass(frozen=True)
class Key:
    """One access key of a credential report row."""

    rotated: datetime
    used: datetime | None = None
    active: bool = True


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else "N/A"


def user_row(
    account_id: str, user: str, *keys: Key, created: datetime | None = None
) -> dict[str, str]:
    """A credential report row for IAM user ``user`` with up to two access keys."""
    made = created or min((key.rotated for key in keys), default=datetime.now(UTC))
    row = dict.fromkeys(REPORT_COLUMNS, "N/A")
    row.update(
        user=user,
        arn=f"arn:aws:iam::{account_id}:user/{user}",
        user_creation_time=_stamp(made),
        password_enabled="false",
        mfa_active="false",
        cert_1_active="false",
        cert_2_active="false",
    )
    for slot in (1, 2):
        key = keys[slot - 1] if len(keys) >= slot else None
        row[f"access_key_{slot}_active"] = "true" if key and key.active else "false"
        if key is not None:
            row[f"access_key_{slot}_last_rotated"] = _stamp(key.rotated)
            row[f"access_key_{slot}_last_used_date"] = _stamp(key.used)
            row[f"access_key_{slot}_last_used_region"] = REGION if key.used else "N/A"
            row[f"access_key_{slot}_last_used_service"] = "s3" if key.used else "N/A"
    return row


def root_row(account_id: str, created: datetime, *, mfa: bool = True) -> dict[str, str]:
    """The report's ``<root_account>`` row (root's own keys are the account summary's)."""
    row = user_row(account_id, "<root_account>", created=created)
    row.update(
        arn=f"arn:aws:iam::{account_id}:root",
        password_enabled="not_supported",
        password_last_changed="not_supported",
        password_next_rotation="not_supported",
        mfa_active="true" if mfa else "false",
    )
    return row


def credential_report_xml(rows: Iterable[Mapping[str, str]], generated: datetime) -> str:
    """``GetCredentialReport``'s answer holding ``rows`` as AWS's CSV."""
    text = io.StringIO()
    writer = csv.DictWriter(text, REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    content = base64.b64encode(text.getvalue().encode()).decode()
    return (
        f'<GetCredentialReportResponse xmlns="{IAM_XMLNS}"><GetCredentialReportResult>'
        f"<Content>{content}</Content><ReportFormat>text/csv</ReportFormat>"
        f"<GeneratedTime>{_stamp(generated).replace('+00:00', 'Z')}</GeneratedTime>"
        "</GetCredentialReportResult><ResponseMetadata><RequestId>hygiene-report</RequestId>"
        "</ResponseMetadata></GetCredentialReportResponse>"
    )


def account_summary_xml(*, mfa: bool, root_keys: bool, users: int = 0) -> str:
    """``GetAccountSummary``'s answer: root MFA and root access keys as asked."""
    entries = {
        "AccountMFAEnabled": int(mfa),
        "AccountAccessKeysPresent": int(root_keys),
        "AccountSigningCertificatesPresent": 0,
        "Users": users,
        "UsersQuota": 5000,
    }
    body = "".join(
        f"<entry><key>{escape(key)}</key><value>{value}</value></entry>"
        for key, value in entries.items()
    )
    return (
        f'<GetAccountSummaryResponse xmlns="{IAM_XMLNS}"><GetAccountSummaryResult>'
        f"<SummaryMap>{body}</SummaryMap></GetAccountSummaryResult><ResponseMetadata>"
        "<RequestId>hygiene-summary</RequestId></ResponseMetadata></GetAccountSummaryResponse>"
    )


def s3control(moto_url: str, session: boto3.Session) -> Any:
    """An S3 Control client that reaches moto as its HTTP proxy (see the module docstring)."""
    return session.client(
        "s3control", endpoint_url=moto_url, config=Config(proxies={"http": moto_url})
    )


@dataclass(frozen=True)
class Hygiene:
    account_id: str
    mfa: bool
    users: tuple[tuple[str, Key], ...]
    recording: Mapping[str, bool | None]
    """Region → AWS Config recording (True), stopped (False) or not set up (None)."""
    public_access_block: bool


def plan(now: datetime) -> tuple[Hygiene, ...]:
    day = timedelta(days=1)
    return (
        Hygiene(
            PROD,
            mfa=True,
            users=(
                ("ci-deploy", Key(now - 200 * day, now - day)),
                ("backup-sync", Key(now - 30 * day, now - 2 * day)),
            ),
            recording={REGION: True},
            public_access_block=True,
        ),
        Hygiene(
            STAGING,
            mfa=False,
            users=(("old-etl", Key(now - 120 * day)), ("ci-deploy", Key(now - 20 * day, now))),
            recording={REGION: False},
            public_access_block=False,
        ),
        Hygiene(
            ANALYTICS,
            mfa=True,
            users=(("etl-runner", Key(now - 10 * day, now - day)),),
            recording={REGION: True, "us-east-1": None},
            public_access_block=True,
        ),
    )


def seed(moto_url: str, edge: Edge | None, now: datetime) -> None:
    for account in plan(now):
        _plant(moto_url, account)
        if edge is None:
            continue
        rows = [root_row(account.account_id, now - 900 * timedelta(days=1), mfa=account.mfa)]
        rows += [user_row(account.account_id, user, key) for user, key in account.users]
        edge.answer(
            "iam",
            "GetAccountSummary",
            [{"xml": account_summary_xml(mfa=account.mfa, root_keys=False, users=len(rows))}],
            account_id=account.account_id,
        )
        edge.answer(
            "iam",
            "GetCredentialReport",
            [{"xml": credential_report_xml(rows, now)}],
            account_id=account.account_id,
        )


def _plant(moto_url: str, account: Hygiene) -> None:
    session = seed_session(moto_url, account.account_id, REGION)
    iam = session.client("iam", endpoint_url=moto_url)
    for user, _ in account.users:
        iam.create_user(UserName=user)
        iam.create_access_key(UserName=user)
    bucket = f"trail-{account.account_id}"
    session.client("s3", endpoint_url=moto_url).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    trails = session.client("cloudtrail", endpoint_url=moto_url)
    trails.create_trail(Name="all-regions", S3BucketName=bucket, IsMultiRegionTrail=True)
    trails.start_logging(Name="all-regions")
    for region, recording in account.recording.items():
        if recording is None:
            continue
        config = seed_session(moto_url, account.account_id, region).client(
            "config", endpoint_url=moto_url
        )
        config.put_configuration_recorder(
            ConfigurationRecorder={
                "name": "default",
                "roleARN": f"arn:aws:iam::{account.account_id}:role/aws-config",
            }
        )
        config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket})
        if recording:
            config.start_configuration_recorder(ConfigurationRecorderName="default")
    if account.public_access_block:
        s3control(moto_url, session).put_public_access_block(
            AccountId=account.account_id, PublicAccessBlockConfiguration=ALL_BLOCKED
        )
