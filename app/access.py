"""Who may do what for which customer — deny by default — and the audit trail of every decision.

A person may act for a customer when they are in its ``slack.access.users`` or ``admins``, or
when they ask from a channel in its ``slack.access.channels`` (never implied by
``slack.channel``). Cancelling is also allowed to whoever started the run. Reading a run, a
list or a monthly report follows the same rule as running checks. Answering a finding
(acknowledge, snooze, mute) is for named people only: a channel grant does not allow it,
because an answer quiets a problem for everyone who watches the customer.

What a person may not see does not exist for them: a customer, account or run they may not see
gets the same answer as one that does not exist (:func:`hidden_target`, :func:`hidden_run`),
and suggestions ("did you mean") come only from what they may see.

Every decision, allowed or denied, is written before (or in the same transaction as) the action
it guards: a run event when a run is concerned, else an audit row (a run event with no run),
with the user, the channel, the action, the outcome and what was asked for. Starting a run
records its grant as the new run's first event, in the transaction that creates it
(:meth:`Access.admit`). The decision itself is a pure function (:func:`decide`).
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
from app.errors import quoted
from app.models import Run
from blocks.ids import COMMAND

log = logging.getLogger(__name__)


class Action(StrEnum):
    RUN = "run"
    STATUS = "status"
    LIST = "list"
    CANCEL = "cancel"
    RETRY = "retry"
    CUSTOMERS = "customers"
    SCHEDULES = "schedules"
    REPORT = "report"
    """A customer's monthly report (``/monitor report``): read-only, granted like LIST."""
    READ = "read"
    """A web page or an API answer about a customer (its path is what was asked for)."""
    ANSWER = "answer"
    """Acknowledge, snooze or mute a finding: named people only (``users``, ``admins``)."""


@dataclass(frozen=True)
class Who:
    """The person asking, and the channel they asked from (None outside a channel)."""

    user: str
    channel: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """``user``, ``admin``, ``channel`` or ``requester`` when allowed; ``denied`` (configured,
    not granted), ``unknown`` (not configured) or ``filtered`` (a list cut to what is allowed)."""


def decide(customer: Customer, who: Who, action: Action, run: Run | None = None) -> Decision:
    """The access rule; pure."""
    grants = customer.slack.access
    if who.user in grants.admins:
        return Decision(True, "admin")
    if who.user in grants.users:
        return Decision(True, "user")
    if action == Action.ANSWER:  # an answer quiets a problem for everyone: a named person's
        return Decision(False, "denied")
    if who.channel is not None and who.channel in grants.channels:
        return Decision(True, "channel")
    if action == Action.CANCEL and run is not None and run.requested_by == who.user:
        return Decision(True, "requester")
    return Decision(False, "denied")


def sees(customer: Customer, user: str, member_of: frozenset[str]) -> Decision:
    """Whether ``user`` may read ``customer`` outside a channel (the web view): a user or
    admin grant, or membership of one of its granted channels (``member_of`` are the
    channels the person is in). Pure."""
    decision = decide(customer, Who(user), Action.LIST)
    if decision.allowed:
        return decision
    if member_of & frozenset(customer.slack.access.channels):
        return Decision(True, "channel")
    return decision


UNKNOWN = Decision(False, "unknown")
"""Asked for something that is not configured (or no longer is)."""


def hidden_target(name: str, suggestion: str | None = None) -> str:
    """The one answer for a customer or account that does not exist or that the person may
    not see; ``suggestion`` comes only from what they may see."""
    also = f" Did you mean {suggestion}?" if suggestion else ""
    return (
        f"I don't know {quoted(name)}, or you may not see it.{also} `{COMMAND} customers` "
        "lists what you can see; an admin can add you to a customer's access list."
    )


def hidden_run(run_id: int) -> str:
    """The one answer for a run that does not exist or that the person may not see."""
    return f"There is no run #{run_id} that you can see. `{COMMAND} list` shows the runs you can."


def audit_data(
    who: Who,
    action: Action,
    decision: Decision,
    customer: str | None,
    asked: str | None = None,
    via: str | None = None,
) -> dict[str, Any]:
    """What an ``access`` event records about a decision (its actor is ``who.user``);
    ``asked`` is what the person named when it matched nothing they may see; ``via`` is how
    they asked when not in Slack (``web``, ``api``)."""
    data = {
        "channel": who.channel,
        "action": action.value,
        "allowed": decision.allowed,
        "reason": decision.reason,
        "customer": customer,
    }
    if asked is not None:
        data["asked"] = asked
    if via is not None:
        data["via"] = via
    return data


class Access:
    """Access decisions with their audit rows (written before the action they guard;
    concurrent decisions share a transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows: GroupCommit[NewEvent, None] = GroupCommit(self._write)

    async def check(
        self,
        customer: Customer | None,
        who: Who,
        action: Action,
        run: Run | None = None,
        *,
        asked: str | None = None,
    ) -> Decision:
        """Decide (``customer`` None: not configured, so denied) and record the decision."""
        decision = decide(customer, who, action, run) if customer is not None else UNKNOWN
        customer_id = customer.id if customer else (run.customer_id if run else None)
        await self.record(who, action, decision, customer_id, run.id if run else None, asked)
        return decision

    async def admit(
        self, customer: Customer | None, who: Who, action: Action, *, asked: str | None = None
    ) -> dict[str, Any] | None:
        """Decide before an action that creates a run. A refusal is recorded now and None
        returned; a grant is returned as its audit data, which the caller writes with the run
        it allows (``Submit.access``), so a burst of commands costs one transaction, not two."""
        decision = decide(customer, who, action) if customer is not None else UNKNOWN
        if customer is None or not decision.allowed:
            await self.record(who, action, decision, customer.id if customer else None, None, asked)
            return None
        return audit_data(who, action, decision, customer.id)

    def allowed(self, customers: Iterable[Customer], who: Who, action: Action) -> list[Customer]:
        """The customers ``who`` may see for ``action`` (pure; :meth:`visible` records it)."""
        return [c for c in customers if decide(c, who, action).allowed]

    async def visible(
        self, customers: Iterable[Customer], who: Who, action: Action
    ) -> list[Customer]:
        """The customers ``who`` may see, recorded as one audit row naming them."""
        allowed = self.allowed(customers, who, action)
        await self.filtered(allowed, who, action)
        return allowed

    async def filtered(self, allowed: Sequence[Customer], who: Who, action: Action) -> None:
        """Record that ``who`` was shown only ``allowed``."""
        decision = Decision(bool(allowed), "filtered")
        await self.record(who, action, decision, ",".join(c.id for c in allowed) or None, None)

    async def record(
        self,
        who: Who,
        action: Action,
        decision: Decision,
        customer: str | None,
        run_id: int | None,
        asked: str | None = None,
        via: str | None = None,
        kind: Event = Event.ACCESS,
    ) -> None:
        data = audit_data(who, action, decision, customer, asked, via)
        await self._rows.add((run_id, kind, who.user, data))
        if not decision.allowed:
            log.info(
                "access denied: %s may not %s (customer %s, run %s, channel %s, reason %s)",
                who.user,
                action.value,
                customer,
                run_id,
                who.channel,
                decision.reason,
            )

    async def _write(self, rows: Sequence[NewEvent]) -> list[None]:
        async with self.db.write() as session:
            await add_events(session, self.db, rows)
        return [None] * len(rows)
