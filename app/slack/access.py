"""Who may do what for which customer — deny by default — and the audit trail of every decision.

A person may act for a customer when they are in its ``slack.access.users`` or ``admins``, or
when they ask from a channel in its ``slack.access.channels`` (never implied by
``slack.channel``). Cancelling is also allowed to whoever started the run. Reading a run or a
list follows the same rule as running checks.

Every decision, allowed or denied, is written before (or in the same transaction as) the action
it guards: a run event when a run is concerned, else an audit row (a run event with no run),
with the user, the channel, the action and the outcome. Starting a run records its grant as the
new run's first event, in the transaction that creates it (:meth:`Access.admit`). The decision
itself is a pure function (:func:`decide`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.batch import GroupCommit
from app.config import Customer
from app.db import Database
from app.engine.events import Event, NewEvent, add_events
from app.errors import AccessDenied
from app.models import Run

log = logging.getLogger(__name__)


class Action(StrEnum):
    RUN = "run"
    STATUS = "status"
    LIST = "list"
    CANCEL = "cancel"
    RETRY = "retry"
    CUSTOMERS = "customers"
    SCHEDULES = "schedules"


_VERBS = {
    Action.RUN: "run checks for",
    Action.STATUS: "see runs of",
    Action.LIST: "see runs of",
    Action.CANCEL: "cancel runs of",
    Action.RETRY: "retry runs of",
    Action.CUSTOMERS: "see",
    Action.SCHEDULES: "see the schedules of",
}


@dataclass(frozen=True)
class Who:
    """The person asking, and the channel they asked from (None outside a channel)."""

    user: str
    channel: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """``user``, ``admin``, ``channel``, ``requester`` or ``denied``."""


def decide(customer: Customer, who: Who, action: Action, run: Run | None = None) -> Decision:
    """The access rule; pure."""
    grants = customer.slack.access
    if who.user in grants.admins:
        return Decision(True, "admin")
    if who.user in grants.users:
        return Decision(True, "user")
    if who.channel is not None and who.channel in grants.channels:
        return Decision(True, "channel")
    if action == Action.CANCEL and run is not None and run.requested_by == who.user:
        return Decision(True, "requester")
    return Decision(False, "denied")


def refusal(customer: Customer, action: Action, run: Run | None = None) -> str:
    """What a refused person reads: what they could not do, and what to do about it."""
    if action == Action.CANCEL and run is not None:
        return (
            f"You can't cancel run #{run.id}: only whoever started it and {customer.name}'s "
            "users and admins can. Ask an admin to add you to its access list."
        )
    what = _VERBS[action]
    return f"You can't {what} {customer.name}. Ask an admin to add you to its access list."


def audit_data(
    who: Who, action: Action, decision: Decision, customer: str | None
) -> dict[str, Any]:
    """What an ``access`` event records about a decision (its actor is ``who.user``)."""
    return {
        "channel": who.channel,
        "action": action.value,
        "allowed": decision.allowed,
        "reason": decision.reason,
        "customer": customer,
    }


class Access:
    """Access decisions with their audit rows (written before the action they guard;
    concurrent decisions share a transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows: GroupCommit[NewEvent, None] = GroupCommit(self._write)

    async def require(
        self, customer: Customer, who: Who, action: Action, run: Run | None = None
    ) -> Decision:
        """Record the decision; raise AccessDenied (with what to do) when refused."""
        decision = decide(customer, who, action, run)
        await self.record(who, action, decision, customer.id, run.id if run else None)
        if not decision.allowed:
            raise AccessDenied(refusal(customer, action, run))
        return decision

    async def admit(self, customer: Customer, who: Who, action: Action) -> dict[str, Any]:
        """Decide before an action that creates a run. A refusal is recorded and raised now;
        a grant is returned as its audit data, which the caller writes with the run it allows
        (``Submit.access``), so a burst of commands costs one transaction, not two."""
        decision = decide(customer, who, action)
        if not decision.allowed:
            await self.record(who, action, decision, customer.id, None)
            raise AccessDenied(refusal(customer, action))
        return audit_data(who, action, decision, customer.id)

    async def visible(
        self, customers: Iterable[Customer], who: Who, action: Action
    ) -> list[Customer]:
        """The customers ``who`` may see, recorded as one audit row naming them."""
        allowed = [c for c in customers if decide(c, who, action).allowed]
        decision = Decision(bool(allowed), "filtered")
        await self.record(who, action, decision, ",".join(c.id for c in allowed) or None, None)
        return allowed

    async def record(
        self,
        who: Who,
        action: Action,
        decision: Decision,
        customer: str | None,
        run_id: int | None,
    ) -> None:
        data = audit_data(who, action, decision, customer)
        await self._rows.add((run_id, Event.ACCESS, who.user, data))
        if not decision.allowed:
            log.info(
                "access denied: %s may not %s (customer %s, run %s, channel %s)",
                who.user,
                action.value,
                customer,
                run_id,
                who.channel,
            )

    async def _write(self, rows: Sequence[NewEvent]) -> list[None]:
        async with self.db.write() as session:
            await add_events(session, self.db, rows)
        return [None] * len(rows)
