"""The App Home tab: the runboard, its buttons, and opening the "Run checks" modal.

- ``app_home_opened`` → the runboard is published for that person (see :mod:`app.slack.home`).
- Home buttons: Run checks (opens the modal), Cancel and Retry (answered on the Home tab
  itself, which has no channel to answer in).
- ``/monitor`` with no text → the modal, opened within the trigger's 3 seconds.

Every listener acknowledges first; slow work runs after the ack (Bolt's lazy listeners). Must
be registered before any catch-all of ``/monitor`` so that the empty one reaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from app.access import Who
from app.engine.runs import parse_run_id
from app.errors import HubError
from app.models import Source
from app.slack.desk import Asker, Cancelled, Retried
from app.slack.home import HomeTab
from app.slack.modal import ModalMeta
from blocks import messages
from blocks.ids import COMMAND, ActionId
from handlers import guard
from handlers.ack import acknowledge
from handlers.services import Services

log = logging.getLogger(__name__)

EXPIRED = (
    "Slack gave me only 3 seconds to open the form and they ran out. "
    f"Please try again: `{COMMAND}` with no text, or *Run checks* on the Home tab."
)


def register(app: AsyncApp, services: Services) -> None:
    desk, home, launcher = services.desk, services.home, services.launcher
    guarded = guard.guarded(home)

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
            return
        await launcher.offered(who)

    async def open_from_home(body: dict[str, Any], client: AsyncWebClient) -> None:
        user = str((body.get("user") or {}).get("id") or "")
        view = launcher.form(Who(user), ModalMeta())
        if not await _open(client, str(body.get("trigger_id")), view):
            home.notice(user, EXPIRED)
            return
        await launcher.offered(Who(user))

    async def cancel(body: dict[str, Any]) -> None:
        await _press(body, home, lambda run_id, asker: desk.cancel(run_id, asker))

    async def retry(body: dict[str, Any]) -> None:
        await _press(body, home, lambda run_id, asker: desk.retry(run_id, asker, Source.BUTTON))

    app.command(COMMAND, matchers=[empty])(ack=acknowledge, lazy=[guarded(open_from_command)])
    app.action(ActionId.HOME_RUN_CHECKS)(ack=acknowledge, lazy=[guarded(open_from_home)])
    app.action(ActionId.HOME_CANCEL)(ack=acknowledge, lazy=[guarded(cancel)])
    app.action(ActionId.HOME_RETRY)(ack=acknowledge, lazy=[guarded(retry)])


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
