"""The deliverer: claims due outbox rows (:mod:`app.slack.outbox`) and sends them to Slack;
safe to run on any number of replicas.

**Claims.** A row is claimed by one guarded ``UPDATE … WHERE id = :id AND status = :seen AND
attempts = :seen_attempts`` that sets a lease (``next_attempt_at`` = now + lease) and bumps
``attempts``, the claim's fencing token: a sender whose lease was taken over cannot write its
outcome. ``message_ts`` is written in the same statement that marks the row posted.

**Never twice.** Before a post the row is ``posting`` under a lease. If the post's outcome is
unknown (timeout, dropped connection, 5xx: Slack may have posted it) the row becomes ``unknown``;
so does a ``posting`` row whose lease ran out (the sender died). An ``unknown`` row is not
posted again before the sender has looked for it in ``conversations.history`` by its message
metadata (``event_type`` ``mhub_run_card`` with the row's key) and found nothing. The remaining
window, documented in docs/slack-setup.md: a post that Slack accepts but does not show in the
channel history until after that look (it arrived at Slack later than the timeout plus the
``unknown_min_s`` wait), and channels whose history the app may not read (``missing_scope``: it
then posts again rather than lose the card, and logs it).

**Backoff.** A failing row waits ``backoff_base_s`` after its first failure and then half as long
as it has been failing (``updated_at`` marks the start of the streak; success resets it), up to
``backoff_cap_s``, with ±20 % jitter. A 429 waits exactly ``Retry-After`` and holds back every
row for that channel in this process meanwhile. Rows that cannot be delivered within
``max_age_s`` fail.

**Failures are told.** A row fails for good on an error retrying cannot cure
(``PERMANENT_ERRORS``, a refused response_url) or after ``max_age_s``. The guarded statement
that marks it failed shares its transaction with the run's ``delivery_failed`` event (what,
channel, Slack's code, the reason and the fix in plain words: :mod:`blocks.delivery`) and,
for a card, with the message that tells the person who asked for the run: through the slash
command's response_url while it is still valid (``REPLY_WINDOW_S``), else as a DM
(``chat.postMessage`` to their user id, an outbox row of its own). So each is written once,
whichever replica gives up. A digest (a schedule: nobody asked) gets the event only; the
runboard counts every failed row of the last 24 hours. Rate limits, outages and lost answers
are not failures: they are retried and write nothing.

**Alerts** (``kind = alert``, :mod:`app.slack.alerts`): a thread's first message, and replies
in it (``thread`` in the payload names the first message's key). A reply waits until its thread's
first message is posted and every earlier reply of the thread is settled, so a thread reads in
order; its look (after an unknown outcome) reads ``conversations.replies``. An alert row is sent
only when its channel's turn is free (``channel_paces``: one guarded update per send takes the
turn for ``alert_pace_s``), so an alerts channel gets at most one message a second, whichever
replica sends.

**Reports** (``kind = report``, :mod:`app.slack.reports`): a month's report PDF, made when it is
sent, uploaded (``files.getUploadURLExternal`` and a POST of the bytes), its file id written on
the row, then shared with ``files.completeUploadExternal``. After an unknown outcome of the share
the row is looked for in ``conversations.history`` as a message carrying one of its file ids
before it is shared again; Slack shares an uploaded file once, so a second share of the same file
is refused (``file_not_found``), never posted. A report Slack refuses for good (a channel it is
not in, a bad token, a missing scope) fails with what to do (:func:`app.slack.reports.refusal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import DB_TROUBLE, Database, DatabaseError
from app.engine.changes import Follower
from app.engine.events import Event, add_event
from app.errors import HubError
from app.models import ChannelPace, Outbox, Run
from app.slack import reports
from app.slack.outbox import Kind, Outgoing, Status
from blocks import delivery
from blocks.card import web_link
from blocks.ids import CARD_EVENT

log = logging.getLogger(__name__)

STAMP = "mhub:"


_CLAIMABLE = (Status.PENDING, Status.UNKNOWN, Status.POSTING, Status.UPDATING, Status.CHANGED)
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "too_many_attachments",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_arguments",
        "invalid_arg_name",
        "channel_is_archived",
    }
)
"""Errors that retrying will not cure: the row fails."""
_DB_DOWN: tuple[type[BaseException], ...] = (*DB_TROUBLE, DatabaseError)
AMBIGUOUS_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Errors after which Slack may or may not have posted the message."""
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})
REPLY_WINDOW_S = 25 * 60.0
"""A slash command's response_url works for 30 minutes (and 5 replies): a card that fails
later is told by DM."""


@dataclass(frozen=True)
class DeliveryOptions:
    lease_s: float = 30.0
    min_update_interval_s: float = 1.0
    http_timeout_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    unknown_min_s: float = 5.0
    max_age_s: float = 24 * 3600.0
    concurrency: int = 8
    poll_s: float = 1.0
    history_pages: int = 5
    alert_pace_s: float = 1.0
    """At most one alert message (post or edit) per alerts channel per this many seconds."""


@dataclass(frozen=True)
class _Claim:
    row: Outbox
    seen: str
    """The status the row had when claimed (``unknown``/``posting`` mean: look first)."""


@dataclass(frozen=True)
class _Outcome:
    """How one Slack call went."""

    kind: str  # ok | rejected | unknown | permanent
    data: dict[str, Any]
    error: str = ""
    retry_after: float | None = None


class Deliverer:
    """Claims due rows and sends them; safe to run on any number of replicas."""

    def __init__(
        self,
        db: Database,
        client: AsyncWebClient,
        options: DeliveryOptions | None = None,
        *,
        outgoing: Outgoing | None = None,
        on_failure: Callable[[str, bool], None] | None = None,
        public_url: str | None = None,
        make_report: reports.ReportMaker | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.options = options or DeliveryOptions()
        self.outbox = outgoing or Outgoing(db)
        self.on_failure = on_failure
        """Told (kind, permanent) about every failed delivery attempt (metrics)."""
        self.public_url = public_url
        """The web view's address, linked from the notice of a refused card."""
        self.make_report = make_report
        """Makes a report row's PDF and summary when it is sent."""
        self._files: AsyncWebClient | None = None
        self._wake = asyncio.Event()
        self._held: dict[str, float] = {}  # channel → monotonic time its Retry-After ends
        self._busy: set[int] = set()

    def poke(self) -> None:
        """Something was written to the outbox in this process: look now."""
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        tasks: set[asyncio.Task[None]] = set()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()
                await self._fill(tasks)
                wait = await self._idle_for()
                waits: set[asyncio.Future[Any]] = {stopping, *tasks}
                waker = asyncio.create_task(self._wake.wait())
                waits.add(waker)
                await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
        finally:
            stopping.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=self.options.http_timeout_s + 1)

    async def deliver_due(self) -> int:
        """Send everything due now and wait for it (tests, ``mhub`` one-shots)."""
        tasks: set[asyncio.Task[None]] = set()
        sent = 0
        while True:
            before = len(tasks)
            await self._fill(tasks)
            if not tasks:
                return sent
            sent += max(0, len(tasks) - before)
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            tasks -= done
            for task in done:
                task.result()

    async def _fill(self, tasks: set[asyncio.Task[None]]) -> None:
        free = self.options.concurrency - len(tasks)
        if free <= 0:
            return
        try:
            claims = await self._claim(free)
        except DB_TROUBLE as exc:
            log.warning("outbox: cannot claim (%s); trying again shortly", exc)
            return
        for claim in claims:
            self._busy.add(claim.row.id)
            task = asyncio.create_task(self._send(claim), name=f"deliver-{claim.row.id}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(partial(_forget, self._busy, claim.row.id))

    async def anything_due(self, within_s: float = 2.0) -> bool:
        """Is a row due to be sent within ``within_s``?"""
        soon = and_(_due_rows(), Outbox.next_attempt_at <= self.db.now_plus(within_s))
        async with self.db.read() as session:
            found = (await session.execute(select(Outbox.id).where(soon).limit(1))).first()
        return found is not None

    async def _idle_for(self) -> float:
        """Seconds until the next row is due (at most ``poll_s``, for other replicas' rows)."""
        try:
            async with self.db.read() as session:
                soonest = (
                    await session.execute(
                        select(func.min(Outbox.next_attempt_at)).where(_due_rows())
                    )
                ).scalar_one_or_none()
        except DB_TROUBLE:
            return self.options.poll_s
        if soonest is None:
            return self.options.poll_s
        if soonest.tzinfo is None:
            soonest = soonest.replace(tzinfo=UTC)
        gap = (soonest - datetime.now(UTC)).total_seconds()
        return min(self.options.poll_s, max(0.02, gap))

    # -- claiming -----------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[_Claim]:
        """Claim up to ``limit`` due rows in one transaction, each by a guarded update."""
        held = [c for c, until in self._held.items() if until > time.monotonic()]
        claims: list[_Claim] = []
        async with self.db.write() as session:
            due = select(
                Outbox.id, Outbox.status, Outbox.attempts, Outbox.kind, Outbox.channel
            ).where(_due_rows(), Outbox.next_attempt_at <= self.db.now())
            if held:
                due = due.where(or_(Outbox.channel.is_(None), Outbox.channel.not_in(held)))
            if self._busy:
                due = due.where(Outbox.id.not_in(self._busy))
            due = due.order_by(Outbox.next_attempt_at).limit(limit)
            for seen in (await session.execute(due.with_for_update(skip_locked=True))).all():
                if seen.kind == Kind.ALERT and not await self._turn(session, seen.id, seen.channel):
                    continue
                claimed = (
                    Status.UPDATING
                    if seen.status in (Status.CHANGED, Status.UPDATING)
                    else (Status.POSTING)
                )
                row = (
                    await session.execute(
                        update(Outbox)
                        .where(
                            Outbox.id == seen.id,
                            Outbox.status == seen.status,
                            Outbox.attempts == seen.attempts,
                        )
                        .values(
                            status=claimed,
                            attempts=Outbox.attempts + 1,
                            next_attempt_at=self.db.now_plus(self.options.lease_s),
                        )
                        .returning(Outbox)
                        .execution_options(synchronize_session=False)
                    )
                ).scalar_one_or_none()
                if row is not None:
                    claims.append(_Claim(row, seen.status))
        return claims

    async def _turn(self, session: AsyncSession, row_id: int, channel: str | None) -> bool:
        """Take ``channel``'s turn for an alert message (one guarded update, so one replica
        gets it); when it is not free, the row waits for it."""
        pace = self.options.alert_pace_s
        taken = await session.execute(
            update(ChannelPace)
            .where(ChannelPace.channel == channel, ChannelPace.next_at <= self.db.now())
            .values(next_at=self.db.now_plus(pace))
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) == 1:
            return True
        await session.execute(
            update(Outbox)
            .where(Outbox.id == row_id)
            .values(next_attempt_at=self.db.now_plus(pace))
            .execution_options(synchronize_session=False)
        )
        return False

    # -- sending ------------------------------------------------------------------------

    async def _send(self, claim: _Claim) -> None:
        row = claim.row
        try:
            if row.kind == Kind.RESPONSE:
                await self._respond(row)
            elif row.kind == Kind.REPORT:
                await self._report(row, look_first=claim.seen in (Status.UNKNOWN, Status.POSTING))
            elif claim.row.status == Status.UPDATING:
                await self._update(row)
            else:
                await self._post(row, look_first=claim.seen in (Status.UNKNOWN, Status.POSTING))
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug, not Slack: leave the claim to expire; the row is retried after its lease
            # (as "unknown" if it was a post, so it is looked for before being posted again).
            log.exception("outbox row %s (%s): delivery crashed", row.id, row.dedupe_key)

    async def _post(self, row: Outbox, *, look_first: bool) -> None:
        thread_ts: str | None = None
        if row.payload.get("thread"):
            thread_ts = await self._thread_of(row, Status.UNKNOWN if look_first else Status.PENDING)
            if thread_ts is None:
                return
        if look_first:
            try:
                found = await self._look(row, thread_ts)
            except _LookFailed:
                return
            if found is not None:
                log.info("outbox %s: found the card already posted (ts %s)", row.dedupe_key, found)
                await self._posted(row, found, sent_version=0)
                return
        message = dict(row.payload.get("message") or {})
        outcome = await self._call(
            "chat_postMessage",
            channel=row.channel,
            text=message.get("text") or " ",
            blocks=_stamped(message.get("blocks"), row.dedupe_key),
            metadata=_metadata(row),
            unfurl_links=False,
            unfurl_media=False,
            **({"thread_ts": thread_ts} if thread_ts else {}),
        )
        if outcome.kind == "ok":
            await self._posted(row, str(outcome.data.get("ts")), sent_version=row.version)
        elif outcome.kind == "permanent":
            await self._fail(row, outcome.error)
        else:
            status = Status.UNKNOWN if outcome.kind == "unknown" else Status.PENDING
            await self._later(row, status, outcome)

    async def _update(self, row: Outbox) -> None:
        message = dict(row.payload.get("message") or {})
        outcome = await self._call(
            "chat_update",
            channel=row.channel,
            ts=row.message_ts,
            text=message.get("text") or " ",
            blocks=_stamped(message.get("blocks"), row.dedupe_key),
            metadata=_metadata(row),
        )
        if outcome.kind == "ok":
            await self._sent(
                row, Status.UPDATING, {"sent_version": row.version, "status": _settled(row.version)}
            )
        elif outcome.kind == "permanent":
            await self._fail(row, outcome.error)
        else:
            await self._later(row, Status.CHANGED, outcome)  # an update may safely be re-sent

    async def _respond(self, row: Outbox) -> None:
        url = str(row.payload.get("url") or "")
        client = AsyncWebhookClient(url, timeout=int(self.options.http_timeout_s))
        try:
            answer = await client.send_dict(dict(row.payload.get("message") or {}))
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._later(row, Status.PENDING, _Outcome("rejected", {}, type(exc).__name__))
            return
        if answer.status_code == 200:
            await self._sent(row, Status.POSTING, {"status": Status.POSTED, "sent_version": 1})
        elif answer.status_code == 429:
            after = _retry_after(answer.headers)
            await self._later(row, Status.PENDING, _Outcome("rejected", {}, "ratelimited", after))
        elif answer.status_code in (400, 403, 404, 410):
            await self._fail(row, f"response_url refused: {answer.status_code} {answer.body[:80]}")
        else:
            await self._later(
                row, Status.PENDING, _Outcome("rejected", {}, str(answer.status_code))
            )

    async def _call(self, method: str, **kwargs: Any) -> _Outcome:
        return await self._call_on(self.client, method, **kwargs)

    async def _call_on(self, client: AsyncWebClient, method: str, **kwargs: Any) -> _Outcome:
        try:
            response = await getattr(client, method)(**kwargs)
            return _Outcome("ok", dict(response.data))  # type: ignore[arg-type]
        except SlackApiError as exc:
            return _classify(exc)
        except aiohttp.ClientConnectorError as exc:
            return _Outcome("rejected", {}, f"cannot connect ({type(exc).__name__})")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return _Outcome("unknown", {}, f"no answer ({type(exc).__name__})")

    async def _thread_of(self, row: Outbox, waits_as: Status) -> str | None:
        """The ts of the first message of a reply's thread, once the reply may go: the first
        message is posted and every earlier reply of the thread is settled. None: the reply
        waits (or failed, when its thread never will be posted)."""
        parent_key = str(row.payload["thread"])
        async with self.db.read() as session:
            parent = (
                await session.execute(
                    select(Outbox.status, Outbox.message_ts).where(Outbox.dedupe_key == parent_key)
                )
            ).first()
            earlier = (
                await session.execute(
                    select(Outbox.id)
                    .where(
                        Outbox.dedupe_key.like(f"{parent_key}:%"),
                        Outbox.id < row.id,
                        Outbox.status.in_([Status.PENDING, Status.POSTING, Status.UNKNOWN]),
                    )
                    .limit(1)
                )
            ).first()
        if parent is None or parent.status == Status.FAILED:
            await self._fail(row, "thread_not_found: the thread's first message was not posted")
            return None
        if parent.message_ts is None or earlier is not None:
            async with self.db.write() as session:  # not a failure: the thread is not ready
                await session.execute(  # the channel's turn goes to the messages before it
                    update(ChannelPace)
                    .where(ChannelPace.channel == row.channel)
                    .values(next_at=self.db.now())
                    .execution_options(synchronize_session=False)
                )
                await self._guarded(
                    session, row, Status.POSTING,
                    {"status": waits_as, "attempts": row.attempts - 1,
                     "next_attempt_at": self.db.now_plus(self.options.alert_pace_s)},
                )  # fmt: skip
            return None
        return str(parent.message_ts)

    async def _look(
        self,
        row: Outbox,
        thread_ts: str | None = None,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> str | None:
        """The ts of this row's message in the channel history (or in the thread of
        ``thread_ts``), or None when it is not there; ``match`` says which message is the row's
        (default: its key in the metadata or first block). Raises _LookFailed when the history
        cannot be read now (the row then waits)."""
        ours = match or partial(_is_ours, key=row.dedupe_key)
        oldest = f"{row.created_at.timestamp() - 60:.6f}"
        cursor: str | None = None
        for _ in range(self.options.history_pages):
            if thread_ts:
                outcome = await self._call(
                    "conversations_replies",
                    channel=row.channel,
                    ts=thread_ts,
                    limit=200,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            else:
                outcome = await self._call(
                    "conversations_history",
                    channel=row.channel,
                    oldest=oldest,
                    limit=200,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            if outcome.kind != "ok":
                if outcome.error in ("missing_scope", "not_allowed_token_type"):
                    log.warning(
                        "outbox %s: cannot read the channel history (%s) to check for an "
                        "earlier post; posting again — grant channels:history/groups:history",
                        row.dedupe_key,
                        outcome.error,
                    )
                    return None
                if outcome.error in NOT_A_MEMBER:
                    return None  # the post will fail the same way and say so
                await self._later(row, Status.UNKNOWN, outcome)
                raise _LookFailed(outcome.error)
            for message in outcome.data.get("messages") or []:
                if ours(message):
                    return str(message.get("ts"))
            cursor = (outcome.data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        return None

    # -- reports (app.slack.reports) --------------------------------------------------

    async def _report(self, row: Outbox, *, look_first: bool) -> None:
        """Share a month's report: upload its PDF unless the row holds an uploaded file, then
        share that file in the channel. A row that may have been shared (an unknown outcome, a
        sender that died) is looked for first, by the file ids it tried."""
        state = reports.Upload.of(row.payload)
        if look_first and state.tried:
            try:
                found = await self._look(row, match=partial(reports.shows, file_ids=state.tried))
            except _LookFailed:
                return
            if found is not None:
                log.info(
                    "outbox %s: found the report shared already (ts %s)", row.dedupe_key, found
                )
                await self._posted(row, found, sent_version=row.version)
                return
        if state.file_id is None:
            uploaded = await self._upload_report(row, state)
            if uploaded is None:
                return
            state = uploaded
        outcome = await self._call(
            "files_completeUploadExternal",
            files=[{"id": state.file_id, "title": state.title}],
            channel_id=row.channel,
            initial_comment=state.comment,
        )
        if outcome.kind == "ok":
            ts = reports.shared_ts(outcome.data, row.channel)
            await self._posted(row, ts, sent_version=row.version)
        elif outcome.error == "file_not_found":
            # Shared already (an earlier answer was lost) or the upload expired: forget the
            # file, look again after a while, and only then upload anew.
            if await self._keep(row, state.without_file()):
                await self._later(row, Status.UNKNOWN, outcome)
        elif outcome.kind == "permanent" or outcome.error in reports.PERMANENT:
            await self._fail(row, reports.refusal(outcome.error, row.payload))
        else:
            status = Status.UNKNOWN if outcome.kind == "unknown" else Status.PENDING
            await self._later(row, status, outcome)

    async def _upload_report(self, row: Outbox, state: reports.Upload) -> reports.Upload | None:
        """Make the PDF, upload it and write its file id on the row (before it is shared); None
        when that did not happen (the row was put back, or failed). Nothing is shared here, so
        whatever goes wrong is simply tried again, with a new upload."""
        payload = row.payload
        made = await self._make_report(row)
        if made is None:
            return None
        self._files = self._files or reports.quiet_client(self.client)
        asked = await self._call_on(
            self._files,
            "files_getUploadURLExternal",
            filename=made.filename,
            length=len(made.content),
        )
        if asked.kind != "ok":
            if asked.kind == "permanent" or asked.error in reports.PERMANENT:
                await self._fail(row, reports.refusal(asked.error, payload))
            else:
                await self._later(row, Status.PENDING, asked)  # nothing is shared yet
            return None
        url, file_id = str(asked.data.get("upload_url") or ""), str(asked.data.get("file_id"))
        sent = await reports.upload(url, made.content, self.client, self.options.http_timeout_s)
        if not sent.ok:
            await self._later(row, Status.PENDING, _Outcome("rejected", {}, sent.error,
                                                            sent.retry_after))  # fmt: skip
            return None
        state = state.with_file(file_id, made)
        return state if await self._keep(row, state) else None

    async def _make_report(self, row: Outbox) -> reports.ReportFile | None:
        payload = row.payload
        if self.make_report is None:
            await self._later(row, Status.PENDING, _Outcome("rejected", {}, "no report maker"))
            return None
        try:
            return await self.make_report(str(payload.get("customer")), str(payload.get("month")))
        except _DB_DOWN as exc:
            error = f"cannot make the report: the database is unavailable ({type(exc).__name__})"
        except HubError as exc:  # the customer is gone, or the month cannot be reported on
            await self._fail(row, reports.refusal(f"{reports.UNMADE}: {exc}", payload))
            return None
        except Exception:
            log.exception("outbox %s: making the report failed", row.dedupe_key)
            error = "making the report failed (see the log)"
        await self._later(row, Status.PENDING, _Outcome("rejected", {}, error))
        return None

    async def _keep(self, row: Outbox, state: reports.Upload) -> bool:
        """Write a report row's upload state, while the claim holds."""
        async with self.db.write() as session:
            return await self._guarded(
                session, row, Status.POSTING, {"payload": state.into(row.payload)}
            )

    # -- recording outcomes (each guarded by the claim) ---------------------------------

    async def _posted(self, row: Outbox, ts: str | None, *, sent_version: int) -> None:
        async with self.db.write() as session:
            done = await self._guarded(
                session,
                row,
                Status.POSTING,
                {
                    "status": _settled(sent_version),
                    "message_ts": ts,
                    "sent_version": sent_version,
                    "last_error": None,
                    "updated_at": self.db.now(),
                    "next_attempt_at": self.db.now_plus(self.options.min_update_interval_s),
                },
            )
            if done and row.run_id is not None:
                await add_event(
                    session, self.db, row.run_id, Event.DELIVERED, "slack",
                    what=_what(row), channel=row.channel, ts=ts,
                )  # fmt: skip
        self.poke()

    async def _sent(self, row: Outbox, claimed: Status, values: dict[str, Any]) -> None:
        async with self.db.write() as session:
            await self._guarded(
                session,
                row,
                claimed,
                {
                    "status": Status.POSTED,
                    "last_error": None,
                    "updated_at": self.db.now(),
                    "next_attempt_at": self.db.now_plus(self.options.min_update_interval_s),
                    **values,
                },
            )
        self.poke()

    async def _later(self, row: Outbox, status: Status, outcome: _Outcome) -> None:
        """Back to ``status`` with a delay: Retry-After, or the backoff."""
        now = datetime.now(UTC)
        if (now - row.created_at).total_seconds() > self.options.max_age_s:
            await self._fail(row, f"gave up after {self.options.max_age_s / 3600:.0f} h: "
                                  f"{outcome.error}")  # fmt: skip
            return
        self._count(row, permanent=False)
        if outcome.retry_after is not None:
            delay = outcome.retry_after + random.uniform(0, 0.1)
            if row.channel:
                self._held[row.channel] = time.monotonic() + outcome.retry_after
        else:
            failing = (now - row.updated_at).total_seconds() if row.last_error else 0.0
            delay = min(self.options.backoff_cap_s, max(self.options.backoff_base_s, failing / 2))
            delay *= random.uniform(0.8, 1.2)
        if status == Status.UNKNOWN:
            delay = max(delay, self.options.unknown_min_s)
        values: dict[str, Any] = {
            "status": status,
            "last_error": outcome.error[:500] or outcome.kind,
            "next_attempt_at": self.db.now_plus(delay),
        }
        if not row.last_error:
            values["updated_at"] = self.db.now()  # a failure streak starts now
        claimed = Status.UPDATING if row.status == Status.UPDATING else Status.POSTING
        async with self.db.write() as session:
            await self._guarded(session, row, claimed, values)
        log.info(
            "outbox %s: %s; next try in %.1f s",
            row.dedupe_key,
            outcome.error or outcome.kind,
            delay,
        )

    async def _fail(self, row: Outbox, error: str) -> None:
        """The row fails for good; the run's event and the requester's notice go with it."""
        self._count(row, permanent=True)
        claimed = Status.UPDATING if row.status == Status.UPDATING else Status.POSTING
        told: str | None = None
        async with self.db.write() as session:
            done = await self._guarded(
                session,
                row,
                claimed,
                {
                    "status": Status.FAILED,
                    "last_error": error[:500],
                    "updated_at": self.db.now(),
                    "next_attempt_at": self.db.now(),  # when it failed: see the outbox states
                },
            )
            if done:
                told = await self._record_failure(session, row, error)
        log.warning(
            "outbox %s: gave up: %s%s", row.dedupe_key, error, f" (told by {told})" if told else ""
        )
        if told:
            self.poke()

    async def _record_failure(self, session: AsyncSession, row: Outbox, error: str) -> str | None:
        """The run's ``delivery_failed`` event, and for a card the message that tells whoever
        asked for the run: ``reply`` (the command's response_url), ``dm``, or None."""
        if row.run_id is None:
            return None  # a reply to a command: logged, and counted on the runboard
        what = _what(row)
        words = delivery.explain(error, what=what, ref=row.dedupe_key, run_id=row.run_id)
        data: dict[str, Any] = {
            "what": what,
            "channel": row.channel,
            "error": error[:200],
            "reason": words.reason,
            "fix": words.fix,
            "ref": row.dedupe_key,
        }
        told = await self._tell(session, row, data) if row.kind == Kind.CARD else None
        await add_event(
            session, self.db, row.run_id, Event.DELIVERY_FAILED, "slack", **data, told=told
        )
        return told

    async def _tell(self, session: AsyncSession, row: Outbox, data: dict[str, Any]) -> str | None:
        """Queue the notice of a refused card for the person who asked for the run, in the
        caller's transaction (the row fails once, so its keys are new)."""
        assert row.run_id is not None
        message = delivery.notice(row.run_id, data, web_link(self.public_url, row.run_id))
        url = (row.payload or {}).get("reply_url")
        age = (datetime.now(UTC) - row.created_at).total_seconds()
        if url and age < REPLY_WINDOW_S:
            reply = {"url": str(url), "message": message}
            await self.outbox.put_in(session, f"reply:{row.dedupe_key}", Kind.RESPONSE, reply)
            return "reply"
        requester = (
            await session.execute(select(Run.requested_by).where(Run.id == row.run_id))
        ).scalar_one_or_none()
        if not requester:
            return None
        # chat.postMessage to a user id posts in the app's DM with them (chat:write suffices).
        dm = {"message": message, "reply_url": None}
        key = f"notice:{row.dedupe_key}"
        await self.outbox.put_in(session, key, Kind.NOTICE, dm, row.run_id, requester)
        return "dm"

    def _count(self, row: Outbox, *, permanent: bool) -> None:
        if self.on_failure is not None:
            self.on_failure(row.kind, permanent)

    async def _guarded(
        self, session: Any, row: Outbox, claimed: Status, values: dict[str, Any]
    ) -> bool:
        changed = (
            await session.execute(
                update(Outbox)
                .where(
                    Outbox.id == row.id,
                    Outbox.status == claimed,
                    Outbox.attempts == row.attempts,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        ).rowcount
        if not changed:
            log.warning(
                "outbox %s: lost the claim before recording the outcome; the next claim "
                "looks in the channel history first",
                row.dedupe_key,
            )
        return bool(changed)


class _LookFailed(Exception):
    """The channel history could not be read; the row was put back to wait."""


def _forget(busy: set[int], row_id: int, _: object) -> None:
    busy.discard(row_id)


def _what(row: Outbox) -> str:
    """``card post``, ``card update``, ``digest``, ``notice``, ``response``: what a row sends."""
    if row.kind == Kind.CARD:
        return "card update" if row.status == Status.UPDATING else "card post"
    return str(row.kind)


def _due_rows() -> Any:
    return Outbox.status.in_([s.value for s in _CLAIMABLE])


def _settled(sent_version: int) -> Any:
    """``posted`` if Slack now shows the newest rendering, else ``changed`` (decided in the
    same statement, so a rendering stored meanwhile is never forgotten)."""
    return case((Outbox.version == sent_version, Status.POSTED.value), else_=Status.CHANGED.value)


def _stamped(blocks: Any, key: str) -> Any:
    """The blocks with the outbox key as the first block's id: a second way (besides the
    metadata) to recognise the message in the channel history."""
    if not blocks:
        return blocks
    first = {**blocks[0], "block_id": f"{STAMP}{key}"}
    return [first, *blocks[1:]]


def _is_ours(message: dict[str, Any], *, key: str) -> bool:
    meta = message.get("metadata") or {}
    if meta.get("event_type") == CARD_EVENT and (meta.get("event_payload") or {}).get("key") == key:
        return True
    blocks = message.get("blocks") or [{}]
    return bool(blocks) and blocks[0].get("block_id") == f"{STAMP}{key}"


def _metadata(row: Outbox) -> dict[str, Any]:
    return {"event_type": CARD_EVENT, "event_payload": {"key": row.dedupe_key, "run": row.run_id}}


def _retry_after(headers: Any) -> float:
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        return max(0.0, float(headers.get("Retry-After") or headers.get("retry-after") or 1))
    return 1.0


def _classify(exc: SlackApiError) -> _Outcome:
    response = exc.response
    status = getattr(response, "status_code", 0)
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    error = str(data.get("error") or f"HTTP {status}")
    if status == 429 or error == "ratelimited":
        return _Outcome("rejected", data, "ratelimited", _retry_after(response.headers))
    if status >= 500:
        return _Outcome("unknown", data, error)
    if status != 200:
        return _Outcome("rejected", data, error)
    if error in PERMANENT_ERRORS:
        return _Outcome("permanent", data, error)
    if error in AMBIGUOUS_ERRORS:
        return _Outcome("unknown", data, error)
    return _Outcome("rejected", data, error)  # e.g. invalid_auth: fixable by an operator


async def deliver(
    deliverer: Deliverer,
    followers: Sequence[Follower],
    stop: asyncio.Event,
    busy: Callable[[], bool] = lambda: False,
    linger_s: float = 30.0,
) -> None:
    """Deliver the outbox, and keep ``followers`` (the cards, the Home tab) rendering into it,
    until ``stop``; then carry on while ``busy()`` (runs are still finishing) and until nothing
    is due, for at most ``linger_s``, so the final state of a draining run still reaches its
    card."""
    done = asyncio.Event()

    async def linger() -> None:
        await stop.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + linger_s
        while loop.time() < deadline:
            try:
                if not busy() and not await deliverer.anything_due():
                    break
            except DB_TROUBLE:
                break  # the database is gone; what is queued goes out after a restart
            await asyncio.sleep(0.2)
        done.set()

    await asyncio.gather(
        deliverer.serve(done), linger(), *(follower.serve(done) for follower in followers)
    )
