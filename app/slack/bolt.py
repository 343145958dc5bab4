"""The Bolt app and its Socket Mode connection to Slack.

Built by the composition root (``app.main.build``) only when both tokens are set, which then
registers the listeners (``handlers.register``) on :attr:`Slack.app`. Socket Mode needs no
public URL: the app opens a WebSocket to Slack (``apps.connections.open`` on the Web API at
``SLACK_API_URL``) and receives slash commands and clicks over it. The SDK reconnects after a
disconnect — Slack's ``disconnect`` messages (``refresh_requested``, ``warning``), a closed
socket, or failed pings — and :meth:`Slack.run` keeps trying to start while Slack is
unreachable.

``auth.test`` is called once at start (retried until Slack answers) and its answer is reused
for every request, so acknowledging a command never waits for the Web API. The app token is
checked by the ``apps.connections.open`` that opens the first connection: its URL, whose ticket
lets whoever holds it receive the app's commands, is used at once and never left lying unused.
The log never holds it (nor any token or payload secret): ``app.logs`` redacts every logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from app.errors import ConfigError
from app.settings import Settings
from app.slack.followups import FollowUps

log = logging.getLogger(__name__)

PING_INTERVAL_S = 5.0
START_RETRY_CAP_S = 30.0
HTTP_TIMEOUT_S = 10
FATAL_AUTH = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"}
)


class Slack:
    """The Bolt app (listeners are registered on :attr:`app` by ``handlers.register``) and the
    Socket Mode connection that feeds it."""

    def __init__(
        self,
        client: AsyncWebClient,
        app_token: str,
        *,
        on_ack: Callable[[float], None] | None = None,
    ) -> None:
        self.client = client
        self._app_token = app_token
        self.on_ack = on_ack
        """Told how long each envelope took from arrival to ack (metrics)."""
        self.followups = FollowUps()
        """Answers still being worked on after their ack."""
        self.handler: AsyncSocketModeHandler | None = None
        self._identity: asyncio.Future[AuthorizeResult] = asyncio.Future()
        self.app = _bolt_app(client, self.authorize)

    def __repr__(self) -> str:  # the app token stays out of any log line
        return f"Slack(api={self.client.base_url!r})"

    async def run(self, stop: asyncio.Event) -> None:
        """Identify, connect over Socket Mode, and serve until ``stop``."""
        self.handler = _TimedHandler(
            self.app,
            self._app_token,
            logger=logging.getLogger("app.slack.socket"),
            ping_interval=PING_INTERVAL_S,
        )
        self.handler.on_ack = self.on_ack
        starting = asyncio.create_task(self._start(), name="slack-start")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a bad token ends here, loudly
                await stop.wait()
        finally:
            starting.cancel()
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await self.followups.drain()
            await self.handler.close_async()
            self.handler = None

    async def connected(self) -> bool:
        """Is the Socket Mode connection up now? (readiness and ``mhub_slack_connected``)"""
        handler = self.handler
        return handler is not None and bool(await handler.client.is_connected())

    async def authorize(self) -> AuthorizeResult:
        return await self._identity

    async def _start(self) -> None:
        answer = await self._until_answered(
            self.client.auth_test,
            "SLACK_BOT_TOKEN",
            "Copy the Bot User OAuth Token (xoxb-…) again",
        )
        assert self.handler is not None
        opened = await self._until_answered(
            lambda: self.client.apps_connections_open(app_token=self._app_token),
            "SLACK_APP_TOKEN",
            "Use an app-level token (xapp-…) with the connections:write scope",
        )
        # The URL that proved the token opens the first connection: no other ticket is minted,
        # none is left live and unused. Reconnections fetch their own (the SDK does).
        self.handler.client.wss_uri = opened["url"]
        self._identity.set_result(
            AuthorizeResult.from_auth_test_response(
                auth_test_response=answer, bot_token=self.client.token
            )
        )
        await self.handler.connect_async()  # retries by itself until Slack takes the socket
        log.info("Slack: connected through Socket Mode as %s", answer.get("user"))

    async def _until_answered(
        self, call: Callable[[], Awaitable[Any]], token: str, fix: str
    ) -> Any:
        """``call`` until Slack answers; a refused token ends the process with what to do."""
        delay = 1.0
        while True:
            try:
                return await call()
            except SlackApiError as exc:
                error = str(exc.response.get("error") or exc.response.status_code)
                if error in FATAL_AUTH:
                    raise ConfigError(
                        f"Slack refused {token} ({error}). {fix} (docs/slack-setup.md)."
                    ) from None
                log.warning("Slack: %s failed (%s); again in %.0f s", token, error, delay)
            except (OSError, TimeoutError) as exc:
                log.warning("Slack: unreachable (%s); again in %.0f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(START_RETRY_CAP_S, delay * 2)


def web_client(settings: Settings) -> AsyncWebClient:
    """The one Web API client. No automatic retries: the outbox decides when to try again
    (an SDK retry of a post whose answer was lost could post it twice)."""
    assert settings.slack_bot_token is not None
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=HTTP_TIMEOUT_S,
        retry_handlers=[],
        logger=logging.getLogger("app.slack.web"),
    )


def _bolt_app(
    client: AsyncWebClient, identity: Callable[[], Awaitable[AuthorizeResult]]
) -> AsyncApp:
    """A Bolt app with no listeners yet, answering every request as the app ``identity`` says
    (the cached ``auth.test``), and one error handler for whatever a listener did not expect."""

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return await identity()

    bolt_log = logging.getLogger("app.slack.bolt")
    if not any(isinstance(f, _Quiet) for f in bolt_log.filters):
        bolt_log.addFilter(_Quiet())
    app = AsyncApp(
        client=client,
        authorize=authorize,
        logger=bolt_log,
        request_verification_enabled=False,  # Socket Mode: requests arrive on our own socket
        # The envelope is acknowledged when the listener returns (listeners return right after
        # ack(); later work runs in lazy listeners or follow-ups). Without this Bolt polls
        # every 10 ms per request for the ack, which costs a burst of commands dearly.
        process_before_response=True,
    )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        error_id = uuid.uuid4().hex[:8]
        what = body.get("type") or body.get("command")
        log.error("unexpected error %s in a Slack listener (%s)", error_id, what, exc_info=error)

    return app


class _TimedHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, timing each envelope from arrival to ack (metrics)."""

    on_ack: Callable[[float], None] | None = None

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.monotonic()
        await super().handle(client, req)
        if self.on_ack is not None:
            self.on_ack(time.monotonic() - started)


class _Quiet(logging.Filter):
    """Bolt warns that a token (SLACK_BOT_TOKEN, or the client's) goes unused when ``client``
    and ``authorize`` are given; here that is the design (the token comes back from the cached
    auth.test), not a mistake."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "will be ignored" not in message and "will be unused" not in message
