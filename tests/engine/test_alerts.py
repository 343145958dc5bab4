"""Where attention goes, in the engine, on each database: which changes of a finding are queued
for PagerDuty and webhooks, once each, whoever decides them — with time frozen for snoozes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.catalog import Catalog
from app.config import PagerDutyRoute, Routing, WebhookRoute
from app.db import Database
from app.engine import blind, findings
from app.engine.alerts import Decision, Router, decide, dedup_key, thread_says
from app.engine.answers import Answers, Standing
from app.models import Finding, Notice
from tests.engine.support import CUSTOMER, KIND, queue
from tests.engine.test_findings import result

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
ROUTED = CUSTOMER.model_copy(
    update={
        "routing": Routing(
            pagerduty=PagerDutyRoute(routing_key_env="PD_KEY_ENGINE"),
            webhooks=(
                WebhookRoute(
                    url_env="ENGINE_HOOK_URL",
                    secret_env="ENGINE_HOOK_SECRET",
                    severities=("crit", "warn"),
                ),
            ),
        )
    }
)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


OPEN, ACKED = Standing("open"), Standing("acknowledged", "U0ALICE")
SNOOZED, MUTED = Standing("snoozed", "U0BOB"), Standing("muted")


@pytest.mark.parametrize(
    ("status", "severity", "routed", "now_is", "takes", "wanted"),
    [
        ("open", "crit", None, OPEN, {"crit"}, Decision("trigger", "crit")),
        ("open", "warn", None, OPEN, {"crit"}, None),  # nobody takes a warning
        ("open", "crit", "warn", OPEN, {"crit", "warn"}, Decision("trigger", "crit")),  # worse
        ("open", "warn", "crit", OPEN, {"crit", "warn"}, None),  # better: nothing new
        ("open", "crit", "crit", ACKED, {"crit"}, Decision("acknowledge", "crit:ack")),
        ("open", "crit", "crit:ack", ACKED, {"crit"}, None),
        ("open", "crit", None, SNOOZED, {"crit"}, None),  # snoozed first: never sent
        ("open", "crit", "crit", SNOOZED, {"crit"}, None),  # sent, then snoozed: left as is
        ("open", "crit", "crit", MUTED, {"crit"}, Decision("resolve", None)),
        ("resolved", "crit", "crit:ack", Standing("resolved"), {"crit"}, Decision("resolve", None)),
        ("resolved", "crit", None, Standing("resolved"), {"crit"}, None),
    ],
)
def test_what_is_sent_follows_from_the_findings_state_alone(
    status: str,
    severity: str,
    routed: str | None,
    now_is: Standing,
    takes: set[str],
    wanted: Decision | None,
) -> None:
    assert decide(status, severity, routed, now_is, takes) == wanted


RESOLVED = Standing("resolved")


@pytest.mark.parametrize(
    ("status", "severity", "told", "now_is", "wanted"),
    [
        ("open", "crit", None, OPEN, "crit:open"),  # turns crit: the thread starts
        ("open", "warn", None, OPEN, None),  # a warning gets no thread
        ("open", "crit", None, ACKED, "crit:acknowledged"),  # known already, still alerted
        ("open", "crit", None, SNOOZED, None),  # quiet before it was alerted: no thread yet
        ("open", "crit", None, MUTED, None),
        ("open", "crit", "crit:open", OPEN, None),  # as the thread says
        ("open", "crit", "crit:open", ACKED, "crit:acknowledged"),
        ("open", "warn", "crit:open", OPEN, "warn:open"),  # better
        ("open", "crit", "warn:open", OPEN, "crit:open"),  # worse again
        ("open", "crit", "crit:snoozed", OPEN, "crit:open"),  # the snooze ended
        ("open", "crit", "crit:open", MUTED, "muted"),
        ("resolved", "crit", "crit:acknowledged", RESOLVED, "resolved"),
        ("resolved", "crit", "resolved", RESOLVED, None),
        ("open", "crit", "resolved", OPEN, "crit:open"),  # came back: a new thread
        ("open", "warn", "resolved", OPEN, None),
    ],
)
def test_what_a_findings_thread_says_follows_from_its_state_and_what_it_said(
    status: str, severity: str, told: str | None, now_is: Standing, wanted: str | None
) -> None:
    assert thread_says(status, severity, told, now_is) == wanted


def test_the_dedup_key_is_stable_and_fits_pagerduty() -> None:
    assert dedup_key("arbel", "rds:1:eu:db:cpu") == "mhub:arbel:rds:1:eu:db:cpu"
    long = dedup_key("arbel", "x" * 1000)
    assert len(long) <= 255 and long == dedup_key("arbel", "x" * 1000)


async def notices(db: Database) -> list[tuple[str, str, str, str]]:
    async with db.read() as session:
        rows = await session.execute(select(Notice).order_by(Notice.id))
        return [
            (n.destination, n.action, n.payload["resource"], n.payload["severity"])
            for n in rows.scalars()
        ]


async def look(db: Database, router: Router, *lines: tuple[str, str]) -> None:
    """A run of the customer that sees ``lines``, ended with its findings routed."""
    [run_id] = await queue(db)
    async with db.write() as session:
        await findings.keep(session, db, [result(run_id, *lines)])
        await router.route(session, [CUSTOMER.id])


def routed(db: Database, clock: Clock | None = None) -> tuple[Router, Answers, Clock]:
    clock = clock or Clock()
    router = Router(db, lambda: Catalog([ROUTED]), clock)
    answers = Answers(db, lambda _: [], clock)
    answers.route = router.route
    return router, answers, clock


async def test_a_crit_is_triggered_once_acknowledged_and_resolved_where_it_is_routed(
    db: Database,
) -> None:
    router, answers, _ = routed(db)
    await look(db, router, ("db-1", "crit"), ("db-2", "warn"))
    assert await notices(db) == [
        ("pagerduty", "trigger", "db-1", "crit"),
        ("webhook:0", "trigger", "db-1", "crit"),
        ("webhook:0", "trigger", "db-2", "warn"),  # PagerDuty takes crit only
    ]
    await look(db, router, ("db-1", "crit"), ("db-2", "warn"))  # seen again: nothing new
    assert len(await notices(db)) == 3

    async with db.read() as session:
        query = select(Finding).where(Finding.resource == "db-1")
        first = (await session.execute(query)).scalar_one()
    await answers.acknowledge(CUSTOMER.id, [first.id], "U0ALICE", {})
    assert (await notices(db))[3:] == [
        ("pagerduty", "acknowledge", "db-1", "crit"),
        ("webhook:0", "acknowledge", "db-1", "crit"),
    ]
    await look(db, router, ("db-2", "crit"))  # db-1 resolves; db-2 gets worse
    assert (await notices(db))[5:] == [
        ("pagerduty", "resolve", "db-1", "crit"),
        ("webhook:0", "resolve", "db-1", "crit"),
        ("pagerduty", "trigger", "db-2", "crit"),
        ("webhook:0", "trigger", "db-2", "crit"),  # worse: its second, PagerDuty's first
    ]
    async with db.read() as session:
        keys = {n.payload["dedup_key"] for n in (await session.execute(select(Notice))).scalars()
                if n.payload["resource"] == "db-1"}  # fmt: skip
    assert keys == {dedup_key(CUSTOMER.id, first.fingerprint)}


async def test_a_snoozed_crit_is_sent_when_its_snooze_ends_and_a_muted_one_resolves(
    db: Database,
) -> None:
    router, answers, clock = routed(db)
    [run_id] = await queue(db)
    async with db.write() as session:  # seen, not routed yet (no router in this transaction)
        await findings.keep(session, db, [result(run_id, ("db-1", "crit"), ("db-2", "crit"))])
    async with db.read() as session:
        rows = {f.resource: f for f in (await session.execute(select(Finding))).scalars()}
    await answers.snooze(
        CUSTOMER.id, [rows["db-1"].id], "U0BOB", "Planned resize", NOW + timedelta(hours=1), {}
    )
    assert [n[:3] for n in await notices(db)] == [
        ("pagerduty", "trigger", "db-2"),
        ("webhook:0", "trigger", "db-2"),
    ]  # the answer's transaction routed the rest of the customer's findings; db-1 is snoozed
    assert await router.sweep() == 0
    clock.now = NOW + timedelta(hours=1, minutes=1)
    assert await router.sweep() == 2  # the snooze ended, the problem is still there
    assert [n[:3] for n in await notices(db)][2:] == [
        ("pagerduty", "trigger", "db-1"),
        ("webhook:0", "trigger", "db-1"),
    ]
    await answers.mute(
        CUSTOMER.id, check=rows["db-2"].check, account=None, region=None, resource="db-2",
        reason="Known, fixing next sprint", owner=None, until=None, by="U0BOB", audit={},
    )  # fmt: skip
    assert [n[:3] for n in await notices(db)][4:] == [
        ("pagerduty", "resolve", "db-2"),
        ("webhook:0", "resolve", "db-2"),
    ]


async def test_two_replicas_sweeping_at_once_queue_each_transition_once(db: Database) -> None:
    [run_id] = await queue(db)
    async with db.write() as session:
        lines = [(f"db-{i}", "crit") for i in range(20)]
        await findings.keep(session, db, [result(run_id, *lines)])
    one, _, _ = routed(db)
    two, _, _ = routed(db)
    results = await asyncio.gather(one.sweep(), two.sweep(), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len(await notices(db)) == 40  # 20 findings × 2 destinations, whoever wrote them
    assert await one.sweep() == 0 and await two.sweep() == 0


async def test_a_customer_without_routing_queues_nothing(db: Database) -> None:
    router = Router(db, lambda: Catalog([CUSTOMER]))
    await look(db, router, ("db-1", "crit"))
    assert await notices(db) == []
    assert await router.sweep() == 0


async def sees(db: Database, router: Router, ok: bool, at: datetime) -> None:
    """A run of the customer whose ``quick`` account could (``ok``) or could not look, ended
    with its sights kept and routed (as the writer does)."""
    [run_id] = await queue(db)
    why = "cannot assume the role (AccessDenied)"
    one = blind.Sighting("quick", KIND, at, ok, None if ok else "role", None if ok else why)
    async with db.write() as session:
        await blind.keep(session, db, CUSTOMER.id, run_id, [one], at)
        await router.route(session, [CUSTOMER.id])


async def blind_notices(db: Database) -> list[tuple[str, str, str]]:
    async with db.read() as session:
        rows = (await session.execute(select(Notice).order_by(Notice.id))).scalars()
        return [(n.destination, n.action, n.payload["state"]) for n in rows if n.sight_id]


async def test_a_blind_spot_is_triggered_like_a_crit_and_resolved_when_it_looks_again(
    db: Database,
) -> None:
    router, _, clock = routed(db)
    await sees(db, router, False, NOW)  # one look could not: not blind yet
    assert await blind_notices(db) == []
    await sees(db, router, False, NOW + timedelta(hours=1))  # the second in a row
    assert await blind_notices(db) == [
        ("pagerduty", "trigger", "blind"),
        ("webhook:0", "trigger", "blind"),
    ]
    await sees(db, router, False, NOW + timedelta(hours=2))  # still blind: nothing new
    assert len(await blind_notices(db)) == 2
    await sees(db, router, True, NOW + timedelta(hours=3))
    assert (await blind_notices(db))[2:] == [
        ("pagerduty", "resolve", "resolved"),
        ("webhook:0", "resolve", "resolved"),
    ]
    async with db.read() as session:
        rows = list((await session.execute(select(Notice).order_by(Notice.id))).scalars())
    first = rows[0].payload
    assert first["kind"] == "blind_spot" and first["severity"] == "crit"
    assert first["dedup_key"] == dedup_key(CUSTOMER.id, f"blind:quick:{KIND}")
    assert "the role cannot be assumed" in first["summary"] or "AccessDenied" in first["summary"]
    assert {n.payload["dedup_key"] for n in rows} == {first["dedup_key"]}  # one incident

    clock.now = NOW + timedelta(hours=4)
    await sees(db, router, False, clock.now)  # one failure, an hour after it looked
    assert await router.sweep() == 0
    clock.now += timedelta(hours=24)
    assert await router.sweep() == 2  # no look succeeded for 24 h: a new episode
    assert (await blind_notices(db))[4:] == [
        ("pagerduty", "trigger", "blind"),
        ("webhook:0", "trigger", "blind"),
    ]


async def test_a_blind_spot_taken_out_of_the_configuration_is_resolved(db: Database) -> None:
    router, _, _ = routed(db)
    await sees(db, router, False, NOW)
    await sees(db, router, False, NOW + timedelta(hours=1))
    gone = ROUTED.model_copy(update={"accounts": ROUTED.accounts[1:]})  # no "quick" any more
    router.catalog = lambda: Catalog([gone])
    assert await router.sweep() == 2
    assert [n[1] for n in await blind_notices(db)] == ["trigger", "trigger", "resolve", "resolve"]
