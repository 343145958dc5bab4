"""Serving the web view inside ``mhub serve``: readiness probes and the supervised task.

:func:`web_task` checks the exposure rules *now* (so ``mhub serve`` refuses to start with a
clear message instead of failing later in a background task), and returns the task that binds
``HUB_WEB_HOST:HUB_WEB_PORT``, serves until ``stop`` is set, and shuts the site down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from app.db import Database
from app.web import create_app, queries
from app.web.keys import Probe
from app.web.security import check_exposure

if TYPE_CHECKING:
    from app.main import Hub

log = logging.getLogger(__name__)

DB_TIMEOUT_S = 2.0
EXECUTOR_STALE_S = 30.0
QUIET_PATHS = frozenset({"/api/version", "/healthz", "/readyz", "/metrics"})


class AccessLogger(AbstractAccessLogger):
    """One line per request, except the live-update polls and the probes."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path in QUIET_PATHS and response.status < 400:
            return
        self.logger.info(
            '%s "%s %s" %s %.1f ms',
            request.remote,
            request.method,
            request.path_qs,
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


def web_task(
    hub: Hub, stop: asyncio.Event, *, slack: bool
) -> Callable[[], Coroutine[Any, Any, None]]:
    """The supervised "web" task of ``mhub serve``; raises WebRefused at once if unsafe."""
    settings = hub.settings
    auth = settings.web_auth.get_secret_value() if settings.web_auth else None
    check_exposure(settings.web_host, settings.web_port, auth)
    probes = {
        "database": database_probe(hub.db),
        "executor": executor_probe(lambda: hub.executor.last_loop_at),
    }

    async def slack_connected() -> bool:
        handler = hub.slack.handler if hub.slack is not None else None
        return handler is not None and bool(await handler.client.is_connected())

    if slack:
        probes["slack"] = slack_probe(slack_connected)
        hub.metrics.slack_connected = slack_connected

    def subscribe(listener: Callable[[int], None]) -> None:
        hub.executor.on_change(listener)

    async def run() -> None:
        app = create_app(
            db=hub.db,
            runs=hub.runs,
            catalog=lambda: hub.catalog,
            metrics=hub.metrics,
            auth=auth,
            public_url=settings.public_url,
            probes=probes,
            subscribe=subscribe,
        )
        runner = web.AppRunner(app, access_log_class=AccessLogger, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.web_host, settings.web_port)
            await site.start()
            log.info("web view on %s", url(settings.web_host, settings.web_port))
            await stop.wait()
        finally:
            await runner.cleanup()

    return run


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host or "0.0.0.0"
    return f"http://{shown}:{port}/"
