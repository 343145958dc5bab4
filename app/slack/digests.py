"""Digests: when a scheduled run ends, its digest goes to the schedule's channel, once.

A run carries a digest when its params name a schedule (``params["schedule"]``: set by the
scheduler, and by ``mhub digest send``). Such a run gets no result card (cards are for runs
started from Slack): its one message is the digest.

**Exactly once.** The digest is an outbox row with the dedupe key ``digest:<run id>``, UNIQUE in
the database; the deliverer (:mod:`app.slack.deliverer`) posts each row once. The row is written
by whichever replica sees the run end — :class:`Digests` follows run changes
(:class:`~app.engine.changes.Follower`) and renders and enqueues the digest of a scheduled run
that ended — and, in case that replica died in between, by a sweep every ``sweep_s`` over
scheduled runs that ended in the last ``recent`` (12 h). Whoever inserts second gets the UNIQUE
violation and does nothing.

**What changed** compares with the previous *completed* run of the same customer and schedule
(see :mod:`blocks.digest` for the rules).

**Blind spots.** The customer's account × checks that cannot look (:mod:`app.engine.blind`)
are listed first, as they stand when the digest is rendered, and keep it from reading OK.

**Answers.** Each problem line shows its finding's age and answer and a ``⋯`` menu; snoozed and
muted lines are folded (their standings are read with one :meth:`Answers.standings` call per
rendering). When someone answers a finding, :meth:`Digests.showing` finds the recent digests
that show it and :meth:`Digests.refresh` renders each again into its outbox row as a new
version: the deliverer updates the posted message in place with ``chat.update``, like a card.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.catalog import Catalog
from app.config import Customer
from app.db import DB_TROUBLE, Database
from app.engine.answers import Answers
from app.engine.blind import BlindSpot, blind_spots
from app.engine.changes import Follower
from app.engine.coverage import configured
from app.engine.findings import PROBLEMS, lines_of
from app.engine.maintenance import Window, during
from app.engine.runs import RunService, RunView, Submit
from app.errors import UsageError
from app.models import TERMINAL_STATUSES, Outbox, Result, Run, RunStatus, Source
from app.schedules.slots import schedule_of
from app.slack.outbox import Outgoing, Status
from blocks.card import web_link
from blocks.digest import Previous, digest_message, digest_text, fired_at, problems
from blocks.findings import Standings

log = logging.getLogger(__name__)

DIGEST_KIND = "digest"
"""``outbox.kind`` of a digest: posted once with chat.postMessage, then updated in place with
chat.update when :meth:`Digests.refresh` stores a new rendering."""
RECENT = timedelta(hours=12)
LOOKED = (*PROBLEMS, "error")
"""Severities of results that may have problem lines (an ``error`` one may list some)."""
SHOWING = timedelta(days=2)
"""How far back :meth:`Digests.showing` looks for digests that show a finding."""


def digest_key(run_id: int) -> str:
    return f"digest:{run_id}"


def wants_digest(status: str, params: dict[str, Any] | None) -> bool:
    return status in TERMINAL_STATUSES and bool((params or {}).get("schedule"))


@dataclass(frozen=True)
class Rendered:
    run: Run
    message: dict[str, Any]
    text: str


class Digests(Follower):
    """Follows run changes: queues the digest of every scheduled run that ended."""

    name = "digests"

    def __init__(
        self,
        db: Database,
        runs: RunService,
        catalog: Catalog,
        *,
        public_url: str | None = None,
        on_put: Callable[[], None] | None = None,
        sweep_s: float = 30.0,
        recent: timedelta = RECENT,
        answers: Answers | None = None,
    ) -> None:
        super().__init__(sweep_s=sweep_s)
        self.db = db
        self.outgoing = Outgoing(db)
        self.runs = runs
        self.catalog = catalog
        self.public_url = public_url
        self.on_put = on_put
        self.recent = recent
        self.answers = answers
        """The findings' standings beside each line (None: lines without answers or menus)."""

    # -- noticing runs that ended ---------------------------------------------------------

    async def flush(self, run_ids: set[int]) -> None:
        """Enqueue the digests of the runs that ended (and have one)."""
        if not run_ids:
            return
        async with self.db.read() as session:
            rows = await session.execute(
                select(Run.id, Run.status, Run.params).where(Run.id.in_(sorted(run_ids)))
            )
            ended = [row.id for row in rows if wants_digest(row.status, row.params)]
        for run_id in ended:
            await self._enqueue_one(run_id)

    async def sweep(self) -> list[int]:
        """Scheduled runs that ended recently and have no digest yet."""
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
                return []
            have = set(
                (
                    await session.execute(
                        select(Outbox.dedupe_key).where(Outbox.dedupe_key.in_(list(keys)))
                    )
                ).scalars()
            )
        return sorted(run_id for key, run_id in keys.items() if key not in have)

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
        customer = self.catalog.customers.get(run.customer_id)
        previous = await self.previous(run)
        now = self.answers.clock() if self.answers else datetime.now(UTC)
        context: dict[str, Any] = {
            "customer_name": customer.name if customer else run.customer_id,
            "schedule": str(run.params["schedule"]),
            "tz": customer.tz if customer else UTC,
            "previous": previous,
            "web_url": web_link(self.public_url, run.id),
            "standings": await self._standings(view),
            "now": now,
            "blind": await self._blind(customer, now) if customer else (),
            "windows": await self._windows(customer, run) if customer else (),
        }
        return Rendered(run, digest_message(view, **context), digest_text(view, **context))

    async def _blind(self, customer: Customer, now: datetime) -> list[BlindSpot]:
        """The customer's blind spots now (of account × checks it still has), listed first."""
        async with self.db.read() as session:
            spots = await blind_spots(session, [customer.id], now)
        return configured(customer, spots)

    async def _windows(self, customer: Customer, run: Run) -> list[Window]:
        """The maintenance windows that were open while the run looked."""
        async with self.db.read() as session:
            return await during(session, customer, run)

    async def _standings(self, view: RunView) -> Standings:
        """The findings of the digest's problem lines, with what each is now."""
        if self.answers is None:
            return {}
        return await self.answers.standings(view.run.customer_id, problems(view.results))

    # -- answers: updating digests in place -----------------------------------------------

    async def refresh(self, run_id: int) -> bool:
        """Render the run's digest again (someone answered a finding it shows) and store it as
        a new version of its outbox row, so the deliverer updates the posted message in place
        (or posts this rendering, if it is not posted yet). False when the run has no digest
        queued, Slack refused it for good, or it reads the same."""
        row = await self.outgoing.row(digest_key(run_id))
        if row is None or row.status == Status.FAILED:
            return False
        rendered = await self.render(run_id)
        if rendered is None:
            return False
        if not await self.outgoing.revise(digest_key(run_id), rendered.message):
            return False
        log.info("run #%s: digest rendered again (version %s)", run_id, row.version + 1)
        if self.on_put is not None:
            self.on_put()
        return True

    async def showing(
        self, customer_id: str, fingerprints: Collection[str], *, within: timedelta = SHOWING
    ) -> list[int]:
        """The customer's runs of the last ``within`` (2 days) whose digest is queued or
        posted and shows any of ``fingerprints`` as a problem line, oldest first: the digests
        to :meth:`refresh` after an answer."""
        wanted = set(fingerprints)
        if not wanted:
            return []
        since = datetime.now(UTC) - within
        async with self.db.read() as session:
            recent = (
                await session.execute(
                    select(Run.id).where(Run.customer_id == customer_id, Run.created_at >= since)
                )
            ).scalars()
            keys = [digest_key(run_id) for run_id in recent]
            if not keys:
                return []
            run_ids = list(
                (
                    await session.execute(
                        select(Outbox.run_id).where(
                            Outbox.dedupe_key.in_(keys), Outbox.status != Status.FAILED
                        )
                    )
                ).scalars()
            )
            if not run_ids:
                return []
            rows = await session.execute(
                select(
                    Result.run_id, Result.account, Result.check, Result.severity,
                    Result.summary, Result.details,
                ).where(Result.run_id.in_(run_ids), Result.severity.in_(LOOKED))
            )  # fmt: skip
            found = {
                row.run_id
                for row in rows
                if any(
                    line.fingerprint in wanted
                    for line in lines_of(
                        row.check, row.account, row.severity, row.summary, row.details
                    )
                )
            }
        return sorted(found)

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
    digests: Digests,
    run_until_done: Callable[[int], Awaitable[None]],
    deliver_due: Callable[[], Awaitable[int]] | None,
    customer_id: str,
    schedule_name: str | None,
    on_queued: Callable[[int], None],
) -> Sent:
    """Run the schedule's checks now, wait for them (``run_until_done``), and post the digest
    through the outbox like a scheduled one (``deliver_due``); with Slack off (None), only
    render it."""
    customer = digests.catalog.customer(customer_id)
    schedule = schedule_of(customer, schedule_name)
    if schedule.kind == "report":
        raise UsageError(
            f'"{schedule.name}" posts {customer.name}\'s monthly report and runs no checks: '
            f"`mhub report {customer.id} --month YYYY-MM --pdf FILE` makes one now "
            "(docs/reports.md)"
        )
    run, _ = await digests.runs.submit(
        Submit(
            plan=digests.catalog.plan(customer.id, schedule.checks),
            requested_by="cli",
            source=Source.CLI,
            channel_id=schedule.channel or customer.slack.channel,
            extra={"schedule": schedule.name},
        )
    )
    on_queued(run.id)
    await run_until_done(run.id)
    rendered = await digests.render(run.id)
    text = rendered.text if rendered else ""
    if deliver_due is None:
        note = (
            "Slack is off (SLACK_BOT_TOKEN and SLACK_APP_TOKEN are not both set): "
            "the digest was printed, not posted."
        )
        return Sent(run.id, text, "off", note)
    await digests.enqueue(run.id)
    await deliver_due()
    row = await digests.outgoing.row(digest_key(run.id))
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
