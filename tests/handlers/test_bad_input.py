"""Whatever a command, a click or a submission carries, Slack gets its answer within 3 seconds,
the answer says what to type instead, and nothing changes. Unexpected errors still answer,
with a reference that is also in the log."""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import Run
from blocks.ids import ActionId
from handlers import guard
from handlers.ack import acknowledge
from tests.handlers.conftest import Harness

NOT_A_RUN_ID = "is not a run id. Use the number shown on the card, like #1842."


async def run_count(hub: Harness) -> int:
    async with hub.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(Run))).scalar_one())


def controls(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c != "\n"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("status ²", f'"²" {NOT_A_RUN_ID}'),
        ("cancel ¹", f'"¹" {NOT_A_RUN_ID}'),
        ("retry ③", f'"③" {NOT_A_RUN_ID}'),
        ("status ١٢", f'"١٢" {NOT_A_RUN_ID}'),  # Arabic-Indic digits
        ("status １２", f'"１２" {NOT_A_RUN_ID}'),  # full-width digits
        ("status 99999999999999999999", NOT_A_RUN_ID),
        ("run arbel --window 1000000000d", "window"),
        ("run arbel --window=99999999999999999999m", "window"),
        ("run arbel\u202e rds", "is not a"),  # a right-to-left override glued to a name
        ("run ar\x00bel", '"ar�bel" is not a target name'),
        ("x" * 5000, "That command is too long (5000 characters)."),
        ("run " + "a" * 1990, "is not a target name"),
    ],
)
async def test_malformed_command_text_is_answered_in_time_with_what_to_type(
    harness: Harness, text: str, says: str
) -> None:
    ack = await harness.fake.acommand(text)
    assert ack.latency_s is not None and ack.latency_s < 3, "acknowledged within Slack's 3 s"
    assert ack.payload is not None
    reply = ack.payload["text"]
    assert says in reply
    assert "Usage: `/monitor run TARGET" in ack.read() or "run id" in reply
    assert "Something went wrong" not in reply
    assert controls(reply) == [] and len(reply) < 800
    assert await run_count(harness) == 0


@pytest.mark.parametrize("value", ["²", "１", "", "1e3", "-1", "0", "9" * 80, "1; DROP TABLE runs"])
async def test_a_tampered_card_button_is_answered_and_changes_nothing(
    harness: Harness, value: str
) -> None:
    harness.rds.gate.clear()
    await harness.fake.acommand("run arbel rds")
    [card] = await harness.fake.await_(lambda: harness.fake.cards(1), 10, "the card")
    ack = await harness.fake.aclick(card, ActionId.CANCEL_RUN, user="U0ADMIN", value=value)
    assert ack.latency_s is not None and ack.latency_s < 3
    [reply] = await harness.fake.await_(lambda: harness.fake.replies(ack), 10, "the reply")
    assert NOT_A_RUN_ID in reply["text"]
    assert [r.status for r in await harness.runs.recent(limit=5)] == ["running"]


async def test_an_unexpected_error_after_the_ack_is_told_through_the_response_url(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(body: dict[str, Any]) -> None:
        raise RuntimeError("a bug after the ack")

    guarded = guard.guarded(harness.slack.home)
    harness.slack.slack.app.action("broken_button")(ack=acknowledge, lazy=[guarded(broken)])
    message = {
        "blocks": [
            {
                "type": "actions",
                "block_id": "b",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "broken_button",
                        "text": {"type": "plain_text", "text": "Break"},
                        "value": "1",
                    }
                ],
            }
        ]
    }
    with caplog.at_level(logging.ERROR, logger="handlers.guard"):
        ack = await harness.fake.aclick(message, "broken_button", channel="C0OPS")
        [reply] = await harness.fake.await_(lambda: harness.fake.replies(ack), 10, "the reply")
    ref = re.search(r"error `([0-9a-f]{8})`", reply["text"])
    assert ref is not None and "Something went wrong on our side" in reply["text"]
    assert f"unexpected error {ref[1]}" in caplog.text
