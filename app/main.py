"""The composition root: every client and service is built here, once, and passed down."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.catalog import Catalog
from app.db import Database
from app.errors import HubError
from app.executor import Executor, ExecutorOptions
from app.loader import load_catalog
from app.prewarm import keep_aws_ready
from app.runs import RunService
from app.scheduler import schedule_tasks
from app.settings import Settings
from app.web.metrics import HubMetrics
from app.web.server import web_task
from checks.aws import AwsClients, AwsOptions
from checks.registry import REGISTRY

if TYPE_CHECKING:
    from app.slack import Slack

log = logging.getLogger(__name__)


@dataclass
class Hub:
    settings: Settings
    db: Database
    catalog: Catalog
    aws: AwsClients
    runs: RunService
    executor: Executor
    slack: Slack | None = None
    metrics: HubMetrics = field(default_factory=HubMetrics)


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
            ExecutorOptions.from_settings(settings),
        )
        runs.on_change(executor.poke)
        hub = Hub(settings, db, catalog, aws, runs, executor)
        if settings.slack_enabled:  # Slack: the Bolt app, card refresher and outbox deliverer
            from app.slack import build_slack, web_client

            hub.slack = build_slack(
                settings,
                db=db,
                runs=runs,
                catalog=lambda: hub.catalog,
                client=web_client(settings),
                metrics=hub.metrics,
            )
            runs.on_change(hub.slack.changed)
            executor.on_change(hub.slack.changed)
            if hub.slack.home is not None:  # the App Home runboard follows run changes too
                runs.on_change(hub.slack.home.changed)
                executor.on_change(hub.slack.home.changed)
        yield hub
    finally:
        aws.close()
        await db.close()


class BackgroundTaskDied(HubError):
    """A background loop of ``mhub serve`` stopped on its own; the process stops with it so
    that its supervisor (systemd, Kubernetes) restarts it."""


Tasks = dict[str, Callable[[], Coroutine[Any, Any, None]]]
"""Named background tasks: each runs until the shared ``stop`` event is set."""


async def serve(hub: Hub, *, slack: bool = True, web: bool = True) -> None:
    """Run the executor and sweeper (and, as they arrive, Slack and the web view) until
    SIGTERM/SIGINT.

    The first signal stops claiming at once and lets running runs finish for up to
    ``HUB_GRACE_SECONDS``; what is left goes back to the queue without using an attempt. A
    second signal cuts the grace short. With ``slack=False, web=False`` (``mhub serve --no-slack
    --no-web``) this is a bare executor replica.
    """
    stop = asyncio.Event()
    if slack and not hub.settings.slack_enabled:
        log.warning("Slack is off: SLACK_BOT_TOKEN and SLACK_APP_TOKEN are not both set")
    tasks: Tasks = {
        "executor": lambda: hub.executor.serve(stop),
        "sweeper": lambda: hub.executor.sweep_forever(stop),
    }
    tasks["aws"] = lambda: keep_aws_ready(lambda: hub.catalog, hub.aws, stop)
    tasks.update(schedule_tasks(hub, stop))  # the scheduler; digests when Slack is set
    side = hub.slack
    if slack and side is not None:
        tasks["slack"] = lambda: side.run(stop)
        tasks["delivery"] = lambda: side.deliver(stop, busy=lambda: bool(hub.executor.active))
    if web:  # refuses here, before anything starts, to listen beyond loopback without auth
        tasks["web"] = web_task(hub, stop, slack=slack and side is not None)
    # What start-up allocated (config, models, clients) lives as long as the process: take it
    # out of the collector's sight so full collections stay short and Slack acks stay fast.
    gc.collect()
    gc.freeze()
    with _signals(stop, hub.executor.stop_now, hub.settings.grace_s):
        log.info("serving as %s: %s", hub.executor.owner, ", ".join(tasks))
        await supervise(tasks, stop)
    log.info("stopped")


@contextlib.contextmanager
def _signals(stop: asyncio.Event, hurry: Callable[[], None], grace_s: float) -> Iterator[None]:
    """First SIGTERM/SIGINT: ``stop``. Second: ``hurry``."""
    loop = asyncio.get_running_loop()
    received = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal received
        received += 1
        if received == 1:
            log.info(
                "%s: stopping; no new runs are claimed, running ones get up to %.0f s",
                sig.name,
                grace_s,
            )
            stop.set()
        else:
            log.warning("%s again: stopping now; unfinished runs go back to the queue", sig.name)
            hurry()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def supervise(tasks: Tasks, stop: asyncio.Event) -> None:
    """Run named background tasks until ``stop`` and all of them have ended.

    The monitor: a task that ends before ``stop`` was set, or with an error, is logged loudly
    with its traceback, ``stop`` is set so the others wind down in order, and
    :class:`BackgroundTaskDied` is raised once they have.
    """
    running = {asyncio.create_task(factory(), name=name): name for name, factory in tasks.items()}
    died: list[str] = []
    try:
        pending = set(running)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is None and stop.is_set():
                    continue
                died.append(running[task])
                log.critical(
                    "background task %r %s; stopping the process",
                    running[task],
                    "crashed" if error is not None else "ended unexpectedly",
                    exc_info=error,
                )
                stop.set()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    if died:
        raise BackgroundTaskDied(
            f"background task(s) {', '.join(died)} stopped; see the log above for why"
        )
