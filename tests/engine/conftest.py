"""The engine suite's ``db``: one migrated database per module and back end, emptied before
each test (creating and migrating a database per test would dominate the suite's time)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import delete

from app.db import Database
from app.models import (
    ChannelPace,
    Finding,
    Maintenance,
    Mute,
    Notice,
    Outbox,
    Result,
    Run,
    RunEvent,
    RunShard,
    Sight,
)
from tests.conftest import PG_SKIP, PG_URL, pg_database


async def _upgrade(url: str) -> None:
    database = Database(url)
    try:
        await database.upgrade()
    finally:
        await database.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('engine')}/hub.db"
        asyncio.run(_upgrade(url))
        yield url
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    for url in pg_database(PG_URL):
        asyncio.run(_upgrade(url))
        yield url


@pytest.fixture
async def db(engine_url: str) -> AsyncIterator[Database]:
    database = Database(engine_url)
    async with database.write() as session:
        for table in (
            Outbox,
            Notice,
            Mute,
            Result,
            RunEvent,
            RunShard,
            Run,
            Finding,
            ChannelPace,
            Maintenance,
            Sight,
        ):
            await session.execute(delete(table))
    yield database
    await database.close()
