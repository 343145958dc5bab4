"""/monitor and the card buttons through the real Bolt app, over Socket Mode, on each database."""

from __future__ import annotations

from sqlalchemy import select

from app.models import Run
from blocks.ids import ActionId
from tests.fakeslack import Posted
from tests.handlers.conftest import Harness


async def final_card(hub: Harness, run_id: int) -> Posted:
    def finished() -> Posted | None:
        cards = hub.fake.cards(run_id)
        if cards and not cards[0].text.startswith(("▶", "⏸️", "✖️ Cancelling")):
            return cards[0]
        return None

    card: Posted = await hub.fake.await_(finished, 20, f"the final card of run #{run_id}")
    return card


async def all_runs(hub: Harness) -> list[Run]:
    async with hub.db.read() as session:
        return list((await session.execute(select(Run).order_by(Run.id))).scalars())


async def test_it_acknowledges_with_the_run_id_then_posts_and_updates_one_card(
    harness: Harness,
) -> None:
    ack = await harness.fake.acommand("run arbel rds --window 12h")
    assert ack.latency_s is not None and ack.latency_s < 3
    assert "Queued *#1*" in ack.read() and "window 12h" in ack.read()
    assert ack.payload and ack.payload["response_type"] == "ephemeral"
    card = await final_card(harness, 1)
    assert card.text.startswith("🔴 Critical · Aryanoble / arbel · 1 check")
    assert "arbel-db" in card.read() and "▁" in card.read()
    assert len(harness.fake.cards(1)) == 1
    assert len(harness.fake.calls_of("chat.postMessage", ok=True)) == 1


async def test_it_answers_an_unknown_account_with_did_you_mean(harness: Harness) -> None:
    ack = await harness.fake.acommand("run arbl rds")
    assert 'I don\'t know "arbl", or you may not see it. Did you mean `arbel` (Aryanoble)?' in (
        ack.read()
    )
    assert await all_runs(harness) == []


async def test_it_answers_malformed_text_with_usage_and_help_with_help(
    harness: Harness,
) -> None:
    ack = await harness.fake.acommand("run arbel --window forever")
    assert "is not a window" in ack.read() and "Usage: `/monitor run TARGET" in ack.read()
    ack = await harness.fake.acommand("help")
    assert "/monitor schedules" in ack.read()
    # An empty /monitor opens the "Run checks" modal instead (tests/home/test_modal.py).
    assert await all_runs(harness) == []


async def test_it_refuses_a_user_without_access_and_audits_the_decision(harness: Harness) -> None:
    ack = await harness.fake.acommand("run arbel rds", user="U0MALLORY")
    assert ack.read().startswith('I don\'t know "arbel", or you may not see it.')
    assert "Aryanoble" not in ack.read() and "rds" not in ack.read()
    assert await all_runs(harness) == []
    [decision] = await harness.audit()
    assert decision == {
        "run_id": None,
        "actor": "U0MALLORY",
        "channel": "C0OPS",
        "action": "run",
        "allowed": False,
        "reason": "denied",
        "customer": "aryanoble",
        "asked": "arbel",
    }


async def test_it_lets_anyone_in_a_granted_channel_run_checks(harness: Harness) -> None:
    ack = await harness.fake.acommand("run arbel-dr", user="U0CAROL", channel="C0SHARED")
    assert "Queued *#1*" in ack.read()
    card = await final_card(harness, 1)
    assert card.channel == "C0SHARED"
    # The grant is the run's own first event, written with it.
    assert (await harness.audit())[0] == {
        "run_id": 1,
        "actor": "U0CAROL",
        "channel": "C0SHARED",
        "action": "run",
        "allowed": True,
        "reason": "channel",
        "customer": "aryanoble",
    }


async def test_it_cancels_a_slow_run_from_its_card(harness: Harness) -> None:
    harness.rds.gate.clear()
    await harness.fake.acommand("run arbel")
    card = await harness.fake.await_(
        lambda: next(
            (
                c
                for c in harness.fake.cards(1)
                if "budget" in c.read().lower() and c.text.startswith("▶")
            ),
            None,
        ),
        20,
        "a running card",
    )
    ack = await harness.fake.aclick(card, ActionId.CANCEL_RUN, user="U0ADMIN")
    assert ack.latency_s is not None and ack.latency_s < 3
    [reply] = await harness.fake.await_(lambda: harness.fake.replies(ack), 10, "the reply")
    assert "Cancelling run #1" in reply["text"]
    final = await final_card(harness, 1)
    assert final.text.startswith("✖️ Cancelled by <@U0ADMIN>")
    assert "Budget" in final.read()  # finished rows stay
    assert [r.status for r in await all_runs(harness)] == ["cancelled"]
    assert {"action": "cancel", "allowed": True, "run_id": 1}.items() <= (await harness.audit())[
        -1
    ].items()


async def test_it_refuses_a_cancel_click_from_someone_without_access_whatever_the_button_says(
    harness: Harness,
) -> None:
    harness.rds.gate.clear()
    await harness.fake.acommand("run arbel rds")
    card = await harness.fake.await_(lambda: harness.fake.cards(1), 10, "the card")
    ack = await harness.fake.aclick(card[0], ActionId.CANCEL_RUN, user="U0MALLORY", value="1")
    [reply] = await harness.fake.await_(lambda: harness.fake.replies(ack), 10, "the refusal")
    assert "There is no run #1 that you can see." in reply["text"]
    forged = await harness.fake.aclick(
        card[0], ActionId.CANCEL_RUN, user="U0MALLORY", value="1; DROP TABLE runs"
    )
    [nonsense] = await harness.fake.await_(lambda: harness.fake.replies(forged), 10, "a refusal")
    assert "is not a run id" in nonsense["text"]
    assert [r.status for r in await all_runs(harness)] == ["running"]
    denied = (await harness.audit())[-1]
    assert denied["actor"] == "U0MALLORY" and denied["allowed"] is False
    assert denied["run_id"] == 1 and denied["action"] == "cancel"


async def test_it_retries_a_run_whose_check_errored_as_a_new_linked_run(harness: Harness) -> None:
    await harness.fake.acommand("run arbel backup")
    card = await final_card(harness, 1)
    assert "AccessDenied" in card.read()
    ack = await harness.fake.aclick(card, ActionId.RETRY_RUN)
    [reply] = await harness.fake.await_(lambda: harness.fake.replies(ack), 10, "the reply")
    assert "Retrying #1 as *#2*" in reply["text"]
    second = await final_card(harness, 2)
    assert "retry of #1" in second.read()
    again = await harness.fake.aclick(card, ActionId.RETRY_RUN)
    [same] = await harness.fake.await_(lambda: harness.fake.replies(again), 10, "the reply")
    assert "already retried as *#2*" in same["text"]
    assert [(r.id, r.retry_of) for r in await all_runs(harness)] == [(1, None), (2, 1)]


async def test_it_tells_the_user_to_invite_the_app_when_it_is_not_in_the_channel(
    harness: Harness,
) -> None:
    ack = await harness.fake.acommand("run arbel budget", channel="C0ELSEWHERE")
    assert "Queued *#1*" in ack.read()
    [hint] = await harness.fake.await_(lambda: harness.fake.replies(ack), 15, "the invite hint")
    assert "/invite @Monitoring Hub" in hint["text"] and "<#C0ELSEWHERE>" in hint["text"]
    assert harness.fake.cards(1) == []
    failed = harness.metric("mhub_slack_delivery_failures_total", kind="card", permanent="true")
    assert failed is not None and failed >= 1  # counted for /metrics
    acks = harness.metric("mhub_slack_ack_seconds_count")
    assert acks is not None and acks >= 1  # every envelope's time to ack is measured


async def test_it_shows_status_lists_customers_and_schedules_to_those_allowed(
    harness: Harness,
) -> None:
    await harness.fake.acommand("run arbel budget")
    await final_card(harness, 1)
    status = await harness.fake.acommand("status #1")
    assert "🟠 Warning · Aryanoble / arbel" in status.read()
    listing = await harness.fake.acommand("list")
    assert "*#1* Aryanoble / arbel · Budget" in listing.read()
    customers = await harness.fake.acommand("customers")
    assert "`arbel` Arbel Production — rds, budget, backup" in customers.read()
    assert "Locked Co" not in customers.read()
    schedules = await harness.fake.acommand("schedules")
    assert "`daily` — `0 7 * * *` · next" in schedules.read() and "WIB" in schedules.read()
    stranger = await harness.fake.acommand("status 1", user="U0MALLORY")
    assert "There is no run #1 that you can see." in stranger.read()
    nothing = await harness.fake.acommand("customers", user="U0MALLORY")
    assert "You don't have access to any customer" in nothing.read()
    missing = await harness.fake.acommand("status 999")
    assert "There is no run #999 that you can see." in missing.read()
