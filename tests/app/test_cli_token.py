"""``mhub token create|list|revoke`` on each database: the secret is printed once and works,
the list never shows a secret or a digest, bad input exits 2 and stores nothing.

The commands run in-process (click's runner, in a thread with its own event loop) against the
same database the test reads.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from app.db import Database
from app.engine.tokens import Tokens
from app.models import ApiToken

ACME = """\
    id: acme
    name: Acme Corp
    accounts:
      - {id: acme-prod, name: Production, account_id: "000000000001", regions: [eu-west-1]}
"""
GLOBEX = """\
    id: globex
    name: Globex
    accounts:
      - {id: globex-prod, name: Production, account_id: "000000000002", regions: [eu-west-1]}
"""


@pytest.fixture
def env(tmp_path: Path, db: Database) -> dict[str, str]:
    customers = tmp_path / "config" / "customers"
    customers.mkdir(parents=True)
    (customers / "acme.yaml").write_text(textwrap.dedent(ACME))
    (customers / "globex.yaml").write_text(textwrap.dedent(GLOBEX))
    return {"HUB_CONFIG_DIR": str(customers.parent), "DATABASE_URL": db.url}


async def mhub(env: dict[str, str], *args: str) -> Result:
    """``mhub token ARGS``, in-process; its own event loop runs in a thread."""
    from app.cli import token_group

    return await asyncio.to_thread(CliRunner().invoke, token_group, list(args), env=env)


async def count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(ApiToken)) or 0)


async def test_it_prints_the_secret_once_and_the_secret_works(
    env: dict[str, str], db: Database
) -> None:
    made = await mhub(
        env,
        "create",
        "--name",
        "ci",
        "--customer",
        "acme",
        "--customer",
        "Globex",
        "--scope",
        "run",
    )
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("mhub_") and "\n" not in secret
    assert "will not be shown again" in made.stderr and secret not in made.stderr
    assert "scope run, customers acme, globex, expires " in made.stderr
    token = await Tokens(db).check(secret)
    assert token is not None and token.customers == ("acme", "globex") and token.scope == "run"
    assert token.created_by.startswith("cli:")


async def test_it_lists_tokens_without_secrets_or_digests(
    env: dict[str, str], db: Database
) -> None:
    made = await mhub(env, "create", "--name", "ci", "--customer", "acme", "--expires", "never")
    secret = made.stdout.strip()
    await mhub(env, "create", "--name", "nightly", "--customer", "globex", "--expires", "12h")
    await mhub(env, "revoke", "nightly")
    listed = await mhub(env, "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("NAME") and lines[0].endswith("LAST USED  STATE")
    assert lines[1].startswith("ci ") and "never" in lines[1] and lines[1].endswith("active")
    assert lines[2].startswith("nightly ") and "revoked 20" in lines[2]
    async with db.read() as session:
        digests = list((await session.execute(select(ApiToken.digest))).scalars())
    as_json = await mhub(env, "list", "--json")
    for shown in (listed.stdout, as_json.stdout):
        assert secret not in shown and "mhub_" not in shown
        assert not any(d in shown for d in digests)
    tokens = json.loads(as_json.stdout)["tokens"]
    assert [(t["name"], t["scope"], t["customers"], t["state"]) for t in tokens] == [
        ("ci", "read", ["acme"], "active"),
        ("nightly", "read", ["globex"], "revoked"),
    ]
    assert tokens[0]["expires_at"] is None and tokens[0]["last_used_at"] is None
    assert set(tokens[0]) == {
        "name",
        "customers",
        "scope",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "state",
    }


async def test_it_says_when_there_are_no_tokens(env: dict[str, str]) -> None:
    listed = await mhub(env, "list")
    assert listed.exit_code == 0 and "No tokens yet" in listed.stdout


async def test_it_revokes_a_token_and_says_so_again_without_failing(
    env: dict[str, str], db: Database
) -> None:
    secret = (await mhub(env, "create", "--name", "ci", "--customer", "acme")).stdout.strip()
    revoked = await mhub(env, "revoke", "ci")
    assert revoked.exit_code == 0 and "Revoked token ci" in revoked.stdout
    assert await Tokens(db).check(secret) is None
    again = await mhub(env, "revoke", "ci")
    assert again.exit_code == 0 and "revoked already" in again.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["create", "--name", "ci", "--customer", "acme-corp"], 'I don\'t know "acme-corp"'),
        (["create", "--name", "ci", "--customer", "acme", "--expires", "90"], "90d, 12h or 2w"),
        (["create", "--name", "ci", "--customer", "acme", "--expires", "5y"], "not a length"),
        (["create", "--name", "ci", "--customer", "acme", "--expires", "999d"], "at most|730d"),
        (["create", "--name", "CI token", "--customer", "acme"], "not a token name"),
        (["create", "--name", "ci", "--customer", "acme", "--scope", "admin"], "'admin' is not"),
        (["create", "--customer", "acme"], "Missing option '--name'"),
        (["create", "--name", "ci"], "Missing option '--customer'"),
        (["revoke", "nobody"], 'There is no token "nobody"'),
    ],
)
async def test_it_refuses_bad_input_with_exit_2_and_stores_nothing(
    env: dict[str, str], db: Database, args: list[str], says: str
) -> None:
    done = await mhub(env, *args)
    assert done.exit_code == 2, done.output
    assert any(part in done.stderr for part in says.split("|")), done.stderr
    assert await count(db) == 0


async def test_it_refuses_a_name_in_use(env: dict[str, str], db: Database) -> None:
    await mhub(env, "create", "--name", "ci", "--customer", "acme")
    await mhub(env, "revoke", "ci")
    again = await mhub(env, "create", "--name", "ci", "--customer", "globex")
    assert again.exit_code == 2 and "Choose another name" in again.stderr
    assert again.stdout == "" and await count(db) == 1
