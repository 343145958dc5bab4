"""The runboard's render cache: one entry, keyed by the live-update token, for a few seconds.

Every open runboard reloads itself when the token changes, so a change seen by twenty screens
would otherwise be twenty identical renders at once. The entry also expires after ``ttl_s``
because a few things on the board move with the clock alone (a stale heartbeat becomes
"may be stuck"; the last-24-hours window slides).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class PageCache:
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._key: str | None = None
        self._body = b""
        self._at = 0.0

    def get(self, key: str) -> bytes | None:
        if self.ttl_s <= 0 or key != self._key or self.clock() - self._at > self.ttl_s:
            return None
        return self._body

    def put(self, key: str, body: bytes) -> None:
        if self.ttl_s > 0:
            self._key, self._body, self._at = key, body, self.clock()
