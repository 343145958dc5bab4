"""The ack-within-budget rule shared by the slash command listeners.

Slack waits 3 seconds for an envelope's ack. A command whose answer is ready within
:data:`ACK_BUDGET_S` is acknowledged with the answer itself; otherwise it is acknowledged with
"working on it" and the answer follows through the ``response_url`` when it is ready, as a
follow-up (:class:`app.slack.followups.FollowUps`) that is watched and waited for at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from app.slack.followups import FollowUps
from blocks import messages

Message = dict[str, Any]
ACK_BUDGET_S = 2.0
"""How long a slash command may work before it is acknowledged anyway (Slack allows 3 s)."""


async def acknowledge(ack: Callable[..., Awaitable[Any]]) -> None:
    """Just the ack: for clicks whose work runs after it (Bolt's lazy listeners)."""
    await ack()


async def ack_in_time(
    reply: asyncio.Future[Message],
    ack: Callable[..., Awaitable[Any]],
    respond: Callable[..., Awaitable[Any]],
    followups: FollowUps,
    budget_s: float = ACK_BUDGET_S,
) -> asyncio.Task[None] | None:
    """Acknowledge with the reply if it is ready within the budget; else acknowledge with
    "working on it" and send the reply through the response_url when it is ready (the
    returned follow-up)."""
    done, _ = await asyncio.wait({reply}, timeout=budget_s)
    if done:
        await ack(reply.result())
        return None
    await ack(messages.working())

    async def follow_up() -> None:
        await respond(await reply)

    return followups.start(follow_up())
