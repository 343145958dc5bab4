"""Digests: when a scheduled run ends, its digest goes to the schedule's channel, once.

A run carries a digest when its params name a schedule (``params["schedule"]``: set by the
scheduler, and by ``mhub digest send``). Such a run gets no result card (cards are for runs
started from Slack): its one message is the digest.

**Exactly once.** The digest is an outbox row with the dedupe key ``digest:<run id>``, UNIQUE in
the database; the deliverer (app.delivery) posts each row once. The row is written by whichever
replica sees the run end — the executor's and the run service's change listeners mark the run,
and the ``digests`` task renders and enqueues it — and, in case that replica died in between,
by a sweep every ``sweep_s`` over scheduled runs that ended in the last ``recent`` (12 h).
Whoever inserts second gets the UNIQUE violation and does nothing.

**What changed** compares with the previous *completed* run of the same customer and schedule
(see :mod:`blocks.digest` for the rules).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app.catalog import Catalog
from app.db import Database
from app.delivery import Outgoing, Status
from app.executor import DB_TROUBLE
from app.models import TERMINAL_STATUSES, Outbox, Run, RunStatus, Source
from app.runs import RunService, Submit
from app.scheduler import schedule_of
from app.waiting import wait_any
from blocks.card import web_link
from blocks.digest import Previous, digest_message, digest_text, fired_at

if TYPE_CHECKING:
    from app.main import Hub

log = logging.getLogger(__name__)

DIGEST_KIND = "digest"
"""``outbox.kind`` of a digest: posted once with chat.postMessage, never updated."""
RECENT = timedelta(hours=12)


def digest_key(run_id: int) -> str:
    return f"digest:{run_id}"


def wants_digest(status: str, params: dict[str, Any] | None) -> bool:
    return status in TERMINAL_STATUSES and bool((params or {}).get("schedule"))


@dataclass(frozen=True)
class Rendered:
    run: Run
    message: dict[str, Any]
    text: str


class Digests:
    def __init__(
        self,
        db: Database,
        runs: RunService,
        catalog: Callable[[], Catalog],
        *,
        public_url: str | None = None,
        on_put: Callable[[], None] | None = None,
        sweep_s: float = 30.0,
        recent: timedelta = RECENT,
    ) -> None:
        self.db = db
        self.outgoing = Outgoing(db)
        self.runs = runs
        self.catalog = catalog
        self.public_url = public_url
        self.on_put = on_put
        self.sweep_s = sweep_s
        self.recent = recent
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()

    @classmethod
    def for_hub(cls, hub: Hub) -> Digests | None:
        """The hub's digest sender; None when Slack is not configured (nobody would deliver)."""
        if hub.slack is None:
            return None
        return cls(
            hub.db,
            hub.runs,
            lambda: hub.catalog,
            public_url=hub.settings.public_url,
            on_put=hub.slack.deliverer.poke,
        )

    # -- noticing runs that ended ---------------------------------------------------------

    def changed(self, run_id: int) -> None:
        """A run changed (a listener for the executor and the run service)."""
        self._dirty.add(run_id)
        self._wake.set()

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = 0.0
        while not stop.is_set():
            if loop.time() >= next_sweep:
                await self._safely(self.sweep)
                next_sweep = loop.time() + self.sweep_s
            await self._safely(self.flush)
            self._wake.clear()
            if self._dirty:
                continue
            await wait_any(self._wake, stop, within_s=next_sweep - loop.time())
        await self._safely(self.flush)

    async def _safely(self, step: Callable[[], Any]) -> None:
        try:
            await step()
        except DB_TROUBLE as exc:
            log.warning("digests: the database is unavailable (%s); the sweep retries", exc)
            await asyncio.sleep(1.0)

    async def flush(self) -> int:
        """Enqueue the digests of the marked runs that ended; returns how many were new."""
        queued = 0
        while self._dirty:
            batch, self._dirty = self._dirty, set()
            async with self.db.read() as session:
                rows = await session.execute(
                    select(Run.id, Run.status, Run.params).where(Run.id.in_(sorted(batch)))
                )
                ended = [row.id for row in rows if wants_digest(row.status, row.params)]
            for run_id in ended:
                queued += await self._enqueue_one(run_id)
        return queued

    async def sweep(self) -> int:
        """Enqueue the digests of scheduled runs that ended recently and have none."""
        since = datetime.now(UTC) - self.recent
        async with self.db.read() as session:
            ended = (
                await session.execute(
                    select(Run.id).where(
                        Run.source == Source.SCHEDULE,
                        Run.status.in_(list(TERMINAL_STATUSES)),
                        Run.created_at >= since - timedelta(hours=1),
                        Run.finished_at >= since,
                    )
                )
            ).scalars()
            keys = {digest_key(run_id): run_id for run_id in ended}
            if not keys:
                return 0
            have = set(
                (
                    await session.execute(
                        select(Outbox.dedupe_key).where(Outbox.dedupe_key.in_(list(keys)))
                    )
                ).scalars()
            )
        queued = 0
        for key, run_id in sorted(keys.items(), key=lambda item: item[1]):
            if key not in have:
                queued += await self._enqueue_one(run_id)
        return queued

    async def _enqueue_one(self, run_id: int) -> bool:
        """``enqueue``, where a bug rendering one digest costs that digest, not the loop."""
        try:
            return await self.enqueue(run_id)
        except DB_TROUBLE:
            raise
        except Exception:
            log.exception("run #%s: its digest could not be rendered; it is not sent", run_id)
            return False

    # -- one digest -----------------------------------------------------------------------

    async def enqueue(self, run_id: int) -> bool:
        """Put the run's digest in the outbox; False when it is there already (or the run has
        none)."""
        key = digest_key(run_id)
        async with self.db.read() as session:
            there = await session.execute(select(Outbox.id).where(Outbox.dedupe_key == key))
            if there.first() is not None:
                return False
        rendered = await self.render(run_id)
        if rendered is None:
            return False
        run = rendered.run
        if run.channel_id is None:
            log.warning("run #%s: its digest has no channel to go to; set slack.channel", run.id)
            return False
        payload = {"message": rendered.message, "reply_url": None}
        if not await self.outgoing.put_once(key, DIGEST_KIND, payload, run.id, run.channel_id):
            return False  # another replica queued it first
        log.info("run #%s: digest queued for %s", run.id, run.channel_id)
        if self.on_put is not None:
            self.on_put()
        return True

    async def render(self, run_id: int) -> Rendered | None:
        """The run's digest as a Slack message and as text; None if the run has none (yet)."""
        view = await self.runs.get(run_id)
        run = view.run
        if not wants_digest(run.status, run.params):
            return None
        customer = self.catalog().customers.get(run.customer_id)
        previous = await self.previous(run)
        context: dict[str, Any] = {
            "customer_name": customer.name if customer else run.customer_id,
            "schedule": str(run.params["schedule"]),
            "tz": customer.tz if customer else UTC,
            "previous": previous,
            "web_url": web_link(self.public_url, run.id),
        }
        return Rendered(run, digest_message(view, **context), digest_text(view, **context))

    async def previous(self, run: Run) -> Previous | None:
        """The last completed run of the same customer and schedule before ``run``."""
        name = str(run.params["schedule"])
        async with self.db.read() as session:
            earlier = (
                await session.execute(
                    select(Run.id)
                    .where(
                        Run.customer_id == run.customer_id,
                        Run.id < run.id,
                        Run.status == RunStatus.COMPLETED,
                        Run.params["schedule"].as_string() == name,
                    )
                    .order_by(Run.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        if earlier is None:
            return None
        view = await self.runs.get(earlier)
        return Previous(view.run.id, fired_at(view), view.results)


# -- mhub digest send --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What ``mhub digest send`` did: ``posted``, ``queued`` (Slack did not take it yet; the
    outbox keeps trying), ``failed`` (Slack refused it) or ``off`` (Slack is not configured)."""

    run_id: int
    text: str
    status: str
    note: str


async def send_now(
    hub: Hub, customer_id: str, schedule_name: str | None, on_queued: Callable[[int], None]
) -> Sent:
    """Run the schedule's checks now, wait for them, and post the digest (through the outbox,
    like a scheduled one); with Slack off, only render it."""
    customer = hub.catalog.customer(customer_id)
    schedule = schedule_of(customer, schedule_name)
    run, _ = await hub.runs.submit(
        Submit(
            plan=hub.catalog.plan(customer.id, schedule.checks),
            requested_by="cli",
            source=Source.CLI,
            channel_id=schedule.channel or customer.slack.channel,
            extra={"schedule": schedule.name},
        )
    )
    on_queued(run.id)
    await hub.executor.run_until_done(run.id)
    digests = Digests.for_hub(hub)
    if digests is None or hub.slack is None:
        rendered = await Digests(
            hub.db, hub.runs, lambda: hub.catalog, public_url=hub.settings.public_url
        ).render(run.id)
        note = (
            "Slack is off (SLACK_BOT_TOKEN and SLACK_APP_TOKEN are not both set): "
            "the digest was printed, not posted."
        )
        return Sent(run.id, rendered.text if rendered else "", "off", note)
    rendered = await digests.render(run.id)
    await digests.enqueue(run.id)
    await hub.slack.deliverer.deliver_due()
    row = await hub.slack.deliverer.outbox.row(digest_key(run.id))
    text = rendered.text if rendered else ""
    if row is not None and row.status == Status.POSTED:
        note = f"Posted the digest of run #{run.id} to {run.channel_id}."
        return Sent(run.id, text, "posted", note)
    if row is not None and row.status == Status.FAILED:
        return Sent(run.id, text, "failed", f"Slack refused the digest: {row.last_error}.")
    error = f" ({row.last_error})" if row is not None and row.last_error else ""
    note = (
        f"The digest of run #{run.id} is queued{error}; `mhub serve` delivers it when Slack "
        "answers."
    )
    return Sent(run.id, text, "queued", note)
