"""Results: one row per finished account × check, written under its run's lease.

The transitions (:mod:`app.engine.transitions`) decide *whether* a worker may write; this module
is *how* the rows go in: many at once, and the first result of a target stands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Table, Text, cast, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.engine.bulk import unnest
from app.engine.events import Event, NewEvent
from app.models import Result

RESULTS = typed(Table, Result.__table__)


@dataclass(frozen=True)
class ResultRow:
    """One finished account × check, ready to be written under its run's lease."""

    run_id: int
    attempt: int
    account: str
    check: str
    severity: str
    summary: str
    details: Mapping[str, Any]
    series: Mapping[str, Sequence[float]]
    started_at: datetime
    finished_at: datetime
    actor: str
    customer_id: str | None = None
    """The run's customer, when the writer knows it (the findings need it; else read)."""


async def insert_results(session: AsyncSession, db: Database, rows: Sequence[ResultRow]) -> None:
    """Insert results; a check that ran again after a crash may finish a target an earlier
    attempt already recorded, and then the first result stands (ON CONFLICT on the
    (run, account, check) key)."""
    if not rows:
        return
    key = ["run_id", "account", "check"]
    if db.is_sqlite:
        await session.execute(
            sqlite_insert(RESULTS)
            .on_conflict_do_nothing(index_elements=key)
            .returning(RESULTS.c.id),
            [
                {
                    "run_id": row.run_id,
                    "account": row.account,
                    "check": row.check,
                    "severity": row.severity,
                    "summary": row.summary,
                    "details": dict(row.details),
                    "series": {name: list(points) for name, points in row.series.items()},
                    "attempt": row.attempt,
                    "started_at": row.started_at,
                    "finished_at": row.finished_at,
                }
                for row in rows
            ],
        )
        return
    stamp = DateTime(timezone=True)
    given = unnest(
        "result",
        run_id=([r.run_id for r in rows], BigInteger),
        account=([r.account for r in rows], String),
        check=([r.check for r in rows], String),
        severity=([r.severity for r in rows], String),
        summary=([r.summary for r in rows], Text),
        details=([json.dumps(dict(r.details)) for r in rows], Text),
        series=([json.dumps({k: list(v) for k, v in r.series.items()}) for r in rows], Text),
        attempt=([r.attempt for r in rows], Integer),
        started_at=([r.started_at for r in rows], stamp),
        finished_at=([r.finished_at for r in rows], stamp),
    )
    columns = [c for c in given.c if c.name != "n"]
    values = [cast(c, JSON) if c.name in ("details", "series") else c for c in columns]
    await session.execute(
        pg_insert(RESULTS)
        .from_select([c.name for c in columns], select(*values).order_by(given.c.n))
        .on_conflict_do_nothing(index_elements=key)
    )


def finished_events(rows: Sequence[ResultRow]) -> list[NewEvent]:
    """A ``check_finished`` event per row."""
    return [
        (
            row.run_id,
            Event.CHECK_FINISHED,
            row.actor,
            {"account": row.account, "check": row.check, "severity": row.severity},
        )
        for row in rows
    ]
