"""Syncing a customer's AWS organization, against moto over HTTP, on each database: which
accounts are found, their aliases and regions, what is announced (once), and what a sync that
cannot read the organization leaves alone."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from app.accounts import merge, store
from app.accounts.found import State
from app.accounts.sync import Outcome, Syncer
from app.db import Database
from app.models import Outbox
from app.sandbox.edge import Edge
from app.slack.accounts import AccountsChannel
from app.slack.outbox import Outgoing
from tests.accounts.support import TAG, Org, catalog, customer


def syncer(db: Database) -> Syncer:
    return Syncer(db, AccountsChannel(Outgoing(db)))


async def announcements(db: Database) -> list[dict[str, Any]]:
    async with db.read() as session:
        rows = await session.execute(
            select(Outbox.payload, Outbox.channel).where(Outbox.kind == "accounts")
        )
        return [{"channel": channel, **payload["message"]} for payload, channel in rows]


def monitored(outcome: Outcome) -> dict[str, str]:
    """Alias → account id of the accounts the sync made active."""
    assert outcome.stored is not None, outcome.problem
    return {k.alias: k.account_id for k in outcome.stored.rows if k.state == State.ACTIVE}


async def test_it_finds_the_accounts_of_the_ous_included_and_theirs_less_those_excluded(
    db: Database, org: Org
) -> None:
    acme = customer(include_ous=[org.ous["prod"]], exclude_accounts=[org.accounts["Prod Web"]])

    outcome = await syncer(db).sync(acme, catalog(acme))

    assert monitored(outcome) == {"prod-payments": org.accounts["Prod Payments"]}  # nested OU
    assert outcome.found is not None and outcome.found.excluded == (org.accounts["Prod Web"],)
    merged = merge.merged(catalog(acme), await store.known(db))
    account = merged.customer("acme").account("prod-payments")
    assert account is not None
    assert (
        account.role_arn == f"arn:aws:iam::{org.accounts['Prod Payments']}:role/MonitoringReadOnly"
    )
    assert (account.external_id, account.checks) == ("acme-monitoring", ("alarms",))


async def test_without_include_ous_the_whole_organization_is_monitored(
    db: Database, org: Org
) -> None:
    acme = customer()

    outcome = await syncer(db).sync(acme, catalog(acme))

    assert set(monitored(outcome).values()) == {*org.accounts.values(), "999988887777"}


async def test_an_alias_comes_from_the_tag_when_told_and_else_from_the_name(
    db: Database, org: Org
) -> None:
    acme = customer(alias_from_tag=TAG)

    outcome = await syncer(db).sync(acme, catalog(acme))

    aliases = monitored(outcome)
    assert aliases["pay-prod"] == org.accounts["Prod Payments"]
    assert aliases["prod-web"] == org.accounts["Prod Web"]


async def test_a_suspended_account_is_skipped_and_announced_once(db: Database, org: Org) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    await syncer(db).sync(acme, catalog(acme))
    org.suspend("Prod Web")

    outcome = await syncer(db).sync(acme, catalog(acme))
    again = await syncer(db).sync(acme, catalog(acme))

    assert "prod-web" not in monitored(outcome)
    assert outcome.stored is not None
    assert [k.alias for k in outcome.stored.news.suspended] == ["prod-web"]
    assert again.stored is not None and not again.stored.news
    said = await announcements(db)
    assert len(said) == 2  # the first sync's accounts, then the suspension — nothing more
    assert "1 suspended" in said[1]["text"] and said[1]["channel"] == "C0ACME"


async def test_a_new_account_is_announced_once_even_when_two_syncs_race(
    db: Database, org: Org
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    await syncer(db).sync(acme, catalog(acme))
    new_id = org.add_account("Prod Search", "prod")

    first, second = await asyncio.gather(
        syncer(db).sync(acme, catalog(acme)), syncer(db).sync(acme, catalog(acme))
    )

    assert monitored(first)["prod-search"] == new_id == monitored(second)["prod-search"]
    news = [o.stored.news for o in (first, second) if o.stored is not None and o.stored.news]
    assert len(news) == 1 and [k.alias for k in news[0].new] == ["prod-search"]
    said = await announcements(db)
    assert len(said) == 2
    assert "`prod-search` Prod Search" in str(said[1]["blocks"])


async def test_an_account_that_leaves_is_announced_gone_and_leaves_the_catalog(
    db: Database, org: Org
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    await syncer(db).sync(acme, catalog(acme))
    org.remove("Prod Web")

    outcome = await syncer(db).sync(acme, catalog(acme))

    assert outcome.stored is not None
    [(gone, why)] = outcome.stored.news.gone
    assert gone.alias == "prod-web" and "no longer in the organization" in why
    merged = merge.merged(catalog(acme), await store.known(db))
    assert [a.id for a in merged.customer("acme").accounts] == ["prod-payments"]


async def test_each_account_gets_the_configured_regions_it_has_enabled(
    db: Database, org: Org, edge: Edge
) -> None:
    # moto says every account has the same regions; the edge answers for one that opted in
    opted_in = org.accounts["Prod Payments"]
    edge.answer(
        "ec2",
        "DescribeRegions",
        [{"xml": regions_xml(["us-east-1", "ap-east-1"])}],
        account_id=opted_in,
    )
    acme = customer(
        include_ous=[org.ous["prod"]],
        defaults={"regions": ["ap-east-1", "us-east-1"], "checks": ["alarms"]},
    )

    await syncer(db).sync(acme, catalog(acme))

    merged = merge.merged(catalog(acme), await store.known(db)).customer("acme")
    assert {a.id: a.regions for a in merged.accounts} == {
        "prod-payments": ("ap-east-1", "us-east-1"),
        "prod-web": ("us-east-1",),  # ap-east-1 is not enabled there
    }


def regions_xml(enabled: list[str]) -> str:
    items = "".join(
        f"<item><regionName>{name}</regionName><regionEndpoint>ec2.{name}.amazonaws.com"
        "</regionEndpoint><optInStatus>opted-in</optInStatus></item>"
        for name in enabled
    )
    return (
        '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>r</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>"
    )


async def test_an_organization_role_that_cannot_be_assumed_changes_nothing_and_says_why(
    db: Database, org: Org, edge: Edge
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    await syncer(db).sync(acme, catalog(acme))
    edge.inject(error="access-denied", operations=["AssumeRole"], times=1)  # the org role's

    outcome = await syncer(db).sync(acme, catalog(acme))

    assert not outcome.ok and outcome.problem is not None
    assert outcome.problem.startswith(
        "cannot assume the organization role arn:aws:iam::999988887777:role/MonitoringOrgReader "
        "(AccessDenied): check that its trust policy lets the hub's principal assume it and "
        "external_id matches it"
    )
    assert "the 2 account(s) discovered before are kept" in outcome.problem
    merged = merge.merged(catalog(acme), await store.known(db))
    assert {a.id for a in merged.customer("acme").accounts} == {"prod-web", "prod-payments"}
    assert (await store.syncs(db))["acme"].problem == outcome.problem
    assert len(await announcements(db)) == 1  # the first sync's; the failure posts nothing


async def test_an_ou_that_does_not_exist_changes_nothing_and_says_what_to_do(
    db: Database, org: Org
) -> None:
    good = customer(include_ous=[org.ous["prod"]])
    await syncer(db).sync(good, catalog(good))
    typo = customer(include_ous=[org.ous["prod"], "ou-zzzz-zzzzzzzz"])

    outcome = await syncer(db).sync(typo, catalog(typo))

    assert outcome.problem is not None
    assert outcome.problem.startswith(
        "include_ous: ou-zzzz-zzzzzzzz is not an OU (or the root) of organization o-"
    )
    assert "copy its id from AWS Organizations → AWS accounts, or remove it" in outcome.problem
    known = (await store.known(db))["acme"]
    assert {k.alias for k in known if k.state == State.ACTIVE} == {"prod-web", "prod-payments"}


async def test_a_tag_alias_another_customer_uses_is_refused_and_the_rest_are_synced(
    db: Database, org: Org
) -> None:
    other = customer("globex", accounts=[listed("pay-prod", "123412341234")])
    acme = customer(alias_from_tag=TAG, include_ous=[org.ous["prod"]])
    both = catalog(acme, other)

    outcome = await syncer(db).sync(acme, both)

    assert monitored(outcome) == {"prod-web": org.accounts["Prod Web"]}
    assert outcome.stored is not None
    [note] = outcome.stored.notes
    assert note == (
        f"account {org.accounts['Prod Payments']} (Prod Payments) is skipped: its tag "
        'monitoring-alias="pay-prod" is already account pay-prod of customer globex; aliases '
        "are unique across customers — change the tag, or add the account to exclude_accounts"
    )
    problems, _ = merge.clashes(both, await store.known(db))
    assert problems == [f"acme: account {org.accounts['Prod Payments']} (Prod Payments) is not "
                        f"monitored: {note.split(' is skipped: ')[1]}"]  # fmt: skip


async def test_a_listed_account_that_is_also_discovered_wins_and_config_check_says_so(
    db: Database, org: Org
) -> None:
    web = org.accounts["Prod Web"]
    acme = customer(include_ous=[org.ous["prod"]], accounts=[listed("web", web)])

    outcome = await syncer(db).sync(acme, catalog(acme))

    assert monitored(outcome) == {"prod-payments": org.accounts["Prod Payments"]}
    merged = merge.merged(catalog(acme), await store.known(db)).customer("acme")
    assert [(a.id, a.account_id) for a in merged.accounts if a.account_id == web] == [("web", web)]
    problems, notes = merge.clashes(catalog(acme), await store.known(db))
    assert problems == []
    assert notes == [
        f"acme: account {web} (Prod Web) is listed under accounts: as web and is in the "
        "organization too; the listed one is used (explicit wins). Remove it from accounts: "
        "to use the discovered one, or add it to exclude_accounts"
    ]


async def test_a_listed_alias_added_after_the_sync_leaves_the_discovered_one_out(
    db: Database, org: Org
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    await syncer(db).sync(acme, catalog(acme))
    reloaded = customer(
        include_ous=[org.ous["prod"]], accounts=[listed("prod-web", "123412341234")]
    )

    merged = merge.merged(catalog(reloaded), await store.known(db)).customer("acme")
    problems, _ = merge.clashes(catalog(reloaded), await store.known(db))

    assert [(a.id, a.account_id) for a in merged.accounts if a.id == "prod-web"] == [
        ("prod-web", "123412341234")
    ]
    [problem] = problems
    assert problem.startswith(
        f"acme: account {org.accounts['Prod Web']} (Prod Web) has the alias prod-web, which is "
        "already account prod-web of customer acme; aliases are unique across customers"
    )


def listed(alias: str, account_id: str) -> dict[str, Any]:
    return {"id": alias, "name": alias.title(), "account_id": account_id, "regions": ["us-east-1"]}


async def test_a_reader_that_may_not_list_says_which_policy_to_grant(
    db: Database, org: Org, edge: Edge
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    edge.inject(error="access-denied", operations=["ListAccountsForParent"])

    outcome = await syncer(db).sync(acme, catalog(acme))

    assert outcome.problem is not None
    assert outcome.problem.startswith(
        "arn:aws:iam::999988887777:role/MonitoringOrgReader may not call "
        "organizations:ListAccountsForParent (AccessDeniedException); grant it the "
        "organization reader's policy (`mhub iam policy --org`, docs/iam.md)"
    )
    assert "the 0 account(s) discovered before are kept" in outcome.problem


async def test_an_account_whose_regions_cannot_be_read_keeps_them_all_and_says_why(
    db: Database, org: Org, edge: Edge
) -> None:
    web = org.accounts["Prod Web"]
    edge.inject(error="access-denied", operations=["DescribeRegions"], accounts=[web])
    acme = customer(
        include_ous=[org.ous["prod"]],
        defaults={"regions": ["us-east-1", "ap-east-1"], "checks": ["alarms"]},
    )

    outcome = await syncer(db).sync(acme, catalog(acme))

    assert outcome.stored is not None
    assert outcome.stored.notes == (
        f"account {web} (Prod Web): could not read its enabled regions (UnauthorizedOperation); "
        "let MonitoringReadOnly call ec2:DescribeRegions (docs/iam.md). Every configured region "
        "is used until then",
    )
    merged = merge.merged(catalog(acme), await store.known(db)).customer("acme")
    assert {a.id: a.regions for a in merged.accounts} == {
        "prod-web": ("us-east-1", "ap-east-1"),  # not known: every configured region
        "prod-payments": ("us-east-1",),  # moto: ap-east-1 not opted in
    }


async def test_two_customers_syncing_at_once_never_share_an_alias(db: Database, org: Org) -> None:
    # both see the same organization, so both want prod-web and prod-payments
    acme, globex = (customer(name, include_ous=[org.ous["prod"]]) for name in ("acme", "globex"))
    both = catalog(acme, globex)

    outcomes = await asyncio.gather(syncer(db).sync(acme, both), syncer(db).sync(globex, both))

    first, second = (set(monitored(o)) for o in outcomes)
    assert len(first) == len(second) == 2 and not first & second
    web, pay = org.accounts["Prod Web"][-4:], org.accounts["Prod Payments"][-4:]
    assert first | second == {
        "prod-web",
        "prod-payments",
        f"prod-web-{web}",
        f"prod-payments-{pay}",
    }
    merged = merge.merged(both, await store.known(db))
    assert sum(len(c.accounts) for c in merged.customers.values()) == 4


async def test_a_sync_cut_short_by_a_shutdown_stores_nothing_and_is_due_again(
    db: Database, org: Org
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    assert await store.claim(db, "acme", 6 * 3600)

    outcome = await syncer(db).sync(acme, catalog(acme), stopped=lambda: True)

    assert outcome.problem == "stopped before it finished; due again"
    assert await store.known(db) == {}
    assert await store.claim(db, "acme", 6 * 3600)  # another replica may take it at once
