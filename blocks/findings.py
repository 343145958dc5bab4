"""A finding beside its line, on every Slack surface: its age, what changed, who answered it,
and the ``⋯`` menu that answers it.

``open 9 d · 🆕 new`` · ``↩️ came back`` · ``🔁 flapping`` · ``👀 @alice 10:02`` ·
``💤 until Mon 09:00 WIB by @bob`` · ``🔕 muted by @carol: scratch databases run hot`` ·
``⏰ snooze ended`` / ``⬆️ got worse while snoozed``.

The menu's options (``Acknowledge``, ``Snooze …``, ``Mute …``, and ``Open in AWS console``
when the customer has console links) carry ``verb:target``: the target is ``r<result id>``
for a card or digest row (its problem lines) or ``f<finding id>`` for one finding. The value
is never trusted: the listener loads the target and checks access (``app/slack/answering.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from blocks import text as t
from blocks.ids import ActionId
from blocks.marks import CHANGE_MARK, CHANGE_WORD, STANDING_MARK, clock, duration

if TYPE_CHECKING:
    from app.engine.answers import Standing
    from app.models import Finding

Standings = Mapping[str, "tuple[Finding, Standing]"]
"""Findings by fingerprint, with what each is now (``Answers.standings``)."""

VERBS = ("ack", "snooze", "mute", "unsnooze")
BACK_MARK = {"snooze ended": "⏰", "got worse": "⬆️"}
BACK_WORD = {"snooze ended": "snooze ended", "got worse": "got worse while snoozed"}


def target(kind: str, ident: int) -> str:
    """``r123`` (a result's problem lines) or ``f45`` (one finding)."""
    return f"{kind}{ident}"


def menu(what: str, console_url: str | None = None) -> dict[str, Any]:
    """The ``⋯`` overflow menu of a problem line (``what`` from :func:`target`)."""
    options = [
        _option("Acknowledge", f"ack:{what}"),
        _option("Snooze …", f"snooze:{what}"),
        _option("Mute …", f"mute:{what}"),
    ]
    if console_url:
        option = _option("Open in AWS console", f"console:{what}")
        option["url"] = console_url[:3000]
        options.append(option)
    return {"type": "overflow", "action_id": ActionId.ANSWER, "options": options}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": t.plain(label, 75), "value": value[:150]}


def parse(value: str) -> tuple[str, str, int] | None:
    """``ack:r123`` → (``ack``, ``r``, 123); None for anything else (a forged or old value)."""
    verb, _, rest = value.partition(":")
    kind, number = rest[:1], rest[1:]
    if verb not in (*VERBS, "console") or kind not in ("r", "f"):
        return None
    if not number.isdigit() or len(number) > 15:
        return None
    return verb, kind, int(number)


def age(found: Finding, now: datetime) -> str:
    """``open 9 d`` (since first seen)."""
    return f"open {duration((now - found.first_seen_at).total_seconds(), precise=False)}"


def change_note(change: str | None) -> str:
    """``🆕 new``, ``↩️ came back``, ``🔁 flapping``, or ""."""
    return f"{CHANGE_MARK[change]} {CHANGE_WORD[change]}" if change in CHANGE_MARK else ""


def answer_note(standing: Standing | None, tz: tzinfo, now: datetime) -> str:
    """Who answered, beside the line: ``👀 @alice 10:02 WIB``, ``💤 until Mon 09:00 WIB by
    @bob``, ``🔕 muted (YAML): reason``, ``⏰ snooze ended``; "" when nobody did."""
    if standing is None:
        return ""
    parts = []
    if standing.back:
        parts.append(f"{BACK_MARK[standing.back]} {BACK_WORD[standing.back]}")
    if standing.state == "snoozed":
        parts.append(
            f"{STANDING_MARK['snoozed']} {until_text(standing.until, tz, now)}{_by(standing.by)}"
        )
    elif standing.state == "muted":
        origin = " (YAML)" if standing.rule and standing.rule.origin == "yaml" else ""
        parts.append(f"{STANDING_MARK['muted']} muted{origin}{_by(standing.by)}")
    elif standing.state == "maintenance":
        parts.append(f"{STANDING_MARK['maintenance']} {during(standing, tz, now)}")
    if standing.ack_by:
        parts.append(f"{STANDING_MARK['acknowledged']} {t.user(standing.ack_by)}")
    return " · ".join(parts)


def during(standing: Standing, tz: tzinfo, now: datetime) -> str:
    """``during maintenance (RDS upgrades) until 04:00 WIB``."""
    name = getattr(standing.rule, "name", "")
    named = f" ({t.escape(name)})" if name else ""
    return f"during maintenance{named} {until_text(standing.until, tz, now)}"


def until_text(until: datetime | None, tz: tzinfo, now: datetime) -> str:
    """``until Mon 09:00 WIB`` or ``until it resolves``."""
    return f"until {clock(until, tz, now)}" if until else "until it resolves"


def folded(standings: Iterable[Standing], tz: tzinfo, now: datetime) -> str:
    """``💤 2 snoozed — until Mon 09:00 WIB by @alice · 🔕 3 muted``: the quiet lines of a
    card or digest, counted (the soonest snooze end, and who, when they are all one person's)."""
    standings = list(standings)
    snoozed = [s for s in standings if s.state == "snoozed"]
    muted = [s for s in standings if s.state == "muted"]
    held = [s for s in standings if s.state == "maintenance"]
    parts = []
    if snoozed:
        ends = [s.until for s in snoozed if s.until]
        soonest = min(ends) if ends else None
        people = {s.by for s in snoozed if s.by}
        who = _by(next(iter(people))) if len(people) == 1 else ""
        parts.append(
            f"{STANDING_MARK['snoozed']} {len(snoozed)} snoozed — "
            f"{until_text(soonest, tz, now)}{who}"
        )
    if muted:
        parts.append(f"{STANDING_MARK['muted']} {len(muted)} muted")
    if held:
        parts.append(f"{STANDING_MARK['maintenance']} {len(held)} during maintenance")
    return " · ".join(parts)


def notes(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def _by(who: str | None) -> str:
    return f" by {t.user(who)}" if who else ""
