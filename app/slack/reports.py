"""The monthly report in the customer's channel: what a report row of the outbox holds, how its
PDF is made and uploaded, and what a refusal means. The deliverer
(:mod:`app.slack.deliverer`) drives the steps; this module holds everything about them that is
not claiming and recording.

**Queueing.** A report schedule's slot (:mod:`app.schedules.timer`) calls :func:`report_poster`'s
callback, which writes one ``report`` row under ``report:<customer>:<schedule>:<YYYY-MM>``
(UNIQUE): a month's report is queued once however many replicas tick. The payload names what to
make (``customer``, ``month``, ``schedule``, ``channel``), never the PDF.

**Sending** (Slack's external upload, as ``files_upload_v2`` does it, one step at a time so each
can be made durable):

1. the :data:`ReportMaker` makes the PDF and its two-line summary (at send time);
2. ``files.getUploadURLExternal(filename, length)`` → ``upload_url``, ``file_id``;
3. the bytes are POSTed to ``upload_url`` (:func:`upload`); nothing is shared yet, so a failure
   here just starts again later with a new URL (an upload never completed is discarded by Slack);
4. the file id, title and comment are written on the row (``file_id``, ``file_ids``: every id
   the row ever tried to share) — before the file is shared;
5. ``files.completeUploadExternal(files=[{id, title}], channel_id, initial_comment)`` shares it:
   one message in the channel carrying the file.

After an unknown outcome of step 5 (timeout, reset, 5xx), the row is ``unknown``: the next
sender first looks for a message carrying any of ``file_ids`` in the channel's history
(:func:`shows`) and completes again only when there is none. Slack completes an upload once;
a second complete of a shared file answers ``file_not_found``, and so does one whose upload
expired: the row then forgets the file id and is looked for again before a new upload.

The upload URL and the token never reach a log: the URL is only held in memory, the Web API
call that returns it goes through a client whose logger does not log request or response
bodies (:func:`quiet_client`), and a failed upload is described by its status or error type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from app.catalog import Catalog
from app.reports.model import Period, Report
from app.reports.period import month_of
from app.reports.words import headline, when
from app.schedules.slots import ReportDue
from app.slack.outbox import Kind, Outgoing
from blocks.report import AskedReport

log = logging.getLogger(__name__)

_QUIET = "app.slack.web.files"
"""The logger of the client that asks for upload URLs: never at DEBUG, where slack_sdk would
log the response (and so the URL)."""
INVITE = "`/invite @Monitoring Hub`"


@dataclass(frozen=True)
class ReportFile:
    """A month's report, ready to upload."""

    content: bytes = field(repr=False)
    filename: str
    """``aryanoble-2026-11.pdf``."""
    title: str
    lines: tuple[str, str]
    """The two lines posted with the file."""

    @property
    def comment(self) -> str:
        return "\n".join(self.lines)


ReportMaker = Callable[[str, str], Awaitable[ReportFile]]
"""(customer id, month ``2026-11``) → the report's PDF and summary. Raises a ``HubError`` when
the report cannot be made (unknown customer, a month before monitoring began)."""


def report_maker(
    build: Callable[[str, Period], Awaitable[Report]],
    render: Callable[[Report], bytes],
    headline: Callable[[Report], tuple[str, str]],
    catalog: Catalog,
    clock: Callable[[], datetime],
) -> ReportMaker:
    """The maker from the report's three parts: gathering (``Reports.build``), the PDF
    (rendered in a worker thread: it is CPU work) and the two summary lines."""

    async def make(customer_id: str, month: str) -> ReportFile:
        customer = catalog.customer(customer_id)
        period = month_of(customer, month, clock())
        report = await build(customer_id, period)
        content = await asyncio.to_thread(render, report)
        return ReportFile(
            content,
            filename=f"{customer_id}-{month}.pdf",
            title=f"{report.customer} monthly report, {period.label}",
            lines=headline(report),
        )

    return make


def report_poster(
    outgoing: Outgoing, poke: Callable[[], None] | None = None
) -> Callable[[ReportDue], Awaitable[bool]]:
    """The scheduler's ``post_report``: queue a report slot's month once per key (False when
    it was queued already), and wake the deliverer when this process has one."""

    async def post(due: ReportDue) -> bool:
        payload = {
            "customer": due.customer_id,
            "month": due.month,
            "schedule": due.schedule,
            "channel": due.channel,
        }
        created = await outgoing.put_once(due.key, Kind.REPORT, payload, channel=due.channel)
        if created and poke is not None:
            poke()
        return created

    return post


# -- the row's upload state --------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """What the row says about its file."""

    file_id: str | None
    """The uploaded file to share next (None: upload one first)."""
    tried: tuple[str, ...]
    """Every file id this row was about to share: what to look for in the channel."""
    title: str
    comment: str

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Upload:
        return cls(
            file_id=payload.get("file_id") or None,
            tried=tuple(str(i) for i in payload.get("file_ids") or ()),
            title=str(payload.get("title") or ""),
            comment=str(payload.get("comment") or ""),
        )

    def with_file(self, file_id: str, made: ReportFile) -> Upload:
        return Upload(file_id, (*self.tried, file_id), made.title, made.comment)

    def without_file(self) -> Upload:
        return Upload(None, self.tried, self.title, self.comment)

    def into(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``payload`` with this state written in."""
        return {
            **payload,
            "file_id": self.file_id,
            "file_ids": list(self.tried),
            "title": self.title,
            "comment": self.comment,
        }


def shows(message: Mapping[str, Any], file_ids: Sequence[str]) -> bool:
    """Whether a message of the channel history carries one of ``file_ids``."""
    files = message.get("files") or ()
    return any(isinstance(f, Mapping) and f.get("id") in file_ids for f in files)


def shared_ts(data: Mapping[str, Any], channel: str | None) -> str | None:
    """The ts of the message that shared the file, when completeUploadExternal's answer says
    it (``files[0].shares.{public,private}[channel][0].ts``); often it does not yet."""
    for file in data.get("files") or ():
        shares = (file or {}).get("shares") or {}
        for kind in ("public", "private"):
            for share in (shares.get(kind) or {}).get(channel or "", ()):
                if share.get("ts"):
                    return str(share["ts"])
    return None


# -- the upload ------------------------------------------------------------------------------


def quiet_client(client: AsyncWebClient) -> AsyncWebClient:
    """A twin of ``client`` (same token, URL, timeout, no retries) whose logger never logs at
    DEBUG: slack_sdk logs a response body there, and getUploadURLExternal's holds the URL."""
    quiet = logging.getLogger(_QUIET)
    quiet.setLevel(logging.INFO)  # slack_sdk tests ``logger.level``, not the effective level
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=dict(client.headers),
        retry_handlers=[],
        logger=quiet,
    )


@dataclass(frozen=True)
class Uploaded:
    """How the POST of the bytes went: ``ok``, or why not (never the URL)."""

    ok: bool
    error: str = ""
    retry_after: float | None = None


async def upload(url: str, content: bytes, client: AsyncWebClient, timeout_s: float) -> Uploaded:
    """POST ``content`` as raw bytes to Slack's upload URL, as slack_sdk does (through the
    ``client``'s proxy and TLS settings; no token: the URL is the credential)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.post(
                url,
                data=content,
                headers={"Content-Type": "application/octet-stream"},
                proxy=client.proxy,
                ssl=client.ssl if client.ssl is not None else True,
            ) as answer,
        ):
            await answer.read()
            if answer.status == 200:
                return Uploaded(True)
            after: float | None = None
            if answer.status == 429:
                after = 1.0
                with contextlib.suppress(TypeError, ValueError):
                    after = max(0.0, float(answer.headers.get("Retry-After") or 1))
            return Uploaded(False, f"upload refused: HTTP {answer.status}", after)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Uploaded(False, f"upload failed: {type(exc).__name__}")


# -- refusals ---------------------------------------------------------------------------------

_AUTH = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked"})
_NO_UPLOADS = frozenset(
    {
        "file_uploads_disabled",
        "file_uploads_except_images_disabled",
        "file_type_not_allowed",
        "file_upload_size_restricted",
    }
)
_NOT_ALLOWED = frozenset(
    {
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "posting_to_channel_denied",
        "ekm_access_denied",
        "access_denied",
        "no_permission",
    }
)
PERMANENT = frozenset(
    {
        "channel_not_found",
        "invalid_channel",
        "not_in_channel",
        "is_archived",
        "channel_is_archived",
        "missing_scope",
        "not_allowed_token_type",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_array_arg",
        "msg_too_long",
        *_AUTH,
        *_NO_UPLOADS,
        *_NOT_ALLOWED,
    }
)
"""What Slack answers a report's calls that trying again will not cure: the row fails (unlike
a card, a bad token fails a report at once: a month's report is worth an operator's look)."""
UNMADE = "report_unavailable"
"""The code of a report that could not be made (the customer is gone, the month is before its
monitoring began)."""


def refusal(error: str, payload: Mapping[str, Any]) -> str:
    """The row's ``last_error`` for a report Slack refused for good (or that could not be
    made): Slack's code, what went wrong, what to do, and how to make it by hand."""
    code = error.split(":", 1)[0].strip() or "unknown"
    channel = payload.get("channel") or "the channel"
    customer = payload.get("customer") or "?"
    month = payload.get("month") or "?"
    if code in ("channel_not_found", "invalid_channel"):
        words = (
            f"the channel {channel} no longer exists or the app can't see it; check the "
            f"schedule's `channel` (or `slack.channel`) in {customer}'s config; a private "
            f"channel needs {INVITE} first"
        )
    elif code == "not_in_channel":
        words = f"the app is not a member of {channel}; invite it with {INVITE}"
    elif code in ("is_archived", "channel_is_archived"):
        words = f"{channel} is archived; unarchive it or point the schedule at another channel"
    elif code in _AUTH or code == "not_allowed_token_type":
        words = (
            "Slack refused the bot token; set SLACK_BOT_TOKEN to the app's Bot User OAuth "
            "Token (xoxb-) and restart the hub"
        )
    elif code == "missing_scope":
        words = "the app lacks the files:write scope; add it (manifest.yml) and reinstall the app"
    elif code in _NO_UPLOADS:
        words = "the workspace does not let the app upload this file; ask a Slack admin to allow it"
    elif code in _NOT_ALLOWED:
        words = f"the workspace does not let the app post in {channel}; ask a Slack admin"
    elif code == UNMADE:
        words = f"the report could not be made ({error.split(':', 1)[-1].strip()})"
    else:
        words = f"Slack refused the report ({code})"
    by_hand = (
        f"the {month} report was not posted; once fixed, `mhub report {customer} --month {month} "
        "--pdf report.pdf` makes it to post by hand"
    )
    return f"{code}: {words} — {by_hand}"


def asked_report(report: Report) -> AskedReport:
    """What ``/monitor report`` and a report link's unfurl show of a report (in words)."""
    return AskedReport(
        customer_id=report.customer_id,
        month=report.period.month or f"{report.period.first:%Y-%m}",
        label=report.period.label,
        timezone=report.timezone,
        headline=headline(report),
        began=when(report.began) if report.began else None,
        notes=report.notes,
    )
