"""Every transition of the run state machine, allowed and refused, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.engine import transitions as tx
from app.engine.results import ResultRow
from app.models import Result, Run, RunEvent, RunStatus
from tests.engine.support import queue, runs

Move = Callable[[AsyncSession, Database, list[tx.Lease]], Awaitable[set[int]]]

WORKER_MOVES: dict[str, tuple[Move, RunStatus, str]] = {
    "complete": (
        lambda s, db, leases: tx.complete(s, db, leases, "warn"),
        RunStatus.COMPLETED,
        "completed",
    ),
    "fail": (
        lambda s, db, leases: tx.fail(s, db, leases, "customer removed"),
        RunStatus.FAILED,
        "failed",
    ),
    "cancelled": (
        lambda s, db, leases: tx.cancelled(s, db, leases, None),
        RunStatus.CANCELLED,
        "cancelled",
    ),
    "release": (
        lambda s, db, leases: tx.release(s, db, leases, "shutdown"),
        RunStatus.QUEUED,
        "requeued",
    ),
}


async def claim(db: Database, owner: str = "w1", lease_s: float = 30) -> tx.Claimed:
    async with db.write() as session:
        run = await tx.claim(session, db, owner, lease_s)
    assert run is not None
    return run


async def get(db: Database, run_id: int) -> Run:
    [run] = await runs(db, [run_id])
    return run


async def events(db: Database, run_id: int) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(RunEvent.type, RunEvent.actor)
            .where(RunEvent.run_id == run_id)
            .order_by(RunEvent.id)
        )
        return [(kind, actor) for kind, actor in rows.all()]


async def expire(db: Database, run_id: int) -> None:
    async with db.write() as session:
        await session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


async def move(db: Database, name: str, lease: tx.Lease) -> set[int]:
    async with db.write() as session:
        return await WORKER_MOVES[name][0](session, db, [lease])


def test_it_allows_only_the_documented_status_changes() -> None:
    q, r, c, f, x = (
        RunStatus.QUEUED,
        RunStatus.RUNNING,
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
    )
    allowed = {(q, r), (q, x), (r, c), (r, f), (r, x), (r, q)}
    for old in RunStatus:
        for new in RunStatus:
            assert tx.can_move(old, new) == ((old, new) in allowed), (old, new)


# -- claim ---------------------------------------------------------------------------------------


async def test_it_claims_the_oldest_queued_run_and_leases_it(db: Database) -> None:
    first, _ = await queue(db, 2)
    run = await claim(db, "worker-1", lease_s=30)
    assert run.id == first
    assert (run.status, run.attempt, run.lease_owner) == (RunStatus.RUNNING, 1, "worker-1")
    assert run.lease_expires_at is not None and run.heartbeat_at is not None
    assert timedelta(seconds=29) < run.lease_expires_at - run.heartbeat_at < timedelta(seconds=31)
    assert await events(db, first) == [("claimed", "worker-1")]


async def test_it_claims_nothing_when_no_run_is_queued(db: Database) -> None:
    [run_id] = await queue(db)
    lease = tx.Lease.of(await claim(db))
    async with db.write() as session:
        assert await tx.claim(session, db, "w2", 30) is None
    await move(db, "complete", lease)
    async with db.write() as session:
        assert await tx.claim(session, db, "w2", 30) is None
    assert (await get(db, run_id)).status == RunStatus.COMPLETED


async def test_it_claims_a_batch_oldest_first_each_run_once(db: Database) -> None:
    ids = await queue(db, 5)
    async with db.write() as session:
        first = await tx.claim_batch(session, db, "w1", 30, 3)
        second = await tx.claim_batch(session, db, "w1", 30, 3)
        third = await tx.claim_batch(session, db, "w1", 30, 3)
    assert [r.id for r in first] == ids[:3]
    assert [r.id for r in second] == ids[3:]
    assert third == []


async def test_it_claims_a_named_run_only_while_it_is_queued(db: Database) -> None:
    _, wanted = await queue(db, 2)
    async with db.write() as session:
        run = await tx.claim(session, db, "cli", 30, run_id=wanted)
        again = await tx.claim(session, db, "cli", 30, run_id=wanted)
    assert run is not None and run.id == wanted
    assert again is None


async def test_it_never_gives_one_run_to_two_concurrent_claimers(db: Database) -> None:
    ids = await queue(db, 60)

    async def claimer(owner: str) -> list[int]:
        got: list[int] = []
        while True:
            async with db.write() as session:
                batch = await tx.claim_batch(session, db, owner, 30, 7)
            if not batch:
                return got
            got += [run.id for run in batch]

    claimed = await asyncio.gather(*(claimer(f"w{i}") for i in range(6)))
    everything = [run_id for got in claimed for run_id in got]
    assert sorted(everything) == ids
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(RunEvent).where(RunEvent.type == "claimed")
        )
    assert count == 60


# -- the lease holder's transitions --------------------------------------------------------------


@pytest.mark.parametrize("name", WORKER_MOVES)
async def test_it_moves_a_running_run_for_its_lease_holder(db: Database, name: str) -> None:
    [run_id] = await queue(db)
    lease = tx.Lease.of(await claim(db, "w1"))
    assert await move(db, name, lease) == {run_id}
    run = await get(db, run_id)
    assert run.status == WORKER_MOVES[name][1]
    assert run.lease_owner is None and run.lease_expires_at is None
    assert (await events(db, run_id))[-1] == (WORKER_MOVES[name][2], "w1")
    if name == "release":
        assert run.attempt == 0  # a shutdown does not use up an attempt
        assert run.finished_at is None
    else:
        assert run.attempt == 1 and run.finished_at is not None


async def lost_by_expiry(db: Database, lease: tx.Lease) -> None:
    """The lease expired, a sweeper requeued the run and another worker claimed attempt 2."""
    await expire(db, lease.run_id)
    async with db.write() as session:
        assert await tx.requeue_stale(session, db, "sweeper") == [(lease.run_id, 1)]
    assert (await claim(db, "w2")).attempt == 2


async def lost_by_release(db: Database, lease: tx.Lease) -> None:
    """Released at shutdown (attempt refunded) and claimed by another worker under the same
    attempt number: only the owner tells the two leases apart."""
    assert await move(db, "release", lease) == {lease.run_id}
    assert (await claim(db, "w2")).attempt == lease.attempt


async def lost_by_finishing(db: Database, lease: tx.Lease) -> None:
    assert await move(db, "complete", lease) == {lease.run_id}


@pytest.mark.parametrize("name", WORKER_MOVES)
@pytest.mark.parametrize("lost", [lost_by_expiry, lost_by_release, lost_by_finishing])
async def test_it_refuses_a_late_write_from_a_worker_that_lost_its_lease(
    db: Database, name: str, lost: Callable[[Database, tx.Lease], Awaitable[None]]
) -> None:
    [run_id] = await queue(db)
    lease = tx.Lease.of(await claim(db, "w1"))
    await lost(db, lease)
    before, timeline = await get(db, run_id), await events(db, run_id)
    assert await move(db, name, lease) == set()
    after = await get(db, run_id)
    assert (after.status, after.attempt, after.lease_owner, after.outcome) == (
        before.status,
        before.attempt,
        before.lease_owner,
        before.outcome,
    )
    assert await events(db, run_id) == timeline


# -- the lease itself ----------------------------------------------------------------------------


async def test_it_extends_a_held_lease_and_passes_on_a_cancel_request(db: Database) -> None:
    [run_id] = await queue(db)
    run = await claim(db, "w1", lease_s=5)
    lease = tx.Lease.of(run)
    async with db.write() as session:
        assert await tx.heartbeat(session, db, [lease], 60) == {run_id: None}
    extended = await get(db, run_id)
    assert extended.lease_expires_at is not None and run.lease_expires_at is not None
    assert extended.lease_expires_at > run.lease_expires_at
    async with db.write() as session:
        await tx.request_cancel(session, db, run_id, "U1")
    async with db.write() as session:
        assert await tx.heartbeat(session, db, [lease], 60) == {run_id: "U1"}
    async with db.read() as session:
        assert await tx.held(session, db, [lease]) == {run_id: "U1"}


async def test_it_refuses_to_extend_a_lost_lease(db: Database) -> None:
    [run_id] = await queue(db)
    lease = tx.Lease.of(await claim(db, "w1"))
    await lost_by_expiry(db, lease)
    async with db.write() as session:
        assert await tx.heartbeat(session, db, [lease], 60) == {}
    async with db.read() as session:
        assert await tx.held(session, db, [lease]) == {}
    assert (await get(db, run_id)).lease_owner == "w2"


def result(lease: tx.Lease, account: str) -> ResultRow:
    now = datetime.now(UTC)
    return ResultRow(
        lease.run_id, lease.attempt, account, "http", "ok", "fine", {}, {}, now, now, lease.owner
    )


async def test_it_writes_results_only_under_a_held_lease(db: Database) -> None:
    [run_id] = await queue(db, accounts=("quick", "slow"))
    lease = tx.Lease.of(await claim(db, "w1"))
    async with db.write() as session:
        assert await tx.record(session, db, [lease], [result(lease, "quick")]) == {run_id}
    await lost_by_expiry(db, lease)
    async with db.write() as session:
        assert await tx.record(session, db, [lease], [result(lease, "slow")]) == set()
    async with db.read() as session:
        written = (await session.execute(select(Result.account, Result.attempt))).all()
    assert written == [("quick", 1)]
    assert ("check_finished", "w1") in await events(db, run_id)


# -- by a user -----------------------------------------------------------------------------------


async def test_it_cancels_a_queued_run_at_once(db: Database) -> None:
    [run_id] = await queue(db)
    async with db.write() as session:
        run = await tx.cancel_queued(session, db, run_id, "U1")
    assert (run.status, run.cancel_requested_by) == (RunStatus.CANCELLED, "U1")
    assert run.finished_at is not None
    assert await events(db, run_id) == [("cancelled", "U1")]


@pytest.mark.parametrize("state", ["running", "finished"])
async def test_it_refuses_to_cancel_as_queued_a_run_that_was_claimed(
    db: Database, state: str
) -> None:
    [run_id] = await queue(db)
    lease = tx.Lease.of(await claim(db))
    if state == "finished":
        await move(db, "complete", lease)
    with pytest.raises(tx.Conflict, match=f"run #{run_id} is no longer queued"):
        async with db.write() as session:
            await tx.cancel_queued(session, db, run_id, "U1")
    assert (await get(db, run_id)).cancel_requested_by is None


async def test_it_flags_a_running_run_for_its_owner_to_stop(db: Database) -> None:
    [run_id] = await queue(db)
    await claim(db, "w1")
    async with db.write() as session:
        run = await tx.request_cancel(session, db, run_id, "U1")
    assert (run.status, run.cancel_requested_by) == (RunStatus.RUNNING, "U1")
    assert (await events(db, run_id))[-1] == ("cancel_requested", "U1")


@pytest.mark.parametrize("state", ["queued", "cancelled"])
async def test_it_refuses_to_flag_a_run_that_is_not_running(db: Database, state: str) -> None:
    [run_id] = await queue(db)
    if state == "cancelled":
        async with db.write() as session:
            await tx.cancel_queued(session, db, run_id, "U1")
    with pytest.raises(tx.Conflict, match="no longer running"):
        async with db.write() as session:
            await tx.request_cancel(session, db, run_id, "U2")


# -- by a sweeper --------------------------------------------------------------------------------


async def test_it_requeues_a_stale_run_and_counts_the_attempt(db: Database) -> None:
    [run_id] = await queue(db)
    await claim(db, "w1")
    await expire(db, run_id)
    async with db.write() as session:
        assert await tx.requeue_stale(session, db, "sweeper:w9") == [(run_id, 1)]
        assert await tx.fail_stale(session, db, "sweeper:w9") == []
    run = await get(db, run_id)
    assert (run.status, run.attempt, run.lease_owner) == (RunStatus.QUEUED, 1, None)
    assert (await events(db, run_id))[-1] == ("requeued", "sweeper:w9")
    assert (await claim(db, "w2")).attempt == 2


async def test_it_leaves_a_run_with_a_live_lease_alone(db: Database) -> None:
    [run_id] = await queue(db)
    await claim(db, "w1")
    async with db.write() as session:
        assert await tx.requeue_stale(session, db, "sweeper") == []
        assert await tx.fail_stale(session, db, "sweeper") == []
    assert (await get(db, run_id)).status == RunStatus.RUNNING


async def test_it_fails_a_stale_run_on_its_last_attempt_with_a_clear_reason(
    db: Database,
) -> None:
    [run_id] = await queue(db, max_attempts=1)
    await claim(db, "w1")
    await expire(db, run_id)
    async with db.write() as session:
        assert await tx.requeue_stale(session, db, "sweeper") == []
        assert await tx.fail_stale(session, db, "sweeper") == [(run_id, 1)]
    run = await get(db, run_id)
    assert (run.status, run.outcome) == (RunStatus.FAILED, "error")
    assert run.error is not None and run.error.startswith("gave up after 1 attempts")
    assert "stopped responding" in run.error


async def test_it_rescues_each_stale_run_once_with_several_sweepers(db: Database) -> None:
    ids = await queue(db, 30)
    async with db.write() as session:
        await tx.claim_batch(session, db, "dead", 30, 30)
    for run_id in ids:
        await expire(db, run_id)

    async def sweeper(name: str) -> list[tuple[int, int]]:
        async with db.write() as session:
            return await tx.requeue_stale(session, db, name, limit=7)

    rescued: list[tuple[int, int]] = []
    while len(rescued) < 30:
        rounds = await asyncio.gather(*(sweeper(f"sweeper:{i}") for i in range(5)))
        rescued += [item for got in rounds for item in got]
    assert sorted(rescued) == [(run_id, 1) for run_id in ids]
    async with db.read() as session:
        requeued = await session.scalar(
            select(func.count()).select_from(RunEvent).where(RunEvent.type == "requeued")
        )
    assert requeued == 30


async def test_it_keeps_the_first_result_when_a_check_ran_again_after_a_crash(
    db: Database,
) -> None:
    [run_id] = await queue(db)
    first = tx.Lease.of(await claim(db, "w1"))
    async with db.write() as session:
        await tx.record(session, db, [first], [result(first, "quick")])
    await lost_by_expiry(db, first)
    second = tx.Lease(run_id, 2, "w2")
    async with db.write() as session:
        assert await tx.record(session, db, [second], [result(second, "quick")]) == {run_id}
    async with db.read() as session:
        written = (await session.execute(select(Result.account, Result.attempt))).all()
    assert written == [("quick", 1)]
