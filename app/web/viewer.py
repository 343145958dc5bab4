"""Who is looking at the web view, and which customers they may see.

Every request the view answers carries one :class:`Viewer`, set by the identity middleware
(:mod:`app.web.identity`) before any view runs:

- **operator** (no Sign in with Slack configured): ``HUB_WEB_AUTH`` or loopback, every customer;
- **slack**: a person signed in with Slack, the customers the access rules let them see
  (:func:`app.access.sees`);
- **token**: an API token (``Authorization: Bearer``), its customers and its scope.

A customer the viewer may not see answers exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from aiohttp import web

from app.config import Customer


class Via(StrEnum):
    OPERATOR = "operator"
    SLACK = "slack"
    TOKEN = "token"


class Scope(StrEnum):
    READ = "read"
    """Read what the token's customers have: runs, findings, reports."""
    RUN = "run"
    """Also start, cancel and retry their runs (``POST /api/runs``)."""


@dataclass(frozen=True)
class Viewer:
    actor: str
    """Who the audit rows name: the Slack user id, ``token:<name>``, or ``operator``."""
    label: str
    """Shown in the page header: the person's name, the token's name, or "operator"."""
    via: Via
    customers: frozenset[str] | None
    """The customer ids this viewer may see; None: every customer (operator mode)."""
    scope: Scope = Scope.READ
    token_id: int | None = None

    def sees(self, customer_id: str | None) -> bool:
        if customer_id is None:
            return False
        return self.customers is None or customer_id in self.customers

    def shown(self, customers: Iterable[C]) -> list[C]:
        """The customers of ``customers`` this viewer may see, in their order."""
        return [c for c in customers if self.sees(c.id)]

    @property
    def may_run(self) -> bool:
        return self.scope == Scope.RUN


C = TypeVar("C", bound=Customer)

OPERATOR = Viewer(actor="operator", label="operator", via=Via.OPERATOR, customers=None)
"""Operator mode: ``HUB_WEB_AUTH`` (or loopback) sees every customer."""

VIEWER = web.RequestKey("viewer", Viewer)


def viewer(request: web.Request) -> Viewer:
    """The request's viewer (the identity middleware always sets one before a view runs)."""
    return request[VIEWER]
