"""The outbox: every message to Slack is a database row first (this module writes them), then
delivered by :mod:`app.slack.deliverer`, which retries, backs off, honours ``Retry-After``,
coalesces card updates and never posts a card twice.

Rows (``outbox`` table) and their states::

    pending ──claim──► posting ──ok──────────────► posted ◄──ok── updating ◄──claim── changed
       ▲                 │ ├─rejected (429, refused connection, 4xx) ─► pending      │  ▲
       │                 │ ├─outcome unknown (timeout, reset, 5xx) ──► unknown      │  │
       │                 │ └─permanent (not_in_channel, …) ─────────► failed        └──┘
       └─────────────────┘            unknown ──claim──► posting (history first)   error:
                                      posted ──a new rendering──► changed          backoff

``posted`` means Slack shows the newest rendering; a send that leaves a newer one waiting ends
in ``changed`` instead (one guarded statement decides, comparing ``version``).

- A **card** (``kind = card``, key ``card:<run id>``) is posted once with ``chat.postMessage``
  and then updated with ``chat.update``. Its payload is the newest rendering; ``version`` counts
  renderings and ``sent_version`` is the one Slack shows. Updates go out at most once per
  ``min_update_interval_s`` per card: after every send the row is not due again before then,
  so renderings made meanwhile coalesce into one update.
- A **response** (``kind = response``) is one POST to a ``response_url`` (an ephemeral reply).
- Anything else written once per key (``put_once``): a digest (``digest:<run id>``), posted
  once and updated in place with ``chat.update`` when :meth:`Outgoing.revise` stores a newer
  rendering (versions as for a card); a **notice** (``kind = notice``, ``notice:<key>``), the
  DM that tells the person who asked for a run that its card was refused (``channel`` is their
  user id).
- An **alert** (``kind = alert``, :mod:`app.slack.alerts`): the first message of a finding's
  thread in an alerts channel (``alert:<finding id>.<episode>``), updated in place like a
  digest, and the replies in that thread (the first message's key, ``:`` and the change;
  ``thread`` in the payload), written in the transaction that decides them (:meth:`put_alert_in`,
  :meth:`revise_in`).
- A **report** (``kind = report``, :mod:`app.slack.reports`): a month's report PDF shared in the
  customer's channel with a two-line comment, once per ``report:<customer>:<schedule>:<YYYY-MM>``.
  Its payload names what to make (customer, month, schedule, channel), never the PDF, which is
  made when it is sent; the deliverer adds the uploaded file's id (``file_id``, and every id it
  tried to share, ``file_ids``), title and comment before it shares it, so a retry after a lost
  answer looks for those ids in the channel before sharing again.

``failed`` is final: the row is never claimed again, and its ``updated_at`` and
``next_attempt_at`` say when it failed (the runboard counts the last 24 hours on
``ix_outbox_due``). The deliverer writes the run's ``delivery_failed`` event, and queues the
reply or notice that tells the requester, in the transaction that marks the row failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from app.db import Database
from app.models import ChannelPace, Outbox


class Status(StrEnum):
    PENDING = "pending"
    POSTING = "posting"
    UNKNOWN = "unknown"
    POSTED = "posted"
    CHANGED = "changed"
    UPDATING = "updating"
    FAILED = "failed"


class Kind(StrEnum):
    CARD = "card"
    RESPONSE = "response"
    NOTICE = "notice"
    ALERT = "alert"
    REPORT = "report"


@dataclass(frozen=True)
class Card:
    """A rendering of a run's card, to be stored in the outbox."""

    run_id: int
    channel: str
    message: dict[str, Any]
    reply_url: str | None = field(default=None, repr=False)


def card_key(run_id: int) -> str:
    return f"card:{run_id}"


def _new_row(
    key: str, kind: str, payload: dict[str, Any], run_id: int | None, channel: str | None
) -> dict[str, Any]:
    """A row not delivered yet."""
    return {
        "dedupe_key": key,
        "run_id": run_id,
        "kind": kind,
        "channel": channel,
        "payload": payload,
        "status": Status.PENDING,
        "attempts": 0,
        "version": 1,
        "sent_version": 0,
    }


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


class Outgoing:
    """Writing rows: what should be delivered (the deliverer decides when and how)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put_card(
        self, run_id: int, channel: str, message: dict[str, Any], reply_url: str | None = None
    ) -> bool:
        """Create or refresh a run's card. Returns True when the row changed (a new version)."""
        return bool(await self.put_cards([Card(run_id, channel, message, reply_url)]))

    async def put_cards(self, cards: Sequence[Card]) -> list[int]:
        """Create or refresh several cards in one transaction; returns the run ids whose card
        changed (created, or a new version because the rendering differs)."""
        for _ in range(3):
            try:
                return await self._put_cards(cards)
            except IntegrityError:
                continue  # another replica created one of them meanwhile: look again
        return []

    async def _put_cards(self, cards: Sequence[Card]) -> list[int]:
        keys = {card_key(c.run_id): c for c in cards}
        async with self.db.read() as session:
            found = await session.execute(
                select(Outbox.dedupe_key, Outbox.id, Outbox.payload).where(
                    Outbox.dedupe_key.in_(list(keys))
                )
            )
            existing = {row.dedupe_key: (row.id, dict(row.payload or {})) for row in found}
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        changed: list[int] = []
        for key, card in keys.items():
            if key not in existing:
                payload = {"message": card.message, "reply_url": card.reply_url}
                inserts.append(_new_row(key, Kind.CARD, payload, card.run_id, card.channel))
                changed.append(card.run_id)
                continue
            row_id, payload = existing[key]
            if _same(payload.get("message"), card.message):
                continue
            payload["message"] = card.message
            if card.reply_url and not payload.get("reply_url"):
                payload["reply_url"] = card.reply_url
            updates.append({"row_id": row_id, "new_payload": payload})
            changed.append(card.run_id)
        if not changed:
            return []
        async with self.db.write() as session:
            if inserts:
                await session.execute(self._insert(), inserts)
            if updates:
                table = cast(Table, Outbox.__table__)  # Core: one statement, many rows
                await session.execute(
                    update(table)
                    .where(table.c.id == bindparam("row_id"))
                    .values(
                        payload=bindparam("new_payload"),
                        version=table.c.version + 1,
                        status=case(
                            (table.c.status == Status.POSTED, Status.CHANGED.value),
                            else_=table.c.status,
                        ),
                    ),
                    updates,
                )
        return changed

    async def revise(self, key: str, message: dict[str, Any]) -> bool:
        """A newer rendering of a message queued once under ``key`` (a digest whose findings
        were answered), stored as a new version: the deliverer updates the posted message in
        place (``posted`` → ``changed``), or posts this rendering if it is not posted yet.
        False when there is no such row, it failed for good, or the rendering is the same."""
        for _ in range(3):
            row = await self.row(key)
            if row is None or row.status == Status.FAILED:
                return False
            payload = dict(row.payload or {})
            if _same(payload.get("message"), message):
                return False
            payload["message"] = message
            async with self.db.write() as session:
                done = await session.execute(
                    update(Outbox)
                    .where(
                        Outbox.id == row.id,
                        Outbox.version == row.version,  # another revision meanwhile: again
                        Outbox.status != Status.FAILED,
                    )
                    .values(
                        payload=payload,
                        version=Outbox.version + 1,
                        status=case(
                            (Outbox.status == Status.POSTED, Status.CHANGED.value),
                            else_=Outbox.status,
                        ),
                    )
                    .execution_options(synchronize_session=False)
                )
            if getattr(done, "rowcount", 0) == 1:
                return True
        return False

    async def put_response(self, key: str, url: str, message: dict[str, Any]) -> None:
        """An ephemeral reply through a response_url; once per key."""
        await self.put_once(key[:255], Kind.RESPONSE, {"url": url, "message": message})

    async def put_once(
        self,
        key: str,
        kind: str,
        payload: dict[str, Any],
        run_id: int | None = None,
        channel: str | None = None,
    ) -> bool:
        """Queue a message once per ``key``; False when the key is queued already (by this
        process or another replica)."""
        try:
            async with self.db.write() as session:
                await self.put_in(session, key, kind, payload, run_id, channel)
        except IntegrityError:
            return False
        return True

    async def put_in(
        self,
        session: AsyncSession,
        key: str,
        kind: str,
        payload: dict[str, Any],
        run_id: int | None = None,
        channel: str | None = None,
    ) -> None:
        """Queue a message in the caller's transaction; ``key`` must be new (a duplicate
        raises IntegrityError and the caller's transaction rolls back)."""
        await session.execute(self._insert(), [_new_row(key[:255], kind, payload, run_id, channel)])

    async def put_alert_in(
        self,
        session: AsyncSession,
        key: str,
        channel: str,
        message: dict[str, Any],
        thread: str | None = None,
    ) -> None:
        """Queue an alert message in the caller's transaction, once per ``key`` (a key queued
        already, by another replica deciding the same change, is left as it is); ``thread``:
        the key of the thread's first message. Makes sure the channel has its pace row."""
        payload: dict[str, Any] = {"message": message}
        if thread is not None:
            payload["thread"] = thread
        insert_into = sqlite_insert if self.db.is_sqlite else pg_insert
        await session.execute(
            insert_into(ChannelPace)
            .values(channel=channel, next_at=self.db.now())
            .on_conflict_do_nothing(index_elements=["channel"])
        )
        await session.execute(
            insert_into(Outbox)
            .values(
                **_new_row(key[:255], Kind.ALERT, payload, None, channel),
                next_attempt_at=self.db.now(),
                created_at=self.db.now(),
                updated_at=self.db.now(),
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )

    async def revise_in(self, session: AsyncSession, key: str, message: dict[str, Any]) -> None:
        """A newer rendering of the message queued under ``key``, in the caller's transaction:
        updated in place once posted (as :meth:`revise`); nothing when it failed for good."""
        await session.execute(
            update(Outbox)
            .where(Outbox.dedupe_key == key[:255], Outbox.status != Status.FAILED)
            .values(
                payload={"message": message},
                version=Outbox.version + 1,
                status=case(
                    (Outbox.status == Status.POSTED, Status.CHANGED.value), else_=Outbox.status
                ),
            )
            .execution_options(synchronize_session=False)
        )

    def _insert(self) -> Insert:
        """An INSERT of new rows, stamped with the database clock."""
        return insert(Outbox).values(
            next_attempt_at=self.db.now(), created_at=self.db.now(), updated_at=self.db.now()
        )

    async def row(self, key: str) -> Outbox | None:
        async with self.db.read() as session:
            return (
                await session.execute(select(Outbox).where(Outbox.dedupe_key == key))
            ).scalar_one_or_none()
