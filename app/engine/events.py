"""The run timeline's vocabulary, and appending to it.

Every change of a run is a row in ``run_events`` (an append-only timeline that doubles as the
audit log): what happened, who did it, when (the database clock), and details. Access decisions
that concern no run are events with no run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any
from typing import cast as typed

from sqlalchemy import JSON, BigInteger, String, Table, Text, cast, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.engine.bulk import unnest
from app.models import RunEvent

EVENTS = typed(Table, RunEvent.__table__)


class Event(StrEnum):
    CREATED = "created"
    CLAIMED = "claimed"
    CHECK_FINISHED = "check_finished"
    CHECK_RETRIED = "check_retried"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    REQUEUED = "requeued"
    RETRIED = "retried"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    """Slack refused a run's card or digest for good (``app.slack.deliverer``), written once per
    outbox row with the row's failure: ``what`` (card post, card update, digest, notice),
    ``channel``, ``error`` (Slack's code), ``reason`` and ``fix`` (plain words), ``ref`` (the
    outbox key, also in the log) and ``told`` (``reply``, ``dm`` or None: how the person who
    asked for the run hears of it)."""
    ACCESS = "access"
    READ = "read"
    """Someone read a customer's data on the web or through the API (no run): an access
    decision's fields (``action`` read, ``allowed``, ``reason``, ``customer``, ``asked``: the
    method, path and query, ``via``). Never moves the live-update token: reading a page must
    not make every open page reload."""
    ANSWER = "answer"
    """Someone answered findings (no run): ``action`` (ack, snooze, unsnooze, mute, unmute),
    ``customer``, the fingerprints changed and those someone else had answered first, the
    reason and until, and where it was asked from (``channel``, ``via``)."""


NewEvent = tuple[int | None, Event, str, Mapping[str, Any]]
"""(run id or None, what happened, who did it, details)."""


async def add_event(
    session: AsyncSession, db: Database, run_id: int | None, kind: Event, actor: str, **data: Any
) -> None:
    await add_events(session, db, [(run_id, kind, actor, data)])


async def add_events(session: AsyncSession, db: Database, events: Sequence[NewEvent]) -> None:
    """Append several events in one statement, in order, stamped with the database clock."""
    if not events:
        return
    if db.is_sqlite:
        await session.execute(
            # RETURNING makes SQLAlchemy send one multi-row INSERT instead of one per row.
            insert(EVENTS).values(created_at=db.now()).returning(EVENTS.c.id),
            [
                {"run_id": run_id, "type": kind.value, "actor": actor, "data": dict(data)}
                for run_id, kind, actor, data in events
            ],
        )
        return
    rows = unnest(
        "event",
        run_id=([e[0] for e in events], BigInteger),
        type=([e[1].value for e in events], String),
        actor=([e[2] for e in events], String),
        data=([json.dumps(dict(e[3])) for e in events], Text),
    )
    await session.execute(
        insert(EVENTS).from_select(
            ["run_id", "type", "actor", "data", "created_at"],
            select(
                rows.c.run_id, rows.c.type, rows.c.actor, cast(rows.c.data, JSON), db.now()
            ).order_by(rows.c.n),
        )
    )
