"""Who signed in, kept in an encrypted cookie: no session table, nothing to share between replicas.

Two cookies, both Fernet tokens (AES and an HMAC) under keys derived from the Slack app's client
secret (HKDF-SHA256, one key per cookie), so every replica reads what any other wrote and a
restart signs nobody out; rotating the secret signs everyone out.

- ``mhub_session`` (Path ``/``, 8 hours): the person, :class:`SignedIn`.
- ``mhub_signin`` (Path ``/auth/``, 10 minutes): a sign-in under way, :class:`Pending`: the
  ``state`` and ``nonce`` sent to Slack and the page to return to.

Fernet's own timestamp gives the expiry, checked against the injected clock. A cookie that is
missing, forged, tampered with, expired or malformed reads as None, never as an error.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SESSION_INFO = b"mhub web session"
PENDING_INFO = b"mhub web sign-in"
PENDING_MAX_AGE_S = 10 * 60
"""How long a person has to get through Slack's sign-in page."""
PENDING_FIELDS = ("state", "nonce", "next")
NAME_LIMIT = 200
"""A name is shown in the page header; anything longer is cut, to keep the cookie small."""


@dataclass(frozen=True)
class SignedIn:
    user: str
    """Slack user id, e.g. ``U012AB3CD``."""
    team: str
    """Slack team id."""
    name: str
    """The person's name, shown in the page header."""


@dataclass(frozen=True)
class Pending:
    """A sign-in under way: what the callback must find again."""

    state: str
    nonce: str
    next: str
    """The local path to return to once signed in."""


class Sessions:
    COOKIE = "mhub_session"
    PENDING_COOKIE = "mhub_signin"
    PENDING_PATH = "/auth/"

    def __init__(
        self,
        secret: str,
        *,
        secure: bool,
        max_age_s: int = 8 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = Fernet(_key(secret, SESSION_INFO))
        self._pending = Fernet(_key(secret, PENDING_INFO))
        self.secure = secure
        self.max_age_s = max_age_s
        self._clock = clock

    # -- the session ----------------------------------------------------------------------

    def read(self, request: web.BaseRequest) -> SignedIn | None:
        """The person signed in, or None (no cookie, forged, tampered, expired, malformed)."""
        data = self._open(self._session, request.cookies.get(self.COOKIE), self.max_age_s)
        found = _strings(data, "user", "team", "name")
        return SignedIn(*found) if found is not None else None

    def start(self, response: web.StreamResponse, who: SignedIn) -> None:
        value = {"user": who.user, "team": who.team, "name": who.name[:NAME_LIMIT]}
        self._set(response, self.COOKIE, self._seal(self._session, value), "/", self.max_age_s)

    def end(self, response: web.StreamResponse) -> None:
        self._unset(response, self.COOKIE, "/")

    # -- a sign-in under way --------------------------------------------------------------

    def pending(self, request: web.BaseRequest) -> Pending | None:
        """The sign-in under way in this browser, or None (none, expired, tampered…)."""
        cookie = request.cookies.get(self.PENDING_COOKIE)
        found = _strings(self._open(self._pending, cookie, PENDING_MAX_AGE_S), *PENDING_FIELDS)
        return Pending(*found) if found is not None else None

    def start_pending(self, response: web.StreamResponse, pending: Pending) -> None:
        value = {key: getattr(pending, key) for key in PENDING_FIELDS}
        sealed = self._seal(self._pending, value)
        self._set(response, self.PENDING_COOKIE, sealed, self.PENDING_PATH, PENDING_MAX_AGE_S)

    def end_pending(self, response: web.StreamResponse) -> None:
        self._unset(response, self.PENDING_COOKIE, self.PENDING_PATH)

    # -- cookies --------------------------------------------------------------------------

    def _seal(self, fernet: Fernet, value: dict[str, str]) -> str:
        data = json.dumps(value, separators=(",", ":")).encode()
        # Without base64's "=" padding: a cookie value with "=" would be sent quoted.
        return fernet.encrypt_at_time(data, int(self._clock())).decode("ascii").rstrip("=")

    def _open(self, fernet: Fernet, cookie: str | None, ttl_s: int) -> dict[str, Any]:
        if not cookie:
            return {}
        try:
            token = cookie.encode() + b"=" * (-len(cookie) % 4)
            data = fernet.decrypt_at_time(token, ttl_s, int(self._clock()))
            value = json.loads(data)
        except (InvalidToken, ValueError, TypeError):
            return {}
        return value if isinstance(value, dict) else {}

    def _set(
        self, response: web.StreamResponse, name: str, value: str, path: str, max_age_s: int
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age_s,
            path=path,
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )

    def _unset(self, response: web.StreamResponse, name: str, path: str) -> None:
        response.del_cookie(name, path=path, secure=self.secure, httponly=True, samesite="Lax")


def _key(secret: str, info: bytes) -> bytes:
    """A Fernet key for one cookie, derived from the client secret."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def _strings(data: dict[str, Any], *keys: str) -> tuple[str, ...] | None:
    """The values of ``keys`` in order, when every one is a non-empty string."""
    values = tuple(data.get(key) for key in keys)
    if all(isinstance(v, str) and v for v in values):
        return cast(tuple[str, ...], values)
    return None
