"""Shared fixtures: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set) and
a moto server over HTTP."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app import logs
from app.db import Database
from app.sandbox import moto
from app.sandbox.edge import Edge
from app.sandbox.seed import seed

PG_URL = os.environ.get("TEST_DATABASE_URL")
PG_SKIP = "PostgreSQL half skipped: set TEST_DATABASE_URL=postgresql+asyncpg://... to run it"
ROOT = Path(__file__).resolve().parent.parent


def pytest_report_header() -> str:
    return f"PostgreSQL: {PG_URL or 'not configured (' + PG_SKIP + ')'}"


@pytest.fixture(autouse=True)
def _root_logger_as_found() -> Iterator[None]:
    """A test that runs the CLI in this process gets ``logs.setup()``, which puts its own
    handler on the root logger (a :class:`app.logs.Redact` filter that formats tracebacks and
    clears ``exc_info``). Take it off again, or every later test in the same worker sees its
    records through it first: what a test's ``caplog`` gets would depend on which test files
    share a worker."""
    root = logging.getLogger()
    level = root.level
    yield
    root.handlers[:] = [
        h for h in root.handlers if not any(isinstance(f, logs.Redact) for f in h.filters)
    ]
    root.setLevel(level)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each back end."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/hub.db"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    yield from pg_database(PG_URL)


def pg_database(base: str) -> Iterator[str]:
    """A new, empty PostgreSQL database beside ``base``; dropped afterwards."""
    import asyncio

    url = make_url(base)
    name = f"mhub_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each back end."""
    database = Database(database_url)
    await database.upgrade()
    yield database
    await database.close()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with moto.moto_server() as url:
        yield url


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean moto server, and this process's AWS environment pointed at it."""
    moto.reset(moto_url)
    for key, value in moto.FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield moto_url


@pytest.fixture(scope="module")
def estate(moto_url: str) -> Iterator[str]:
    """The demo estate (configs/demo) in moto, behind the edge that answers what moto lacks
    (backup jobs and recovery points, AWS Health, cost anomalies…), as ``mhub demo`` runs it:
    the URL to give ``AWS_ENDPOINT_URL``, for one test module."""
    moto.reset(moto_url)
    with Edge(moto_url) as edge:
        seed(moto_url, edge)
        yield edge.url
    moto.reset(moto_url)


def demo_env(aws_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``mhub`` subprocess: the demo customer, its AWS at ``aws_url``,
    a fresh SQLite file; none of this process's AWS, Slack or hub settings leak in."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "HUB_"))},
        **moto.FAKE_ENV,
        "AWS_ENDPOINT_URL": aws_url,
        "HUB_CONFIG_DIR": str(ROOT / "configs" / "demo"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        **extra,
    }


def mhub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``mhub ARGS`` as a subprocess and capture what it prints."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
