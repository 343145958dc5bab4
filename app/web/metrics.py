"""Prometheus metrics on a private registry, served at ``/metrics``.

:class:`HubMetrics` is built once by the composition root and passed to whoever records
something: the web view (run and check durations, through :class:`RunObserver`), and the Slack
side (delivery failures, ack latency, connection state). Nothing here is global, so tests and
several hubs in one process never share a registry.

Two kinds of figures:

- **from the database**, read at scrape time: runs by status, by outcome, queue depth, the age
  of the oldest queued run, blind spots per customer and the age of each account × check's
  last successful look (only the pairs the catalog still configures, :mod:`app.engine.coverage`).
  They are the same on every replica (aggregate with ``max``).
- **from this process**, recorded as things happen: run and check durations of the runs this
  process executed, Slack delivery failures, ack latency. Sum them across replicas.

Also the process's own: ``mhub_build_info{version,python}`` (always 1), the standard
``process_*`` (CPU, resident memory, open files, start time; Linux), ``python_info`` and
``python_gc_*`` series, and the Slack connection: ``mhub_slack_enabled`` (0 or 1) and, only
where Slack is on, ``mhub_slack_connected`` — so "Slack is down" cannot fire where it is off.
With the scheduler given (``schedules``), ``mhub_schedule_late_seconds`` says how long each
schedule's latest slot has been due without being fired (:mod:`app.web.lateness`).
"""

from __future__ import annotations

import logging
import platform
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from app.catalog import Catalog
from app.db import Database
from app.engine import coverage
from app.engine.changes import Follower
from app.models import RunStatus
from app.schedules.timer import Scheduler
from app.version import current
from app.web import lateness, queries

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
RUN_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
CHECK_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
ACK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5)


class HubMetrics:
    """Every metric the hub exports; one instance per process, passed by injection.

    For the Slack side::

        metrics.slack_delivery_failed("update", permanent=False)   # a failed chat.update
        metrics.slack_acked(0.12)                                   # seconds to ack()

    ``slack_connected`` (set by whoever runs Slack) is asked at scrape time for the
    ``mhub_slack_connected`` gauge; ``schedules`` (the scheduler, set by the composition root)
    for ``mhub_schedule_late_seconds``.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, database_ttl_s: float = 5.0
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.database_ttl_s = database_ttl_s
        self._read_at: float | None = None
        self.slack = SlackState()
        self.schedules: Scheduler | None = None
        r = self.registry
        # The process's own figures, as every Prometheus client exports them.
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(standard)
        Info(
            "mhub_build", "The running version of Monitoring Hub, and of Python.", registry=r
        ).info({"version": current(), "python": platform.python_version()})
        r.register(self.slack)
        self.runs = Gauge("mhub_runs", "Runs in the database by status.", ["status"], registry=r)
        self.outcomes = Gauge(
            "mhub_run_outcomes",
            "Runs in the database by outcome (the worst result severity), once known.",
            ["outcome"],
            registry=r,
        )
        self.queue_depth = Gauge("mhub_queue_depth", "Runs waiting to be claimed.", registry=r)
        self.oldest_queued = Gauge(
            "mhub_oldest_queued_seconds",
            "Age of the oldest queued run; 0 when the queue is empty.",
            registry=r,
        )
        self.notices = Gauge(
            "mhub_notices",
            "Events for PagerDuty and webhooks not sent: pending (retrying) or failed for good.",
            ["status", "destination"],
            registry=r,
        )
        self.oldest_notice = Gauge(
            "mhub_oldest_pending_notice_seconds",
            "Age of the oldest event still waiting to reach PagerDuty or a webhook; 0 when none.",
            registry=r,
        )
        self.blind_spots = Gauge(
            "mhub_blind_spots",
            "Blind spots per configured customer: (account, check) pairs that could not look "
            "for 2 looks in a row or 24 h.",
            ["customer"],
            registry=r,
        )
        self.look_age = Gauge(
            "mhub_last_successful_look_age_seconds",
            "Age of the last successful look of each configured (account, check) that has had "
            "one (a pair that never looked successfully has no sample).",
            ["customer", "account", "check"],
            registry=r,
        )
        self.run_duration = Histogram(
            "mhub_run_duration_seconds",
            "Time from claim to finish of the runs this process executed, by source.",
            ["source", "status"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.check_duration = Histogram(
            "mhub_check_duration_seconds",
            "Time one account × check took in the runs this process executed, by check kind.",
            ["check", "severity"],
            buckets=CHECK_BUCKETS,
            registry=r,
        )
        self.slack_failures = Counter(
            "mhub_slack_delivery_failures",
            "Slack deliveries (post, update, publish…) that failed, by kind.",
            ["kind", "permanent"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "mhub_slack_ack_seconds",
            "Time from receiving a Slack envelope to acknowledging it (Slack allows 3 s).",
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.schedule_late = Gauge(
            "mhub_schedule_late_seconds",
            "Seconds since each schedule's latest slot was due while no replica has fired it, "
            "0 once fired (and while the slot before was not fired either: a new schedule).",
            ["customer", "schedule"],
            registry=r,
        )
        self.scrape_errors = Counter(
            "mhub_metrics_database_errors",
            "Scrapes whose database figures could not be read (the figures are then stale).",
            registry=r,
        )

    # -- for the Slack side ---------------------------------------------------------------

    @property
    def slack_connected(self) -> Callable[[], Awaitable[bool]] | None:
        """Asked at scrape time whether Socket Mode is up; None (the default) when Slack is
        off."""
        return self.slack.ask

    @slack_connected.setter
    def slack_connected(self, ask: Callable[[], Awaitable[bool]] | None) -> None:
        self.slack.ask = ask

    def slack_delivery_failed(self, kind: str, *, permanent: bool) -> None:
        self.slack_failures.labels(kind=kind, permanent=str(permanent).lower()).inc()

    def slack_acked(self, seconds: float) -> None:
        self.ack_latency.observe(max(0.0, seconds))

    # -- recorded from runs ---------------------------------------------------------------

    def run_finished(self, source: str, status: str, seconds: float) -> None:
        self.run_duration.labels(source=source, status=status).observe(max(0.0, seconds))

    def check_finished(self, check: str, severity: str, seconds: float) -> None:
        self.check_duration.labels(check=check, severity=severity).observe(max(0.0, seconds))

    # -- exposition -----------------------------------------------------------------------

    def set_database_figures(
        self, figures: queries.Figures, now: datetime, catalog: Catalog | None = None
    ) -> None:
        for status in RunStatus:
            self.runs.labels(status=status.value).set(figures.by_status.get(status, 0))
        self.outcomes.clear()
        for outcome, count in figures.by_outcome.items():
            self.outcomes.labels(outcome=outcome).set(count)
        self.queue_depth.set(figures.queued)
        for state in ("pending", "failed"):
            for destination in ("pagerduty", "webhook"):
                count = figures.notices.get((state, destination), 0)
                self.notices.labels(status=state, destination=destination).set(count)
        waiting = figures.oldest_notice_at
        self.oldest_notice.set(max(0.0, (now - waiting).total_seconds()) if waiting else 0.0)
        oldest = figures.oldest_queued_at
        self.oldest_queued.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        if catalog is not None:
            self._set_looks(figures.looks, catalog, now)

    def _set_looks(self, looks: Sequence[queries.Look], catalog: Catalog, now: datetime) -> None:
        """Blind spots per customer (0 included) and each pair's last successful look, for the
        pairs the catalog still configures: a pair taken out of the YAML leaves both."""
        self.blind_spots.clear()
        self.look_age.clear()
        counts = dict.fromkeys(catalog.customers, 0)
        for look in coverage.configured(catalog, looks):
            counts[look.customer] += look.blind
            if look.last_ok_at is not None:
                age = max(0.0, (now - look.last_ok_at).total_seconds())
                labels = {"customer": look.customer, "account": look.account, "check": look.check}
                self.look_age.labels(**labels).set(age)
        for customer, count in counts.items():
            self.blind_spots.labels(customer=customer).set(count)

    async def render(self, db: Database, now: datetime, catalog: Catalog | None = None) -> bytes:
        """The text exposition. The database figures are read again when older than
        ``database_ttl_s`` (counting runs is a scan of an index; several scrapers share it);
        with ``catalog``, its customers' blind spots and looks too."""
        fresh = self._read_at is not None and time.monotonic() - self._read_at < self.database_ttl_s
        if not fresh:
            try:
                customers = list(catalog.customers) if catalog is not None else []
                figures = await queries.figures(db, customers, now)
                self.set_database_figures(figures, now, catalog)
                await self._set_lateness(db, now)
                self._read_at = time.monotonic()
            except Exception:
                log.exception("metrics: could not read the database figures")
                self.scrape_errors.inc()
        await self.slack.read()
        return generate_latest(self.registry)

    async def _set_lateness(self, db: Database, now: datetime) -> None:
        self.schedule_late.clear()
        if self.schedules is None:
            return
        for (customer, schedule), seconds in (await lateness.late(db, self.schedules, now)).items():
            self.schedule_late.labels(customer=customer, schedule=schedule).set(seconds)


class SlackState(Collector):
    """``mhub_slack_enabled`` always; ``mhub_slack_connected`` only once Slack's state is
    known (Slack on), so an alert on it never fires where Slack is off."""

    def __init__(self) -> None:
        self.ask: Callable[[], Awaitable[bool]] | None = None
        self.connected = False

    async def read(self) -> None:
        if self.ask is not None:
            self.connected = await self.ask()

    def describe(self) -> list[Metric]:
        return [self._enabled(), self._connected()]

    def collect(self) -> Iterator[Metric]:
        yield self._enabled()
        if self.ask is not None:
            yield self._connected()

    def _enabled(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "mhub_slack_enabled",
            "1 when this process runs the Slack side (both tokens set, not --no-slack).",
            value=1 if self.ask is not None else 0,
        )

    def _connected(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "mhub_slack_connected",
            "1 while the Socket Mode connection is up (absent when Slack is off).",
            value=1 if self.connected else 0,
        )


class RunObserver(Follower):
    """Records run and check durations when a run this process executed reaches its end.

    Follows run changes (:class:`~app.engine.changes.Follower`): runs this process executed
    end here, so each finished run is looked up once, from the follower's task.
    """

    name = "metrics"

    def __init__(self, db: Database, metrics: HubMetrics, remember: int = 2048) -> None:
        super().__init__()
        self.db = db
        self.metrics = metrics
        self._seen: deque[int] = deque(maxlen=remember)

    async def flush(self, run_ids: set[int]) -> None:
        for run_id in sorted(run_ids):
            if run_id not in self._seen:
                await self._look(run_id)

    async def _look(self, run_id: int) -> None:
        try:
            found = await queries.finished_run(self.db, run_id)
        except Exception:
            log.exception("metrics: could not read run #%s", run_id)
            return
        if found is None:
            return
        self._seen.append(run_id)
        run, results = found
        if run.started_at and run.finished_at:
            self.metrics.run_finished(
                run.source, run.status, (run.finished_at - run.started_at).total_seconds()
            )
        for check, severity, seconds in results:
            self.metrics.check_finished(check, severity, seconds)
