"""``/monitor maintenance TARGET DURATION [reason]``: parse, start the window (access-checked
and audited by :class:`app.slack.maintaining.Maintaining`), say what was started. Never
raises: an unexpected error becomes a short reply with an id that is also in the log."""

from __future__ import annotations

import logging
from typing import Any

from app.errors import HubError
from app.slack import grammar
from app.slack.desk import Asker
from app.slack.maintaining import Maintaining
from blocks import maintenance as view
from blocks import messages
from handlers.guard import new_ref

log = logging.getLogger(__name__)

VERB = "maintenance"


def asks(text: str) -> bool:
    """Whether ``/monitor <text>`` is this command."""
    words = text.split(maxsplit=1)
    return bool(words) and words[0].lower() == VERB


async def answer(desk: Maintaining, asker: Asker, text: str) -> dict[str, Any]:
    """The reply to ``/monitor maintenance …``."""
    try:
        command = grammar.parse(text)
        if not isinstance(command, grammar.MaintenanceCommand):  # asks() said it was
            raise TypeError(f"not a maintenance command: {type(command).__name__}")
        started = await desk.start(command, asker.who)
    except HubError as exc:
        return messages.error(str(exc))
    except Exception:
        ref = new_ref()
        log.exception("unexpected error %s while starting a maintenance window", ref)
        return messages.unexpected(ref)
    customer = started.customer
    return view.started(started.window, customer.name, customer.tz, desk.clock())
