"""Answering findings from the card: the ``⋯`` menu, the reason modal, the card updated in
place, refusals audited, the concurrent double answer — through the real Bolt app and the fake
Slack, on each database."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from app.catalog import Catalog
from app.config import Console
from app.models import Finding, Mute, Run, RunEvent
from blocks import answer as modal
from blocks.ids import ActionId
from tests.fakeslack.server import Posted
from tests.handlers import conftest as handlers
from tests.handlers.conftest import Harness
from tests.handlers.test_slack import final_card
from tests.home.conftest import HomeFake

FINGERPRINT = "rds:arbel:arbel-db"


def fake_of(hub: Harness) -> HomeFake:
    assert isinstance(hub.fake, HomeFake)
    return hub.fake


def option(card: Posted, verb: str) -> str:
    """The value of the ``verb`` option of the first row's ``⋯`` menu."""
    menus = [
        b["accessory"]
        for b in card.blocks
        if (b.get("accessory") or {}).get("action_id") == ActionId.ANSWER
    ]
    assert menus, "the card has no ⋯ menu"
    labels = [o["text"]["text"] for o in menus[0]["options"]]
    assert labels == ["Acknowledge", "Snooze …", "Mute …"]
    return next(o["value"] for o in menus[0]["options"] if o["value"].startswith(f"{verb}:"))


async def finding(hub: Harness, fingerprint: str = FINGERPRINT) -> Finding:
    async with hub.db.read() as session:
        found = (
            await session.execute(select(Finding).where(Finding.fingerprint == fingerprint))
        ).scalar_one()
    return found


async def answers(hub: Harness) -> list[dict[str, Any]]:
    async with hub.db.read() as session:
        rows = (
            await session.execute(
                select(RunEvent).where(RunEvent.type == "answer").order_by(RunEvent.id)
            )
        ).scalars()
        return [{"actor": r.actor, **r.data} for r in rows]


async def card_saying(hub: Harness, run_id: int, words: str) -> Posted:
    def latest() -> Posted | None:
        cards = hub.fake.cards(run_id)
        return cards[0] if cards and words in cards[0].read() else None

    card: Posted = await hub.fake.await_(latest, 10, f"the card to say {words!r}")
    return card


async def test_acknowledge_from_the_card_shows_who_beside_the_line_in_place(home: Harness) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    # seconds old when the card was drawn (0 s, or 1 s on a busy machine: the card is drawn
    # after the finding opens, not at the same instant)
    assert re.search(r"open \d{1,2} s · 🆕 new", card.read()), card.read()
    ack = await fake.aclick(card, ActionId.ANSWER, option=option(card, "ack"))
    assert ack.latency_s is not None and ack.latency_s < 3
    [reply] = await fake.await_(lambda: fake.replies(ack), 10, "the confirmation")
    assert "You acknowledged `arbel-db`" in reply["text"]
    assert reply["response_type"] == "ephemeral"
    updated = await card_saying(home, 1, "👀 <@U0ALICE>")
    assert updated.text.startswith("🔴 Critical"), "acknowledged problems stay problems"
    assert len(fake.cards(1)) == 1, "the card was updated, not posted again"
    found = await finding(home)
    assert found.ack_by == "U0ALICE" and found.ack_at is not None
    [given] = await answers(home)
    assert given["action"] == "ack" and given["actor"] == "U0ALICE"
    assert given["findings"] == [FINGERPRINT] and given["via"] == "slack"
    granted = await home.await_audit(lambda rows: [r for r in rows if r["action"] == "answer"])
    assert granted[-1]["allowed"] is True and granted[-1]["customer"] == "aryanoble"


async def test_snooze_through_the_modal_makes_the_card_ok_and_says_so(home: Harness) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    assert card.text.startswith("🔴 Critical")
    await fake.aclick(card, ActionId.ANSWER, option=option(card, "snooze"))
    form = await fake.await_(lambda: fake.opened and fake.opened[0], 3, "the modal to open")
    assert form["title"]["text"] == "Snooze" and "arbel · RDS" in str(form["blocks"][0])
    values = {
        modal.LENGTH: {modal.LENGTH: {"selected_option": {"value": "24h"}}},
        modal.REASON: {modal.REASON: {"value": "resize scheduled for Wednesday"}},
    }
    took, answer = await fake.asubmit(form, "U0ALICE", values)
    assert took is not None and took < 3 and not answer
    said = await fake.await_(
        lambda: fake.calls_of("chat.postEphemeral", ok=True), 10, "the confirmation"
    )
    assert "Snoozed `arbel-db` until" in str(said[-1].params)
    updated = await card_saying(home, 1, "💤 1 snoozed")
    assert updated.text.startswith("✅ OK"), "a run whose only problem is snoozed reads OK"
    assert "by <@U0ALICE>" in updated.read()
    found = await finding(home)
    assert found.snooze_by == "U0ALICE" and found.snooze_reason == "resize scheduled for Wednesday"
    assert found.snooze_until is not None and found.snooze_severity == "crit"


async def test_mute_through_the_modal_makes_a_rule_and_folds_the_line(home: Harness) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    await fake.aclick(card, ActionId.ANSWER, option=option(card, "mute"))
    form = await fake.await_(lambda: fake.opened and fake.opened[0], 3, "the modal to open")
    values = {
        modal.SCOPE: {modal.SCOPE: {"selected_option": {"value": "resource"}}},
        modal.REASON: {modal.REASON: {"value": "scratch database, runs hot by design"}},
    }
    await fake.asubmit(form, "U0ALICE", values)
    updated = await card_saying(home, 1, "🔕 1 muted")
    assert updated.text.startswith("✅ OK")
    async with home.db.read() as session:
        [rule] = (await session.execute(select(Mute))).scalars().all()
    assert (rule.check, rule.account, rule.resource) == ("rds", "arbel", "arbel-db")
    assert rule.created_by == "U0ALICE" and rule.until is None


async def test_the_modal_refuses_bad_input_inline_and_changes_nothing(home: Harness) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    await fake.aclick(card, ActionId.ANSWER, option=option(card, "snooze"))
    form = await fake.await_(lambda: fake.opened and fake.opened[0], 3, "the modal to open")
    cases = [
        ("", {modal.LENGTH: "24h"}, modal.REASON, "Give a reason"),
        ("x" * 501, {modal.LENGTH: "24h"}, modal.REASON, "keep it to 500"),
        ("ok", {modal.LENGTH: "99999d"}, modal.LENGTH, "Choose how long"),
        ("ok", {modal.UNTIL: 1_000_000_000}, modal.UNTIL, "has passed"),
    ]
    for reason, picked, block, words in cases:
        values: dict[str, Any] = {modal.REASON: {modal.REASON: {"value": reason}}}
        if modal.LENGTH in picked:
            length = {"selected_option": {"value": picked[modal.LENGTH]}}
            values[modal.LENGTH] = {modal.LENGTH: length}
        if modal.UNTIL in picked:
            values[modal.UNTIL] = {modal.UNTIL: {"selected_date_time": picked[modal.UNTIL]}}
        took, answer = await fake.asubmit(form, "U0ALICE", values)
        assert took is not None and took < 3
        assert answer["response_action"] == "errors", (reason[:10], picked)
        assert words in answer["errors"][block]
    found = await finding(home)
    assert found.snooze_by is None and await answers(home) == []


async def test_outsiders_and_channel_grants_are_refused_and_audited(home: Harness) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    value = option(card, "ack")
    outsider = await fake.aclick(card, ActionId.ANSWER, user="U0MALLORY", option=value)
    [no] = await fake.await_(lambda: fake.replies(outsider), 10, "the refusal")
    assert "nothing here that you can answer" in no["text"]
    assert "Aryanoble" not in no["text"] and "arbel" not in no["text"]
    channel = await fake.aclick(
        card, ActionId.ANSWER, user="U0BOB", channel="C0SHARED", option=value
    )
    [named] = await fake.await_(lambda: fake.replies(channel), 10, "the refusal")
    assert "needs a named grant" in named["text"]
    forged = await fake.aclick(card, ActionId.ANSWER, option=value, value="ack:r99999")
    [nothing] = await fake.await_(lambda: fake.replies(forged), 10, "the refusal")
    assert "nothing here that you can answer" in nothing["text"]
    denied = await home.await_audit(
        lambda rows: [r for r in rows if r["action"] == "answer" and not r["allowed"]]
    )
    assert {r["actor"] for r in denied} >= {"U0MALLORY", "U0BOB"}
    assert (await finding(home)).ack_by is None and await answers(home) == []


async def test_of_two_people_answering_at_once_one_wins_and_the_other_is_told(
    home: Harness,
) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    value = option(card, "ack")
    first, second = await asyncio.gather(
        fake.aclick(card, ActionId.ANSWER, user="U0ALICE", option=value),
        fake.aclick(card, ActionId.ANSWER, user="U0ADMIN", option=value),
    )
    replies = [
        (await fake.await_(lambda ack=ack: fake.replies(ack), 10, "a reply"))[0]["text"]
        for ack in (first, second)
    ]
    won = [r for r in replies if "You acknowledged" in r]
    told = [r for r in replies if "Already acknowledged by" in r]
    assert len(won) == 1 and len(told) == 1, replies
    winner = (await finding(home)).ack_by
    assert f"<@{winner}>" in told[0]
    assert [a["changed"] for a in await answers(home)].count(1) == 1


async def test_a_problem_resolved_since_has_nothing_to_answer(home: Harness) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    async with home.db.write() as session:
        await session.execute(update(Finding).values(status="resolved"))
    ack = await fake.aclick(card, ActionId.ANSWER, option=option(card, "ack"))
    [reply] = await fake.await_(lambda: fake.replies(ack), 10, "the answer")
    assert "resolved since" in reply["text"]
    assert await answers(home) == []


async def test_a_problem_of_a_run_still_running_is_answered_once_it_finishes(
    home: Harness,
) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    async with home.db.write() as session:  # as the live card of a run still recording
        await session.execute(delete(Finding))
        await session.execute(update(Run).values(status="running"))
    ack = await fake.aclick(card, ActionId.ANSWER, option=option(card, "ack"))
    [reply] = await fake.await_(lambda: fake.replies(ack), 10, "the answer")
    assert "still running" in reply["text"] and "when it finishes" in reply["text"]
    assert await answers(home) == []


WITH_CONSOLE = Catalog(
    [
        handlers.ARYANOBLE.model_copy(
            update={
                "console": Console(
                    sso_start_url="https://aryanoble.awsapps.com/start",
                    permission_set="ReadOnlyAccess",
                )
            }
        ),
        handlers.LOCKED,
    ]
)


@pytest.mark.parametrize("hub_catalog", [WITH_CONSOLE])
async def test_the_menu_opens_the_problem_in_the_aws_console_signed_in_to_its_account(
    home: Harness,
) -> None:
    fake = fake_of(home)
    await fake.acommand("run arbel rds")
    card = await final_card(home, 1)
    [menu] = [
        b["accessory"]
        for b in card.blocks
        if (b.get("accessory") or {}).get("action_id") == ActionId.ANSWER
    ]
    [console] = [o for o in menu["options"] if o["text"]["text"] == "Open in AWS console"]
    url = console["url"]
    assert url.startswith("https://aryanoble.awsapps.com/start/#/console?account_id=111122223333")
    assert "role_name=ReadOnlyAccess" in url and "arbel-db" in url
    ack = await fake.aclick(card, ActionId.ANSWER, option=console["value"])
    assert ack.latency_s is not None and ack.latency_s < 3
    await asyncio.sleep(0.5)
    assert fake.replies(ack) == [], "the browser opens the link; nothing to say"


async def test_an_answer_from_a_digest_line_updates_the_digest_in_place(home: Harness) -> None:
    fake = fake_of(home)
    scheduler = home.hub.scheduler
    customer, schedule = scheduler.find("aryanoble", "daily")
    run, _ = await scheduler.fire(scheduler.latest(customer, schedule, datetime.now(UTC)))
    await finished(home, run.id)
    assert await home.hub.digests.enqueue(run.id)
    home.slack.deliverer.poke()

    def digest() -> Posted | None:
        return next((p for p in fake.posted if p.key == f"digest:{run.id}"), None)

    posted: Posted = await fake.await_(digest, 10, "the digest")
    menus = [
        b for b in posted.blocks if (b.get("accessory") or {}).get("action_id") == ActionId.ANSWER
    ]
    assert len(menus) == 2, "one ⋯ per problem line: arbel-db and arbel-dr-db"
    line = next(b for b in menus if "arbel-dr-db" in str(b["text"]))
    ack_value = next(
        o["value"] for o in line["accessory"]["options"] if o["value"].startswith("ack:f")
    )
    ack = await fake.aclick(
        posted, ActionId.ANSWER, option=ack_value, block_id=line["block_id"], channel="C0OPS"
    )
    [reply] = await fake.await_(lambda: fake.replies(ack), 10, "the confirmation")
    assert "You acknowledged `arbel-dr-db`" in reply["text"]

    def updated() -> bool:
        latest = digest()
        return latest is not None and "👀 <@U0ALICE>" in latest.read()

    await fake.await_(updated, 10, "the digest updated in place")
    assert len([p for p in fake.posted if p.key == f"digest:{run.id}"]) == 1
    assert (await finding(home, "rds:arbel-dr:arbel-dr-db")).ack_by == "U0ALICE"


async def finished(hub: Harness, run_id: int, within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not (await hub.runs.get(run_id)).terminal:
        assert asyncio.get_running_loop().time() < deadline, f"run #{run_id} never finished"
        await asyncio.sleep(0.05)
