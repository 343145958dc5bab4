"""Run changes in this process: one place that says "run #N changed", and the loop that follows.

**Publish/subscribe.** The run service (a run submitted, a cancel requested) and the executor (a
run claimed, a check finished, a run ended or swept) publish the ids of the runs they changed
to the one :class:`RunChanges` of the process; the composition root subscribes whoever follows:
the executor (to claim or stop a run at once), the result cards, the digests, the App Home
runboard and the web view's metrics. A subscriber is called synchronously and must only take
note; a subscriber that raises is logged and the others are still told.

**Following.** Each follower (:class:`Follower`) keeps the set of runs changed since it last
looked and handles them from one task of its own, many at a time: a burst of a hundred changes
costs one read, not a hundred. It also wakes on its own schedule — what :meth:`Follower.flush`
asks for, and a periodic :meth:`Follower.sweep` that finds changes made by other replicas (or
missed by a replica that died before following them). While the database is unavailable a
follower keeps its runs, logs once per failure and tries again a second later.

Changes made on another replica are not published here: followers that must see them sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from enum import StrEnum

from app.db import DB_TROUBLE
from app.waiting import wait_any

log = logging.getLogger(__name__)


class Change(StrEnum):
    SUBMITTED = "submitted"
    """A run was queued: an executor may claim it now."""
    CANCEL_REQUESTED = "cancel_requested"
    """Someone asked to cancel a run: its owner stops it now."""
    PROGRESSED = "progressed"
    """Anything else: claimed, a check finished, ended, swept."""


Listener = Callable[[int], None]


class RunChanges:
    """The process's run-change notifications."""

    def __init__(self) -> None:
        self._listeners: list[tuple[Listener, frozenset[Change] | None]] = []

    def subscribe(self, listener: Listener, *, only: Collection[Change] | None = None) -> None:
        """Call ``listener(run_id)`` for every change (or only for the kinds in ``only``)."""
        self._listeners.append((listener, frozenset(only) if only is not None else None))

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners = [(other, only) for other, only in self._listeners if other != listener]

    def publish(self, run_ids: Iterable[int], change: Change = Change.PROGRESSED) -> None:
        for run_id in run_ids:
            for listener, only in self._listeners:
                if only is not None and change not in only:
                    continue
                try:
                    listener(run_id)
                except Exception:
                    log.exception("a run-change listener failed for run #%s", run_id)


class Follower:
    """Follows run changes from a task of its own: subclasses say what to do with them.

    ``flush(run_ids)`` handles the runs changed since the last call (none on a timed wake-up)
    and returns in how many seconds it wants to be called again without a change (None: only
    on a change). ``sweep()`` returns runs to look at again; it runs at start and every
    ``sweep_s`` (None: never). ``debounce_s`` gathers the rest of a burst before a flush.
    """

    name = "follower"

    def __init__(
        self, *, sweep_s: float | None = None, debounce_s: float = 0.0, retry_s: float = 1.0
    ) -> None:
        self.sweep_s = sweep_s
        self.debounce_s = debounce_s
        self.retry_s = retry_s
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()

    def changed(self, run_id: int) -> None:
        """A run changed: handle it soon (the :class:`RunChanges` subscriber)."""
        self._dirty.add(run_id)
        self._wake.set()

    def wake(self) -> None:
        """Flush soon, even without a changed run."""
        self._wake.set()

    async def flush(self, run_ids: set[int]) -> float | None:
        raise NotImplementedError

    async def sweep(self) -> Iterable[int]:
        return ()

    async def serve(self, stop: asyncio.Event) -> None:
        """Follow until ``stop``, then handle what is left once."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() if self.sweep_s is not None else None
        while not stop.is_set():
            if next_sweep is not None and loop.time() >= next_sweep:
                swept = await self._safely(self._sweep)
                next_sweep = loop.time() + (self.sweep_s or 0.0 if swept else self.retry_s)
            if self.debounce_s:
                await asyncio.sleep(self.debounce_s)
            self._wake.clear()
            flushed, again = await self.step()
            if not flushed:
                await wait_any(stop, within_s=self.retry_s)
                continue
            if self._dirty or self._wake.is_set():
                continue
            if next_sweep is not None:
                until_sweep = next_sweep - loop.time()
                again = until_sweep if again is None else min(again, until_sweep)
            await wait_any(self._wake, stop, within_s=again)
        await self.step()

    async def step(self) -> tuple[bool, float | None]:
        """One flush of the runs changed so far: (done, seconds until it wants the next). When
        the database is unavailable the runs are kept for the next one."""
        batch, self._dirty = self._dirty, set()
        again: float | None = None

        async def flush() -> None:
            nonlocal again
            again = await self.flush(batch)

        if not await self._safely(flush):
            self._dirty |= batch
            return False, None
        return True, again

    async def _sweep(self) -> None:
        self._dirty.update(await self.sweep())

    async def _safely(self, work: Callable[[], Awaitable[None]]) -> bool:
        try:
            await work()
        except DB_TROUBLE as exc:
            log.warning(
                "%s: the database is unavailable (%s); trying again shortly", self.name, exc
            )
            return False
        return True
