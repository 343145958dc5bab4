"""Short messages: help, usage, refusals and lists — each readable and within Slack's limits."""

from __future__ import annotations

from datetime import timedelta

from blocks import messages, text
from tests.blocks.support import NOW, WIB
from tests.fakeslack.validate import all_text, message_problems


def test_it_lists_every_command_with_the_seed_examples_in_help() -> None:
    message = messages.help_message()
    assert message_problems(message) == []
    body = all_text(message)
    verbs = ("run", "status", "list", "cancel", "retry", "customers", "schedules", "report")
    for verb in (*verbs, "maintenance", "help"):
        assert f"/monitor {verb}" in body
    assert "`/monitor run acme-prod rds --window 12h`" in body
    assert "`/monitor run acme budget`" in body
    assert message["response_type"] == "ephemeral"


def test_it_answers_malformed_text_with_the_problem_and_the_usage() -> None:
    message = messages.usage('"<!here>" is not a window')
    body = all_text(message)
    assert message_problems(message) == []
    assert "&lt;!here&gt;" in body and "Usage: `/monitor run TARGET" in body


def test_it_keeps_errors_short() -> None:
    message = messages.error("x" * 10_000)
    assert message_problems(message) == []
    assert len(message["blocks"][0]["text"]["text"]) <= 2000


def test_it_packs_a_long_customer_list_within_the_limits() -> None:
    customers = [
        messages.ListedCustomer(
            f"customer-{i}",
            f"Customer {i} <b>",
            "Asia/Jakarta",
            [
                messages.ListedAccount(f"acct-{i}-{j}", "Account " + "n" * 60, ["rds", "budget"])
                for j in range(20)
            ],
        )
        for i in range(80)
    ]
    message = messages.customers(customers)
    assert message_problems(message) == []
    assert "more" in all_text(message)


def test_it_lists_recent_runs_with_marks_and_local_times() -> None:
    runs = [
        messages.ListedRun(
            1842,
            "completed",
            "crit",
            "Aryanoble",
            ["arbel"],
            ["rds"],
            "U0ALICE",
            NOW - timedelta(minutes=2),
            WIB,
        ),
        messages.ListedRun(
            1843, "running", None, "Aryanoble", ["arbel"], ["budget"], "schedule:daily", NOW, WIB
        ),
    ]
    message = messages.run_list(runs, NOW, None)
    body = all_text(message)
    assert message_problems(message) == []
    assert "🔴 *#1842* Aryanoble / arbel · RDS · <@U0ALICE> · 07:03 WIB · crit" in body
    assert "⏳ *#1843*" in body and "schedule:daily" in body


def test_it_shows_the_next_fire_time_of_each_schedule() -> None:
    item = messages.ListedSchedule(
        "aryanoble",
        "Aryanoble",
        "daily",
        "0 7 * * *",
        ["rds"],
        NOW.astimezone(WIB).replace(hour=7, minute=0) + timedelta(days=1),
    )
    body = all_text(messages.schedules([item]))
    assert "`daily` — `0 7 * * *` · next Sun 22 Nov 07:00 WIB · rds" in body


def test_it_never_cuts_an_escaped_character_in_half() -> None:
    cut = text.truncate(text.escape("a" * 8 + "&&&&"), 12)
    assert cut.endswith("…") and not cut[:-1].endswith(("&", "&a", "&am", "&amp"))
    assert len(cut) <= 12


def test_it_mentions_slack_users_and_prints_other_requesters() -> None:
    assert text.user("U0ALICE") == "<@U0ALICE>"
    assert text.user("schedule:daily") == "schedule:daily"
    assert text.user("<!channel>") == "&lt;!channel&gt;"
