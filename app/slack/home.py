"""The App Home tab: who has it open, and keeping their runboard current.

Slack says when someone opens the tab (``app_home_opened``) but never when they leave, so a
person counts as *watching* for ``remember_s`` after they last opened it. Their Home view is
published when they open it and re-published whenever a run changes: :class:`HomeTab` follows
run changes (:class:`~app.engine.changes.Follower`) like the result cards do.

Coalescing: a change marks every watcher stale. A stale watcher is published as soon as their
last ``views.publish`` went out ``min_gap_s`` (2 s) ago — counted from when the request was
sent, not from when it was decided, so however long the database read before a publish takes,
a person gets at most one ``views.publish`` per 2 s however many runs change, and a change
reaches them within about 2 s (it is picked up by the next publish). All watchers due together
share one runboard snapshot (:mod:`app.engine.runboard`), narrowed per person to the customers
they may see. A 429 delays that person by its ``Retry-After``; other failures are logged and the
next change publishes again. While runs are running, watchers are also re-published every
``refresh_s`` (15 s) without a change, so the heartbeat shown stays true.

Access: a person sees the customers they may list (:func:`app.access.decide`; in the Home
tab there is no channel, so channel grants do not apply). The decision is audited once per
opening of the tab, not on every re-publish.

Your findings: the findings a person acknowledged, and the snoozes that end within
``SOON`` (24 h), of the customers they may see (the same rule), read once per snapshot for all
watchers due together. An answer changes no run: whoever gives one calls
:meth:`HomeTab.findings_changed` so the watchers' tabs show it.

Blind spots: the account × checks of the viewer's customers that cannot look
(:mod:`app.engine.blind`), read once per snapshot, listed first; a customer with one never
shows ✅. They change with runs, which publish the tab anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import and_, or_, select

from app.access import Access, Action, Who, decide
from app.catalog import Catalog
from app.db import DB_TROUBLE, Database
from app.engine import runboard
from app.engine.answers import Answers, Standing, standing
from app.engine.blind import BlindSpot, blind_spots
from app.engine.changes import Follower
from app.engine.coverage import configured
from app.engine.maintenance import UPCOMING, Window, windows_of
from app.engine.runboard import Runboard
from app.models import Finding
from app.schedules.slots import next_fire_times
from blocks.home import NextRun, home_view

log = logging.getLogger(__name__)

MIN_GAP_S = 2.0
REMEMBER_S = 30 * 60.0
DEBOUNCE_S = 0.05
REFRESH_S = 15.0
"""While runs are running, watchers are re-published this often even without a change, so
their heartbeat ("alive 2 s ago") does not freeze."""
RECENT_SCAN = 60
"""Newest finished runs read per snapshot; each viewer sees those of their customers."""
CONCURRENCY = 4
NEVER = float("-inf")
SOON = timedelta(hours=24)
"""Snoozes ending within this are shown under "Your findings"."""
ANSWERED_SCAN = 500
"""Answered findings read per snapshot (acknowledged by a watcher, or snoozed until soon)."""

Answered = Sequence[tuple[Finding, Standing]]


class HomeTab(Follower):
    name = "home"

    def __init__(
        self,
        client: AsyncWebClient,
        db: Database,
        catalog: Catalog,
        access: Access,
        *,
        public_url: str | None = None,
        min_gap_s: float = MIN_GAP_S,
        remember_s: float = REMEMBER_S,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        answers: Answers | None = None,
    ) -> None:
        super().__init__(debounce_s=DEBOUNCE_S)
        self.client = client
        self.db = db
        self.catalog = catalog
        self.access = access
        self.public_url = public_url
        self.min_gap_s = min_gap_s
        self.remember_s = remember_s
        self.refresh_s = refresh_s
        self.clock = clock
        self.answers = answers
        """Reads "Your findings" (None: the section is not shown)."""
        self._watching: dict[str, float] = {}  # user → watching until (clock)
        self._sent: dict[str, float] = {}  # user → when their last views.publish was sent
        self._stale: set[str] = set()
        self._unaudited: set[str] = set()
        self._notices: dict[str, str] = {}
        self._refresh_at: float | None = None
        self._limit = asyncio.Semaphore(CONCURRENCY)

    # -- what happens ---------------------------------------------------------------------

    def opened(self, user: str) -> None:
        """``user`` opened the Home tab: publish it for them and keep it current."""
        if not user:
            return
        self._watching[user] = self.clock() + self.remember_s
        self._unaudited.add(user)
        self._mark({user})

    def notice(self, user: str, text: str) -> None:
        """Show ``text`` at the top of ``user``'s Home tab at its next publish."""
        self._notices[user] = text
        self._mark({user})

    def watching(self) -> set[str]:
        now = self.clock()
        for user, until in list(self._watching.items()):
            if until < now:
                del self._watching[user]
                self._sent.pop(user, None)
        return set(self._watching)

    def findings_changed(self) -> None:
        """Someone answered a finding: every watcher's "Your findings" may change."""
        self._mark(self.watching())

    def _mark(self, users: set[str]) -> None:
        if users:
            self._stale |= users
            self.wake()

    # -- publishing -----------------------------------------------------------------------

    async def flush(self, run_ids: set[int]) -> float | None:
        """Publish every stale watcher whose last publish went out ``min_gap_s`` ago, from one
        snapshot; returns when the next one is due (or the heartbeat refresh)."""
        if run_ids:  # a run changed: everyone watching may see it
            self._stale |= self.watching()
        if self._refresh_at is not None and self.clock() >= self._refresh_at:
            self._refresh_at = None
            self._stale |= self.watching()
        now = self.clock()
        due = {u for u in self._stale if self._sent.get(u, NEVER) + self.min_gap_s <= now}
        if due:
            self._stale -= due
            try:
                await self._audit(due)
                catalog = self.catalog
                board = await runboard.read(
                    self.db, catalog.customers, datetime.now(UTC), recent=RECENT_SCAN
                )
                answered = await self._answered(catalog, due, board.taken_at)
                unseen = await self._blind(catalog, board.taken_at)
                windows = await self._windows(catalog, board.taken_at)
            except DB_TROUBLE:
                self._stale |= due  # published once the database answers again
                raise
            if board.running:
                self._refresh_at = self.clock() + self.refresh_s
            await asyncio.gather(
                *(
                    self._publish(user, catalog, board, answered, unseen, windows)
                    for user in sorted(due)
                )
            )
        return self._next_in()

    def _next_in(self) -> float | None:
        """Seconds until the first stale watcher may be published, or the heartbeat refresh."""
        now = self.clock()
        waits = [self._sent.get(u, NEVER) + self.min_gap_s - now for u in self._stale]
        if self._refresh_at is not None:
            waits.append(self._refresh_at - now)
        return max(0.0, min(waits)) if waits else None

    async def _audit(self, users: set[str]) -> None:
        audit, self._unaudited = self._unaudited & users, self._unaudited - users
        customers = self.catalog.customers.values()
        for user in sorted(audit):
            await self.access.visible(customers, Who(user), Action.LIST)

    async def _answered(
        self, catalog: Catalog, users: Collection[str], now: datetime
    ) -> list[tuple[Finding, Standing]]:
        """The open findings acknowledged by any of ``users`` or snoozed until within
        :data:`SOON`, with what each is now (one query, and each customer's rules)."""
        if self.answers is None or not users:
            return []
        query = (
            select(Finding)
            .where(
                Finding.customer_id.in_(sorted(catalog.customers)),
                Finding.status == "open",
                or_(
                    Finding.ack_by.in_(sorted(users)),
                    and_(Finding.snooze_until > now, Finding.snooze_until <= now + SOON),
                ),
            )
            .order_by(Finding.id.desc())
            .limit(ANSWERED_SCAN)
        )
        async with self.db.read() as session:
            found = list((await session.execute(query)).scalars())
        rules = {c: await self.answers.rules(c) for c in sorted({f.customer_id for f in found})}
        return [(f, standing(f, rules[f.customer_id], now)) for f in found]

    async def _blind(self, catalog: Catalog, now: datetime) -> list[BlindSpot]:
        """Every customer's blind spots (of account × checks it still has), oldest first."""
        async with self.db.read() as session:
            spots = await blind_spots(session, sorted(catalog.customers), now)
        return configured(catalog, spots)

    async def _windows(self, catalog: Catalog, now: datetime) -> dict[str, list[Window]]:
        """Every customer's maintenance windows open now or within a week (one query)."""
        async with self.db.read() as session:
            customers = catalog.customers.values()
            return await windows_of(session, customers, now, now + UPCOMING)

    def render(
        self,
        user: str,
        catalog: Catalog,
        board: Runboard,
        answered: Answered = (),
        blind: Sequence[BlindSpot] = (),
        windows: Mapping[str, Sequence[Window]] | None = None,
    ) -> dict[str, object]:
        """``user``'s Home view from a shared snapshot (and the answered findings and blind
        spots read with it)."""
        who = Who(user)
        mine = {c.id: c for c in catalog.customers.values() if decide(c, who, Action.LIST).allowed}
        soon = board.taken_at + SOON
        yours = [
            (found, now_is)
            for found, now_is in answered
            if found.customer_id in mine
            and (
                now_is.ack_by == user
                or (now_is.state == "snoozed" and now_is.until is not None and now_is.until <= soon)
            )
        ]
        upcoming = [
            NextRun(u.customer.name, u.schedule.name, u.at)
            for u in next_fire_times(Catalog(mine.values()), board.taken_at)
        ]
        return home_view(
            board.visible_to(mine.keys()),
            mine,
            upcoming,
            now=board.taken_at,
            web_url=f"{self.public_url.rstrip('/')}/" if self.public_url else None,
            notice=self._notices.pop(user, None),
            yours=yours,
            blind=[spot for spot in blind if spot.customer in mine],
            windows={c: w for c, w in (windows or {}).items() if c in mine},
        )

    async def _publish(
        self,
        user: str,
        catalog: Catalog,
        board: Runboard,
        answered: Answered,
        blind: Sequence[BlindSpot],
        windows: Mapping[str, Sequence[Window]],
    ) -> None:
        async with self._limit:
            try:
                view = self.render(user, catalog, board, answered, blind, windows)
            except Exception:
                log.exception("home: rendering %s's runboard failed", user)
                return
            self._sent[user] = self.clock()  # the gap is counted from here, the request
            try:
                await self.client.views_publish(user_id=user, view=view)
            except SlackApiError as exc:
                self._failed(user, exc)
            except (OSError, TimeoutError) as exc:
                log.warning("home: publishing for %s failed (%s)", user, type(exc).__name__)

    def _failed(self, user: str, exc: SlackApiError) -> None:
        if exc.response.status_code == 429:
            wait = float(exc.response.headers.get("Retry-After", self.min_gap_s) or 1)
            self._sent[user] = self.clock() + wait - self.min_gap_s
            self._mark({user})
            return
        log.warning("home: views.publish for %s refused (%s)", user, exc.response.get("error"))
