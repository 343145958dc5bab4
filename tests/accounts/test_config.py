"""``organization:`` in a customer's YAML: what loads, and one message per mistake naming the
file and line and saying what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import EnvironmentInvalid, Settings
from tests.app.test_config import problems, write

ORG_ONLY = """\
id: acme
name: Acme
slack: {channel: C0123456789}
organization:
  role_arn: arn:aws:iam::999988887777:role/MonitoringOrgReader
  external_id: acme-monitoring
  include_ous: [ou-ab12-prod, r-ab12]
  exclude_accounts: ["111100002222"]
  alias_from_tag: monitoring-alias
  defaults: {regions: [ap-southeast-3], checks: [alarms]}
"""


def test_a_customer_may_have_only_an_organization(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", ORG_ONLY)

    assert problems(tmp_path) == []


def test_each_organization_mistake_is_said_on_its_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        """\
        id: acme
        name: Acme
        organization:
          role_arn: arn:aws:iam::99998888777:role/Reader
          include_ous: [prod]
          exclude_accounts: [111100002222]
          account_role: arn:aws:iam::111100002222:role/MonitoringReadOnly
          defaults: {regions: [], checks: [alarm]}
        """,
    )

    assert problems(tmp_path) == [
        'acme.yaml:4: organization.role_arn: "arn:aws:iam::99998888777:role/Reader" is not a '
        "role ARN; write arn:aws:iam::<12-digit account id>:role/<name>",
        'acme.yaml:5: organization.include_ous[0]: "prod" is not an organizational unit id '
        "(ou-ab12-cdef3456) or the root's id (r-ab12); copy it from AWS Organizations → AWS "
        "accounts",
        "acme.yaml:6: organization.exclude_accounts[0]: write the account id in quotes, "
        '"111100002222", so YAML keeps it as text with every digit',
        'acme.yaml:7: organization.account_role: "arn:aws:iam::111100002222:role/'
        'MonitoringReadOnly" is not a role name; write the name alone (at most 64 letters, '
        "digits and +=,.@_-), such as MonitoringReadOnly, not its ARN",
        "acme.yaml:8: organization.defaults.checks[0]: "
        'unknown check "alarm". Did you mean "alarms"? The checks are '
        "backup, rds, alarms, budget, http, health, certs, security, cost, hygiene.",
        "acme.yaml:8: organization.defaults.regions: list at least one region, for example "
        "[ap-southeast-3]",
    ]


def test_neither_accounts_nor_an_organization_says_to_add_one(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", "id: acme\nname: Acme\n")

    assert problems(tmp_path) == [
        "acme.yaml:1: accounts: list at least one account, or add organization: to discover "
        "them from AWS Organizations (docs/organizations.md)"
    ]


def test_suppressions_and_schedules_may_name_what_discovered_accounts_run(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        ORG_ONLY
        + """\
accounts:
  - {id: acme-listed, name: Listed, account_id: "123456789012", regions: [eu-west-1]}
schedules:
  - {name: morning, cron: "0 7 * * *", checks: [alarms]}
suppress:
  - {check: alarms, account: pay-prod, reason: a discovered account's alias}
""",
    )

    assert problems(tmp_path) == []


def test_a_suppression_may_not_name_another_customers_account_even_with_an_organization(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "acme.yaml",
        ORG_ONLY
        + """\
accounts:
  - {id: acme-listed, name: Listed, account_id: "123456789012", regions: [eu-west-1]}
suppress:
  - {check: alarms, account: beta-prod, reason: not ours}
""",
    )
    write(
        tmp_path,
        "beta.yaml",
        'id: beta\nname: Beta\naccounts:\n  - {id: beta-prod, name: P, account_id: "210987654321", '
        "regions: [eu-west-1]}\n",
    )

    [problem] = problems(tmp_path)
    assert problem.startswith('acme.yaml:14: suppress[0].account: "beta-prod" is an account of '
                              "customer beta, not of acme")  # fmt: skip


@pytest.mark.parametrize("value", ["-1", "169", "six", "nan"])
def test_a_bad_sync_interval_says_what_to_write(value: str) -> None:
    with pytest.raises(EnvironmentInvalid) as refused:
        Settings.from_env(HUB_ORG_SYNC_HOURS=value)

    assert refused.value.problems == [
        "HUB_ORG_SYNC_HOURS: use hours from 0 (no automatic sync; `mhub accounts sync` still "
        "works) to 168 (a week), such as 6"
    ]


def test_the_sync_interval_is_6_hours_unless_told() -> None:
    assert Settings.from_env().org_sync_hours == 6
    assert Settings.from_env(HUB_ORG_SYNC_HOURS="0").org_sync_hours == 0
