"""``/monitor maintenance TARGET DURATION [reason]`` through the fake Slack: a named user starts a
window and is told what, for whom and until when in the customer's zone; a channel grant and an
outsider are refused (the outsider as if the customer did not exist); bad input is answered with
what to type and changes nothing; every decision and every window is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.engine.maintenance import Window
from app.models import Maintenance, RunEvent
from app.slack.maintaining import NAMED_ONLY
from blocks.maintenance import span
from tests.handlers.conftest import Harness

WIB = ZoneInfo("Asia/Jakarta")


async def windows(hub: Harness) -> list[Maintenance]:
    async with hub.db.read() as session:
        return list((await session.execute(select(Maintenance).order_by(Maintenance.id))).scalars())


async def answers(hub: Harness) -> list[RunEvent]:
    async with hub.db.read() as session:
        query = select(RunEvent).where(RunEvent.type == "answer").order_by(RunEvent.id)
        return list((await session.execute(query)).scalars())


def from_to(row: Maintenance) -> str:
    """``10:02 – 12:02 WIB (2h)``, as the reply shows a window that opened now."""
    opens, closes = row.starts_at.astimezone(WIB), row.ends_at.astimezone(WIB)
    length = "2h" if row.ends_at - row.starts_at == timedelta(hours=2) else "?"
    if closes.date() == opens.date():
        return f"{opens:%H:%M} – {closes:%H:%M} WIB ({length})"
    return f"{opens:%H:%M} – {closes:%a %d %b %H:%M} WIB ({length})"


async def test_a_named_user_starts_a_window_on_an_account_and_is_told_what_and_until_when(
    harness: Harness,
) -> None:
    ack = await harness.fake.acommand("maintenance arbel 2h Engine upgrade")

    assert ack.latency_s is not None and ack.latency_s < 3
    assert ack.payload is not None and ack.payload["response_type"] == "ephemeral"
    [row] = await windows(harness)
    assert (row.customer_id, row.accounts, row.checks) == ("aryanoble", ["arbel"], None)
    assert (row.reason, row.created_by, row.ended_at) == ("Engine upgrade", "U0ALICE", None)
    assert row.ends_at - row.starts_at == timedelta(hours=2)
    assert abs(row.starts_at - datetime.now(UTC)) < timedelta(seconds=30)
    reply = ack.read()
    assert "🛠️ Maintenance started for *Aryanoble*" in reply
    assert (
        f"🛠️ *Maintenance of arbel* · arbel · every check · {from_to(row)} — Engine upgrade" in reply
    )
    assert "not routed" in reply


async def test_a_window_on_a_customer_covers_every_account_and_needs_no_reason(
    harness: Harness,
) -> None:
    ack = await harness.fake.acommand("maintenance aryanoble 30m", user="U0ADMIN")

    [row] = await windows(harness)
    assert (row.accounts, row.checks, row.reason, row.created_by) == (None, None, "", "U0ADMIN")
    assert row.ends_at - row.starts_at == timedelta(minutes=30)
    assert "*Maintenance of aryanoble* · every account · every check · " in ack.read()
    assert "(30m)" in ack.read()


async def test_starting_a_window_is_audited_with_the_decision_and_the_window(
    harness: Harness,
) -> None:
    await harness.fake.acommand("maintenance arbel 1h Failover test", channel="C0OPS")

    [row] = await windows(harness)
    [event] = await answers(harness)
    assert (event.run_id, event.actor) == (None, "U0ALICE")
    assert {k: event.data[k] for k in ("via", "channel", "action", "customer")} == {
        "via": "slack",
        "channel": "C0OPS",
        "action": "maintenance",
        "customer": "aryanoble",
    }
    assert event.data["window"]["id"] == row.id
    assert event.data["window"]["reason"] == "Failover test"
    [decision] = await harness.audit()
    assert (decision["actor"], decision["action"], decision["allowed"], decision["reason"]) == (
        "U0ALICE",
        "answer",
        True,
        "user",
    )


async def test_a_channel_grant_may_run_checks_but_not_start_a_window(harness: Harness) -> None:
    ack = await harness.fake.acommand("maintenance arbel 2h", user="U0CAROL", channel="C0SHARED")

    assert ack.payload is not None and ack.payload["text"] == NAMED_ONLY
    assert await windows(harness) == [] and await answers(harness) == []
    [decision] = await harness.audit()
    assert (decision["actor"], decision["allowed"], decision["reason"]) == (
        "U0CAROL",
        False,
        "denied",
    )


async def test_an_outsider_is_told_the_same_about_a_customer_as_about_nothing(
    harness: Harness,
) -> None:
    said = {}
    for target in ("arbel", "aryanoble", "nosuch"):
        ack = await harness.fake.acommand(f"maintenance {target} 2h", user="U0MALLORY")
        assert ack.payload is not None
        said[target] = ack.payload["text"].replace(f'"{target}"', '"…"')

    assert len(set(said.values())) == 1, said
    assert said["arbel"].startswith('I don\'t know "…", or you may not see it.')
    assert "Aryanoble" not in said["arbel"] and "arbel-dr" not in said["arbel"]
    assert await windows(harness) == [] and await answers(harness) == []
    decisions = await harness.audit()
    assert [(d["asked"], d["allowed"], d["reason"]) for d in decisions] == [
        ("arbel", False, "denied"),
        ("aryanoble", False, "denied"),
        ("nosuch", False, "unknown"),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("maintenance", "Which customer or account, and for how long? Use "),
        ("maintenance arbel", "For how long? Give a duration such as 2h. Use "),
        ("maintenance arbel 0m", '"0m" is no time at all. Give a duration from 1m to 7d'),
        ("maintenance arbel 999d", '"999d" is too long: a maintenance window lasts at most 7d.'),
        ("maintenance arbel 2hours", '"2hours" is not a duration. Use a number and a unit'),
        ("maintenance arbel 99999999999999999999m", "is too long"),
        ("maintenance arbel 2h " + "x" * 600, "The reason is 600 characters; keep it to 500"),
    ],
)
async def test_bad_input_is_answered_with_what_to_type_and_changes_nothing(
    harness: Harness, text: str, says: str
) -> None:
    ack = await harness.fake.acommand(text)

    assert ack.latency_s is not None and ack.latency_s < 3
    assert ack.payload is not None
    assert says in ack.payload["text"]
    assert "Something went wrong" not in ack.payload["text"]
    assert await windows(harness) == [] and await answers(harness) == []


async def test_help_lists_the_command(harness: Harness) -> None:
    ack = await harness.fake.acommand("help")

    assert "`/monitor maintenance TARGET DURATION [reason]` — start a maintenance window now" in (
        ack.read()
    )


def test_a_window_across_a_clock_change_shows_each_end_in_its_own_zone_name() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    window = Window(
        "RDS upgrades",
        ("acme-prod",),
        ("rds",),
        datetime(2026, 10, 25, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 2, tzinfo=UTC),
    )

    assert span(window, berlin, datetime(2026, 10, 25, 0, tzinfo=UTC)) == (
        "02:00 CEST – 03:00 CET (2h)"
    )
    assert span(window, berlin, datetime(2026, 10, 23, 12, tzinfo=UTC)) == (
        "Sun 25 Oct 02:00 CEST – 03:00 CET (2h)"
    )
