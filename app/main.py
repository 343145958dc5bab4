"""The composition root: every client and service is built here, once, and passed down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.catalog import Catalog
from app.db import Database
from app.executor import Executor, ExecutorOptions
from app.loader import load_catalog
from app.runs import RunService
from app.settings import Settings
from checks.aws import AwsClients, AwsOptions
from checks.registry import REGISTRY

log = logging.getLogger(__name__)


@dataclass
class Hub:
    settings: Settings
    db: Database
    catalog: Catalog
    aws: AwsClients
    runs: RunService
    executor: Executor


@asynccontextmanager
async def build(settings: Settings, catalog: Catalog | None = None) -> AsyncIterator[Hub]:
    """Build the hub from settings; the database schema must be current (SQLite upgrades)."""
    catalog = catalog if catalog is not None else load_catalog(settings.config_dir)
    db = Database(settings.database_url)
    aws = AwsClients(AwsOptions(threads=settings.aws_threads))
    try:
        await db.ensure_schema()
        runs = RunService(db, max_attempts=settings.max_attempts)
        executor = Executor(
            db,
            lambda: hub.catalog,
            REGISTRY,
            aws,
            ExecutorOptions(
                max_runs=settings.max_concurrent_runs,
                max_targets=settings.max_concurrent_targets,
                check_timeout_s=settings.check_timeout_s,
                lease_s=settings.lease_s,
                heartbeat_s=settings.heartbeat_s,
                poll_s=settings.poll_s,
            ),
        )
        runs.on_change(executor.poke)
        hub = Hub(settings, db, catalog, aws, runs, executor)
        yield hub
    finally:
        aws.close()
        await db.close()


async def serve(hub: Hub, *, slack: bool = True, web: bool = True) -> None:
    """Run the executor and sweeper (and, as they arrive, Slack and the web view) until
    SIGTERM/SIGINT. The first signal drains gracefully; a second one stops at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("stopping: no new claims; finishing running work")
            stop.set()
        else:
            log.warning("second signal: stopping now")
            for task in asyncio.all_tasks(loop):
                if task is not asyncio.current_task(loop):
                    task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    if slack and not hub.settings.slack_enabled:
        log.warning("Slack is off: SLACK_BOT_TOKEN and SLACK_APP_TOKEN are not both set")
    tasks = {
        "executor": lambda: hub.executor.serve(stop),
        "sweeper": lambda: hub.executor.sweep_forever(stop),
    }
    await supervise(tasks, stop)


async def supervise(tasks: dict[str, Callable[[], Awaitable[None]]], stop: asyncio.Event) -> None:
    """Run named background tasks; if one dies, log it loudly and stop the others."""
    running = {asyncio.create_task(factory(), name=name): name for name, factory in tasks.items()}
    try:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.critical(
                    "background task %r died; stopping", running[task], exc_info=task.exception()
                )
                stop.set()
        await asyncio.gather(*running, return_exceptions=True)
    finally:
        for task in running:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*running, return_exceptions=True)
