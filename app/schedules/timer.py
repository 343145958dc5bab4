"""The timer: firing each schedule's slots exactly once across replicas.

Every replica runs an APScheduler 3.x ``AsyncIOScheduler`` with one job per schedule whose
trigger yields exactly the slots of :mod:`app.schedules.slots`. A tick submits the slot's run
under its slot key (UNIQUE in the database, so a slot becomes one run however many replicas
tick); a tick that comes later than the misfire grace (``HUB_MISFIRE_GRACE``, default 15
minutes) is logged as missed instead. At start, each schedule's latest slot is caught up if it
is within the grace and no replica has fired it yet (the UNIQUE key makes that once); an older
unfired one is logged as missed. A database that refuses the submit is retried until the grace
(or the next slot).

A **report** schedule's slot submits no run: it calls ``post_report`` (given by the composition
root; it queues the month's report as one outbox row under ``report:<customer>:<name>:<YYYY-MM>``,
UNIQUE, see :class:`~app.schedules.slots.ReportDue`), with the same grace, retries, catch-up
and misses; whether a slot was fired is read from that row. Without ``post_report`` (no Slack
side) a report slot is logged and skipped.

A reload (SIGHUP) calls :meth:`Scheduler.reschedule`: a job for each schedule added, none for
each removed, a new trigger where a cron or a time zone changed. A schedule added by a reload
starts at its next slot (only start-up catches up).

Tests and benchmarks may set ``HUB_TEST_SLOT_SECONDS``: every schedule then fires every N seconds
(at multiples of N since the epoch) instead of on its cron, with the same keys, grace and
digests. It only changes *when* slots are; ``serve`` warns loudly when it is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import select

from app.catalog import Catalog
from app.config import Customer, Schedule
from app.db import DB_TROUBLE
from app.engine.runs import RunService, Submit
from app.errors import HubError
from app.models import Outbox, Run, Source
from app.schedules.slots import (
    Cadence,
    CronCadence,
    EverySeconds,
    ReportDue,
    Slot,
    report_due,
    schedule_of,
)
from blocks.marks import duration

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(minutes=15)
_RETRY_CAP_S = 30.0
MISSED_LOOKBACK = timedelta(days=1)
"""At start, an unfired slot older than the grace but younger than this is logged as missed."""


PostReport = Callable[[ReportDue], Awaitable[bool]]
"""Queue a report slot's month in the outbox, once per key; False when it was queued already
(by another replica, or an earlier slot of the same month)."""


@dataclass(frozen=True)
class Queued:
    """A report slot, fired: its month's report is in the outbox (queued by this call when
    ``created``, else by another replica or an earlier slot)."""

    due: ReportDue
    created: bool


Fired = Run | Queued


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Turns each slot of every schedule into one run (idempotent across replicas)."""

    def __init__(
        self,
        runs: RunService,
        catalog: Catalog,
        *,
        grace: timedelta = DEFAULT_GRACE,
        test_slot_s: int | None = None,
        clock: Callable[[], datetime] | None = None,
        retry_s: float = 1.0,
        post_report: PostReport | None = None,
    ) -> None:
        self.runs = runs
        self.post_report = post_report
        self.catalog = catalog
        self.grace = grace
        self.test_slot_s = test_slot_s
        self.clock = clock or _utcnow
        self.retry_s = retry_s
        self._ticking: AsyncIOScheduler | None = None
        """The running APScheduler while :meth:`serve` runs."""

    def cadence(self, customer: Customer, schedule: Schedule) -> Cadence:
        if self.test_slot_s:
            return EverySeconds(self.test_slot_s)
        return CronCadence(schedule.cron, customer.tz)

    def schedules(self) -> list[tuple[Customer, Schedule]]:
        return [(c, s) for c in self.catalog.customers.values() for s in c.schedules]

    def find(self, customer_id: str, name: str) -> tuple[Customer, Schedule]:
        customer = self.catalog.customer(customer_id)
        return customer, schedule_of(customer, name)

    def latest(self, customer: Customer, schedule: Schedule, now: datetime) -> Slot:
        """The schedule's last slot at or before ``now``."""
        at = self.cadence(customer, schedule).at_or_before(now)
        return Slot(customer.id, schedule.name, at)

    async def fire(self, slot: Slot) -> tuple[Run, bool]:
        """Submit the slot's run; (run, False) when some replica already did."""
        customer, schedule = self.find(slot.customer_id, slot.schedule)
        plan = self.catalog.plan(customer.id, schedule.checks)
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

    async def queue_report(self, slot: Slot) -> Queued | None:
        """Queue the report of a report schedule's slot; None when this replica cannot (no
        Slack side)."""
        customer, schedule = self.find(slot.customer_id, slot.schedule)
        due = report_due(customer, schedule, slot)
        if self.post_report is None:
            log.info(
                "schedule %s/%s: slot %s not fired here: a replica with Slack queues reports",
                *_names(slot),
                slot.stamp,
            )
            return None
        created = await self.post_report(due)
        if created:
            log.info("schedule %s/%s: slot %s queues the %s report", *_names(slot), slot.stamp,
                     due.month)  # fmt: skip
        else:
            log.debug("schedule %s/%s: the %s report was queued already", *_names(slot), due.month)
        return Queued(due, created)

    async def _fire(self, slot: Slot) -> Fired | None:
        _, schedule = self.find(slot.customer_id, slot.schedule)
        if schedule.kind == "report":
            return await self.queue_report(slot)
        run, _ = await self.fire(slot)
        return run

    async def tick(self, customer_id: str, name: str) -> Fired | None:
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

    async def _fire_until(self, slot: Slot, deadline: datetime) -> Fired | None:
        delay = self.retry_s
        while True:
            try:
                return await self._fire(slot)
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

    async def catch_up(self) -> list[Fired]:
        """At start: fire each schedule's latest slot if it is within the grace (once, however
        many replicas start); log it as missed if it is older and nobody fired it."""
        now = self.clock()
        fired: list[Fired] = []
        for customer, schedule in self.schedules():
            slot = self.latest(customer, schedule, now)
            if now - slot.at <= self.grace:
                done = await self._fire_until(slot, slot.at + self.grace)
                if done is not None:
                    fired.append(done)
            elif now - slot.at <= MISSED_LOOKBACK and not await self._fired(
                customer, schedule, slot
            ):
                self._missed(slot, now, "no replica was running within the misfire grace")
        return fired

    async def _fired(self, customer: Customer, schedule: Schedule, slot: Slot) -> bool:
        """Whether some replica fired ``slot``: its run exists, or for a report schedule its
        month's outbox row."""
        if schedule.kind == "report":
            query = select(Outbox.id).where(
                Outbox.dedupe_key == report_due(customer, schedule, slot).key
            )
        else:
            query = select(Run.id).where(Run.idempotency_key == slot.key)
        try:
            async with self.runs.db.read() as session:
                return (await session.execute(query.limit(1))).first() is not None
        except DB_TROUBLE:
            return True  # cannot tell; say nothing rather than something wrong

    def _missed(self, slot: Slot, now: datetime, why: str) -> None:
        customer = self.catalog.customers.get(slot.customer_id)
        local = slot.at.astimezone(customer.tz) if customer else slot.at
        late = duration((now - slot.at).total_seconds())
        log.warning(
            "schedule %s/%s missed its %s slot (%s, %s late; the misfire grace is %s). %s",
            *_names(slot),
            local.strftime("%Y-%m-%d %H:%M %Z"),
            why,
            late,
            duration(self.grace.total_seconds()),
            self._remedy(slot),
        )

    def _remedy(self, slot: Slot) -> str:
        """What an operator runs instead of a missed slot."""
        customer, name = _names(slot)
        try:
            found, schedule = self.find(customer, name)
        except HubError:
            schedule = None
        if schedule is None or schedule.kind != "report":
            return f"`mhub digest send {customer} {name}` runs it now."
        month = report_due(found, schedule, slot).month
        return (
            f"`mhub report {customer} --month {month} --pdf {customer}-{month}.pdf` makes "
            "its report now, to post by hand."
        )

    # -- the tick source ------------------------------------------------------------------

    def build(self) -> AsyncIOScheduler:
        """An APScheduler with one job per schedule, firing at exactly its slots."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        for customer, schedule in self.schedules():
            self._add(scheduler, customer, schedule)
        scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        return scheduler

    def _add(self, scheduler: AsyncIOScheduler, customer: Customer, schedule: Schedule) -> None:
        scheduler.add_job(
            self.tick,
            trigger=SlotTrigger(self.cadence(customer, schedule)),
            args=[customer.id, schedule.name],
            id=f"{customer.id}/{schedule.name}",
            name=f"schedule {customer.id}/{schedule.name}",
            misfire_grace_time=max(1, int(self.grace.total_seconds())),
            coalesce=True,
            max_instances=1,
        )

    def reschedule(self) -> None:
        """Bring the running jobs in line with the catalog (after a reload): add a job for
        each new schedule, remove those of schedules gone, give a job whose cron or time zone
        changed its new slots (from now). Nothing when the timer is not running."""
        scheduler = self._ticking
        if scheduler is None:
            return
        wanted = {f"{c.id}/{s.name}": (c, s) for c, s in self.schedules()}
        for job in scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for job_id, (customer, schedule) in wanted.items():
            cadence = self.cadence(customer, schedule)
            job = scheduler.get_job(job_id)
            if job is None:
                self._add(scheduler, customer, schedule)
            elif job.trigger.cadence != cadence:
                job.reschedule(SlotTrigger(cadence))
        log.info("scheduler: %d schedule(s) after the reload", len(scheduler.get_jobs()))

    def jobs(self) -> dict[str, datetime | None]:
        """The running jobs (``customer/schedule``) and when each next fires."""
        scheduler = self._ticking
        if scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in scheduler.get_jobs()}

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
        self._ticking = scheduler
        count = len(scheduler.get_jobs())
        log.info(
            "scheduler: %d schedule(s), misfire grace %s",
            count,
            duration(self.grace.total_seconds()),
        )
        try:
            try:
                await self.catch_up()
            except HubError as exc:
                log.error("scheduler: catching up failed: %s", exc)
            await stop.wait()
        finally:
            self._ticking = None
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


def _names(slot: Slot) -> tuple[str, str]:
    return slot.customer_id, slot.schedule
