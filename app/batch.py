"""Group commit: callers that arrive together share one transaction.

A burst of a hundred slash commands would otherwise queue a hundred transactions behind the one
SQLite writer (or a hundred round trips to PostgreSQL), and the last command would be
acknowledged only after all of them. Here the first caller's item is written at once; items that
arrive meanwhile wait for that write and then go together in the next one. Nobody waits for a
timer, and under load each transaction carries everything that queued up behind the last.
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
        self, write: Callable[[Sequence[Item]], Awaitable[Sequence[Out]]], max_batch: int = 200
    ) -> None:
        self._write = write
        self._max = max_batch
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
