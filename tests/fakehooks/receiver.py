"""A webhook receiver: takes ``POST``s on any path, checks each one's signature with
:func:`app.notify.webhooks.verify` against the secret of its path, and answers 200 (signed
right), 401 (not) or 404 (a path it has no secret for), unless scripted (:meth:`fail_next`,
:meth:`stall_next`, :meth:`answer_with`). Every request is recorded with its verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.notify import webhooks
from tests.fakehooks.server import Received, Served


class FakeReceiver(Served):
    def __init__(
        self, secrets: Mapping[str, str], *, tolerance_s: float | None = webhooks.TOLERANCE_S
    ) -> None:
        super().__init__()
        self.secrets = dict(secrets)
        """Path → the secret its requests must be signed with."""
        self.tolerance_s = tolerance_s
        self._status: int | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{tail:.*}", self._receive)

    def url_for(self, path: str) -> str:
        """The address of ``path`` (what the customer's ``url_env`` variable holds)."""
        return f"{self.url}{path}"

    def answer_with(self, status: int | None) -> None:
        """Answer every signed request with ``status`` from now on (None: 200 again)."""
        self._status = status

    @property
    def delivered(self) -> list[Received]:
        """The requests it took (2xx), in order."""
        return [r for r in self.requests if 200 <= r.status < 300]

    async def _receive(self, request: web.Request) -> web.Response:
        path = request.path
        return await self._take(request, lambda body, _: self._judge(request, path, body))

    def _judge(self, request: web.Request, path: str, body: bytes) -> tuple[int, Any, bool]:
        secret = self.secrets.get(path)
        if secret is None:
            return 404, {"error": "no such hook"}, False
        ok = webhooks.verify(
            secret,
            request.headers.get(webhooks.TIMESTAMP_HEADER),
            body,
            request.headers.get(webhooks.SIGNATURE_HEADER),
            tolerance_s=self.tolerance_s,
        )
        if not ok:
            return 401, {"error": "bad signature"}, False
        if request.headers.get("Content-Type") != "application/json":
            return 415, {"error": "not JSON"}, True
        status = self._status or 200
        return status, {"ok": 200 <= status < 300}, True
