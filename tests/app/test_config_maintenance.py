"""Maintenance windows in a customer's YAML (``maintenance:``): valid windows load, recurring or
one-off, in the customer's time zone; every mistake gets one line naming the file, the line of
the offending key and what to write — and ``mhub config check`` prints them and exits 1."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.config import MAX_MAINTENANCE, maintenance_length
from app.config import WindowError as DurationError
from app.loader import check_config, load_catalog

ROOT = Path(__file__).resolve().parents[2]

# Lines 1-15; the windows under test start on line 16.
ACME = """\
id: acme
name: Acme
timezone: Europe/Berlin
accounts:
  - id: acme-prod
    name: Acme Production
    account_id: "123456789012"
    regions: [eu-central-1]
    checks: [rds, alarms]
  - id: acme-staging
    name: Acme Staging
    account_id: "210987654321"
    regions: [eu-central-1]
    checks: [rds]
maintenance:
"""
# Lines 16-21 and 22-24.
WEEKLY = """\
  - name: RDS upgrades
    accounts: [acme-prod]
    checks: [rds]
    cron: "0 2 * * SUN"
    duration: 2h
    reason: Weekly engine patching
"""
MIGRATION = """\
  - name: Data-centre migration
    start: 2026-12-12 22:00
    end: 2026-12-13 04:00
"""
OTHER = """\
id: other
name: Other
accounts:
  - id: other-prod
    name: Other Production
    account_id: "123456789013"
    regions: [eu-central-1]
    checks: [rds]
"""


def write(config_dir: Path, windows: str, name: str = "acme.yaml", head: str = ACME) -> Path:
    path = config_dir / "customers" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + textwrap.dedent(windows), encoding="utf-8")
    return path


def problems(config_dir: Path) -> list[str]:
    """Every problem as ``<file name>:<line>: <message>``."""
    _, found = check_config(config_dir, env=None)
    return [f"{p.path.name}:{p.line}: {p.message}" for p in found]


# --- valid windows ----------------------------------------------------------------------------


def test_it_loads_a_recurring_and_a_one_off_window_read_in_the_customers_zone(
    tmp_path: Path,
) -> None:
    write(tmp_path, WEEKLY + MIGRATION)

    customer = load_catalog(tmp_path, env=None).customer("acme")

    weekly, migration = customer.maintenance
    assert (weekly.name, weekly.accounts, weekly.checks) == (
        "RDS upgrades",
        ("acme-prod",),
        ("rds",),
    )
    assert (weekly.cron, weekly.duration, weekly.reason) == (
        "0 2 * * SUN",
        timedelta(hours=2),
        "Weekly engine patching",
    )
    assert weekly.once(customer.tz) is None
    assert (migration.accounts, migration.checks, migration.reason) == (None, None, None)
    assert migration.once(customer.tz) == (  # CET is UTC+1 in December
        datetime(2026, 12, 12, 21, 0, tzinfo=UTC),
        datetime(2026, 12, 13, 3, 0, tzinfo=UTC),
    )


def test_overlapping_windows_are_fine(tmp_path: Path) -> None:
    write(tmp_path, WEEKLY + WEEKLY.replace("RDS upgrades", "Also on Sundays"))

    assert problems(tmp_path) == []


@pytest.mark.parametrize(
    "text, length",
    [("1m", timedelta(minutes=1)), ("90m", timedelta(minutes=90)), ("7d", MAX_MAINTENANCE)],
)
def test_a_duration_runs_from_one_minute_to_seven_days(text: str, length: timedelta) -> None:
    assert maintenance_length(text) == length


@pytest.mark.parametrize("text", ["0m", "00h", "7d1m", "8d", "169h", "999d", "2 hours", "-1h"])
def test_any_other_duration_is_refused(text: str) -> None:
    with pytest.raises(DurationError):
        maintenance_length(text)


# --- mistakes, each with its file and line ----------------------------------------------------

MISTAKES = {
    "no time at all": (
        WEEKLY.replace("duration: 2h", "duration: 0m"),
        [
            'acme.yaml:20: maintenance[0].duration: "0m" is no time at all. Give a duration '
            "from 1m to 7d, such as 2h."
        ],
    ),
    "far too long": (
        WEEKLY.replace("duration: 2h", "duration: 999d"),
        [
            'acme.yaml:20: maintenance[0].duration: "999d" is too long: a maintenance window '
            "lasts at most 7d. Use a shorter one, or mute the findings instead."
        ],
    ),
    "a duration without a unit": (
        WEEKLY.replace("duration: 2h", "duration: 120"),
        ["acme.yaml:20: maintenance[0].duration: 120 has no unit; write it as 30m, 2h or 1d"],
    ),
    "a bad cron": (
        WEEKLY.replace('"0 2 * * SUN"', '"0 2 * * SUNDAY"'),
        [
            'acme.yaml:19: maintenance[0].cron: "0 2 * * SUNDAY" is not a 5-field cron '
            "expression (minute hour day month weekday); write it in quotes, for example "
            '"0 7 * * *"'
        ],
    ),
    "a cron that never fires": (
        WEEKLY.replace('"0 2 * * SUN"', '"0 2 30 2 *"'),
        [
            'acme.yaml:19: maintenance[0].cron: "0 2 30 2 *" never fires; check the day and '
            "month fields"
        ],
    ),
    "end before start": (
        MIGRATION.replace("end: 2026-12-13 04:00", "end: 2026-12-12 20:00"),
        [
            "acme.yaml:18: maintenance[0].end: end 2026-12-12 20:00 is not after start "
            "2026-12-12 22:00; set end to when the window closes"
        ],
    ),
    "a start in the hour the clocks skip, after its end": (
        MIGRATION.replace("2026-12-12 22:00", "2026-03-29 02:30").replace(
            "2026-12-13 04:00", "2026-03-29 03:15"
        ),
        [
            "acme.yaml:18: maintenance[0].end: start 2026-03-29 02:30 is in the hour the clocks "
            "skip that day, so the window would open at 03:30 CEST, after its end; move start "
            "or end"
        ],
    ),
    "a one-off window of more than 7 days": (
        MIGRATION.replace("end: 2026-12-13 04:00", "end: 2026-12-22 22:00"),
        [
            "acme.yaml:18: maintenance[0].end: the window lasts 10.0 days; a maintenance window "
            "lasts at most 7d — split it, or mute the findings instead"
        ],
    ),
    "a start that is not a time": (
        MIGRATION.replace("start: 2026-12-12 22:00", "start: tonight"),
        [
            'acme.yaml:17: maintenance[0].start: "tonight" is not a date and time; write it as '
            '"2026-12-12 22:00", in the customer\'s time zone'
        ],
    ),
    "a start without end": (
        MIGRATION.replace("    end: 2026-12-13 04:00\n", ""),
        [
            "acme.yaml:16: maintenance[0]: add end, when the window closes, such as "
            '"2026-12-13 04:00"'
        ],
    ),
    "cron without duration": (
        WEEKLY.replace("    duration: 2h\n", ""),
        ["acme.yaml:16: maintenance[0]: add duration, how long each window lasts, such as 2h"],
    ),
    "duration without cron": (
        MIGRATION + "    duration: 2h\n",
        [
            "acme.yaml:19: maintenance[0].duration: duration is only used with cron; add cron "
            "for a recurring window, or give start and end instead"
        ],
    ),
    "cron and start": (
        WEEKLY + "    start: 2026-12-12 22:00\n",
        [
            "acme.yaml:22: maintenance[0].start: use either cron with duration (a recurring "
            "window) or start and end (a one-off window), not both"
        ],
    ),
    "neither": (
        "  - name: Someday\n",
        [
            "acme.yaml:16: maintenance[0]: give cron and duration (a recurring window) or start "
            "and end (a one-off window)"
        ],
    ),
    "an unknown account": (
        WEEKLY.replace("[acme-prod]", "[acme-prd]"),
        [
            'acme.yaml:17: maintenance[0].accounts[0]: unknown account "acme-prd". Did you mean '
            '"acme-prod"? This customer\'s accounts are acme-prod, acme-staging; leave accounts '
            "out to cover them all."
        ],
    ),
    "another customer's account": (
        WEEKLY.replace("[acme-prod]", "[other-prod]"),
        [
            'acme.yaml:17: maintenance[0].accounts[0]: "other-prod" is an account of customer '
            "other, not of acme; name one of acme's accounts (acme-prod, acme-staging), or move "
            "the window to other's file"
        ],
    ),
    "an empty list of accounts": (
        WEEKLY.replace("[acme-prod]", "[]"),
        [
            "acme.yaml:17: maintenance[0].accounts: list at least one account, or leave "
            "accounts out to cover every account"
        ],
    ),
    "an unknown check": (
        WEEKLY.replace("checks: [rds]", "checks: [rsd]"),
        [
            'acme.yaml:18: maintenance[0].checks[0]: unknown check "rsd". Did you mean "rds"? '
            "The checks are backup, rds, alarms, budget, http, health, certs, security, cost, "
            "hygiene."
        ],
    ),
    "a check its accounts do not run": (
        WEEKLY.replace("checks: [rds]", "checks: [rds, budget]"),
        [
            'acme.yaml:18: maintenance[0].checks[1]: no account in this window runs "budget"; '
            "add it to an account's checks or remove it from this window"
        ],
    ),
    "a misspelt key": (
        WEEKLY.replace("duration:", "durration:"),
        ['acme.yaml:20: maintenance[0].durration: unknown key; did you mean "duration"?'],
    ),
}


@pytest.mark.parametrize("windows, expected", MISTAKES.values(), ids=MISTAKES)
def test_it_says_what_to_fix_with_file_and_line(
    tmp_path: Path, windows: str, expected: list[str]
) -> None:
    write(tmp_path, windows)
    write(tmp_path, "", name="other.yaml", head=OTHER)

    assert problems(tmp_path) == expected
    catalog, _ = check_config(tmp_path, env=None)
    assert "acme" not in catalog.customers


def test_mhub_config_check_prints_each_problem_and_exits_1(tmp_path: Path) -> None:
    write(
        tmp_path,
        WEEKLY.replace("duration: 2h", "duration: 0m")
        + MIGRATION.replace("2026-12-13 04:00", "2026-12-12 20:00"),
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
    acme = tmp_path / "customers" / "acme.yaml"
    assert f'{acme}:20: maintenance[0].duration: "0m" is no time at all.' in result.stderr
    assert f"{acme}:24: maintenance[1].end: end 2026-12-12 20:00 is not after start" in (
        result.stderr
    )
