"""The "Run checks" modal through the real Bolt app and the fake Slack, on each database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.catalog import Catalog
from app.config import Access, Account, Customer, SlackSettings
from app.models import Run
from blocks.ids import ActionId, BlockId
from tests.fakeslack import validate
from tests.handlers import conftest as handlers
from tests.handlers.conftest import Harness
from tests.home.conftest import HomeFake


def billing(number: int = 0) -> Customer:
    suffix = f"-{number}" if number else ""
    return Customer(
        id=f"billing{suffix}",
        name=f"Billing Co{suffix}",
        timezone="Europe/Berlin",
        slack=SlackSettings(channel="C0BILL", access=Access(users=("U0ALICE",))),
        accounts=(
            Account(
                id=f"ledger{suffix}",
                name="Ledger",
                account_id="222233334444",
                regions=("eu-central-1",),
                checks=("rds",),
            ),
        ),
    )


TWO_CUSTOMERS = Catalog([handlers.ARYANOBLE, handlers.LOCKED, billing()])
"""Alice may run checks for Aryanoble and Billing Co."""
MANY_CUSTOMERS = Catalog([handlers.ARYANOBLE, *(billing(n) for n in range(1, 131))])


def fake_of(hub: Harness) -> HomeFake:
    assert isinstance(hub.fake, HomeFake)
    return hub.fake


async def runs_of(hub: Harness) -> list[Run]:
    async with hub.db.read() as session:
        return list((await session.execute(select(Run).order_by(Run.id))).scalars())


def picked(*values: str) -> dict[str, Any]:
    return {"selected_options": [{"value": v} for v in values]}


@pytest.mark.parametrize("hub_catalog", [TWO_CUSTOMERS])
async def test_it_guides_a_run_from_open_to_card_with_an_inline_error_on_the_way(
    home: Harness,
) -> None:
    fake = fake_of(home)
    ack = await fake.acommand("", channel="C0OPS")
    assert ack.latency_s is not None and ack.latency_s < 3
    assert not ack.payload or not ack.payload.get("text"), "no message: the modal opens instead"
    form = await fake.await_(lambda: fake.opened and fake.opened[0], 3, "the modal to open")
    text = validate.all_text(form)
    assert form["title"]["text"] == "Run checks" and "Choose a customer" in text
    customers = form["blocks"][0]["element"]["options"]
    assert [o["value"] for o in customers] == ["aryanoble", "billing"]  # not Locked Co

    await fake.achoose(form, ActionId.MODAL_CUSTOMER, "U0ALICE", "aryanoble", "Aryanoble")
    form = await fake.await_(lambda: fake.opened[1:] and fake.opened[1], 3, "the view update")
    accounts_block = f"{BlockId.MODAL_ACCOUNTS}.aryanoble"
    offered = next(b for b in form["blocks"] if b["block_id"] == accounts_block)
    assert [o["value"] for o in offered["element"]["options"]] == ["arbel", "arbel-dr"]

    values: dict[str, Any] = {
        BlockId.MODAL_CUSTOMER: {
            ActionId.MODAL_CUSTOMER: {"selected_option": {"value": "aryanoble"}}
        },
        accounts_block: {ActionId.MODAL_ACCOUNTS: picked("arbel")},
        BlockId.MODAL_CHECKS: {ActionId.MODAL_CHECKS: picked("rds")},
        BlockId.MODAL_WINDOW: {ActionId.MODAL_WINDOW: {"value": "forever"}},
    }
    latency, answer = await fake.asubmit(form, "U0ALICE", values)
    assert latency is not None and latency < 3
    assert answer["response_action"] == "errors"
    assert '"forever" is not a window' in answer["errors"][BlockId.MODAL_WINDOW]
    assert await runs_of(home) == []

    values[BlockId.MODAL_WINDOW] = {ActionId.MODAL_WINDOW: {"value": "12h"}}
    latency, answer = await fake.asubmit(form, "U0ALICE", values)
    assert latency is not None and not (answer or {}).get("errors")
    card = await fake.await_(lambda: fake.cards(1), 10, "the card of run #1")
    assert card[0].channel == "C0OPS" and "aryanoble" in card[0].read().lower()
    (run,) = await runs_of(home)
    assert (run.source, run.channel_id, run.params["window_s"]) == ("modal", "C0OPS", 43200)
    assert run.targets == [{"account": "arbel", "check": "rds"}]


async def test_it_shows_no_customer_to_someone_without_access_and_refuses_their_submission(
    home: Harness,
) -> None:
    fake = fake_of(home)
    await fake.acommand("", user="U0MALLORY", channel="C0OPS")
    form = await fake.await_(lambda: fake.opened and fake.opened[0], 3, "the modal to open")
    assert "You can't run checks for any customer" in validate.all_text(form)
    assert "submit" not in form and "options" not in str(form)
    forged: dict[str, Any] = {
        BlockId.MODAL_CUSTOMER: {
            ActionId.MODAL_CUSTOMER: {"selected_option": {"value": "aryanoble"}}
        }
    }
    # The no-access form has no input block to key an error to: the answer replaces the view.
    took, answer = await fake.asubmit(form, "U0MALLORY", forged)
    assert took is not None and took < 3
    assert answer["response_action"] == "update"
    assert "Choose a customer from the list." in validate.all_text(answer["view"])
    assert "Aryanoble" not in str(answer)
    assert await runs_of(home) == []
    denied = await home.await_audit(lambda rows: [r for r in rows if r.get("asked")])
    assert denied == [
        {
            "run_id": None,
            "actor": "U0MALLORY",
            "channel": "C0OPS",
            "action": "run",
            "allowed": False,
            "reason": "denied",
            "customer": "aryanoble",
            "asked": "aryanoble",
        }
    ]


async def test_it_says_so_when_the_trigger_expired(home: Harness) -> None:
    fake = fake_of(home)
    fake.expire_triggers = True
    ack = await fake.acommand("", channel="C0OPS")
    replies = await fake.await_(lambda: fake.replies(ack), 5, "an ephemeral reply")
    assert "3 seconds" in validate.all_text(replies[0]) and "try again" in validate.all_text(
        replies[0]
    )
    assert fake.opened == []


@pytest.mark.parametrize("hub_catalog", [TWO_CUSTOMERS])
async def test_it_runs_from_the_home_button_and_posts_in_the_customer_channel(
    home: Harness,
) -> None:
    fake = fake_of(home)
    fake.members.add("C0BILL")
    await fake.aopen_home("U0ALICE")
    view = await fake.await_(lambda: fake.publishes("U0ALICE"), 5, "the runboard")
    await fake.apress(view[-1], ActionId.HOME_RUN_CHECKS, "U0ALICE")
    form = await fake.await_(lambda: fake.opened and fake.opened[0], 3, "the modal to open")
    values: dict[str, Any] = {
        BlockId.MODAL_CUSTOMER: {ActionId.MODAL_CUSTOMER: {"selected_option": {"value": "billing"}}}
    }
    _, answer = await fake.asubmit(form, "U0ALICE", values)
    assert not (answer or {}).get("errors")
    card = await fake.await_(lambda: fake.cards(1), 10, "the card of run #1")
    assert card[0].channel == "C0BILL"


@pytest.mark.parametrize("hub_catalog", [MANY_CUSTOMERS])
async def test_it_offers_an_external_select_with_suggestions_above_100_customers(
    home: Harness,
) -> None:
    fake = fake_of(home)
    await fake.acommand("", channel="C0OPS")
    form = await fake.await_(lambda: fake.opened and fake.opened[0], 3, "the modal to open")
    assert form["blocks"][0]["element"]["type"] == "external_select"
    _, answer = await fake.asuggest(form, ActionId.MODAL_CUSTOMER, "U0ALICE", "co-12")
    labels = [o["text"]["text"] for o in answer["options"]]
    assert labels == ["Billing Co-12", *(f"Billing Co-{n}" for n in range(120, 130))]
    _, answer = await fake.asuggest(form, ActionId.MODAL_CUSTOMER, "U0ALICE", "")
    assert len(answer["options"]) == 100
