"""The last resort: an unexpected error in any listener still gets an answer.

The error is logged once with a short reference (``ref 3f9c01ab``) and the person sees
"Something went wrong on our side (error ``3f9c01ab``)" with the same reference:

- in the acknowledgement, when Slack is still waiting for one (:func:`install`, Bolt's error
  handler): a slash command gets the message, a modal submission a view that says it, a
  suggestion no options;
- after the acknowledgement (Bolt's lazy listeners, :func:`guarded`): through the
  ``response_url`` when the request has one, else on the person's Home tab.

Expected failures never come here: the desk answers them with what to do.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse

from app.slack.home import HomeTab
from blocks import messages
from blocks import modal as modal_blocks

log = logging.getLogger(__name__)

Lazy = Callable[..., Awaitable[None]]


def new_ref() -> str:
    return uuid.uuid4().hex[:8]


def install(app: AsyncApp) -> None:
    """Answer, in the ack, whatever a listener failed to acknowledge because it raised."""

    async def on_error(
        error: Exception, body: dict[str, Any], response: BoltResponse | None
    ) -> BoltResponse | None:
        ref = new_ref()
        log.error("unexpected error %s in a Slack listener", ref, exc_info=error)
        if response is None:  # already acknowledged: nothing more can go in the ack
            return None
        return BoltResponse(status=200, body=_ack_answer(body, ref) or "")

    app.error(on_error)


def guarded(home: HomeTab) -> Callable[[Lazy], Lazy]:
    """Wrap a lazy listener (work done after the ack) so that an unexpected error is logged
    with a reference and the person told, instead of Bolt logging it where nobody looks."""

    def wrap(lazy: Lazy) -> Lazy:
        @functools.wraps(lazy)  # Bolt reads the wrapped listener's argument names
        async def run(**kwargs: Any) -> None:
            try:
                await lazy(**kwargs)
            except Exception:
                ref = new_ref()
                log.exception("unexpected error %s in a Slack listener", ref)
                await _tell(home, kwargs, ref)

        return run

    return wrap


def _ack_answer(body: dict[str, Any], ref: str) -> dict[str, Any] | None:
    if "command" in body:
        return messages.unexpected(ref)
    kind = body.get("type")
    if kind == "view_submission":
        metadata = str((body.get("view") or {}).get("private_metadata") or "")
        text = f"Something went wrong on our side (error {ref}). Please try again."
        return {"response_action": "update", "view": modal_blocks.notice_modal([text], metadata)}
    if kind == "block_suggestion":
        return {"options": []}
    return None


async def _tell(home: HomeTab, kwargs: dict[str, Any], ref: str) -> None:
    request = kwargs.get("body") or kwargs.get("command") or {}
    url = request.get("response_url") if isinstance(request, dict) else None
    user = _user(request)
    try:
        if url:
            await AsyncRespond(response_url=url)(messages.unexpected(ref))
        elif user:
            home.notice(user, f"Something went wrong on our side (error {ref}). Please try again.")
    except Exception:
        log.warning("could not tell the person about error %s", ref)


def _user(request: Any) -> str:
    if not isinstance(request, dict):
        return ""
    user = request.get("user")
    if isinstance(user, dict):
        return str(user.get("id") or "")
    return str(request.get("user_id") or "")
