"""The ``⋯`` menu beside a problem line (card, digest) and the snooze/mute modal.

The choice is acknowledged at once; the work runs after (Bolt's lazy listeners): Acknowledge
answers with an ephemeral confirmation, Snooze … and Mute … open the modal (``views.open``
within the trigger's 3 s). A submitted modal is read in the ack (field errors show under the
fields) and applied after; the confirmation is an ephemeral message in the channel the menu
was in. Nothing in a value or a view is trusted (:mod:`app.slack.answering`).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from app.access import Who
from app.slack.answering import Form, Request
from blocks import answer as answer_blocks
from blocks import messages
from blocks.ids import ActionId, CallbackId
from handlers import guard
from handlers.ack import acknowledge
from handlers.services import Services

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    answering, home = services.answering, services.home
    guarded = guard.guarded(home)

    async def chosen(body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        user = str((body.get("user") or {}).get("id") or "")
        channel = (body.get("container") or {}).get("channel_id") or (
            body.get("channel") or {}
        ).get("id")
        action = (body.get("actions") or [{}])[0]
        value = str((action.get("selected_option") or {}).get("value") or "")[:200]
        outcome = await answering.chosen(value, Who(user, channel))
        if isinstance(outcome, Form):
            await client.views_open(trigger_id=body.get("trigger_id"), view=outcome.view)
        elif outcome.text:
            await respond({**messages.ephemeral(outcome.text), "replace_original": False})

    async def check(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        read = answering.read(
            (view.get("state") or {}).get("values") or {}, str(view.get("private_metadata") or "")
        )
        if isinstance(read, Request):
            await ack()
            return
        inputs = {b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"}
        errors = {k: v for k, v in read.items() if k in inputs}
        if errors:
            await ack(response_action="errors", errors=errors)
        else:  # nothing to key the error to (a forged or stale view): say it in the modal
            await ack(response_action="update", view=answer_blocks.notice(list(read.values())))

    async def submit(body: dict[str, Any], client: AsyncWebClient) -> None:
        view = body.get("view") or {}
        read = answering.read(
            (view.get("state") or {}).get("values") or {}, str(view.get("private_metadata") or "")
        )
        if not isinstance(read, Request):
            return
        user = str((body.get("user") or {}).get("id") or "")
        said = await answering.submit(read, Who(user, read.channel))
        if read.channel:
            message = messages.ephemeral(said.text)
            await client.chat_postEphemeral(
                channel=read.channel, user=user, text=message["text"], blocks=message["blocks"]
            )
        else:
            home.notice(user, said.text)

    app.action(ActionId.ANSWER)(ack=acknowledge, lazy=[guarded(chosen)])
    app.view(CallbackId.ANSWER_MODAL)(ack=check, lazy=[guarded(submit)])
