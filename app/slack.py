"""The Slack side of the hub: the Bolt app over Socket Mode, the card refresher and the outbox
deliverer, wired to the services they use.

Built by the composition root (``app.main.build``) only when both tokens are set; the Web API
client comes from there too. Socket Mode needs no public URL: the app opens a WebSocket to
Slack (``apps.connections.open`` on the Web API at ``SLACK_API_URL``) and receives slash
commands and clicks over it. The SDK reconnects after a disconnect — Slack's ``disconnect``
messages (``refresh_requested``, ``warning``), a closed socket, or failed pings — and
:meth:`Slack.run` keeps trying to start while Slack is unreachable.

``auth.test`` is called once at start (retried until Slack answers) and its answer is reused
for every request, so acknowledging a command never waits for the Web API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from app.access import Access
from app.cards import Cards
from app.catalog import Catalog
from app.db import Database
from app.delivery import Deliverer, DeliveryOptions, Outgoing
from app.desk import Desk
from app.errors import ConfigError
from app.home import HomeTab
from app.runs import RunService
from app.settings import Settings
from handlers import actions, commands
from handlers import home as home_tab

log = logging.getLogger(__name__)

PING_INTERVAL_S = 5.0
START_RETRY_CAP_S = 30.0
HTTP_TIMEOUT_S = 10
FATAL_AUTH = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"}
)


@dataclass
class Slack:
    app: AsyncApp
    app_token: str = field(repr=False)
    client: AsyncWebClient
    desk: Desk
    cards: Cards
    deliverer: Deliverer
    handler: AsyncSocketModeHandler | None = None
    metrics: SlackMetrics | None = None
    home: HomeTab | None = None
    _identity: asyncio.Future[AuthorizeResult] = field(default_factory=asyncio.Future)

    def changed(self, run_id: int) -> None:
        """A run changed (listener for the run service and the executor)."""
        self.cards.changed(run_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Identify, connect over Socket Mode, and serve until ``stop``."""
        socket_log = logging.getLogger("app.slack.socket")
        if not any(isinstance(f, _Redact) for f in socket_log.filters):
            socket_log.addFilter(_Redact())
        self.handler = _TimedHandler(
            self.app, self.app_token, logger=socket_log, ping_interval=PING_INTERVAL_S
        )
        self.handler.on_ack = self.metrics.slack_acked if self.metrics is not None else None
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
            await self.handler.close_async()
            self.handler = None

    async def deliver(
        self,
        stop: asyncio.Event,
        busy: Callable[[], bool] = lambda: False,
        linger_s: float = 30.0,
    ) -> None:
        """Keep cards rendered into the outbox and deliver it. After ``stop``, carry on while
        ``busy()`` (runs are still finishing) and until nothing is due, for at most
        ``linger_s``, so the final state of a draining run still reaches its card."""
        done = asyncio.Event()

        async def linger() -> None:
            await stop.wait()
            deadline = asyncio.get_running_loop().time() + linger_s
            while asyncio.get_running_loop().time() < deadline:
                try:
                    if not busy() and not await self.deliverer.anything_due():
                        break
                except (SQLAlchemyError, OSError):
                    break  # the database is gone; what is queued goes out after a restart
                await asyncio.sleep(0.2)
            done.set()

        home = [self.home.serve(done)] if self.home is not None else []
        await asyncio.gather(self.cards.serve(done), self.deliverer.serve(done), linger(), *home)

    async def _start(self) -> None:
        answer = await self._until_answered(
            self.client.auth_test,
            "SLACK_BOT_TOKEN",
            "Copy the Bot User OAuth Token (xoxb-…) again",
        )
        await self._until_answered(
            lambda: self.client.apps_connections_open(app_token=self.app_token),
            "SLACK_APP_TOKEN",
            "Use an app-level token (xapp-…) with the connections:write scope",
        )
        self._identity.set_result(
            AuthorizeResult.from_auth_test_response(
                auth_test_response=answer, bot_token=self.client.token
            )
        )
        assert self.handler is not None
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

    async def authorize(self) -> AuthorizeResult:
        return await self._identity


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


class SlackMetrics(Protocol):
    """What the Slack side reports (``app.web.metrics.HubMetrics`` implements it)."""

    def slack_acked(self, seconds: float) -> None: ...

    def slack_delivery_failed(self, kind: str, *, permanent: bool) -> None: ...


def build_slack(
    settings: Settings,
    *,
    db: Database,
    runs: RunService,
    catalog: Callable[[], Catalog],
    client: AsyncWebClient,
    delivery: DeliveryOptions | None = None,
    metrics: SlackMetrics | None = None,
) -> Slack:
    """The Bolt app with every listener registered, its Socket Mode handler, and the outbox."""
    assert settings.slack_app_token is not None
    outgoing = Outgoing(db)
    failed = (
        (lambda kind, permanent: metrics.slack_delivery_failed(kind, permanent=permanent))
        if metrics is not None
        else None
    )
    deliverer = Deliverer(db, client, delivery, outgoing=outgoing, on_failure=failed)
    cards = Cards(runs, outgoing, catalog, public_url=settings.public_url, on_put=deliverer.poke)
    desk = Desk(runs, Access(db), cards, catalog)
    home = HomeTab(client, db, catalog, desk.access, public_url=settings.public_url)
    holder: list[Slack] = []

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return await holder[0].authorize()

    bolt_log = logging.getLogger("app.slack.bolt")
    if not any(isinstance(f, _Quiet) for f in bolt_log.filters):
        bolt_log.addFilter(_Quiet())
    app = AsyncApp(
        client=client,
        authorize=authorize,
        logger=bolt_log,
        request_verification_enabled=False,  # Socket Mode: requests arrive on our own socket
        # The envelope is acknowledged when the listener returns (listeners return right after
        # ack(); later work runs in lazy listeners or background tasks). Without this Bolt polls
        # every 10 ms per request for the ack, which costs a burst of commands dearly.
        process_before_response=True,
    )
    # Bolt tries listeners in this order for every envelope, building their arguments each
    # time: the busiest one (``/monitor <text>``) goes first, so a burst of commands costs one
    # match each instead of one per listener.
    commands.register(app, desk, settings.public_url)
    home_tab.register(app, desk, home)
    actions.register(app, desk, settings.public_url)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        error_id = uuid.uuid4().hex[:8]
        what = body.get("type") or body.get("command")
        log.error("unexpected error %s in a Slack listener (%s)", error_id, what, exc_info=error)

    slack = Slack(app, settings.slack_app_token.get_secret_value(), client, desk, cards, deliverer)
    slack.metrics = metrics
    slack.home = home
    holder.append(slack)
    return slack


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


class _Redact(logging.Filter):
    """The Socket Mode URL carries a one-time ticket; keep it out of the log."""

    _TICKET = re.compile(r"ticket=[^&\s'\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "ticket=" in message:
            record.msg, record.args = self._TICKET.sub("ticket=***", message), None
        return True
