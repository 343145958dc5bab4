"""What both fakes share: an aiohttp site on 127.0.0.1 (a free port), the record of every
request, scripted answers (``fail_next``), and Retry-After kept honest."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what it was answered."""

    path: str
    query: str
    """The query string, without its ``?`` (tests tell callers apart by it)."""
    headers: dict[str, str]
    body: bytes
    json: Any
    """The body parsed as JSON; None when it is not JSON."""
    status: int
    """The HTTP status answered (maybe to a caller that had stopped listening)."""
    at: float
    """``time.monotonic()`` when it arrived."""
    verified: bool | None = None
    """The receiver's signature check (None: not checked)."""
    stalled_s: float = 0.0
    """How long it was held before being answered (:meth:`Served.stall_next`): past the
    caller's timeout, the request was handled but its answer never arrived."""


@dataclass
class _Scripted:
    status: int
    times: int
    retry_after: float | None = None
    stall_s: float = 0.0


class Served:
    """An aiohttp site in the running event loop; subclasses add routes in :meth:`routes`."""

    def __init__(self) -> None:
        self.url = ""
        """``http://127.0.0.1:<port>``, once started."""
        self.requests: list[Received] = []
        self.violations: list[str] = []
        """What a real service would hold against the caller (coming back before
        Retry-After)."""
        self._script: list[_Scripted] = []
        self._told_until: dict[str, float] = {}
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def limit_key(self, request: web.Request, parsed: Any) -> str:
        """What a ``Retry-After`` applies to (the path; PagerDuty: the routing key)."""
        return request.path

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting ----------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``), whatever
        they hold; scripts queue up in the order given."""
        self._script.append(_Scripted(status, times, retry_after))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` requests ``seconds`` before answering them normally (longer
        than the caller's timeout: it sees no answer)."""
        self._script.append(_Scripted(0, times, None, seconds))

    def _scripted(self) -> _Scripted | None:
        while self._script and self._script[0].times <= 0:
            self._script.pop(0)
        if not self._script:
            return None
        step = self._script[0]
        step.times -= 1
        return step

    # -- recording ----------------------------------------------------------------------

    async def _take(
        self,
        request: web.Request,
        handle: Callable[[bytes, Any], tuple[int, dict[str, Any], bool | None]],
    ) -> web.Response:
        """Record ``request`` and answer it: a scripted failure, or ``handle(body, json)`` →
        (status, JSON answer, verified)."""
        at = time.monotonic()
        body = await request.read()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        limited = self.limit_key(request, parsed)
        told = self._told_until.get(limited, 0.0)
        if at < told - 0.05:
            self.violations.append(f"came back {told - at:.2f} s before Retry-After")
        step = self._scripted()
        stalled_s = 0.0
        if step is not None and step.stall_s:
            stalled_s = step.stall_s
            await asyncio.sleep(stalled_s)
            step = None
        headers: dict[str, str] = {}
        verified: bool | None = None
        if step is not None:
            status = step.status
            answer: dict[str, Any] = {"status": "scripted", "message": f"scripted {status}"}
            if step.retry_after is not None:
                headers["Retry-After"] = f"{step.retry_after:g}"
                self._told_until[limited] = at + step.retry_after
        else:
            status, answer, verified = handle(body, parsed)
        self.requests.append(
            Received(
                request.path,
                request.query_string,
                dict(request.headers),
                body,
                parsed,
                status,
                at,
                verified,
                stalled_s,
            )
        )
        return web.json_response(answer, status=status, headers=headers)

    async def wait_for(
        self, predicate: Callable[[], Any], within_s: float = 10.0, what: str = "it"
    ) -> Any:
        """Poll ``predicate`` until it is truthy (and return it), or fail after ``within_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            found = predicate()
            if found:
                return found
            if loop.time() > deadline:
                raise AssertionError(f"waited {within_s:g} s for {what}")
            await asyncio.sleep(0.02)
