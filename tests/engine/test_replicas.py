"""Several executor processes on one PostgreSQL database, as ``mhub serve --no-slack --no-web``
replicas run in production (tests/engine/worker.py wraps the real ``serve``)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.db import Database
from app.engine.runs import RunService
from app.models import TERMINAL_STATUSES, RunEvent, RunStatus
from tests.conftest import PG_SKIP, PG_URL, ROOT, pg_database
from tests.engine.support import all_done, queue, runs, wait_until

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)

# Short leases so a crash is recovered in seconds; the guarantee is the same formula.
LEASE_S, HEARTBEAT_S, SWEEP_S, POLL_S = 2.0, 0.5, 0.5, 0.05
RECOVERY_S = LEASE_S + SWEEP_S + POLL_S  # ExecutorOptions.recovery_s
STEADY_LEASE_S = 15.0
"""The lease of tests about exactly-once, not recovery: a 2 s lease expires when a loaded
2-core machine leaves a replica unscheduled for 1.5 s (seen: "lost its lease before it could
complete", then a second attempt), which is the recovery path working, not a duplicate."""
SCHEDULING_SLACK_S = 1.5  # a loaded CI machine may run a process late; not part of the bound


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[str]:
    assert PG_URL
    yield from pg_database(PG_URL)


@asynccontextmanager
async def database(url: str, unique: str) -> AsyncIterator[Database]:
    """The migrated database plus the executions table the recording check writes to, with the
    UNIQUE key the test holds the engine to."""
    db = Database(url)
    await db.upgrade()
    async with db.write() as session:
        await session.execute(
            text(
                "CREATE TABLE executions (run_id BIGINT, attempt INT, account TEXT, owner TEXT, "
                f"at TIMESTAMPTZ DEFAULT clock_timestamp(), UNIQUE ({unique}))"
            )
        )
    try:
        yield db
    finally:
        await db.close()


class Replica:
    """One ``tests.engine.worker`` process; its log goes to a file the test can read."""

    def __init__(self, url: str, owner: str, log: Path, **options: Any) -> None:
        self.url, self.owner, self.log_path, self.options = url, owner, log, options
        self.proc: asyncio.subprocess.Process | None = None

    program: tuple[str, ...] = ("-m", "tests.engine.worker")
    """What the Python interpreter runs: the worker module, or a script that wraps it."""

    async def start(self) -> Replica:
        args = [sys.executable, *self.program, self.url, "--owner", self.owner]
        settings = {"lease": LEASE_S, "heartbeat": HEARTBEAT_S, "sweep": SWEEP_S, "poll": POLL_S}
        settings.update(self.options)
        for name, value in settings.items():
            for item in value if isinstance(value, list) else [value]:
                args += [f"--{name.replace('_', '-')}", str(item)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "SLACK_"))}
        with self.log_path.open("w") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text()

    async def logged(self, needle: str, limit_s: float = 30) -> None:
        async def seen() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"{self.owner} exited early:\n{self.log()}")
            return needle in self.log()

        await wait_until(seen, limit_s, every=0.05)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def exited(self, limit_s: float = 30) -> int:
        assert self.proc is not None
        async with asyncio.timeout(limit_s):
            return await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@asynccontextmanager
async def replicas(*members: Replica) -> AsyncIterator[tuple[Replica, ...]]:
    try:
        await asyncio.gather(*(m.start() for m in members))
        await asyncio.gather(*(m.logged("serving as") for m in members))
        yield members
    finally:
        await asyncio.gather(*(m.stop() for m in members))


async def scalar(db: Database, sql: str, **params: Any) -> Any:
    async with db.read() as session:
        return await session.scalar(text(sql), params)


async def db_now(db: Database) -> datetime:
    value = await scalar(db, "SELECT clock_timestamp()")
    assert isinstance(value, datetime)
    return value


async def test_it_runs_each_of_1000_runs_exactly_once_across_4_replicas(
    pg: str, tmp_path: Path
) -> None:
    async with database(pg, "run_id, account") as db:
        group = [
            Replica(pg, f"r{i}", tmp_path / f"r{i}.log", max_runs=32, lease=STEADY_LEASE_S)
            for i in range(4)
        ]
        async with replicas(*group):
            ids = await queue(db, 1000)
            await wait_until(lambda: all_done(db, ids), limit_s=60, every=0.2)
            for member in group:
                member.signal(signal.SIGTERM)
            assert [await member.exited() for member in group] == [0, 0, 0, 0]
        finished = await runs(db, ids)
        errors = await scalar(
            db, "SELECT string_agg(DISTINCT summary, ' | ') FROM results WHERE severity = 'error'"
        )
        assert {(run.status, run.outcome, run.attempt) for run in finished} == {
            (RunStatus.COMPLETED, "ok", 1)
        }, f"a duplicate execution shows up as an error result: {errors}"
        assert await scalar(db, "SELECT count(*) FROM executions") == 1000
        assert await scalar(db, "SELECT count(*) FROM run_events WHERE type = 'claimed'") == 1000
        owners = await scalar(db, "SELECT count(DISTINCT owner) FROM executions")
        assert owners >= 2, "the replicas did not share the work"


async def test_it_finishes_a_killed_replicas_runs_elsewhere_within_the_recovery_time(
    pg: str, tmp_path: Path
) -> None:
    async with database(pg, "run_id, account, attempt") as db:
        # The doomed replica's checks hang, so its runs are still running when it is killed.
        doomed = Replica(pg, "doomed", tmp_path / "doomed.log", max_runs=4, delay="slow=600")
        survivor = Replica(pg, "survivor", tmp_path / "survivor.log", max_runs=16, delay="slow=1")
        async with replicas(doomed):
            held = await queue(db, 4, accounts=("slow",))
            await wait_until(
                lambda: scalar(db, "SELECT count(*) = 4 FROM executions WHERE owner = 'doomed'")
            )
            async with replicas(survivor):
                more = await queue(db, 4, accounts=("slow",))
                killed_at = await db_now(db)
                doomed.signal(signal.SIGKILL)
                assert await doomed.exited() == -signal.SIGKILL
                await wait_until(lambda: all_done(db, held + more), limit_s=30)
        for run in await runs(db, held):
            assert (run.status, run.outcome, run.attempt) == (RunStatus.COMPLETED, "ok", 2)
            assert run.finished_at is not None
            bound = timedelta(seconds=RECOVERY_S + 1 + SCHEDULING_SLACK_S)  # + the 1 s rerun
            assert run.finished_at - killed_at <= bound, f"run #{run.id} recovered too late"
        async with db.read() as session:
            rescues = (
                await session.execute(
                    select(RunEvent.run_id, RunEvent.created_at).where(
                        RunEvent.type == "requeued", RunEvent.run_id.in_(held)
                    )
                )
            ).all()
            last_claims = (
                await session.execute(
                    select(RunEvent.actor, func.count())
                    .where(RunEvent.type == "claimed", RunEvent.run_id.in_(held))
                    .group_by(RunEvent.actor)
                )
            ).all()
        assert sorted(run_id or 0 for run_id, _ in rescues) == held  # each rescued exactly once
        for _, at in rescues:
            assert at - killed_at <= timedelta(seconds=RECOVERY_S + SCHEDULING_SLACK_S)
        assert dict(last_claims) == {"doomed": 4, "survivor": 4}
        # The documented at-least-once: the checks of the killed attempt ran again.
        assert await scalar(db, "SELECT count(*) FROM executions WHERE attempt = 2") == 4


async def test_it_claims_nothing_after_sigterm_and_leaves_nothing_running(
    pg: str, tmp_path: Path
) -> None:
    async with database(pg, "run_id, account, attempt") as db:
        member = Replica(
            pg, "r1", tmp_path / "r1.log", max_runs=3, grace=3, delay=["slow=60", "other=0.5"]
        )
        async with replicas(member):
            [stuck] = await queue(db, accounts=("slow",))
            [finishing] = await queue(db, accounts=("other",))
            await wait_until(lambda: scalar(db, "SELECT count(*) = 2 FROM executions"))
            member.signal(signal.SIGTERM)
            await member.logged("no new runs are claimed")
            late = await queue(db, 2)  # capacity is free, but it must not take them
            assert await member.exited() == 0
        assert "put 1 unfinished run(s) back in the queue" in member.log()
        by_id = {run.id: run for run in await runs(db)}
        assert by_id[finishing].status == RunStatus.COMPLETED  # finished within the grace
        assert (by_id[stuck].status, by_id[stuck].attempt) == (RunStatus.QUEUED, 0)
        for run_id in late:
            assert (by_id[run_id].status, by_id[run_id].attempt) == (RunStatus.QUEUED, 0)
        assert not [run for run in by_id.values() if run.status == RunStatus.RUNNING]


async def test_it_stops_at_once_on_a_second_sigterm(pg: str, tmp_path: Path) -> None:
    async with database(pg, "run_id, account, attempt") as db:
        member = Replica(pg, "r1", tmp_path / "r1.log", grace=600, delay="slow=60")
        async with replicas(member):
            [run_id] = await queue(db, accounts=("slow",))
            await wait_until(lambda: scalar(db, "SELECT count(*) = 1 FROM executions"))
            member.signal(signal.SIGTERM)
            await member.logged("no new runs are claimed")
            member.signal(signal.SIGTERM)
            assert await member.exited(limit_s=15) == 0  # not after the 600 s grace
        [run] = await runs(db, [run_id])
        assert (run.status, run.attempt) == (RunStatus.QUEUED, 0)


async def test_it_ends_each_of_1000_cancel_versus_complete_races_in_one_terminal_state(
    pg: str, tmp_path: Path
) -> None:
    async with database(pg, "run_id, account, attempt") as db:
        group = [
            Replica(
                pg,
                f"r{i}",
                tmp_path / f"r{i}.log",
                max_runs=64,
                jitter=0.02,
                cancel_poll=0.2,
                lease=STEADY_LEASE_S,
            )
            for i in range(2)
        ]
        service = RunService(db)
        rng = random.Random(1842)
        limit = asyncio.Semaphore(16)

        async def cancel_later(run_id: int, delay: float) -> bool:
            await asyncio.sleep(delay)
            async with limit:
                return (await service.cancel(run_id, "U-race")).changed

        async with replicas(*group):
            ids = await queue(db, 1000)
            answers = await asyncio.gather(
                *(cancel_later(run_id, rng.uniform(0, 1.5)) for run_id in ids)
            )
            await wait_until(lambda: all_done(db, ids), limit_s=60, every=0.2)
        finished = {run.id: run for run in await runs(db, ids)}
        async with db.read() as session:
            endings = (
                await session.execute(
                    select(RunEvent.run_id, RunEvent.type).where(
                        RunEvent.type.in_(["completed", "cancelled", "failed"])
                    )
                )
            ).all()
        ends: dict[int, list[str]] = {}
        for run_id, kind in endings:
            ends.setdefault(run_id or 0, []).append(kind)
        for run_id, run in finished.items():
            assert run.status in TERMINAL_STATUSES
            assert ends[run_id] == [run.status], f"run #{run_id}: {ends[run_id]}"
        statuses = [run.status for run in finished.values()]
        assert set(statuses) == {RunStatus.COMPLETED, RunStatus.CANCELLED}, "no race was run"
        for run_id, changed in zip(ids, answers, strict=True):
            if not changed:  # "already finished": it really had
                assert finished[run_id].status == RunStatus.COMPLETED
