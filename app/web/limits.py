"""A rate limit per API token: a token bucket in this process's memory.

Each token may make ``rate_per_minute`` requests a minute, in bursts of up to ``burst``; past
that it gets a 429 problem with ``Retry-After``. The buckets are per replica: behind a load
balancer spreading requests over N replicas a token may make up to N times the rate, which is
what the limit is for — keeping one runaway script from crowding out everyone else on a replica,
not metering.

Hand-written because it is a few lines: ``aiohttp-ratelimiter`` decorates each route, keys
by a function of the request before any middleware ran (so not by the token that identity
found), and answers in its own format; ``aiolimiter`` makes the caller wait instead of
refusing. Neither is worth a dependency here. Only requests that carry a token are limited
(signed-in people and the operator are not automation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from app.web.problems import problem
from app.web.viewer import VIEWER, Viewer


def per_token(
    rate_per_minute: int = 120, burst: int = 30, clock: Callable[[], float] = time.monotonic
) -> Middleware:
    """The middleware (after identity, which names the token)."""
    rate = rate_per_minute / 60  # tokens back per second
    buckets: dict[int, tuple[float, float]] = {}  # token id → (requests left, when)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        who: Viewer | None = request.get(VIEWER)
        if who is None or who.token_id is None:
            return await handler(request)
        now = clock()
        left, then = buckets.get(who.token_id, (float(burst), now))
        left = min(float(burst), left + (now - then) * rate)
        if left < 1:
            buckets[who.token_id] = (left, now)
            wait = max(1, math.ceil((1 - left) / rate))
            return problem(
                429,
                "Too Many Requests",
                f"This token may make {rate_per_minute} requests a minute, in bursts of "
                f"{burst}. Wait {wait} s (Retry-After) and try again.",
                headers={"Retry-After": str(wait)},
                retry_after=wait,
            )
        buckets[who.token_id] = (left - 1, now)
        return await handler(request)

    return middleware
