"""The answer modal (snooze or mute a finding, with a reason) and the confirmations after an
answer. Pure builders."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from app.config import MAX_REASON
from blocks import text as t
from blocks.findings import clock, until_text
from blocks.ids import CallbackId
from blocks.marks import STANDING_MARK

MAX_CHOICES = 10
"""Findings offered as checkboxes (Slack's limit); beyond that the answer covers them all."""

WHICH = "answer_which"
LENGTH = "answer_for"
UNTIL = "answer_until"
SCOPE = "answer_scope"
REASON = "answer_reason"
LENGTHS = (
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("resolved", "Until it resolves"),
)
SCOPES = (
    ("resource", "Only this resource"),
    ("account", "Every resource of this check in this account"),
    ("customer", "Every resource of this check in every account"),
)


@dataclass(frozen=True)
class Choice:
    """A finding offered in the modal: its id and how it reads."""

    finding_id: int
    label: str


def modal(
    verb: str, choices: Sequence[Choice], where: str, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """The snooze or mute modal for the ``choices`` of one line (``where``: ``arbel · RDS``)."""
    title = "Snooze" if verb == "snooze" else "Mute"
    names = ", ".join(c.label for c in choices[:MAX_CHOICES])
    more = f" and {len(choices) - MAX_CHOICES} more" if len(choices) > MAX_CHOICES else ""
    blocks: list[dict[str, Any]] = [
        t.section(
            t.truncate(f"*{t.escape(where)}* — {t.escape(names)}{more}", t.SECTION_TEXT),
            "answer_what",
        )
    ]
    if 1 < len(choices) <= MAX_CHOICES:
        options = [_option(str(c.finding_id), c.label) for c in choices]
        blocks.append(
            _input(
                WHICH,
                "Which",
                {"type": "checkboxes", "action_id": WHICH, "options": options,
                 "initial_options": options},
            )
        )  # fmt: skip
    if verb == "snooze":
        lengths = [_option(value, label) for value, label in LENGTHS]
        blocks.append(
            _input(
                LENGTH,
                "For",
                {"type": "static_select", "action_id": LENGTH, "options": lengths,
                 "initial_option": lengths[1]},
            )
        )  # fmt: skip
        blocks.append(
            _input(
                UNTIL,
                "Or until (the customer's time zone)",
                {"type": "datetimepicker", "action_id": UNTIL},
                optional=True,
            )
        )
    else:
        scopes = [_option(value, label) for value, label in SCOPES]
        blocks.append(
            _input(
                SCOPE,
                "Mute",
                {"type": "radio_buttons", "action_id": SCOPE, "options": scopes,
                 "initial_option": scopes[0]},
            )
        )  # fmt: skip
        blocks.append(
            _input(
                UNTIL,
                "Until (optional; the end of that day)",
                {"type": "datepicker", "action_id": UNTIL},
                optional=True,
            )
        )
    blocks.append(
        _input(
            REASON,
            "Reason",
            {
                "type": "plain_text_input",
                "action_id": REASON,
                "multiline": True,
                "max_length": MAX_REASON,
                "placeholder": t.plain("Why is it quiet? Whoever reads it later will ask.", 150),
            },
        )
    )
    return {
        "type": "modal",
        "callback_id": CallbackId.ANSWER_MODAL,
        "title": t.plain(title, 24),
        "submit": t.plain(title, 24),
        "close": t.plain("Cancel", 24),
        "private_metadata": json.dumps(metadata)[:3000],
        "blocks": blocks,
    }


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": t.plain(label, 2000),
        "element": element,
    }
    if optional:
        block["optional"] = True
    return block


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": t.plain(label, 75), "value": value[:150]}


# -- confirmations ----------------------------------------------------------------------------


def done(
    verb: str,
    names: Sequence[str],
    by: str,
    *,
    until: datetime | None = None,
    reason: str | None = None,
    tz: tzinfo,
    now: datetime,
) -> str:
    """``👀 You acknowledged `arbel-db`.`` and the like (one line, ephemeral)."""
    what = ", ".join(f"`{t.escape(n)}`" for n in names[:5]) + (
        f" and {len(names) - 5} more" if len(names) > 5 else ""
    )
    if verb == "ack":
        return (
            f"{STANDING_MARK['acknowledged']} You acknowledged {what}: {t.user(by)} shows beside "
            "it until it resolves."
        )
    if verb == "snooze":
        return (
            f"{STANDING_MARK['snoozed']} Snoozed {what} {until_text(until, tz, now)}: "
            f"“{t.escape(reason or '')}”. It comes back by itself, or at once if it gets worse."
        )
    if verb == "unsnooze":
        return f"Unsnoozed {what}: back on the problem list."
    return f"{STANDING_MARK['muted']} Muted {what}: “{t.escape(reason or '')}”."


def answered_first(
    rows: Sequence[tuple[str, str, str | None, datetime | None]], tz: tzinfo, now: datetime
) -> str:
    """``Already snoozed by @bob at 10:02 WIB: `arbel-db`.`` for answers someone gave first
    (rows: name, state, by, at)."""
    lines = []
    for name, state, by, at in rows[:5]:
        who = f" by {t.user(by)}" if by else ""
        when = f" at {clock(at, tz, now)}" if at else ""
        lines.append(f"Already {state}{who}{when}: `{t.escape(name)}`.")
    if len(rows) > 5:
        lines.append(f"… and {len(rows) - 5} more answered before you.")
    return "\n".join(lines)


def notice(problems: Sequence[str]) -> dict[str, Any]:
    """What a submission turns into when its problems concern no field of the view (a stale or
    forged view): the problems, and no submit button."""
    text = "\n".join(t.escape(p) for p in problems) + "\nClose this and choose from the menu again."
    return {
        "type": "modal",
        "callback_id": CallbackId.ANSWER_MODAL,
        "title": t.plain("Answer", 24),
        "close": t.plain("Close", 24),
        "blocks": [t.section(t.truncate(text, t.SECTION_TEXT), "answer_notice")],
    }
