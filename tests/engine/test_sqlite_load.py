"""SQLite under a write load with readers alongside: callers never see "database is locked"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from app.catalog import Plan
from app.db import Database
from app.engine.runs import RunService, Submit
from app.models import Run, RunStatus, Source
from tests.engine.support import CUSTOMER, KIND, Scripted, fast, serving, sleeps, wait_until


async def test_it_never_tells_a_caller_the_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/hub.db"
    db = Database(url)
    await db.upgrade()
    # A second Database on the same file is what a second process (`mhub run` beside
    # `mhub serve`) looks like: its own writer connection, so the writers really contend.
    other = Database(url)
    plan = Plan(CUSTOMER, (("quick", KIND), ("slow", KIND)))
    submitted = 0
    stop_reading = asyncio.Event()

    async def submit(service: RunService, count: int) -> None:
        nonlocal submitted
        for _ in range(count):
            await service.submit(Submit(plan, "load", Source.CLI))
            submitted += 1

    async def read(database: Database) -> int:
        reads = 0
        service = RunService(database)
        while not stop_reading.is_set():
            recent = await service.recent(limit=50)
            if recent:
                await service.get(recent[0].id, events=True)
            reads += 1
            await asyncio.sleep(0.005)
        return reads

    try:
        async with serving(db, Scripted(slow=sleeps(0.01)), fast(max_runs=32)) as executor:
            here = RunService(db, changes=executor.changes)
            readers = [asyncio.create_task(read(d)) for d in (db, db, other, other)]
            await asyncio.gather(submit(here, 100), submit(RunService(other), 50))

            async def finished() -> bool:
                async with other.read() as session:
                    done = await session.scalar(
                        select(func.count())
                        .select_from(Run)
                        .where(Run.status == RunStatus.COMPLETED)
                    )
                return done == 150

            await wait_until(finished, limit_s=60, every=0.1)
            stop_reading.set()
            reads = await asyncio.gather(*readers)
    finally:
        await other.close()
        await db.close()
    assert submitted == 150
    assert all(count > 0 for count in reads)
