"""A finding's thread in a customer's alerts channel (``routing.alerts_channel``): the first
message, edited to show what the finding is now, and the replies that say what changed.

First message::

    🔴 Critical · Aryanoble · arbel · rds                                      [ ⋯ ]
    `arbel-prod-db` CPU max 93 % (threshold 90 %)
    ap-southeast-3 · first seen 03:12 WIB · now: 👀 @alice

A blind spot's thread: ``🕳️ Not checked · Aryanoble · arbel · backup`` with since when and
why, and ``✅ Checked again 09:00 WIB`` when it looks again.

Replies: ``👀 Acknowledged by @alice``, ``💤 Snoozed until Mon 09:00 WIB by @bob — resize
scheduled``, ``⏰ Snooze ended; still critical``, ``🟠 Better: now a warning — …``,
``🔴 Worse: critical again — …``, ``🔕 Muted by @carol — …``, ``✅ Resolved 04:40 WIB (open
1 h 28 min)``.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from blocks import findings as answered
from blocks import text as t
from blocks.marks import BLIND_MARK, SEVERITY_MARK, SEVERITY_WORD, STANDING_MARK, clock, duration

if TYPE_CHECKING:
    from app.config import Customer
    from app.engine.answers import Standing
    from app.engine.blind import BlindSpot
    from app.models import Finding, Sight


def first(
    customer: Customer,
    found: Finding,
    now_is: Standing,
    tz: tzinfo,
    now: datetime,
    console_url: str | None = None,
) -> dict[str, Any]:
    """The thread's first message: the finding as it is now, with the answer menu while it
    is open."""
    resolved = found.status == "resolved"
    mark = SEVERITY_MARK["ok"] if resolved else SEVERITY_MARK.get(found.severity, "❔")
    word = "Resolved" if resolved else SEVERITY_WORD.get(found.severity, found.severity)
    where = " · ".join(t.escape(p) for p in (customer.name, found.account, found.check))
    head = f"{mark} *{word}* · {where}\n{t.escape(found.summary)}"
    block = t.section(head, "alert_finding")
    if not resolved and now_is.state != "muted":
        block["accessory"] = answered.menu(answered.target("f", found.id), console_url)
    details = [
        t.escape(found.region),
        f"first seen {clock(found.first_seen_at, tz, now)}",
        f"now: {state(found, now_is, tz, now)}",
    ]
    text = f"{mark} {word} · {where}: {t.escape(found.summary)}"
    return {
        "text": t.fallback(text),
        "blocks": [block, t.context([" · ".join(details)], "alert_state")],
    }


def state(found: Finding, now_is: Standing, tz: tzinfo, now: datetime) -> str:
    """What the finding is now, in a few words: ``open 2 h``, ``👀 @alice``, ``💤 until Mon
    09:00 WIB by @bob``, ``🔕 muted by @carol``, ``✅ resolved 04:40 WIB``."""
    if found.status == "resolved":
        return f"{SEVERITY_MARK['ok']} resolved {clock(found.resolved_at, tz, now)}".rstrip()
    note = answered.answer_note(now_is, tz, now)
    return note or answered.age(found, now)


def reply(
    found: Finding, now_is: Standing, told: str, news: str, tz: tzinfo, now: datetime
) -> dict[str, Any]:
    """The reply that says what changed: the thread said ``told``, the finding is ``news``
    now (both as :func:`app.engine.alerts.says` words them)."""
    line = change(found, now_is, told, news, tz, now)
    return {"text": t.fallback(line), "blocks": [t.section(line, "alert_change")]}


def change(
    found: Finding, now_is: Standing, told: str, news: str, tz: tzinfo, now: datetime
) -> str:
    """One line: what happened between ``told`` and ``news``."""
    summary = t.escape(found.summary)
    if news == "resolved":
        lasted = duration((now - found.first_seen_at).total_seconds(), precise=False)
        when = clock(found.resolved_at, tz, now)
        return f"{SEVERITY_MARK['ok']} *Resolved* {when} (open {lasted})"
    if news == "muted":
        reason = f" — {t.escape(now_is.reason)}" if now_is.reason else ""
        return f"{STANDING_MARK['muted']} *Muted*{_by(now_is.by)}{reason}"
    severity, _, state_now = news.partition(":")
    was_severity, _, was_state = told.partition(":")
    if was_severity in ("crit", "warn") and severity != was_severity:
        if severity == "crit":
            return f"{SEVERITY_MARK['crit']} *Worse: critical again* — {summary}"
        return f"{SEVERITY_MARK.get(severity, '❔')} *Better: now a warning* — {summary}"
    if state_now == "acknowledged":
        return f"{STANDING_MARK['acknowledged']} *Acknowledged*{_by(now_is.by)}"
    if state_now == "snoozed":
        until = answered.until_text(now_is.until, tz, now)
        reason = f" — {t.escape(now_is.reason)}" if now_is.reason else ""
        return f"{STANDING_MARK['snoozed']} *Snoozed* {until}{_by(now_is.by)}{reason}"
    if state_now == "maintenance":
        words = answered.during(now_is, tz, now)
        return f"{STANDING_MARK['maintenance']} *{words[0].upper()}{words[1:]}*"
    word = SEVERITY_WORD.get(severity, severity).lower()
    if was_state == "maintenance":
        return f"{STANDING_MARK['maintenance']} *Maintenance ended*; still {word}"
    if was_state == "snoozed":
        back = answered.BACK_MARK.get(now_is.back or "", "⏰")
        return f"{back} *Snooze ended*; still {word}"
    if told == "muted":
        return f"{SEVERITY_MARK.get(severity, '❔')} *No longer muted*; still {word}"
    return f"{SEVERITY_MARK.get(severity, '❔')} *Open again*; {word}"


def _by(who: str | None) -> str:
    return f" by {t.user(who)}" if who else ""


def blind_first(
    customer: Customer, sight: Sight, spot: BlindSpot | None, tz: tzinfo, now: datetime
) -> dict[str, Any]:
    """A blind spot's first message: since when and why it cannot look (``spot``), or that it
    looks again (``spot`` None)."""
    where = " · ".join(t.escape(p) for p in (customer.name, sight.account, sight.check))
    if spot is not None:
        head = f"{BLIND_MARK} *Not checked* · {where}"
        said = f"since {clock(spot.since, tz, now)} — {t.escape(spot.why)}"
        looks = "look" if spot.failed == 1 else "looks"
        state = f"{spot.failed} {looks} in a row could not look · last tried " + clock(
            sight.looked_at, tz, now
        )
    else:
        head = f"{SEVERITY_MARK['ok']} *Checked again* · {where}"
        said = f"looked {clock(sight.looked_at, tz, now)}"
        state = "it looks again; nothing more to do"
    return {
        "text": t.fallback(f"{head}: {said}"),
        "blocks": [t.section(f"{head}\n{said}", "alert_blind"), t.context([state], "alert_state")],
    }


def blind_reply(sight: Sight, tz: tzinfo, now: datetime) -> dict[str, Any]:
    """The reply when a blind spot looks again."""
    line = f"{SEVERITY_MARK['ok']} *Checked again* {clock(sight.looked_at, tz, now)}"
    return {"text": t.fallback(line), "blocks": [t.section(line, "alert_change")]}
