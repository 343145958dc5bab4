"""``/monitor <text>``: answered within Slack's 3 seconds, with the answer or "working on it"."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from app import logs
from blocks.ids import COMMAND
from handlers import maintenance, replies
from handlers.ack import ack_in_time
from handlers.services import Services


def register(app: AsyncApp, services: Services) -> None:
    """Register ``/monitor <text>``; an empty ``/monitor`` is left to the modal (handlers.home)."""

    async def has_text(command: dict[str, Any]) -> bool:
        return bool(str(command.get("text") or "").strip())

    @app.command(COMMAND, matchers=[has_text])
    async def monitor(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        asker = replies.asker_from_command(command)
        with logs.context(user=asker.user, channel=asker.channel):
            text = str(command.get("text") or "")
            reply = asyncio.ensure_future(
                maintenance.answer(services.maintaining, asker, text)
                if maintenance.asks(text)
                else replies.answer(services.desk, asker, text, services.public_url)
            )
            await ack_in_time(reply, ack, respond, services.followups)
