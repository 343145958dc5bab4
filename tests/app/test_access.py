"""Access: deny by default, grants by user, admin, channel, and the requester's own cancel;
every decision audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.access import Access, Action, Who, decide, hidden_run, hidden_target
from app.config import Access as Grants
from app.config import Account, Customer, SlackSettings
from app.db import Database
from app.models import Run, RunEvent

CUSTOMER = Customer(
    id="aryanoble",
    name="Aryanoble",
    slack=SlackSettings(
        channel="C0HOME", access=Grants(users=("U0USER",), channels=("C0OPS",), admins=("U0ADMIN",))
    ),
    accounts=(
        Account(id="arbel", name="Arbel", account_id="111122223333", regions=("ap-southeast-3",)),
    ),
)


def a_run(requested_by: str) -> Run:
    return Run(id=7, customer_id="aryanoble", requested_by=requested_by)


@pytest.mark.parametrize(
    ("who", "action", "allowed"),
    [
        (Who("U0USER", "C0ANY"), Action.RUN, True),
        (Who("U0ADMIN", None), Action.RETRY, True),
        (Who("U0STRANGER", "C0OPS"), Action.RUN, True),  # anyone in a granted channel
        (Who("U0STRANGER", "C0HOME"), Action.RUN, False),  # slack.channel grants nothing
        (Who("U0STRANGER", None), Action.STATUS, False),
        (Who("U0STRANGER", "C0ANY"), Action.CUSTOMERS, False),
    ],
)
def test_it_denies_by_default_and_allows_what_the_config_grants(
    who: Who, action: Action, allowed: bool
) -> None:
    assert decide(CUSTOMER, who, action).allowed is allowed


def test_it_lets_whoever_started_a_run_cancel_it_but_nobody_else_without_a_grant() -> None:
    run = a_run("U0STARTER")
    assert decide(CUSTOMER, Who("U0STARTER", "C0ANY"), Action.CANCEL, run).reason == "requester"
    assert not decide(CUSTOMER, Who("U0OTHER", "C0ANY"), Action.CANCEL, run).allowed
    assert not decide(CUSTOMER, Who("U0STARTER", "C0ANY"), Action.RETRY, run).allowed


async def test_it_audits_every_decision_with_user_channel_action_and_what_was_asked(
    db: Database,
) -> None:
    access = Access(db)
    assert (await access.check(CUSTOMER, Who("U0USER", "C0ANY"), Action.RUN)).allowed
    assert not (await access.check(CUSTOMER, Who("U0STRANGER", "C0ANY"), Action.RUN)).allowed
    unknown = await access.check(None, Who("U0STRANGER", None), Action.LIST, asked="arbl")
    assert (unknown.allowed, unknown.reason) == (False, "unknown")
    async with db.read() as session:
        rows = (await session.execute(select(RunEvent).order_by(RunEvent.id))).scalars().all()
    assert [
        (
            r.run_id,
            r.type,
            r.actor,
            r.data["allowed"],
            r.data["channel"],
            r.data["action"],
            r.data["customer"],
            r.data.get("asked"),
        )
        for r in rows
    ] == [
        (None, "access", "U0USER", True, "C0ANY", "run", "aryanoble", None),
        (None, "access", "U0STRANGER", False, "C0ANY", "run", "aryanoble", None),
        (None, "access", "U0STRANGER", False, None, "list", None, "arbl"),
    ]


def test_the_hidden_answers_name_nothing_but_what_was_asked_and_say_what_to_do() -> None:
    assert hidden_target("arbl") == (
        'I don\'t know "arbl", or you may not see it. `/monitor customers` lists what you can '
        "see; an admin can add you to a customer's access list."
    )
    assert hidden_run(7) == (
        "There is no run #7 that you can see. `/monitor list` shows the runs you can."
    )
