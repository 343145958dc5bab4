"""The hub's own errors. Each message says what happened and what to do about it.

::

    HubError                    shown to the user as is (CLI, Slack, web)
    ├── UsageError              the command text or arguments are malformed
    ├── NotFound                no such run, customer or account
    ├── AccessDenied            the user may not do this for this customer
    ├── ConfigError             customer YAML or environment is invalid (see app.loader)
    └── DatabaseError           unreachable database, or schema not at head (app.db)
"""

from __future__ import annotations


class HubError(Exception):
    """An expected failure with a message fit for the person who caused it."""


class UsageError(HubError):
    pass


class NotFound(HubError):
    pass


class AccessDenied(HubError):
    pass


class ConfigError(HubError):
    pass
