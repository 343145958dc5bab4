"""The run service: submit, read, list, cancel and retry runs.

Every entry point (Slack, CLI, schedule, web) goes through here; the executor picks the runs up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import Plan
from app.db import Database
from app.engine import transitions as tx
from app.engine.changes import Change, RunChanges
from app.engine.events import Event, NewEvent, add_events
from app.errors import SLACK, Hint, NotFound, UsageError, quoted
from app.models import TERMINAL_STATUSES, Result, Run, RunEvent, RunStatus, Source


@dataclass(frozen=True)
class Submit:
    """A request to run a plan."""

    plan: Plan
    requested_by: str
    source: Source
    window: timedelta | None = None
    channel_id: str | None = None
    idempotency_key: str | None = None
    retry_of: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    access: dict[str, Any] | None = None
    """The grant that allowed it (``Access.admit``), recorded as the run's first event."""


@dataclass(frozen=True)
class RunView:
    """A run with its results and timeline, detached from the session."""

    run: Run
    results: Sequence[Result]
    events: Sequence[RunEvent] = ()

    @property
    def done(self) -> int:
        return len(self.results)

    @property
    def total(self) -> int:
        return len(self.run.targets)

    @property
    def terminal(self) -> bool:
        return self.run.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class CancelOutcome:
    run: Run
    changed: bool
    text: str
    hint: Hint | None = None
    """What to do instead (retry a finished run), spelled where it is read."""

    @property
    def message(self) -> str:
        """The answer as Slack (and the web) says it."""
        return self.said(SLACK)

    def said(self, command: str) -> str:
        return f"{self.text} {self.hint.said(command)}" if self.hint else self.text


_RUN_ID = re.compile(r"#?([0-9]{1,16})", re.ASCII)


def parse_run_id(text: str) -> int:
    """``1842`` or ``#1842`` → 1842. Only ASCII digits: ``²`` or ``١`` are not run ids."""
    found = _RUN_ID.fullmatch(text.strip())
    if found is None or not 0 < int(found[1]) < 2**53:
        shown = quoted(text)
        raise UsageError(f"{shown} is not a run id. Use the number shown on the card, like #1842.")
    return int(found[1])


SUBMIT_ATTEMPTS = 3


class RunService:
    def __init__(
        self, db: Database, max_attempts: int = 3, changes: RunChanges | None = None
    ) -> None:
        self.db = db
        self.max_attempts = max_attempts
        self.changes = changes or RunChanges()
        """Told of every run this service submits (:attr:`Change.SUBMITTED`) or cancels."""

    async def submit(self, request: Submit) -> tuple[Run, bool]:
        """Queue a run. Returns (run, created); an idempotency key seen before returns the
        existing run with created=False."""
        [result] = await self.submit_many([request])
        return result

    async def submit_many(self, requests: Sequence[Submit]) -> list[tuple[Run, bool]]:
        """Queue several runs in one transaction — what ``submit`` does for each, in order.

        For bursts (a hundred slash commands at once): one statement inserts them all, one
        more their events. Requests whose idempotency key exists already (or repeats an
        earlier request in the batch) return that run with created=False. If another replica
        inserts one of the keys meanwhile, the batch is tried again (and then finds it).
        """
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                async with self.db.write() as session:
                    results = await self._insert(session, requests)
            except IntegrityError:
                if attempt == SUBMIT_ATTEMPTS or not any(r.idempotency_key for r in requests):
                    raise
                continue
            self.changes.publish([run.id for run, created in results if created], Change.SUBMITTED)
            return results
        raise AssertionError("unreachable")

    async def _insert(
        self, session: AsyncSession, requests: Sequence[Submit]
    ) -> list[tuple[Run, bool]]:
        keys = [r.idempotency_key for r in requests if r.idempotency_key is not None]
        known: dict[str, Run] = {}
        if keys:
            found = await session.execute(select(Run).where(Run.idempotency_key.in_(keys)))
            known = {str(run.idempotency_key): run for run in found.scalars()}
        fresh: list[int] = []  # index into requests of each row to insert
        seen: set[str] = set(known)
        for index, request in enumerate(requests):
            key = request.idempotency_key
            if key is None or key not in seen:
                fresh.append(index)
            if key is not None:
                seen.add(key)
        rows = [self._row(requests[i]) for i in fresh]
        created = dict(zip(fresh, await self._insert_rows(session, rows), strict=True))
        known.update((str(run.idempotency_key), run) for run in created.values())
        results: list[tuple[Run, bool]] = [
            (created[i], True) if i in created else (known[str(r.idempotency_key)], False)
            for i, r in enumerate(requests)
        ]
        events: list[NewEvent] = []
        for request, (run, new) in zip(requests, results, strict=True):
            if request.access is not None:
                events.append((run.id, Event.ACCESS, request.requested_by, request.access))
            if new:
                data = {"source": request.source, "retry_of": request.retry_of}
                events.append((run.id, Event.CREATED, request.requested_by, data))
        await add_events(session, self.db, events)
        return results

    async def _insert_rows(self, session: AsyncSession, rows: list[dict[str, Any]]) -> list[Run]:
        """Insert ``rows`` with one statement; the new runs in the order of ``rows``."""
        if not rows:
            return []
        statement = insert(Run).values(created_at=self.db.now())
        if not self.db.is_sqlite:
            ordered = statement.returning(Run, sort_by_parameter_order=True)
            return list((await session.execute(ordered, rows)).scalars())
        # SQLAlchemy cannot tie SQLite's RETURNING rows to their parameters, and asked to, it
        # sends one INSERT per row. One multi-row INSERT numbers its rows in VALUES order (and
        # the one writer holds the lock), so the ids, sorted, follow ``rows``; checked here.
        runs = sorted(
            (await session.execute(statement.returning(Run), rows)).scalars(),
            key=lambda run: run.id,
        )
        for run, row in zip(runs, rows, strict=True):
            if any(getattr(run, column) != value for column, value in row.items()):
                raise RuntimeError("SQLite numbered a multi-row INSERT out of order")
        return runs

    def _row(self, request: Submit) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.extra)
        if request.window is not None:
            params["window_s"] = int(request.window.total_seconds())
        return {
            "customer_id": request.plan.customer.id,
            "requested_by": request.requested_by,
            "channel_id": request.channel_id,
            "source": request.source,
            "targets": [{"account": a, "check": c} for a, c in request.plan.targets],
            "params": params,
            "status": RunStatus.QUEUED,
            "attempt": 0,
            "max_attempts": self.max_attempts,
            "idempotency_key": request.idempotency_key,
            "retry_of": request.retry_of,
        }

    async def get(self, run_id: int, *, events: bool = False) -> RunView:
        async with self.db.read() as session:
            run = await session.get(Run, run_id)
            if run is None:
                raise NotFound(
                    f"There is no run #{run_id}.", Hint("list", after=" shows recent runs")
                )
            results = (
                (
                    await session.execute(
                        select(Result).where(Result.run_id == run_id).order_by(Result.id)
                    )
                )
                .scalars()
                .all()
            )
            timeline: Sequence[RunEvent] = ()
            if events:
                timeline = (
                    (
                        await session.execute(
                            select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
                        )
                    )
                    .scalars()
                    .all()
                )
        return RunView(run, results, timeline)

    async def recent(self, customer_id: str | None = None, limit: int = 20) -> Sequence[Run]:
        query = select(Run).order_by(Run.id.desc()).limit(limit)
        if customer_id is not None:
            query = query.where(Run.customer_id == customer_id)
        async with self.db.read() as session:
            return (await session.execute(query)).scalars().all()

    async def cancel(self, run_id: int, actor: str) -> CancelOutcome:
        """Cancel at once when queued; flag the owner when running; a no-op when finished."""
        view = await self.get(run_id)
        run = view.run
        if run.status in TERMINAL_STATUSES:
            return CancelOutcome(
                run,
                False,
                f"Run #{run_id} has already {_finished(run)} — nothing to cancel.",
                Hint(f"retry {run_id}", "Retry it with "),
            )
        try:
            async with self.db.write() as session:
                if run.status == RunStatus.QUEUED:
                    run = await tx.cancel_queued(session, self.db, run_id, actor)
                    message = f"Cancelled run #{run_id} before it started."
                else:
                    run = await tx.request_cancel(session, self.db, run_id, actor)
                    message = f"Cancelling run #{run_id}; finished checks stay on the card."
        except tx.Conflict:
            return await self.cancel(run_id, actor)  # it moved on meanwhile; answer for now
        self.changes.publish([run_id], Change.CANCEL_REQUESTED)
        return CancelOutcome(run, True, message)

    async def retry(
        self,
        run_id: int,
        plan: Plan,
        actor: str,
        source: Source,
        channel_id: str | None = None,
        key: str | None = None,
    ) -> tuple[Run, bool]:
        """A new run with the same targets and window, linked by ``retry_of``.

        A run is retried once: retrying it again (a double-click, a command delivered twice,
        a second person) gives that retry back, whose own card can be retried in turn."""
        original = (await self.get(run_id)).run
        if original.status not in TERMINAL_STATUSES:
            raise UsageError(f"Run #{run_id} is still {original.status}; retry it once it ends.")
        key = key or f"retry:{run_id}"
        window_s = original.params.get("window_s")
        return await self.submit(
            Submit(
                plan=plan,
                requested_by=actor,
                source=source,
                window=timedelta(seconds=window_s) if window_s else None,
                channel_id=channel_id or original.channel_id,
                retry_of=run_id,
                idempotency_key=key,
            )
        )


def _finished(run: Run) -> str:
    return {"completed": "finished", "failed": "failed", "cancelled": "been cancelled"}.get(
        run.status, run.status
    )


def run_json(view: RunView, customer_name: str | None = None) -> dict[str, Any]:
    """The contract's JSON shape, shared by ``mhub run --json``, ``status`` and ``/api``."""
    run = view.run
    return {
        "id": run.id,
        "status": run.status,
        "outcome": run.outcome,
        "customer": run.customer_id,
        "requested_by": run.requested_by,
        "attempts": run.attempt,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "results": [
            {
                "account": r.account,
                "check": r.check,
                "severity": r.severity,
                "summary": r.summary,
                "details": r.details,
            }
            for r in view.results
        ],
    }
