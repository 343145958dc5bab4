"""Serving the web view inside ``mhub serve``: the readiness probes and the site itself.

The composition root checks the exposure rules (:func:`app.web.security.check_exposure`)
before anything starts, so ``mhub serve`` refuses to start with a clear message instead of
failing later in a background task, then runs :func:`serve_site` on
``HUB_WEB_HOST:HUB_WEB_PORT`` until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from app import systemd
from app.db import Database
from app.version import current
from app.web import queries
from app.web.keys import Probe

log = logging.getLogger(__name__)

DB_TIMEOUT_S = 2.0
EXECUTOR_STALE_S = 30.0
READY_POLL_S = 0.2
"""How often, until it is ready, the process asks its probes whether to tell systemd."""
QUIET_PATHS = frozenset({"/api/version", "/healthz", "/readyz", "/metrics"})


class AccessLogger(AbstractAccessLogger):
    """One line per request, except the live-update polls and the probes; a sign-in page's
    query (Slack's one-time code, the state) is never written."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path in QUIET_PATHS and response.status < 400:
            return
        self.logger.info(
            '%s "%s %s" %s %.1f ms',
            request.remote,
            request.method,
            request.path if request.path.startswith("/auth/") else request.path_qs,
            response.status,
            time * 1000,
        )


def database_probe(db: Database, timeout_s: float = DB_TIMEOUT_S) -> Probe:
    async def probe() -> str | None:
        try:
            await asyncio.wait_for(queries.ping(db), timeout_s)
        except TimeoutError:
            return f"no answer from the database within {timeout_s:.0f} s"
        except Exception as exc:
            return f"database unreachable: {type(exc).__name__}"
        return None

    return probe


def executor_probe(
    last_loop_at: Callable[[], datetime | None], stale_s: float = EXECUTOR_STALE_S
) -> Probe:
    async def probe() -> str | None:
        last = last_loop_at()
        if last is None:
            return "the executor has not started its loop"
        age = (datetime.now(UTC) - last).total_seconds()
        if age > stale_s:
            return f"the executor loop last ran {age:.0f} s ago"
        return None

    return probe


def slack_probe(connected: Callable[[], Awaitable[bool]]) -> Probe:
    async def probe() -> str | None:
        return None if await connected() else "Slack (Socket Mode) is not connected"

    return probe


async def serve_site(
    app: web.Application,
    host: str,
    port: int,
    stop: asyncio.Event,
    bound: asyncio.Event | None = None,
) -> None:
    """Bind ``host:port``, serve ``app`` until ``stop`` is set, then shut the site down (the
    supervised "web" task of ``mhub serve``); ``bound`` is set once it answers."""
    runner = web.AppRunner(app, access_log_class=AccessLogger, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("web view on %s", url(host, port))
        if bound is not None:
            bound.set()
        await stop.wait()
    finally:
        await runner.cleanup()


async def tell_systemd(
    address: str,
    probes: Mapping[str, Probe],
    stop: asyncio.Event,
    bound: asyncio.Event | None = None,
    poll_s: float = READY_POLL_S,
) -> None:
    """``Type=notify`` (the supervised "systemd" task): ``READY=1`` once every probe passes
    and, with ``bound``, the web view answers; ``STOPPING=1`` when ``stop`` is set."""
    while not stop.is_set():
        if (bound is None or bound.is_set()) and await _passing(probes):
            systemd.notify(address, "READY=1", f"STATUS=Ready (Monitoring Hub {current()})")
            log.info("told systemd: ready")
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)
    await stop.wait()
    systemd.notify(address, "STOPPING=1", "STATUS=Stopping: draining running checks")


async def _passing(probes: Mapping[str, Probe]) -> bool:
    for probe in probes.values():
        if await probe() is not None:
            return False
    return True


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host or "0.0.0.0"
    return f"http://{shown}:{port}/"
