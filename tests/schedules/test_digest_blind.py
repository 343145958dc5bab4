"""Blind spots at the top of the digest, through scheduled runs on each database: an account
whose role cannot be assumed is listed first ("🕳️ Not checked: …") from its second look,
keeps the digest from reading OK, and is gone once it looks again."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.db import Database
from app.engine.answers import held
from app.engine.blind import BlindSpot
from app.engine.maintenance import Window
from blocks.digest import digest_message
from tests.fakeslack.validate import message_problems
from tests.notify.test_alerts_channel import Estate as Broken
from tests.schedules import test_digest_blocks as blocks_test
from tests.schedules.support import SEVEN_WIB, Clock
from tests.schedules.test_digests import digests, replica, sections


async def test_a_blind_spot_tops_the_digest_from_its_second_look_until_it_looks_again(
    db: Database,
) -> None:
    estate = Broken()
    estate.broken.add("cargo")
    clock = Clock(SEVEN_WIB - timedelta(days=2))
    async with replica(db, estate, clock) as hub:
        await hub.fire()
        clock.advance(days=1)
        await hub.fire()
        clock.advance(days=1)
        estate.broken.clear()
        await hub.fire()
    once, twice, seeing = [sections(row) for row in await digests(db)]
    assert not any("Not checked" in text for text in once)  # one failed look: not yet
    title, blind, overall = twice[:3]
    assert title.startswith("☀️ *Aryanoble — daily digest*")
    assert blind.startswith("🕳️ *Not checked:* cargo · http since ")
    assert blind.endswith(
        "— AccessDenied on sts:AssumeRole: the role cannot be assumed; its trust policy must "
        "allow the hub"
    )
    assert overall == "⚠️ *Error* — 🕳️ 1 not checked · ⚠️ 1 could not check · ✅ 2 OK · 3 accounts"
    assert not any("Not checked" in text for text in seeing)
    assert seeing[1].startswith("✅ *OK*")


def spot(account: str, since: datetime) -> BlindSpot:
    why = "AccessDeniedException on backup:ListBackupJobs; the role needs backup:ListBackupJobs"
    return BlindSpot("aryanoble", account, "backup", None, since, 2, "access", "", None, why)


def test_the_digest_of_a_fine_run_does_not_read_ok_while_something_is_not_checked() -> None:
    fine = [r for r in blocks_test.estate() if r.severity == "ok"]
    since = blocks_test.SEVEN_WIB - timedelta(days=2)
    spots = [spot(f"acct-{i}", since + timedelta(minutes=i)) for i in range(7)]
    msg = digest_message(
        blocks_test.view(fine, outcome="ok"), customer_name="Aryanoble", schedule="daily",
        tz=blocks_test.WIB, previous=None, now=blocks_test.NOW, blind=spots,
    )  # fmt: skip
    assert message_problems(msg) == []
    title, blind, overall = blocks_test.sections(msg)[:3]
    assert title.startswith("☀️ *Aryanoble — daily digest*")
    lines = blind.splitlines()
    assert lines[0] == (
        "🕳️ *Not checked:* acct-0 · backup since Thu 19 Nov 07:00 WIB — AccessDeniedException "
        "on backup:ListBackupJobs; the role needs backup:ListBackupJobs"
    )
    assert [line.split(" · ")[0] for line in lines[1:4]] == [
        "🕳️ *Not checked:* acct-1",
        "🕳️ *Not checked:* acct-2",
        "🕳️ *Not checked:* acct-3",
    ]
    assert lines[4:] == ["🕳️ … and 3 more not checked"]
    assert overall.startswith("🕳️ *Not all checked* — 🕳️ 7 not checked · ✅ 28 OK")
    assert msg["text"].endswith("· 🕳️ 7 not checked · ✅ 28 OK · 10 accounts")


def test_a_digest_says_which_maintenance_windows_were_open_and_folds_their_findings() -> None:
    opened = blocks_test.SEVEN_WIB - timedelta(hours=5)  # Sat 02:00 WIB
    window = Window(
        "RDS upgrades", ("arbel",), ("rds",), opened, opened + timedelta(hours=2),
        "Weekly engine patching",
    )  # fmt: skip
    rule = held(
        Window("RDS upgrades", ("arbel",), ("rds",), opened, blocks_test.NOW + timedelta(hours=1),
               "Weekly engine patching", "U0ALICE", "slack", 7)
    )  # fmt: skip
    found = blocks_test.kept([blocks_test.row(blocks_test.HOT_DB, "crit", 1)], [rule])
    msg = digest_message(
        blocks_test.view(blocks_test.estate(), outcome="crit"), customer_name="Aryanoble",
        schedule="daily", tz=blocks_test.WIB, previous=None, now=blocks_test.NOW,
        standings=found, windows=[window],
    )  # fmt: skip
    assert message_problems(msg) == []
    text = blocks_test.sections(msg)
    assert text[1].startswith("🔴 *Critical* — ") and "🛠️ 1 during maintenance" in text[1]
    assert "🛠️ 1 during maintenance" in text  # the folded line
    assert (
        "During maintenance: 🛠️ *RDS upgrades* · arbel · rds · 02:00 – 04:00 WIB (2h) — "
        "Weekly engine patching"
    ) in text
    assert not any("arbel-prod-db" in s for s in text[2:-3])  # not on the problem list
