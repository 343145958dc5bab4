"""Where attention goes: which changes of a customer's findings are sent out, to the alerts
channel, PagerDuty and webhooks (``routing:`` in the customer's YAML; docs/routing.md).

What a destination should know of a finding is decided from its state alone, by
:func:`decide`, and what was sent is kept on the finding (``findings.routed``): the worst
severity sent since it last opened, and ``:ack`` once its acknowledgement was sent. So a
finding is sent

- ``trigger`` when it is open, not snoozed or muted, and at a severity some destination takes,
  and was not sent yet — or is worse now than what was sent (warn → crit);
- ``acknowledge`` when somebody acknowledged it after it was sent;
- ``resolve`` when it resolves or is muted after it was sent.

A snoozed finding is not sent; one whose snooze ended and is still open is sent then (the
sweep, :meth:`Router.sweep`). :meth:`Router.route` writes the notices (``notices``, delivered
by :mod:`app.notify`) and the new ``routed`` in the caller's transaction: the one that ends a
run, the one that records an answer, or the sweep's own. Each notice's ``dedupe_key`` names its
destination, finding, episode and transition, so a transition decided twice (two replicas
sweeping at once) is queued once. It reads only the findings :func:`decide` may send
something about (:func:`_may_need`): a customer's open findings that were sent already and
stay as they are cost nothing at a run's end.

**Blind spots** (:mod:`app.engine.blind`) are routed like a crit finding: ``trigger`` to the
destinations that take crit when an account × check becomes blind, ``resolve`` when it looks
again (or is no longer configured), and a thread of its own in the alerts channel; what was
sent is kept on its ``sights`` row (``routed``, ``told``), the blind episode in both (the time
its failing began), so a new episode is a new incident and a new thread.

The **alerts channel** keeps one thread per finding that turns crit: :func:`thread_says` decides
from the finding's state and what its thread last said (``findings.told``) whether the thread
starts or gets a reply, and the :class:`Channel` (Slack's side, given by the composition root)
writes the messages in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.catalog import Catalog
from app.config import Customer
from app.db import Database
from app.engine import blind
from app.engine.answers import Rule, Standing, rules_in, standing, yaml_rules
from app.engine.blind import BlindSpot
from app.engine.coverage import configured
from app.models import Finding, Notice, Sight
from checks import console

RANK = {"warn": 1, "crit": 2}
ACK = ":ack"
"""Suffix of ``findings.routed`` once the acknowledgement was sent."""
DEDUP_MAX = 255
"""PagerDuty's longest ``dedup_key``."""


@dataclass(frozen=True)
class Decision:
    action: str
    """``trigger``, ``acknowledge`` or ``resolve``."""
    routed: str | None
    """``findings.routed`` once it is sent."""


def decide(status: str, severity: str, routed: str | None, now_is: Standing,
           takes: Iterable[str]) -> Decision | None:  # fmt: skip
    """What to send about a finding (``status``, ``severity``, what was ``routed``, its standing
    now) to destinations that take the severities ``takes``; None: nothing (pure)."""
    sent, acked = _parse(routed)
    if status == "resolved" or now_is.state == "muted":
        return Decision("resolve", None) if sent else None
    if now_is.state in ("snoozed", "maintenance"):
        return None  # not sent while quiet; what was sent stays as it is
    if severity in takes and RANK.get(severity, 0) > RANK.get(sent or "", 0):
        return Decision("trigger", severity)  # new, or worse than what was sent
    if sent and now_is.state == "acknowledged" and not acked:
        return Decision("acknowledge", sent + ACK)
    return None


def says(status: str, severity: str, now_is: Standing) -> str:
    """What a finding's alerts thread says it is: ``crit:open``, ``warn:acknowledged``,
    ``crit:snoozed``, ``muted`` or ``resolved``."""
    if status == "resolved":
        return "resolved"
    if now_is.state == "muted":
        return "muted"
    return f"{severity}:{now_is.state}"


def thread_says(status: str, severity: str, told: str | None, now_is: Standing) -> str | None:
    """What a finding's alerts thread should say now, when that is news: a new thread for a
    finding that is crit, open and not snoozed or muted, and has no thread (or its last one
    ended with its resolution); a reply when its thread said something else. None: nothing
    to post (pure)."""
    now = says(status, severity, now_is)
    if told is None or told == "resolved":
        starts = now.startswith("crit:") and now_is.state not in ("snoozed", "muted", "maintenance")
        return now if status == "open" and starts else None
    return now if now != told else None


def _parse(routed: str | None) -> tuple[str | None, bool]:
    if not routed:
        return None, False
    severity, _, ack = routed.partition(":")
    return severity, bool(ack)


def dedup_key(customer_id: str, fingerprint: str) -> str:
    """The key PagerDuty groups a finding's events by: the same for every event of the finding,
    so a repeat never opens a second incident."""
    key = f"mhub:{customer_id}:{fingerprint}"
    if len(key) <= DEDUP_MAX:
        return key
    return f"mhub:{customer_id}:sha256:{hashlib.sha256(fingerprint.encode()).hexdigest()}"


def receivers(customer: Customer, action: str, severity: str) -> list[str]:
    """The destinations a notice goes to: a trigger to those that take its severity; an
    acknowledgement or a resolution to those that took any severity up to the one sent."""
    routing = customer.routing
    if routing is None:
        return []
    out = []
    for name, takes in routing.destinations():
        if action == "trigger":
            wanted = severity in takes
        else:
            wanted = any(RANK.get(s, 0) <= RANK.get(severity, 0) for s in takes)
        if wanted:
            out.append(name)
    return out


def payload(customer: Customer, found: Finding, now_is: Standing, by: str | None) -> dict[str, Any]:
    """What every destination is told of ``found`` (no secrets: those are read when sending)."""
    href = console.link(customer, found.account, found.check, found.region, found.resource)
    return {
        "kind": "finding",
        "customer": customer.id,
        "customer_name": customer.name,
        "account": found.account,
        "region": found.region,
        "check": found.check,
        "resource": found.resource,
        "fingerprint": found.fingerprint,
        "severity": found.severity,
        "state": now_is.state,
        "summary": found.summary,
        "first_seen": found.first_seen_at.isoformat(),
        "last_seen": found.last_seen_at.isoformat(),
        "run_id": found.last_run_id,
        "dedup_key": dedup_key(customer.id, found.fingerprint),
        "by": by,
        "links": [{"href": href, "text": "Open in the AWS console"}] if href else [],
    }


class Channel(Protocol):
    """Writes a finding's alerts thread (Slack's side: :class:`app.slack.alerts.AlertsChannel`)."""

    async def tell(
        self,
        session: AsyncSession,
        customer: Customer,
        found: Finding,
        now_is: Standing,
        told: str | None,
        news: str,
        now: datetime,
    ) -> None:
        """Start ``found``'s thread (``told`` None or ``resolved``), or reply in it that it is
        now ``news`` (from :func:`says`), in the caller's transaction."""

    async def tell_blind(
        self,
        session: AsyncSession,
        customer: Customer,
        sight: Sight,
        spot: BlindSpot | None,
        told: str,
        now: datetime,
    ) -> None:
        """Start the thread of the blind spot ``spot`` (``told``: ``blind:<episode>``, new), or
        reply in ``sight``'s thread that it looks again (``spot`` None; ``told`` what the
        thread said)."""


class Router:
    """Writes what a customer's findings need sent, in the caller's transaction."""

    def __init__(
        self,
        db: Database,
        catalog: Callable[[], Catalog],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock
        self.on_queued = on_queued
        """Called after the sweep commits notices (the caller of :meth:`route` calls it after
        its own commit): the deliverer wakes up."""
        self.channel: Channel | None = None
        """Writes the alerts channel's threads; None: no customer's alerts channel is told."""

    def routed(self, customer_id: str) -> Customer | None:
        """The customer, if it routes anything."""
        customer = self.catalog().customers.get(customer_id)
        return customer if customer is not None and customer.routing is not None else None

    async def route(self, session: AsyncSession, customer_ids: Iterable[str]) -> int:
        """Queue what the findings of ``customer_ids`` need sent; how many notices."""
        queued = 0
        for customer_id in sorted(set(customer_ids)):
            customer = self.routed(customer_id)
            if customer is not None:
                queued += await self._route(session, customer)
        return queued

    async def sweep(self) -> int:
        """:meth:`route` every customer that routes (snoozes end with time, not with a run)."""
        ids = [c.id for c in self.catalog().customers.values() if c.routing is not None]
        if not ids:
            return 0
        async with self.db.write() as session:
            queued = await self.route(session, ids)
        if queued:
            self.on_queued()
        return queued

    async def _route(self, session: AsyncSession, customer: Customer) -> int:
        now = self.clock()
        routing = customer.routing
        assert routing is not None  # (route() passes only customers that route)
        takes = {s for _, severities in routing.destinations() for s in severities}
        channel = self.channel if routing.alerts_channel else None
        rules = await rules_in(session, customer.id, yaml_rules(customer), now)
        here = Finding
        query = select(Finding).where(
            here.customer_id == customer.id,
            or_(*_may_need(takes, rules), *(_threads() if channel else ())),
        )
        rows: list[dict[str, Any]] = []
        moved: list[tuple[Finding, str | None]] = []
        told: list[tuple[Finding, str]] = []
        query = query.order_by(here.id).execution_options(populate_existing=True)
        for found in (await session.execute(query)).scalars():  # (as this transaction left them)
            now_is = standing(found, rules, now)
            news = thread_says(found.status, found.severity, found.told, now_is)
            if channel is not None and news is not None:
                await channel.tell(session, customer, found, now_is, found.told, news, now)
                told.append((found, news))
            decision = decide(found.status, found.severity, found.routed, now_is, takes)
            if decision is None:
                continue
            sent, _ = _parse(found.routed)
            level = found.severity if decision.action == "trigger" else (sent or found.severity)
            by = now_is.by if decision.action != "trigger" else None
            body = payload(customer, found, now_is, by)
            for destination in receivers(customer, decision.action, level):
                key = (
                    f"{destination}:{found.id}:{found.returns}.{found.answers}:"
                    f"{decision.action}:{level}"
                )
                rows.append({
                    "dedupe_key": key[:255], "customer_id": customer.id,
                    "destination": destination, "action": decision.action,
                    "finding_id": found.id, "payload": body, "status": "pending",
                    "attempts": 0, "next_attempt_at": now, "created_at": now,
                })  # fmt: skip
            moved.append((found, decision.routed))
        table = cast(Table, Finding.__table__)  # (Core: one statement, many rows)
        if moved:  # what was sent, unless another transaction changed it meanwhile
            await session.execute(
                update(table)
                .where(
                    table.c.id == bindparam("fid"),
                    table.c.routed.is_not_distinct_from(bindparam("was")),
                )
                .values(routed=bindparam("now")),
                [{"fid": f.id, "was": f.routed, "now": routed} for f, routed in moved],
            )
        if told:  # what its thread says now (the messages' keys keep a repeat from posting)
            await session.execute(
                update(table)
                .where(
                    table.c.id == bindparam("fid"),
                    table.c.told.is_not_distinct_from(bindparam("was")),
                )
                .values(told=bindparam("now")),
                [{"fid": f.id, "was": f.told, "now": news} for f, news in told],
            )
        rows.extend(await self._route_blind(session, customer, channel, now))
        if rows:
            insert = sqlite_insert(Notice) if self.db.is_sqlite else pg_insert(Notice)
            await session.execute(
                insert.on_conflict_do_nothing(index_elements=["dedupe_key"]), rows
            )
        return len(rows) + len(told)

    async def _route_blind(
        self, session: AsyncSession, customer: Customer, channel: Channel | None, now: datetime
    ) -> list[dict[str, Any]]:
        """The notices the customer's blind spots need (and their threads, written at once):
        a trigger when a configured account × check is blind and was not sent, a resolve when
        one that was sent looks again; the sights' ``routed`` and ``told`` updated to match."""
        here = Sight
        query = (
            select(Sight)
            .where(
                here.customer_id == customer.id,
                or_(here.failed >= 1, here.routed.is_not(None), here.told.like("blind:%")),
            )
            .order_by(here.id)
            .execution_options(populate_existing=True)
        )
        sights = list((await session.execute(query)).scalars())
        if not sights:  # every account × check could look, and none was sent: nothing to do
            return []
        found = await blind.blind_spots(session, [customer.id], now)
        spots = {(spot.account, spot.check): spot for spot in configured(customer, found)}
        rows: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for sight in sights:
            spot = spots.get((sight.account, sight.check))
            routed, told = sight.routed, sight.told
            if spot is not None and routed is None:
                routed = f"crit:{episode(spot)}"
                rows += self._blind_notices(customer, sight, spot, "trigger", routed, now)
            elif spot is None and routed is not None:
                rows += self._blind_notices(customer, sight, None, "resolve", routed, now)
                routed = None
            news = blind_thread_says(spot is not None, told)
            if channel is not None and news is not None:
                if spot is not None:  # a new thread, for this episode
                    told = f"blind:{episode(spot)}"
                await channel.tell_blind(session, customer, sight, spot, told or "", now)
                told = told if spot is not None else news
            if (routed, told) != (sight.routed, sight.told):
                moved.append({"sid": sight.id, "was_routed": sight.routed, "was_told": sight.told,
                              "routed_now": routed, "told_now": told})  # fmt: skip
        if moved:  # unless another transaction changed them meanwhile
            table = cast(Table, Sight.__table__)
            await session.execute(
                update(table)
                .where(
                    table.c.id == bindparam("sid"),
                    table.c.routed.is_not_distinct_from(bindparam("was_routed")),
                    table.c.told.is_not_distinct_from(bindparam("was_told")),
                )
                .values(routed=bindparam("routed_now"), told=bindparam("told_now")),
                moved,
            )
        return rows

    def _blind_notices(
        self,
        customer: Customer,
        sight: Sight,
        spot: BlindSpot | None,
        action: str,
        routed: str,
        now: datetime,
    ) -> list[dict[str, Any]]:
        body = blind_payload(customer, sight, spot)
        _, _, started = routed.partition(":")
        return [
            {
                "dedupe_key": f"{destination}:blind:{sight.id}:{started}:{action}"[:255],
                "customer_id": customer.id,
                "destination": destination,
                "action": action,
                "finding_id": None,
                "sight_id": sight.id,
                "payload": body,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for destination in receivers(customer, action, "crit")
        ]


def episode(spot: BlindSpot) -> int:
    """Which blind episode of its account × check ``spot`` is: when its failing began."""
    began = spot.failing_since or spot.since
    return int(began.timestamp()) if began is not None else 0


def blind_thread_says(is_blind: bool, told: str | None) -> str | None:
    """What a blind spot's alerts thread should say now, when that is news: ``blind`` to start
    one (its ``told`` becomes ``blind:<episode>``), ``resolved`` when it looks again (its thread
    gets the reply); None: nothing (pure)."""
    threaded = told is not None and told.startswith("blind:")
    if is_blind and not threaded:
        return "blind"
    if not is_blind and threaded:
        return "resolved"
    return None


def blind_payload(customer: Customer, sight: Sight, spot: BlindSpot | None) -> dict[str, Any]:
    """What every destination is told of a blind spot (``spot``), or of one that looks again
    (``spot`` None): the shape of a finding's :func:`payload`, ``kind`` ``blind_spot``."""
    fingerprint = f"blind:{sight.account}:{sight.check}"
    since = spot.since if spot is not None else sight.failing_since
    why = spot.why if spot is not None else "it looks again"
    return {
        "kind": "blind_spot",
        "customer": customer.id,
        "customer_name": customer.name,
        "account": sight.account,
        "region": "",
        "check": sight.check,
        "resource": "",
        "fingerprint": fingerprint,
        "severity": "crit",
        "state": "blind" if spot is not None else "resolved",
        "summary": f"not checked — {why}",
        "first_seen": since.isoformat() if since else None,
        "last_seen": sight.looked_at.isoformat(),
        "run_id": sight.looked_run_id,
        "dedup_key": dedup_key(customer.id, fingerprint),
        "by": None,
        "links": [],
    }


def _threads() -> list[ColumnElement[bool]]:
    """The findings :func:`thread_says` may post about: crit, open ones without a thread (or
    whose last thread ended), and every one whose thread has not ended."""
    here = Finding
    no_thread = or_(here.told.is_(None), here.told == "resolved")
    return [
        and_(here.status == "open", here.severity == "crit", no_thread),
        and_(here.told.is_not(None), here.told != "resolved"),
    ]


def _may_need(takes: Iterable[str], rules: Sequence[Rule]) -> list[ColumnElement[bool]]:
    """The findings :func:`decide` may send something about, and no others (most of a
    customer's open findings were sent already and are left as they are): resolved ones still
    sent; open ones not sent, at a severity sent out; sent at warn and crit now; sent,
    acknowledged since, and not told; sent, with a mute rule of their check in force."""
    here = Finding
    sent = here.routed.is_not(None)
    opened = here.status == "open"
    may_be = [
        and_(here.status == "resolved", sent),
        and_(opened, here.routed.is_(None), here.severity.in_(sorted(takes))),
        and_(opened, here.routed.like("warn%"), here.severity == "crit"),
        and_(opened, sent, here.ack_by.is_not(None), here.routed.not_like("%" + ACK)),
    ]
    muting = sorted({rule.check for rule in rules})
    if muting:
        may_be.append(and_(opened, sent, here.check.in_(muting)))
    return may_be
