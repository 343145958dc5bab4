"""The API token store on each database: a token is shown once, kept as a digest, found by its
secret while it is active, and refused once it expires or is revoked."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text

from app.db import Database
from app.engine.tokens import ApiTokenView, Tokens, parse_expires, token_name
from app.errors import UsageError
from app.models import ApiToken

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def tokens(db: Database, clock: Clock) -> AsyncIterator[Tokens]:
    async with db.write() as session:
        await session.execute(delete(ApiToken))
    yield Tokens(db, clock)


async def test_it_creates_a_token_and_finds_it_by_its_secret(tokens: Tokens) -> None:
    made, secret = await tokens.create(
        "ci", ["demo", "billing"], "run", timedelta(days=90), "cli:a"
    )
    assert secret.startswith("mhub_") and len(secret) >= 5 + 43
    assert (made.name, made.customers, made.scope) == ("ci", ("demo", "billing"), "run")
    assert made.expires_at == START + timedelta(days=90) and made.created_by == "cli:a"
    found = await tokens.check(secret)
    assert found is not None and (found.id, found.name, found.customers) == (
        made.id,
        "ci",
        ("demo", "billing"),
    )


async def test_it_keeps_only_the_digest_of_the_secret(db: Database, tokens: Tokens) -> None:
    _, secret = await tokens.create("ci", ["demo"], "read", None, "cli:a")
    async with db.read() as session:
        rows = (await session.execute(text("SELECT * FROM api_tokens"))).mappings().all()
    [row] = rows
    stored = " ".join(str(value) for value in row.values())
    assert secret not in stored and secret.removeprefix("mhub_") not in stored
    assert row["digest"] == hashlib.sha256(secret.encode()).hexdigest()


async def test_it_never_hands_out_the_digest(tokens: Tokens) -> None:
    await tokens.create("ci", ["demo"], "read", None, "cli:a")
    assert "digest" not in {f.name for f in fields(ApiTokenView)}
    [listed] = await tokens.list()
    assert "digest" not in listed.as_json() and listed.name == "ci"


async def test_it_refuses_secrets_it_does_not_know(tokens: Tokens) -> None:
    _, secret = await tokens.create("ci", ["demo"], "read", None, "cli:a")
    assert await tokens.check(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert await tokens.check(secret.removeprefix("mhub_")) is None
    assert await tokens.check("") is None
    assert await tokens.check("mhub_" + "x" * 10_000) is None


async def test_it_refuses_a_token_once_it_expires(tokens: Tokens, clock: Clock) -> None:
    _, secret = await tokens.create("ci", ["demo"], "read", timedelta(hours=12), "cli:a")
    clock.now = START + timedelta(hours=12) - timedelta(seconds=1)
    assert await tokens.check(secret) is not None
    clock.now = START + timedelta(hours=12)
    assert await tokens.check(secret) is None
    [listed] = await tokens.list()
    assert listed.state(clock.now) == "expired"


async def test_a_token_without_expiry_keeps_working(tokens: Tokens, clock: Clock) -> None:
    made, secret = await tokens.create("ci", ["demo"], "read", None, "cli:a")
    assert made.expires_at is None
    clock.now = START + timedelta(days=3650)
    assert await tokens.check(secret) is not None


async def test_it_refuses_a_revoked_token_and_keeps_its_row(tokens: Tokens, clock: Clock) -> None:
    _, secret = await tokens.create("ci", ["demo"], "run", None, "cli:a")
    clock.now = START + timedelta(minutes=5)
    assert await tokens.revoke("ci") is True
    assert await tokens.check(secret) is None
    assert await tokens.revoke("ci") is False  # already revoked: nothing changed
    assert await tokens.revoke("nobody") is False
    [listed] = await tokens.list()
    assert listed.revoked_at == clock.now and listed.state(clock.now) == "revoked"


async def test_it_never_reuses_a_name_even_once_revoked(tokens: Tokens) -> None:
    await tokens.create("ci", ["demo"], "read", None, "cli:a")
    with pytest.raises(UsageError, match="already a token named"):
        await tokens.create("ci", ["demo"], "read", None, "cli:a")
    await tokens.revoke("ci")
    with pytest.raises(UsageError, match="names are not reused"):
        await tokens.create("ci", ["demo"], "read", None, "cli:a")
    assert [t.name for t in await tokens.list()] == ["ci"]


async def test_it_stamps_last_used_at_most_once_a_minute(
    db: Database, tokens: Tokens, clock: Clock
) -> None:
    made, secret = await tokens.create("ci", ["demo"], "read", None, "cli:a")
    assert made.last_used_at is None

    async def stamped() -> datetime | None:
        async with db.read() as session:
            return await session.scalar(select(ApiToken.last_used_at))

    clock.now = START + timedelta(seconds=10)
    found = await tokens.check(secret)
    assert found is not None and found.last_used_at == clock.now
    assert await stamped() == START + timedelta(seconds=10)
    clock.now = START + timedelta(seconds=50)
    await tokens.check(secret)
    assert await stamped() == START + timedelta(seconds=10)  # within the minute: no write
    clock.now = START + timedelta(seconds=70)
    await tokens.check(secret)
    assert await stamped() == START + timedelta(seconds=70)


@pytest.mark.parametrize(
    ("name", "scope", "customers", "says"),
    [
        ("CI Nightly", "read", ["demo"], "not a token name"),
        ("", "read", ["demo"], "not a token name"),
        ("x" * 65, "read", ["demo"], "not a token name"),
        ("ci", "admin", ["demo"], "not a scope"),
        ("ci", "read", [], "at least one customer"),
        ("ci", "read", ["  "], "at least one customer"),
    ],
)
async def test_it_refuses_bad_input_and_stores_nothing(
    tokens: Tokens, name: str, scope: str, customers: list[str], says: str
) -> None:
    with pytest.raises(UsageError, match=says):
        await tokens.create(name, customers, scope, None, "cli:a")
    assert await tokens.list() == []


def test_it_reads_expiry_lengths() -> None:
    assert parse_expires("90d") == timedelta(days=90)
    assert parse_expires("12h") == timedelta(hours=12)
    assert parse_expires("2w") == timedelta(weeks=2)
    assert parse_expires("never") is None and parse_expires("Never") is None
    for bad in ("90", "ninety days", "0d", "731d", "-1d", "9" * 20 + "d"):
        with pytest.raises(UsageError):
            parse_expires(bad)


def test_it_reads_token_names() -> None:
    assert token_name(" ci-nightly.v2 ") == "ci-nightly.v2"
    for bad in ("ci nightly", "-ci", "Ci", "ci/x"):
        with pytest.raises(UsageError, match="lowercase letters"):
            token_name(bad)
