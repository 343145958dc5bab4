"""The composition root: every client and service is built here, once, and passed down.

:func:`build` makes the hub — database, AWS clients, run changes, run service, executor,
scheduler, digests and, when both Slack tokens are set, the Slack side with its listeners —
and :func:`serve` runs its background tasks under one supervisor. Nothing below this module
imports it; each service receives the narrow things it uses. Tests and benchmarks build the hub
here too, swapping what they must through ``build``'s keyword arguments (stand-in checks,
faster timings, a clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import handlers
from app import systemd
from app.access import Access
from app.accounts.merge import Discovered
from app.accounts.sync import Syncer, keep_synced
from app.catalog import Catalog
from app.db import DB_TROUBLE, Database
from app.engine.alerts import Router
from app.engine.answers import Answers, rules_from
from app.engine.changes import RunChanges
from app.engine.executor import Executor, ExecutorOptions
from app.engine.prewarm import keep_aws_ready
from app.engine.retention import keep_pruning
from app.engine.runs import RunService
from app.errors import ConfigError, HubError
from app.loader import load_catalog
from app.notify.deliverer import Notifier, failed_count
from app.reports.files import pdf_bytes
from app.reports.gather import Reports
from app.reports.words import headline
from app.schedules.timer import Scheduler
from app.settings import Settings
from app.slack.accounts import AccountsChannel
from app.slack.alerts import AlertsChannel
from app.slack.answering import Answering
from app.slack.bolt import Slack, web_client
from app.slack.cards import Cards
from app.slack.deliverer import Deliverer, DeliveryOptions, deliver
from app.slack.desk import Desk
from app.slack.digests import Digests
from app.slack.directory import app_team, channel_members, channel_name, user_name
from app.slack.home import HomeTab
from app.slack.maintaining import Maintaining
from app.slack.modal import Launcher
from app.slack.outbox import Outgoing
from app.slack.reports import report_maker, report_poster
from app.slack.unfurls import Unfurls
from app.waiting import wait_any
from app.web import create_app
from app.web.metrics import HubMetrics
from app.web.names import Names
from app.web.people import People
from app.web.security import check_exposure
from app.web.server import (
    database_probe,
    executor_probe,
    serve_site,
    slack_probe,
    tell_systemd,
)
from app.web.session import Sessions
from app.web.signin import SlackSignIn
from checks.aws import AwsClients, AwsOptions
from checks.base import Check
from checks.registry import REGISTRY

log = logging.getLogger(__name__)


@dataclass
class SlackSide:
    """What exists only when Slack is configured."""

    slack: Slack
    deliverer: Deliverer
    cards: Cards
    home: HomeTab


@dataclass
class Hub:
    settings: Settings
    db: Database
    catalog: Catalog
    aws: AwsClients
    changes: RunChanges
    runs: RunService
    executor: Executor
    scheduler: Scheduler
    digests: Digests
    metrics: HubMetrics
    answers: Answers
    router: Router
    notifier: Notifier
    reports: Reports
    side: SlackSide | None = None
    reloaded: list[Callable[[], None]] = field(default_factory=list)
    """Called after a reload swapped new customers into ``catalog`` (:func:`reload`): what
    derives something from the catalog and keeps it (the scheduler's jobs, the Home tabs)."""
    accounts: Discovered | None = None
    """The YAML's customers beside the catalog, which also holds the accounts discovered from
    AWS Organizations (app.accounts); None only in a hub assembled by hand."""
    syncer: Syncer | None = None
    """Syncs organizations: the ``accounts`` task every ``HUB_ORG_SYNC_HOURS``."""

    def changed(self) -> None:
        """The catalog's customers were swapped (a reload, a sync's accounts): tell
        everything that derives from them."""
        for then in self.reloaded:
            then()

    @property
    def routes(self) -> bool:
        """Whether any customer sends its findings out (PagerDuty, webhooks)."""
        return any(c.routing is not None for c in self.catalog.customers.values())


@asynccontextmanager
async def build(
    settings: Settings,
    catalog: Catalog | None = None,
    *,
    db: Database | None = None,
    registry: Mapping[str, Check] = REGISTRY,
    executor: ExecutorOptions | None = None,
    delivery: DeliveryOptions | None = None,
    slack: bool = True,
    clock: Callable[[], datetime] | None = None,
    owner: str | None = None,
) -> AsyncIterator[Hub]:
    """Build the hub from settings; the database schema must be current (SQLite upgrades).
    The Slack side is built when both tokens are set, unless ``slack`` is False
    (``mhub serve --no-slack``): then nothing follows run changes for Slack either.

    Tests and benchmarks may pass the catalog, an open database (left open afterwards), the
    check kinds, executor and delivery timings, the scheduler's clock, and the executor's name
    (unique per process; by default host, process id and a random part)."""
    catalog = catalog if catalog is not None else load_catalog(settings.config_dir)
    own_db = db is None
    db = db if db is not None else Database(settings.database_url)
    aws = AwsClients(AwsOptions(threads=settings.aws_threads))
    notifier: Notifier | None = None
    try:
        await db.ensure_schema()
        discovered = Discovered(db, catalog)  # the accounts last discovered, from the start
        await discovered.refresh()
        metrics = HubMetrics()
        changes = RunChanges()
        runs = RunService(db, settings.max_attempts, changes)
        options = executor or ExecutorOptions.from_settings(settings)
        engine = Executor(db, catalog, registry, aws, options, owner=owner, changes=changes)
        timer = Scheduler(
            runs,
            catalog,
            grace=settings.misfire_grace,
            test_slot_s=settings.test_slot_s,
            clock=clock,
        )
        metrics.schedules = timer  # mhub_schedule_late_seconds
        answers = Answers(db, rules_from(catalog), clock or (lambda: datetime.now(UTC)))
        router = Router(db, lambda: catalog, clock or (lambda: datetime.now(UTC)))
        notifier = Notifier(
            db, lambda: catalog, os.environ, settings.pagerduty_events_url, engine.owner
        )
        router.channel = AlertsChannel(Outgoing(db))
        engine.router = router
        answers.route = router.route
        digests = Digests(db, runs, catalog, public_url=settings.public_url, answers=answers)
        reports = Reports(db, catalog, answers.clock)
        side = (
            _slack_side(
                settings, db, runs, catalog, changes, metrics, delivery, answers, digests, reports
            )
            if slack
            else None
        )
        router.on_queued = answers.queued = _both(notifier.poke, side)
        if side is not None:  # without Slack nobody would deliver a digest, or a report
            digests.on_put = side.deliverer.poke
            changes.subscribe(digests.changed)
            timer.post_report = report_poster(Outgoing(db), side.deliverer.poke)
        hub = Hub(
            settings, db, catalog, aws, changes, runs, engine, timer, digests, metrics, answers,
            router, notifier, reports, side,
        )  # fmt: skip
        hub.accounts = discovered
        hub.syncer = Syncer(db, AccountsChannel(Outgoing(db)))
        hub.reloaded.append(timer.reschedule)
        if side is not None:  # each watcher's customers may have changed
            hub.reloaded.append(side.home.findings_changed)
        yield hub
    finally:
        aws.close()
        if notifier is not None:
            await notifier.aclose()
        if own_db:
            await db.close()


def _both(poke: Callable[[], None], side: SlackSide | None) -> Callable[[], None]:
    """Wake the notifier, and the Slack deliverer when there is one (alerts channels)."""
    if side is None:
        return poke
    deliverer = side.deliverer

    def both() -> None:
        poke()
        deliverer.poke()

    return both


def _slack_side(
    settings: Settings,
    db: Database,
    runs: RunService,
    catalog: Catalog,
    changes: RunChanges,
    metrics: HubMetrics,
    delivery: DeliveryOptions | None,
    answers: Answers,
    digests: Digests,
    reports: Reports,
) -> SlackSide | None:
    """The Bolt app with its listeners, the outbox deliverer, cards and the Home tab."""
    if not settings.slack_enabled:
        return None
    assert settings.slack_app_token is not None
    client = web_client(settings)
    slack = Slack(client, settings.slack_app_token.get_secret_value(), on_ack=metrics.slack_acked)
    metrics.slack_connected = slack.connected
    outgoing = Outgoing(db)
    public_url = settings.public_url
    deliverer = Deliverer(
        db,
        client,
        delivery,
        outgoing=outgoing,
        on_failure=lambda kind, permanent: metrics.slack_delivery_failed(kind, permanent=permanent),
        public_url=public_url,
        make_report=report_maker(reports.build, pdf_bytes, headline, catalog, reports.clock),
    )
    cards = Cards(
        runs, outgoing, catalog, public_url=public_url, on_put=deliverer.poke, answers=answers
    )
    access = Access(db)
    desk = Desk(runs, access, cards, catalog, reports=reports)
    home = HomeTab(client, db, catalog, access, public_url=public_url, answers=answers)
    changes.subscribe(cards.changed)
    changes.subscribe(home.changed)

    async def answered(customer_id: str, fingerprints: Sequence[str]) -> None:
        """After an answer: the digests that show its findings, and the Home tabs."""
        for run_id in await digests.showing(customer_id, fingerprints):
            await digests.refresh(run_id)
        home.findings_changed()

    answering = Answering(db, answers, access, catalog, cards, answered)
    maintaining = Maintaining(db, access, catalog, answers.clock, started=home.findings_changed)
    unfurls = (
        Unfurls(client, db, runs, access, catalog, public_url, answers=answers, reports=reports)
        if public_url
        else None
    )
    services = handlers.Services(
        desk,
        home,
        Launcher(desk),
        slack.followups,
        answering,
        maintaining,
        public_url,
        unfurls=unfurls,
    )
    handlers.register(slack.app, services)
    return SlackSide(slack, deliverer, cards, home)


class BackgroundTaskDied(HubError):
    """A background loop of ``mhub serve`` stopped on its own; the process stops with it so
    that its supervisor (systemd, Kubernetes) restarts it."""


Tasks = dict[str, Callable[[], Coroutine[Any, Any, None]]]
"""Named background tasks: each runs until the shared ``stop`` event is set."""


def tasks_of(hub: Hub, stop: asyncio.Event, *, web: bool = True) -> Tasks:
    """The named background tasks of ``mhub serve``. Refuses here, before anything starts, to
    serve the web view beyond loopback without auth."""
    settings = hub.settings
    tasks: Tasks = {
        "executor": lambda: hub.executor.serve(stop),
        "sweeper": lambda: hub.executor.sweep_forever(stop),
        "aws": lambda: keep_aws_ready(hub.catalog, hub.aws, stop),
        "scheduler": lambda: hub.scheduler.serve(stop),
    }
    if hub.accounts is not None and hub.syncer is not None:  # docs/organizations.md
        accounts, syncer = hub.accounts, hub.syncer
        hours = settings.org_sync_hours
        tasks["accounts"] = lambda: keep_synced(syncer, accounts, hours, stop, hub.changed)
    days = settings.retention_days
    if days is not None:  # docs/operations.md#retention
        tasks["retention"] = lambda: keep_pruning(hub.db, days, stop)
    if hub.routes:
        tasks["notify"] = lambda: hub.notifier.serve(stop)
        tasks["routing"] = lambda: sweep_routes(hub.router, stop)
    else:  # until a reload brings a customer that routes its findings out
        routed = _routed(hub)
        tasks["notify"] = lambda: _once(routed, stop, lambda: hub.notifier.serve(stop))
        tasks["routing"] = lambda: _once(routed, stop, lambda: sweep_routes(hub.router, stop))
    side = hub.side
    if side is not None:

        def busy() -> bool:  # runs still finishing: their last changes still go out
            return bool(hub.executor.active)

        tasks["slack"] = lambda: side.slack.run(stop)
        tasks["delivery"] = lambda: deliver(side.deliverer, [side.cards, side.home], stop, busy)
        tasks["digests"] = lambda: hub.digests.serve(stop)
    else:
        log.info("digests: not sent without Slack; scheduled runs still run")
    bound = asyncio.Event() if web else None
    if settings.notify_socket:
        tasks["systemd"] = ready_for_systemd(hub, settings.notify_socket, stop, bound)
    if web:
        auth = settings.web_auth.get_secret_value() if settings.web_auth else None
        check_exposure(settings.web_host, settings.web_port, auth, sign_in=settings.sign_in)
        probes = {
            "database": database_probe(hub.db),
            "executor": executor_probe(lambda: hub.executor.last_loop_at),
        }
        if side is not None:
            probes["slack"] = slack_probe(side.slack.connected)
        notes = {"routing": routing_note(hub.db)} if hub.routes else {}
        site = create_app(
            db=hub.db,
            runs=hub.runs,
            catalog=hub.catalog,
            metrics=hub.metrics,
            auth=auth,
            public_url=settings.public_url,
            probes=probes,
            notes=notes,
            changes=hub.changes,
            answers=hub.answers,
            reports=hub.reports,
            sign_in=sign_in_of(settings, hub.catalog),
            names=names_of(settings) if side is not None else None,
        )
        tasks["web"] = lambda: serve_site(site, settings.web_host, settings.web_port, stop, bound)
    return tasks


def ready_for_systemd(
    hub: Hub, address: str, stop: asyncio.Event, bound: asyncio.Event | None
) -> Callable[[], Coroutine[Any, Any, None]]:
    """``Type=notify``: READY=1 once the database answers, the executor loops and the web view
    (when served) answers — as ``/readyz`` says, but not waiting for Slack, whose outage must
    not stop scheduled runs from starting; STOPPING=1 on the first SIGTERM."""
    probes = {
        "database": database_probe(hub.db),
        "executor": executor_probe(lambda: hub.executor.last_loop_at),
    }
    return lambda: tell_systemd(address, probes, stop, bound)


def names_of(settings: Settings) -> Names:
    """Slack names for the people and channels the web view shows (docs/web.md)."""
    client = web_client(settings)
    return Names(user_name(client), channel_name(client))


def sign_in_of(settings: Settings, catalog: Catalog) -> tuple[SlackSignIn, People] | None:
    """Sign in with Slack for the web view, when configured (docs/web.md)."""
    if not settings.sign_in:
        return None
    assert settings.web_slack_client_id and settings.web_slack_client_secret
    assert settings.public_url is not None
    client = web_client(settings)
    secret = settings.web_slack_client_secret.get_secret_value()
    flow = SlackSignIn(
        client_id=settings.web_slack_client_id,
        client_secret=secret,
        public_url=settings.public_url,
        api_url=settings.slack_api_url,
        team=app_team(client),
        sessions=Sessions(secret, secure=settings.public_url.startswith("https://")),
    )
    return flow, People(catalog, channel_members(client))


def _routed(hub: Hub) -> asyncio.Event:
    """Set once a customer routes its findings out (checked after every reload)."""
    routed = asyncio.Event()

    def check() -> None:
        if hub.routes:
            routed.set()

    hub.reloaded.append(check)
    return routed


async def _once(
    ready: asyncio.Event, stop: asyncio.Event, run: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """``run`` once ``ready`` is set; nothing if ``stop`` comes first."""
    await wait_any(ready, stop)
    if not stop.is_set():
        await run()


SWEEP_ROUTES_S = 30.0
"""How often snoozes that ended are looked for, to send their findings out."""


async def sweep_routes(router: Router, stop: asyncio.Event) -> None:
    """Send out the findings whose snooze ended (a run's end and an answer route the rest)."""
    while not stop.is_set():
        try:
            await router.sweep()
        except DB_TROUBLE as exc:
            log.warning("routing: could not look for snoozes that ended: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_ROUTES_S)


def routing_note(db: Database) -> Callable[[], Coroutine[Any, Any, str | None]]:
    """``/readyz``'s note on events PagerDuty or a webhook refused for good in the last day."""

    async def note() -> str | None:
        count = await failed_count(db, datetime.now(UTC) - timedelta(hours=24))
        if not count:
            return None
        many = "events" if count != 1 else "event"
        return (
            f"{count} PagerDuty or webhook {many} refused for good in the last 24 h; "
            "the runboard shows the latest and what to fix"
        )

    return note


async def serve(hub: Hub, *, web: bool = True) -> None:
    """Run the executor and sweeper (and, as they arrive, Slack and the web view) until
    SIGTERM/SIGINT.

    The first signal stops claiming at once and lets running runs finish for up to
    ``HUB_GRACE_SECONDS``; what is left goes back to the queue without using an attempt. A
    second signal cuts the grace short. A hub built without Slack and served with ``web=False``
    (``mhub serve --no-slack --no-web``) is a bare executor replica.
    """
    stop = asyncio.Event()
    if not hub.settings.slack_enabled:
        log.warning("Slack is off: SLACK_BOT_TOKEN and SLACK_APP_TOKEN are not both set")
    tasks = tasks_of(hub, stop, web=web)
    # What start-up allocated (config, models, clients) lives as long as the process: take it
    # out of the collector's sight so full collections stay short and Slack acks stay fast.
    gc.collect()
    gc.freeze()
    with _signals(stop, hub.executor.stop_now, hub.settings.grace_s, lambda: reload(hub)):
        log.info("serving as %s: %s", hub.executor.owner, ", ".join(tasks))
        await supervise(tasks, stop)
    log.info("stopped")


async def reload(hub: Hub) -> bool:
    """Load the configuration again, with the same loader and checks as start-up, and swap it
    in (SIGHUP, ``systemctl reload``). A configuration with problems is refused: one error
    lists them as ``file:line: message`` and the one loaded before keeps serving. Runs already
    queued or running keep their plan. systemd hears RELOADING=1 first and READY=1 after."""
    settings = hub.settings
    systemd.reloading(settings.notify_socket)
    try:
        # off the event loop: reading and validating many files must not delay Slack's acks
        fresh = await asyncio.to_thread(load_catalog, settings.config_dir)
    except ConfigError as exc:
        log.error("reload refused, still serving the configuration loaded before: %s", exc)
        systemd.notify(settings.notify_socket, "READY=1", "STATUS=reload refused; see the log")
        return False
    except Exception:
        log.exception("reload failed, still serving the configuration loaded before")
        systemd.notify(settings.notify_socket, "READY=1", "STATUS=reload failed; see the log")
        return False
    # the accounts last discovered from AWS Organizations are merged into the new YAML again
    changes = hub.accounts.rebase(fresh) if hub.accounts else hub.catalog.replace(fresh)
    hub.changed()
    log.info("reloaded the configuration from %s: %s", settings.config_dir, changes)
    serving = f"STATUS=serving {len(hub.catalog)} customer(s)"
    systemd.notify(settings.notify_socket, "READY=1", serving)
    return True


@contextlib.contextmanager
def _signals(
    stop: asyncio.Event,
    hurry: Callable[[], None],
    grace_s: float,
    reload: Callable[[], Coroutine[Any, Any, bool]],
) -> Iterator[None]:
    """First SIGTERM/SIGINT: ``stop``. Second: ``hurry``. SIGHUP: ``reload``, one at a time
    (never a stop, never a drain)."""
    loop = asyncio.get_running_loop()
    received = 0
    reloads: set[asyncio.Task[bool]] = set()
    one_at_a_time = asyncio.Lock()

    async def reload_once() -> bool:
        async with one_at_a_time:
            return await reload()

    def on_hangup() -> None:
        if stop.is_set():
            log.info("SIGHUP: stopping already; the configuration is not reloaded")
            return
        log.info("SIGHUP: reloading the configuration")
        task = loop.create_task(reload_once(), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

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
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for task in reloads:
            task.cancel()


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
