"""Answers to findings: acknowledge ("I'm on it"), snooze ("quiet until …"), mute (a rule).

A finding's *standing* is what it is now, one of :data:`STATES`, decided by :func:`standing`
from its row, the customer's mute rules and the time:

- ``resolved`` — the last look did not see it (an answer ends when its finding resolves);
- ``muted`` — an active mute rule matches it (rules from the customer's YAML, origin ``yaml``,
  or made from Slack or the CLI, origin ``slack``, kept in ``mutes``);
- ``maintenance`` — a maintenance window open now covers its account and check (the YAML's
  ``maintenance:``, or one started with ``/monitor maintenance``): labelled, not routed;
- ``snoozed`` — snoozed until a time still to come, or until it resolves, and no worse than
  when it was snoozed (a warn that turns crit comes back at once);
- ``acknowledged`` — someone said they are on it;
- ``open`` — none of those. A finding whose snooze ended (by time, or because it got worse) is
  open again and says so (:attr:`Standing.back`).

Snoozed, muted and in-maintenance findings leave the problem list and do not raise an outcome
(:func:`settle`); acknowledged ones stay, with who and when beside them.

:class:`Answers` gives answers: each one is applied only to the version of the finding it was
given on (``findings.answers``), so of two people answering the same finding at once one wins
and the other is told who answered first; each is audited in the transaction that makes it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from fnmatch import fnmatchcase
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import Catalog
from app.config import Customer, MaintenanceWindow, Suppression, clip, reason_text
from app.db import Database
from app.engine import maintenance
from app.engine.events import Event, NewEvent, add_events
from app.engine.maintenance import Window
from app.errors import HubError
from app.models import Finding, Maintenance, Mute, Result

STATES = ("open", "acknowledged", "snoozed", "muted", "resolved")
"""What a finding can be, in the words the CLI, the API and the web view use."""
QUIET = ("snoozed", "muted", "maintenance")
"""Standings that leave the problem list and do not raise an outcome."""
MAINTENANCE = "maintenance"
"""The ``origin`` of a :class:`Held` rule, and the standing of the findings it covers."""
MIN_SNOOZE = timedelta(minutes=1)
MAX_SNOOZE = timedelta(days=365)
SNOOZES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
"""The snoozes offered in Slack (any other length is given with ``--for`` or a date)."""
_RANK = {"warn": 1, "crit": 2}
_FOR = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}


class AnswerError(HubError):
    """An answer that cannot be given as asked; the message says what to do."""


# -- what people type -------------------------------------------------------------------------


def reason_of(text: str | None) -> str:
    """A snooze's or mute's reason: required, at most :data:`MAX_REASON` characters (the rule
    of a reason in the YAML)."""
    try:
        return str(reason_text(text))
    except ValueError as exc:
        message = str(exc)
        raise AnswerError(f"{message[:1].upper()}{message[1:]}.") from None


def parse_for(text: str) -> timedelta:
    """``90m``, ``1h``, ``24h``, ``7d`` or ``2w`` → a length from 1 minute to 365 days."""
    match = _FOR.match(text.lower())
    if not match or len(match.group(1)) > 7:
        raise AnswerError(
            f'"{clip(text)}" is not a length. Use a number and a unit: 1h, 24h, 7d or 2w.'
        )
    length = timedelta(minutes=int(match.group(1)) * _MINUTES[match.group(2)])
    if not MIN_SNOOZE <= length <= MAX_SNOOZE:
        raise AnswerError(f'"{clip(text)}" is out of range. Use a length from 1m to 365d.')
    return length


def parse_until(text: str, tz: tzinfo, now: datetime) -> datetime:
    """``2026-12-07 09:00`` (or with a ``T``) in ``tz``, or a date (until that day ends)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            moment = end_of(date.fromisoformat(raw), tz)
        else:
            parsed = datetime.fromisoformat(raw)
            moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    except ValueError:
        raise AnswerError(
            f'"{clip(raw)}" is not a date. Use 2026-12-07 or 2026-12-07 09:00 '
            "(in the customer's time zone)."
        ) from None
    return within(moment.astimezone(UTC), now)


def within(moment: datetime, now: datetime) -> datetime:
    """``moment`` if it is in the next 365 days, else an :class:`AnswerError`."""
    if moment <= now:
        raise AnswerError("That time has passed. Give a time still to come.")
    if moment - now > MAX_SNOOZE:
        raise AnswerError("That is more than a year away. Give a time within 365 days, or mute.")
    return moment


def end_of(day: date, tz: tzinfo) -> datetime:
    """The end of ``day`` in ``tz`` (the start of the next one), in UTC."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)


# -- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A mute rule, from the YAML (``origin`` ``yaml``) or from Slack or the CLI (``slack``)."""

    origin: str
    key: str
    """``yaml:N`` (its place in ``suppress:``, from 1) or the ``mutes`` row id."""
    check: str
    account: str | None
    region: str | None
    resource: str
    reason: str
    owner: str | None
    until: datetime | None
    by: str | None = None
    at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or self.until > now

    def matches(self, found: Kept) -> bool:
        return (
            found.check == self.check
            and (self.account is None or found.account == self.account)
            and (self.region is None or found.region == self.region)
            and (
                fnmatchcase(found.resource, self.resource)
                or fnmatchcase(found.fingerprint, self.resource)
            )
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "origin": self.origin,
            "check": self.check,
            "account": self.account,
            "region": self.region,
            "resource": self.resource,
            "reason": self.reason,
            "owner": self.owner,
            "until": self.until.isoformat() if self.until else None,
            "by": self.by,
        }


@dataclass(frozen=True)
class Held(Rule):
    """A maintenance window as a rule: while it is open, the findings of the accounts and
    checks it covers stand ``maintenance`` (after every mute rule: a muted finding stays
    muted). Never listed among the mute rules."""

    name: str = ""
    accounts: tuple[str, ...] | None = None
    checks: tuple[str, ...] | None = None
    yaml: MaintenanceWindow | None = None
    """A window of the YAML (its occurrences are worked out when asked)."""
    tz: tzinfo = UTC
    started: Window | None = None
    """A window started from Slack or the CLI."""

    def open_at(self, now: datetime) -> Window | None:
        """Its occurrence open at ``now``, or None."""
        if self.started is not None:
            return self.started if self.started.active(now) else None
        if self.yaml is None or not isinstance(self.tz, ZoneInfo):
            return None
        return maintenance.open_at(self.yaml, self.tz, now)

    def active(self, now: datetime) -> bool:
        return self.open_at(now) is not None

    def matches(self, found: Kept) -> bool:
        return (self.accounts is None or found.account in self.accounts) and (
            self.checks is None or found.check in self.checks
        )


def held(window: Window) -> Held:
    """A window started from Slack or the CLI, as a rule."""
    return Held(
        MAINTENANCE, f"maintenance:{window.id}", "*", None, None, "*", window.reason or "",
        None, window.ends_at, window.by, window.starts_at, name=window.name,
        accounts=window.accounts, checks=window.checks, started=window,
    )  # fmt: skip


def yaml_rules(customer: Customer) -> list[Rule]:
    """The rules of a customer's ``suppress:`` (expired ones too: :meth:`Rule.active` says),
    then its ``maintenance:`` windows."""
    mutes = [_yaml_rule(customer, index, rule) for index, rule in enumerate(customer.suppress)]
    windows = [
        Held(
            MAINTENANCE,
            f"maintenance:yaml:{index + 1}",
            "*",
            None,
            None,
            "*",
            window.reason or "",
            None,
            None,
            None,
            None,
            name=window.name,
            accounts=window.accounts,
            checks=window.checks,
            yaml=window,
            tz=customer.tz,
        )
        for index, window in enumerate(customer.maintenance)
    ]
    return [*mutes, *windows]


def mute_rules(rules: Iterable[Rule]) -> list[Rule]:
    """``rules`` less the maintenance windows: the mute rules, to list or to unmute."""
    return [rule for rule in rules if rule.origin != MAINTENANCE]


def rules_from(catalog: Catalog) -> Callable[[str], list[Rule]]:
    """A customer's YAML mute rules (``suppress:``), as the catalog has them."""

    def rules_of(customer_id: str) -> list[Rule]:
        customer = catalog.customers.get(customer_id)
        return yaml_rules(customer) if customer is not None else []

    return rules_of


def _yaml_rule(customer: Customer, index: int, rule: Suppression) -> Rule:
    return Rule(
        "yaml", f"yaml:{index + 1}", rule.check, rule.account, rule.region, rule.resource,
        rule.reason, rule.owner, rule.ends(customer.tz), rule.owner,
    )  # fmt: skip


def slack_rule(row: Mute) -> Rule:
    return Rule(
        "slack", str(row.id), row.check, row.account, row.region, row.resource, row.reason,
        row.owner, row.until, row.created_by, row.created_at,
    )  # fmt: skip


async def rules_in(
    session: AsyncSession,
    customer_id: str,
    yaml: Iterable[Rule],
    now: datetime,
    *,
    ended: bool = False,
) -> list[Rule]:
    """A customer's mute rules as ``session`` sees them: its ``yaml`` ones first, then those
    made from Slack or the CLI (only the ones in force at ``now`` unless ``ended``)."""
    query = select(Mute).where(Mute.customer_id == customer_id).order_by(Mute.id)
    if not ended:
        query = query.where(Mute.ended_at.is_(None))
    made = [slack_rule(row) for row in (await session.execute(query)).scalars()]
    if ended:  # a listing of the mute rules
        return mute_rules([*yaml, *made])
    windows = [rule for _, rule in await _started(session, [customer_id], now)]
    rules = [*mute_rules(yaml), *made, *(r for r in yaml if r.origin == MAINTENANCE), *windows]
    return [r for r in rules if r.active(now)]


async def _started(
    session: AsyncSession, customer_ids: Iterable[str], now: datetime
) -> list[tuple[str, Held]]:
    """The windows started from Slack or the CLI that are open at ``now``, as rules, with
    their customer."""
    query = select(Maintenance).where(
        Maintenance.customer_id.in_(sorted(customer_ids)),
        Maintenance.starts_at <= now,
        Maintenance.ends_at > now,
        Maintenance.ended_at.is_(None),
    )
    rows = (await session.execute(query.order_by(Maintenance.id))).scalars()
    return [(row.customer_id, held(maintenance.from_row(row))) for row in rows]


# -- standing ---------------------------------------------------------------------------------


class Kept(Protocol):
    """What :func:`standing` reads of a finding (a ``findings`` row)."""

    fingerprint: str
    account: str
    region: str
    check: str
    resource: str
    severity: str
    status: str
    ack_by: str | None
    ack_at: datetime | None
    snooze_by: str | None
    snooze_at: datetime | None
    snooze_until: datetime | None
    snooze_reason: str | None
    snooze_severity: str | None


@dataclass(frozen=True)
class Standing:
    """What a finding is now, and who said so."""

    state: str
    by: str | None = None
    at: datetime | None = None
    reason: str | None = None
    until: datetime | None = None
    rule: Rule | None = None
    back: str | None = None
    """``snooze ended`` or ``got worse`` when a snooze ended and it is still there."""
    ack_by: str | None = None
    """Who acknowledged it, whatever else it is (a snoozed finding may be acknowledged too)."""

    @property
    def quiet(self) -> bool:
        return self.state in QUIET


def standing(found: Kept, rules: Iterable[Rule], now: datetime) -> Standing:
    """What ``found`` is at ``now`` under ``rules`` (pure)."""
    if found.status == "resolved":
        return Standing("resolved")
    ack = found.ack_by
    rule = next((r for r in rules if r.active(now) and r.matches(found)), None)
    if isinstance(rule, Held):
        window = rule.open_at(now)
        assert window is not None  # (it is active)
        return Standing(
            MAINTENANCE, rule.by, window.starts_at, rule.reason, window.ends_at, rule,
            ack_by=ack,
        )  # fmt: skip
    if rule is not None:
        return Standing("muted", rule.by, rule.at, rule.reason, rule.until, rule, ack_by=ack)
    back = None
    if found.snooze_by:
        worse = _RANK.get(found.severity, 0) > _RANK.get(found.snooze_severity or "", 0)
        ended = found.snooze_until is not None and found.snooze_until <= now
        if not worse and not ended:
            return Standing(
                "snoozed", found.snooze_by, found.snooze_at, found.snooze_reason,
                found.snooze_until, ack_by=ack,
            )  # fmt: skip
        back = "got worse" if worse else "snooze ended"
    if ack:
        return Standing("acknowledged", ack, found.ack_at, back=back, ack_by=ack)
    return Standing("open", back=back)


@dataclass(frozen=True)
class Line:
    """A problem line of a result, with its finding's standing (None: not kept, so open)."""

    fingerprint: str
    severity: str
    standing: Standing | None

    @property
    def quiet(self) -> bool:
        return self.standing is not None and self.standing.quiet


def settle(severity: str, lines: Sequence[Line]) -> str:
    """A result's severity once snoozed and muted lines are left out: a result whose problem
    lines are all quiet is ``ok`` (one that could not look at everything stays ``error``)."""
    if severity not in _RANK or not lines:
        return severity
    loud = [line.severity for line in lines if not line.quiet]
    return max(loud, key=lambda s: _RANK.get(s, 0)) if loud else "ok"


async def settled(
    session: AsyncSession,
    outcomes: Mapping[int, tuple[str, str | None]],
    rules_of: Callable[[str], Sequence[Rule]],
    now: datetime,
) -> dict[int, str]:
    """The outcomes of finished runs (``{run id: (customer id, outcome)}``) that snoozed and
    muted problems lower, in the transaction that finishes them (after their findings are
    kept). A result is quiet when every finding this run saw in its account and check is
    quiet; one whose findings another run saw since stays a problem (it is never lowered on a
    guess)."""
    loud = [run_id for run_id, (_, outcome) in outcomes.items() if outcome in _RANK]
    if not loud:
        return {}
    results = (
        await session.execute(
            select(Result.run_id, Result.account, Result.check, Result.severity).where(
                Result.run_id.in_(loud)
            )
        )
    ).all()
    seen = (
        (
            await session.execute(
                select(Finding).where(Finding.last_run_id.in_(loud), Finding.status == "open")
            )
        )
        .scalars()
        .all()
    )
    customers = {outcomes[run_id][0] for run_id in loud}
    made = (
        (
            await session.execute(
                select(Mute).where(Mute.customer_id.in_(customers), Mute.ended_at.is_(None))
            )
        )
        .scalars()
        .all()
    )
    windows = await _started(session, customers, now)
    rules = {
        c: [
            *mute_rules(rules_of(c)),
            *(slack_rule(m) for m in made if m.customer_id == c),
            *(r for r in rules_of(c) if r.origin == MAINTENANCE),
            *(rule for customer, rule in windows if customer == c),
        ]
        for c in customers
    }
    lines: dict[tuple[int, str, str], list[Line]] = {}
    for found in seen:
        now_is = standing(found, rules.get(found.customer_id, ()), now)
        key = (found.last_run_id, found.account, found.check)
        lines.setdefault(key, []).append(Line(found.fingerprint, found.severity, now_is))
    worst: dict[int, str] = {}
    order = {"crit": 0, "error": 1, "warn": 2, "ok": 3}
    for run_id, account, check, severity in results:
        mine = lines.get((run_id, account, check))
        level = settle(severity, mine) if mine else severity
        if level in order and order[level] < order.get(worst.get(run_id, "ok"), 3):
            worst[run_id] = level
    changed = {}
    for run_id in loud:
        level = worst.get(run_id, "ok")
        if level != outcomes[run_id][1]:
            changed[run_id] = level
    return changed


# -- giving answers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Given:
    """What an answer did: the findings it changed, and the ones someone else had answered
    first (with their standing) or that resolved meanwhile."""

    changed: Sequence[Finding]
    first: Sequence[tuple[Finding, Standing]]
    resolved: Sequence[Finding]


class Answers:
    """Acknowledge, snooze and mute, audited; and the standings of a customer's findings."""

    def __init__(
        self,
        db: Database,
        rules_of: Callable[[str], Sequence[Rule]] = lambda _: (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self._yaml = rules_of
        self.clock = clock
        self.route: Callable[[AsyncSession, Iterable[str]], Awaitable[int]] | None = None
        """Queues what the customer's findings need sent (:meth:`app.engine.alerts.Router.route`),
        in each answer's transaction; ``queued`` is called after it commits notices."""
        self.queued: Callable[[], None] = lambda: None

    async def _routed(self, session: AsyncSession, customer_id: str) -> bool:
        return self.route is not None and await self.route(session, [customer_id]) > 0

    # -- reading

    async def rules(self, customer_id: str, *, ended: bool = False) -> list[Rule]:
        """The customer's mute rules: YAML first, then those made from Slack or the CLI (only
        the ones in force unless ``ended``)."""
        async with self.db.read() as session:
            return await rules_in(session, customer_id, self._yaml(customer_id), self.clock(),
                                  ended=ended)  # fmt: skip

    async def findings(
        self, customer_id: str, *, ids: Sequence[int] = (), fingerprints: Sequence[str] = ()
    ) -> list[Finding]:
        """The customer's findings among ``ids`` and ``fingerprints`` (another customer's are
        not found)."""
        if not ids and not fingerprints:
            return []
        query = select(Finding).where(Finding.customer_id == customer_id)
        if ids:
            query = query.where(Finding.id.in_(list(ids)))
        else:
            query = query.where(Finding.fingerprint.in_(list(fingerprints)))
        async with self.db.read() as session:
            return list((await session.execute(query.order_by(Finding.id))).scalars())

    async def standings(
        self, customer_id: str, fingerprints: Iterable[str]
    ) -> dict[str, tuple[Finding, Standing]]:
        """The findings among ``fingerprints`` and what each is now."""
        wanted = sorted(set(fingerprints))
        if not wanted:
            return {}
        rules = await self.rules(customer_id)
        now = self.clock()
        found = await self.findings(customer_id, fingerprints=wanted)
        return {f.fingerprint: (f, standing(f, rules, now)) for f in found}

    # -- answering

    async def acknowledge(
        self, customer_id: str, ids: Sequence[int], by: str, audit: Mapping[str, Any]
    ) -> Given:
        now = self.clock()

        def change(found: Finding, now_is: Standing) -> dict[str, Any] | None:
            if now_is.ack_by:
                return None
            return {"ack_by": by, "ack_at": now}

        return await self._answer(customer_id, ids, by, "ack", {}, audit, change)

    async def snooze(
        self,
        customer_id: str,
        ids: Sequence[int],
        by: str,
        reason: str,
        until: datetime | None,
        audit: Mapping[str, Any],
    ) -> Given:
        """Snooze until ``until`` (None: until it resolves)."""
        reason = reason_of(reason)
        now = self.clock()
        if until is not None:
            until = within(until, now)

        def change(found: Finding, now_is: Standing) -> dict[str, Any] | None:
            if now_is.state in QUIET:
                return None
            return {
                "snooze_by": by, "snooze_at": now, "snooze_until": until,
                "snooze_reason": reason, "snooze_severity": found.severity,
            }  # fmt: skip

        said = {"reason": reason, "until": until.isoformat() if until else "resolved"}
        return await self._answer(customer_id, ids, by, "snooze", said, audit, change)

    async def unsnooze(
        self, customer_id: str, ids: Sequence[int], by: str, audit: Mapping[str, Any]
    ) -> Given:
        def change(found: Finding, now_is: Standing) -> dict[str, Any] | None:
            if now_is.state != "snoozed":
                return None
            return dict.fromkeys(_SNOOZE_COLUMNS)

        return await self._answer(customer_id, ids, by, "unsnooze", {}, audit, change)

    async def mute(
        self,
        customer_id: str,
        *,
        check: str,
        account: str | None,
        region: str | None,
        resource: str,
        reason: str,
        owner: str | None,
        until: datetime | None,
        by: str,
        audit: Mapping[str, Any],
    ) -> Rule:
        """A new mute rule made from Slack or the CLI."""
        reason = reason_of(reason)
        now = self.clock()
        if until is not None:
            until = within(until, now)
        if not resource.strip():
            raise AnswerError('Give a resource pattern: a name, or a glob such as "scratch-*".')
        async with self.db.write() as session:
            row = Mute(
                customer_id=customer_id, check=check, account=account, region=region,
                resource=resource.strip()[:1024], reason=reason, owner=owner, until=until,
                created_by=by, created_at=now,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            rule = slack_rule(row)
            data = {**audit, "action": "mute", "customer": customer_id, "rule": rule.as_json()}
            await add_events(session, self.db, [(None, Event.ANSWER, by, data)])
            queued = await self._routed(session, customer_id)
        if queued:
            self.queued()
        return rule

    async def unmute(self, customer_id: str, key: str, by: str, audit: Mapping[str, Any]) -> Rule:
        """End a rule made from Slack or the CLI; a YAML rule is ended by editing the YAML."""
        if key.startswith("yaml:"):
            raise AnswerError(
                f"Rule {key} is in the customer's YAML (suppress:). Remove it there and reload; "
                "it cannot be unmuted from Slack or the CLI."
            )
        number = int(key) if key.isdigit() and len(key) < 18 else -1
        now = self.clock()
        async with self.db.write() as session:
            row = await session.get(Mute, number)
            if row is None or row.customer_id != customer_id:
                raise AnswerError(
                    f'There is no mute rule "{clip(key)}" for this customer. '
                    "`mhub findings TARGET --rules` lists them."
                )
            if row.ended_at is not None:
                raise AnswerError(
                    f"Rule {key} was already unmuted by {row.ended_by}; nothing changed."
                )
            row.ended_by, row.ended_at = by, now
            rule = slack_rule(row)
            data = {**audit, "action": "unmute", "customer": customer_id, "rule": rule.as_json()}
            await add_events(session, self.db, [(None, Event.ANSWER, by, data)])
            queued = await self._routed(session, customer_id)
        if queued:
            self.queued()
        return rule

    async def _answer(
        self,
        customer_id: str,
        ids: Sequence[int],
        by: str,
        action: str,
        said: Mapping[str, Any],
        audit: Mapping[str, Any],
        change: Callable[[Finding, Standing], dict[str, Any] | None],
    ) -> Given:
        rules = await self.rules(customer_id)
        now = self.clock()
        changed: list[Finding] = []
        applied: list[dict[str, Any]] = []
        first: list[tuple[Finding, Standing]] = []
        resolved: list[Finding] = []
        async with self.db.write() as session:
            query = select(Finding).where(
                Finding.customer_id == customer_id, Finding.id.in_(list(ids))
            )
            rows = list((await session.execute(query.order_by(Finding.id))).scalars())
            for found in rows:
                now_is = standing(found, rules, now)
                values = change(found, now_is) if now_is.state != "resolved" else None
                if now_is.state == "resolved":
                    resolved.append(found)
                    continue
                if values is None:
                    first.append((found, now_is))
                    continue
                done = await session.execute(
                    update(Finding)
                    .where(Finding.id == found.id, Finding.answers == found.answers)
                    .values(**values, answers=Finding.answers + 1)
                    .execution_options(synchronize_session=False)
                )
                if getattr(done, "rowcount", 0) == 1:
                    changed.append(found)
                    applied.append(values)
                else:  # someone answered it between our read and our write
                    await session.refresh(found)
                    first.append((found, standing(found, rules, now)))
            data = {
                **audit,
                **said,
                "action": action,
                "customer": customer_id,
                "findings": [f.fingerprint for f in changed][:50],
                "changed": len(changed),
                "answered_first": [f.fingerprint for f, _ in first][:50],
            }
            event: NewEvent = (None, Event.ANSWER, by, data)
            await add_events(session, self.db, [event])
            queued = bool(changed) and await self._routed(session, customer_id)
        if queued:
            self.queued()
        for found, values in zip(changed, applied, strict=True):  # the rows as they are now
            for key, value in values.items():
                setattr(found, key, value)
        return Given(changed, first, resolved)


_SNOOZE_COLUMNS = (
    "snooze_by",
    "snooze_at",
    "snooze_until",
    "snooze_reason",
    "snooze_severity",
)
ANSWER_COLUMNS = ("ack_by", "ack_at", *_SNOOZE_COLUMNS)
"""Cleared when a finding resolves."""
