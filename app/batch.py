"""Group commit: callers that arrive together share one transaction.

A burst of a hundred slash commands would otherwise queue a hundred transactions behind the one
SQLite writer (or a hundred round trips to PostgreSQL), and the last command would be
acknowledged only after all of them. Here the first caller's item is written at once; items that
arrive meanwhile wait for that write and then go together in the next one, so under load each
transaction carries everything that queued up behind the last.

With ``settle_s``, the writer first waits while items keep arriving (until ``settle_s`` passes
with none, for at most ``settle_max_s``): a burst that trickles in over a few milliseconds — the
envelopes of a hundred commands, parsed one by one — then costs one transaction instead of two
(the first item's alone, then the rest), for a lone caller's ``settle_s`` of extra wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Out = TypeVar("Out")


class GroupCommit(Generic[Item, Out]):
    """``await group.add(item)`` → that item's result from ``write(batch)``.

    ``write`` takes a batch and returns one result per item, in order; if it raises, every
    caller in that batch gets the exception.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[Sequence[Out]]],
        max_batch: int = 200,
        settle_s: float = 0.0,
        settle_max_s: float = 0.02,
    ) -> None:
        self._write = write
        self._max = max_batch
        self._settle_s = settle_s
        self._settle_max_s = settle_max_s
        self._queue: list[tuple[Item, asyncio.Future[Out]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, item: Item) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="group-commit")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            if self._settle_s:
                await self._settle()
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _settle(self) -> None:
        """Wait while items keep arriving: until ``settle_s`` passes with none, the batch is
        full, or ``settle_max_s`` has gone by."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle_max_s
        seen = -1
        while seen != len(self._queue) < self._max and loop.time() < deadline:
            seen = len(self._queue)
            await asyncio.sleep(self._settle_s)
