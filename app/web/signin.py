"""Sign in with Slack (OpenID Connect): how a person tells the web view who they are.

Each hop is a redirect in the person's browser:

1. ``GET /auth/login?next=/runs/5`` keeps a random ``state`` and ``nonce`` and the local page to
   return to in the short-lived ``mhub_signin`` cookie (:mod:`app.web.session`), and sends the
   browser to Slack's ``/openid/connect/authorize`` for the hub's workspace.
2. Slack signs the person in and sends them back to ``/auth/callback?code=…&state=…``.
3. The callback checks ``state`` against the cookie, exchanges the code
   (``openid.connect.token``), verifies the ID token (RS256 against the keys Slack publishes,
   audience, issuer, expiry, nonce, the hub's workspace), reads the person's name
   (``openid.connect.userInfo``), starts the session and returns to the page.

Any failure is a short page saying what happened and what to do, sets no session, and logs one
line naming the reason: never the code, state, nonce, tokens or cookies. ``POST /auth/logout``
ends the session; ``GET /auth/signed-out`` says so.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import aiohttp_jinja2
import jwt
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from app.errors import HubError, quoted
from app.web.session import Pending, Sessions, SignedIn

log = logging.getLogger(__name__)

LOGIN_PATH = "/auth/login"
CALLBACK_PATH = "/auth/callback"
SIGNED_OUT_PATH = "/auth/signed-out"
AUTHORIZE_PATH = "/openid/connect/authorize"
KEYS_PATH = "/openid/connect/keys"
SCOPE = "openid profile"
USER_CLAIM = "https://slack.com/user_id"
TEAM_CLAIM = "https://slack.com/team_id"
LEEWAY_S = 30
"""Clock difference tolerated between Slack and the hub when checking the ID token's times."""
HTTP_TIMEOUT_S = 10.0
NEXT_LIMIT = 1000
"""The longest page address kept to return to (it travels in a cookie)."""
MISCONFIGURED = frozenset(
    {"invalid_client_id", "bad_client_secret", "bad_redirect_uri", "invalid_client"}
)
"""Slack's answers that mean the hub's settings are wrong, not the person's sign-in."""

START_AGAIN = "Start again:"
TRY_LATER = "Slack may be having trouble; try again in a minute:"
OTHER_TEAM = "Sign in to the workspace the hub is installed in:"
ASK_ADMIN = (
    "Ask whoever runs the hub to check HUB_WEB_SLACK_CLIENT_ID, HUB_WEB_SLACK_CLIENT_SECRET and "
    "the Slack app's Redirect URLs (docs/web.md), then:"
)
_JWT_REASONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "it has expired"),
    (jwt.InvalidAudienceError, "it was issued to another app (audience)"),
    (jwt.InvalidIssuerError, "it was not issued by Slack (issuer)"),
    (jwt.InvalidSignatureError, "its signature does not match Slack's keys"),
    (jwt.ImmatureSignatureError, "it is not valid yet"),
    (jwt.MissingRequiredClaimError, "a required claim is missing"),
)


class SignInFailed(HubError):
    """A sign-in that cannot go on: the HTTP ``status``, the page's ``message`` and ``advice``
    (followed by a Sign in with Slack link), and the ``reason`` the log gets."""

    def __init__(self, status: int, reason: str, message: str, advice: str = START_AGAIN) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.advice = advice


class SlackSignIn:
    """Sign in with Slack for one Slack app (its client id and secret), letting in the people
    of the workspace ``team()`` names: the one the hub is installed in."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        public_url: str,
        api_url: str,
        team: Callable[[], Awaitable[str]],
        sessions: Sessions,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.public_origin = _origin(public_url)
        self.redirect_uri = public_url.rstrip("/") + CALLBACK_PATH
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.issuer = _origin(api_url)
        """Slack's origin: it issues the ID tokens and serves the sign-in page and the keys."""
        self._team = team
        self.sessions = sessions
        self._keys: dict[str, jwt.PyJWK] = {}
        self._http: aiohttp.ClientSession | None = None
        self._slack: AsyncWebClient | None = None
        # slack_sdk logs each request and answer at DEBUG: the code, and the tokens Slack gave.
        self._slack_log = logging.getLogger(f"{__name__}.slack")
        self._slack_log.setLevel(logging.INFO)

    def login_path(self, next_path: str) -> str:
        """Where to send a browser to sign in and then come back to ``next_path``."""
        return f"{LOGIN_PATH}?next={quote(local_path(next_path), safe='/')}"

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._slack = None

    async def authorize_url(self, pending: Pending) -> str:
        """Slack's sign-in page for this sign-in, in the hub's workspace."""
        query = {
            "response_type": "code",
            "scope": SCOPE,
            "client_id": self.client_id,
            "state": pending.state,
            "nonce": pending.nonce,
            "redirect_uri": self.redirect_uri,
            "team": await self._workspace(),
        }
        return f"{self.issuer}{AUTHORIZE_PATH}?{urlencode(query, quote_via=quote)}"

    async def finish(self, query: Mapping[str, str], pending: Pending | None) -> SignedIn:
        """Who Slack says came back to the callback with ``query``, or :class:`SignInFailed`."""
        code, nonce = _checked(query, pending)
        team = await self._workspace()
        client = self._client()
        # The client credentials as form fields (client_secret_post, which Slack takes as well
        # as Basic): slack_sdk's openid_connect_token sends them with aiohttp's BasicAuth,
        # deprecated since aiohttp 3.14.
        exchange = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "code": code,
            "redirect_uri": self.redirect_uri,
            "grant_type": "authorization_code",
        }
        answer = await self._call(
            "openid.connect.token", client.api_call("openid.connect.token", data=exchange)
        )
        id_token, access_token = answer.get("id_token"), answer.get("access_token")
        if not (isinstance(id_token, str) and isinstance(access_token, str)):
            raise _refused("openid.connect.token answered without an ID token")
        claims = await self._verify(id_token, nonce)
        if claims.get(TEAM_CLAIM) != team:
            raise SignInFailed(
                403,
                "the ID token is for another workspace",
                "You signed in to another Slack workspace than the one the hub is installed in.",
                OTHER_TEAM,
            )
        user = claims.get(USER_CLAIM)
        profile = await self._call(
            "openid.connect.userInfo", client.openid_connect_userInfo(token=access_token)
        )
        if not isinstance(user, str) or not user or profile.get(USER_CLAIM) != user:
            raise _unverified("the ID token and openid.connect.userInfo name different people")
        name = profile.get("name") or profile.get("given_name") or user
        return SignedIn(user=user, team=team, name=str(name))

    # -- Slack ----------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))
        return self._http

    def _client(self) -> AsyncWebClient:
        if self._slack is None:
            self._slack = AsyncWebClient(
                base_url=self.api_url,
                session=self._session(),
                timeout=int(HTTP_TIMEOUT_S),
                logger=self._slack_log,
            )
        return self._slack

    async def _workspace(self) -> str:
        try:
            return await self._team()
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(f"the app's workspace is unknown ({type(exc).__name__})") from None

    async def _call(self, method: str, call: Awaitable[AsyncSlackResponse]) -> dict[str, Any]:
        try:
            response = await call
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"HTTP {status}")
            if status >= 500 or status == 429:
                raise _unreachable(f"{method} answered HTTP {status}") from None
            if error in MISCONFIGURED:
                raise SignInFailed(
                    500,
                    f"{method} refused the hub's settings: {error}",
                    f"Slack refused the hub's Sign in with Slack settings ({error}).",
                    ASK_ADMIN,
                ) from None
            raise _refused(f"{method} answered {quoted(error)}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(f"{method} failed ({type(exc).__name__})") from None
        return response.data if isinstance(response.data, dict) else {}

    async def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature, audience, issuer, times and nonce hold."""
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except jwt.InvalidTokenError:
            raise _unverified("the ID token is malformed") from None
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            why = next((w for kind, w in _JWT_REASONS if isinstance(exc, kind)), "it is invalid")
            raise _unverified(f"the ID token failed verification: {why}") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise _unverified("the ID token's nonce is not this sign-in's")
        return claims

    async def _key(self, kid: object) -> jwt.PyJWK:
        """Slack's key ``kid``, fetching Slack's keys again (once) when it is not known yet."""
        if not isinstance(kid, str) or not kid:
            raise _unverified("the ID token names no signing key")
        if kid not in self._keys:
            self._keys = await self._fetch_keys()
        key = self._keys.get(kid)
        if key is None:
            raise _unverified("the ID token is signed with a key Slack does not publish")
        return key

    async def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        try:
            async with self._session().get(self.issuer + KEYS_PATH) as response:
                response.raise_for_status()
                found = jwt.PyJWKSet.from_dict(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _unreachable(
                f"Slack's keys could not be fetched ({type(exc).__name__})"
            ) from None
        except jwt.PyJWTError as exc:
            raise _unreachable(f"Slack's keys could not be read ({type(exc).__name__})") from None
        return {key.key_id: key for key in found.keys if key.key_id}


SIGNIN = web.AppKey("signin", SlackSignIn)
ROUTES = web.RouteTableDef()


@ROUTES.get(LOGIN_PATH)
async def login(request: web.Request) -> web.StreamResponse:
    signin = request.app[SIGNIN]
    pending = Pending(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        next=local_path(request.query.get("next")),
    )
    try:
        url = await signin.authorize_url(pending)
    except SignInFailed as failure:
        return _failed(request, failure, pending.next)
    response = _redirect(302, url)
    signin.sessions.start_pending(response, pending)
    return response


@ROUTES.get(CALLBACK_PATH)
async def callback(request: web.Request) -> web.StreamResponse:
    signin = request.app[SIGNIN]
    pending = signin.sessions.pending(request)
    back = pending.next if pending is not None else "/"
    try:
        who = await signin.finish(request.query, pending)
    except SignInFailed as failure:
        return _failed(request, failure, back)
    log.info("sign-in: %s of %s signed in", who.user, who.team)
    response = _redirect(302, back)
    signin.sessions.start(response, who)
    signin.sessions.end_pending(response)
    return response


@ROUTES.post("/auth/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    signin = request.app[SIGNIN]
    if _cross_site(request, signin.public_origin):
        log.warning("sign-out refused: the request came from another site")
        return _page(
            request,
            403,
            "Not signed out",
            "That sign-out request came from another site, so you are still signed in.",
            "To sign out, use Sign out on the hub's own pages:",
            ("Back to the runboard", "/"),
        )
    who = signin.sessions.read(request)
    log.info("sign-out: %s", who.user if who is not None else "nobody was signed in")
    response = _redirect(303, SIGNED_OUT_PATH)
    signin.sessions.end(response)
    return response


def _cross_site(request: web.Request, own: str) -> bool:
    """Whether a POST came from another site. The pages send ``Referrer-Policy: no-referrer``,
    so a browser's own form sends ``Origin: null``; ``Sec-Fetch-Site`` then says where it came
    from (every current browser sends it). An Origin naming another site is refused."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    return origin is not None and origin.lower() not in (own, "null")


@ROUTES.get(SIGNED_OUT_PATH)
async def signed_out(request: web.Request) -> web.StreamResponse:
    return _page(request, 200, "Signed out", "You are signed out.", "")


def local_path(value: str | None) -> str:
    """``value`` when it is a page of this site to return to, else ``/``: never an address on
    another site (``//evil.example``, ``/\\evil.example``, ``https://…``), never a sign-in page
    (which would loop), never anything a browser would read otherwise than it is written."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\", "/auth/"))
        or len(value) > NEXT_LIMIT
        or not value.isascii()
        or not value.isprintable()
        or any(c in value for c in " \\")
    ):
        return "/"
    return value


def _checked(query: Mapping[str, str], pending: Pending | None) -> tuple[str, str]:
    """The code of a callback that answers the sign-in under way in this browser, and that
    sign-in's nonce."""
    if pending is None:
        raise SignInFailed(
            400,
            "no sign-in under way (no mhub_signin cookie, or it expired)",
            "This sign-in was not started in this browser, or took longer than 10 minutes.",
        )
    if not hmac.compare_digest(query.get("state", "").encode(), pending.state.encode()):
        raise SignInFailed(
            400,
            "the state does not match the sign-in under way",
            "This sign-in link does not belong to the sign-in started in this browser.",
        )
    error = query.get("error")
    if error is not None:
        raise SignInFailed(
            403 if error == "access_denied" else 400,
            f"Slack answered error={quoted(error)}",
            f"Slack did not sign you in: the sign-in was cancelled or refused ({quoted(error)}).",
        )
    code = query.get("code", "")
    if not code:
        raise SignInFailed(400, "the callback has no code", "Slack sent you back without a code.")
    return code, pending.nonce


def _refused(reason: str) -> SignInFailed:
    return SignInFailed(
        400,
        reason,
        "Slack refused to finish this sign-in: its link was used already or is too old.",
    )


def _unverified(reason: str) -> SignInFailed:
    return SignInFailed(
        403, reason, "Slack's answer could not be verified, so you are not signed in."
    )


def _unreachable(reason: str) -> SignInFailed:
    return SignInFailed(
        502, reason, "Slack could not be reached to finish signing you in.", TRY_LATER
    )


def _failed(request: web.Request, failure: SignInFailed, back: str) -> web.StreamResponse:
    log.warning("sign-in failed: %s", failure.reason)
    again = ("Sign in with Slack", request.app[SIGNIN].login_path(back))
    response = _page(
        request, failure.status, "Sign-in failed", failure.message, failure.advice, again
    )
    request.app[SIGNIN].sessions.end_pending(response)
    return response


def _page(
    request: web.Request,
    status: int,
    title: str,
    message: str,
    advice: str,
    link: tuple[str, str] | None = None,
) -> web.StreamResponse:
    """A sign-in page: what happened, what to do, and a link to do it (by default: sign in)."""
    text, href = link or ("Sign in with Slack", request.app[SIGNIN].login_path("/"))
    context = {
        "title": title,
        "message": message,
        "advice": advice,
        "link_text": text,
        "link": href,
        "nav": "",
        "live": False,
    }
    return aiohttp_jinja2.render_template("signin.html", request, context, status=status)


def _redirect(status: int, location: str) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
