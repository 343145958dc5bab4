"""Discovered accounts inside ``mhub serve``: in the catalog from the start, used by a real
run exactly like a listed account, swapped in on every replica after a sync that only one of
them made, and merged again after a reload."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.accounts import store
from app.accounts.merge import Discovered
from app.accounts.sync import Syncer, keep_synced
from app.db import Database
from app.engine.runs import Submit
from app.main import build, reload
from app.models import Source
from app.sandbox import moto
from app.sandbox.edge import Edge
from app.settings import Settings
from tests.accounts.support import ORG_ROLE, Org, catalog, customer


def settings(db: Database, tmp_path: Path) -> Settings:
    return Settings(DATABASE_URL=db.url, HUB_CONFIG_DIR=str(tmp_path))


def alarm_in(org: Org, account: str, name: str) -> None:
    """A CloudWatch alarm in ALARM in one of the organization's accounts (us-east-1)."""
    cloudwatch = moto.seed_session(org.url, org.accounts[account]).client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=90,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="CPU 97 %")


async def test_a_discovered_account_is_checked_in_a_real_run_like_a_listed_one(
    db: Database, org: Org, tmp_path: Path
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    await Syncer(db).sync(acme, catalog(acme))
    alarm_in(org, "Prod Web", "web-cpu-high")
    alarm_in(org, "Prod Payments", "payments-cpu-high")

    async with build(settings(db, tmp_path), catalog(acme), db=db, slack=False) as hub:
        plan = hub.catalog.plan("prod-web")  # the alias, as `mhub run prod-web` gives it
        run, _ = await hub.runs.submit(Submit(plan, requested_by="cli", source=Source.CLI))
        stop = asyncio.Event()
        serving = asyncio.create_task(hub.executor.serve(stop))
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while not (view := await hub.runs.get(run.id)).terminal:
                assert asyncio.get_running_loop().time() < deadline, "the run never finished"
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await serving

    [result] = view.results
    assert (result.account, result.check, result.severity) == ("prod-web", "alarms", "crit")
    said = f"{result.summary} {result.details}"
    assert "web-cpu-high" in said and "payments-cpu-high" not in said


async def test_one_replica_syncs_a_due_organization_and_every_replica_swaps_it_in(
    db: Database, org: Org, edge: Edge
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    replicas = [Discovered(db, catalog(acme)) for _ in range(2)]
    told = [asyncio.Event() for _ in replicas]
    stop = asyncio.Event()
    loops = [
        asyncio.create_task(keep_synced(Syncer(db), one, 6, stop, told[i].set, look_s=0.2))
        for i, one in enumerate(replicas)
    ]
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(event.wait() for event in told))
        await asyncio.sleep(1)  # a few more rounds: none of them syncs again
    finally:
        stop.set()
        await asyncio.gather(*loops)

    assert edge.calls("DescribeOrganization") == 1
    for one in replicas:
        assert {a.id for a in one.live.customer("acme").accounts} == {"prod-web", "prod-payments"}
    assert (await store.syncs(db))["acme"].version == 1


async def test_a_reload_keeps_the_discovered_accounts_with_the_new_settings(
    db: Database, org: Org
) -> None:
    acme = customer(include_ous=[org.ous["prod"]])
    await Syncer(db).sync(acme, catalog(acme))
    discovered = Discovered(db, catalog(acme))
    live = discovered.live
    await discovered.refresh()

    changes = discovered.rebase(
        catalog(customer(include_ous=[org.ous["prod"]], account_role="Ops"))
    )

    assert live is discovered.live and changes.changed == ("acme",)
    account = live.customer("acme").account("prod-web")
    assert account is not None and account.role_arn is not None
    assert account.role_arn.endswith(":role/Ops")


async def test_sighups_reload_merges_the_discovered_accounts_into_the_new_yaml(
    db: Database, org: Org, tmp_path: Path
) -> None:
    yaml = tmp_path / "customers" / "acme.yaml"
    yaml.parent.mkdir()
    yaml.write_text(
        YAML.format(role=ORG_ROLE, ou=org.ous["prod"], account_role="MonitoringReadOnly")
    )
    async with build(settings(db, tmp_path), db=db, slack=False) as hub:
        assert hub.syncer is not None
        await hub.syncer.sync(hub.catalog.customer("acme"), catalog(customer()))
        assert hub.accounts is not None and await hub.accounts.refresh()
        yaml.write_text(YAML.format(role=ORG_ROLE, ou=org.ous["prod"], account_role="Ops"))

        assert await reload(hub)

        account = hub.catalog.customer("acme").account("prod-web")
        assert account is not None and str(account.role_arn).endswith(":role/Ops")
        assert hub.executor.catalog is hub.catalog


YAML = """\
id: acme
name: Acme
organization:
  role_arn: {role}
  include_ous: [{ou}]
  account_role: {account_role}
  defaults: {{regions: [us-east-1], checks: [alarms]}}
"""
