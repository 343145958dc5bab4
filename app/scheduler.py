"""Schedules: when each fires, and firing each slot exactly once across replicas.

**Slots.** A schedule's cron is read as wall-clock time in the customer's time zone. Each
matching wall-clock time is one *slot*, identified by its instant in UTC; the slot key
``schedule:<customer>:<name>:<fire time as UTC ISO, e.g. 2026-11-21T00:00:00Z>`` is the run's
idempotency key, UNIQUE in the database, so a slot becomes one run however many replicas tick.

**Daylight saving** (both by PEP 495's rule for ``fold=0``, which is the cron's wall-clock meaning):

- a wall time that does not exist (spring forward: 02:30 when clocks jump 02:00 → 03:00) fires
  once, shifted forward by the gap (at 03:30); if that instant is also a slot of its own (a cron
  that matches 03:30 too), the two are one slot;
- a wall time that happens twice (fall back: 01:30 when clocks go 02:00 → 01:00) fires once, at
  its first occurrence.

**Ticks and misfires.** Every replica runs an APScheduler 3.x ``AsyncIOScheduler`` with one job
per schedule whose trigger yields exactly these instants. A tick submits the slot; a tick that
comes later than the misfire grace (``HUB_MISFIRE_GRACE``, default 15 minutes) is logged as
missed instead. At start, each schedule's latest slot is caught up if it is within the grace
and no replica has fired it yet (the UNIQUE key makes that once); an older unfired one is logged
as missed. A database that refuses the submit is retried until the grace (or the next slot).

Tests and benchmarks may set ``HUB_TEST_SLOT_SECONDS``: every schedule then fires every N seconds
(at multiples of N since the epoch) instead of on its cron, with the same keys, grace and
digests. It only changes *when* slots are; ``serve`` warns loudly when it is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from croniter import croniter
from sqlalchemy import select

from app.catalog import Catalog
from app.config import Customer, Schedule
from app.errors import HubError, NotFound, UsageError
from app.executor import DB_TROUBLE
from app.models import Run, Source
from app.runs import RunService, Submit

if TYPE_CHECKING:
    from app.main import Hub

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(minutes=15)
_DAY = timedelta(days=1)
_SEARCH_LIMIT = 100_000
"""Cron matches looked at before giving up; a valid cron needs a handful (at most a few
thousand around a DST change for ``* * * * *``)."""
_RETRY_CAP_S = 30.0
MISSED_LOOKBACK = timedelta(days=1)
"""At start, an unfired slot older than the grace but younger than this is logged as missed."""


# -- slot computation (pure) -------------------------------------------------------------------


class Cadence(Protocol):
    """When a schedule fires: instants in UTC."""

    def after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``."""
        ...

    def at_or_before(self, moment: datetime) -> datetime:
        """The last fire time at or before ``moment``."""
        ...


@dataclass(frozen=True)
class CronCadence:
    """A 5-field cron read as wall-clock time in ``tz`` (see the module docstring for DST)."""

    cron: str
    tz: tzinfo

    def instant(self, wall: datetime) -> datetime:
        """A naive wall-clock time in ``tz`` as an instant: a time in a spring-forward gap is
        shifted forward by the gap, a fall-back time that happens twice is its first
        occurrence."""
        return wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)

    def _offsets(self, moment: datetime) -> list[timedelta]:
        return [
            (moment + shift).astimezone(self.tz).utcoffset() or timedelta(0)
            for shift in (-_DAY, timedelta(0), _DAY)
        ]

    def after(self, moment: datetime) -> datetime:
        moment = _utc(moment)
        # No wall time before this one can map to an instant after ``moment``.
        start = (moment + min(self._offsets(moment))).replace(tzinfo=None)
        matches = croniter(self.cron, start)
        for _ in range(_SEARCH_LIMIT):
            fire = self.instant(matches.get_next(datetime))
            if fire > moment:
                return fire
        raise RuntimeError(f'"{self.cron}" did not fire after {moment.isoformat()}')

    def at_or_before(self, moment: datetime) -> datetime:
        moment = _utc(moment)
        # No wall time after this one can map to an instant at or before ``moment``.
        end = (moment + max(self._offsets(moment))).replace(tzinfo=None, second=0, microsecond=0)
        matches = croniter(self.cron, end + timedelta(minutes=1))
        for _ in range(_SEARCH_LIMIT):
            fire = self.instant(matches.get_prev(datetime))
            if fire <= moment:
                return fire
        raise RuntimeError(f'"{self.cron}" did not fire before {moment.isoformat()}')


@dataclass(frozen=True)
class EverySeconds:
    """Every ``seconds`` since the epoch (``HUB_TEST_SLOT_SECONDS``; tests only)."""

    seconds: int

    def after(self, moment: datetime) -> datetime:
        stamp = _utc(moment).timestamp()
        return datetime.fromtimestamp((stamp // self.seconds + 1) * self.seconds, UTC)

    def at_or_before(self, moment: datetime) -> datetime:
        stamp = _utc(moment).timestamp()
        return datetime.fromtimestamp(stamp // self.seconds * self.seconds, UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime; pass an aware one such as datetime.now(UTC)")
    return moment.astimezone(UTC)


def fire_times(cadence: Cadence, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``after`` (UTC)."""
    found: list[datetime] = []
    moment = after
    for _ in range(count):
        moment = cadence.after(moment)
        found.append(moment)
    return found


def fires_between(cadence: Cadence, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end] (UTC)."""
    found: list[datetime] = []
    moment = cadence.after(start)
    while moment <= end:
        found.append(moment)
        moment = cadence.after(moment)
    return found


def next_fire(schedule: Schedule, customer: Customer, now: datetime) -> datetime:
    """When ``schedule`` fires next, in the customer's zone (what `/monitor schedules`, the web
    view and the App Home show: one function, so they all agree with the scheduler)."""
    return CronCadence(schedule.cron, customer.tz).after(now).astimezone(customer.tz)


@dataclass(frozen=True)
class Upcoming:
    customer: Customer
    schedule: Schedule
    at: datetime
    """Aware, in the customer's zone."""


def next_fire_times(catalog: Catalog, now: datetime) -> list[Upcoming]:
    """Every schedule with its next fire time in its customer's zone, soonest first."""
    found = [
        Upcoming(customer, schedule, next_fire(schedule, customer, now))
        for customer in catalog.customers.values()
        for schedule in customer.schedules
    ]
    return sorted(found, key=lambda u: (u.at, u.customer.id, u.schedule.name))


@dataclass(frozen=True)
class Slot:
    customer_id: str
    schedule: str
    at: datetime
    """The fire time (UTC)."""

    @property
    def key(self) -> str:
        """``schedule:<customer>:<name>:<fire time, UTC ISO>`` — the run's idempotency key."""
        return f"schedule:{self.customer_id}:{self.schedule}:{self.stamp}"

    @property
    def stamp(self) -> str:
        return self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- firing ------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Turns each slot of every schedule into one run (idempotent across replicas)."""

    def __init__(
        self,
        runs: RunService,
        catalog: Callable[[], Catalog],
        *,
        grace: timedelta = DEFAULT_GRACE,
        test_slot_s: int | None = None,
        clock: Callable[[], datetime] = _utcnow,
        retry_s: float = 1.0,
    ) -> None:
        self.runs = runs
        self.catalog = catalog
        self.grace = grace
        self.test_slot_s = test_slot_s
        self.clock = clock
        self.retry_s = retry_s

    @classmethod
    def for_hub(cls, hub: Hub) -> Scheduler:
        return cls(
            hub.runs,
            lambda: hub.catalog,
            grace=hub.settings.misfire_grace,
            test_slot_s=hub.settings.test_slot_s,
        )

    def cadence(self, customer: Customer, schedule: Schedule) -> Cadence:
        if self.test_slot_s:
            return EverySeconds(self.test_slot_s)
        return CronCadence(schedule.cron, customer.tz)

    def schedules(self) -> list[tuple[Customer, Schedule]]:
        return [(c, s) for c in self.catalog().customers.values() for s in c.schedules]

    def find(self, customer_id: str, name: str) -> tuple[Customer, Schedule]:
        customer = self.catalog().customer(customer_id)
        return customer, schedule_of(customer, name)

    def latest(self, customer: Customer, schedule: Schedule, now: datetime) -> Slot:
        """The schedule's last slot at or before ``now``."""
        at = self.cadence(customer, schedule).at_or_before(now)
        return Slot(customer.id, schedule.name, at)

    async def fire(self, slot: Slot) -> tuple[Run, bool]:
        """Submit the slot's run; (run, False) when some replica already did."""
        customer, schedule = self.find(slot.customer_id, slot.schedule)
        plan = self.catalog().plan(customer.id, schedule.checks)
        run, created = await self.runs.submit(
            Submit(
                plan=plan,
                requested_by=f"schedule:{schedule.name}",
                source=Source.SCHEDULE,
                channel_id=schedule.channel or customer.slack.channel,
                idempotency_key=slot.key,
                extra={"schedule": schedule.name, "slot": slot.stamp},
            )
        )
        if created:
            log.info("schedule %s/%s: slot %s is run #%s", *_names(slot), slot.stamp, run.id)
        else:
            log.debug("schedule %s/%s: slot %s was fired already", *_names(slot), slot.stamp)
        return run, created

    async def tick(self, customer_id: str, name: str) -> Run | None:
        """Fire the slot due now (an APScheduler job); a late tick beyond the grace is a miss."""
        try:
            customer, schedule = self.find(customer_id, name)
        except HubError as exc:
            log.error("schedule %s/%s: %s", customer_id, name, exc)
            return None
        now = self.clock()
        slot = self.latest(customer, schedule, now)
        if now - slot.at > self.grace:
            self._missed(slot, now, "the tick came too late")
            return None
        following = self.cadence(customer, schedule).after(slot.at)
        return await self._fire_until(slot, min(slot.at + self.grace, following))

    async def _fire_until(self, slot: Slot, deadline: datetime) -> Run | None:
        delay = self.retry_s
        while True:
            try:
                run, _ = await self.fire(slot)
                return run
            except DB_TROUBLE as exc:
                if self.clock() + timedelta(seconds=delay) > deadline:
                    self._missed(slot, self.clock(), f"the database kept failing ({exc})")
                    return None
                log.warning(
                    "schedule %s/%s: cannot submit slot %s (%s); again in %.0f s",
                    *_names(slot),
                    slot.stamp,
                    exc,
                    delay,
                )
            except HubError as exc:  # the config changed under the schedule
                log.error("schedule %s/%s: slot %s not fired: %s", *_names(slot), slot.stamp, exc)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_CAP_S)

    async def catch_up(self) -> list[Run]:
        """At start: fire each schedule's latest slot if it is within the grace (once, however
        many replicas start); log it as missed if it is older and nobody fired it."""
        now = self.clock()
        fired: list[Run] = []
        for customer, schedule in self.schedules():
            slot = self.latest(customer, schedule, now)
            if now - slot.at <= self.grace:
                run = await self._fire_until(slot, slot.at + self.grace)
                if run is not None:
                    fired.append(run)
            elif now - slot.at <= MISSED_LOOKBACK and not await self._fired(slot):
                self._missed(slot, now, "no replica was running within the misfire grace")
        return fired

    async def _fired(self, slot: Slot) -> bool:
        try:
            async with self.runs.db.read() as session:
                found = await session.execute(
                    select(Run.id).where(Run.idempotency_key == slot.key).limit(1)
                )
                return found.first() is not None
        except DB_TROUBLE:
            return True  # cannot tell; say nothing rather than something wrong

    def _missed(self, slot: Slot, now: datetime, why: str) -> None:
        customer = self.catalog().customers.get(slot.customer_id)
        local = slot.at.astimezone(customer.tz) if customer else slot.at
        late = _minutes(now - slot.at)
        log.warning(
            "schedule %s/%s missed its %s slot (%s, %s late; the misfire grace is %s). "
            "`mhub digest send %s %s` runs it now.",
            *_names(slot),
            local.strftime("%Y-%m-%d %H:%M %Z"),
            why,
            late,
            _minutes(self.grace),
            *_names(slot),
        )

    # -- the tick source ------------------------------------------------------------------

    def build(self) -> AsyncIOScheduler:
        """An APScheduler with one job per schedule, firing at exactly its slots."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        grace_s = max(1, int(self.grace.total_seconds()))
        for customer, schedule in self.schedules():
            scheduler.add_job(
                self.tick,
                trigger=SlotTrigger(self.cadence(customer, schedule)),
                args=[customer.id, schedule.name],
                id=f"{customer.id}/{schedule.name}",
                name=f"schedule {customer.id}/{schedule.name}",
                misfire_grace_time=grace_s,
                coalesce=True,
                max_instances=1,
            )
        scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        return scheduler

    def _on_missed(self, event: JobExecutionEvent) -> None:
        customer_id, _, name = str(event.job_id).partition("/")
        at = event.scheduled_run_time
        self._missed(Slot(customer_id, name, at), self.clock(), "the tick came too late")

    async def serve(self, stop: asyncio.Event) -> None:
        """Tick until ``stop``: catch up at start, then fire every slot as it comes."""
        if self.test_slot_s:
            log.warning(
                "HUB_TEST_SLOT_SECONDS=%s: every schedule fires every %s s instead of on its "
                "cron — a test setting; unset it in production",
                self.test_slot_s,
                self.test_slot_s,
            )
        quiet = logging.getLogger("apscheduler")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)  # "Running job …" twice per slot is noise
        scheduler = self.build()
        scheduler.start()
        count = len(scheduler.get_jobs())
        log.info("scheduler: %d schedule(s), misfire grace %s", count, _minutes(self.grace))
        try:
            try:
                await self.catch_up()
            except HubError as exc:
                log.error("scheduler: catching up failed: %s", exc)
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # let the shutdown (queued on the loop) run


class SlotTrigger(BaseTrigger):
    """An APScheduler trigger that fires at a :class:`Cadence`'s instants (so APScheduler and
    the slot keys agree on DST, which APScheduler's own CronTrigger reads differently)."""

    def __init__(self, cadence: Cadence) -> None:
        self.cadence = cadence

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        return self.cadence.after(previous_fire_time or now)

    def __str__(self) -> str:
        return f"slots[{self.cadence}]"


def schedule_of(customer: Customer, name: str | None) -> Schedule:
    """The customer's schedule called ``name`` (default: its first)."""
    if not customer.schedules:
        raise UsageError(
            f"{customer.name} has no schedules; add one under `schedules:` in its config "
            "(docs/schedules.md)."
        )
    if name is None:
        return customer.schedules[0]
    for schedule in customer.schedules:
        if schedule.name == name.strip().lower():
            return schedule
    names = ", ".join(s.name for s in customer.schedules)
    raise NotFound(f'{customer.name} has no schedule "{name}"; its schedules: {names}.')


def _names(slot: Slot) -> tuple[str, str]:
    return slot.customer_id, slot.schedule


def _minutes(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


Tasks = dict[str, Callable[[], Coroutine[Any, Any, None]]]


def schedule_tasks(hub: Hub, stop: asyncio.Event) -> Tasks:
    """The background tasks of ``mhub serve`` for schedules: the ticking scheduler (every
    replica), and the digest sender when Slack is configured."""
    from app.digests import Digests  # digests need blocks; the scheduler alone does not

    scheduler = Scheduler.for_hub(hub)
    tasks: Tasks = {"scheduler": lambda: scheduler.serve(stop)}
    digests = Digests.for_hub(hub)
    if digests is None:
        log.info("digests: not sent without Slack tokens; scheduled runs still run")
        return tasks
    hub.executor.on_change(digests.changed)
    hub.runs.on_change(digests.changed)
    tasks["digests"] = lambda: digests.serve(stop)
    return tasks
