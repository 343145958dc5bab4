"""What a sync changed reaches the customer's channel through the outbox and the fake Slack:
posted once, however many syncs raced to store it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.accounts.sync import Syncer
from app.db import Database
from app.slack.accounts import AccountsChannel
from app.slack.deliverer import Deliverer
from app.slack.outbox import Outgoing
from tests.accounts.support import Org, catalog, customer
from tests.fakeslack import FakeSlack, Posted
from tests.slack.test_deliverer import FAST, client


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(channels=["C0ACME"]) as slack:
        yield slack
        assert slack.violations == []


def in_channel(fake: FakeSlack) -> list[Posted]:
    return [p for p in list(fake.posted) if p.channel == "C0ACME"]


async def test_a_new_account_is_posted_once_to_the_customers_channel(
    db: Database, org: Org, fake: FakeSlack
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    replicas = [Syncer(db, AccountsChannel(Outgoing(db))) for _ in range(3)]
    await replicas[0].sync(acme, catalog(acme))
    org.add_account("Prod Search", "prod")

    await asyncio.gather(*(one.sync(acme, catalog(acme)) for one in replicas))
    stop = asyncio.Event()
    delivering = asyncio.create_task(Deliverer(db, client(fake), FAST).serve(stop))
    try:
        await fake.await_(lambda: len(in_channel(fake)) >= 2, 15, "both announcements")
        await asyncio.sleep(1.5)  # a few more deliverer rounds: nothing else is posted
    finally:
        stop.set()
        await delivering

    said = [p.text for p in in_channel(fake)]
    assert len(said) == 2
    assert said[0] == "Acme's AWS organization: 2 new accounts, 0 gone, 0 suspended"
    assert said[1] == "Acme's AWS organization: 1 new account, 0 gone, 0 suspended"
