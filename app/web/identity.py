"""Who is asking: one :class:`~app.web.viewer.Viewer` per request, before any view runs.

In order:

1. ``/healthz``, ``/api/openapi.json`` (and, with Sign in with Slack, the stylesheet and
   script the sign-in pages use): nobody needs to be named.
2. ``Authorization: Bearer <token>``: an API token (``mhub token create``), or a 401 problem.
3. ``/readyz`` and ``/metrics`` are for machines: HTTP Basic with ``HUB_WEB_AUTH`` when it is
   set; without it, loopback callers only once Sign in with Slack is on (not requests a local
   proxy passed on). Never a redirect.
4. Sign in with Slack configured: ``/auth/…`` passes (it is how one signs in); a session cookie
   names the person, who sees the customers the access rules give them
   (:class:`app.web.people.People`); without one, a browser is sent to sign in and an API call
   gets 401.
5. Operator mode (no sign-in configured): ``HUB_WEB_AUTH`` (HTTP Basic) or, without it, the
   loopback-only view as before; either way every customer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from app.web.people import People
from app.web.security import REALM, is_loopback
from app.web.session import Sessions
from app.web.signin import SlackSignIn
from app.web.viewer import OPERATOR, VIEWER, Scope, Via, Viewer

OPEN_PATHS = frozenset({"/healthz", "/api/openapi.json"})
"""Served to anyone: liveness, and the API's description (it names no customer)."""
MACHINE_PATHS = frozenset({"/readyz", "/metrics"})
SIGN_IN_PREFIX = "/auth/"


class TokenCheck(Protocol):
    """What identity needs of the token store (:class:`app.engine.tokens.Tokens`)."""

    async def check(self, secret: str) -> _Token | None: ...


class _Token(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def customers(self) -> tuple[str, ...]: ...
    @property
    def scope(self) -> str: ...


def identify(
    *,
    auth: str | None,
    tokens: TokenCheck | None = None,
    signin: SlackSignIn | None = None,
    sessions: Sessions | None = None,
    people: People | None = None,
) -> Middleware:
    """The identity middleware. ``auth`` is ``HUB_WEB_AUTH`` (``user:password``); with
    ``signin`` (and its ``sessions`` and ``people``) people sign in with Slack."""
    expected = auth.encode() if auth is not None else None
    operator = OPERATOR
    if auth is not None:
        user = auth.partition(":")[0]
        operator = Viewer(actor=f"operator:{user}", label=user, via=Via.OPERATOR, customers=None)

    def basic_ok(request: web.Request) -> bool:
        return expected is not None and hmac.compare_digest(_basic(request), expected)

    async def who_is(request: web.Request) -> Viewer:
        path = request.path
        if path in OPEN_PATHS or (signin is not None and path.startswith("/static/")):
            return operator if signin is None else _NOBODY
        bearer = _bearer(request)
        if bearer is not None:
            return await _token_viewer(tokens, bearer)
        if path in MACHINE_PATHS:
            if basic_ok(request) or (expected is None and (signin is None or _local(request))):
                return operator
            raise _machine_refused(expected is not None)
        if signin is None:
            if expected is not None and not basic_ok(request):
                raise _basic_refused()
            return operator
        assert sessions is not None and people is not None
        if path.startswith(SIGN_IN_PREFIX):
            return _NOBODY
        return await _person(request, signin, sessions, people)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[VIEWER] = await who_is(request)
        return await handler(request)

    return middleware


async def _person(
    request: web.Request, signin: SlackSignIn, sessions: Sessions, people: People
) -> Viewer:
    """The person signed in with Slack; else a browser is sent to sign in, an API call 401."""
    who = sessions.read(request)
    if who is None:
        if request.path.startswith("/api/") or request.method not in ("GET", "HEAD"):
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Bearer realm="Monitoring Hub"'},
                text="Send an API token (Authorization: Bearer …; `mhub token create`), "
                "or sign in with Slack in a browser.",
            )
        raise web.HTTPFound(signin.login_path(request.path_qs))
    customers = await people.customers(who.user)
    return Viewer(actor=who.user, label=who.name, via=Via.SLACK, customers=customers)


_NOBODY = Viewer(actor="anonymous", label="", via=Via.SLACK, customers=frozenset())
"""Signing in, or reading something that names no customer: sees no customer."""


async def _token_viewer(tokens: TokenCheck | None, secret: str) -> Viewer:
    token = await tokens.check(secret) if tokens is not None and secret else None
    if token is None:
        raise web.HTTPUnauthorized(
            headers={"WWW-Authenticate": 'Bearer realm="Monitoring Hub", error="invalid_token"'},
            text="That API token is unknown, revoked or expired; `mhub token list` shows the "
            "tokens, `mhub token create` makes a new one.",
        )
    return Viewer(
        actor=f"token:{token.name}",
        label=token.name,
        via=Via.TOKEN,
        customers=frozenset(token.customers),
        scope=Scope(token.scope),
        token_id=token.id,
    )


def _local(request: web.Request) -> bool:
    """A caller on this machine, not a request a local reverse proxy passed on (it says whom
    for in ``Forwarded`` or ``X-Forwarded-For``)."""
    forwarded = "Forwarded" in request.headers or "X-Forwarded-For" in request.headers
    return is_loopback(request.remote or "") and not forwarded


def _machine_refused(with_password: bool) -> web.HTTPException:
    if with_password:
        return _basic_refused()
    return web.HTTPForbidden(
        text="/readyz and /metrics answer loopback callers only; set HUB_WEB_AUTH=user:password "
        "for machines elsewhere (HTTP Basic)."
    )


def _basic_refused() -> web.HTTPException:
    return web.HTTPUnauthorized(
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        text="Sign in with the web view's user and password (HUB_WEB_AUTH).",
    )


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _basic(request: web.Request) -> bytes:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return b""
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b""
