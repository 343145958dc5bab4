"""The App Home tab and the "Run checks" modal.

- ``app_home_opened`` → the runboard is published for that person (see :mod:`app.home`).
- Home buttons: Run checks (opens the modal), Cancel and Retry (answered on the Home tab
  itself, which has no channel to answer in).
- ``/monitor`` with no text → the modal, opened within the trigger's 3 seconds.
- The modal: choosing a customer → ``views.update`` with its accounts and checks; the external
  customer select's ``block_suggestion``; ``view_submission`` → field errors inline
  (``response_action: errors``) or the modal closes and the run is queued; its card is posted
  by the card refresher like any other run's.

Every listener acknowledges first; slow work runs after the ack (Bolt's lazy listeners). Must
be registered before :mod:`handlers.commands` so that the empty ``/monitor`` reaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from app.access import Who
from app.desk import Asker, Cancelled, Desk, Retried
from app.errors import HubError
from app.home import HomeTab
from app.modal import Launcher, ModalMeta, Ready
from app.models import Source
from app.runs import parse_run_id
from blocks import messages
from blocks.ids import COMMAND, ActionId, CallbackId

log = logging.getLogger(__name__)

EXPIRED = (
    "Slack gave me only 3 seconds to open the form and they ran out. "
    f"Please try again: `{COMMAND}` with no text, or *Run checks* on the Home tab."
)


async def acknowledge(ack: AsyncAck) -> None:
    await ack()


def register(app: AsyncApp, desk: Desk, home: HomeTab) -> None:
    launcher = Launcher(desk)
    _register_home(app, desk, home, launcher)
    _register_modal(app, home, launcher)


def _register_home(app: AsyncApp, desk: Desk, home: HomeTab, launcher: Launcher) -> None:
    @app.event("app_home_opened")
    async def opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            home.opened(str(event.get("user") or ""))

    async def empty(command: dict[str, Any]) -> bool:
        return not str(command.get("text") or "").strip()

    async def open_from_command(
        command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        who = Who(str(command.get("user_id") or ""), command.get("channel_id"))
        meta = ModalMeta.opened_in(command.get("channel_id"))
        if not await _open(client, str(command.get("trigger_id")), launcher.form(who, meta)):
            await respond(messages.error(EXPIRED))

    async def open_from_home(body: dict[str, Any], client: AsyncWebClient) -> None:
        user = str((body.get("user") or {}).get("id") or "")
        view = launcher.form(Who(user), ModalMeta())
        if not await _open(client, str(body.get("trigger_id")), view):
            home.notice(user, EXPIRED)

    async def cancel(body: dict[str, Any]) -> None:
        await _press(body, home, lambda run_id, asker: desk.cancel(run_id, asker))

    async def retry(body: dict[str, Any]) -> None:
        await _press(body, home, lambda run_id, asker: desk.retry(run_id, asker, Source.BUTTON))

    app.command(COMMAND, matchers=[empty])(ack=acknowledge, lazy=[open_from_command])
    app.action(ActionId.HOME_RUN_CHECKS)(ack=acknowledge, lazy=[open_from_home])
    app.action(ActionId.HOME_CANCEL)(ack=acknowledge, lazy=[cancel])
    app.action(ActionId.HOME_RETRY)(ack=acknowledge, lazy=[retry])


def _register_modal(app: AsyncApp, home: HomeTab, launcher: Launcher) -> None:
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


async def _open(client: AsyncWebClient, trigger_id: str, view: dict[str, Any]) -> bool:
    """Open ``view``; False when Slack says the trigger expired (it lives 3 s, once)."""
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        if exc.response.get("error") in ("expired_trigger_id", "invalid_trigger_id"):
            return False
        raise
    return True


async def _press(
    body: dict[str, Any],
    home: HomeTab,
    action: Callable[[int, Asker], Awaitable[Cancelled | Retried]],
) -> None:
    """A Home button: the value only names a run; access is checked by the desk."""
    user = str((body.get("user") or {}).get("id") or "")
    value = str(((body.get("actions") or [{}])[0]).get("value") or "")
    try:
        outcome = await action(parse_run_id(value), Asker(user))
    except HubError as exc:
        home.notice(user, str(exc))
        return
    if isinstance(outcome, Retried):
        home.notice(user, f"Run #{outcome.original} is being retried as run #{outcome.run.id}.")
    else:
        home.notice(user, outcome.message)
