"""Text for Block Kit: escaping untrusted text, and fitting everything inside Slack's limits.

Every piece of text that did not come from this code base (names from configs, check summaries,
error messages, what a user typed) goes through :func:`escape` before it reaches ``mrkdwn``.
"""

from __future__ import annotations

import re
from typing import Any

# Slack's documented limits (Slack's Block Kit reference); the fake Slack in tests holds
# every payload to the same numbers.
MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL = 3000
ID = 255
ACTIONS_ELEMENTS = 25
CONTEXT_ELEMENTS = 10
MESSAGE_TEXT = 40_000
FALLBACK_TEXT = 3000
"""Our own cap for a message's ``text`` fallback: notifications show the first line anyway."""

ELLIPSIS = "…"
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,4}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def escape(text: object) -> str:
    """Untrusted text made inert for mrkdwn: ``&``, ``<`` and ``>`` become entities (so
    ``<!channel>``, ``<!here>``, ``<@U…>`` and links are shown, not acted on) and a bare
    ``@channel``/``@here``/``@everyone`` gets a word joiner so it cannot notify anyone."""
    value = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@\u2060\\1", value)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, never inside an ``&entity;``."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ELLIPSIS))]
    cut = _PARTIAL_ENTITY.sub("", cut)
    return cut + ELLIPSIS


def plain(text: str, limit: int = HEADER_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit) or " ", "emoji": True}


def mrkdwn(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit) or " "}


def section(text: str, block_id: str) -> dict[str, Any]:
    return {"type": "section", "block_id": block_id[:ID], "text": mrkdwn(text)}


def context(texts: list[str], block_id: str) -> dict[str, Any]:
    elements = [mrkdwn(t, SECTION_TEXT) for t in texts if t][:CONTEXT_ELEMENTS]
    return {"type": "context", "block_id": block_id[:ID], "elements": elements or [mrkdwn(" ")]}


def button(
    text: str,
    action_id: str,
    *,
    value: str | None = None,
    url: str | None = None,
    style: str | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id[:ID],
        "text": plain(text, BUTTON_TEXT),
    }
    if value is not None:
        element["value"] = value[:BUTTON_VALUE]
    if url is not None:
        element["url"] = url[:URL]
    if style is not None:
        element["style"] = style
    return element


def user(ref: str) -> str:
    """A Slack user id as a mention (``<@U123>``); anything else (``cli``, ``schedule:daily``)
    as escaped text."""
    return f"<@{ref}>" if _USER_ID.match(ref) else escape(ref)


def fallback(text: str) -> str:
    """A message's top-level ``text``: what notifications and screen readers show."""
    return truncate(text, FALLBACK_TEXT) or " "


def fit_lines(lines: list[str], limit: int = SECTION_TEXT, more: str = "… and {n} more") -> str:
    """Join lines up to ``limit`` characters; the rest becomes ``… and N more``."""
    out: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = len(more.format(n=rest)) + 1 if rest > 1 else 0
        if used + len(line) + 1 + tail > limit:
            out.append(more.format(n=rest))
            break
        out.append(line)
        used += len(line) + 1
    return truncate("\n".join(out), limit)
