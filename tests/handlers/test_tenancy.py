"""Nobody learns about a customer they may not see: outsiders and users of another customer
get the same answer for "unknown", "not yours" and "no such run", suggestions come only from
what they may see, and every decision is in the audit trail."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.catalog import Catalog
from app.config import Access, SlackSettings
from app.models import Run
from blocks.ids import ActionId
from tests.handlers import conftest as handlers
from tests.handlers.conftest import Harness

LOCKED = handlers.LOCKED.model_copy(
    update={"slack": SlackSettings(access=Access(users=("U0BOB",)))}
)
TWO_TENANTS = Catalog([handlers.ARYANOBLE, LOCKED])
"""Alice may see Aryanoble (arbel, arbel-dr); Bob may see Locked Co (vault); Mallory nothing."""

ARYANOBLE_WORDS = ("aryanoble", "arbel", "arbel-dr", "Arbel Production", "Arbel DR", "U0ALICE")
LOCKED_WORDS = ("locked", "Locked Co", "vault", "Vault", "U0BOB")


def names_leaked(reply: str, typed: str, words: tuple[str, ...]) -> list[str]:
    """The words of ``words`` in ``reply`` that the asker did not type themselves."""
    said = re.sub(r'"[^"]*"', "", reply).lower()  # their own words, echoed in quotes
    return [w for w in words if w.lower() not in typed.lower() and w.lower() in said]


async def run_count(hub: Harness) -> int:
    async with hub.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(Run))).scalar_one())


async def a_finished_run(hub: Harness, command: str = "run arbel budget") -> int:
    ack = await hub.fake.acommand(command)
    assert "Queued *#1*" in ack.read()
    await hub.fake.await_(lambda: hub.fake.cards(1), 10, "the card of run #1")
    return 1


@pytest.mark.parametrize("hub_catalog", [TWO_TENANTS])
@pytest.mark.parametrize("asker", ["U0MALLORY", "U0BOB"])
async def test_a_name_they_may_not_see_reads_exactly_like_one_that_does_not_exist(
    harness: Harness, asker: str
) -> None:
    answers = {}
    for text in (
        "run arbel",
        "run arbel http",
        "run arbl",
        "run aryanoble rds",
        "run nosuch",
        "list aryanoble",
        "list aryanobl",
        "list nosuch",
    ):
        ack = await harness.fake.acommand(text, user=asker)
        assert ack.latency_s is not None and ack.latency_s < 3
        reply = ack.read()
        assert names_leaked(reply, text, ARYANOBLE_WORDS) == [], (text, reply)
        assert "configured" not in reply and "Did you mean `arbel`" not in reply, (text, reply)
        target = text.split()[1]
        answers[text] = reply.replace(f'"{target}"', '"…"')
    assert len(set(answers.values())) == 1, answers  # one answer, whatever was asked
    assert await run_count(harness) == 0
    decisions = await harness.audit()
    assert len(decisions) == 8 and not any(d["allowed"] for d in decisions)
    assert [(d["actor"], d["asked"], d["reason"]) for d in decisions[:3]] == [
        (asker, "arbel", "denied"),
        (asker, "arbel", "denied"),
        (asker, "arbl", "unknown"),
    ]
    assert {d["customer"] for d in decisions} == {"aryanoble", None}


@pytest.mark.parametrize("hub_catalog", [TWO_TENANTS])
async def test_suggestions_come_only_from_the_customers_the_asker_may_see(
    harness: Harness,
) -> None:
    bob = await harness.fake.acommand("run vaul", user="U0BOB")
    assert "Did you mean `vault` (Locked Co)?" in bob.read()
    bob = await harness.fake.acommand("run arbl", user="U0BOB")
    assert "Did you mean" not in bob.read()
    alice = await harness.fake.acommand("list lockd", user="U0ALICE")
    assert "Did you mean" not in alice.read()
    assert names_leaked(alice.read(), "list lockd", LOCKED_WORDS) == []
    alice = await harness.fake.acommand("run arbl", user="U0ALICE")
    assert "Did you mean `arbel` (Aryanoble)?" in alice.read()


@pytest.mark.parametrize("hub_catalog", [TWO_TENANTS])
async def test_a_run_they_may_not_see_reads_exactly_like_one_that_does_not_exist(
    harness: Harness,
) -> None:
    run_id = await a_finished_run(harness)
    for asker in ("U0MALLORY", "U0BOB"):
        for verb in ("status", "cancel", "retry"):
            theirs = await harness.fake.acommand(f"{verb} {run_id}", user=asker)
            missing = await harness.fake.acommand(f"{verb} 999", user=asker)
            assert theirs.payload and missing.payload
            assert theirs.payload["text"] == f"There is no run #{run_id} that you can see. " + (
                "`/monitor list` shows the runs you can."
            )
            assert missing.payload["text"] == theirs.payload["text"].replace("#1", "#999")
        listing = await harness.fake.acommand("list", user=asker)
        assert names_leaked(listing.read(), "list", ARYANOBLE_WORDS) == []
    assert await run_count(harness) == 1  # nothing retried
    denied = [d for d in await harness.audit() if not d["allowed"] and d["reason"] != "filtered"]
    assert len(denied) == 12
    on_the_run = [d for d in denied if d["run_id"] == run_id]
    assert {(d["actor"], d["action"], d["reason"]) for d in on_the_run} == {
        (asker, verb, "denied")
        for asker in ("U0MALLORY", "U0BOB")
        for verb in ("status", "cancel", "retry")
    }
    assert all(d["run_id"] is None and d["asked"] == "#999" for d in denied if d not in on_the_run)


@pytest.mark.parametrize("hub_catalog", [TWO_TENANTS])
async def test_the_card_buttons_of_another_customer_answer_like_a_missing_run(
    harness: Harness,
) -> None:
    await harness.fake.acommand("run arbel backup")  # its check errors: the card offers Retry
    retryable = await harness.fake.await_(
        lambda: [c for c in harness.fake.cards(1) if "Retry" in str(c.blocks)], 10, "Retry"
    )
    harness.rds.gate.clear()
    await harness.fake.acommand("run arbel rds")
    running = await harness.fake.await_(lambda: harness.fake.cards(2), 10, "the second card")
    pressed = [(retryable[0], ActionId.RETRY_RUN, 1), (running[0], ActionId.CANCEL_RUN, 2)]
    for card, action, run_id in pressed:
        ack = await harness.fake.aclick(card, action, user="U0BOB")
        replies = await harness.fake.await_(lambda a=ack: harness.fake.replies(a), 10, "a reply")
        assert [r["text"] for r in replies] == [
            f"There is no run #{run_id} that you can see. `/monitor list` shows the runs you can."
        ]
    assert await run_count(harness) == 2
    assert [r.status for r in await harness.runs.recent(limit=5)] == ["running", "completed"]
