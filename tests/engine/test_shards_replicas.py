"""One large run shared by two executor replicas on PostgreSQL (``app.engine.shards``): both
replicas run its shards and each check once; a replica killed mid-shard loses nothing; a cancel
stops the checks on both replicas within 2 s, writes nothing after, and closes every shard.

The replicas are the real ``serve`` (tests/engine/worker.py, as ``mhub serve --no-slack
--no-web`` runs it) with the recording check, serving a customer of :data:`ACCOUNTS` accounts
so that one run has enough targets to be sharded.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app.catalog import Catalog
from app.config import Account
from app.db import Database
from app.engine.runs import RunService
from app.models import Run, RunStatus
from tests.conftest import PG_SKIP, PG_URL, pg_database
from tests.engine.support import CUSTOMER, KIND, queue, runs, wait_until
from tests.engine.test_replicas import (
    SCHEDULING_SLACK_S,
    STEADY_LEASE_S,
    Replica,
    database,
    db_now,
    replicas,
    scalar,
)

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)

ACCOUNTS = tuple(f"acct-{n:03d}" for n in range(256))
"""One check each: a run of them all has 256 targets, in 32 shards of 8 (a replica claims about
5 at a time: its 32 concurrent checks, plus one shard)."""
CATALOG = Catalog(
    [
        CUSTOMER.model_copy(
            update={
                "accounts": tuple(
                    Account(
                        id=alias,
                        name=alias,
                        account_id=f"{index:012d}",
                        regions=("eu-west-1",),
                        checks=(KIND,),
                    )
                    for index, alias in enumerate(ACCOUNTS, start=1)
                )
            }
        )
    ]
)
CANCEL_BOUND_S = 2.0  # docs/architecture.md: a running run is cancelled within 2 s

LAUNCH = """
import asyncio, logging, sys
from tests.engine import worker
from tests.engine.test_shards_replicas import CATALOG
worker.CATALOG = CATALOG
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
asyncio.run(worker.main(worker.parse(sys.argv[1:])))
"""
"""tests/engine/worker.py serving :data:`CATALOG` instead of the four-account one."""


class Sharer(Replica):
    """A worker replica that serves :data:`CATALOG`."""

    program = ("-c", LAUNCH)


@pytest.fixture
def pg() -> Iterator[str]:
    assert PG_URL
    yield from pg_database(PG_URL)


def delays(seconds: float, accounts: Sequence[str] = ACCOUNTS) -> list[str]:
    return [f"{account}={seconds:g}" for account in accounts]


async def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.read() as session:
        return list((await session.execute(text(sql), params)).all())


async def shards_of(db: Database, run_id: int) -> dict[int, tuple[str, str | None, str | None]]:
    """``{shard: (status, lease_owner, done_by)}``."""
    found = await rows(
        db,
        "SELECT shard, status, lease_owner, done_by FROM run_shards WHERE run_id = :id",
        id=run_id,
    )
    return {shard: (status, owner, done_by) for shard, status, owner, done_by in found}


async def running_on(
    db: Database, run_id: int, owner: str, among: Sequence[str] = ACCOUNTS
) -> set[int]:
    """The shards of ``run_id`` that ``owner`` is running, of those with targets ``among``
    those accounts only."""
    found = await rows(
        db,
        "SELECT shard, targets FROM run_shards "
        "WHERE run_id = :id AND status = 'running' AND lease_owner = :owner",
        id=run_id,
        owner=owner,
    )
    return {shard for shard, targets in found if {t["account"] for t in targets} <= set(among)}


async def holds(db: Database, run_id: int, owner: str, among: Sequence[str] = ACCOUNTS) -> bool:
    return bool(await running_on(db, run_id, owner, among))


async def has_done(db: Database, run_id: int, owner: str) -> bool:
    return any(
        status == "done" and by == owner for status, _, by in (await shards_of(db, run_id)).values()
    )


async def settled(
    db: Database, run_id: int, limit_s: float
) -> dict[int, tuple[str, datetime | None]]:
    """``{shard: (status, finished_at)}`` once none of ``run_id``'s shards is running, or when
    ``limit_s`` has passed."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        found = await rows(
            db, "SELECT shard, status, finished_at FROM run_shards WHERE run_id = :id", id=run_id
        )
        statuses = {shard: (status, at) for shard, status, at in found}
        running = any(status == "running" for status, _ in statuses.values())
        if not running or asyncio.get_running_loop().time() > deadline:
            return statuses
        await asyncio.sleep(0.05)


async def owned_by(db: Database, run_id: int, owner: str) -> bool:
    [run] = await runs(db, [run_id])
    return run.status == RunStatus.RUNNING and run.lease_owner == owner


async def ended(db: Database, run_id: int) -> bool:
    [run] = await runs(db, [run_id])
    return run.finished_at is not None


async def ends(db: Database, run_id: int) -> list[str]:
    found = await rows(
        db,
        "SELECT type FROM run_events WHERE run_id = :id "
        "AND type IN ('completed', 'failed', 'cancelled') ORDER BY id",
        id=run_id,
    )
    return [kind for (kind,) in found]


async def results_of(db: Database, run_id: int) -> list[tuple[str, str]]:
    found = await rows(
        db, "SELECT account, severity FROM results WHERE run_id = :id ORDER BY account", id=run_id
    )
    return [(account, severity) for account, severity in found]


async def test_it_shares_one_runs_shards_between_two_replicas_and_runs_each_check_once(
    pg: str, tmp_path: Path
) -> None:
    async with database(pg, "run_id, account") as db:  # a second execution is an error
        group = [
            Sharer(pg, name, tmp_path / f"{name}.log", jitter=0.5, lease=STEADY_LEASE_S)
            for name in ("r1", "r2")
        ]
        async with replicas(*group):
            [run_id] = await queue(db, accounts=ACCOUNTS)
            await wait_until(lambda: ended(db, run_id), limit_s=60, every=0.1)
        [run] = await runs(db, [run_id])
        assert (run.status, run.outcome) == (RunStatus.COMPLETED, "ok")
        assert await results_of(db, run_id) == [(account, "ok") for account in ACCOUNTS]
        assert await scalar(db, "SELECT count(*) FROM executions") == len(ACCOUNTS)
        shards = await shards_of(db, run_id)
        assert len(shards) > 2 and {status for status, _, _ in shards.values()} == {"done"}
        workers = {by for _, _, by in shards.values()}
        assert workers == {"r1", "r2"}, "the run's shards were not shared"
        assert await ends(db, run_id) == ["completed"]


@pytest.mark.parametrize("owner", [True, False], ids=["run-owner", "shard-worker"])
async def test_it_finishes_a_killed_replicas_shards_on_the_other_with_one_result_each(
    pg: str, tmp_path: Path, owner: bool
) -> None:
    """``owner``: the killed replica is the one that claimed the run (its lease lapses too, and
    the survivor takes the run over with the shards it has); else it only ran shards."""
    async with database(pg, "run_id, account, owner") as db:
        # The doomed replica's checks hang, so its shards are still running when it is killed;
        # when it starts second, the first one's checks must last until it has claimed some.
        doomed = Sharer(pg, "doomed", tmp_path / "doomed.log", delay=delays(600))
        survivor = Sharer(
            pg,
            "survivor",
            tmp_path / "survivor.log",
            delay=delays(1 if owner else 3),
            lease=STEADY_LEASE_S,  # a late heartbeat must not make it run a shard twice
        )
        first, second = (doomed, survivor) if owner else (survivor, doomed)
        async with replicas(first):
            [run_id] = await queue(db, accounts=ACCOUNTS)
            await wait_until(lambda: owned_by(db, run_id, first.owner))
            async with replicas(second):
                await wait_until(lambda: holds(db, run_id, "doomed"), limit_s=30)
                # The work is shared before the kill.
                await wait_until(lambda: has_done(db, run_id, "survivor"), limit_s=30)
                held = await running_on(db, run_id, "doomed")
                doomed.signal(signal.SIGKILL)
                assert await doomed.exited() == -signal.SIGKILL
                await wait_until(lambda: ended(db, run_id), limit_s=60, every=0.1)
        [run] = await runs(db, [run_id])
        assert (run.status, run.outcome) == (RunStatus.COMPLETED, "ok")
        assert run.attempt == (2 if owner else 1)
        assert await results_of(db, run_id) == [(account, "ok") for account in ACCOUNTS]
        shards = await shards_of(db, run_id)
        assert held and {shards[shard][2] for shard in held} == {"survivor"}
        assert {status for status, _, _ in shards.values()} == {"done"}
        assert await ends(db, run_id) == ["completed"]
        assert await scalar(db, "SELECT count(*) FROM runs") == 1
        # At least once: what the killed replica had started ran again on the survivor.
        assert await scalar(db, "SELECT count(*) FROM executions WHERE owner = 'survivor'") == (
            len(ACCOUNTS)
        )


@dataclass
class Cancelled:
    """What :func:`cancel_mid_sweep` saw."""

    run: Run
    asked: datetime
    quick: set[str]
    before: list[tuple[str, str]]
    """The results when the cancel was asked for."""
    at_end: list[tuple[str, str]]
    """The results when the run had ended."""
    after: list[tuple[str, str]]
    """The results once both replicas had exited."""
    late_starts: int
    """Checks started after the cancel's bound had passed."""
    held: dict[str, set[int]]
    """The shards each replica was running when the cancel was asked for."""
    shards: dict[int, tuple[str, datetime | None]]
    """Every shard's status and end, once none was running (or a while after the run ended)."""
    ends: list[str]


async def cancel_mid_sweep(pg: str, tmp_path: Path) -> Cancelled:
    """Two replicas each running shards of one run, cancelled from elsewhere."""
    async with database(pg, "run_id, account") as db:
        # The first 10 shards end at once; the rest take 3 s unless cancelled.
        quick, slow = ACCOUNTS[:80], ACCOUNTS[80:]
        group = [
            Sharer(
                pg,
                name,
                tmp_path / f"{name}.log",
                delay=delays(0.1, quick) + delays(3, slow),
                cancel_poll=1.0,  # production's: the 2 s holds with it
                lease=STEADY_LEASE_S,
                heartbeat=5,
            )
            for name in ("r1", "r2")
        ]
        async with replicas(*group):
            [run_id] = await queue(db, accounts=ACCOUNTS)

            async def both_running_slow_shards() -> bool:
                return all([await holds(db, run_id, m.owner, slow) for m in group])

            await wait_until(both_running_slow_shards, limit_s=30)
            held = {m.owner: await running_on(db, run_id, m.owner, slow) for m in group}
            before = await results_of(db, run_id)
            asked = await db_now(db)
            assert (await RunService(db).cancel(run_id, "U-ops")).changed
            await wait_until(lambda: ended(db, run_id), limit_s=30)
            [run] = await runs(db, [run_id])
            at_end = await results_of(db, run_id)
            # The replica that does not own the run hears of the cancel on its own poll.
            shards = await settled(db, run_id, limit_s=CANCEL_BOUND_S + SCHEDULING_SLACK_S + 5)
            for member in group:  # every write they still had, they made before exiting
                member.signal(signal.SIGTERM)
            assert [await member.exited() for member in group] == [0, 0]
        late_starts = await scalar(
            db,
            "SELECT count(*) FROM executions WHERE at > :bound",
            bound=asked + timedelta(seconds=CANCEL_BOUND_S + SCHEDULING_SLACK_S),
        )
        return Cancelled(
            run,
            asked,
            set(quick),
            before,
            at_end,
            await results_of(db, run_id),
            late_starts,
            held,
            shards,
            await ends(db, run_id),
        )


async def test_it_cancels_shards_running_on_two_replicas_within_2s_and_writes_nothing_after(
    pg: str, tmp_path: Path
) -> None:
    seen = await cancel_mid_sweep(pg, tmp_path)
    run = seen.run
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    assert run.finished_at - seen.asked <= timedelta(seconds=CANCEL_BOUND_S + SCHEDULING_SLACK_S)
    assert seen.after == seen.at_end, "a result was written after the cancel"
    assert set(seen.before) <= set(seen.at_end)  # what was done before the cancel stays
    assert {account for account, _ in seen.at_end} <= seen.quick
    assert seen.late_starts == 0, "a replica kept starting checks after the cancel"
    assert seen.ends == ["cancelled"]


async def test_it_closes_every_shard_of_a_cancelled_run(pg: str, tmp_path: Path) -> None:
    """The shards running on either replica end ``cancelled`` (``done_by`` says who stopped
    them), and none is left queued or running for a run that has ended."""
    seen = await cancel_mid_sweep(pg, tmp_path)
    bound = timedelta(seconds=CANCEL_BOUND_S + SCHEDULING_SLACK_S)
    for owner, held in seen.held.items():
        stopped = {shard: seen.shards[shard] for shard in held}
        assert {status for status, _ in stopped.values()} == {"cancelled"}, (
            f"{owner}'s shards after the cancel: {stopped}"
        )
        for shard, (_, finished_at) in stopped.items():
            assert finished_at is not None and finished_at - seen.asked <= bound, (
                f"{owner} stopped shard {shard} late"
            )
    left_open = {k: v for k, v in seen.shards.items() if v[0] in ("queued", "running")}
    assert not left_open, "a cancelled run's shards are left open"
