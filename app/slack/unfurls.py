"""Link unfurls: a web-view link posted in Slack gets a compact status card under it, when the
person who posted it may see its customer.

Slack sends ``link_shared`` for the links of a message whose host is one of the app's unfurl
domains (``features.unfurl_domains`` in manifest.yml: ``HUB_PUBLIC_URL``'s host), both once it
is posted and while it is still in the composer. For each event:

1. only the links under ``HUB_PUBLIC_URL`` that name a page with a card are kept
   (:func:`parse`): a run, a customer, its findings, a month's report; any other is left to
   Slack (at most :data:`MAX_LINKS` per message);
2. each is decided for the person who posted it, from the conversation they posted it in
   (:meth:`Access.check` for ``list``, audited like every decision, the link's path as what
   was asked): a run or customer that does not exist, or that they may not see, gets **no
   card at all** — never one saying so, which would tell the channel that it exists;
3. the cards (:mod:`blocks.unfurl`) go out in one ``chat.unfurl``: by ``unfurl_id`` and
   ``source`` when the event has them, else by ``channel`` and the message's ``ts``.

A card is shown to everyone who can read the message, as the link itself is: the poster's
grant decides, as it does for a result card posted where they typed ``/monitor``.

Slack refusing (``cannot_unfurl_url``, ``ratelimited``, the network) is logged once, naming
the links by their path alone (a query string may carry anything), and goes no further: the
link stays a plain link. Nothing is retried; after a ``429`` no card is sent until its
``Retry-After`` has passed.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from app.access import Access, Action, Who
from app.catalog import Catalog
from app.config import Customer
from app.db import DB_TROUBLE, Database
from app.engine.answers import Answers, Kept, standing
from app.engine.blind import blind_spots
from app.engine.coverage import configured
from app.engine.runboard import FINISHED, severities
from app.engine.runs import RunService, RunView
from app.errors import NotFound
from app.models import Finding, Run
from app.reports.gather import Reports
from app.reports.period import ReportError, month_of
from app.schedules.slots import next_fire
from app.slack.reports import asked_report
from blocks.unfurl import CustomerGlance, customer_unfurl, report_unfurl, run_unfurl

log = logging.getLogger(__name__)

MAX_LINKS = 10
"""Links of one message looked at; a message naming more gets cards for the first ones."""
CONCURRENCY = 4
"""Events worked on at once; more wait their turn."""
OPEN_SCAN = 5_000
"""Open findings of a customer read at most to count them (beyond it the card says ``5,000+``)."""
_KEPT = [getattr(Finding, name) for name in Kept.__annotations__]
"""The columns a finding's standing is decided from."""


# -- links ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLink:
    run_id: int


@dataclass(frozen=True)
class CustomerLink:
    customer_id: str
    findings: bool = False
    """The customer's findings page rather than the customer's own."""


@dataclass(frozen=True)
class ReportLink:
    customer_id: str
    month: str
    """``2026-11``."""


Target = RunLink | CustomerLink | ReportLink

_PAGES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Target]], ...] = (
    (re.compile(r"/runs/([0-9]{1,15})/?", re.ASCII), lambda m: RunLink(int(m[1]))),
    (re.compile(r"/customers/([^/]+)/?"), lambda m: CustomerLink(unquote(m[1]))),
    (re.compile(r"/customers/([^/]+)/findings/?"), lambda m: CustomerLink(unquote(m[1]), True)),
    (
        re.compile(r"/customers/([^/]+)/reports/([0-9]{4}-[0-9]{2})/?", re.ASCII),
        lambda m: ReportLink(unquote(m[1]), m[2]),
    ),
)


def parse(url: str, public_url: str) -> Target | None:
    """The page ``url`` names under ``public_url`` (either scheme, the same host and path
    prefix), or None: another site, or a page with no card."""
    base = urlsplit(public_url.strip().rstrip("/"))
    here = urlsplit(html.unescape(url.strip()))  # Slack may send "&" as "&amp;"
    if here.scheme.lower() not in ("http", "https") or here.netloc.lower() != base.netloc.lower():
        return None
    prefix, path = base.path, here.path
    if prefix and not path.startswith(prefix + "/"):
        return None
    rest = path[len(prefix) :]
    for pattern, target in _PAGES:
        found = pattern.fullmatch(rest)
        if found is not None:
            return target(found)
    return None


def path_of(url: str) -> str:
    """What the log and the audit say of a link: its path, without host or query string."""
    return urlsplit(html.unescape(url.strip())).path or "/"


# -- the event ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    """A ``link_shared`` event: who shared which links, where, and how to unfurl them."""

    user: str
    channel: str | None
    message_ts: str | None
    unfurl_id: str | None
    source: str | None
    """``conversations_history`` (posted) or ``composer`` (still being written)."""
    urls: tuple[str, ...]

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Shared:
        links = event.get("links")
        urls = [
            str(link.get("url") or "")
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, Mapping)
        ]
        return cls(
            user=str(event.get("user") or ""),
            channel=_text(event.get("channel")),
            message_ts=_text(event.get("message_ts")),
            unfurl_id=_text(event.get("unfurl_id")),
            source=_text(event.get("source")),
            urls=tuple(dict.fromkeys(u for u in urls if u)),
        )


def _text(value: Any) -> str | None:
    return str(value) if value else None


# -- the service --------------------------------------------------------------------------------


class Unfurls:
    """Turns a ``link_shared`` event into one ``chat.unfurl`` of the cards its poster may see."""

    def __init__(
        self,
        client: AsyncWebClient,
        db: Database,
        runs: RunService,
        access: Access,
        catalog: Catalog,
        public_url: str,
        *,
        answers: Answers | None = None,
        reports: Reports | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.runs = runs
        self.access = access
        self.catalog = catalog
        self.public_url = public_url
        self.answers = answers
        """Reads the mute rules, so snoozed and muted findings are not counted as open."""
        self.reports = reports
        """Makes a month's report (None: report links get no card)."""
        self.clock: Callable[[], datetime] = answers.clock if answers else _now
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._held_until = 0.0  # time.monotonic() before which Slack asked for no calls

    def targets(self, urls: Iterable[str]) -> dict[str, Target]:
        """The links of ours among ``urls`` (the first :data:`MAX_LINKS`), by URL as sent."""
        found = {url: parse(url, self.public_url) for url in urls}
        ours = [(url, target) for url, target in found.items() if target is not None]
        return dict(ours[:MAX_LINKS])

    async def shared(self, shared: Shared) -> None:
        """Unfurl the links of ``shared`` that its poster may see; never raises for Slack."""
        targets = self.targets(shared.urls)
        if not targets or not shared.user:
            return
        async with self._limit:
            who = Who(shared.user, shared.channel)
            now = self.clock()
            cards: dict[str, dict[str, Any]] = {}
            for url, target in targets.items():
                try:
                    card = await self.card(target, who, path_of(url), now)
                except DB_TROUBLE as exc:
                    log.warning("unfurl of %s: the database failed (%s)", path_of(url), exc)
                    continue
                if card is not None:
                    cards[url] = card
            if cards:
                await self._send(shared, cards)

    async def card(
        self, target: Target, who: Who, path: str, now: datetime
    ) -> dict[str, Any] | None:
        """The card of ``target`` if ``who`` may see it (the decision is recorded), else None:
        the same for what does not exist."""
        if isinstance(target, RunLink):
            return await self._run(target, who, path, now)
        customer = self.catalog.customers.get(target.customer_id)
        decision = await self.access.check(customer, who, Action.LIST, asked=path)
        if customer is None or not decision.allowed:
            return None
        if isinstance(target, ReportLink):
            return await self._report(customer, target.month)
        glance = await self.glance(customer, now)
        return customer_unfurl(glance, now, findings=target.findings)

    async def _run(
        self, target: RunLink, who: Who, path: str, now: datetime
    ) -> dict[str, Any] | None:
        try:
            view: RunView | None = await self.runs.get(target.run_id)
        except NotFound:
            view = None
        run = view.run if view else None
        customer = self.catalog.customers.get(run.customer_id) if run else None
        decision = await self.access.check(customer, who, Action.LIST, run, asked=path)
        if view is None or customer is None or not decision.allowed:
            return None
        return run_unfurl(view, customer_name=customer.name, tz=customer.tz, now=now)

    async def _report(self, customer: Customer, month: str) -> dict[str, Any] | None:
        """A month's report card; none for a month that cannot be reported on (before its
        monitoring began, not begun yet)."""
        if self.reports is None:
            return None
        try:
            period = month_of(customer, month, self.reports.clock())
            report = await self.reports.build(customer.id, period)
        except (ReportError, NotFound) as exc:
            log.info("unfurl of %s's report for %s: none (%s)", customer.id, month, exc)
            return None
        return report_unfurl(asked_report(report))

    async def glance(self, customer: Customer, now: datetime) -> CustomerGlance:
        """``customer``'s latest finished run, open findings, blind spots and next digest."""
        async with self.db.read() as session:
            latest = (
                await session.scalars(
                    select(Run)
                    .where(Run.customer_id == customer.id, Run.status.in_(FINISHED))
                    .order_by(Run.id.desc())
                    .limit(1)
                )
            ).first()
            steps = (await severities(session, [latest.id]))[latest.id] if latest else {}
            spots = configured(customer, await blind_spots(session, [customer.id], now))
            rows = (
                await session.execute(
                    select(*_KEPT)
                    .where(Finding.customer_id == customer.id, Finding.status == "open")
                    .limit(OPEN_SCAN + 1)
                )
            ).all()
        rules = await self.answers.rules(customer.id) if self.answers is not None else []
        kept = [cast(Kept, row) for row in rows[:OPEN_SCAN]]
        loud = [f for f in kept if not standing(f, rules, now).quiet]
        digests = [
            (s.name, next_fire(s, customer, now)) for s in customer.schedules if s.kind == "digest"
        ]
        return CustomerGlance(
            name=customer.name,
            tz=customer.tz,
            latest=latest,
            steps=steps,
            open=len(loud),
            critical=sum(1 for f in loud if f.severity == "crit"),
            quiet=len(kept) - len(loud),
            blind=len(spots),
            next_digest=min(digests, key=lambda d: d[1]) if digests else None,
            more=len(rows) > OPEN_SCAN,
        )

    async def _send(self, shared: Shared, cards: Mapping[str, dict[str, Any]]) -> None:
        """One ``chat.unfurl`` for the event's cards; a refusal is logged once."""
        if time.monotonic() < self._held_until:
            log.info("unfurl: no cards for %s: Slack asked to wait (Retry-After)", _paths(cards))
            return
        try:
            if shared.unfurl_id and shared.source:
                await self.client.chat_unfurl(
                    unfurl_id=shared.unfurl_id, source=shared.source, unfurls=dict(cards)
                )
            else:
                await self.client.chat_unfurl(
                    channel=shared.channel, ts=shared.message_ts, unfurls=dict(cards)
                )
        except SlackApiError as exc:
            error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            if exc.response.status_code == 429:
                self._held_until = time.monotonic() + _retry_after(exc.response.headers)
            log.warning(
                "unfurl: Slack refused the cards of %s in %s (%s); the links stay plain",
                _paths(cards),
                shared.channel,
                error,
            )
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning(
                "unfurl: the cards of %s in %s did not reach Slack (%s); the links stay plain",
                _paths(cards),
                shared.channel,
                type(exc).__name__,
            )


def _now() -> datetime:
    return datetime.now(UTC)


def _retry_after(headers: Mapping[str, Any]) -> float:
    """Seconds Slack asked to wait (``Retry-After``; 1 when it did not say)."""
    try:
        return max(0.0, float(headers.get("Retry-After") or headers.get("retry-after") or 1))
    except (TypeError, ValueError):
        return 1.0


def _paths(urls: Iterable[str]) -> str:
    return ", ".join(path_of(url) for url in urls)
