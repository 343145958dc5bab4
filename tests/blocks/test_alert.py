"""The alerts channel's messages: the first one shows the finding as it is now (with the answer
menu while there is something to answer), and each reply says in one line what changed — in
the customer's time zone, inert to mentions in summaries, and within Slack's limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.config import Customer
from app.engine.answers import Standing
from app.models import Finding
from blocks import alert
from tests.blocks.support import NOW, WIB
from tests.fakeslack import validate
from tests.schedules.support import customer

ARYANOBLE: Customer = customer()


def finding(**fields: Any) -> Finding:
    values: dict[str, Any] = {
        "id": 45,
        "customer_id": "aryanoble",
        "fingerprint": "http:arbel:api",
        "account": "arbel",
        "region": "ap-southeast-3",
        "check": "http",
        "resource": "api",
        "severity": "crit",
        "summary": "api answered 503 <!channel>",
        "status": "open",
        "first_seen_at": NOW - timedelta(hours=2),
        "last_seen_at": NOW,
        "resolved_at": None,
        "returns": 0,
        "answers": 0,
    }
    values.update(fields)
    return Finding(**values)


def test_the_first_message_shows_the_finding_now_with_its_menu() -> None:
    acked = Standing("acknowledged", "U0ALICE", ack_by="U0ALICE")
    message = alert.first(ARYANOBLE, finding(), acked, WIB, NOW)
    assert validate.message_problems(message) == []
    head, state = message["blocks"]
    assert head["text"]["text"].startswith("🔴 *Critical* · Aryanoble · arbel · http\n")
    assert "&lt;!channel&gt;" in head["text"]["text"]  # a summary never pings a channel
    assert head["accessory"]["options"][0]["value"] == "ack:f45"
    assert state["elements"][0]["text"] == (
        "ap-southeast-3 · first seen 05:05 WIB · now: 👀 <@U0ALICE>"
    )


def test_the_first_message_of_a_resolved_finding_has_nothing_to_answer() -> None:
    found = finding(status="resolved", resolved_at=NOW)
    message = alert.first(ARYANOBLE, found, Standing("resolved"), WIB, NOW)
    head, state = message["blocks"]
    assert head["text"]["text"].startswith("✅ *Resolved* · Aryanoble")
    assert "accessory" not in head
    assert state["elements"][0]["text"].endswith("now: ✅ resolved 07:05 WIB")


SNOOZED = Standing("snoozed", "U0BOB", NOW, "vendor ticket", NOW + timedelta(days=2))


@pytest.mark.parametrize(
    ("told", "news", "now_is", "fields", "line"),
    [
        ("crit:open", "crit:acknowledged", Standing("acknowledged", "U0ALICE"), {},
         "👀 *Acknowledged* by <@U0ALICE>"),
        ("crit:open", "crit:snoozed", SNOOZED, {},
         "💤 *Snoozed* until Mon 23 Nov 07:05 WIB by <@U0BOB> — vendor ticket"),
        ("crit:snoozed", "crit:open", Standing("open", back="snooze ended"), {},
         "⏰ *Snooze ended*; still critical"),
        ("crit:open", "warn:open", Standing("open"), {"severity": "warn"},
         "🟠 *Better: now a warning* — api answered 503 &lt;!channel&gt;"),
        ("warn:open", "crit:open", Standing("open"), {},
         "🔴 *Worse: critical again* — api answered 503 &lt;!channel&gt;"),
        ("crit:open", "muted", Standing("muted", "U0CAROL", reason="scratch"), {},
         "🔕 *Muted* by <@U0CAROL> — scratch"),
        ("crit:acknowledged", "resolved", Standing("resolved"),
         {"status": "resolved", "resolved_at": NOW}, "✅ *Resolved* 07:05 WIB (open 2 h)"),
    ],
)  # fmt: skip
def test_a_reply_says_in_one_line_what_changed(
    told: str, news: str, now_is: Standing, fields: dict[str, Any], line: str
) -> None:
    message = alert.reply(finding(**fields), now_is, told, news, WIB, NOW)
    assert validate.message_problems(message) == []
    assert message["blocks"][0]["text"]["text"] == line
