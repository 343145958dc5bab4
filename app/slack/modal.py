"""The "Run checks" modal as a service: what the form offers a person, and what a submission
means.

Deny by default, like every command: the form offers only the customers the person may run
checks for (:func:`app.access.decide` with the channel the modal was opened from), and a
submission is decided again from the submitted values — nothing in the view is trusted. The
view's ``private_metadata`` is parsed by :class:`ModalMeta` (anything else reads as "no
channel"). Problems are returned per field so Slack shows them inline
(``response_action: errors``); a valid submission is queued as a ``modal`` run whose card is
posted in the channel the modal was opened from, or, from the Home tab, in the customer's own
channel (``slack.channel``; a customer without one is refused inline: run it from a channel).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from app.access import Action, Who, decide
from app.catalog import Catalog, Plan
from app.config import Customer, WindowError, parse_window
from app.engine.runs import Submit
from app.errors import HubError
from app.models import Run, Source
from app.slack.desk import Desk
from blocks import modal
from blocks.ids import ActionId, BlockId

log = logging.getLogger(__name__)

ChannelId = Annotated[str, StringConstraints(pattern=r"^[CDG][A-Z0-9]{2,20}$")]


class ModalMeta(BaseModel):
    """What the modal carries between Slack round trips (``private_metadata``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = 1
    channel_id: ChannelId | None = None
    """The channel ``/monitor`` was typed in; None when opened from the Home tab."""

    @classmethod
    def parse(cls, raw: object) -> ModalMeta:
        try:
            return cls.model_validate_json(str(raw or "{}"))
        except ValidationError:
            log.warning("modal: private_metadata did not parse; treating it as no channel")
            return cls()

    @classmethod
    def opened_in(cls, channel_id: object) -> ModalMeta:
        """The metadata for a modal opened from ``channel_id`` (dropped when malformed)."""
        try:
            return cls.model_validate({"channel_id": channel_id})
        except ValidationError:
            return cls()

    def dump(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), separators=(",", ":"))


@dataclass(frozen=True)
class Ready:
    """A valid submission: what to run and where its card goes."""

    plan: Plan
    window: timedelta | None
    channel_id: str
    who: Who


Errors = dict[str, str]
"""block_id → message, for ``response_action: errors``."""

CHOOSE = "Choose a customer from the list."


@dataclass(frozen=True)
class Rejected:
    """A submission that cannot run: what to show per field, and the customer value it named
    when that is one the person may not run (or none at all) — a decision to record."""

    errors: Errors
    asked: str | None = None


class Launcher:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    @property
    def catalog(self) -> Catalog:
        return self.desk.catalog

    def runnable(self, who: Who) -> list[Customer]:
        """The customers ``who`` may run checks for, by name."""
        allowed = self.desk.access.allowed(self.catalog.customers.values(), who, Action.RUN)
        return sorted(allowed, key=lambda c: c.name.lower())

    def form(self, who: Who, meta: ModalMeta, customer_id: str | None = None) -> dict[str, Any]:
        """The modal for ``who``, with ``customer_id``'s accounts and checks when it is one
        they may run (a single runnable customer is chosen for them)."""
        allowed = self.runnable(who)
        if not allowed:
            return modal.no_access_modal(meta.dump())
        by_id = {c.id: c for c in allowed}
        chosen = by_id.get(customer_id or "") or (allowed[0] if len(allowed) == 1 else None)
        accounts: list[modal.Choice] = []
        checks: list[modal.Choice] = []
        if chosen is not None:
            accounts = [modal.Choice(a.id, f"{a.id} — {a.name}") for a in chosen.accounts]
            kinds = dict.fromkeys(c for a in chosen.accounts for c in a.checks)
            checks = [modal.Choice(k, k) for k in kinds]
        return modal.run_modal(
            customers=[_choice(c) for c in allowed],
            external=len(allowed) > modal.MAX_OPTIONS,
            chosen=_choice(chosen) if chosen else None,
            accounts=accounts,
            checks=checks,
            metadata=meta.dump(),
        )

    def suggest(self, who: Who, query: str) -> list[dict[str, Any]]:
        """Options for the external customer select: runnable customers matching ``query``."""
        needle = query.strip().lower()
        found = [
            c for c in self.runnable(who) if needle in c.id.lower() or needle in c.name.lower()
        ]
        return modal.options([_choice(c) for c in found])

    async def offered(self, who: Who) -> None:
        """Record which customers the form offered ``who`` (after it was shown)."""
        await self.desk.access.filtered(self.runnable(who), who, Action.RUN)

    async def refused(self, who: Who, rejected: Rejected) -> None:
        """Record the decision behind a submission rejected for its customer."""
        if rejected.asked is not None:
            customer = self.catalog.customers.get(rejected.asked)
            await self.desk.access.check(customer, who, Action.RUN, asked=rejected.asked)

    def check(self, who: Who, meta: ModalMeta, values: Mapping[str, Any]) -> Ready | Rejected:
        """Decide a submission from its state values: :class:`Ready`, or what to show. A
        customer the person may not run reads like one that does not exist."""
        customer_id = _selected(values, BlockId.MODAL_CUSTOMER, ActionId.MODAL_CUSTOMER)
        if customer_id is None:
            return Rejected({BlockId.MODAL_CUSTOMER: CHOOSE})
        customer = self.catalog.customers.get(customer_id)
        if customer is None or not decide(customer, who, Action.RUN).allowed:
            return Rejected({BlockId.MODAL_CUSTOMER: CHOOSE}, asked=customer_id[:64])
        errors: Errors = {}
        window: timedelta | None = None
        window_text = _typed(values, BlockId.MODAL_WINDOW, ActionId.MODAL_WINDOW)
        if window_text:
            try:
                window = parse_window(window_text)
            except WindowError as exc:
                errors[BlockId.MODAL_WINDOW] = str(exc)
        accounts_id = modal.accounts_block_id(customer.id)
        accounts = set(_many(values, accounts_id, ActionId.MODAL_ACCOUNTS))
        checks = _many(values, BlockId.MODAL_CHECKS, ActionId.MODAL_CHECKS)
        plan: Plan | None = None
        try:
            plan = _plan(self.catalog, customer, accounts, checks)
        except HubError as exc:
            errors[BlockId.MODAL_CHECKS if checks else accounts_id] = str(exc)
        if errors or plan is None:
            return Rejected(errors)
        channel = meta.channel_id or customer.slack.channel
        if channel is None:
            return Rejected(
                {
                    BlockId.MODAL_CUSTOMER: f"{customer.name} has no Slack channel for results. "
                    f"Type `/monitor` in a channel to run its checks there."
                }
            )
        return Ready(plan, window, channel, who)

    async def submit(self, ready: Ready, view_id: str) -> Run:
        """Record the access decision and queue the run (once per modal: a repeated
        submission of the same view returns the same run)."""
        grant = await self.desk.access.admit(ready.plan.customer, ready.who, Action.RUN)
        if grant is None:  # the grant was withdrawn since the submission was checked
            raise HubError("That customer is no longer in your list; the run was not queued.")
        run, _ = await self.desk.runs.submit(
            Submit(
                plan=ready.plan,
                access=grant,
                requested_by=ready.who.user,
                source=Source.MODAL,
                window=ready.window,
                channel_id=ready.channel_id,
                idempotency_key=f"modal:{view_id}" if view_id else None,
            )
        )
        return run


def _plan(catalog: Catalog, customer: Customer, accounts: set[str], checks: Sequence[str]) -> Plan:
    known = {a.id for a in customer.accounts}
    unknown = sorted(accounts - known)
    if unknown:
        raise HubError(f"{', '.join(unknown)} is not an account of {customer.name}.")
    plan = catalog.plan(customer.id, checks)
    if not accounts:
        return plan
    targets = tuple((a, c) for a, c in plan.targets if a in accounts)
    if not targets:
        raise HubError(
            f"None of the chosen accounts runs {', '.join(checks)}. "
            "Choose other checks, or leave checks empty."
        )
    return Plan(customer, targets)


def _choice(customer: Customer) -> modal.Choice:
    return modal.Choice(customer.id, customer.name)


def _field(values: Mapping[str, Any], block_id: str, action_id: str) -> Mapping[str, Any]:
    block = values.get(block_id)
    field = block.get(action_id) if isinstance(block, Mapping) else None
    return field if isinstance(field, Mapping) else {}


def _selected(values: Mapping[str, Any], block_id: str, action_id: str) -> str | None:
    chosen = _field(values, block_id, action_id).get("selected_option")
    return str(chosen.get("value")) if isinstance(chosen, Mapping) else None


def _many(values: Mapping[str, Any], block_id: str, action_id: str) -> list[str]:
    chosen = _field(values, block_id, action_id).get("selected_options")
    if not isinstance(chosen, list):
        return []
    return [str(o.get("value")) for o in chosen if isinstance(o, Mapping)]


def _typed(values: Mapping[str, Any], block_id: str, action_id: str) -> str:
    return str(_field(values, block_id, action_id).get("value") or "").strip()
