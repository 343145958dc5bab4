"""The App Home runboard through the real Bolt app and the fake Slack, on each database."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from app.db import Database
from app.models import Finding, Run, RunStatus
from blocks.ids import ActionId, BlockId
from tests.fakeslack import validate
from tests.handlers.conftest import Harness
from tests.home.conftest import HomeFake, seed_history


def fake_of(hub: Harness) -> HomeFake:
    assert isinstance(hub.fake, HomeFake)
    return hub.fake


async def latest_home(
    fake: HomeFake, user: str, count: int = 1, within: float = 5
) -> dict[str, Any]:
    views = await fake.await_(
        lambda: fake.publishes(user)[count - 1 :], within, f"home publish #{count} for {user}"
    )
    return views[-1]


async def test_it_publishes_a_runboard_within_slack_limits_with_1000_runs_of_history(
    home: Harness,
) -> None:
    fake = fake_of(home)
    await seed_history(home.db, 1000, ("aryanoble", "locked"))
    latency, _ = await fake.aopen_home("U0ALICE")
    assert latency is not None and latency < 3
    view = await latest_home(fake, "U0ALICE")
    text = validate.all_text(view)
    assert validate.view_problems(view) == []
    assert len(view["blocks"]) <= 100
    assert "Queue *0* · Running *0* · last 24 h" in text
    assert "… and 15 more recent runs" in text  # 30 of Aryanoble's among the newest 60
    assert "Aryanoble" in text and "Locked Co" not in text and "locked /" not in text
    assert "Aryanoble daily —" in text and "07:00 WIB" in text
    assert any(
        b.get("accessory", {}).get("action_id") == ActionId.HOME_RETRY for b in view["blocks"]
    )


async def test_it_republishes_within_2_s_when_a_run_changes_and_cancels_from_home(
    home: Harness,
) -> None:
    fake = fake_of(home)
    home.rds.gate.clear()  # the run stays running
    await fake.aopen_home("U0ALICE")
    await latest_home(fake, "U0ALICE")
    ack = await fake.acommand("run arbel rds")
    asked = time.monotonic()

    def running() -> dict[str, Any] | None:
        views = fake.publishes("U0ALICE")
        return views[-1] if "▶ *#1* aryanoble / arbel" in validate.all_text(views[-1]) else None

    view = await fake.await_(running, 5, "the runboard to show run #1 running")
    assert time.monotonic() - asked < 2.5, "published within 2 s of the change (+ build)"
    assert "Queued *#1*" in ack.read()
    assert "alive" in validate.all_text(view) and "⏳ arbel RDS" in validate.all_text(view)
    await fake.apress(view, ActionId.HOME_CANCEL, "U0ALICE")

    def cancelled() -> str | None:
        text = validate.all_text(fake.publishes("U0ALICE")[-1])
        return text if "✖️ *#1*" in text and "Running *0*" in text else None

    await fake.await_(cancelled, 10, "the runboard to show run #1 cancelled")
    async with home.db.read() as session:
        cancelled_run = await session.get(Run, 1)
    assert cancelled_run is not None and cancelled_run.status == RunStatus.CANCELLED


async def test_it_publishes_at_most_once_per_2_s_per_user_in_a_burst_of_changes(
    home: Harness,
) -> None:
    fake = fake_of(home)
    tab = home.slack.home
    assert tab is not None
    await fake.aopen_home("U0ALICE")
    await latest_home(fake, "U0ALICE")
    for i in range(40):  # 40 run changes over 4 s
        tab.changed(i)
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.2)
    times = fake.publish_times("U0ALICE")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 2 <= len(times) <= 4
    assert min(gaps) >= 1.9


async def test_it_shows_someone_without_access_no_customer_and_no_run(home: Harness) -> None:
    fake = fake_of(home)
    await seed_history(home.db, 20, ("aryanoble",))
    await fake.aopen_home("U0MALLORY")
    text = validate.all_text(await latest_home(fake, "U0MALLORY"))
    assert "You can't see any customer yet" in text
    assert "aryanoble" not in text.lower() and "#20" not in text
    audit = await home.audit()
    assert any(a["actor"] == "U0MALLORY" and a["action"] == "list" for a in audit)


async def seed_findings(db: Database, *rows: tuple[str, str, str]) -> list[int]:
    """Open findings (customer, account, resource), first seen two days ago."""
    now = datetime.now(UTC)
    async with db.write() as session:
        found = [
            Finding(
                customer_id=customer,
                fingerprint=f"rds:{account}:ap-southeast-3:{resource}:cpu",
                account=account,
                region="ap-southeast-3",
                check="rds",
                resource=resource,
                severity="crit",
                summary="CPU max 93 % (crit ≥ 90 %)",
                status="open",
                first_seen_at=now - timedelta(days=2),
                last_seen_at=now,
                last_run_id=1,
                looked_run_id=1,
                returns=0,
                history="11",
                answers=0,
            )
            for customer, account, resource in rows
        ]
        session.add_all(found)
        await session.flush()
        return [f.id for f in found]


async def test_it_shows_my_acknowledged_findings_and_snoozes_ending_soon_of_customers_i_see(
    home: Harness,
) -> None:
    fake = fake_of(home)
    answers = home.hub.answers
    mine, soon, later, bobs, locked_soon, locked_mine = await seed_findings(
        home.db,
        ("aryanoble", "arbel", "arbel-prod-db"),
        ("aryanoble", "arbel", "arbel-billing-db"),
        ("aryanoble", "arbel-dr", "arbel-dr-db"),
        ("aryanoble", "arbel", "arbel-bobs-db"),
        ("locked", "vault", "vault-db"),
        ("locked", "vault", "vault-secret-db"),
    )
    now = datetime.now(UTC)
    await answers.acknowledge("aryanoble", [mine], "U0ALICE", {})
    await answers.acknowledge("aryanoble", [bobs], "U0BOB", {})
    await answers.snooze(
        "aryanoble", [soon], "U0BOB", "resize at noon", now + timedelta(hours=3), {}
    )
    await answers.snooze("aryanoble", [later], "U0BOB", "next week", now + timedelta(days=3), {})
    await answers.snooze("locked", [locked_soon], "U0BOB", "secret", now + timedelta(hours=2), {})
    await answers.acknowledge("locked", [locked_mine], "U0ALICE", {})

    await fake.aopen_home("U0ALICE")
    view = await latest_home(fake, "U0ALICE")
    assert validate.view_problems(view) == []
    [section] = [b for b in view["blocks"] if b["block_id"] == BlockId.HOME_FINDINGS]
    lines = section["text"]["text"].splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("🔴 *Aryanoble* · arbel · `arbel-billing-db` CPU max 93 %")
    assert " · open 2 d · 💤 until " in lines[0] and "WIB by <@U0BOB>" in lines[0]
    assert lines[1].endswith(
        "`arbel-prod-db` CPU max 93 % (crit ≥ 90 %) · open 2 d · 👀 <@U0ALICE>"
    )
    text = validate.all_text(view)
    assert "vault" not in text and "Locked" not in text and "arbel-dr-db" not in text
    assert "arbel-bobs-db" not in text

    # An answer changes no run: the tab is told, and shows it at its next publish.
    await answers.acknowledge("aryanoble", [later], "U0ALICE", {})
    tab = home.slack.home
    tab.findings_changed()
    view = await latest_home(fake, "U0ALICE", count=2)
    assert "`arbel-dr-db`" in validate.all_text(view)

    await fake.aopen_home("U0BOB")  # Bob sees no customer: no findings either
    assert "Your findings" not in validate.all_text(await latest_home(fake, "U0BOB"))
