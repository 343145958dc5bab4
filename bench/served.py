"""What the web benchmarks share: a free loopback port, waiting for a web view started in a
child process, a PostgreSQL database of a benchmark's own (kept, so its seed is reused), the
query plans of their statements, and the machine they ran on."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
from collections.abc import Mapping
from typing import Any

import aiohttp
from sqlalchemy import Select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(base: str, tries: int = 400) -> None:
    """Until ``base``'s ``/healthz`` answers 200 (every 50 ms); else stop the benchmark."""
    async with aiohttp.ClientSession(base) as session:
        for _ in range(tries):
            try:
                async with session.get("/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the web view did not start")


def pg_bench_url(base: str, name: str) -> str:
    """The database ``name`` beside ``base``'s, created if missing and kept afterwards."""
    url = make_url(base)

    async def create() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if found.first() is None:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(create())
    return url.set(database=name).render_as_string(hide_password=False)


async def plans(url: str, statements: Mapping[str, Select[Any]]) -> dict[str, list[str]]:
    """Each statement's plan, asked of the database itself (its literal values bound in)."""
    from app.db import Database

    db = Database(url)
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    found: dict[str, list[str]] = {}
    try:
        async with db.reader.connect() as conn:
            for name, statement in statements.items():
                compiled = statement.compile(
                    dialect=conn.dialect, compile_kwargs={"literal_binds": True}
                )
                rows = (await conn.execute(text(prefix + str(compiled)))).all()
                found[name] = [str(row[-1]) for row in rows]
    finally:
        await db.close()
    return found


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {load:.2f}, Python {platform.python_version()}"
    )
