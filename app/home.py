"""The App Home tab: who has it open, and keeping their runboard current.

Slack says when someone opens the tab (``app_home_opened``) but never when they leave, so a
person counts as *watching* for ``remember_s`` after they last opened it. Their Home view is
published when they open it and re-published whenever a run changes — the same ``on_change``
hooks that keep result cards current (run service and executor) call :meth:`HomeTab.changed`.

Coalescing: ``changed`` only marks every watcher dirty and wakes the publisher task. The task
publishes a dirty watcher as soon as their last publish is ``min_gap_s`` (2 s) old, so a person
gets at most one ``views.publish`` per 2 s however many runs change, and a change reaches them
within 2 s (it is picked up by the next publish, which is at most ``min_gap_s`` away). All
watchers due together share one database snapshot (:mod:`app.runboard`), narrowed per person to
the customers they may see. A 429 delays that person by its ``Retry-After``; other failures
are logged and the next change publishes again. While runs are running, watchers are also
re-published every ``refresh_s`` (15 s) without a change, so the heartbeat shown stays true.

Access: a person sees the customers they may list (:func:`app.access.decide`; in the Home tab
there is no channel, so channel grants do not apply). The decision is audited once per opening
of the tab, not on every re-publish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from app.access import Access, Action, Who, decide
from app.catalog import Catalog
from app.db import Database
from app.runboard import Runboard, snapshot
from app.scheduler import next_fire_times
from app.waiting import wait_any
from blocks.home import NextRun, home_view

log = logging.getLogger(__name__)

MIN_GAP_S = 2.0
REMEMBER_S = 30 * 60.0
DEBOUNCE_S = 0.05
REFRESH_S = 15.0
"""While runs are running, watchers are re-published this often even without a change, so
their heartbeat ("alive 2 s ago") does not freeze."""
CONCURRENCY = 4


class HomeTab:
    def __init__(
        self,
        client: AsyncWebClient,
        db: Database,
        catalog: Callable[[], Catalog],
        access: Access,
        *,
        public_url: str | None = None,
        min_gap_s: float = MIN_GAP_S,
        remember_s: float = REMEMBER_S,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.db = db
        self.catalog = catalog
        self.access = access
        self.public_url = public_url
        self.min_gap_s = min_gap_s
        self.remember_s = remember_s
        self.refresh_s = refresh_s
        self.clock = clock
        self._watching: dict[str, float] = {}  # user → watching until (clock)
        self._last: dict[str, float] = {}  # user → last publish began (clock)
        self._dirty: set[str] = set()
        self._unaudited: set[str] = set()
        self._notices: dict[str, str] = {}
        self._refresh_at: float | None = None
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(CONCURRENCY)

    # -- what happens ---------------------------------------------------------------------

    def opened(self, user: str) -> None:
        """``user`` opened the Home tab: publish it for them and keep it current."""
        if not user:
            return
        self._watching[user] = self.clock() + self.remember_s
        self._unaudited.add(user)
        self._mark({user})

    def changed(self, run_id: int) -> None:
        """A run changed (listener for the run service and the executor)."""
        now = self.clock()
        for user, until in list(self._watching.items()):
            if until < now:
                del self._watching[user]
                self._last.pop(user, None)
        self._mark(set(self._watching))

    def notice(self, user: str, text: str) -> None:
        """Show ``text`` at the top of ``user``'s Home tab at its next publish."""
        self._notices[user] = text
        self._mark({user})

    def watching(self) -> set[str]:
        now = self.clock()
        return {u for u, until in self._watching.items() if until >= now}

    def _mark(self, users: set[str]) -> None:
        if users:
            self._dirty |= users
            self._wake.set()

    # -- the publisher task ---------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            refresh = self._refresh_at
            if refresh is not None and self.clock() >= refresh:
                self._refresh_at = None
                self._mark(self.watching())
            wait = self._next_due_in()
            if wait is not None and wait <= 0:
                await asyncio.sleep(DEBOUNCE_S)  # gather the rest of a burst
                await self.publish_due()
                continue
            if refresh is not None:
                until = refresh - self.clock()
                wait = until if wait is None else min(wait, until)
            await wait_any(self._wake, stop, within_s=wait)

    def _next_due_in(self) -> float | None:
        """Seconds until the first dirty user may be published (None: nobody is dirty)."""
        if not self._dirty:
            return None
        now = self.clock()
        return min(self._last.get(u, -1e9) + self.min_gap_s for u in self._dirty) - now

    async def publish_due(self) -> None:
        """Publish every dirty user whose last publish is ``min_gap_s`` old, from one
        snapshot."""
        now = self.clock()
        due = {u for u in self._dirty if self._last.get(u, -1e9) + self.min_gap_s <= now}
        if not due:
            return
        self._dirty -= due
        for user in due:
            self._last[user] = now
        try:
            await self._audit(due)
            catalog = self.catalog()
            board = await snapshot(self.db, catalog.customers, datetime.now(UTC))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("home: cannot read the runboard now (%s); trying again shortly", exc)
            self._dirty |= due
            return
        if board.running:
            self._refresh_at = self.clock() + self.refresh_s
        await asyncio.gather(*(self._publish(user, catalog, board) for user in sorted(due)))

    async def _audit(self, users: set[str]) -> None:
        audit, self._unaudited = self._unaudited & users, self._unaudited - users
        customers = self.catalog().customers.values()
        for user in sorted(audit):
            await self.access.visible(customers, Who(user), Action.LIST)

    def render(self, user: str, catalog: Catalog, board: Runboard) -> dict[str, object]:
        """``user``'s Home view from a shared snapshot."""
        who = Who(user)
        mine = {c.id: c for c in catalog.customers.values() if decide(c, who, Action.LIST).allowed}
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
        )

    async def _publish(self, user: str, catalog: Catalog, board: Runboard) -> None:
        async with self._limit:
            try:
                view = self.render(user, catalog, board)
            except Exception:
                log.exception("home: rendering %s's runboard failed", user)
                return
            try:
                await self.client.views_publish(user_id=user, view=view)
            except SlackApiError as exc:
                self._failed(user, exc)
            except (OSError, TimeoutError) as exc:
                log.warning("home: publishing for %s failed (%s)", user, type(exc).__name__)

    def _failed(self, user: str, exc: SlackApiError) -> None:
        if exc.response.status_code == 429:
            wait = float(exc.response.headers.get("Retry-After", self.min_gap_s) or 1)
            self._last[user] = self.clock() + wait - self.min_gap_s
            self._dirty.add(user)
            self._wake.set()
            return
        log.warning("home: views.publish for %s refused (%s)", user, exc.response.get("error"))
