"""Which customers a person signed in with Slack may see on the web.

The same rules as in Slack (:func:`app.access.sees`): a user or admin grant, or membership of
one of the customer's granted channels. On the web nobody asks *from* a channel, so a channel
grant counts for the channel's members, asked of Slack (``conversations.members``) and kept
for ``ttl_s`` seconds: someone who leaves a channel stops seeing its customers within a minute.
A channel Slack will not list (archived, the app not in it, Slack down) grants nothing; the
failure is logged once per channel until it lists again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from app.access import sees
from app.catalog import Catalog

log = logging.getLogger(__name__)

Members = Callable[[str], Awaitable[frozenset[str]]]
"""A channel id → the user ids in it (raises when Slack cannot say)."""

TTL_S = 60.0
FAILED_TTL_S = 10.0
"""How long a channel Slack could not list counts as empty before it is asked again."""


class People:
    def __init__(
        self,
        catalog: Catalog,
        members: Members,
        *,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self._members = members
        self.ttl_s = ttl_s
        self._clock = clock
        self._known: dict[str, tuple[float, frozenset[str]]] = {}
        self._failing: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    async def customers(self, user: str) -> frozenset[str]:
        """The ids of the customers ``user`` may see."""
        customers = list(self.catalog.customers.values())
        wanted = {
            ch
            for c in customers
            if not sees(c, user, frozenset()).allowed
            for ch in c.slack.access.channels
        }
        channels = sorted(wanted)
        lists = await asyncio.gather(*(self._in(ch) for ch in channels))  # at once, not in turn
        member_of = frozenset(
            ch for ch, users in zip(channels, lists, strict=True) if user in users
        )
        return frozenset(c.id for c in customers if sees(c, user, member_of).allowed)

    async def _in(self, channel: str) -> frozenset[str]:
        now = self._clock()
        known = self._known.get(channel)
        if known is not None and known[0] > now:
            return known[1]
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:  # one question per channel however many pages load at once
            known = self._known.get(channel)
            if known is not None and known[0] > self._clock():
                return known[1]
            try:
                users = await self._members(channel)
            except Exception as exc:
                if channel not in self._failing:
                    log.warning(
                        "web: could not list the members of channel %s, so its access grant "
                        "counts for nobody on the web until it can (%s)",
                        channel,
                        type(exc).__name__,
                    )
                    self._failing.add(channel)
                self._known[channel] = (self._clock() + FAILED_TTL_S, frozenset())
                return frozenset()
            self._failing.discard(channel)
            self._known[channel] = (self._clock() + self.ttl_s, users)
            return users
