"""The ack-within-budget rule, without Slack: a slow answer never holds up the ack."""

from __future__ import annotations

import asyncio
from typing import Any

from app.slack.followups import FollowUps
from blocks import messages
from handlers.ack import ack_in_time


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def __call__(self, message: Any) -> None:
        self.sent.append(message)


async def test_it_acks_with_the_answer_when_it_is_ready_in_time() -> None:
    ack, respond = Recorder(), Recorder()
    ready = asyncio.ensure_future(asyncio.sleep(0, messages.notice("done")))
    await ack_in_time(ready, ack, respond, FollowUps(), budget_s=5)
    assert ack.sent == [messages.notice("done")] and respond.sent == []


async def test_it_acks_with_working_on_it_and_answers_later_when_the_answer_is_slow() -> None:
    ack, respond = Recorder(), Recorder()
    proceed = asyncio.Event()

    async def slow() -> dict[str, Any]:
        await proceed.wait()
        return messages.notice("done")

    followups = FollowUps()
    follow_up = await ack_in_time(
        asyncio.ensure_future(slow()), ack, respond, followups, budget_s=0.01
    )
    assert ack.sent == [messages.working()] and respond.sent == []
    assert follow_up is not None and len(followups) == 1
    proceed.set()
    await follow_up
    assert respond.sent == [messages.notice("done")]
    assert len(followups) == 0
