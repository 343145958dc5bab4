"""Answers that finish after the ack: the work a listener started but did not wait for.

Slack wants an envelope acknowledged within 3 seconds; a slash command whose answer takes
longer is acknowledged with "working on it" and answered later through its ``response_url``
(see :func:`handlers.ack.ack_in_time`). Those later answers run as tasks held here: each is
kept until it ends, a failure is logged with its traceback, and at shutdown the Socket Mode
connection waits a little for the ones still running before it closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

DRAIN_S = 5.0


class FollowUps:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self, work: Coroutine[Any, Any, None], name: str = "slack-follow-up"
    ) -> asyncio.Task[None]:
        """Run ``work`` in the background, after the listener has returned."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a Slack follow-up failed", exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, within_s: float = DRAIN_S) -> None:
        """Wait up to ``within_s`` for the follow-ups still running, then cancel the rest."""
        if not self._tasks:
            return
        pending = set(self._tasks)
        _, late = await asyncio.wait(pending, timeout=within_s)
        for task in late:
            task.cancel()
        if late:
            log.warning("stopping: %d Slack answer(s) were still being worked on", len(late))
            await asyncio.gather(*late, return_exceptions=True)
