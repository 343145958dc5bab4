"""Submitting a burst of runs in one transaction, and group commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from app.batch import GroupCommit
from app.catalog import Catalog, Plan
from app.config import Account, Customer
from app.db import Database
from app.engine.changes import RunChanges
from app.engine.runs import RunService, Submit
from app.models import RunStatus, Source

CATALOG = Catalog(
    [
        Customer(
            id="aryanoble",
            name="Aryanoble",
            accounts=(
                Account(
                    id="arbel",
                    name="Arbel",
                    account_id="111122223333",
                    regions=("ap-southeast-3",),
                    checks=("rds", "budget"),
                ),
            ),
        )
    ]
)


def plan(target: str = "arbel", *checks: str) -> Plan:
    return CATALOG.plan(target, checks)


async def test_it_queues_a_burst_of_runs_like_one_by_one(db: Database) -> None:
    changes = RunChanges()
    notified: list[int] = []
    changes.subscribe(notified.append)
    runs = RunService(db, changes=changes)
    results = await runs.submit_many(
        [Submit(plan("arbel", "rds"), f"U{i}", Source.SLASH, channel_id="C1") for i in range(5)]
    )
    assert [created for _, created in results] == [True] * 5
    ids = [run.id for run, _ in results]
    assert ids == sorted(ids) and notified == ids
    view = await runs.get(ids[2], events=True)
    assert view.run.requested_by == "U2" and view.run.status == RunStatus.QUEUED
    assert view.run.targets == [{"account": "arbel", "check": "rds"}]
    assert [e.type for e in view.events] == ["created"]


async def test_each_run_of_a_burst_is_the_one_its_request_asked_for_with_its_grant_first(
    db: Database,
) -> None:
    runs = RunService(db)
    requests = [
        Submit(
            plan("arbel", "rds" if i % 3 else "budget"),
            f"U{i}",
            Source.SLASH,
            channel_id=f"C{i}",
            idempotency_key=f"slash:{i}",
            access={"action": "run", "allowed": True, "reason": "user", "channel": f"C{i}"},
        )
        for i in range(40)
    ]
    results = await runs.submit_many(requests)
    for request, (run, created) in zip(requests, results, strict=True):
        assert created
        assert (run.requested_by, run.channel_id, run.idempotency_key) == (
            request.requested_by,
            request.channel_id,
            request.idempotency_key,
        )
        assert run.targets == [{"account": a, "check": c} for a, c in request.plan.targets]
        events = (await runs.get(run.id, events=True)).events
        assert [(e.type, e.actor) for e in events] == [
            ("access", request.requested_by),
            ("created", request.requested_by),
        ]
        assert events[0].data["channel"] == request.channel_id


async def test_it_returns_the_existing_run_for_a_key_seen_before_or_repeated(db: Database) -> None:
    runs = RunService(db)
    first, _ = await runs.submit(Submit(plan(), "U1", Source.SLASH, idempotency_key="slash:1"))
    results = await runs.submit_many(
        [
            Submit(plan(), "U1", Source.SLASH, idempotency_key="slash:1"),
            Submit(plan(), "U2", Source.SLASH, idempotency_key="slash:2"),
            Submit(plan(), "U2", Source.SLASH, idempotency_key="slash:2"),
        ]
    )
    assert [(run.id, created) for run, created in results] == [
        (first.id, False),
        (results[1][0].id, True),
        (results[1][0].id, False),
    ]
    assert len(await runs.recent()) == 2


async def test_it_lets_concurrent_callers_share_one_write() -> None:
    batches: list[int] = []

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(len(items))
        await asyncio.sleep(0)
        return [item * 2 for item in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    assert await asyncio.gather(*(group.add(i) for i in range(10))) == [i * 2 for i in range(10)]
    assert sum(batches) == 10 and len(batches) <= 2


async def test_it_waits_for_a_burst_that_trickles_in_and_writes_it_once() -> None:
    batches: list[int] = []

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(len(items))
        return list(items)

    async def arrive(group: GroupCommit[int, int]) -> list[int]:
        adds = []
        for i in range(20):  # one item per turn of the loop, like envelopes being parsed
            adds.append(asyncio.create_task(group.add(i)))
            await asyncio.sleep(0)
        return list(await asyncio.gather(*adds))

    assert await arrive(GroupCommit(write, settle_s=0.05, settle_max_s=5)) == list(range(20))
    assert batches == [20]
    batches.clear()
    await arrive(GroupCommit(write))  # without settling: the first item goes alone
    assert batches[0] == 1 and sum(batches) == 20


async def test_it_gives_every_caller_of_a_failed_batch_the_error() -> None:
    async def write(items: Sequence[int]) -> list[int]:
        raise RuntimeError("disk full")

    group: GroupCommit[int, int] = GroupCommit(write)
    outcomes = await asyncio.gather(*(group.add(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
