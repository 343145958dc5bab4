"""The App Home runboard through the real Bolt app and the fake Slack, on each database."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from app.models import Run, RunStatus
from blocks.ids import ActionId
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
