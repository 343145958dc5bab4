"""The "Run checks" modal: choosing a customer, the external customer select, and submitting.

- Choosing a customer → ``views.update`` with its accounts and checks.
- The external customer select's ``block_suggestion`` → the runnable customers that match.
- ``view_submission`` → field errors inline (``response_action: errors``), or the modal closes
  and the run is queued; its card is posted by the card follower like any other run's.

Nothing in the view is trusted: who may run what is decided again from the submitted values
(:class:`app.slack.modal.Launcher`).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from app.errors import HubError
from app.slack.access import Who
from app.slack.modal import Launcher, ModalMeta, Ready
from blocks.ids import ActionId, CallbackId
from handlers.ack import acknowledge
from handlers.services import Services

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    home, launcher = services.home, services.launcher

    async def customer_chosen(body: dict[str, Any], client: AsyncWebClient) -> None:
        view = body.get("view") or {}
        meta = ModalMeta.parse(view.get("private_metadata"))
        who = Who(str((body.get("user") or {}).get("id") or ""), meta.channel_id)
        chosen = ((body.get("actions") or [{}])[0].get("selected_option") or {}).get("value")
        await client.views_update(
            view_id=view.get("id"), hash=view.get("hash"), view=launcher.form(who, meta, chosen)
        )

    async def suggest(ack: AsyncAck, body: dict[str, Any]) -> None:
        meta = ModalMeta.parse((body.get("view") or {}).get("private_metadata"))
        who = Who(str((body.get("user") or {}).get("id") or ""), meta.channel_id)
        await ack(options=launcher.suggest(who, str(body.get("value") or "")))

    async def check(ack: AsyncAck, body: dict[str, Any]) -> None:
        decided = _decide(launcher, body)
        if isinstance(decided, Ready):
            await ack()
        else:
            await ack(response_action="errors", errors=decided)

    async def submit(body: dict[str, Any]) -> None:
        decided = _decide(launcher, body)
        if not isinstance(decided, Ready):
            return
        try:
            run = await launcher.submit(decided, str((body.get("view") or {}).get("id") or ""))
        except HubError as exc:
            home.notice(decided.who.user, str(exc))
            return
        log.info("modal: %s queued run #%s", decided.who.user, run.id)

    app.action(ActionId.MODAL_CUSTOMER)(ack=acknowledge, lazy=[customer_chosen])
    app.options(ActionId.MODAL_CUSTOMER)(suggest)
    app.view(CallbackId.RUN_MODAL)(ack=check, lazy=[submit])


def _decide(launcher: Launcher, body: dict[str, Any]) -> Ready | dict[str, str]:
    view = body.get("view") or {}
    meta = ModalMeta.parse(view.get("private_metadata"))
    who = Who(str((body.get("user") or {}).get("id") or ""), meta.channel_id)
    return launcher.check(who, meta, (view.get("state") or {}).get("values") or {})
