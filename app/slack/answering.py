"""Answering findings from Slack: the ``⋯`` menu beside a problem line, the reason modal, and
what the person is told.

A menu's value names a card or digest row (``r<result id>``: its problem lines) or one finding
(``f<finding id>``) and is never trusted: the target is loaded, its customer found, and the
person's access decided (:data:`~app.access.Action.ANSWER`, audited) before anything is
said about it. A target that does not exist and one the person may not see get the same answer.
After an answer the card of the run it was given from, and the digests that show the findings,
are rendered again and updated in place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.access import Access, Action, Who
from app.catalog import Catalog
from app.config import Customer
from app.db import Database
from app.engine import findings
from app.engine.answers import (
    SNOOZES,
    AnswerError,
    Answers,
    Given,
    Standing,
    end_of,
    reason_of,
    within,
)
from app.errors import NotFound
from app.models import TERMINAL_STATUSES, Finding, Result, Run
from app.slack.cards import Cards
from blocks import answer as view
from blocks import findings as lines
from checks import kinds

log = logging.getLogger(__name__)

NOTHING = (
    "There is nothing here that you can answer. If you should be able to, ask an admin to add "
    "you to the customer's `users` in its YAML."
)
NAMED_ONLY = (
    "Answering a finding needs a named grant: the customer's `users` or `admins`. A channel "
    "grant lets you run checks, not quiet problems for everyone."
)
RESOLVED = "That problem has resolved since: there is nothing to answer. The card shows it now."
STILL_RUNNING = (
    "This run is still running: its new problems become findings you can answer when it "
    "finishes. Try again then."
)


@dataclass(frozen=True)
class Target:
    """What a menu's value names, once access is granted: the customer, the open findings of
    the line, and the run whose card shows them (None from a digest's finding line)."""

    customer: Customer
    found: Sequence[Finding]
    run_id: int | None
    where: str


@dataclass(frozen=True)
class Form:
    """A modal to open."""

    view: dict[str, Any]


@dataclass(frozen=True)
class Said:
    """A message for the person (ephemeral)."""

    text: str


@dataclass(frozen=True)
class Request:
    """A submitted modal, read: what to answer, how, why, until when."""

    verb: str
    value: str
    channel: str | None
    ids: tuple[int, ...]
    reason: str
    until: datetime | None
    scope: str


class Answering:
    def __init__(
        self,
        db: Database,
        answers: Answers,
        access: Access,
        catalog: Catalog,
        cards: Cards,
        after_answer: Callable[[str, Sequence[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.answers = answers
        self.access = access
        self.catalog = catalog
        self.cards = cards
        self.after_answer = after_answer

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.answers.clock

    # -- the menu

    async def chosen(self, value: str, who: Who) -> Form | Said:
        """Someone chose an option of a ``⋯`` menu: acknowledge at once, or the modal."""
        parsed = lines.parse(value)
        if parsed is None:
            return Said(NOTHING)
        verb, kind, ident = parsed
        if verb == "console":  # the browser opens the link; nothing to do
            return Said("")
        try:
            target = await self.locate(kind, ident, who)
        except NotFound as exc:
            return Said(str(exc))
        if verb == "ack":
            given = await self.answers.acknowledge(
                target.customer.id, [f.id for f in target.found], who.user, _via(who)
            )
            await self._refresh(target, given)
            return Said(self._told("ack", target, given, who.user))
        if verb == "unsnooze":
            given = await self.answers.unsnooze(
                target.customer.id, [f.id for f in target.found], who.user, _via(who)
            )
            await self._refresh(target, given)
            return Said(self._told("unsnooze", target, given, who.user))
        choices = [view.Choice(f.id, _name(f)) for f in target.found]
        meta = {"v": value, "c": who.channel, "z": target.customer.timezone}
        return Form(view.modal(verb, choices, target.where, meta))

    async def locate(self, kind: str, ident: int, who: Who) -> Target:
        """The target of a menu, if ``who`` may answer it; else :class:`NotFound` with one
        answer for "no such thing" and "not yours"."""
        async with self.db.read() as session:
            run: Run | None = None
            if kind == "r":
                result = await session.get(Result, ident)
                run = await session.get(Run, result.run_id) if result is not None else None
                customer_id = run.customer_id if run is not None else None
            else:
                result = None
                one = await session.get(Finding, ident)
                customer_id = one.customer_id if one is not None else None
        customer = self.catalog.customers.get(customer_id) if customer_id else None
        decision = await self.access.check(
            customer, who, Action.ANSWER, run, asked=f"{kind}{ident}"
        )
        if customer is None or not decision.allowed:
            seen = customer is not None and self.access.allowed([customer], who, Action.RUN)
            raise NotFound(NAMED_ONLY if seen else NOTHING)
        if result is not None:
            fingerprints = [
                s.fingerprint
                for s in findings.lines_of(
                    result.check, result.account, result.severity, result.summary, result.details
                )
            ]
            found = await self.answers.findings(customer.id, fingerprints=fingerprints)
            where = f"{result.account} · {kinds.title(result.check)}"
        else:
            found = await self.answers.findings(customer.id, ids=[ident])
            where = f"{found[0].account} · {kinds.title(found[0].check)}" if found else ""
        found = [f for f in found if f.status == "open"]
        if not found:
            running = run is not None and run.status not in TERMINAL_STATUSES
            raise NotFound(STILL_RUNNING if running else RESOLVED)
        return Target(customer, found, run.id if run is not None else None, where)

    # -- the modal

    def read(self, view_state: Mapping[str, Any], metadata: str) -> Request | dict[str, str]:
        """A submitted modal as a :class:`Request`, or errors keyed by block (Slack shows
        them under the fields)."""
        try:
            meta = json.loads(metadata or "{}")
        except ValueError:
            meta = {}
        value = str(meta.get("v") or "")
        parsed = lines.parse(value)
        if parsed is None or parsed[0] not in ("snooze", "mute"):
            return {view.REASON: NOTHING}
        verb = parsed[0]
        values = {k: v for block in view_state.values() for k, v in (block or {}).items()}
        errors: dict[str, str] = {}
        try:
            reason = reason_of(_text(values.get(view.REASON)))
        except AnswerError as exc:
            errors[view.REASON] = str(exc)
            reason = ""
        ids = tuple(
            int(o["value"])
            for o in (values.get(view.WHICH) or {}).get("selected_options") or []
            if str(o.get("value", "")).isdigit() and len(str(o["value"])) < 16
        )
        if view.WHICH in values and not ids:
            errors[view.WHICH] = "Tick at least one."
        until: datetime | None = None
        scope = "resource"
        try:
            until, scope = self._when(verb, values, _zone(meta.get("z")))
        except AnswerError as exc:
            errors[view.UNTIL if view.UNTIL in values or verb == "mute" else view.LENGTH] = str(exc)
        except (ValueError, TypeError, OverflowError, OSError):
            errors[view.UNTIL] = "That is not a date. Pick one with the date picker."
        if errors:
            return errors
        return Request(verb, value, meta.get("c"), ids, reason, until, scope)

    def _when(
        self, verb: str, values: Mapping[str, Any], tz: tzinfo
    ) -> tuple[datetime | None, str]:
        """Until when (None: until it resolves, or no expiry) and, for a mute, its scope."""
        now = self.clock()
        picked = values.get(view.UNTIL) or {}
        if verb == "snooze":
            stamp = picked.get("selected_date_time")
            if stamp is not None:
                return within(datetime.fromtimestamp(int(stamp), UTC), now), "resource"
            length = ((values.get(view.LENGTH) or {}).get("selected_option") or {}).get("value")
            if length not in (*SNOOZES, "resolved"):
                raise AnswerError("Choose how long: 1 hour, 24 hours, 7 days or until it resolves.")
            return (now + SNOOZES[length] if length in SNOOZES else None), "resource"
        option = (values.get(view.SCOPE) or {}).get("selected_option") or {}
        scope = str(option.get("value") or "resource")
        if scope not in {s for s, _ in view.SCOPES}:
            raise AnswerError("Choose what to mute.")
        day = picked.get("selected_date")
        until = within(end_of(date.fromisoformat(str(day)), tz), now) if day else None
        return until, scope

    async def submit(self, request: Request, who: Who) -> Said:
        """Apply a read modal: access is decided again (the view is not trusted)."""
        parsed = lines.parse(request.value)
        assert parsed is not None
        _, kind, ident = parsed
        try:
            target = await self.locate(kind, ident, who)
        except NotFound as exc:
            return Said(str(exc))
        chosen = [f for f in target.found if not request.ids or f.id in request.ids]
        if not chosen:
            return Said(RESOLVED)
        if request.verb == "snooze":
            given = await self.answers.snooze(
                target.customer.id, [f.id for f in chosen], who.user, request.reason,
                request.until, _via(who),
            )  # fmt: skip
            await self._refresh(target, given)
            return Said(self._told("snooze", target, given, who.user, request))
        rules = []
        for scope in {_scope_key(f, request.scope): f for f in chosen}.values():
            rules.append(
                await self.answers.mute(
                    target.customer.id,
                    check=scope.check,
                    account=None if request.scope == "customer" else scope.account,
                    region=scope.region or None if request.scope == "resource" else None,
                    resource=scope.resource if request.scope == "resource" else "*",
                    reason=request.reason,
                    owner=who.user,
                    until=request.until,
                    by=who.user,
                    audit=_via(who),
                )
            )
        await self._refresh(target, Given(chosen, (), ()))
        names = [_name(f) for f in chosen] if request.scope == "resource" else [target.where]
        now = self.clock()
        return Said(
            view.done(
                "mute", names, who.user, reason=request.reason, tz=target.customer.tz, now=now
            )
            + (
                f" Until {lines.clock(request.until, target.customer.tz, now)}."
                if request.until
                else ""
            )
        )

    # -- after an answer

    async def _refresh(self, target: Target, given: Given) -> None:
        if not given.changed:
            return
        if target.run_id is not None:
            self.cards.changed(target.run_id)
        if self.after_answer is not None:
            try:
                await self.after_answer(target.customer.id, [f.fingerprint for f in given.changed])
            except Exception:  # the answer stands; the digest catches up on its next change
                log.exception("answer: refreshing the digests failed")

    def _told(
        self, verb: str, target: Target, given: Given, by: str, request: Request | None = None
    ) -> str:
        now = self.clock()
        tz = target.customer.tz
        parts = []
        if given.changed:
            parts.append(
                view.done(
                    verb, [_name(f) for f in given.changed], by,
                    until=request.until if request else None,
                    reason=request.reason if request else None, tz=tz, now=now,
                )
            )  # fmt: skip
        if given.first:
            parts.append(view.answered_first([_first(f, s) for f, s in given.first], tz, now))
        if given.resolved and not given.changed and not given.first:
            parts.append(RESOLVED)
        return "\n".join(parts) or RESOLVED


def _first(found: Finding, standing: Standing) -> tuple[str, str, str | None, datetime | None]:
    if standing.state == "open" and standing.ack_by is None:
        return (_name(found), "open", None, None)
    if standing.state in ("snoozed", "muted"):
        return (_name(found), standing.state, standing.by, standing.at)
    return (_name(found), "acknowledged", standing.ack_by, found.ack_at)


def _name(found: Finding) -> str:
    return found.resource or f"{found.account} · {kinds.title(found.check)}"


def _scope_key(found: Finding, scope: str) -> tuple[str, ...]:
    if scope == "resource":
        return (found.check, found.account, found.region, found.resource)
    if scope == "account":
        return (found.check, found.account)
    return (found.check,)


def _via(who: Who) -> dict[str, Any]:
    return {"via": "slack", "channel": who.channel}


def _text(entry: Any) -> str:
    return str((entry or {}).get("value") or "") if isinstance(entry, Mapping) else ""


def _zone(name: Any) -> tzinfo:
    try:
        return ZoneInfo(str(name)) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
