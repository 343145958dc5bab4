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

from app.access import Who
from app.errors import HubError
from app.slack.modal import Launcher, ModalMeta, Ready, Rejected
from blocks import modal as modal_blocks
from blocks.ids import ActionId, CallbackId
from handlers import guard
from handlers.ack import acknowledge
from handlers.services import Services

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    home, launcher = services.home, services.launcher
    guarded = guard.guarded(home)

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
        await ack(options=launcher.suggest(who, str(body.get("value") or "")[:100]))
        await launcher.offered(who)  # recorded after the answer: Slack waits for the options

    async def check(ack: AsyncAck, body: dict[str, Any]) -> None:
        _, decided = _decide(launcher, body)
        if isinstance(decided, Ready):
            await ack()
            return
        view = body.get("view") or {}
        inputs = {b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"}
        if set(decided.errors) <= inputs:
            await ack(response_action="errors", errors=decided.errors)
        else:  # Slack refuses errors for blocks the view lacks: say it in the modal itself
            metadata = str(view.get("private_metadata") or "")
            notice = modal_blocks.notice_modal(list(decided.errors.values()), metadata)
            await ack(response_action="update", view=notice)

    async def submit(body: dict[str, Any]) -> None:
        who, decided = _decide(launcher, body)
        if isinstance(decided, Rejected):
            await launcher.refused(who, decided)
            return
        try:
            run = await launcher.submit(decided, str((body.get("view") or {}).get("id") or ""))
        except HubError as exc:
            home.notice(who.user, str(exc))
            return
        log.info("modal: %s queued run #%s", decided.who.user, run.id)

    app.action(ActionId.MODAL_CUSTOMER)(ack=acknowledge, lazy=[guarded(customer_chosen)])
    app.options(ActionId.MODAL_CUSTOMER)(suggest)
    app.view(CallbackId.RUN_MODAL)(ack=check, lazy=[guarded(submit)])


def _decide(launcher: Launcher, body: dict[str, Any]) -> tuple[Who, Ready | Rejected]:
    view = body.get("view") or {}
    meta = ModalMeta.parse(view.get("private_metadata"))
    who = Who(str((body.get("user") or {}).get("id") or ""), meta.channel_id)
    return who, launcher.check(who, meta, (view.get("state") or {}).get("values") or {})
