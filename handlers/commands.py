"""The ``/monitor`` slash command: acknowledge within Slack's 3 seconds, always.

The reply is computed while the ack waits (up to ``ACK_BUDGET_S``): if it is ready in time it
*is* the ack (so ``/monitor run`` answers with the run id at once); if not, the ack says
"working on it" and the reply follows through the command's response_url.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from app import logs
from app.desk import Desk
from blocks.ids import COMMAND
from handlers import replies


def register(app: AsyncApp, desk: Desk, public_url: str | None = None) -> None:
    """Register ``/monitor <text>``; an empty ``/monitor`` is left to the modal (handlers.home)."""

    async def has_text(command: dict[str, Any]) -> bool:
        return bool(str(command.get("text") or "").strip())

    @app.command(COMMAND, matchers=[has_text])
    async def monitor(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        asker = replies.asker_from_command(command)
        with logs.context(user=asker.user, channel=asker.channel):
            reply = asyncio.ensure_future(
                replies.answer(desk, asker, str(command.get("text") or ""), public_url)
            )
            await replies.ack_in_time(reply, ack, respond)
