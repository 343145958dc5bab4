"""A message Slack refused for good, in plain words: what went wrong and what to do about it,
the timeline line that says so (on ``/monitor status``, in ``mhub status``, on the web run
page), and the notice to the person who asked for the run.

Pure. The deliverer (:mod:`app.slack.deliverer`) explains a failure once, when it gives up on
the message, and keeps the words in the run's ``delivery_failed`` event (``what``, ``channel``,
``error``, ``reason``, ``fix``, ``ref``, ``told``); every surface renders that event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from app.engine.events import Event
from blocks import text as t
from blocks.ids import COMMAND, BlockId

INVITE = "`/invite @Monitoring Hub`"
MARK = "⚠️"
"""The error mark of the shared vocabulary: something could not be done."""

_LAYOUT = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "no_text",
        "too_many_attachments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "invalid_arguments",
        "invalid_arg_name",
    }
)
_ARCHIVED = frozenset({"is_archived", "channel_is_archived"})
_RESTRICTED = frozenset(
    {
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
    }
)
_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_GAVE_UP = "gave up after "
_THINGS = {
    "card": "card",
    "digest": "digest",
    "notice": "notice",
    "response": "reply",
    "report": "report",
}


@dataclass(frozen=True)
class Explained:
    reason: str
    """What went wrong, in plain words (no full stop)."""
    fix: str
    """What to do about it (no full stop)."""


class TimelineEvent(Protocol):
    """What the renderers read of a run event (``app.models.RunEvent``)."""

    @property
    def type(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...


def thing(what: str) -> str:
    """``card`` for ``card post`` and ``card update``, ``reply`` for a response row."""
    head = what.split(" ", 1)[0]
    return _THINGS.get(head, head or "message")


def error_code(error: str) -> str:
    """Slack's code in a stored failure: ``gave up after 24 h: ratelimited`` → ``ratelimited``,
    ``response_url refused: 404 …`` → ``response_url refused``."""
    if error.startswith(_GAVE_UP):
        return error.rsplit(": ", 1)[-1].strip() or error
    return error.split(":", 1)[0].strip() or "unknown"


def explain(error: str, *, what: str, ref: str, run_id: int | None = None) -> Explained:
    """Why Slack refused ``what`` (``card post``, ``card update``, ``digest``, ``notice``) for
    good, and what to do. ``ref`` names the failure in the hub's log (the outbox key)."""
    name = thing(what)
    code = error_code(error)
    status = f"`{COMMAND} status {run_id}`" if run_id is not None else "the web view"
    if error.startswith(_GAVE_UP):
        return Explained(
            f"Slack did not take the {name} for {error.removeprefix(_GAVE_UP).split(':', 1)[0]} "
            f"(its last answer: {code})",
            "check the hub's Slack token and connection (`/readyz`, the log); "
            "the run itself is not affected",
        )
    if name == "report":  # its stored error already says what and what to do (app/slack/reports.py)
        reason, _, fix = error.split(":", 1)[-1].strip().partition(" — ")
        return Explained(reason, fix or f"the hub's log has it under `{ref}`")
    if name == "notice":
        return Explained(
            f"Slack would not deliver the DM to the person who asked for the run ({code})",
            f"nothing else to send: {status} shows the run and this failure",
        )
    if code == "channel_not_found":
        where = (
            "the schedule's `channel` (or `slack.channel`)"
            if name == "digest"
            else "`slack.channel`"
        )
        return Explained(
            "the channel no longer exists or the app can't see it",
            f"check {where} in the customer's config; a private channel needs {INVITE} first",
        )
    if code == "not_in_channel":
        return Explained(
            "the app is not a member of the channel",
            f"invite the app to the channel with {INVITE}, then retry the run",
        )
    if code in _ARCHIVED:
        return Explained(
            "the channel is archived",
            "unarchive it, or point `slack.channel` in the customer's config at another channel",
        )
    if code in _RESTRICTED:
        return Explained(
            "the workspace does not let the app post in this channel",
            "ask a Slack admin to allow it, or use another channel",
        )
    if code in _GONE:
        return Explained(
            f"the posted {name} can no longer be updated (deleted, or too old to edit)",
            f"the run itself is not affected: {status} shows its latest state",
        )
    if code == "msg_too_long" or code in _LAYOUT:
        problem = (
            "is too long for Slack" if code == "msg_too_long" else "has a layout Slack refused"
        )
        return Explained(
            f"the {name} {problem} ({code})",
            f"this is a bug in Monitoring Hub: report it with ref `{ref}`; "
            f"the run itself is not affected ({status} shows it)",
        )
    if code == "response_url refused":
        return Explained(
            "the reply link Slack gave with the command had expired",
            f"nothing to fix: {status} shows the run",
        )
    return Explained(f"Slack refused the {name} ({code})", f"the hub's log has it under `{ref}`")


E = TypeVar("E", bound=TimelineEvent)


def failures(events: Iterable[E]) -> list[E]:
    """The ``delivery_failed`` events of a timeline, in its order."""
    return [e for e in events if e.type == Event.DELIVERY_FAILED]


def timeline_text(data: Mapping[str, Any]) -> str:
    """``Delivery failed · card post to C0OPS · channel_not_found — the channel no longer exists
    or the app can't see it: check `slack.channel` in the customer's config; …``"""
    what = str(data.get("what") or "message")
    channel = data.get("channel")
    where = f"{what} to {channel}" if channel else what
    code = error_code(str(data.get("error") or "unknown"))
    words = ": ".join(str(data[k]) for k in ("reason", "fix") if data.get(k))
    return f"Delivery failed · {where} · {code}" + (f" — {words}" if words else "")


def notice(run_id: int, data: Mapping[str, Any], web_url: str | None = None) -> dict[str, Any]:
    """To the person who asked for run ``run_id``: its card could not be posted (or updated),
    where, why, what to do, and where to see the run instead. A whole message, ephemeral when
    it goes through a command's response_url, a DM otherwise."""
    verb = "update" if data.get("what") == "card update" else "post"
    channel = data.get("channel")
    where = f" in <#{t.escape(channel)}>" if channel else ""
    reason = t.escape(data.get("reason") or "Slack refused it")
    fix = t.escape(data.get("fix") or "")
    lines = [f"{MARK} I couldn't {verb} the result card of run *#{run_id}*{where}: {reason}."]
    if fix:
        lines.append(f"{fix[:1].upper()}{fix[1:]}.")
    see = f"The run went ahead: `{COMMAND} status {run_id}` shows its results"
    lines.append(see + (f", or <{web_url}|open it in the browser>." if web_url else "."))
    body = "\n".join(lines)
    return {
        "response_type": "ephemeral",
        "text": t.fallback(body),
        "blocks": [t.section(body, BlockId.TEXT)],
    }
