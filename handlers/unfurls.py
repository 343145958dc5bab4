"""``link_shared``: a web-view link posted in Slack gets its status card (:mod:`app.slack.unfurls`).

The event is acknowledged at once; the cards are made and sent after (Bolt's lazy listeners):
they read the database, and a month's report takes a moment to gather.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from app.slack.unfurls import Shared
from handlers import guard
from handlers.ack import acknowledge
from handlers.services import Services


def register(app: AsyncApp, services: Services) -> None:
    """Register the ``link_shared`` listener when the hub unfurls links (it has a public URL)."""
    unfurls = services.unfurls
    if unfurls is None:
        return

    async def unfurl(event: dict[str, Any]) -> None:
        await unfurls.shared(Shared.of(event))

    app.event("link_shared")(ack=acknowledge, lazy=[guard.guarded(services.home)(unfurl)])
