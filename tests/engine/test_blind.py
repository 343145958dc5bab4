"""Blind spots kept across runs, on each database: a role that stops being assumable becomes a
blind spot on the second look and leaves when it works again (real runs through the executor,
AWS a moto server behind the fault-injecting edge); a refused call says which; 24 hours
without a successful look is blind at the first failure; an older run recorded late, or a run
recorded twice, changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.catalog import Catalog
from app.db import Database
from app.engine import blind
from app.engine.blind import Sighting
from app.engine.executor import Executor
from app.engine.retry import RetryPolicy
from app.engine.runs import RunService, Submit
from app.models import RunStatus, Sight, Source
from app.sandbox.edge import Edge
from checks.aws import AwsClients
from checks.registry import REGISTRY
from tests.checks.support import ARBEL, account, customer

REGION = "eu-west-1"
QUICK = RetryPolicy(max_tries=2, base_s=0.01, cap_s=0.02)
WHO = customer(account("arbel", ARBEL).model_copy(update={"checks": ("backup",)}))
CATALOG = Catalog([WHO])
T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def edge_server(moto_url: str) -> Iterator[Edge]:
    with Edge(moto_url) as edge:
        yield edge


@pytest.fixture
def edge(aws: str, edge_server: Edge, monkeypatch: pytest.MonkeyPatch) -> Edge:
    """The edge, emptied, with this process's AWS_ENDPOINT_URL pointing at it."""
    edge_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", edge_server.url)
    edge_server.add_backup_jobs(
        ARBEL,
        REGION,
        [
            {
                "resource_arn": f"arn:aws:rds:{REGION}:{ARBEL}:db:main",
                "created": datetime.now(UTC) - timedelta(hours=1),
            }
        ],
    )
    return edge_server


async def look(db: Database) -> str:
    """One run of arbel's backup check, to the end, by a hub process of its own (so its role is
    assumed afresh, as after a restart or when its credentials renew); the result's summary."""
    runs = RunService(db)
    run, _ = await runs.submit(Submit(CATALOG.plan("arbel"), "U0TEST", Source.CLI))
    clients = AwsClients()
    try:
        await Executor(db, CATALOG, REGISTRY, clients, retry=QUICK).run_until_done(run.id)
    finally:
        clients.close()
    view = await runs.get(run.id)
    assert view.run.status == RunStatus.COMPLETED
    [result] = view.results
    return result.summary


async def spots(db: Database, now: datetime | None = None) -> list[blind.BlindSpot]:
    async with db.read() as session:
        return await blind.blind_spots(session, ["aryanoble"], now or datetime.now(UTC))


async def sight(db: Database, check: str = "backup") -> Sight:
    async with db.read() as session:
        return (await session.execute(select(Sight).where(Sight.check == check))).scalar_one()


async def test_a_role_that_stops_being_assumable_is_blind_on_the_second_look_until_it_works(
    db: Database, edge: Edge
) -> None:
    assert await look(db) == "1 completed in the last 24h"
    seeing = await sight(db)
    assert (seeing.failed, seeing.reason, seeing.failing_since) == (0, None, None)
    last_ok = seeing.last_ok_at
    assert last_ok is not None

    edge.inject(error="access-denied", operations=["sts:AssumeRole"])
    first = await look(db)
    assert "cannot assume" in first
    once = await sight(db)
    assert (once.failed, once.reason, once.last_ok_at) == (1, "role", last_ok)
    assert once.detail == first
    assert await spots(db) == []  # one failed look, seen minutes ago: not yet

    await look(db)
    [spot] = await spots(db)
    assert (spot.customer, spot.account, spot.check) == ("aryanoble", "arbel", "backup")
    assert (spot.failed, spot.reason, spot.call) == (2, "role", "sts:AssumeRole")
    assert spot.since == last_ok
    assert spot.failing_since == once.failing_since  # the first failure, not the last
    assert "sts:AssumeRole" in spot.why and "trust policy" in spot.why

    edge.clear_faults()
    assert await look(db) == "1 completed in the last 24h"
    assert await spots(db) == []
    back = await sight(db)
    assert (back.failed, back.reason, back.failing_since) == (0, None, None)
    assert back.last_ok_at is not None and back.last_ok_at > last_ok


async def test_a_refused_call_is_named_with_the_permission_the_role_needs(
    db: Database, edge: Edge
) -> None:
    edge.inject(error="access-denied", operations=["backup:ListBackupJobs"])
    await look(db)
    await look(db)

    [spot] = await spots(db)
    assert (spot.reason, spot.call) == ("access", "backup:ListBackupJobs")
    assert spot.why == (
        "AccessDeniedException on backup:ListBackupJobs; the role needs backup:ListBackupJobs"
    )
    assert spot.last_ok_at is None  # never looked successfully
    assert "Grant it to" in spot.detail


def sighted(ok: bool, at: datetime, check: str = "backup") -> Sighting:
    if ok:
        return Sighting("arbel", check, at, ok=True)
    return Sighting("arbel", check, at, False, "access", "arbel: access denied")


async def keep(db: Database, run_id: int, *sightings: Sighting) -> None:
    async with db.write() as session:
        at = max(s.at for s in sightings)
        await blind.keep(session, db, "aryanoble", run_id, sightings, at)


async def test_a_day_without_a_successful_look_is_blind_at_the_first_failure(
    db: Database,
) -> None:
    await keep(db, 1, sighted(True, T0))
    await keep(db, 2, sighted(False, T0 + timedelta(hours=23)))

    assert await spots(db, T0 + timedelta(hours=23, minutes=59)) == []
    [spot] = await spots(db, T0 + timedelta(hours=24, minutes=1))
    assert (spot.failed, spot.since) == (1, T0)


async def test_a_look_that_never_succeeded_is_blind_a_day_after_its_first_failure(
    db: Database,
) -> None:
    await keep(db, 1, sighted(False, T0))

    assert await spots(db, T0 + timedelta(hours=24)) == []
    [spot] = await spots(db, T0 + timedelta(hours=24, minutes=1))
    assert (spot.failed, spot.last_ok_at, spot.since) == (1, None, T0)


async def test_blind_spots_come_oldest_first(db: Database) -> None:
    await keep(db, 1, sighted(True, T0, "budget"))
    await keep(db, 2, sighted(True, T0 + timedelta(hours=1), "alarms"))
    for run_id in (3, 4):
        at = T0 + timedelta(hours=run_id)
        await keep(db, run_id, sighted(False, at, "alarms"), sighted(False, at, "budget"))

    assert [s.check for s in await spots(db, T0 + timedelta(hours=5))] == ["budget", "alarms"]


async def test_an_older_run_recorded_late_changes_nothing(db: Database) -> None:
    await keep(db, 5, sighted(False, T0))
    await keep(db, 4, sighted(True, T0 - timedelta(hours=1)))  # ended after run 5

    late = await sight(db)
    assert (late.failed, late.last_ok_at, late.looked_run_id) == (1, None, 5)

    await keep(db, 6, sighted(False, T0 + timedelta(hours=1)))
    assert (await sight(db)).failed == 2


async def test_a_run_kept_twice_counts_once(db: Database) -> None:
    await keep(db, 7, sighted(False, T0))
    await keep(db, 7, sighted(False, T0))

    assert (await sight(db)).failed == 1
    assert await spots(db, T0 + timedelta(hours=1)) == []


async def test_keeping_leaves_what_routing_wrote_alone(db: Database) -> None:
    await keep(db, 1, sighted(False, T0))
    async with db.write() as session:
        await session.execute(update(Sight).values(routed="crit", told="thread"))
    await keep(db, 2, sighted(False, T0 + timedelta(hours=1)))
    await keep(db, 3, sighted(True, T0 + timedelta(hours=2)))

    kept = await sight(db)
    assert (kept.failed, kept.routed, kept.told) == (0, "crit", "thread")


@pytest.mark.parametrize(
    ("failed", "last_ok_h", "failing_h", "blind_at_now"),
    [
        (0, 48, None, False),  # seeing: never blind, however old its last look
        (1, 23, 1, False),  # one failure, seen within a day
        (1, 25, 1, True),  # one failure, not seen for more than a day
        (1, None, 23, False),  # never seen, failing for less than a day
        (1, None, 25, True),  # never seen, failing for more than a day
        (2, 1, 0.5, True),  # two failures in a row
    ],
)
def test_is_blind_after_two_failed_looks_or_a_day_unseen(
    failed: int, last_ok_h: float | None, failing_h: float | None, blind_at_now: bool
) -> None:
    now = T0 + timedelta(days=3)

    def ago(hours: float | None) -> Any:
        return None if hours is None else now - timedelta(hours=hours)

    one = Sight(failed=failed, last_ok_at=ago(last_ok_h), failing_since=ago(failing_h))

    assert blind.is_blind(one, now) is blind_at_now


@pytest.mark.parametrize(
    ("reason", "call", "code", "line"),
    [
        ("role", "sts:AssumeRole", "AccessDenied",
         "AccessDenied on sts:AssumeRole: the role cannot be assumed; its trust policy must "
         "allow the hub"),
        ("role", "rds:DescribeDBInstances", "InvalidClientTokenId",
         "InvalidClientTokenId on rds:DescribeDBInstances: AWS did not accept the hub's "
         "credentials"),
        ("throttled", "backup:ListBackupJobs", "ThrottlingException",
         "AWS kept throttling backup:ListBackupJobs (ThrottlingException)"),
        ("subscription", "backup:ListBackupJobs", "SubscriptionRequiredException",
         "SubscriptionRequiredException on backup:ListBackupJobs: the account is not "
         "subscribed"),
        ("region", "backup:ListBackupJobs", "UnrecognizedClientException",
         "UnrecognizedClientException on backup:ListBackupJobs: the region is not enabled for "
         "the account"),
        ("timeout", None, None, "AWS did not answer in time"),
        ("other", None, None, "arbel (111111111111): the backup settings are invalid"),
    ],
)  # fmt: skip
def test_each_blind_spot_says_why_in_one_line(
    reason: str, call: str | None, code: str | None, line: str
) -> None:
    said = "arbel (111111111111): the backup settings are invalid\n(2 problems)"

    assert blind.why(reason, said if reason == "other" else "…", call, code).startswith(line)
