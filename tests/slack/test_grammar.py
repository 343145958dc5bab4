"""The /monitor grammar: the seed's examples, the shapes around them, and clear refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.errors import UsageError
from app.slack.grammar import (
    CancelCommand,
    CustomersCommand,
    HelpCommand,
    ListCommand,
    OpenModal,
    ReportCommand,
    RetryCommand,
    RunCommand,
    SchedulesCommand,
    StatusCommand,
    parse,
    run_command,
)


def test_it_understands_the_seed_examples_exactly() -> None:
    assert parse("run arbel rds --window 12h") == RunCommand("arbel", ("rds",), timedelta(hours=12))
    assert parse("run arbel budget") == RunCommand("arbel", ("budget",), None)
    assert parse("status 1842") == StatusCommand(1842)
    assert parse("status #1842") == StatusCommand(1842)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", OpenModal()),
        ("   ", OpenModal()),
        ("help", HelpCommand()),
        ("RUN Arbel RDS", RunCommand("arbel", ("rds",))),
        (
            "run arbel rds,budget --window=7d",
            RunCommand("arbel", ("rds", "budget"), timedelta(days=7)),
        ),
        ("run arbel —window 30m", RunCommand("arbel", (), timedelta(minutes=30))),
        ("run aryanoble", RunCommand("aryanoble")),
        ("run arbel rds rds", RunCommand("arbel", ("rds",))),
        ("list", ListCommand()),
        ("list aryanoble", ListCommand("aryanoble")),
        ("cancel #7", CancelCommand(7)),
        ("retry 7", RetryCommand(7)),
        ("customers", CustomersCommand()),
        ("schedules", SchedulesCommand()),
        ("report aryanoble", ReportCommand("aryanoble")),
        ("report Aryanoble 2026-11", ReportCommand("aryanoble", "2026-11")),
        ("REPORT arbel  2026-01 ", ReportCommand("arbel", "2026-01")),
    ],
)
def test_it_parses_each_command(text: str, command: object) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("run", "Which customer or account?"),
        ("run arbel --window", "--window needs a value"),
        ("run arbel --window 90x", "is not a window"),
        ("run arbel --window 99d", "out of range"),
        ("run arbel --window 1h --window 2h", "Give --window once"),
        ("run arbel --force", 'There is no option "--force"'),
        ("stauts 12", "Did you mean `/monitor status`?"),
        ("status", "needs one run id"),
        ("status 1 2", "needs one run id"),
        ("status abc", '"abc" is not a run id'),
        ("cancel -1", "is not a run id"),
        ("list a b", "at most one customer"),
        ("customers now", "takes nothing after it"),
        ("run <@U123|bob>", "is not a target name"),
        ("run " + "a" * 5000, "too long"),
        ("report", "Which customer? Use `/monitor report CUSTOMER [YYYY-MM]`"),
        ("report arbel 2026-11 2026-12", "takes a customer and at most one month"),
        ("report arbel --month 2026-11", 'There is no option "--month"'),
        ("report <!here> 2026-11", "is not a customer name"),
    ],
)
def test_it_refuses_malformed_text_and_says_what_to_type(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=None) as caught:
        parse(text)
    assert says in str(caught.value)


def test_it_shares_the_run_grammar_with_the_command_line() -> None:
    assert run_command("Arbel", ("RDS", "budget"), "12h") == RunCommand(
        "arbel", ("rds", "budget"), timedelta(hours=12)
    )
    assert parse("run arbel rds --window 12h").window_text == "12h"


def test_it_undoes_slack_escaping_before_parsing() -> None:
    with pytest.raises(UsageError) as caught:
        parse("run a&amp;b")
    assert '"a&b"' in str(caught.value)


@pytest.mark.parametrize(
    "month",
    [
        "2026-13",
        "2026-00",
        "1999-12",
        "26-11",
        "2026-1",
        "11-2026",
        "2026/11",
        "2026-11-01",
        "november",
    ],
)
def test_it_refuses_a_month_that_is_not_yyyy_mm_and_says_how_to_write_one(month: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(f"report arbel {month}")
    said = str(caught.value)
    assert said.startswith(f'"{month}" is not a month: give it as YYYY-MM, such as 2026-11. ')
    assert said.endswith(
        "Use `/monitor report CUSTOMER [YYYY-MM]`, for example `/monitor report acme 2026-11`."
    )
