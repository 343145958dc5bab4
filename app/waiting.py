"""Waiting for whichever comes first: one of several events, or a timeout."""

from __future__ import annotations

import asyncio


async def wait_any(*events: asyncio.Event, within_s: float | None = None) -> None:
    """Return when one of ``events`` is set, or after ``within_s`` seconds (None: no limit;
    zero or less: at once). A background loop's nap: woken by new work or by ``stop``."""
    if any(event.is_set() for event in events):
        return
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(
            waits,
            timeout=None if within_s is None else max(0.0, within_s),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for wait in waits:
            wait.cancel()
