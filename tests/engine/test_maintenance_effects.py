"""What a maintenance window changes, on each database: the findings it covers while it is
open stand "maintenance" (labelled, quiet), are not routed, and do not raise the run's outcome;
when it closes with the problem still there, it is routed then. Windows from the YAML (a weekly
one, across a clock change) and started from Slack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.catalog import Catalog
from app.config import MaintenanceWindow
from app.db import Database
from app.engine import maintenance
from app.engine.alerts import Router
from app.engine.answers import Answers, standing, yaml_rules
from app.models import Finding, Run
from checks.base import Severity
from tests.engine.support import KIND
from tests.engine.test_alerts import ROUTED, Clock, look, notices
from tests.engine.test_findings import Estate, kept, sweep

# Sunday 2026-03-29: Europe/Berlin springs forward at 02:00 (to 03:00 CEST, UTC+2).
SPRING = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, before the window
WEEKLY = MaintenanceWindow(
    name="RDS upgrades", accounts=("quick",), checks=(KIND,), cron="0 2 * * SUN",
    duration=timedelta(hours=2), reason="Weekly engine patching",
)  # fmt: skip
BERLIN = ROUTED.model_copy(update={"timezone": "Europe/Berlin", "maintenance": (WEEKLY,)})


def routed_in_berlin(db: Database, clock: Clock) -> Router:
    return Router(db, lambda: Catalog([BERLIN]), clock)


async def test_a_crit_during_a_weekly_window_is_quiet_and_routed_once_it_closes(
    db: Database,
) -> None:
    clock = Clock()
    clock.now = SPRING
    router = routed_in_berlin(db, clock)
    await look(db, router, ("db-1", "crit"))  # 01:30 CET: no window yet
    assert [n[:2] for n in await notices(db)] == [
        ("pagerduty", "trigger"),
        ("webhook:0", "trigger"),
    ]

    clock.now = SPRING + timedelta(minutes=45)  # 03:15 CEST: the window opened at 03:00
    await look(db, router, ("db-2", "crit"))  # db-1 is gone
    assert len(await notices(db)) == 2 + 2  # db-1 resolved (sent); db-2 in maintenance: nothing
    async with db.read() as session:
        db2 = (
            await session.execute(select(Finding).where(Finding.resource == "db-2"))
        ).scalar_one()
    now_is = standing(db2, yaml_rules(BERLIN), clock.now)
    assert now_is.state == "maintenance" and now_is.quiet
    assert now_is.until == datetime(2026, 3, 29, 3, 0, tzinfo=UTC)  # 05:00 CEST: 2 real hours
    assert [n[:3] for n in await notices(db)][2:] == [
        ("pagerduty", "resolve", "db-1"), ("webhook:0", "resolve", "db-1"),
    ]  # fmt: skip

    clock.now = datetime(2026, 3, 29, 2, 59, tzinfo=UTC)  # 04:59 CEST: still open
    assert await router.sweep() == 0
    clock.now = datetime(2026, 3, 29, 3, 0, tzinfo=UTC)  # 05:00 CEST: closed, still there
    assert await router.sweep() == 2
    assert [n[:3] for n in await notices(db)][4:] == [
        ("pagerduty", "trigger", "db-2"), ("webhook:0", "trigger", "db-2"),
    ]  # fmt: skip


async def test_a_window_started_from_slack_keeps_a_run_ok_and_labels_its_findings(
    db: Database,
) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.CRIT)]
    before = await sweep(db, estate)
    now = datetime.now(UTC)
    await maintenance.start(
        db, "engine", name="Maintenance of quick", accounts=["quick"], checks=None,
        starts_at=now, ends_at=now + timedelta(hours=1), reason="failover test",
        by="U0ALICE", audit={},
    )  # fmt: skip
    during = await sweep(db, estate)
    async with db.read() as session:
        outcomes = dict((await session.execute(select(Run.id, Run.outcome))).all())
    assert outcomes[before] == "crit"
    assert outcomes[during] == "ok", "a crit inside the window does not raise the outcome"
    answers = Answers(db)
    [found] = (await kept(db)).values()
    [(_, now_is)] = (await answers.standings("engine", [found.fingerprint])).values()
    assert now_is.state == "maintenance" and now_is.by == "U0ALICE"
    assert now_is.reason == "failover test"
    assert [r.origin for r in await answers.rules("engine", ended=True)] == []  # not a mute rule
