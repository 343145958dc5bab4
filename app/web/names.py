"""Slack names for the ids the web view would otherwise show: ``U0ALICE`` → ``@alice``,
``C0DEMO0001`` → ``#demo-retail``.

Asked of Slack (``users.info``, ``conversations.info``, :mod:`app.slack.directory`) and kept
for ``ttl_s`` seconds in a bounded cache. An id Slack does not know (``user_not_found``,
``channel_not_found``) is shown as the id for as long; one Slack could not be asked about
(Slack down, rate limited) is shown as the id and asked again after ``failed_ttl_s``, not on
every page (logged once until it answers again). Pages asking for the same id at once share
one call. Without Slack there is no :class:`Names` and every page shows the ids.

A page is built once with the names already kept (:func:`named`); only when it shows an id
not kept yet is it built a second time, after those ids were asked for all at once. Building a
page is pure and cheap.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

log = logging.getLogger(__name__)

Lookup = Callable[[str], Awaitable[str | None]]
"""An id → its name in Slack, None when Slack has no such id (raises when Slack cannot say)."""
Namer = Callable[[str], str | None]
"""An id → the name to show for it (``@alice``, ``#ops``), or None to show the id."""

TTL_S = 3600.0
FAILED_TTL_S = 120.0
"""How long an id Slack could not be asked about is shown as the id before it is asked again."""
SIZE = 4096
"""The most names kept; the least recently used go first."""
WAIT_S = 2.0
"""How long a page waits for Slack's names; ids still unanswered are shown as ids (their
answers are kept for the next page)."""

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,20}$")

T = TypeVar("T")


def no_names(_ref: str) -> str | None:
    """Every id shown as itself (no Slack)."""
    return None


class Asked:
    """A :data:`Namer` that names the ids ``known`` already knows and notes the Slack ids it
    does not (the ones to ask Slack about)."""

    def __init__(self, known: Callable[[str], tuple[bool, str | None]]) -> None:
        self._known = known
        self.ids: set[str] = set()

    def __call__(self, ref: str) -> str | None:
        hit, name = self._known(ref)
        if hit:
            return name
        if USER_ID.match(ref) or CHANNEL_ID.match(ref):
            self.ids.add(ref)
        return None


class Names:
    def __init__(
        self,
        users: Lookup,
        channels: Lookup,
        *,
        ttl_s: float = TTL_S,
        failed_ttl_s: float = FAILED_TTL_S,
        size: int = SIZE,
        wait_s: float = WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = users
        self._channels = channels
        self.ttl_s = ttl_s
        self.failed_ttl_s = failed_ttl_s
        self.size = size
        self.wait_s = wait_s
        self._clock = clock
        self._late: set[asyncio.Task[str | None]] = set()
        self._known: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._asking: dict[str, asyncio.Future[str | None]] = {}
        self._failing: set[str] = set()

    async def resolve(self, refs: Iterable[str]) -> dict[str, str]:
        """The names of those of ``refs`` Slack could name: ``{"U0ALICE": "@alice"}``. Ids
        that are neither a user's nor a channel's are left out, never asked about."""
        wanted = sorted({r for r in refs if USER_ID.match(r) or CHANNEL_ID.match(r)})
        if not wanted:
            return {}
        asks = {ref: asyncio.ensure_future(self.name(ref)) for ref in wanted}  # at once
        await asyncio.wait(asks.values(), timeout=self.wait_s)
        shown = {}
        for ref, ask in asks.items():
            if not ask.done():  # Slack is slow: the answer is kept for the next page
                self._late.add(ask)
                ask.add_done_callback(self._late.discard)
            elif not ask.cancelled() and ask.exception() is None and (name := ask.result()):
                shown[ref] = name
        return shown

    def known(self, ref: str) -> tuple[bool, str | None]:
        """(True, what to show) when ``ref``'s answer is kept and fresh; (False, None) when
        Slack has to be asked."""
        known = self._known.get(ref)
        if known is None or known[0] <= self._clock():
            return False, None
        self._known.move_to_end(ref)
        return True, known[1]

    async def name(self, ref: str) -> str | None:
        """``@alice`` for a user id, ``#ops`` for a channel id; None to show the id."""
        known = self._known.get(ref)
        if known is not None and known[0] > self._clock():
            self._known.move_to_end(ref)
            return known[1]
        asking = self._asking.get(ref)
        if asking is not None:  # someone asked Slack already: wait for that answer
            try:
                return await asyncio.shield(asking)
            except asyncio.CancelledError:
                if asking.cancelled():  # the one asking was cancelled, not this page
                    return None
                raise
        asking = asyncio.get_running_loop().create_future()
        self._asking[ref] = asking
        try:
            asking.set_result(await self._ask(ref))
        except BaseException:
            asking.cancel()
            raise
        finally:
            del self._asking[ref]
        return asking.result()

    async def _ask(self, ref: str) -> str | None:
        user = bool(USER_ID.match(ref))
        try:
            found = await (self._users if user else self._channels)(ref)
        except Exception as exc:
            if ref not in self._failing and len(self._failing) < self.size:
                log.warning(
                    "web: could not ask Slack the name of %s; showing the id until it answers "
                    "(%s: %s)",
                    ref,
                    type(exc).__name__,
                    str(exc)[:200],
                )
                self._failing.add(ref)
            self._keep(ref, None, self.failed_ttl_s)
            return None
        self._failing.discard(ref)
        shown = f"{'@' if user else '#'}{found}" if found else None
        self._keep(ref, shown, self.ttl_s)
        return shown

    def _keep(self, ref: str, name: str | None, ttl_s: float) -> None:
        self._known[ref] = (self._clock() + ttl_s, name)
        self._known.move_to_end(ref)
        while len(self._known) > self.size:
            self._known.popitem(last=False)


async def named(names: Names | None, build: Callable[[Namer], T]) -> T:
    """``build`` a page with the Slack names of the ids it shows (with ``names``), else as is."""
    if names is None:
        return build(no_names)
    asked = Asked(names.known)
    first = build(asked)
    if not asked.ids:  # every id shown is known (or there are none): built once
        return first
    fresh = await names.resolve(asked.ids)
    return build(lambda ref: fresh[ref] if ref in fresh else names.known(ref)[1])
