"""Keeping each run's result card in the outbox current.

Runs started from Slack (a slash command, a button, the modal) have a card in their channel.
Whenever such a run changes — submitted, claimed, a check finished, cancelled, finished — the
card follower (:class:`~app.engine.changes.Follower`) renders the run again and stores the
rendering in the outbox (a new version only when it differs). The deliverer then posts or
updates the card, coalescing renderings into at most one update per second.

A burst of changes costs one read and at most one write. A sweep at start and every
``sweep_s`` re-renders the cards of active and recently finished runs, so a change made by a
replica that died before rendering it still reaches the card (each sweep covers active runs and
those that finished since the one before).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from app.catalog import Catalog
from app.engine.answers import Answers
from app.engine.changes import Follower
from app.engine.findings import lines_of
from app.engine.maintenance import Window, during
from app.engine.runs import RunService, RunView
from app.errors import NotFound
from app.models import ACTIVE_STATUSES, Run, Source
from app.slack.outbox import Card, Outgoing
from blocks.card import Standings, run_card, web_link
from checks import console

log = logging.getLogger(__name__)

CARD_SOURCES = frozenset({Source.SLASH, Source.BUTTON, Source.MODAL})
RECENT = timedelta(minutes=10)


def has_card(run: Run) -> bool:
    return run.channel_id is not None and run.source in CARD_SOURCES


class Cards(Follower):
    """Follows run changes: re-renders the card of every changed run that has one."""

    name = "cards"

    def __init__(
        self,
        runs: RunService,
        outgoing: Outgoing,
        catalog: Catalog,
        *,
        public_url: str | None = None,
        on_put: Callable[[], None] | None = None,
        sweep_s: float = 60.0,
        concurrency: int = 8,
        debounce_s: float = 0.05,
        answers: Answers | None = None,
    ) -> None:
        # A short pause gathers a burst of changes (and lets the acks of a burst of commands go
        # out first); updates are coalesced to one a second per card anyway.
        super().__init__(sweep_s=sweep_s, debounce_s=debounce_s)
        self.runs = runs
        self.outgoing = outgoing
        self.catalog = catalog
        self.public_url = public_url
        self.answers = answers
        self.on_put = on_put
        self._swept_at: datetime | None = None
        self._replies: dict[int, str] = {}
        self._limit = asyncio.Semaphore(concurrency)

    def expect_reply(self, run_id: int, response_url: str | None) -> None:
        """Where to say "invite me" if the card cannot be posted (a slash command's
        response_url, valid for 30 minutes)."""
        if response_url:
            self._replies[run_id] = response_url

    async def flush(self, run_ids: set[int]) -> None:
        """Render every run that changed (each once, however often it changed) and store the
        renderings in one transaction."""
        if not run_ids:
            return
        found = await asyncio.gather(*(self._card(run_id) for run_id in sorted(run_ids)))
        cards = [card for card in found if card is not None]
        changed = await self.outgoing.put_cards(cards) if cards else []
        if changed and self.on_put is not None:
            self.on_put()

    async def _card(self, run_id: int) -> Card | None:
        async with self._limit:
            try:
                view = await self.runs.get(run_id)
            except NotFound:
                return None
            if not has_card(view.run):
                return None
            try:
                standings = await self.standings(view)
                message = self.render(view, standings, await self.windows(view))
            except Exception:
                log.exception("card for run #%s: rendering failed", run_id)
                return None
        reply_url = self._replies.pop(run_id, None)
        return Card(run_id, str(view.run.channel_id), message, reply_url)

    async def standings(self, view: RunView) -> Standings:
        """The findings of the card's problem lines, with what each is now (one read)."""
        if self.answers is None:
            return {}
        fingerprints = [
            s.fingerprint
            for r in view.results
            for s in lines_of(r.check, r.account, r.severity, r.summary, r.details)
        ]
        if not fingerprints:
            return {}
        return await self.answers.standings(view.run.customer_id, fingerprints)

    async def windows(self, view: RunView) -> list[Window]:
        """The maintenance windows that were open while the run looked."""
        customer = self.catalog.customers.get(view.run.customer_id)
        if customer is None:
            return []
        async with self.runs.db.read() as session:
            return await during(session, customer, view.run)

    def render(
        self,
        view: RunView,
        standings: Standings | None = None,
        windows: Sequence[Window] = (),
    ) -> dict[str, Any]:
        customer = self.catalog.customers.get(view.run.customer_id)
        return run_card(
            view,
            customer_name=customer.name if customer else view.run.customer_id,
            tz=customer.tz if customer else ZoneInfo("UTC"),
            now=self.answers.clock() if self.answers else datetime.now(UTC),
            web_url=web_link(self.public_url, view.run.id),
            standings=standings,
            console=partial(console.link, customer) if customer else None,
            windows=windows,
        )

    async def sweep(self) -> list[int]:
        """The cards of active runs and of runs that finished since the last sweep (the last
        ten minutes, at start)."""
        now = datetime.now(UTC)
        since = (
            self._swept_at - timedelta(seconds=self.sweep_s or 0)
            if self._swept_at
            else now - RECENT
        )
        async with self.runs.db.read() as session:
            ids = (
                await session.execute(
                    select(Run.id).where(
                        Run.channel_id.is_not(None),
                        Run.source.in_(list(CARD_SOURCES)),
                        or_(Run.status.in_(list(ACTIVE_STATUSES)), Run.finished_at >= since),
                    )
                )
            ).scalars()
            found = list(ids)
        self._swept_at = now
        return found
