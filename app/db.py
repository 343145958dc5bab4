"""Database engines and sessions, for SQLite (default) and PostgreSQL.

SQLite: WAL, a busy timeout, exactly one writer connection whose transactions start with
``BEGIN IMMEDIATE`` (so a writer never fails half-way with "database is locked"), and a small
pool of readers. PostgreSQL: one asyncpg pool for both. Time comes from the database clock
where it matters across replicas (leases): ``now()`` on PostgreSQL, the process clock on SQLite,
where there is only one process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, literal
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.elements import ColumnElement

from app.errors import HubError
from app.models import Stamp

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
DB_TROUBLE: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)
"""Errors that mean "the database is unreachable or refused": background loops log them and
try again; they are never fatal."""


class DatabaseError(HubError):
    """The database is unreachable, or its schema is not the one this version needs."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """The engines and session factories; built once by the composition root."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            connect = {"timeout": BUSY_TIMEOUT_MS / 1000}
            self.writer = create_async_engine(
                url,
                echo=echo,
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
                connect_args=connect,
                json_deserializer=orjson.loads,
            )
            self.reader = create_async_engine(
                url,
                echo=echo,
                pool_size=4,
                max_overflow=4,
                connect_args=connect,
                json_deserializer=orjson.loads,
            )
            for engine in (self.writer, self.reader):
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(
                self.writer.sync_engine,
                "begin",
                lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"),
            )
            event.listen(
                self.reader.sync_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN")
            )
        else:
            self.writer = create_async_engine(
                url,
                echo=echo,
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                json_deserializer=orjson.loads,
            )
            self.reader = self.writer
        self._writes = async_sessionmaker(self.writer, expire_on_commit=False)
        self._reads = async_sessionmaker(self.reader, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on error."""
        async with self._writes() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reads() as session, session.begin():
            yield session

    def now(self) -> ColumnElement[datetime]:
        """The database's clock as an SQL expression (the process clock on SQLite)."""
        if self.is_sqlite:
            return literal(datetime.now(UTC), Stamp)
        return func.now()

    def now_plus(self, seconds: float) -> ColumnElement[datetime]:
        if self.is_sqlite:
            return literal(datetime.now(UTC) + timedelta(seconds=seconds), Stamp)
        return func.now() + literal(timedelta(seconds=seconds))

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    # -- schema -------------------------------------------------------------------------

    def alembic_config(self) -> AlembicConfig:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    async def upgrade(self) -> None:
        """Apply every pending migration (``mhub db upgrade``)."""
        await asyncio.to_thread(command.upgrade, self.alembic_config(), "head")

    async def schema_state(self) -> tuple[str | None, str]:
        """(current revision, head revision)."""
        head = ScriptDirectory.from_config(self.alembic_config()).get_current_head() or ""
        try:
            async with self.writer.connect() as conn:
                current = await conn.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        except OSError as exc:
            raise DatabaseError(f"cannot reach the database: {exc}. Check DATABASE_URL.") from exc
        return current, head

    async def ensure_schema(self) -> None:
        """SQLite upgrades itself; PostgreSQL must be upgraded deliberately."""
        current, head = await self.schema_state()
        if current == head:
            return
        if self.is_sqlite:
            await self.upgrade()
            return
        raise DatabaseError(
            f"the database schema is at {current or 'nothing'}, this version needs {head}. "
            "Run `mhub db upgrade` first (safe while other replicas run)."
        )
