"""``mhub accounts sync`` / ``list``, ``mhub run`` on a discovered alias and ``mhub config
check`` on what the last sync stored, as a person runs them: subprocesses against moto."""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.sandbox import moto
from tests.accounts.support import ORG_ROLE, Org
from tests.accounts.test_serving import alarm_in
from tests.conftest import mhub

ACME = """\
id: acme
name: Acme
timezone: Asia/Jakarta
slack: {{channel: C0ACME}}
{accounts}organization:
  role_arn: {role}
  external_id: acme-monitoring
  include_ous: [{ous}]
  defaults: {{regions: [us-east-1], checks: [alarms]}}
"""


PAIRS = (("prod-web", "prod-payments"), ("prod-payments", "prod-web"))


def environment(tmp_path: Path, org: Org, ous: str, accounts: str = "") -> dict[str, str]:
    customers = tmp_path / "config" / "customers"
    customers.mkdir(parents=True, exist_ok=True)
    text = ACME.format(accounts=accounts, role=ORG_ROLE, ous=ous)
    (customers / "acme.yaml").write_text(text)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "HUB_"))},
        **moto.FAKE_ENV,
        "AWS_ENDPOINT_URL": org.url,
        "HUB_CONFIG_DIR": str(tmp_path / "config"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
    }


def test_sync_prints_what_it_found_and_run_checks_a_discovered_account(
    tmp_path: Path, org: Org
) -> None:
    env = environment(tmp_path, org, org.ous["prod"])
    alarm_in(org, "Prod Web", "web-cpu-high")

    synced = mhub(env, "accounts", "sync")
    again = mhub(env, "accounts", "sync", "acme", "--json")
    ran = mhub(env, "run", "prod-web", "--json")
    listed = mhub(env, "customers", "--json")
    found = mhub(env, "findings", "list", "prod-web", "--json")

    assert synced.returncode == 0, synced.stderr
    lines = synced.stdout.splitlines()
    assert lines[0].startswith("acme (Acme): organization o-")
    assert "2 accounts monitored (synced " in lines[0] and lines[0].endswith(" WIB)")
    assert f"  prod-web                 {org.accounts['Prod Web']}  Prod Web  [us-east-1]" in lines
    [changed] = [line for line in lines if line.startswith("  changed: ")]
    assert changed in {f"  changed: 2 new: {a}, {b}" for a, b in PAIRS}  # in account id order
    assert again.returncode == 0
    [told] = json.loads(again.stdout)["customers"]
    assert (told["new"], told["gone"], told["suspended"]) == ([], [], [])
    assert ran.returncode == 1, ran.stderr  # a crit finding, as for any account
    assert "web-cpu-high" in ran.stdout
    [acme] = json.loads(listed.stdout)["customers"]
    assert {a["id"] for a in acme["accounts"]} == {"prod-web", "prod-payments"}
    assert found.returncode == 1, found.stderr  # the open finding of the discovered account
    [finding] = json.loads(found.stdout)["findings"]
    assert finding["account"] == "prod-web" and "web-cpu-high" in json.dumps(finding)


def test_list_shows_every_account_and_where_it_stands(tmp_path: Path, org: Org) -> None:
    env = environment(tmp_path, org, org.ous["prod"])
    mhub(env, "accounts", "sync")
    org.suspend("Prod Payments")
    mhub(env, "accounts", "sync")

    listed = mhub(env, "accounts", "list", "--json")

    assert listed.returncode == 0, listed.stderr
    [acme] = json.loads(listed.stdout)["customers"]
    assert {a["alias"]: a["state"] for a in acme["accounts"]} == {
        "prod-web": "active",
        "prod-payments": "suspended",
    }


def test_a_failed_sync_exits_2_and_config_check_says_so(tmp_path: Path, org: Org) -> None:
    env = environment(tmp_path, org, "ou-zzzz-zzzzzzzz")

    synced = mhub(env, "accounts", "sync")
    checked = mhub(env, "config", "check")

    assert synced.returncode == 2
    assert synced.stdout.startswith(
        "acme (Acme): sync failed: include_ous: ou-zzzz-zzzzzzzz is not an OU (or the root) of "
        "organization o-"
    )
    assert checked.returncode == 1
    assert (
        "acme: the last organization sync failed: include_ous: ou-zzzz-zzzzzzzz" in checked.stderr
    )


def test_config_check_says_a_listed_account_wins_over_the_same_one_discovered(
    tmp_path: Path, org: Org
) -> None:
    web = org.accounts["Prod Web"]
    listed = f'accounts:\n  - {{id: web, name: Web, account_id: "{web}", regions: [us-east-1]}}\n'
    env = environment(tmp_path, org, org.ous["prod"], listed)
    mhub(env, "accounts", "sync")

    checked = mhub(env, "config", "check")

    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[0] == (
        f"note: acme: account {web} (Prod Web) is listed under accounts: as web and is in the "
        "organization too; the listed one is used (explicit wins). Remove it from accounts: to "
        "use the discovered one, or add it to exclude_accounts"
    )


def test_sync_of_a_customer_without_an_organization_says_what_to_add(
    tmp_path: Path, org: Org
) -> None:
    env = environment(tmp_path, org, org.ous["prod"])
    (tmp_path / "config" / "customers" / "beta.yaml").write_text(
        'id: beta\nname: Beta\naccounts:\n  - {id: b1, name: B1, account_id: "123412341234", '
        "regions: [us-east-1]}\n"
    )

    result = mhub(env, "accounts", "sync", "beta")

    assert result.returncode == 2
    assert result.stderr == (
        "error: beta has no organization: to discover its accounts add organization: to its "
        "file (docs/organizations.md).\n"
    )
