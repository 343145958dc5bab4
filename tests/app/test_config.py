"""Customer configuration: the shipped files load, and every broken file gets one short message
per problem that names the file and line and says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from app.catalog import Catalog
from app.config import WindowError, format_window, parse_window
from app.errors import NotFound, UsageError
from app.loader import ConfigInvalid, check_config, load_catalog
from checks import kinds

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [
    directory
    for directory in (ROOT / "configs", ROOT / "configs" / "demo")
    if any((directory / "customers").glob("*.yaml"))
]
CHECKS = ", ".join(kinds.NAMES)

# Lines 1-9 of most files below; tests append what they break from line 10 on.
GOOD = """\
id: acme
name: Acme
slack: {channel: C0123456789}
accounts:
  - id: acme-prod
    name: Acme Production
    account_id: "123456789012"
    regions: [eu-west-1]
    checks: [backup, rds]
"""


def write(config_dir: Path, name: str, text: str) -> Path:
    """Write ``customers/<name>``; line 1 of ``text`` (after dedent) is line 1 of the file."""
    path = config_dir / "customers" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(config_dir: Path) -> list[str]:
    """Every problem as ``<file name>:<line>: <message>``."""
    _, found = check_config(config_dir)
    return [f"{p.path.name}:{p.line}: {p.message}" for p in found]


# --- the shipped files ------------------------------------------------------------------------


@pytest.mark.parametrize("config_dir", SHIPPED, ids=lambda d: str(d.relative_to(ROOT)))
def test_it_loads_every_shipped_customer_file_without_a_problem(config_dir: Path) -> None:
    catalog, found = check_config(config_dir)

    assert [str(p) for p in found] == []
    files = sorted(p.stem for p in (config_dir / "customers").glob("*.yaml"))
    assert sorted(catalog.customers) == files


def test_it_ships_the_pilot_customer_as_the_documented_example() -> None:
    catalog = load_catalog(ROOT / "configs")

    customer = catalog.customer("aryanoble")
    assert customer.name == "Aryanoble"
    assert customer.timezone == "Asia/Jakarta"
    arbel = customer.account("arbel")
    assert arbel is not None
    assert arbel.name == "Arbel Production"
    assert arbel.regions == ("ap-southeast-3",)
    assert arbel.checks == ("backup", "rds", "alarms", "budget")
    assert arbel.role_arn == f"arn:aws:iam::{arbel.account_id}:role/MonitoringReadOnly"
    assert [(s.name, s.cron) for s in customer.schedules] == [("daily", "0 7 * * *")]
    assert customer.checks["rds"] == {"window": "12h"}


def test_it_accepts_a_minimal_customer_and_fills_in_the_documented_defaults(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "acme.yaml",
        """\
        id: acme
        name: Acme
        accounts:
          - id: acme-prod
            name: Acme Production
            account_id: "123456789012"
            regions: [eu-west-1]
        """,
    )

    customer = load_catalog(tmp_path).customer("acme")

    assert customer.timezone == "UTC"
    assert customer.slack.channel is None
    assert customer.slack.access.users == ()
    assert customer.checks == {}
    assert customer.schedules == ()
    assert customer.accounts[0].checks == ()


# --- YAML that cannot be read -----------------------------------------------------------------


def test_it_refuses_duplicate_keys_instead_of_keeping_the_last(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD
        + """\
    name: Acme Again
id: acme
""",
    )

    assert problems(tmp_path) == [
        'acme.yaml:10: duplicate key "name"; keep only one of them',
        'acme.yaml:11: duplicate key "id"; keep only one of them',
    ]


def test_it_points_at_the_line_with_broken_indentation(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        """\
        id: acme
        name: Acme
        accounts:
          - id: acme-prod
            name: Acme Production
           account_id: "123456789012"
        """,
    )

    [problem] = problems(tmp_path)

    assert problem.startswith("acme.yaml:6: not valid YAML: ")
    assert problem.endswith("check the indentation and quoting on this line and the one before")


def test_it_points_at_a_key_without_its_colon(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", "id: acme\nname Acme\naccounts: []\n")

    [problem] = problems(tmp_path)

    assert problem.startswith("acme.yaml:2: not valid YAML: ")
    assert problem.endswith('write "key: value", with a space after the colon')


def test_it_points_at_a_quote_that_is_never_closed(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", 'id: acme\nname: "Acme\naccounts: []\n')

    [problem] = problems(tmp_path)

    assert problem.startswith("acme.yaml:2: not valid YAML: ")
    assert problem.endswith("close the quote or bracket opened here")


def test_it_says_to_indent_with_spaces_when_a_tab_is_used(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", "id: acme\nname: Acme\naccounts:\n\t- id: acme-prod\n")

    [problem] = problems(tmp_path)

    assert problem.startswith("acme.yaml:4: not valid YAML: ")
    assert problem.endswith("indent with spaces, not tabs")


def test_it_says_to_quote_a_cron_expression_that_starts_with_a_star(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD + "schedules:\n  - name: often\n    cron: */5 * * * *\n")

    [problem] = problems(tmp_path)

    assert problem.startswith("acme.yaml:12: not valid YAML: ")
    assert problem.endswith('must be in quotes, for example cron: "*/5 * * * *"')


def test_it_allows_one_customer_per_file(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD + "---\n" + GOOD)

    [problem] = problems(tmp_path)

    assert problem.startswith("acme.yaml:10: not valid YAML: ")
    assert problem.endswith("keep one customer per file and remove the extra ---")


@pytest.mark.parametrize(
    ("text", "line", "found"),
    [
        ("# a customer will go here\n- id: acme\n  name: Acme\n", 2, "a list"),
        ("just some words\n", 1, "a single value ('just some words')"),
        ("42\n", 1, "a single value (42)"),
    ],
    ids=["list", "text", "number"],
)
def test_it_explains_that_a_customer_file_is_a_mapping(
    tmp_path: Path, text: str, line: int, found: str
) -> None:
    write(tmp_path, "acme.yaml", text)

    assert problems(tmp_path) == [
        f"acme.yaml:{line}: the file is {found}; a customer file is a mapping with id, name "
        "and accounts (docs/configuration.md)"
    ]


@pytest.mark.parametrize("text", ["", "# nothing here yet\n", "---\n"], ids=repr)
def test_it_explains_what_to_write_in_an_empty_file(tmp_path: Path, text: str) -> None:
    write(tmp_path, "acme.yaml", text)

    assert problems(tmp_path) == [
        "acme.yaml:1: the file is empty; write a customer with id, name and accounts "
        "(docs/configuration.md)"
    ]


# --- keys -------------------------------------------------------------------------------------


def test_it_suggests_the_key_that_was_meant(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        """\
        id: acme
        name: Acme
        timezon: Asia/Jakarta
        slack:
          acess: {users: [U0123ABCD]}
        accounts:
          - id: acme-prod
            name: Acme Production
            account_id: "123456789012"
            regons: [eu-west-1]
        """,
    )

    assert problems(tmp_path) == [
        'acme.yaml:3: timezon: unknown key; did you mean "timezone"?',
        'acme.yaml:5: slack.acess: unknown key; did you mean "access"?',
        "acme.yaml:7: accounts[0].regions: required key is missing; add it",
        'acme.yaml:10: accounts[0].regons: unknown key; did you mean "regions"?',
    ]


def test_it_lists_the_keys_when_nothing_is_close(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD + "colour: blue\n")

    assert problems(tmp_path) == [
        "acme.yaml:10: colour: unknown key; the keys here are "
        "id, name, timezone, slack, accounts, organization, checks, schedules, suppress, "
        "maintenance, console, routing"
    ]


def test_it_names_each_missing_required_key_where_it_belongs(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        """\
        # Acme, the example customer
        id: acme
        accounts:
          - id: acme-prod
            name: Acme Production
            regions: [eu-west-1]
        """,
    )

    assert problems(tmp_path) == [
        "acme.yaml:2: name: required key is missing; add it",
        "acme.yaml:4: accounts[0].account_id: required key is missing; add it",
    ]


def test_it_needs_at_least_one_account(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", "id: acme\nname: Acme\naccounts: []\n")

    assert problems(tmp_path) == [
        "acme.yaml:3: accounts: list at least one account, or add organization: to discover "
        "them from AWS Organizations (docs/organizations.md)"
    ]


def test_it_wants_the_id_to_match_the_file_name(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("id: acme\n", "id: acme-corp\n", 1))

    assert problems(tmp_path) == [
        'acme.yaml:1: id "acme-corp" must match the file name; '
        "rename the file to acme-corp.yaml or change the id to acme"
    ]


def test_it_explains_how_to_write_an_id(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("- id: acme-prod", "- id: Acme Prod"))

    assert problems(tmp_path) == [
        'acme.yaml:5: accounts[0].id: "Acme Prod" is not a valid id; use lowercase letters, '
        "digits, - and _ (at most 40, starting with a letter or digit), for example arbel"
    ]


# --- values -----------------------------------------------------------------------------------


def test_it_names_an_unknown_time_zone_and_suggests_the_real_one(tmp_path: Path) -> None:
    write(
        tmp_path, "acme.yaml", GOOD.replace("name: Acme\n", "name: Acme\ntimezone: Asia/Jakart\n")
    )

    assert problems(tmp_path) == [
        'acme.yaml:3: timezone: unknown time zone "Asia/Jakart". Did you mean "Asia/Jakarta"? '
        "Use an IANA name such as Asia/Jakarta or UTC."
    ]


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        (
            "0 25 * * *",
            '"0 25 * * *" is not a 5-field cron expression (minute hour day month weekday); '
            'write it in quotes, for example "0 7 * * *"',
        ),
        (
            "0 7 * * * *",
            '"0 7 * * * *" is not a 5-field cron expression (minute hour day month weekday); '
            'write it in quotes, for example "0 7 * * *"',
        ),
        ("0 7 31 2 *", '"0 7 31 2 *" never fires; check the day and month fields'),
    ],
    ids=["hour-25", "six-fields", "february-31"],
)
def test_it_rejects_a_cron_expression_that_cannot_fire_as_written(
    tmp_path: Path, cron: str, message: str
) -> None:
    write(tmp_path, "acme.yaml", GOOD + f'schedules:\n  - name: daily\n    cron: "{cron}"\n')

    assert problems(tmp_path) == [f"acme.yaml:12: schedules[0].cron: {message}"]


def test_it_names_an_unknown_check_wherever_it_is_used(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        """\
        id: acme
        name: Acme
        slack: {channel: C0123456789}
        accounts:
          - id: acme-prod
            name: Acme Production
            account_id: "123456789012"
            regions: [eu-west-1]
            checks:
              - backup
              - rdss
        checks:
          alarm: {labels: {}}
        schedules:
          - name: daily
            cron: "0 7 * * *"
            checks: [backup, budgett]
        """,
    )

    assert problems(tmp_path) == [
        f'acme.yaml:11: accounts[0].checks[1]: unknown check "rdss". Did you mean "rds"? '
        f"The checks are {CHECKS}.",
        f'acme.yaml:13: checks.alarm: unknown check "alarm". Did you mean "alarms"? '
        f"The checks are {CHECKS}.",
        f'acme.yaml:17: schedules[0].checks[1]: unknown check "budgett". Did you mean "budget"? '
        f"The checks are {CHECKS}.",
    ]


def test_it_refuses_a_check_listed_twice(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("[backup, rds]", "[backup, rds, backup]"))

    assert problems(tmp_path) == [
        'acme.yaml:9: accounts[0].checks[2]: check "backup" is listed twice; remove one'
    ]


def test_it_refuses_a_scheduled_check_that_no_account_runs(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD + 'schedules:\n  - name: daily\n    cron: "0 7 * * *"\n    checks: [backup, budget]\n',
    )

    assert problems(tmp_path) == [
        'acme.yaml:13: schedules[0].checks[1]: no account runs "budget"; add it to an '
        "account's checks or remove it from this schedule"
    ]


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("12", '"12" is not a window. Use a number and a unit: 30m, 12h or 7d.'),
        ("1w", '"1w" is not a window. Use a number and a unit: 30m, 12h or 7d.'),
        ("40d", '"40d" is out of range. Use a window from 1m to 31d.'),
    ],
)
def test_it_explains_a_bad_window_in_check_settings(
    tmp_path: Path, window: str, message: str
) -> None:
    write(tmp_path, "acme.yaml", GOOD + f"checks:\n  rds:\n    window: {window}\n")

    assert problems(tmp_path) == [f"acme.yaml:12: checks.rds.window: {message}"]


def test_it_suggests_the_setting_that_was_meant(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD + "checks:\n  rds: {windw: 12h}\n")

    assert problems(tmp_path) == [
        'acme.yaml:11: checks.rds.windw: unknown key; did you mean "window"?'
    ]


def test_it_points_into_a_list_inside_check_settings(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD.replace("[backup, rds]", "[backup, http]")
        + """\
checks:
  http:
    endpoints:
      - name: api
        url: ftp://api.example.com
        expct_status: 200
""",
    )

    assert problems(tmp_path) == [
        'acme.yaml:14: checks.http.endpoints[0].url: "ftp://api.example.com" is not an http(s) '
        "URL such as https://api.example.com/health",
        "acme.yaml:15: checks.http.endpoints[0].expct_status: unknown key; "
        'did you mean "expect_status"?',
    ]


def test_it_asks_for_the_settings_a_check_cannot_run_without(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("[backup, rds]", "[backup, http]"))

    assert problems(tmp_path) == [
        'acme.yaml:9: "http" needs settings; add checks.http with endpoints '
        "(see docs/checks.md#http)"
    ]


def test_it_says_check_settings_are_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD + "checks:\n  rds: 12h\n")

    assert problems(tmp_path) == ["acme.yaml:11: checks.rds: must be a mapping of key: value"]


def test_it_takes_a_check_with_nothing_under_it_as_its_defaults(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD + "checks:\n  rds:\n")

    customer = load_catalog(tmp_path).customer("acme")

    assert customer.checks == {"rds": {}}


def test_it_explains_a_malformed_role_arn(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD.replace(
            "    regions:", "    role_arn: arn:aws:iam::12345:role/Monitoring\n    regions:"
        ),
    )

    assert problems(tmp_path) == [
        'acme.yaml:8: accounts[0].role_arn: "arn:aws:iam::12345:role/Monitoring" is not a '
        "role ARN; write arn:aws:iam::<12-digit account id>:role/<name>"
    ]


def test_it_catches_a_role_copied_from_another_account(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD.replace(
            "    regions:", "    role_arn: arn:aws:iam::999999999999:role/Monitoring\n    regions:"
        ),
    )

    assert problems(tmp_path) == [
        "acme.yaml:8: accounts[0].role_arn: role_arn is in account 999999999999 but account_id "
        "is 123456789012; use the role in the account being checked"
    ]


def test_it_refuses_an_external_id_without_a_role(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD.replace("    regions:", "    external_id: acme-monitoring\n    regions:"),
    )

    assert problems(tmp_path) == [
        "acme.yaml:8: accounts[0].external_id: external_id is only used with role_arn; "
        "add role_arn or remove external_id"
    ]


def test_it_says_to_quote_an_account_id_written_as_a_number(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace('"123456789012"', "123456789012"))

    assert problems(tmp_path) == [
        'acme.yaml:7: accounts[0].account_id: write the account id in quotes, "123456789012", '
        "so YAML keeps it as text with every digit"
    ]


def test_it_shows_how_to_write_regions_as_a_list(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("[eu-west-1]", "eu-west-1"))

    assert problems(tmp_path) == [
        "acme.yaml:8: accounts[0].regions: must be a list; write [eu-west-1]"
    ]


def test_it_wants_slack_ids_not_channel_names(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("{channel: C0123456789}", '{channel: "#ops"}'))

    assert problems(tmp_path) == [
        'acme.yaml:3: slack.channel: "#ops" is not a Slack id; use the id (such as '
        "C0123456789 or U0123ABCD), not a #name or @name"
    ]


def test_it_refuses_a_schedule_with_nowhere_to_post(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD.replace("slack: {channel: C0123456789}\n", "")
        + 'schedules:\n  - name: daily\n    cron: "0 7 * * *"\n',
    )

    assert problems(tmp_path) == [
        'acme.yaml:10: schedules[0]: schedule "daily" has no channel to post to; '
        "set slack.channel or the schedule's channel"
    ]


def test_it_lets_a_schedule_post_to_its_own_channel(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD.replace("slack: {channel: C0123456789}\n", "")
        + 'schedules:\n  - name: daily\n    cron: "0 7 * * *"\n    channel: C0987654321\n',
    )

    [schedule] = load_catalog(tmp_path).customer("acme").schedules

    assert schedule.channel == "C0987654321"


def test_it_refuses_an_account_alias_listed_twice_in_one_file(tmp_path: Path) -> None:
    second = GOOD[GOOD.index("  - id: acme-prod") :]
    write(tmp_path, "acme.yaml", GOOD + second)

    assert problems(tmp_path) == [
        'acme.yaml:10: accounts[1].id: account "acme-prod" is listed twice; rename one'
    ]


# --- across files -----------------------------------------------------------------------------


def test_it_refuses_an_account_alias_used_by_two_customers(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD)
    write(tmp_path, "zeta.yaml", GOOD.replace("id: acme\n", "id: zeta\n", 1))

    catalog, _ = check_config(tmp_path)

    assert problems(tmp_path) == [
        'zeta.yaml:5: account alias "acme-prod" is already used by account "acme-prod" of acme '
        "(acme.yaml:5); aliases must be unique across all customers — rename one"
    ]
    assert list(catalog.customers) == ["acme"]


def test_it_refuses_an_account_alias_that_is_another_customers_id(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD)
    write(
        tmp_path,
        "zeta.yaml",
        GOOD.replace("id: acme\n", "id: zeta\n", 1).replace("- id: acme-prod", "- id: acme"),
    )

    assert problems(tmp_path) == [
        'zeta.yaml:5: account alias "acme" is already used by customer "acme" (acme.yaml:1); '
        "aliases must be unique across all customers — rename one"
    ]


def test_it_refuses_an_account_alias_equal_to_its_own_customer_id(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("- id: acme-prod", "- id: acme"))

    assert problems(tmp_path) == [
        'acme.yaml:5: account alias "acme" is this customer\'s id, so it cannot name the '
        "account alone; rename the account"
    ]


def test_it_finds_a_collision_even_while_the_other_file_is_broken(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("name: Acme\n", "name: Acme\ntimezone: Nowhere\n"))
    write(tmp_path, "zeta.yaml", GOOD.replace("id: acme\n", "id: zeta\n", 1))

    assert [line.split(": ", 1)[0] for line in problems(tmp_path)] == ["acme.yaml:3", "zeta.yaml:5"]


def test_it_refuses_two_files_for_one_customer(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD)
    write(tmp_path, "acme.yml", GOOD.replace("acme-prod", "acme-two"))

    assert problems(tmp_path) == [
        'acme.yml:1: customer id "acme" is also used in acme.yaml:1; keep one file per customer'
    ]


def test_it_reports_every_problem_in_every_file_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        """\
        id: acme
        name: Acme
        timezone: Mars/Olympus
        accounts:
          - id: acme-prod
            name: Acme Production
            account_id: "123456789012"
            regions: [eu-west-1]
            checks: [backup, rdss]
            colour: red
        """,
    )
    write(tmp_path, "beta.yaml", "- not a mapping\n")
    write(tmp_path, "good.yaml", GOOD.replace("acme", "good"))

    catalog, found = check_config(tmp_path)

    assert [(p.path.name, p.line) for p in found] == [
        ("acme.yaml", 3),
        ("acme.yaml", 9),
        ("acme.yaml", 10),
        ("beta.yaml", 1),
    ]
    assert list(catalog.customers) == ["good"]
    with pytest.raises(ConfigInvalid) as raised:
        load_catalog(tmp_path)
    assert raised.value.problems == found
    assert str(raised.value).startswith("4 problem(s) in the configuration:\n  ")
    assert f"{tmp_path / 'customers' / 'beta.yaml'}:1: the file is a list" in str(raised.value)


def test_it_says_where_to_point_hub_config_dir_when_there_are_no_customers(
    tmp_path: Path,
) -> None:
    _, found = check_config(tmp_path)

    assert [str(p) for p in found] == [
        f"{tmp_path / 'customers'}: no customers directory here; "
        "set HUB_CONFIG_DIR to the folder that holds customers/"
    ]


# --- values that look almost right -------------------------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", "1.0e+999"])
def test_it_refuses_a_threshold_that_is_not_a_finite_number(tmp_path: Path, value: str) -> None:
    # compared with nan or inf, a reading never crosses the threshold: alerting would be off
    write(tmp_path, "acme.yaml", GOOD + f"checks:\n  rds:\n    cpu_crit_pct: {value}\n")

    assert problems(tmp_path) == [
        f'acme.yaml:12: "{value}" is not a finite number; write a number such as 80 '
        "(or put it in quotes if it is text)"
    ]


def test_it_refuses_a_non_finite_number_written_as_text(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD + 'checks:\n  rds:\n    cpu_crit_pct: "nan"\n')

    assert problems(tmp_path) == [
        "acme.yaml:12: checks.rds.cpu_crit_pct: must be a finite number, such as 80"
    ]


def test_it_refuses_a_non_finite_number_wherever_it_is(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace("name: Acme\n", "name: .inf\n", 1))

    assert problems(tmp_path) == [
        'acme.yaml:2: ".inf" is not a finite number; write a number such as 80 '
        "(or put it in quotes if it is text)",
        "acme.yaml:2: name: must be text; put it in quotes",
    ]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("cpu_warn_pct: 150", "checks.rds.cpu_warn_pct: must be at most 100"),
        ("free_storage_crit_pct: -1", "checks.rds.free_storage_crit_pct: must be at least 0"),
        (
            "connections_crit: 100000000000000000000",
            "checks.rds.connections_crit: must be at most 1000000",
        ),
    ],
)
def test_it_keeps_rds_thresholds_in_range(tmp_path: Path, setting: str, message: str) -> None:
    write(tmp_path, "acme.yaml", GOOD + f"checks:\n  rds:\n    {setting}\n")

    assert problems(tmp_path) == [f"acme.yaml:12: {message}"]


def test_it_says_which_way_an_inverted_rds_threshold_is_wrong(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD
        + """\
checks:
  rds:
    cpu_warn_pct: 95
    cpu_crit_pct: 90
    free_storage_warn_pct: 5
    free_storage_crit_pct: 10
""",
    )

    assert problems(tmp_path) == [
        "acme.yaml:13: checks.rds.cpu_crit_pct: cpu_crit_pct (90) must not be below "
        "cpu_warn_pct (95): the more CPU, the worse, so crit is the higher number; "
        "swap them or change one",
        "acme.yaml:15: checks.rds.free_storage_crit_pct: free_storage_crit_pct (10) must not be "
        "above free_storage_warn_pct (5): the less free storage, the worse, so crit is the "
        "lower number; swap them or change one",
    ]


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("1000000000d", '"1000000000d" is out of range. Use a window from 1m to 31d.'),
        (
            "999999999999999999999m",
            '"999999999999999999999m" is out of range. Use a window from 1m to 31d.',
        ),
        ("9" * 5000 + "h", f'"{"9" * 39}…" is out of range. Use a window from 1m to 31d.'),
        ("١٢h", '"١٢h" is not a window. Use a number and a unit: 30m, 12h or 7d.'),
        (
            "100000000000000000000000",
            '"100000000000000000000000" is not a window. Use a number and a unit: 30m, 12h or 7d.',
        ),
    ],
    ids=lambda value: value[:24],
)
def test_it_explains_a_huge_window_instead_of_crashing(
    tmp_path: Path, window: str, message: str
) -> None:
    write(tmp_path, "acme.yaml", GOOD + f"checks:\n  rds:\n    window: {window}\n")

    assert problems(tmp_path) == [f"acme.yaml:12: checks.rds.window: {message}"]


@pytest.mark.parametrize(
    ("key", "good", "bad", "line", "message"),
    [
        (
            "id",
            "acme-prod",
            '"acme-prod\\n"',
            5,
            'accounts[0].id: "acme-prod\\n" is not a valid id; use lowercase letters, digits, - '
            "and _ (at most 40, starting with a letter or digit), for example arbel",
        ),
        (
            "account_id",
            '"123456789012"',
            '"123456789012\\n"',
            7,
            'accounts[0].account_id: "123456789012\\n" is not an AWS account id; '
            "write its 12 digits (0-9) in quotes",
        ),
        (
            "account_id",
            '"123456789012"',
            '"١٢٣٤٥٦٧٨٩٠١٢"',
            7,
            'accounts[0].account_id: "١٢٣٤٥٦٧٨٩٠١٢" is not an AWS account id; '
            "write its 12 digits (0-9) in quotes",
        ),
        (
            "regions",
            "[eu-west-1]",
            '["eu-west-1\\n"]',
            8,
            'accounts[0].regions[0]: "eu-west-1\\n" is not an AWS region name such as '
            "ap-southeast-3",
        ),
        (
            "regions",
            "[eu-west-1]",
            "[eu-west-١]",
            8,
            'accounts[0].regions[0]: "eu-west-١" is not an AWS region name such as ap-southeast-3',
        ),
    ],
    ids=lambda value: str(value)[:20],
)
def test_it_refuses_an_identifier_with_a_trailing_newline_or_non_ascii_digits(
    tmp_path: Path, key: str, good: str, bad: str, line: int, message: str
) -> None:
    write(tmp_path, "acme.yaml", GOOD.replace(f"{key}: {good}", f"{key}: {bad}"))

    assert problems(tmp_path) == [f"acme.yaml:{line}: {message}"]


@pytest.mark.parametrize(
    "role_arn",
    [
        '"arn:aws:iam::123456789012:role/Monitoring\\n"',
        '"arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/Monitoring"',
        '"arn:aws:iam::123456789012:role/Mönitoring"',
    ],
)
def test_it_refuses_a_role_arn_with_a_trailing_newline_or_non_ascii(
    tmp_path: Path, role_arn: str
) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD.replace("    regions:", f"    role_arn: {role_arn}\n    regions:"),
    )

    shown = role_arn.strip('"')
    assert problems(tmp_path) == [
        f'acme.yaml:8: accounts[0].role_arn: "{shown}" is not a role ARN; '
        "write arn:aws:iam::<12-digit account id>:role/<name>"
    ]


def test_it_refuses_a_slack_id_with_a_trailing_newline(tmp_path: Path) -> None:
    write(
        tmp_path, "acme.yaml", GOOD.replace("{channel: C0123456789}", '{channel: "C0123456789\\n"}')
    )

    assert problems(tmp_path) == [
        'acme.yaml:3: slack.channel: "C0123456789\\n" is not a Slack id; use the id (such as '
        "C0123456789 or U0123ABCD), not a #name or @name"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "2027-02-30",
            '"2027-02-30" is not a valid date (day is out of range for month); correct it, or '
            "put it in quotes to keep it as text",
        ),
        (
            "1" * 5000,
            f'"{"1" * 39}…" is not a valid whole number (Exceeds the limit (4300 digits) for '
            "integer string conversi…); correct it, or put it in quotes to keep it as text",
        ),
    ],
    ids=["impossible date", "5000 digits"],
)
def test_it_explains_a_value_yaml_cannot_construct(
    tmp_path: Path, value: str, message: str
) -> None:
    write(tmp_path, "acme.yaml", GOOD + f"checks:\n  rds:\n    window: {value}\n")

    assert problems(tmp_path) == [f"acme.yaml:12: {message}"]


@pytest.mark.parametrize(
    ("nesting", "line"),
    [
        ("[" * 40 + "]" * 40, 10),  # deeper than any customer file needs
        ("[" * 100_000 + "]" * 100_000, 10),  # deeper than the parser's stack
        ("".join(f"\n{'  ' * depth}- " for depth in range(1, 3000)) + "x", 37),  # block style
    ],
    ids=["40 levels", "100,000 levels", "3,000 indented levels"],
)
def test_it_says_a_deeply_nested_file_is_too_deep_instead_of_crashing(
    tmp_path: Path, nesting: str, line: int
) -> None:
    write(tmp_path, "acme.yaml", GOOD + f"extra: {nesting}\n")

    found = problems(tmp_path)

    assert len(found) == 1
    where, message = found[0].split(": ", 1)
    assert message == (
        "too deeply nested (more than 32 levels); a customer file needs a handful — close the "
        "brackets opened before this line"
    )
    assert where.startswith("acme.yaml:")
    assert int(where.split(":")[1]) >= line


def test_it_follows_yaml_aliases_without_blowing_up(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme.yaml",
        GOOD
        + """\
q1: &a [x, x, x, x, x, x, x, x, x, x]
q2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
q3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
q4: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
q5: &e [*e]
""",
    )

    assert problems(tmp_path) == [
        f"acme.yaml:{line}: {key}: unknown key; the keys here are "
        "id, name, timezone, slack, accounts, organization, checks, schedules, suppress, "
        "maintenance, console, routing"
        for line, key in zip(range(10, 15), ["q1", "q2", "q3", "q4", "q5"], strict=True)
    ]


# --- windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("31d", timedelta(days=31)),
        ("44640m", timedelta(days=31)),
        ("744h", timedelta(days=31)),
        ("0000012h", timedelta(hours=12)),
        (" 12H ", timedelta(hours=12)),
    ],
)
def test_it_reads_a_window_as_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected
    assert parse_window(format_window(expected)) == expected


@pytest.mark.parametrize(
    ("text", "advice"),
    [
        ("12", "Use a number and a unit: 30m, 12h or 7d."),
        ("1w", "Use a number and a unit: 30m, 12h or 7d."),
        ("", "Use a number and a unit: 30m, 12h or 7d."),
        ("1.5h", "Use a number and a unit: 30m, 12h or 7d."),
        ("0h", "Use a window from 1m to 31d."),
        ("40d", "Use a window from 1m to 31d."),
        ("44641m", "Use a window from 1m to 31d."),
        ("745h", "Use a window from 1m to 31d."),
        ("1000000000d", "Use a window from 1m to 31d."),
        ("99999999999999999999999999h", "Use a window from 1m to 31d."),
        ("9" * 5000 + "m", "Use a window from 1m to 31d."),
        ("١٢h", "Use a number and a unit: 30m, 12h or 7d."),
        ("12h\n5d", "Use a number and a unit: 30m, 12h or 7d."),
    ],
    ids=lambda value: value[:24],
)
def test_it_rejects_a_window_and_says_how_to_write_one(text: str, advice: str) -> None:
    with pytest.raises(WindowError) as raised:
        parse_window(text)

    shown = text[:39].replace("\n", "\\n")
    assert str(raised.value).startswith(f'"{shown}')
    assert str(raised.value).endswith(advice)
    assert len(str(raised.value)) < 120


def test_it_writes_a_window_the_short_way() -> None:
    assert [format_window(timedelta(minutes=m)) for m in (90, 60, 720, 1440, 2880, 45)] == [
        "90m",
        "1h",
        "12h",
        "1d",
        "2d",
        "45m",
    ]


# --- resolving TARGET -------------------------------------------------------------------------


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(ROOT / "configs")


def test_it_resolves_a_customer_id_to_all_its_accounts(catalog: Catalog) -> None:
    customer, accounts = catalog.resolve("aryanoble")

    assert customer.name == "Aryanoble"
    assert [a.id for a in accounts] == [a.id for a in customer.accounts]
    assert len(accounts) > 1


def test_it_resolves_an_account_alias_to_that_account_alone(catalog: Catalog) -> None:
    customer, accounts = catalog.resolve("Arbel")

    assert customer.id == "aryanoble"
    assert [a.name for a in accounts] == ["Arbel Production"]


def test_it_suggests_the_account_that_was_meant(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as raised:
        catalog.resolve("arbl")

    assert "Did you mean `arbel` (Aryanoble)?" in str(raised.value)


def test_it_says_how_to_list_targets_when_nothing_is_close(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as raised:
        catalog.resolve("zzzz")

    assert str(raised.value) == (
        'I don\'t know "zzzz". `/monitor customers` lists the customers and their accounts.'
    )
    assert raised.value.said("mhub").endswith(
        "`mhub customers` lists the customers and their accounts."
    )


def test_it_plans_an_accounts_configured_checks_when_none_are_named(catalog: Catalog) -> None:
    plan = catalog.plan("arbel")

    assert plan.customer.id == "aryanoble"
    assert plan.targets == tuple(("arbel", c) for c in ("backup", "rds", "alarms", "budget"))


def test_it_plans_only_the_named_checks_on_the_accounts_that_run_them(catalog: Catalog) -> None:
    plan = catalog.plan("aryanoble", ["RDS", "rds"])

    runs_rds = [a.id for a in plan.customer.accounts if "rds" in a.checks]
    assert plan.targets == tuple((alias, "rds") for alias in runs_rds)
    assert plan.checks == ("rds",)


def test_it_refuses_a_check_the_account_does_not_run(catalog: Catalog) -> None:
    with pytest.raises(UsageError) as raised:
        catalog.plan("arbel", ["rds", "http"])

    assert str(raised.value) == (
        "arbel does not run http; configured: backup, rds, alarms, budget. "
        "See `/monitor customers`."
    )


def test_it_suggests_the_check_that_was_meant(catalog: Catalog) -> None:
    with pytest.raises(UsageError) as raised:
        catalog.plan("arbel", ["rdss"])

    assert str(raised.value) == (
        f'There is no check "rdss". Did you mean `rds`? The checks are {CHECKS}.'
    )


# --- mhub config check ------------------------------------------------------------------------


def mhub_config_check(config_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "HUB_", "DATABASE_URL"))
    }
    env["HUB_CONFIG_DIR"] = str(config_dir)
    return subprocess.run(
        [sys.executable, "-m", "app", "config", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_prints_every_problem_as_file_and_line_from_mhub_config_check(tmp_path: Path) -> None:
    acme = write(tmp_path, "acme.yaml", GOOD + "colour: blue\nschedules:\n  - name: daily\n")
    beta = write(tmp_path, "beta.yaml", "id: beta\nname: Beta\nname: Again\n")

    result = mhub_config_check(tmp_path)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{acme}:10: colour: unknown key; the keys here are "
        "id, name, timezone, slack, accounts, organization, checks, schedules, suppress, "
        "maintenance, console, routing",
        f"{acme}:12: schedules[0].cron: required key is missing; add it",
        f"{beta}:1: accounts: list at least one account, or add organization: to discover "
        "them from AWS Organizations (docs/organizations.md)",
        f'{beta}:3: duplicate key "name"; keep only one of them',
        "4 problem(s) found.",
    ]
    assert result.stdout == ""


def test_it_says_ok_and_counts_what_mhub_config_check_loaded(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", GOOD + 'schedules:\n  - name: daily\n    cron: "0 7 * * *"\n')

    result = mhub_config_check(tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"OK: 1 customer(s), 1 account(s), 1 schedule(s) in {tmp_path}\n"


def test_it_passes_mhub_config_check_with_the_shipped_configs() -> None:
    result = mhub_config_check(ROOT / "configs")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")


def test_it_answers_every_value_that_used_to_crash_it_with_file_and_line(tmp_path: Path) -> None:
    acme = write(
        tmp_path,
        "acme.yaml",
        GOOD.replace('"123456789012"', '"١٢٣٤٥٦٧٨٩٠١٢"')
        + """\
checks:
  rds:
    window: 1000000000d
    cpu_warn_pct: .nan
""",
    )
    deep = write(tmp_path, "deep.yaml", "id: deep\nname: Deep\naccounts: " + "[" * 50_000 + "\n")

    result = mhub_config_check(tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines() == [
        f'{acme}:7: accounts[0].account_id: "١٢٣٤٥٦٧٨٩٠١٢" is not an AWS account id; '
        "write its 12 digits (0-9) in quotes",
        f'{acme}:12: checks.rds.window: "1000000000d" is out of range. '
        "Use a window from 1m to 31d.",
        f'{acme}:13: ".nan" is not a finite number; write a number such as 80 '
        "(or put it in quotes if it is text)",
        f"{deep}:3: too deeply nested (more than 32 levels); a customer file needs a handful — "
        "close the brackets opened before this line",
        "4 problem(s) found.",
    ]
