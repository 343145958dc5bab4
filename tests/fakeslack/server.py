"""A fake Slack speaking the real protocols, in a thread of the test process.

- **Web API** at ``{url}/api/<method>`` (``SLACK_API_URL``): ``auth.test``,
  ``apps.connections.open``, ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``,
  ``conversations.history``, ``views.open``/``update``/``publish``. Tokens are checked.
- **File uploads**, Slack's external upload: ``files.getUploadURLExternal`` (``filename``,
  ``length``) hands out a file id and an upload URL at ``{url}/upload/v1/…`` that takes one POST
  of the bytes (raw, or multipart with a ``filename`` field) and checks their count against
  ``length``; ``files.completeUploadExternal`` (``files`` as a JSON array of ``{id, title}``,
  ``channel_id``, ``initial_comment``, ``thread_ts``) shares them as one message carrying
  ``files`` (what ``conversations.history`` shows), and refuses (``file_not_found``, and a
  violation) a file id it never issued, whose bytes never arrived or were not ``length`` long,
  or that it completed already. :attr:`files` holds every file and its bytes; :meth:`shares`
  the messages that shared them.
- **Socket Mode** at the URL ``apps.connections.open`` hands out: ``hello`` on connect, envelopes
  (``slash_commands``, ``interactive``) whose acks are matched by ``envelope_id`` and timed,
  ``disconnect`` messages (``refresh_requested``, ``warning``), and abrupt drops.
- **response_url** POSTs at ``{url}/hooks/…`` (five uses each, like Slack).
- **Link unfurls**: :meth:`FakeSlack.share_links` posts a person's message into a channel's
  history and, for its links whose host is one of the app's ``unfurl_domains`` (or under one),
  sends the ``link_shared`` event (an ``events_api`` envelope, acked without a payload);
  ``chat.unfurl`` (``channel`` + ``ts``, or ``unfurl_id`` + ``source``; ``unfurls`` a JSON map
  of URL → ``{"blocks": […]}`` or an attachment) is held to that message's links, to the event
  having been acked first, and to the Block Kit limits; :attr:`unfurls` records each.
- **Sign in with Slack** (OpenID Connect, :mod:`tests.fakeslack.oidc`): ``{url}/openid/connect/
  authorize`` and ``/keys``, ``openid.connect.token`` and ``openid.connect.userInfo`` (their own
  credentials, not the bot token); :meth:`oidc_client` registers an app, :meth:`sign_in_as` is
  who is signed in to Slack in the browser, :meth:`oidc_tamper` spoils the next ID token.
- ``conversations.members`` (paginated like Slack) answers from :meth:`set_members`.
- ``users.info`` (``user``) and ``conversations.info`` (``channel``) answer Slack's user and
  conversation objects for the people and channels :meth:`add_user` and :meth:`add_channel`
  made, ``user_not_found`` / ``channel_not_found`` for any other id (a call without the
  argument is a violation, answered ``invalid_arguments``).

Every payload is validated with :mod:`tests.fakeslack.validate`; problems are kept in
``violations`` (tests assert it stays empty) and answered the way Slack would (``invalid_blocks``).
Every call is recorded in ``calls``.

Switches: :meth:`rate_limit` (429 with ``Retry-After``; a call that comes back before
``Retry-After`` has passed is a violation), :meth:`outage` (503s and dropped connections for a
while), :meth:`lose_responses` (do the call, then drop the connection before answering: the
caller cannot know it worked), :meth:`fail_after` (do the call, then answer a 500 — or nothing
until the caller times out), :meth:`disconnect` and :meth:`drop` (Socket Mode), :meth:`leave`
(the bot is no longer in a channel), :meth:`refuse` (a channel's messages refused for good:
``channel_not_found``, ``invalid_blocks``…). ``chat.postMessage`` to a user id posts in the app's
DM with them (:meth:`dms`).

Control methods are synchronous and thread-safe (for tests driving a subprocess); ``a``-prefixed
twins are awaitable from another event loop (for tests running the app in-process).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from app.sandbox.moto import free_port
from tests.fakeslack import oidc, validate

BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"
TEAM = "T0FAKE"
APP_ID = "A0FAKE"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
ACK_LIMIT_S = 3.0
HOOK_USES = 5
EARLY_TOLERANCE_S = 0.1
VERIFICATION_TOKEN = "verification-token-unused"
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int
    """HTTP status answered; 0 when the connection was dropped."""
    error: str | None = None

    @property
    def channel(self) -> str | None:
        return self.params.get("channel") or self.params.get("channel_id")


@dataclass
class Posted:
    """A message the app posted, with every later version of it."""

    channel: str
    ts: str
    text: str
    blocks: list[Any]
    metadata: dict[str, Any] | None
    versions: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    """The parent's ts when this is a reply in a thread."""
    files: list[dict[str, Any]] = field(default_factory=list)
    """The files this message shared (``files.completeUploadExternal``)."""
    user: str | None = None
    """The person who posted it (:meth:`FakeSlack.share_links`); None: the app."""

    @property
    def key(self) -> str | None:
        return ((self.metadata or {}).get("event_payload") or {}).get("key")

    @property
    def latest(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}

    def read(self) -> str:
        return validate.all_text(self.latest)


@dataclass(frozen=True)
class Ack:
    envelope_id: str
    latency_s: float | None
    """Seconds from sending the envelope to its ack; None when it was not acked in 3 s."""
    payload: dict[str, Any] | None
    response_url: str

    def read(self) -> str:
        return validate.all_text(self.payload or {})


@dataclass
class SharedFile:
    """A file the app uploaded: issued by ``files.getUploadURLExternal``, its bytes POSTed to
    the upload URL, then shared by ``files.completeUploadExternal``."""

    id: str
    filename: str
    length: int
    """What getUploadURLExternal was told."""
    upload_url: str = field(repr=False)
    content: bytes | None = field(default=None, repr=False)
    """The bytes POSTed to the upload URL (None: none yet)."""
    title: str | None = None
    channel: str | None = None
    completed: bool = False


@dataclass
class LinkShare:
    """A message a person posted with links (:meth:`FakeSlack.share_links`), and the
    ``link_shared`` event it caused (none when no link was in the app's unfurl domains)."""

    user: str
    channel: str
    ts: str
    urls: tuple[str, ...]
    """The links the event named: those in the app's unfurl domains."""
    unfurl_id: str
    envelope_id: str
    ack: Ack | None = None
    """The event's ack (None: no event was sent)."""


@dataclass(frozen=True)
class Unfurled:
    """A ``chat.unfurl`` Slack accepted: the message it named and each link's card."""

    share: LinkShare
    unfurls: dict[str, Any]
    """URL → ``{"blocks": […]}`` (or an attachment)."""
    by: str
    """``channel`` (channel + ts) or ``unfurl_id`` (unfurl_id + source)."""

    def read(self, url: str) -> str:
        """Every piece of text of ``url``'s card."""
        return validate.all_text(self.unfurls[url])


@dataclass
class _RateLimit:
    methods: frozenset[str]
    remaining: int | None
    until: float | None
    retry_after: float


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    opened: float


class FakeSlack:
    def __init__(
        self, channels: Iterable[str] = ("C0OPS",), *, unfurl_domains: Iterable[str] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api/"
        self.members: set[str] = set(channels)
        self.calls: list[Call] = []
        self.posted: list[Posted] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.acks: list[Ack] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self.violations: list[str] = []
        self.files: dict[str, SharedFile] = {}
        self.unfurl_domains: set[str] = {d.lower() for d in unfurl_domains}
        """The app's ``features.unfurl_domains`` (manifest.yml): links there cause link_shared."""
        self.link_shares: list[LinkShare] = []
        self.unfurls: list[Unfurled] = []
        """Every ``chat.unfurl`` Slack accepted, in order."""
        self._acked: set[str] = set()  # envelope ids acknowledged
        """Every file the app was given an upload URL for, by id, with its bytes."""
        self.oidc = oidc.Oidc()
        self.channel_members: dict[str, list[str]] = {}
        """What ``conversations.members`` answers, by channel (:meth:`set_members`)."""
        self.users: dict[str, dict[str, Any]] = {}
        """What ``users.info`` answers, by user id (:meth:`add_user`)."""
        self.channels: dict[str, dict[str, Any]] = {}
        """What ``conversations.info`` answers, by channel id (:meth:`add_channel`)."""
        self.connections_opened = 0
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._tickets: set[str] = set()
        self._issued: list[str] = []
        self._conns: list[_Conn] = []
        self._pending: dict[str, asyncio.Future[tuple[float, Any]]] = {}
        self._limits: list[_RateLimit] = []
        self._held: dict[tuple[str, str | None], tuple[float, float]] = {}
        self._outage_until = 0.0
        self._outage_count = 0
        self._lose: dict[str, int] = {}
        self._botched: dict[str, list[tuple[int, float]]] = {}
        self._uploads: dict[str, str] = {}  # upload URL path → file id
        self._refusals: dict[str, tuple[str, frozenset[str]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._main, name="fake-slack", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Slack did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._link)
        app.router.add_post("/hooks/{kind}/{id}", self._hook)
        app.router.add_post("/upload/v1/{secret}", self._upload)
        app.router.add_routes(oidc.routes(self))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for conn in list(self._conns):
                await conn.ws.close()
            await runner.cleanup()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _arun(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # -- what a person does -------------------------------------------------------------

    def command(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0OPS", wait_s: float = 15
    ) -> Ack:
        """Type ``/monitor <text>`` in ``channel``; returns the ack (waits for a socket)."""
        return self._run(self._command(text, user, channel, wait_s), wait_s + 10)

    async def acommand(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0OPS", wait_s: float = 15
    ) -> Ack:
        return await self._arun(self._command(text, user, channel, wait_s))

    def commands(self, texts: Iterable[tuple[str, str, str]], wait_s: float = 30) -> list[Ack]:
        """Many (text, user, channel) commands at once; their acks in the same order."""
        return self._run(self._commands(list(texts), wait_s), wait_s + 30)

    async def acommands(
        self, texts: Iterable[tuple[str, str, str]], wait_s: float = 30
    ) -> list[Ack]:
        return await self._arun(self._commands(list(texts), wait_s))

    async def _commands(self, texts: list[tuple[str, str, str]], wait_s: float) -> list[Ack]:
        return list(
            await asyncio.gather(
                *(self._command(text, user, channel, wait_s) for text, user, channel in texts)
            )
        )

    def click(
        self,
        message: Posted | Mapping[str, Any],
        action_id: str,
        *,
        user: str = "U0ALICE",
        channel: str | None = None,
        value: str | None = None,
        option: str | None = None,
        block_id: str | None = None,
    ) -> Ack:
        """Press the button ``action_id`` on a message (a card, or an ephemeral reply), or
        choose ``option`` (its value) of an overflow menu (in ``block_id``, when several rows
        have one). ``value`` overrides what is sent, as a forged payload would."""
        return self._run(self._click(message, action_id, user, channel, value, option, block_id))

    async def aclick(
        self,
        message: Posted | Mapping[str, Any],
        action_id: str,
        *,
        user: str = "U0ALICE",
        channel: str | None = None,
        value: str | None = None,
        option: str | None = None,
        block_id: str | None = None,
    ) -> Ack:
        return await self._arun(
            self._click(message, action_id, user, channel, value, option, block_id)
        )

    def share_links(
        self,
        user: str,
        channel: str,
        urls: Iterable[str],
        *,
        thread_ts: str | None = None,
        wait_s: float = 15,
    ) -> LinkShare:
        """``user`` posts a message with ``urls`` in ``channel`` (in ``thread_ts``'s thread);
        the links in the app's unfurl domains cause one ``link_shared`` event (its ack is on
        the returned share)."""
        return self._run(self._share(user, channel, list(urls), thread_ts, wait_s), wait_s + 10)

    async def ashare_links(
        self,
        user: str,
        channel: str,
        urls: Iterable[str],
        *,
        thread_ts: str | None = None,
        wait_s: float = 15,
    ) -> LinkShare:
        return await self._arun(self._share(user, channel, list(urls), thread_ts, wait_s))

    def set_unfurl_domains(self, domains: Iterable[str]) -> None:
        """The app's unfurl domains, as its manifest says (``features.unfurl_domains``)."""
        with self._lock:
            self.unfurl_domains = {d.lower() for d in domains}

    # -- switches -----------------------------------------------------------------------

    def rate_limit(
        self,
        methods: Iterable[str],
        *,
        times: int | None = None,
        seconds: float | None = None,
        retry_after: float = 1.0,
    ) -> None:
        """Answer 429 to ``methods`` ``times`` times, or for ``seconds``."""
        with self._lock:
            until = time.monotonic() + seconds if seconds is not None else None
            self._limits.append(_RateLimit(frozenset(methods), times, until, retry_after))

    def outage(self, seconds: float) -> None:
        """Every Web API and response_url call fails for ``seconds`` (503s and dropped
        connections, alternately); the Socket Mode connection stays up."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def end_outage(self) -> None:
        with self._lock:
            self._outage_until = 0.0

    def lose_responses(self, method: str, times: int = 1) -> None:
        """Do the next ``times`` calls of ``method``, then drop the connection unanswered."""
        with self._lock:
            self._lose[method] = self._lose.get(method, 0) + times

    def fail_after(
        self, method: str, *, status: int = 500, times: int = 1, delay_s: float = 0.0
    ) -> None:
        """Do the next ``times`` calls of ``method``, then answer HTTP ``status`` after
        ``delay_s`` (longer than the caller's timeout: it times out). Either way the caller
        cannot know that the call worked."""
        with self._lock:
            self._botched.setdefault(method, []).extend([(status, delay_s)] * times)

    def leave(self, channel: str) -> None:
        with self._lock:
            self.members.discard(channel)

    def join(self, channel: str) -> None:
        with self._lock:
            self.members.add(channel)

    def refuse(
        self,
        channel: str,
        error: str,
        methods: Iterable[str] = ("chat.postMessage", "chat.update"),
    ) -> None:
        """Answer ``methods`` for ``channel`` with Slack's ``{"ok": false, "error": error}``
        (HTTP 200), as Slack does for ``channel_not_found``, ``invalid_blocks``, ``is_archived``…
        until :meth:`reset`."""
        with self._lock:
            self._refusals[channel] = (error, frozenset(methods))

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` message on every open socket."""
        self._run(self._disconnect(reason))

    def drop(self) -> None:
        """Cut every open socket without a word (a network failure)."""
        self._run(self._drop())

    # -- Sign in with Slack (tests.fakeslack.oidc) and channel members ----------------------

    def oidc_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> None:
        """Register a Slack app for Sign in with Slack; with ``redirect_uris`` (its OAuth &
        Permissions → Redirect URLs), authorize refuses any other."""
        with self._lock:
            self.oidc.clients[client_id] = (client_secret, tuple(redirect_uris))
            self.oidc.secrets.append(client_secret)

    def sign_in_as(
        self, user: str, *, team: str = TEAM, name: str = "Alice Example", email: str = ""
    ) -> None:
        """Who is signed in to Slack in the browser: authorize lets them through."""
        person = oidc.Person(user, team, name, email or f"{user.lower()}@example.com")
        with self._lock:
            self.oidc.person = person

    async def asign_in_as(
        self, user: str, *, team: str = TEAM, name: str = "Alice Example", email: str = ""
    ) -> None:
        self.sign_in_as(user, team=team, name=name, email=email)

    def oidc_tamper(self, *tampers: oidc.Tamper) -> None:
        """Spoil the next ID token openid.connect.token issues (only that one)."""
        with self._lock:
            self.oidc.tampers.update(tampers)

    def set_members(self, channel: str, users: Iterable[str]) -> None:
        """Who ``conversations.members`` says is in ``channel``."""
        with self._lock:
            self.channel_members[channel] = list(users)

    async def aset_members(self, channel: str, users: Iterable[str]) -> None:
        self.set_members(channel, users)

    def add_user(
        self, user: str, real_name: str, display_name: str = "", *, deleted: bool = False
    ) -> None:
        """A person ``users.info`` knows: a user object shaped like Slack's."""
        handle = (display_name or real_name).lower().replace(" ", ".")
        with self._lock:
            self.users[user] = {
                "id": user,
                "team_id": TEAM,
                "name": handle,
                "deleted": deleted,
                "real_name": real_name,
                "tz": "Asia/Jakarta",
                "tz_label": "Western Indonesia Time",
                "tz_offset": 25200,
                "is_bot": False,
                "is_app_user": False,
                "updated": int(time.time()),
                "profile": {
                    "real_name": real_name,
                    "real_name_normalized": real_name,
                    "display_name": display_name,
                    "display_name_normalized": display_name,
                    "team": TEAM,
                },
            }

    def add_channel(self, channel: str, name: str, *, private: bool = False) -> None:
        """A channel ``conversations.info`` knows: a conversation object shaped like Slack's."""
        with self._lock:
            self.channels[channel] = {
                "id": channel,
                "name": name,
                "name_normalized": name,
                "is_channel": not private,
                "is_group": private,
                "is_im": False,
                "is_mpim": False,
                "is_private": private,
                "is_archived": False,
                "is_general": False,
                "is_member": channel in self.members,
                "created": 1449252889,
                "context_team_id": TEAM,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
            }

    def reset(self) -> None:
        """Forget switches (not the record)."""
        with self._lock:
            self.oidc.tampers.clear()
            self._limits.clear()
            self._lose.clear()
            self._botched.clear()
            self._refusals.clear()
            self._outage_until = 0.0

    # -- reading the record -------------------------------------------------------------

    def cards(self, run_id: int | None = None) -> list[Posted]:
        with self._lock:
            return [
                p
                for p in self.posted
                if p.key is not None and (run_id is None or p.key == f"card:{run_id}")
            ]

    def thread(self, parent: Posted) -> list[Posted]:
        """The replies in ``parent``'s thread, oldest first."""
        with self._lock:
            return [
                p for p in self.posted if p.channel == parent.channel and p.thread_ts == parent.ts
            ]

    def shares(self, channel: str | None = None) -> list[Posted]:
        """Messages that shared files (``files.completeUploadExternal``), oldest first."""
        with self._lock:
            return [p for p in self.posted if p.files and channel in (None, p.channel)]

    def unfurled(self, share: LinkShare) -> list[Unfurled]:
        """The ``chat.unfurl`` calls Slack accepted for ``share``'s message."""
        with self._lock:
            return [u for u in self.unfurls if u.share is share]

    def dms(self, user: str) -> list[Posted]:
        """Messages the app posted in its DM with ``user`` (``chat.postMessage`` to their id)."""
        with self._lock:
            return [p for p in self.posted if p.channel == _dm_of(user)]

    def calls_of(self, method: str, *, ok: bool | None = None) -> list[Call]:
        with self._lock:
            found = [c for c in self.calls if c.method == method]
        if ok is None:
            return found
        return [c for c in found if (c.status == 200 and c.error is None) == ok]

    def replies(self, ack: Ack) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.responses.get(ack.response_url, []))

    def connected(self) -> bool:
        with self._lock:
            return any(not c.ws.closed for c in self._conns)

    def secrets(self) -> list[str]:
        """Every secret this fake handed out so far: the bot and app tokens, each Socket Mode
        ticket and its URL, the verification token in payloads, each response_url (and its
        path, the secret part). None may ever reach a log. (A trigger_id is no secret: it
        expires in 3 s and opens nothing without the bot token; the hub keeps it as a key.)"""
        with self._lock:
            hooks = [a.response_url for a in self.acks]
            hooks += [f.upload_url for f in self.files.values()]
            return [
                BOT_TOKEN,
                APP_TOKEN,
                VERIFICATION_TOKEN,
                *self._issued,
                *hooks,
                *(h.removeprefix(self.url) for h in hooks),
                *(s for s in self.oidc.secrets if s),
            ]

    def wait(self, condition: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what or condition}"
                )
            time.sleep(0.05)

    async def await_(self, condition: Callable[[], Any], within: float = 15, what: str = "") -> Any:
        deadline = time.monotonic() + within
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {within:.0f} s waiting for {what or condition}"
                )
            await asyncio.sleep(0.05)

    # -- Socket Mode --------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
        if not known:
            self._violation("a Socket Mode connection used an unknown or reused ticket")
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, request, time.monotonic())
        with self._lock:
            self._conns.append(conn)
            self.connections_opened += 1
            live = len([c for c in self._conns if not c.ws.closed])
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": live,
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": APP_ID},
            }
        )
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_socket_text(message.data)
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
        return ws

    def _on_socket_text(self, data: str) -> None:
        arrived = asyncio.get_running_loop().time()
        try:
            body = json.loads(data)
        except json.JSONDecodeError:
            self._violation(f"the app sent a non-JSON socket message: {data[:80]!r}")
            return
        envelope_id = body.get("envelope_id")
        future = self._pending.pop(str(envelope_id), None)
        if future is None:
            self._violation(f"ack for an unknown or already acked envelope {envelope_id!r}")
            return
        with self._lock:
            self._acked.add(str(envelope_id))
        if not future.done():
            future.set_result((arrived, body.get("payload")))

    async def _socket(self, wait_s: float) -> _Conn:
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                live = [c for c in self._conns if not c.ws.closed]
            if live:
                return max(live, key=lambda c: c.opened)
            if time.monotonic() > deadline:
                raise AssertionError("the app has no Socket Mode connection")
            await asyncio.sleep(0.02)

    async def _envelope(
        self,
        kind: str,
        payload: dict[str, Any],
        response_url: str,
        wait_s: float,
        envelope_id: str | None = None,
    ) -> Ack:
        loop = asyncio.get_running_loop()
        envelope_id = envelope_id or str(uuid.uuid4())
        future: asyncio.Future[tuple[float, Any]] = loop.create_future()
        conn = await self._socket(wait_s)
        self._pending[envelope_id] = future
        started = loop.time()
        await conn.ws.send_json(
            {
                "envelope_id": envelope_id,
                "payload": payload,
                "type": kind,
                "accepts_response_payload": kind == "slash_commands",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        try:
            arrived, body = await asyncio.wait_for(asyncio.shield(future), ACK_LIMIT_S)
        except TimeoutError:
            self._violation(f"{kind} envelope was not acknowledged within {ACK_LIMIT_S:.0f} s")
            ack = Ack(envelope_id, None, None, response_url)
        else:
            if body is not None and kind == "events_api":
                self._violation("an events_api envelope was acked with a payload (Slack has none)")
            elif body is not None:
                for problem in validate.message_problems(body):
                    self._violation(f"ack payload: {problem}")
            ack = Ack(envelope_id, arrived - started, body, response_url)
        with self._lock:
            self.acks.append(ack)
        return ack

    async def _command(self, text: str, user: str, channel: str, wait_s: float) -> Ack:
        n = next(self._seq)
        response_url = f"{self.url}/hooks/commands/{n}"
        payload = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": channel.lower(),
            "user_id": user,
            "user_name": user.lower(),
            "command": "/monitor",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{n}.{uuid.uuid4().hex}",
        }
        return await self._envelope("slash_commands", payload, response_url, wait_s)

    async def _share(
        self, user: str, channel: str, urls: list[str], thread_ts: str | None, wait_s: float
    ) -> LinkShare:
        with self._lock:
            ts = self._ts()
            text = " ".join(f"<{url}>" for url in urls)
            posted = Posted(channel, ts, text, [], None, thread_ts=thread_ts, user=user)
            posted.versions.append(posted.latest)
            self.posted.append(posted)
            links = [(d, url) for url in urls if (d := self._unfurl_domain(url)) is not None]
            share = LinkShare(
                user,
                channel,
                ts,
                tuple(url for _, url in links),
                unfurl_id=f"{channel}.{ts}.{uuid.uuid4().hex}",
                envelope_id=str(uuid.uuid4()),
            )
            self.link_shares.append(share)
            member = channel in self.members
        if not links:  # Slack sends nothing for links outside the app's unfurl domains
            return share
        event: dict[str, Any] = {
            "type": "link_shared",
            "channel": channel,
            "is_bot_user_member": member,
            "user": user,
            "message_ts": ts,
            **({"thread_ts": thread_ts} if thread_ts else {}),
            "links": [{"domain": domain, "url": url} for domain, url in links],
            "unfurl_id": share.unfurl_id,
            "source": "conversations_history",
            "event_ts": f"{time.time():.6f}",
        }
        payload = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
            "event_time": int(time.time()),
        }
        share.ack = await self._envelope("events_api", payload, "", wait_s, share.envelope_id)
        return share

    def _unfurl_domain(self, url: str) -> str | None:
        """The unfurl domain ``url``'s host is (or is under), if any."""
        host = (urlsplit(url).hostname or "").lower()
        return next(
            (d for d in sorted(self.unfurl_domains) if host == d or host.endswith(f".{d}")), None
        )

    def _share_of(self, params: dict[str, Any]) -> LinkShare | None:
        """The shared message a chat.unfurl names (by unfurl_id, else by channel and ts)."""
        unfurl_id = params.get("unfurl_id")
        for share in reversed(self.link_shares):
            if (unfurl_id and share.unfurl_id == unfurl_id) or (
                not unfurl_id
                and share.channel == params.get("channel")
                and share.ts == params.get("ts")
            ):
                return share
        return None

    async def _click(
        self,
        message: Posted | Mapping[str, Any],
        action_id: str,
        user: str,
        channel: str | None,
        value: str | None,
        option: str | None = None,
        block_id: str | None = None,
    ) -> Ack:
        if isinstance(message, Posted):
            blocks, ts, where, ephemeral = message.blocks, message.ts, message.channel, False
        else:
            blocks, ts, where, ephemeral = message.get("blocks") or [], "0.0", channel, True
        where = channel or where or "C0OPS"
        found = [
            (b, e)
            for b in blocks
            for e in [*b.get("elements", []), b.get("accessory")]
            if b.get("type") in ("actions", "section")
            and isinstance(e, dict)
            and e.get("action_id") == action_id
            and (block_id is None or b.get("block_id") == block_id)
        ]
        if not found:
            raise AssertionError(f"there is no {action_id} button on that message")
        block, button = found[0]
        chosen: dict[str, Any] = {}
        if button.get("type") == "overflow":  # a menu: the chosen option is what Slack sends
            options = button.get("options") or []
            picked = [o for o in options if option is not None and o.get("value") == option]
            if not picked and value is None:
                raise AssertionError(f"the {action_id} menu has no option {option!r}")
            sent = picked[0] if picked else {"text": {"type": "plain_text", "text": "?"}}
            chosen = {"selected_option": {**sent, "value": value or sent.get("value")}}
        n = next(self._seq)
        response_url = f"{self.url}/hooks/actions/{n}"
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": where,
                "is_ephemeral": ephemeral,
            },
            "trigger_id": f"{n}.{uuid.uuid4().hex}",
            "team": {"id": TEAM, "domain": "fake"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": where, "name": where.lower()},
            "message": {"type": "message", "ts": ts, "text": "", "blocks": blocks},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block.get("block_id"),
                    "action_ts": f"{time.time():.6f}",
                    **(
                        {"type": "overflow", **chosen}
                        if chosen
                        else {
                            "type": "button",
                            "text": button.get("text"),
                            "value": button.get("value") if value is None else value,
                        }
                    ),
                }
            ],
        }
        return await self._envelope("interactive", payload, response_url, 15)

    async def _disconnect(self, reason: str) -> None:
        with self._lock:
            live = [c for c in self._conns if not c.ws.closed]
        for conn in live:
            await conn.ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
            )

        async def close_later(conn: _Conn) -> None:
            await asyncio.sleep(10)  # Slack closes the old socket soon after warning
            await conn.ws.close()

        for conn in live:
            asyncio.get_running_loop().create_task(close_later(conn))

    async def _drop(self) -> None:
        with self._lock:
            live = [c for c in self._conns if not c.ws.closed]
        for conn in live:
            transport = conn.request.transport
            if transport is not None:
                transport.abort()

    # -- Web API ------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _params(request)
        now = time.monotonic()
        channel = params.get("channel") or params.get("channel_id")
        if method == "chat.unfurl" and not channel and (share := self._share_of(params)):
            channel = share.channel  # an unfurl by unfurl_id is still in that channel
        self._check_early(method, channel, now)
        failure = self._outage_answer(request)
        if failure is not None:
            response, status = failure
            return self._record(method, params, response, status=status)
        limited = self._limited(method, channel, now)
        if limited is not None:
            return self._record(method, params, limited, "ratelimited")
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ").strip()
        wanted = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        signing_in = oidc.method(method, authorization)  # (its own credentials, not a token)
        if signing_in is None and token != wanted:
            self._violation(f"{method} called with the wrong token")
            return self._record(method, params, _error("invalid_auth"), "invalid_auth")
        refused = self._refused(method, channel)
        if refused is not None:
            return self._record(method, params, _error(refused), refused)
        handler = signing_in or _METHODS.get(method)
        if handler is None:
            self._violation(f"the app called {method}, which the fake does not know")
            return self._record(method, params, _error("unknown_method"), "unknown_method")
        with self._lock:
            body = handler(self, params)
            lose = self._lose.get(method, 0) > 0
            if lose:
                self._lose[method] -= 1
            botched = self._botched.get(method)
            botch = botched.pop(0) if botched else None
        error = None if body.get("ok") else str(body.get("error"))
        if lose:
            _cut(request)
            return self._record(method, params, web.Response(status=500), error, status=0)
        if botch is not None:
            status, delay = botch
            record = self._record(method, params, _server_error(status), error, status=status)
            await asyncio.sleep(delay)
            return record
        return self._record(method, params, web.json_response(body), error)

    def _record(
        self,
        method: str,
        params: dict[str, Any],
        response: web.StreamResponse,
        error: str | None = None,
        status: int | None = None,
    ) -> web.StreamResponse:
        code = response.status if status is None else status
        with self._lock:
            self.calls.append(Call(method, _redacted(params), time.monotonic(), code, error))
        return response

    def _outage_answer(self, request: web.Request) -> tuple[web.StreamResponse, int] | None:
        """During an outage: a 503, or (every other call) a dropped connection (status 0)."""
        with self._lock:
            if time.monotonic() >= self._outage_until:
                return None
            self._outage_count += 1
            drop = self._outage_count % 2 == 0
        if drop:
            _cut(request)
            return web.Response(status=500), 0
        page = web.Response(
            status=503, text="<html>Service Unavailable</html>", content_type="text/html"
        )
        return page, 503

    def _limited(self, method: str, channel: str | None, now: float) -> web.Response | None:
        with self._lock:
            for rule in list(self._limits):
                if rule.until is not None and now >= rule.until:
                    self._limits.remove(rule)
                    continue
                if method not in rule.methods:
                    continue
                if rule.remaining is not None:
                    if rule.remaining <= 0:
                        self._limits.remove(rule)
                        continue
                    rule.remaining -= 1
                self._held[(method, channel)] = (now, now + rule.retry_after)
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": f"{rule.retry_after:g}"},
                )
        return None

    def _refused(self, method: str, channel: str | None) -> str | None:
        with self._lock:
            error, methods = self._refusals.get(str(channel), ("", frozenset()))
        return error if method in methods else None

    def _check_early(self, method: str, channel: str | None, now: float) -> None:
        with self._lock:
            held = self._held.get((method, channel))
        if held is None:
            return
        sent, until = held
        if sent + EARLY_TOLERANCE_S < now < until - EARLY_TOLERANCE_S:
            self._violation(
                f"{method} to {channel} came back {until - now:.2f} s before its Retry-After ended"
            )

    # -- response_url -------------------------------------------------------------------

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        url = f"{self.url}{request.path}"
        failure = self._outage_answer(request)
        if failure is not None:
            return failure[0]
        with self._lock:
            used = len(self.responses.get(url, []))
        if used >= HOOK_USES:
            self._violation(f"a response_url was used more than {HOOK_USES} times")
            return web.Response(status=404, text="used_url")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            self._violation("a response_url POST was not JSON")
            return web.Response(status=400, text="invalid_payload")
        for problem in validate.message_problems(body):
            self._violation(f"response_url message: {problem}")
        with self._lock:
            self.responses.setdefault(url, []).append(body)
        return web.Response(text="ok")

    # -- upload URLs ----------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        """A POST of a file's bytes to the URL files.getUploadURLExternal handed out: raw, or
        multipart with the bytes in a ``filename`` field (as ``curl -F filename=@file``)."""
        failure = self._outage_answer(request)
        if failure is not None:
            return failure[0]
        with self._lock:
            file = self.files.get(self._uploads.get(request.path, ""))
        if file is None:
            self._violation("a POST to an upload URL files.getUploadURLExternal never gave")
            return web.Response(status=404, text="not found", content_type="text/plain")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            field_ = form.get("filename")
            if field_ is None:
                self._violation(f"upload of {file.id}: multipart without a filename field")
                return web.Response(status=400, text="no file", content_type="text/plain")
            body = field_.file.read() if isinstance(field_, web.FileField) else str(field_).encode()
        else:
            body = await request.read()
        with self._lock:
            if file.content is not None:
                self._violation(f"upload of {file.id}: its upload URL was used twice")
            if len(body) != file.length:
                self._violation(
                    f"upload of {file.id}: {len(body)} bytes arrived, but "
                    f"files.getUploadURLExternal was told length={file.length}"
                )
            file.content = body
            self.calls.append(
                Call("upload", {"file_id": file.id, "bytes": len(body)}, time.monotonic(), 200)
            )
        return web.Response(text=f"OK - {len(body)}", content_type="text/plain")

    # -- methods (called with the lock held) --------------------------------------------

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._seq):06d}"

    def _member(self, channel: Any) -> dict[str, Any] | None:
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel not in self.members:
            return {"ok": False, "error": "not_in_channel"}
        return None

    def _message_check(self, params: dict[str, Any], where: str) -> dict[str, Any] | None:
        problems = validate.message_problems(params)
        for problem in problems:
            self._violation(f"{where}: {problem}")
        return {"ok": False, "error": "invalid_blocks"} if problems else None

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)


def _auth_test(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "url": "https://fake.slack.com/",
        "team": "Fake",
        "user": "monitoring-hub",
        "team_id": TEAM,
        "user_id": BOT_USER,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def _connections_open(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    ticket = uuid.uuid4().hex
    fake._tickets.add(ticket)
    url = f"ws://127.0.0.1:{fake.port}/link/?ticket={ticket}&app_id={APP_ID}"
    fake._issued += [ticket, url]
    return {"ok": True, "url": url}


def _post_message(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = params.get("channel")
    if isinstance(channel, str) and _USER_ID.match(channel):
        # A user id: Slack posts in the app's DM with that user (opening it if need be) and
        # answers with the DM's id; the bot is always a member of its own DMs.
        channel = _dm_of(channel)
        refused = fake._message_check(params, "chat.postMessage")
    else:
        refused = fake._member(channel) or fake._message_check(params, "chat.postMessage")
    if refused:
        return refused
    thread_ts = params.get("thread_ts") or None
    if thread_ts is not None:
        parents = [
            p for p in fake.posted if p.channel == channel and p.ts == thread_ts and not p.thread_ts
        ]
        if not parents:  # (the app replies only under messages it posted itself)
            fake._violation(f"chat.postMessage: thread_ts {thread_ts} is no message in {channel}")
            return {"ok": False, "error": "thread_not_found"}
    posted = Posted(
        str(channel),
        fake._ts(),
        str(params.get("text") or ""),
        list(params.get("blocks") or []),
        params.get("metadata"),
        thread_ts=thread_ts,
    )
    posted.versions.append(posted.latest)
    fake.posted.append(posted)
    return {
        "ok": True,
        "channel": posted.channel,
        "ts": posted.ts,
        "message": {
            "type": "message",
            "ts": posted.ts,
            "text": posted.text,
            "bot_id": BOT_ID,
            "blocks": posted.blocks,
        },
    }


def _update(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    refused = fake._member(params.get("channel")) or fake._message_check(params, "chat.update")
    if refused:
        return refused
    found = [p for p in fake.posted if p.channel == params["channel"] and p.ts == params.get("ts")]
    if not found:
        return {"ok": False, "error": "message_not_found"}
    posted = found[0]
    posted.text = str(params.get("text") or "")
    posted.blocks = list(params.get("blocks") or [])
    if params.get("metadata"):
        posted.metadata = params["metadata"]
    posted.versions.append(posted.latest)
    return {"ok": True, "channel": posted.channel, "ts": posted.ts, "text": posted.text}


def _post_ephemeral(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    refused = fake._member(params.get("channel")) or fake._message_check(
        params, "chat.postEphemeral"
    )
    if refused:
        return refused
    fake.ephemerals.append(params)
    return {"ok": True, "message_ts": fake._ts()}


def _history(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    refused = fake._member(params.get("channel"))
    if refused:
        return refused
    oldest = float(params.get("oldest") or 0)
    limit = min(int(params.get("limit") or 100), 999)
    start = int(params.get("cursor") or 0)
    metadata = str(params.get("include_all_metadata")).lower() in ("true", "1")
    found = [
        p
        for p in reversed(fake.posted)
        if p.channel == params["channel"] and float(p.ts) > oldest and not p.thread_ts
    ]  # (replies in threads are not in the history: conversations.replies reads them)
    return _page(found, start, limit, metadata)


def _replies(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """conversations.replies: a thread's parent, then its replies, oldest first."""
    refused = fake._member(params.get("channel"))
    if refused:
        return refused
    ts = params.get("ts")
    channel = params["channel"]
    parent = [p for p in fake.posted if p.channel == channel and p.ts == ts and not p.thread_ts]
    if not parent:
        return {"ok": False, "error": "thread_not_found"}
    limit = min(int(params.get("limit") or 100), 999)
    start = int(params.get("cursor") or 0)
    metadata = str(params.get("include_all_metadata")).lower() in ("true", "1")
    found = parent + [p for p in fake.posted if p.channel == channel and p.thread_ts == ts]
    return _page(found, start, limit, metadata)


def _page(found: list[Posted], start: int, limit: int, metadata: bool) -> dict[str, Any]:
    page = found[start : start + limit]
    messages = []
    for p in page:
        item: dict[str, Any] = {"type": "message", "ts": p.ts, "text": p.text, "blocks": p.blocks}
        if p.user is None:
            item.update(user=BOT_USER, bot_id=BOT_ID, app_id=APP_ID)
        else:  # a person's message
            item["user"] = p.user
        if p.thread_ts:
            item["thread_ts"] = p.thread_ts
        if p.files:
            item["files"] = [dict(f) for f in p.files]
            item["upload"] = True
            item["display_as_bot"] = False
        if metadata and p.metadata:
            item["metadata"] = p.metadata
        messages.append(item)
    more = start + limit < len(found)
    return {
        "ok": True,
        "messages": messages,
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def _view(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    view = params.get("view")
    problems = validate.view_problems(view if isinstance(view, dict) else {})
    for problem in problems:
        fake._violation(f"view: {problem}")
    if problems:
        return {"ok": False, "error": "invalid_arguments"}
    fake.views.append(params)
    return {"ok": True, "view": {"id": f"V{next(fake._seq)}", **(view or {})}}


def _get_upload_url(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """files.getUploadURLExternal: a file id and the one URL its bytes go to."""
    problems = validate.get_upload_url_problems(params)
    for problem in problems:
        fake._violation(f"files.getUploadURLExternal: {problem}")
    if problems:
        return {"ok": False, "error": "invalid_arguments"}
    file_id = f"F{next(fake._seq):010d}"
    path = f"/upload/v1/{uuid.uuid4().hex}"
    url = f"{fake.url}{path}"
    fake.files[file_id] = SharedFile(
        file_id, str(params["filename"]), int(params["length"]), upload_url=url
    )
    fake._uploads[path] = file_id
    return {"ok": True, "upload_url": url, "file_id": file_id}


def _complete_upload(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """files.completeUploadExternal: share uploaded files in a channel as one message (Slack
    completes each upload once)."""
    problems = validate.complete_upload_problems(params)
    for problem in problems:
        fake._violation(f"files.completeUploadExternal: {problem}")
    if problems:
        return {"ok": False, "error": "invalid_arguments"}
    channel = params.get("channel_id") or params.get("channels")
    if not channel:
        fake._violation("files.completeUploadExternal without a channel: the file stays private")
        return {"ok": False, "error": "invalid_arguments"}
    refused = fake._member(channel)
    if refused:
        return refused
    named = validate.upload_files(params) or []
    for item in named:
        file = fake.files.get(str(item.get("id")))
        why = (
            "was never handed out by files.getUploadURLExternal"
            if file is None
            else "never had its bytes uploaded"
            if file.content is None
            else f"was uploaded with {len(file.content)} bytes, not length={file.length}"
            if len(file.content) != file.length
            else "was completed already (Slack completes an upload once)"
            if file.completed
            else None
        )
        if why is not None:
            fake._violation(f"files.completeUploadExternal: file {item.get('id')} {why}")
            return {"ok": False, "error": "file_not_found"}
    thread_ts = params.get("thread_ts") or None
    if thread_ts is not None and not any(
        p.channel == channel and p.ts == thread_ts and not p.thread_ts for p in fake.posted
    ):
        fake._violation(f"files.completeUploadExternal: thread_ts {thread_ts} is no message")
        return {"ok": False, "error": "invalid_arguments"}
    shared: list[dict[str, Any]] = []
    for item in named:
        file = fake.files[str(item["id"])]
        file.completed, file.channel = True, str(channel)
        file.title = str(item.get("title") or file.filename)
        shared.append(
            {
                "id": file.id,
                "name": file.filename,
                "title": file.title,
                "size": file.length,
                "mimetype": "application/pdf" if file.filename.endswith(".pdf") else "",
                "user": BOT_USER,
            }
        )
    posted = Posted(
        str(channel),
        fake._ts(),
        str(params.get("initial_comment") or ""),
        [],
        None,
        thread_ts=thread_ts,
        files=shared,
    )
    posted.versions.append(posted.latest)
    fake.posted.append(posted)
    return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shared]}


def _conversation_members(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """conversations.members: a channel's member ids, a page at a time (cursor and limit)."""
    members = fake.channel_members.get(str(params.get("channel") or ""))
    if members is None:
        return {"ok": False, "error": "channel_not_found"}
    limit = min(max(int(params.get("limit") or 100), 1), 1000)
    cursor = str(params.get("cursor") or "")
    try:
        start = int(base64.b64decode(cursor).decode().removeprefix("offset:")) if cursor else 0
    except ValueError:
        return {"ok": False, "error": "invalid_cursor"}
    more = start + limit < len(members)
    following = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
    return {
        "ok": True,
        "members": members[start : start + limit],
        "response_metadata": {"next_cursor": following},
    }


def _users_info(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """users.info: a user object, or ``user_not_found``."""
    user = params.get("user")
    if not user:
        fake._violation("users.info called without a user")
        return {"ok": False, "error": "invalid_arguments"}
    found = fake.users.get(str(user))
    if found is None:
        return {"ok": False, "error": "user_not_found"}
    return {"ok": True, "user": found}


def _conversations_info(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """conversations.info: a conversation object, or ``channel_not_found``."""
    channel = params.get("channel")
    if not channel:
        fake._violation("conversations.info called without a channel")
        return {"ok": False, "error": "invalid_arguments"}
    found = fake.channels.get(str(channel))
    if found is None:
        return {"ok": False, "error": "channel_not_found"}
    return {"ok": True, "channel": found}


def _unfurl(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """chat.unfurl: cards for links of a message a person shared, once its link_shared event
    was acknowledged (Slack answers ``cannot_unfurl_url`` before)."""
    by_id = bool(params.get("unfurl_id") or params.get("source"))
    wrong = _unfurl_target_problem(params, by_id)
    if wrong is not None:
        return _unfurl_refused(fake, "invalid_arguments", wrong)
    share = fake._share_of(params)
    if share is None:
        return _unfurl_refused(fake, "cannot_find_message", "it names no shared message")
    if share.envelope_id not in fake._acked:
        return _unfurl_refused(
            fake, "cannot_unfurl_url", "called before its link_shared event was acknowledged"
        )
    unfurls = params.get("unfurls")
    if isinstance(unfurls, str):
        try:
            unfurls = json.loads(unfurls)
        except json.JSONDecodeError:
            return _unfurl_refused(fake, "invalid_unfurls_format", "unfurls is not JSON")
    if not isinstance(unfurls, dict) or not unfurls:
        return _unfurl_refused(fake, "missing_unfurls", "unfurls is not a map of URL → card")
    for url, card in unfurls.items():
        if url not in share.urls:
            return _unfurl_refused(
                fake, "cannot_unfurl_message", f"{url!r} is not a link of that message"
            )
        problems = _card_problems(card)
        for problem in problems:
            fake._violation(f"chat.unfurl of {url}: {problem}")
        if problems:
            return {"ok": False, "error": "cannot_parse_attachment"}
    fake.unfurls.append(Unfurled(share, dict(unfurls), "unfurl_id" if by_id else "channel"))
    return {"ok": True}


def _unfurl_target_problem(params: dict[str, Any], by_id: bool) -> str | None:
    """What is wrong with how a chat.unfurl names its message, if anything."""
    if not by_id:
        ok = params.get("channel") and params.get("ts")
        return None if ok else "give channel and ts, or unfurl_id and source"
    if not (params.get("unfurl_id") and params.get("source")):
        return "unfurl_id and source go together"
    if params["source"] not in ("composer", "conversations_history"):
        return f"source {params['source']!r} is neither composer nor conversations_history"
    return None


def _unfurl_refused(fake: FakeSlack, error: str, why: str) -> dict[str, Any]:
    fake._violation(f"chat.unfurl: {why}")
    return {"ok": False, "error": error}


def _card_problems(card: Any) -> list[str]:
    """A link's card: ``{"blocks": […]}``, or a message attachment with some text."""
    if not isinstance(card, Mapping):
        return ["the card is not an object"]
    if "blocks" not in card and not any(card.get(k) for k in ("text", "fallback", "title")):
        return ["the card has neither blocks nor text"]
    return validate.message_problems(card, require_text=False)


_METHODS: dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": _auth_test,
    "apps.connections.open": _connections_open,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "chat.postEphemeral": _post_ephemeral,
    "conversations.history": _history,
    "conversations.replies": _replies,
    "conversations.members": _conversation_members,
    "conversations.info": _conversations_info,
    "users.info": _users_info,
    "views.open": _view,
    "views.update": _view,
    "views.publish": _view,
    "files.getUploadURLExternal": _get_upload_url,
    "files.completeUploadExternal": _complete_upload,
    "chat.unfurl": _unfurl,
}


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            params.update(dict(await request.post()))
    for key in ("blocks", "metadata", "view", "attachments", "unfurls"):
        if isinstance(params.get(key), str):
            with contextlib.suppress(json.JSONDecodeError):
                params[key] = json.loads(params[key])
    return params


_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def _dm_of(user: str) -> str:
    """The id of the app's DM with ``user`` (stable per user, like Slack's ``D…`` ids)."""
    return f"D{user[1:]}"


def _redacted(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _SECRET_PARAMS}


_SECRET_PARAMS = frozenset(
    {"token", "client_secret", "code", "state", "nonce", "refresh_token", "code_verifier"}
)
"""Never kept in :attr:`FakeSlack.calls`."""


def _server_error(status: int) -> web.Response:
    return web.Response(status=status, text="<html>Server Error</html>", content_type="text/html")


def _error(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})


def _cut(request: web.Request) -> None:
    """Drop the connection without an answer."""
    if request.transport is not None:
        request.transport.abort()
