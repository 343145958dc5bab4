"""The process's background tasks: named, watched, and stopped in order."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.main import BackgroundTaskDied, supervise


async def test_it_stops_everything_and_fails_loudly_when_a_background_task_dies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    wound_down: list[str] = []

    async def steady() -> None:
        await stop.wait()
        wound_down.append("steady")

    async def broken() -> None:
        raise RuntimeError("the socket went away")

    with pytest.raises(BackgroundTaskDied, match="broken"):
        await supervise({"steady": steady, "broken": broken}, stop)
    assert stop.is_set() and wound_down == ["steady"]
    [record] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "'broken' crashed" in record.getMessage()
    assert record.exc_info is not None  # the traceback is in the log


async def test_it_treats_a_loop_that_returns_early_as_dead() -> None:
    stop = asyncio.Event()

    async def steady() -> None:
        await stop.wait()

    async def quits() -> None:
        return

    with pytest.raises(BackgroundTaskDied, match="quits"):
        await supervise({"steady": steady, "quits": quits}, stop)


async def test_it_lets_every_task_wind_down_after_stop() -> None:
    stop = asyncio.Event()
    finished: list[str] = []

    async def worker(name: str, cleanup_s: float) -> None:
        await stop.wait()
        await asyncio.sleep(cleanup_s)  # e.g. the executor's grace period
        finished.append(name)

    asyncio.get_running_loop().call_later(0.05, stop.set)
    tasks = {"slow": lambda: worker("slow", 0.1), "quick": lambda: worker("quick", 0)}
    await supervise(tasks, stop)
    assert finished == ["quick", "slow"]
