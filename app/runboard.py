"""The read side of the App Home runboard: one bounded snapshot of the run tables.

The queries are the web view's (:func:`app.web.queries.board`), so the Home tab and the web
runboard agree and every query walks an index (see the table in :mod:`app.web.queries`): queue
depth and running runs on ``ix_runs_status_id``, the newest finished runs on the primary key,
each customer's latest run with one probe of ``ix_runs_customer_id``, the results of the runs on
the board through ``uq_results_target``. However long the history, a snapshot reads a bounded
number of rows (running runs are bounded by the executors' concurrency).

One snapshot serves every viewer: :meth:`Runboard.visible_to` narrows it to the customers a
person may see, without another query.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from app.db import Database
from app.models import Run
from app.web import queries

RECENT_SCAN = 60
"""Newest finished runs read per snapshot; each viewer sees those of their customers."""
DAY = timedelta(hours=24)

Steps = Mapping[tuple[str, str], str]


@dataclass(frozen=True)
class Runboard:
    queued: int
    running: Sequence[Run]
    recent: Sequence[Run]
    latest: Mapping[str, Run]
    """customer id → its latest finished run."""
    day: Mapping[str, int]
    """Counts of runs created in the last 24 hours: runs, crit, warn, error, failed."""
    steps: Mapping[int, Steps]
    """run id → (account, check) → severity of the results written so far."""
    taken_at: datetime

    def visible_to(self, customers: Collection[str]) -> Runboard:
        """The same snapshot with only the runs of ``customers``. Queue depth and the 24-hour
        counts stay global: they describe the hub, not a customer."""
        return replace(
            self,
            running=[r for r in self.running if r.customer_id in customers],
            recent=[r for r in self.recent if r.customer_id in customers],
            latest={c: r for c, r in self.latest.items() if c in customers},
        )


async def snapshot(db: Database, customers: Iterable[str], now: datetime) -> Runboard:
    """Read the runboard as of ``now`` for ``customers`` (their latest runs)."""
    board = await queries.board(db, sorted(customers), since=now - DAY, recent=RECENT_SCAN)
    return Runboard(
        queued=board.queued,
        running=board.running,
        recent=board.recent,
        latest=board.latest,
        day=board.day,
        steps=board.steps,
        taken_at=now,
    )
