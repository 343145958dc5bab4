"""Console links: each finding opens its resource's page in the AWS console, in the right account
and region, through the customer's IAM Identity Center portal or a switch-role link; and the
``console:`` block that says which is validated like the rest of the file."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app.config import Customer
from app.loader import check_config, load_catalog
from checks import kinds
from checks.console import DESTINATIONS, destination, link

PORTAL = {"sso_start_url": "https://acme.awsapps.com/start", "permission_set": "ReadOnlyAccess"}
SWITCH = {"switch_role": "OpsReadOnly"}
RDS_PAGE = (
    "https://ap-southeast-3.console.aws.amazon.com/rds/home?region=ap-southeast-3"
    "#database:id=shop-db;is-cluster=false"
)


def acme(console: dict[str, Any] | None) -> Customer:
    return Customer.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "accounts": [
                {
                    "id": "acme-prod",
                    "name": "Acme Production",
                    "account_id": "123456789012",
                    "regions": ["ap-southeast-3", "us-east-1"],
                },
            ],
            "console": console,
        }
    )


def sso_destination(url: str) -> str:
    """The console page an access-portal link opens (its ``destination``, decoded)."""
    fragment = urlsplit(url).fragment
    [page] = parse_qs(fragment.split("?", 1)[1], strict_parsing=True)["destination"]
    return page


# --- each check's pages -----------------------------------------------------------------------


def test_every_check_kind_says_where_its_resources_are_in_the_console() -> None:
    assert list(DESTINATIONS) == list(kinds.NAMES)


@pytest.mark.parametrize(
    ("check", "region", "resource_id", "line", "page"),
    [
        ("rds", "ap-southeast-3", "shop-db", None, RDS_PAGE),
        (
            "rds",
            "eu-west-1",
            "",
            None,
            "https://eu-west-1.console.aws.amazon.com/rds/home?region=eu-west-1#databases:",
        ),
        (
            "alarms",
            "ap-southeast-3",
            "shop-5xx",
            None,
            "https://ap-southeast-3.console.aws.amazon.com/cloudwatch/home?region=ap-southeast-3"
            "#alarmsV2:alarm/shop-5xx",
        ),
        (
            "alarms",
            "ap-southeast-3",
            "*",
            None,
            "https://ap-southeast-3.console.aws.amazon.com/cloudwatch/home?region=ap-southeast-3"
            "#alarmsV2:",
        ),
        (
            "backup",
            "ap-southeast-3",
            "shop-db",
            {"id": "shop-db", "job_id": "D48A6E5C-1B2F-4C3D-9E8F-0123456789AB", "vault": "Default"},
            "https://ap-southeast-3.console.aws.amazon.com/backup/home?region=ap-southeast-3"
            "#/jobs/backup/details/D48A6E5C-1B2F-4C3D-9E8F-0123456789AB",
        ),
        (
            "backup",
            "ap-southeast-3",
            "shop-db",
            None,
            "https://ap-southeast-3.console.aws.amazon.com/backup/home?region=ap-southeast-3"
            "#/jobs/backup",
        ),
        (
            "backup",
            "ap-southeast-3",
            "",
            None,
            "https://ap-southeast-3.console.aws.amazon.com/backup/home?region=ap-southeast-3"
            "#/backupplan",
        ),
        (
            "budget",
            "us-east-1",
            "monthly",
            None,
            "https://us-east-1.console.aws.amazon.com/costmanagement/home"
            "#/budgets/details?name=monthly",
        ),
        (
            "budget",
            "us-east-1",
            "",
            None,
            "https://us-east-1.console.aws.amazon.com/costmanagement/home#/budgets",
        ),
        ("http", "global", "api", None, None),
    ],
    ids=[
        "rds-instance",
        "rds-whole-result",
        "alarm",
        "alarms-whole-result",
        "backup-job",
        "backup-resource-without-its-line",
        "backup-no-jobs-at-all",
        "budget",
        "budgets-whole-result",
        "http-is-not-aws",
    ],
)
def test_it_knows_each_resource_types_console_page(
    check: str, region: str, resource_id: str, line: dict[str, Any] | None, page: str | None
) -> None:
    assert destination(check, region, resource_id, line) == page


def test_it_escapes_a_resource_id_inside_the_console_page() -> None:
    assert destination("alarms", "eu-west-1", "web 5xx / p99 #1 & more?") == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#alarmsV2:alarm/web%205xx%20%2F%20p99%20%231%20%26%20more%3F"
    )
    assert destination("budget", "us-east-1", "Team A: 50% & up") == (
        "https://us-east-1.console.aws.amazon.com/costmanagement/home"
        "#/budgets/details?name=Team%20A%3A%2050%25%20%26%20up"
    )


@pytest.mark.parametrize(
    "region",
    ["evil.example.com/x", "ap-southeast-3.evil", "", "global", "us-gov-west-1", "cn-north-1"],
)
def test_it_links_only_to_commercial_aws_regions(region: str) -> None:
    assert destination("rds", region, "shop-db") is None


# --- signing in -------------------------------------------------------------------------------


def test_it_signs_in_through_the_access_portal_with_the_permission_set() -> None:
    url = link(acme(PORTAL), "acme-prod", "rds", "ap-southeast-3", "shop-db")

    assert url == (
        "https://acme.awsapps.com/start/#/console?account_id=123456789012"
        "&role_name=ReadOnlyAccess&destination=https%3A%2F%2Fap-southeast-3.console.aws.amazon"
        ".com%2Frds%2Fhome%3Fregion%3Dap-southeast-3%23database%3Aid%3Dshop-db%3Bis-cluster"
        "%3Dfalse"
    )
    assert sso_destination(url) == RDS_PAGE


def test_it_opens_the_switch_role_form_for_the_account() -> None:
    url = link(acme(SWITCH), "acme-prod", "rds", "ap-southeast-3", "shop-db")

    assert url == (
        "https://signin.aws.amazon.com/switchrole?account=123456789012&roleName=OpsReadOnly"
        "&displayName=acme-prod"
    )


@pytest.mark.parametrize(
    ("check", "region", "resource_id", "line"),
    [
        ("rds", "ap-southeast-3", "shop-db", None),
        ("alarms", "us-east-1", "etl-lag", None),
        ("backup", "ap-southeast-3", "shop-db", {"job_id": "D48A6E5C"}),
        ("budget", "us-east-1", "monthly", None),
    ],
)
def test_it_opens_each_checks_page_signed_in_to_the_right_account(
    check: str, region: str, resource_id: str, line: dict[str, Any] | None
) -> None:
    url = link(acme(PORTAL), "acme-prod", check, region, resource_id, line)

    assert url is not None
    assert parse_qs(urlsplit(url).fragment.split("?", 1)[1])["account_id"] == ["123456789012"]
    assert sso_destination(url) == destination(check, region, resource_id, line)


def test_it_encodes_a_destination_that_needs_escaping_twice_over() -> None:
    name = "web 5xx / p99 #1 & more?"

    url = link(acme(PORTAL), "acme-prod", "alarms", "us-east-1", name)

    assert url is not None
    assert url.endswith(
        "&destination=https%3A%2F%2Fus-east-1.console.aws.amazon.com%2Fcloudwatch%2Fhome"
        "%3Fregion%3Dus-east-1%23alarmsV2%3Aalarm%2Fweb%25205xx%2520%252F%2520p99%2520%25231"
        "%2520%2526%2520more%253F"
    )
    assert sso_destination(url) == destination("alarms", "us-east-1", name)
    assert " " not in url and url.count("#") == 1 and url.count("?") == 1


def test_it_opens_a_finding_without_a_region_in_the_accounts_first_region() -> None:
    url = link(acme(PORTAL), "acme-prod", "backup", "", "")

    assert url is not None
    assert sso_destination(url) == (
        "https://ap-southeast-3.console.aws.amazon.com/backup/home?region=ap-southeast-3"
        "#/backupplan"
    )


@pytest.mark.parametrize(
    ("console", "account", "check", "region"),
    [
        (None, "acme-prod", "rds", "ap-southeast-3"),
        (PORTAL, "acme-prod", "http", "global"),
        (SWITCH, "acme-prod", "http", "global"),
        (PORTAL, "acme-gone", "rds", "ap-southeast-3"),
        (PORTAL, "acme-prod", "retired-check", "ap-southeast-3"),
        (PORTAL, "acme-prod", "rds", "evil.example.com/x"),
        (SWITCH, "acme-prod", "rds", "cn-north-1"),
    ],
    ids=[
        "no-console-configured",
        "http-with-the-portal",
        "http-with-switch-role",
        "an-account-no-longer-configured",
        "a-check-kind-no-longer-known",
        "a-region-that-is-not-one",
        "outside-the-commercial-partition",
    ],
)
def test_it_gives_no_link_when_there_is_nowhere_to_go(
    console: dict[str, Any] | None, account: str, check: str, region: str
) -> None:
    assert link(acme(console), account, check, region, "shop-db") is None


# --- the console: block -----------------------------------------------------------------------

# Lines 1-7; the console block under test starts on line 8.
ACME = """\
id: acme
name: Acme
accounts:
  - id: acme-prod
    name: Acme Production
    account_id: "123456789012"
    regions: [ap-southeast-3]
"""


def problems(config_dir: Path, console: str) -> list[str]:
    path = config_dir / "customers" / "acme.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ACME + textwrap.dedent(console), encoding="utf-8")
    _, found = check_config(config_dir)
    return [f"{p.path.name}:{p.line}: {p.message}" for p in found]


@pytest.mark.parametrize(
    "written",
    [
        "https://acme.awsapps.com/start",
        "https://acme.awsapps.com/start/",
        "https://acme.awsapps.com/start/#/",
        "https://d-9067642ac7.awsapps.com/start#",
    ],
)
def test_it_reads_the_access_portal_url_as_the_portal_shows_it(
    tmp_path: Path, written: str
) -> None:
    portal = "https://acme.awsapps.com/start" if "acme" in written else written.rstrip("#")
    assert (
        problems(
            tmp_path, f"console:\n  sso_start_url: {written}\n  permission_set: ReadOnlyAccess\n"
        )
        == []
    )

    console = load_catalog(tmp_path).customer("acme").console

    assert console is not None
    assert (console.sso_start_url, console.permission_set) == (portal, "ReadOnlyAccess")


def test_it_reads_a_switch_role_block(tmp_path: Path) -> None:
    assert problems(tmp_path, "console: {switch_role: OpsReadOnly}\n") == []

    console = load_catalog(tmp_path).customer("acme").console

    assert console is not None and console.switch_role == "OpsReadOnly"


def test_it_gives_no_console_links_without_a_console_block(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == []

    assert load_catalog(tmp_path).customer("acme").console is None


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            """\
            console:
              sso_start_url: https://acme.awsapps.com/start
              permission_set: ReadOnlyAccess
              switch_role: OpsReadOnly
            """,
            "acme.yaml:11: console.switch_role: use either sso_start_url with permission_set, "
            "or switch_role, not both",
        ),
        (
            """\
            console:
              sso_start_url: https://acme.awsapps.com/start
            """,
            "acme.yaml:9: console.sso_start_url: add permission_set, the permission set to open "
            "each account with (such as ReadOnlyAccess)",
        ),
        (
            """\
            console:
              permission_set: ReadOnlyAccess
            """,
            "acme.yaml:9: console.permission_set: permission_set is only used with "
            "sso_start_url; add sso_start_url",
        ),
        (
            """\
            console: {}
            """,
            "acme.yaml:8: console: set sso_start_url and permission_set, or switch_role; "
            "or remove console to show no console links",
        ),
        (
            """\
            console:
              sso_start_url: http://acme.awsapps.com/start
              permission_set: ReadOnlyAccess
            """,
            'acme.yaml:9: console.sso_start_url: "http://acme.awsapps.com/start" is not an AWS '
            "access portal URL; write https://<name>.awsapps.com/start as IAM Identity Center "
            "shows it under Settings → AWS access portal URL",
        ),
        (
            """\
            console:
              sso_start_url: https://acme.awsapps.com/start
              permission_set: Read Only
            """,
            'acme.yaml:10: console.permission_set: "Read Only" is not a permission set name; '
            "write its name as the access portal shows it (at most 32 letters, digits and "
            "+=,.@_-), such as ReadOnlyAccess",
        ),
        (
            """\
            console:
              switch_role: arn:aws:iam::123456789012:role/OpsReadOnly
            """,
            'acme.yaml:9: console.switch_role: "arn:aws:iam::123456789012:role/OpsReadOnly" is '
            "not a role name; write the name alone (at most 64 letters, digits and +=,.@_-), "
            "such as OpsReadOnly, not its ARN or path",
        ),
        (
            """\
            console:
              switch_roel: OpsReadOnly
            """,
            'acme.yaml:9: console.switch_roel: unknown key; did you mean "switch_role"?',
        ),
    ],
    ids=[
        "both-ways",
        "portal-without-permission-set",
        "permission-set-without-portal",
        "empty",
        "not-the-portal-url",
        "bad-permission-set",
        "role-arn-for-a-name",
        "misspelt-key",
    ],
)
def test_it_points_at_each_console_mistake_with_file_and_line(
    tmp_path: Path, block: str, expected: str
) -> None:
    assert problems(tmp_path, block) == [expected]
