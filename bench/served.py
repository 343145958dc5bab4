"""What the web benchmarks share: a free loopback port, waiting for a web view started in a
child process, and a PostgreSQL database of a benchmark's own (kept, so its seed is reused)."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from sqlalchemy import text
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
