"""Sign in with Slack as the fake Slack speaks it: OpenID Connect, the way slack.com answers it.

- ``GET {url}/openid/connect/authorize`` (at the origin, not under ``/api/``): checks
  ``response_type=code``, a ``scope`` with ``openid``, a registered ``client_id``, a
  ``redirect_uri`` (one of the client's, when it was registered with some), ``state`` and
  ``nonce``; anything missing or wrong is a violation, answered with an HTML error page like
  Slack's. The person "signed in to Slack in this browser" is set by
  :meth:`FakeSlack.sign_in_as`; with nobody, it sends the browser back with
  ``error=access_denied``. Otherwise it issues a one-time code bound to the client, the
  redirect_uri, the nonce and the person, and sends the browser back with ``code`` and ``state``.
  (The ``team`` hint is kept on the code but changes nobody: a person may pick any workspace.)
- ``POST {url}/api/openid.connect.token``: client credentials as form fields or HTTP Basic (both,
  like Slack), ``code``, ``redirect_uri``, optional ``grant_type``. ``invalid_client_id``,
  ``bad_client_secret``, ``invalid_code`` (unknown, or used already: then the tokens it gave are
  revoked too), ``bad_redirect_uri`` (not the one given to authorize), ``invalid_grant_type``.
  Success: an ``xoxp-`` access token and an RS256 ID token (header ``kid``) with Slack's claims.
- ``POST {url}/api/openid.connect.userInfo`` with ``Authorization: Bearer xoxp-…``, a token the
  exchange issued (anything else: ``invalid_auth``): the person's profile.
- ``GET {url}/openid/connect/keys``: the JWKS with the fake's RSA public key.

:class:`Tamper` spoils the next ID token (:meth:`FakeSlack.oidc_tamper`): expired, for another
audience, from another issuer, with another nonce, or signed by another key under the same kid.
Every code, token, client secret, state and nonce is in :meth:`FakeSlack.secrets`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from tests.fakeslack.server import FakeSlack

AUTHORIZE_PATH = "/openid/connect/authorize"
KEYS_PATH = "/openid/connect/keys"
USER_CLAIM = "https://slack.com/user_id"
TEAM_CLAIM = "https://slack.com/team_id"
TEAM_NAME_CLAIM = "https://slack.com/team_name"
TEAM_DOMAIN_CLAIM = "https://slack.com/team_domain"
ID_TOKEN_LIFETIME_S = 3600
OTHER_AUDIENCE = "9999999999.9999999999"
OTHER_ISSUER = "https://evil.example"
OTHER_NONCE = "a-nonce-from-another-sign-in"


class Tamper(StrEnum):
    """What to spoil in the next ID token, as a forger or a replayed answer would."""

    EXPIRED = "expired"
    AUDIENCE = "audience"
    ISSUER = "issuer"
    NONCE = "nonce"
    KEY = "key"
    """Signed by another RSA key, under the kid of the published one."""


@dataclass(frozen=True)
class Person:
    """Someone signed in to Slack in the browser."""

    user: str
    team: str
    name: str
    email: str


@dataclass
class Grant:
    """A code authorize handed out: one use, bound to what was asked for and who said yes."""

    client_id: str
    redirect_uri: str
    nonce: str
    person: Person
    team_hint: str | None
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)


class Oidc:
    """The fake's Sign in with Slack state. Guarded by the fake's lock."""

    def __init__(self) -> None:
        self.clients: dict[str, tuple[str, tuple[str, ...]]] = {}
        """client_id → (client_secret, redirect URLs; none: any)."""
        self.person: Person | None = None
        self.grants: dict[str, Grant] = {}
        self.access: dict[str, Person] = {}
        self.tampers: set[Tamper] = set()
        self.secrets: list[str] = []
        self.kid = f"fake-{secrets.token_hex(4)}"

    @cached_property
    def key(self) -> rsa.RSAPrivateKey:
        """Made on first use: most tests never sign anyone in."""
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @cached_property
    def other_key(self) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def id_token(self, issuer: str, client_id: str, grant: Grant) -> str:
        now = int(time.time())
        person = grant.person
        given, _, family = person.name.partition(" ")
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": person.user,
            "aud": client_id,
            "exp": now + ID_TOKEN_LIFETIME_S,
            "iat": now,
            "auth_time": now,
            "nonce": grant.nonce,
            "at_hash": secrets.token_urlsafe(16),
            USER_CLAIM: person.user,
            TEAM_CLAIM: person.team,
            "email": person.email,
            "email_verified": True,
            "date_email_verified": now - 86400,
            "locale": "en-US",
            "name": person.name,
            "given_name": given,
            "family_name": family,
            TEAM_NAME_CLAIM: "Fake",
            TEAM_DOMAIN_CLAIM: "fake",
        }
        tampers, self.tampers = self.tampers, set()
        if Tamper.EXPIRED in tampers:
            claims.update(iat=now - 2 * ID_TOKEN_LIFETIME_S, exp=now - ID_TOKEN_LIFETIME_S)
        if Tamper.AUDIENCE in tampers:
            claims["aud"] = OTHER_AUDIENCE
        if Tamper.ISSUER in tampers:
            claims["iss"] = OTHER_ISSUER
        if Tamper.NONCE in tampers:
            claims["nonce"] = OTHER_NONCE
        key = self.other_key if Tamper.KEY in tampers else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})


def routes(fake: FakeSlack) -> list[web.RouteDef]:
    """The browser-facing endpoints, at the fake's origin."""

    async def authorize_(request: web.Request) -> web.StreamResponse:
        return authorize(fake, request)

    async def keys_(request: web.Request) -> web.StreamResponse:
        return keys(fake, request)

    return [web.get(AUTHORIZE_PATH, authorize_), web.get(KEYS_PATH, keys_)]


def authorize(fake: FakeSlack, request: web.Request) -> web.StreamResponse:
    method = "openid.connect.authorize"
    failure = fake._outage_answer(request)
    if failure is not None:
        return fake._record(method, dict(request.query), failure[0], status=failure[1])
    query = dict(request.query)
    with fake._lock:
        oidc = fake.oidc
        oidc.secrets += [query.get("state", ""), query.get("nonce", "")]
        problems = _authorize_problems(oidc, query)
        for problem in problems:
            fake._violation(f"{AUTHORIZE_PATH}: {problem}")
        if problems:
            page = web.Response(
                status=400,
                text=f"<html><body><h1>Something went wrong</h1><p>{problems[0]}</p></body></html>",
                content_type="text/html",
            )
            return fake._record(method, query, page, "invalid_request")
        back = {"state": query["state"]}
        if oidc.person is None:
            back = {"error": "access_denied", **back}
        else:
            code = f"{secrets.randbelow(10**10)}.{secrets.token_hex(24)}"
            oidc.grants[code] = Grant(
                query["client_id"],
                query["redirect_uri"],
                query["nonce"],
                oidc.person,
                query.get("team"),
            )
            oidc.secrets.append(code)
            back = {"code": code, **back}
    separator = "&" if "?" in query["redirect_uri"] else "?"
    location = f"{query['redirect_uri']}{separator}{urlencode(back)}"
    response = web.Response(status=302, headers={"Location": location})
    return fake._record(method, query, response, back.get("error"))


def _authorize_problems(oidc: Oidc, query: Mapping[str, str]) -> list[str]:
    problems = []
    if query.get("response_type") != "code":
        problems.append("response_type must be code")
    if "openid" not in query.get("scope", "").split():
        problems.append("scope must include openid")
    client = oidc.clients.get(query.get("client_id", ""))
    if client is None:
        problems.append("client_id is not a registered app (invalid_client_id)")
    redirect_uri = query.get("redirect_uri", "")
    if not redirect_uri:
        problems.append("redirect_uri is missing")
    elif client is not None and client[1] and redirect_uri not in client[1]:
        problems.append("redirect_uri is not one of the app's Redirect URLs (bad_redirect_uri)")
    for name in ("state", "nonce"):
        if not query.get(name):
            problems.append(f"{name} is missing")
    return problems


def keys(fake: FakeSlack, request: web.Request) -> web.StreamResponse:
    failure = fake._outage_answer(request)
    if failure is not None:
        return fake._record("openid.connect.keys", {}, failure[0], status=failure[1])
    with fake._lock:
        body = fake.oidc.jwks()
    return fake._record("openid.connect.keys", {}, web.json_response(body))


Method = Callable[["FakeSlack", dict[str, Any]], dict[str, Any]]


def method(name: str, authorization: str) -> Method | None:
    """The Web API method ``name`` when it is Sign in with Slack's (its own credentials, not the
    bot token: they come in ``authorization``), else None."""
    if name == "openid.connect.token":
        return lambda fake, params: token(fake, params, authorization)
    if name == "openid.connect.userInfo":
        return lambda fake, params: user_info(fake, params, authorization)
    return None


def token(fake: FakeSlack, params: dict[str, Any], authorization: str) -> dict[str, Any]:
    """openid.connect.token: a code for an access token and an ID token (lock held)."""
    oidc = fake.oidc
    client_id, client_secret = _credentials(params, authorization)
    if not client_id:
        fake._violation("openid.connect.token without client_id (form field or HTTP Basic)")
        return {"ok": False, "error": "invalid_client_id"}
    if client_id not in oidc.clients:
        return {"ok": False, "error": "invalid_client_id"}
    if not hmac.compare_digest(oidc.clients[client_id][0].encode(), client_secret.encode()):
        return {"ok": False, "error": "bad_client_secret"}
    if params.get("grant_type") not in (None, "", "authorization_code"):
        return {"ok": False, "error": "invalid_grant_type"}
    code = str(params.get("code") or "")
    if not code:
        fake._violation("openid.connect.token without a code")
    grant = oidc.grants.get(code)
    if grant is None or grant.client_id != client_id:
        return {"ok": False, "error": "invalid_code"}
    if grant.used:  # a code used twice: what it gave is revoked too (RFC 6749, 4.1.2)
        for access in grant.access_tokens:
            oidc.access.pop(access, None)
        return {"ok": False, "error": "invalid_code"}
    grant.used = True
    if params.get("redirect_uri") != grant.redirect_uri:
        fake._violation("openid.connect.token: redirect_uri is not the one given to authorize")
        return {"ok": False, "error": "bad_redirect_uri"}
    access = f"xoxp-{secrets.randbelow(10**12)}-{secrets.token_hex(16)}"
    oidc.access[access] = grant.person
    grant.access_tokens.append(access)
    id_token = oidc.id_token(fake.url, client_id, grant)
    oidc.secrets += [access, id_token]
    return {"ok": True, "access_token": access, "token_type": "Bearer", "id_token": id_token}


def user_info(fake: FakeSlack, params: dict[str, Any], authorization: str) -> dict[str, Any]:
    """openid.connect.userInfo: who the access token belongs to (lock held)."""
    scheme, _, value = authorization.partition(" ")
    given = value.strip() if scheme.lower() == "bearer" else str(params.get("token") or "")
    person = fake.oidc.access.get(given)
    if person is None:
        fake._violation("openid.connect.userInfo without an access token Sign in gave")
        return {"ok": False, "error": "invalid_auth"}
    given_name, _, family_name = person.name.partition(" ")
    return {
        "ok": True,
        "sub": person.user,
        USER_CLAIM: person.user,
        TEAM_CLAIM: person.team,
        "email": person.email,
        "email_verified": True,
        "date_email_verified": int(time.time()) - 86400,
        "name": person.name,
        "picture": "https://secure.gravatar.com/avatar/fake.png",
        "given_name": given_name,
        "family_name": family_name,
        "locale": "en-US",
        TEAM_NAME_CLAIM: "Fake",
        TEAM_DOMAIN_CLAIM: "fake",
    }


def _credentials(params: Mapping[str, Any], authorization: str) -> tuple[str, str]:
    """The client id and secret: HTTP Basic when sent (client_secret_basic), else the form
    fields (client_secret_post), as Slack's token endpoint takes either."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            pair = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            return "", ""
        client_id, _, client_secret = pair.partition(":")
        return client_id, client_secret
    return str(params.get("client_id") or ""), str(params.get("client_secret") or "")
