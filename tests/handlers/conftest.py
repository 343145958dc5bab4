"""The Slack side in-process: the hub as ``app.main.build`` wires it (the real Bolt app,
listeners, desk, outbox and executor on a real database), talking to the fake Slack over real
HTTP and Socket Mode. Checks are stand-ins (no AWS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from app.catalog import Catalog
from app.config import Access, Account, Customer, Schedule, SlackSettings
from app.db import Database
from app.engine.executor import ExecutorOptions
from app.engine.runs import RunService
from app.main import Hub, SlackSide, build
from app.models import RunEvent
from app.settings import Settings
from app.slack.deliverer import DeliveryOptions, deliver
from checks.base import Check, CheckContext, CheckResult, Severity
from checks.errors import PermanentError
from tests.fakeslack import FakeSlack

ARYANOBLE = Customer(
    id="aryanoble",
    name="Aryanoble",
    timezone="Asia/Jakarta",
    slack=SlackSettings(
        channel="C0OPS",
        access=Access(users=("U0ALICE",), channels=("C0SHARED",), admins=("U0ADMIN",)),
    ),
    accounts=(
        Account(
            id="arbel",
            name="Arbel Production",
            account_id="111122223333",
            regions=("ap-southeast-3",),
            checks=("rds", "budget", "backup"),
        ),
        Account(
            id="arbel-dr",
            name="Arbel DR",
            account_id="111122224444",
            regions=("ap-southeast-1",),
            checks=("rds",),
        ),
    ),
    schedules=(Schedule(name="daily", cron="0 7 * * *", checks=("rds",)),),
)
LOCKED = Customer(
    id="locked",
    name="Locked Co",
    accounts=(
        Account(
            id="vault",
            name="Vault",
            account_id="999988887777",
            regions=("us-east-1",),
            checks=("rds",),
        ),
    ),
)
CATALOG = Catalog([ARYANOBLE, LOCKED])


T = TypeVar("T")


class RdsStandIn(Check):
    kind = "rds"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()

    async def run(self, ctx: CheckContext) -> CheckResult:
        await self.gate.wait()
        return CheckResult(
            Severity.CRIT,
            "1 critical",
            {
                "resources": [
                    {
                        "id": f"{ctx.account.id}-db",
                        "severity": "crit",
                        "summary": "CPU max 93 % (crit ≥ 90 %)",
                        "series": "cpu",
                    }
                ]
            },
            {"cpu": [40.0, 50.0, 70.0, 93.0]},
        )


class BudgetStandIn(Check):
    kind = "budget"

    async def run(self, ctx: CheckContext) -> CheckResult:
        return CheckResult(
            Severity.WARN,
            "forecast 106 % of $5,000",
            {
                "resources": [
                    {
                        "id": "monthly",
                        "severity": "warn",
                        "summary": "forecast 106 %",
                        "fraction": 0.78,
                    }
                ]
            },
        )


class BackupStandIn(Check):
    kind = "backup"

    async def run(self, ctx: CheckContext) -> CheckResult:
        raise PermanentError("AccessDenied: the role may not call backup:ListBackupJobs")


@dataclass
class Harness:
    fake: FakeSlack
    hub: Hub
    rds: RdsStandIn
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return self.hub.db

    @property
    def runs(self) -> RunService:
        return self.hub.runs

    @property
    def slack(self) -> SlackSide:
        assert self.hub.side is not None
        return self.hub.side

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample of the hub's /metrics."""
        return self.hub.metrics.registry.get_sample_value(name, labels)

    async def audit(self) -> list[dict[str, Any]]:
        async with self.db.read() as session:
            rows = (
                (
                    await session.execute(
                        select(RunEvent).where(RunEvent.type == "access").order_by(RunEvent.id)
                    )
                )
                .scalars()
                .all()
            )
        return [{"run_id": r.run_id, "actor": r.actor, **r.data} for r in rows]

    async def await_audit(self, pick: Callable[[list[dict[str, Any]]], T], within: float = 10) -> T:
        """What ``pick`` finds in the audit rows once it finds something (decisions made
        after an ack are written a moment later)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            found = pick(await self.audit())
            if found or asyncio.get_running_loop().time() > deadline:
                assert found, "the audit rows never showed it"
                return found
            await asyncio.sleep(0.05)


@pytest.fixture
def hub_catalog() -> Catalog:
    """The customers the harness's hub is built with (a test may parametrize another)."""
    return CATALOG


PUBLIC_URL = "https://hub.example"


@pytest.fixture
async def harness(
    db: Database, hub_catalog: Catalog, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    """The hub as ``app.main.build`` wires it, with stand-in checks and fast timings, serving
    the executor, the Socket Mode connection and delivery (cards, Home) until the test ends.
    Its ``HUB_PUBLIC_URL`` is :data:`PUBLIC_URL`; a test may parametrize the harness indirectly
    with another (None: no web view links)."""
    public_url: str | None = getattr(request, "param", PUBLIC_URL)
    fake = FakeSlack(channels=["C0OPS", "C0SHARED"]).start()
    rds = RdsStandIn()
    registry: dict[str, Check] = {"rds": rds, "budget": BudgetStandIn(), "backup": BackupStandIn()}
    settings = Settings(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-test",
        SLACK_API_URL=fake.api_url,
        HUB_PUBLIC_URL=public_url,
    )
    executor = ExecutorOptions(
        poll_s=0.05, heartbeat_s=0.2, lease_s=5, cancel_poll_s=0.1, sweep_s=1, grace_s=2
    )
    delivery = DeliveryOptions(backoff_base_s=0.2, unknown_min_s=0.5)
    stop = asyncio.Event()
    async with build(
        settings, hub_catalog, db=db, registry=registry, executor=executor, delivery=delivery
    ) as hub:
        side = hub.side
        assert side is not None
        harness = Harness(fake, hub, rds)
        harness.tasks = [
            asyncio.create_task(c)
            for c in (
                hub.executor.serve(stop),
                side.slack.run(stop),
                deliver(side.deliverer, [side.cards, side.home], stop, linger_s=2),
            )
        ]
        try:
            await fake.await_(fake.connected, 10, "the app to connect")
            yield harness
        finally:
            rds.gate.set()
            stop.set()
            await asyncio.gather(*harness.tasks)
            fake.stop()
    assert fake.violations == []
