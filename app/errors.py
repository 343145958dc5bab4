"""The hub's own errors. Each message says what happened and what to do about it.

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

QUOTE_LIMIT = 40


class HubError(Exception):
    """An expected failure with a message fit for the person who caused it."""


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
