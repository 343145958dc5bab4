"""API tokens: made on the command line, shown once, kept as a digest, checked on each request.

A secret is ``mhub_`` and 32 random bytes (``secrets.token_urlsafe(32)``, 256 bits). Only its
SHA-256 is stored, and a request's token is found by that digest: nobody who reads the database
(or a backup of it) can use a token. The hash is unsalted and fast on purpose — see
:attr:`app.models.ApiToken.digest`.

A token sees only its customers; its scope says whether it may also start, cancel and retry
their runs (``run``) or only read (``read``). It works until it expires or is revoked; a
revoked token keeps its row and its name, which audit rows name (``token:<name>``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from app.config import clip
from app.db import Database
from app.errors import UsageError
from app.models import ApiToken

PREFIX = "mhub_"
"""Every secret starts with it: secret scanners and people can tell what they found."""
SCOPES = ("read", "run")
"""``read``: runs, findings and reports of its customers; ``run``: also start, cancel and retry
their runs."""
DEFAULT_EXPIRES = "90d"
MAX_EXPIRES = timedelta(days=730)
LAST_USED_EVERY = timedelta(minutes=1)
"""``last_used_at`` is written at most this often: not a write on every request."""
MAX_SECRET = 200
"""Longer is not one of ours; refused before hashing."""
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}", re.ASCII)
_LENGTH = re.compile(r"^\s*(\d{1,7})\s*(m|h|d|w)\s*$", re.ASCII)
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}


@dataclass(frozen=True)
class ApiTokenView:
    """A token as the CLI lists it and identity uses it: everything but the digest."""

    id: int
    name: str
    customers: tuple[str, ...]
    scope: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_by: str

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def as_json(self) -> dict[str, object]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "name": self.name,
            "customers": list(self.customers),
            "scope": self.scope,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "expires_at": iso(self.expires_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
        }


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_name(text: str) -> str:
    """A token's name: 1 to 64 of a-z, 0-9, ``-``, ``_`` and ``.``."""
    name = text.strip()
    if not _NAME.fullmatch(name):
        raise UsageError(
            f'"{clip(text)}" is not a token name: use 1 to 64 lowercase letters, digits, '
            "-, _ and ., such as ci-nightly."
        )
    return name


def parse_expires(text: str) -> timedelta | None:
    """``--expires``: ``90d``, ``12h``, ``2w`` (1 minute to 730 days), or ``never`` (None)."""
    if text.strip().lower() == "never":
        return None
    match = _LENGTH.match(text.lower())
    if not match:
        raise UsageError(
            f'"{clip(text)}" is not a length. Use a number and a unit, such as 90d, 12h or 2w, '
            "or never."
        )
    length = timedelta(minutes=int(match.group(1)) * _MINUTES[match.group(2)])
    if not timedelta(minutes=1) <= length <= MAX_EXPIRES:
        raise UsageError(f'"{clip(text)}" is out of range. Use a length from 1m to 730d, or never.')
    return length


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Tokens:
    """The token store."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = _utcnow) -> None:
        self.db = db
        self.clock = clock

    async def create(
        self,
        name: str,
        customers: Iterable[str],
        scope: str,
        expires: timedelta | None,
        created_by: str,
    ) -> tuple[ApiTokenView, str]:
        """A new token and its secret — the only time the secret exists outside the caller.
        Whether the customers are configured is the caller's question (it has the catalog)."""
        name = token_name(name)
        chosen = tuple(dict.fromkeys(c.strip().lower() for c in customers if c.strip()))
        if not chosen:
            raise UsageError("Name at least one customer the token may see: --customer ID.")
        if scope not in SCOPES:
            raise UsageError(f'"{clip(scope)}" is not a scope. Use read or run.')
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        row = ApiToken(
            name=name,
            customers=list(chosen),
            scope=scope,
            digest=digest(secret),
            created_at=now,
            expires_at=now + expires if expires is not None else None,
            created_by=created_by,
        )
        try:
            async with self.db.write() as session:
                if await session.scalar(select(ApiToken.id).where(ApiToken.name == name)):
                    raise _taken(name)
                session.add(row)
        except IntegrityError:  # another `mhub token create` took the name meanwhile
            raise _taken(name) from None
        return _view(row), secret

    async def list(self) -> list[ApiTokenView]:
        """Every token, revoked and expired ones too, oldest first."""
        async with self.db.read() as session:
            rows = (await session.execute(select(ApiToken).order_by(ApiToken.id))).scalars()
            return [_view(row) for row in rows]

    async def get(self, name: str) -> ApiTokenView | None:
        async with self.db.read() as session:
            row = await session.scalar(select(ApiToken).where(ApiToken.name == name.strip()))
            return _view(row) if row is not None else None

    async def revoke(self, name: str) -> bool:
        """Revoke ``name`` now; False when there is no such token or it was revoked already."""
        async with self.db.write() as session:
            done = await session.execute(
                update(ApiToken)
                .where(ApiToken.name == name.strip(), ApiToken.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
        return getattr(done, "rowcount", 0) == 1

    async def check(self, secret: str) -> ApiTokenView | None:
        """The token whose secret this is, if it is active (not revoked, not expired); None
        otherwise. The lookup is by digest, so no comparison of secrets happens here to time."""
        if not secret.startswith(PREFIX) or len(secret) > MAX_SECRET:
            return None
        now = self.clock()
        async with self.db.read() as session:
            row = await session.scalar(select(ApiToken).where(ApiToken.digest == digest(secret)))
        if row is None:
            return None
        token = _view(row)
        if token.state(now) != "active":
            return None
        if token.last_used_at is None or token.last_used_at <= now - LAST_USED_EVERY:
            await self._used(token.id, now)
            token = replace(token, last_used_at=now)
        return token

    async def _used(self, token_id: int, now: datetime) -> None:
        """Stamp ``last_used_at``; of several replicas stamping at once, one writes."""
        async with self.db.write() as session:
            await session.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == token_id,
                    or_(
                        ApiToken.last_used_at.is_(None),
                        ApiToken.last_used_at <= now - LAST_USED_EVERY,
                    ),
                )
                .values(last_used_at=now)
            )


def _taken(name: str) -> UsageError:
    return UsageError(
        f'There is already a token named "{name}" (names are not reused, even once revoked, '
        "because audit rows name them). Choose another name; `mhub token list` lists them."
    )


def _view(row: ApiToken) -> ApiTokenView:
    return ApiTokenView(
        id=row.id,
        name=row.name,
        customers=tuple(row.customers),
        scope=row.scope,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        created_by=row.created_by,
    )
