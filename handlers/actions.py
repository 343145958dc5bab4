"""Card buttons: Cancel, Retry, and the link buttons (a card's web link, a report's page and
PDF), which only need their click acknowledged.

Each click is acknowledged first; the run is then loaded from the database and the person's
access checked there (a button's value is never trusted); the answer is an ephemeral message.
The card itself changes through the outbox, like every other change to a run.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond

from app.models import Source
from app.slack.desk import Asker, Outcome
from blocks.ids import ActionId
from handlers import guard, replies
from handlers.ack import acknowledge
from handlers.services import Services


def register(app: AsyncApp, services: Services) -> None:
    desk, public_url = services.desk, services.public_url
    guarded = guard.guarded(services.home)

    async def cancel(body: dict[str, Any], respond: AsyncRespond) -> None:
        reply = await replies.press(desk.cancel, body, public_url)
        await respond({**reply, "replace_original": False})

    async def retry(body: dict[str, Any], respond: AsyncRespond) -> None:
        async def again(run_id: int, asker: Asker) -> Outcome:
            return await desk.retry(run_id, asker, Source.BUTTON)

        reply = await replies.press(again, body, public_url)
        await respond({**reply, "replace_original": False})

    # Bolt's lazy listeners: the click is acknowledged first, the work runs after.
    app.action(ActionId.CANCEL_RUN)(ack=acknowledge, lazy=[guarded(cancel)])
    app.action(ActionId.RETRY_RUN)(ack=acknowledge, lazy=[guarded(retry)])
    # Link buttons: the browser opens the link; Slack still sends the click and wants an ack.
    for link in (ActionId.OPEN_WEB, ActionId.REPORT_PAGE, ActionId.REPORT_PDF):
        app.action(link)(acknowledge)
