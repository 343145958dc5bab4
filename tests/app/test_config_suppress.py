"""Suppressions as code: a customer's ``suppress:`` loads into mute rules, and every mistake in
it gets one line naming the file, the line of the offending key and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.config import MAX_REASON
from app.engine.answers import Rule, yaml_rules
from app.loader import ConfigInvalid, check_config, load_catalog

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
"""10:00 on 1 December 2026 in Asia/Jakarta (WIB, UTC+7), the customer's zone."""

# Lines 1-15; the suppressions under test start on line 16.
ACME = """\
id: acme
name: Acme
timezone: Asia/Jakarta
accounts:
  - id: acme-prod
    name: Acme Production
    account_id: "123456789012"
    regions: [ap-southeast-3]
    checks: [rds, alarms]
  - id: acme-staging
    name: Acme Staging
    account_id: "210987654321"
    regions: [ap-southeast-3]
    checks: [rds]
suppress:
"""
SCRATCH = """\
  - check: rds
    account: acme-staging
    region: ap-southeast-3
    resource: "scratch-*"
    reason: Scratch databases run hot by design
    owner: U0123ABCD
    until: 2027-03-31
"""


def write(config_dir: Path, name: str, text: str) -> Path:
    path = config_dir / "customers" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(config_dir: Path, now: datetime = NOW) -> list[str]:
    """Every problem as ``<file name>:<line>: <message>``."""
    _, found = check_config(config_dir, now)
    return [f"{p.path.name}:{p.line}: {p.message}" for p in found]


def suppressing(config_dir: Path, rules: str) -> None:
    write(config_dir, "acme.yaml", ACME + rules)


# --- a valid file -----------------------------------------------------------------------------


def test_it_turns_a_suppression_into_a_mute_rule_that_ends_with_its_day_in_the_customers_zone(
    tmp_path: Path,
) -> None:
    suppressing(tmp_path, SCRATCH)

    catalog, found = check_config(tmp_path, NOW)

    assert found == []
    assert yaml_rules(catalog.customer("acme")) == [
        Rule(
            origin="yaml",
            key="yaml:1",
            check="rds",
            account="acme-staging",
            region="ap-southeast-3",
            resource="scratch-*",
            reason="Scratch databases run hot by design",
            owner="U0123ABCD",
            until=datetime(2027, 3, 31, 17, 0, tzinfo=UTC),  # 2027-04-01 00:00 WIB
            by="U0123ABCD",
        )
    ]


def test_it_fills_in_every_account_every_region_and_every_resource_and_never_ends(
    tmp_path: Path,
) -> None:
    suppressing(tmp_path, "  - {check: alarms, reason: Noisy test alarms}\n")

    [rule] = yaml_rules(load_catalog(tmp_path, NOW).customer("acme"))

    assert (rule.account, rule.region, rule.resource, rule.until) == (None, None, "*", None)


def test_it_reads_a_time_in_the_customers_zone_unless_it_carries_its_own_offset(
    tmp_path: Path,
) -> None:
    suppressing(
        tmp_path,
        """\
  - {check: rds, reason: Until the migration window closes, until: "2027-03-31 18:00"}
  - {check: rds, reason: Until the migration window closes, until: 2027-03-31T18:00:00Z}
""",
    )

    rules = yaml_rules(load_catalog(tmp_path, NOW).customer("acme"))

    assert [r.until for r in rules] == [
        datetime(2027, 3, 31, 11, 0, tzinfo=UTC),
        datetime(2027, 3, 31, 18, 0, tzinfo=UTC),
    ]


def test_it_keeps_a_suppression_whose_day_has_begun_but_not_ended(tmp_path: Path) -> None:
    suppressing(tmp_path, "  - {check: rds, reason: Load test today, until: 2026-12-01}\n")

    assert problems(tmp_path) == []


def test_it_trims_a_reason_written_as_a_block(tmp_path: Path) -> None:
    suppressing(
        tmp_path,
        """\
  - check: rds
    reason: >
      Scratch databases
      run hot by design
""",
    )

    [rule] = yaml_rules(load_catalog(tmp_path, NOW).customer("acme"))

    assert rule.reason == "Scratch databases run hot by design"


def test_it_takes_a_reason_of_exactly_the_longest_length(tmp_path: Path) -> None:
    suppressing(tmp_path, f"  - {{check: rds, reason: {'x' * MAX_REASON}}}\n")

    assert problems(tmp_path) == []


# --- one mistake per file ---------------------------------------------------------------------


def test_it_names_an_unknown_check_and_suggests_the_one_meant(tmp_path: Path) -> None:
    suppressing(tmp_path, SCRATCH.replace("check: rds", "check: rsd"))

    assert problems(tmp_path) == [
        'acme.yaml:16: suppress[0].check: unknown check "rsd". Did you mean "rds"? '
        "The checks are backup, rds, alarms, budget, http, health, certs, security, cost, "
        "hygiene."
    ]


def test_it_names_an_account_this_customer_does_not_have_and_suggests_the_one_meant(
    tmp_path: Path,
) -> None:
    suppressing(tmp_path, SCRATCH.replace("account: acme-staging", "account: acme-stagin"))

    assert problems(tmp_path) == [
        'acme.yaml:17: suppress[0].account: unknown account "acme-stagin". Did you mean '
        '"acme-staging"? This customer\'s accounts are acme-prod, acme-staging; leave account '
        "out to cover them all."
    ]


def test_it_says_whose_account_it_is_when_a_suppression_names_another_customers(
    tmp_path: Path,
) -> None:
    suppressing(tmp_path, SCRATCH.replace("account: acme-staging", "account: globex-prod"))
    write(
        tmp_path,
        "globex.yaml",
        """\
        id: globex
        name: Globex
        accounts:
          - id: globex-prod
            name: Globex Production
            account_id: "333344445555"
            regions: [eu-west-1]
        """,
    )

    assert problems(tmp_path) == [
        'acme.yaml:17: suppress[0].account: "globex-prod" is an account of customer globex, '
        "not of acme; a suppression here quiets only acme's findings — name one of its "
        "accounts (acme-prod, acme-staging), or move the suppression to globex's file"
    ]


def test_it_refuses_a_region_that_is_not_an_aws_region_name(tmp_path: Path) -> None:
    suppressing(tmp_path, SCRATCH.replace("region: ap-southeast-3", "region: ap-southeast3"))

    assert problems(tmp_path) == [
        'acme.yaml:18: suppress[0].region: "ap-southeast3" is not an AWS region name such as '
        "ap-southeast-3"
    ]


def test_it_refuses_a_date_that_has_passed_and_says_when_it_ended(tmp_path: Path) -> None:
    suppressing(tmp_path, SCRATCH.replace("until: 2027-03-31", "until: 2026-11-30"))

    assert problems(tmp_path) == [
        "acme.yaml:22: suppress[0].until: 2026-11-30 has passed (the suppression ended "
        "2026-12-01 00:00 WIB); remove it, or set until to a time still to come"
    ]


def test_it_refuses_a_time_that_has_passed_in_the_customers_zone(tmp_path: Path) -> None:
    # 09:59 WIB is 02:59 UTC, a minute before NOW; read as UTC it would still be to come
    suppressing(tmp_path, SCRATCH.replace("until: 2027-03-31", 'until: "2026-12-01 09:59"'))

    assert problems(tmp_path) == [
        "acme.yaml:22: suppress[0].until: 2026-12-01 09:59 has passed (the suppression ended "
        "2026-12-01 09:59 WIB); remove it, or set until to a time still to come"
    ]


def test_a_suppression_that_has_ended_does_not_take_its_customer_away_when_serving(
    tmp_path: Path,
) -> None:
    """Loading to serve (no clock) keeps the customer; the ended rule is simply not in force.
    ``mhub config check`` reports it (below)."""
    suppressing(tmp_path, SCRATCH.replace("until: 2027-03-31", "until: 2001-01-01"))

    catalog, found = check_config(tmp_path)

    assert found == []
    [rule] = yaml_rules(catalog.customers["acme"])
    assert not rule.active(datetime.now(UTC))


def test_it_explains_how_to_write_an_until_it_cannot_read(tmp_path: Path) -> None:
    suppressing(tmp_path, SCRATCH.replace("until: 2027-03-31", "until: next week"))

    assert problems(tmp_path) == [
        'acme.yaml:22: suppress[0].until: "next week" is not a date; write 2027-03-31 (until '
        'that day ends) or "2027-03-31 18:00", in the customer\'s time zone'
    ]


@pytest.mark.parametrize(
    "reason",
    ['""', '"   "', "", "|\n      \n"],
    ids=["empty", "spaces", "nothing", "blank-block"],
)
def test_it_asks_for_a_reason_that_says_something(tmp_path: Path, reason: str) -> None:
    suppressing(
        tmp_path,
        SCRATCH.replace("reason: Scratch databases run hot by design", f"reason: {reason}"),
    )

    assert problems(tmp_path) == [
        "acme.yaml:20: suppress[0].reason: give a reason, so whoever reads it later knows why "
        "these findings are quiet"
    ]


def test_it_refuses_a_reason_over_the_longest_length(tmp_path: Path) -> None:
    long = "x" * (MAX_REASON + 1)
    suppressing(
        tmp_path, SCRATCH.replace("reason: Scratch databases run hot by design", f"reason: {long}")
    )

    assert problems(tmp_path) == [
        "acme.yaml:20: suppress[0].reason: the reason is 501 characters; keep it to 500 and "
        "link to anything longer"
    ]


@pytest.mark.parametrize("pattern", ['""', '"  "', ""], ids=["empty", "spaces", "nothing"])
def test_it_refuses_an_empty_resource_pattern(tmp_path: Path, pattern: str) -> None:
    suppressing(tmp_path, SCRATCH.replace('resource: "scratch-*"', f"resource: {pattern}"))

    assert problems(tmp_path) == [
        "acme.yaml:19: suppress[0].resource: an empty pattern matches nothing; write a glob "
        'such as "scratch-*", or leave resource out to match every resource'
    ]


def test_it_suggests_the_key_that_was_meant(tmp_path: Path) -> None:
    suppressing(tmp_path, SCRATCH.replace("reason:", "reasn:"))

    assert problems(tmp_path) == [
        "acme.yaml:16: suppress[0].reason: required key is missing; add it",
        'acme.yaml:20: suppress[0].reasn: unknown key; did you mean "reason"?',
    ]


def test_it_lists_the_keys_when_nothing_is_close(tmp_path: Path) -> None:
    suppressing(tmp_path, SCRATCH + "    ticket: OPS-1234\n")

    assert problems(tmp_path) == [
        "acme.yaml:23: suppress[0].ticket: unknown key; the keys here are "
        "check, account, region, resource, reason, owner, until"
    ]


def test_it_wants_the_owner_as_a_slack_id(tmp_path: Path) -> None:
    suppressing(tmp_path, SCRATCH.replace("owner: U0123ABCD", "owner: '@alice'"))

    assert problems(tmp_path) == [
        'acme.yaml:21: suppress[0].owner: "@alice" is not a Slack id; use the id (such as '
        "C0123456789 or U0123ABCD), not a #name or @name"
    ]


# --- all at once, and everywhere the files are read -------------------------------------------


def test_it_reports_every_suppression_problem_at_once_even_beside_other_problems(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "acme.yaml",
        ACME.replace("timezone: Asia/Jakarta", 'timezone: Asia/Jakarta\ncolour: "blue"')
        + """\
  - {check: rds, account: acme-prd, reason: Scratch, until: 2026-11-01}
  - {check: alarms, reason: Noisy, until: 2026-10-01}
""",
    )

    assert problems(tmp_path) == [
        "acme.yaml:4: colour: unknown key; the keys here are id, name, timezone, slack, "
        "accounts, organization, checks, schedules, suppress, maintenance, console, routing",
        'acme.yaml:17: suppress[0].account: unknown account "acme-prd". Did you mean '
        '"acme-prod"? This customer\'s accounts are acme-prod, acme-staging; leave account '
        "out to cover them all.",
        "acme.yaml:17: suppress[0].until: 2026-11-01 has passed (the suppression ended "
        "2026-11-02 00:00 WIB); remove it, or set until to a time still to come",
        "acme.yaml:18: suppress[1].until: 2026-10-01 has passed (the suppression ended "
        "2026-10-02 00:00 WIB); remove it, or set until to a time still to come",
    ]


def test_it_refuses_to_load_at_start_with_the_same_problem(tmp_path: Path) -> None:
    suppressing(tmp_path, SCRATCH.replace("until: 2027-03-31", "until: 2026-11-30"))

    with pytest.raises(ConfigInvalid) as refused:
        load_catalog(tmp_path, NOW)

    assert [(p.line, p.message.split(":")[0]) for p in refused.value.problems] == [
        (22, "suppress[0].until")
    ]


def test_it_prints_a_passed_until_from_mhub_config_check(tmp_path: Path) -> None:
    acme = write(
        tmp_path, "acme.yaml", ACME + SCRATCH.replace("until: 2027-03-31", "until: 2001-01-01")
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "HUB_", "DATABASE_URL"))
    }
    env["HUB_CONFIG_DIR"] = str(tmp_path)

    result = subprocess.run(
        [sys.executable, "-m", "app", "config", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{acme}:22: suppress[0].until: 2001-01-01 has passed (the suppression ended "
        "2001-01-02 00:00 WIB); remove it, or set until to a time still to come",
        "1 problem(s) found.",
    ]
