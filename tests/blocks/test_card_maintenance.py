"""A card run during a maintenance window: its findings in the window are folded as "during
maintenance" and do not make the card critical, and the card says which window was open."""

from __future__ import annotations

from datetime import timedelta

from app.engine.answers import held, standing
from app.engine.findings import lines_of
from app.engine.maintenance import Window
from app.models import Finding
from blocks.card import run_card
from tests.blocks.support import HOT_DB, NOW, WIB, run, view
from tests.fakeslack.validate import all_text, message_problems

WINDOW = Window(
    "RDS upgrades", ("arbel",), ("rds",), NOW - timedelta(hours=1), NOW + timedelta(hours=1),
    "Weekly engine patching", "U0ALICE", "slack", 9,
)  # fmt: skip


def finding(fingerprint: str, severity: str) -> Finding:
    return Finding(
        id=1, customer_id="aryanoble", fingerprint=fingerprint, account="arbel",
        region="ap-southeast-3", check="rds", resource="x", severity=severity, summary="",
        status="open", first_seen_at=NOW - timedelta(hours=2), last_seen_at=NOW,
        resolved_at=None, returns=0, history="11", answers=0, ack_by=None, ack_at=None,
        snooze_by=None, snooze_at=None, snooze_until=None, snooze_reason=None,
        snooze_severity=None,
    )  # fmt: skip


def test_a_card_folds_findings_in_a_window_and_names_the_window() -> None:
    lines = lines_of(HOT_DB.check, HOT_DB.account, HOT_DB.severity, HOT_DB.summary, HOT_DB.details)
    rules = [held(WINDOW)]
    standings = {}
    for line in lines:
        found = finding(line.fingerprint, line.severity)
        standings[line.fingerprint] = (found, standing(found, rules, NOW))
    the_view = view(run("completed", [("arbel", "rds")], outcome="crit"), HOT_DB)
    message = run_card(
        the_view, customer_name="Aryanoble", tz=WIB, now=NOW, standings=standings,
        windows=[WINDOW],
    )  # fmt: skip
    assert message_problems(message) == []
    text = all_text(message)
    assert "🔴" not in message["blocks"][0]["text"]["text"]  # the title is not critical
    assert "🛠️ 2 during maintenance" in text
    assert (
        "During maintenance: 🛠️ *RDS upgrades* · arbel · rds · 06:05 – 08:05 WIB (2h) — "
        "Weekly engine patching"
    ) in text
    plain = run_card(the_view, customer_name="Aryanoble", tz=WIB, now=NOW)
    assert "During maintenance" not in all_text(plain)
    assert "🔴" in plain["blocks"][0]["text"]["text"]
