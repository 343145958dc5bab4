"""Report schedules in a customer's YAML (``kind: report``): one loads without checks and
covers the month before its slot; a report schedule that lists checks, or a kind that does not
exist, gets one line naming the file, the line and what to write."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Schedule
from app.loader import check_config, load_catalog

# Lines 1-9; the schedules under test start on line 10.
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


def write(config_dir: Path, schedules: str) -> Path:
    path = config_dir / "customers" / "acme.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(GOOD + textwrap.dedent(schedules), encoding="utf-8")
    return path


def problems(config_dir: Path) -> list[str]:
    """Every problem as ``<file name>:<line>: <message>``."""
    _, found = check_config(config_dir)
    return [f"{p.path.name}:{p.line}: {p.message}" for p in found]


def test_a_report_schedule_loads_beside_a_digest_schedule(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        schedules:
          - name: daily
            cron: "0 7 * * *"
            checks: [backup]
          - name: monthly
            cron: "0 9 1 * *"
            kind: report
            channel: C0987654321
        """,
    )
    daily, monthly = load_catalog(tmp_path).customer("acme").schedules
    assert (daily.kind, daily.checks) == ("digest", ("backup",))
    assert (monthly.kind, monthly.checks, monthly.channel) == ("report", (), "C0987654321")


def test_a_schedule_is_a_digest_unless_it_says_otherwise() -> None:
    assert Schedule(name="daily", cron="0 7 * * *").kind == "digest"


def test_it_refuses_a_report_schedule_that_lists_checks(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        schedules:
          - name: monthly
            cron: "0 9 1 * *"
            kind: report
            checks: [backup]
        """,
    )
    assert problems(tmp_path) == [
        "acme.yaml:14: schedules[0].checks: a report schedule covers every check; remove checks:"
    ]


def test_it_names_the_kinds_a_schedule_may_be(tmp_path: Path) -> None:
    write(tmp_path, 'schedules:\n  - name: monthly\n    cron: "0 9 1 * *"\n    kind: pdf\n')
    assert problems(tmp_path) == ["acme.yaml:13: schedules[0].kind: must be 'digest' or 'report'"]


def test_a_report_schedule_still_needs_somewhere_to_post(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'schedules:\n  - name: monthly\n    cron: "0 9 1 * *"\n    kind: report\n'
    )
    path.write_text(path.read_text().replace("slack: {channel: C0123456789}\n", ""))
    assert problems(tmp_path) == [
        'acme.yaml:10: schedules[0]: schedule "monthly" has no channel to post to; '
        "set slack.channel or the schedule's channel"
    ]


def test_the_model_refuses_checks_on_a_report_schedule_too() -> None:
    with pytest.raises(ValidationError, match="a report schedule covers every check"):
        Schedule(name="monthly", cron="0 9 1 * *", kind="report", checks=("backup",))
