"""The hub's own errors. Each message says what happened and what to do about it.

A message that points at another command carries it as a :class:`Hint`, so each surface
spells it its own way: ``str(error)`` is Slack's (``/monitor list``), ``error.said(CLI)`` the
terminal's (``mhub list``).

::

    HubError                    shown to the user as is (CLI, Slack, web)
    ├── UsageError              the command text or arguments are malformed
    ├── NotFound                no such run, customer or account — or one the asker may not
    │                           see, which gets the same answer (app.access)
    ├── ConfigError             customer YAML or environment is invalid (see app.loader)
    └── DatabaseError           unreachable database, or schema not at head (app.db)
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

QUOTE_LIMIT = 40
SLACK = "/monitor"
CLI = "mhub"
"""How a command is spelled where the message is read: ``/monitor list`` in Slack, ``mhub
list`` in a terminal."""


@dataclass(frozen=True)
class Hint:
    """A sentence that points at another command: ``before``, the command (``words`` after its
    name, such as ``retry 1842``), ``after``."""

    words: str
    before: str = ""
    after: str = ""

    def said(self, command: str = SLACK) -> str:
        return f"{self.before}`{command} {self.words}`{self.after}."


class HubError(Exception):
    """An expected failure with a message fit for the person who caused it, and maybe a
    :class:`Hint` at the command to use instead."""

    def __init__(self, message: str = "", hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.said(SLACK)

    def said(self, command: str) -> str:
        """The message with its hint spelled as ``command`` (:data:`SLACK` or :data:`CLI`)."""
        hint: Hint | None = getattr(self, "hint", None)  # a subclass may skip __init__
        if hint is None:
            return super().__str__()
        return f"{self.message} {hint.said(command)}"


class UsageError(HubError):
    pass


class NotFound(HubError):
    pass


class ConfigError(HubError):
    pass


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Someone's input as an error message shows it: in quotes, cut to ``limit`` characters,
    with control and invisible format characters shown as ``�`` so a newline or a
    right-to-left mark cannot reshape the answer."""
    shown = "".join("�" if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return f'"{shown}"'
