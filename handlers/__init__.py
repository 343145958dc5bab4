"""Slack listeners: acknowledge, parse, call one service, render with ``blocks``, send.

:func:`register` is the one way in: the composition root (``app.main``) builds the services
and calls it once. Bolt tries listeners in the order they were registered, for every envelope,
building each one's arguments as it goes, so the order matters twice: the busiest listener
(``/monitor <text>``) goes first, and the empty ``/monitor`` (the modal) before any catch-all.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import actions, answers, commands, guard, home, modal, unfurls
from handlers.services import Services

__all__ = ["Services", "register"]


def register(app: AsyncApp, services: Services) -> None:
    """Register every listener on ``app``, in the order Bolt should try them, and the last
    resort for what they fail to answer (:mod:`handlers.guard`)."""
    guard.install(app)
    commands.register(app, services)
    home.register(app, services)
    modal.register(app, services)
    actions.register(app, services)
    answers.register(app, services)
    unfurls.register(app, services)
