"""One large run shared by several executors: shards claimed by whoever has room, one record,
one end; a replica that dies mid-shard loses nothing; cancel reaches every replica's shards.
In-process executors on one database (both back ends); tests/engine/test_shards_replicas.py
does the same with real ``serve`` processes and a kill -9."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select, update

from app.catalog import Catalog
from app.config import Account, Customer
from app.db import Database
from app.engine import shards
from app.engine import transitions as tx
from app.engine.events import Event
from app.models import Result, RunEvent, RunShard, RunStatus, ShardStatus
from tests.engine.support import (
    KIND,
    Scripted,
    all_done,
    fast,
    jitters,
    queue,
    runs,
    serving,
    sleeps,
    wait_until,
)

ACCOUNTS = tuple(f"acct{index:02d}" for index in range(40))
BIG = Customer(
    id="big",
    name="Big estate",
    accounts=tuple(
        Account(
            id=alias,
            name=alias,
            account_id=f"{index + 100:012d}",
            regions=("eu-west-1",),
            checks=(KIND,),
        )
        for index, alias in enumerate(ACCOUNTS)
    ),
)
CATALOG = Catalog([BIG])


async def big_run(db: Database, accounts: tuple[str, ...] = ACCOUNTS) -> int:
    (run_id,) = await queue(db, accounts=accounts, customer_id=BIG.id)
    return run_id


async def results_of(db: Database, run_id: int) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(Result.account, Result.check).where(Result.run_id == run_id)
        )
        return [(account, check) for account, check in rows.all()]


async def shard_rows(db: Database, run_id: int) -> list[RunShard]:
    async with db.read() as session:
        found = await session.execute(
            select(RunShard).where(RunShard.run_id == run_id).order_by(RunShard.shard)
        )
        return list(found.scalars().all())


async def events_of(db: Database, run_id: int, kind: Event) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(RunEvent)
                .where(RunEvent.run_id == run_id, RunEvent.type == kind.value)
            )
            or 0
        )


def test_a_run_is_split_small_enough_for_every_replica_to_share_it() -> None:
    def targets(count: int) -> list[dict[str, str]]:
        return [{"account": f"a{i // 4}", "check": f"c{i % 4}"} for i in range(count)]

    assert not shards.sharded(targets(8))  # a small run runs whole where it is claimed
    assert [len(s) for s in shards.split(targets(60))] == [2] * 30
    assert [len(s) for s in shards.split(targets(800))] == [8] * 100
    assert [len(s) for s in shards.split(targets(9))] == [1] * 9
    # Every target once, and a shard reaches different accounts (their AssumeRole spreads).
    split = shards.split(targets(800))
    assert sorted(str(t) for s in split for t in s) == sorted(str(t) for t in targets(800))
    assert len({t["account"] for t in split[0]}) == 8


async def test_two_executors_share_one_large_run_and_it_ends_once(db: Database) -> None:
    run_id = await big_run(db)
    first, second = Scripted(jitters(0.15)), Scripted(jitters(0.15))
    options = fast(max_targets=4)  # room for a few shards each, so both must take part
    async with (
        serving(db, first, options, owner="one", catalog=CATALOG),
        serving(db, second, options, owner="two", catalog=CATALOG),
    ):
        await wait_until(lambda: all_done(db, [run_id]))
    (run,) = await runs(db, [run_id])
    assert run.status == RunStatus.COMPLETED
    recorded = await results_of(db, run_id)
    assert sorted(recorded) == sorted((a, KIND) for a in ACCOUNTS)  # each exactly once
    by = Counter(s.done_by for s in await shard_rows(db, run_id))
    assert set(by) == {"one", "two"}, by  # both replicas did shards
    assert len(first.calls) + len(second.calls) == len(ACCOUNTS)
    assert await events_of(db, run_id, Event.COMPLETED) == 1


async def test_a_small_run_makes_no_shards(db: Database) -> None:
    (run_id,) = await queue(db, accounts=ACCOUNTS[:8], customer_id=BIG.id)
    async with serving(db, Scripted(), owner="one", catalog=CATALOG):
        await wait_until(lambda: all_done(db, [run_id]))
    assert await shard_rows(db, run_id) == []
    assert len(await results_of(db, run_id)) == 8


async def test_cancel_stops_every_replicas_shards_within_2s(db: Database) -> None:
    run_id = await big_run(db)
    slow = fast(max_targets=2, cancel_poll_s=0.5)
    first, second = Scripted(sleeps(30)), Scripted(sleeps(30))
    async with (
        serving(db, first, slow, owner="one", catalog=CATALOG),
        serving(db, second, slow, owner="two", catalog=CATALOG),
    ):
        await wait_until(lambda: _running_on(db, run_id, {"one", "two"}))
        async with db.write() as session:
            await tx.request_cancel(session, db, run_id, "U_ONCALL")
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await wait_until(lambda: all_done(db, [run_id]), limit_s=10)
        took = loop.time() - asked
        assert took < 2.0 + 1.0, took  # the promise plus scheduling slack on a busy machine
        written = len(await results_of(db, run_id))
        await asyncio.sleep(0.5)
        assert len(await results_of(db, run_id)) == written  # nothing after the end
    (run,) = await runs(db, [run_id])
    assert run.status == RunStatus.CANCELLED
    assert first.running == 0 and second.running == 0  # the checks themselves stopped
    ended = {s.shard: s.status for s in await shard_rows(db, run_id)}
    assert "queued" not in ended.values() and "running" not in ended.values(), ended
    assert "cancelled" in ended.values()  # those never started, and those stopped midway


async def _running_on(db: Database, run_id: int, owners: set[str]) -> bool:
    return {s.lease_owner for s in await shard_rows(db, run_id) if s.status == "running"} >= owners


async def test_replicas_that_died_mid_run_lose_nothing(db: Database) -> None:
    """The run's owner and a replica holding two of its shards both die (their leases run
    out): the sweeper queues the run and the shards again, a live replica does them, and every
    target is recorded once."""
    run_id = await big_run(db)
    async with db.write() as session:
        claimed = await tx.claim(session, db, "dead-owner", 0.2, run_id)
        assert claimed is not None
        await shards.create(session, db, run_id, claimed.targets)
        dead = await shards.claim(session, db, "dead-helper", 0.2, run_id, 2)
    assert len(dead) == 2
    await asyncio.sleep(0.3)
    check = Scripted()
    async with serving(db, check, fast(), owner="alive", sweep=True, catalog=CATALOG):
        await wait_until(lambda: all_done(db, [run_id]))
    (run,) = await runs(db, [run_id])
    assert run.status == RunStatus.COMPLETED and run.attempt == 2
    assert sorted(await results_of(db, run_id)) == sorted((a, KIND) for a in ACCOUNTS)
    rows = await shard_rows(db, run_id)
    assert {rows[piece.lease.shard].done_by for piece in dead} == {"alive"}
    assert all(rows[piece.lease.shard].attempt == 2 for piece in dead)
    assert len(check.calls) == len(ACCOUNTS)
    assert await events_of(db, run_id, Event.COMPLETED) == 1


async def expire_run_lease(db: Database, run_id: int) -> None:
    async with db.write() as session:
        await session.execute(
            update(tx.RUNS).where(tx.RUNS.c.id == run_id).values(lease_expires_at=db.now_plus(-1))
        )


async def test_a_shard_that_keeps_killing_its_replica_is_recorded_as_errors(
    db: Database,
) -> None:
    run_id = await big_run(db)
    async with db.write() as session:
        claimed = await tx.claim(session, db, "alive", 60.0, run_id)
        assert claimed is not None
        await shards.create(session, db, run_id, claimed.targets)
        await session.execute(
            update(RunShard)
            .where(RunShard.run_id == run_id, RunShard.shard == 0)
            .values(attempt=shards.MAX_ATTEMPTS - 1)
        )
        (doomed,) = await shards.claim(session, db, "dead", 0.1, run_id, 1)
    await asyncio.sleep(0.2)
    await expire_run_lease(db, run_id)
    async with serving(db, Scripted(), fast(), owner="alive", sweep=True, catalog=CATALOG):
        await wait_until(lambda: all_done(db, [run_id]))
    (run,) = await runs(db, [run_id])
    assert run.status == RunStatus.COMPLETED and run.outcome == "error"
    async with db.read() as session:
        errors = (
            await session.execute(
                select(Result.account, Result.summary).where(
                    Result.run_id == run_id, Result.severity == "error"
                )
            )
        ).all()
    assert {account for account, _ in errors} == {t["account"] for t in doomed.targets}
    assert all("stopped responding 3 times" in summary for _, summary in errors)


async def test_a_new_owner_keeps_the_shards_already_done(db: Database) -> None:
    """The owner dies after other replicas did some shards: the run is claimed again and only
    what was not recorded is checked."""
    run_id = await big_run(db)
    async with db.write() as session:
        claimed = await tx.claim(session, db, "dead-owner", 0.2, run_id)
        assert claimed is not None
        await shards.create(session, db, run_id, claimed.targets)
    helper = Scripted()
    async with serving(db, helper, fast(max_targets=1), owner="helper", catalog=CATALOG):
        await wait_until(lambda: _done_count(db, run_id, 3), every=0.005)
    done_before = {s.shard for s in await shard_rows(db, run_id) if s.status == ShardStatus.DONE}
    recorded_before = len(await results_of(db, run_id))
    check = Scripted()
    async with serving(db, check, fast(), owner="new-owner", sweep=True, catalog=CATALOG):
        await wait_until(lambda: all_done(db, [run_id]))
    (run,) = await runs(db, [run_id])
    assert run.status == RunStatus.COMPLETED and run.attempt == 2
    assert sorted(await results_of(db, run_id)) == sorted((a, KIND) for a in ACCOUNTS)
    assert len(check.calls) == len(ACCOUNTS) - recorded_before  # nothing recorded is redone
    after = {s.shard: s.done_by for s in await shard_rows(db, run_id)}
    assert done_before and all(after[shard] == "helper" for shard in done_before)


async def _done_count(db: Database, run_id: int, count: int) -> bool:
    return sum(s.status == ShardStatus.DONE for s in await shard_rows(db, run_id)) >= count


async def test_shutdown_puts_a_replicas_shards_back_with_what_they_recorded(
    db: Database,
) -> None:
    run_id = await big_run(db)
    slow = Scripted(sleeps(30), **{a: sleeps(0) for a in ACCOUNTS[:20]})
    options = fast(grace_s=0.3, max_targets=8)
    async with serving(db, slow, options, owner="leaving", catalog=CATALOG):
        await wait_until(lambda: _running_on(db, run_id, {"leaving"}))
        await asyncio.sleep(0.3)
    # Back in the queue without using an attempt, with what finished kept.
    rows = await shard_rows(db, run_id)
    assert all(s.status != ShardStatus.RUNNING for s in rows)
    assert all(s.attempt == 0 for s in rows if s.status == ShardStatus.QUEUED)
    kept = len(await results_of(db, run_id))
    check = Scripted()
    async with serving(db, check, fast(), owner="next", catalog=CATALOG):
        await wait_until(lambda: all_done(db, [run_id]))
    assert sorted(await results_of(db, run_id)) == sorted((a, KIND) for a in ACCOUNTS)
    assert len(check.calls) == len(ACCOUNTS) - kept
