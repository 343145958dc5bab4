"""Ten thousand command strings through the parser and the /monitor handler: no unhandled
exception, and every reply a message Slack accepts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.access import Access
from app.db import Database
from app.engine.runs import RunService
from app.reports.gather import Reports
from app.slack.cards import Cards
from app.slack.desk import Asker, Desk
from app.slack.outbox import Outgoing
from handlers import replies
from tests.fakeslack.validate import message_problems
from tests.handlers.conftest import CATALOG

WORDS = [
    "run",
    "status",
    "list",
    "cancel",
    "retry",
    "customers",
    "schedules",
    "help",
    "report",
    "2026-11",
    "2026-13",
    "2099-01",
    "1999-12",
    "RUN",
    "arbel",
    "arbel-dr",
    "aryanoble",
    "locked",
    "vault",
    "arbl",
    "rds",
    "budget",
    "backup",
    "alarms",
    "http",
    "rds,budget",
    "--window",
    "--window=12h",
    "—window",
    "12h",
    "30m",
    "7d",
    "0m",
    "99999d",
    "#1",
    "1",
    "#",
    "-1",
    "2",
    "9007199254740993",
    "<!channel>",
    "<!here>",
    "&amp;",
    "&lt;",
    "<@U123|bob>",
    "<#C123|ops>",
    "`",
    "*",
    "_",
    "~",
    "\u200b",
    "🔴",
    "x" * 70,
    "\n",
    "\t",
    "²",
    "③",
    "١٢",
    "１",
    "1000000000d",
    "--window=1000000000d",
    "\u202e",
    "\x00",
    "vaul",
    "aryanobl",
]
texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=8).map(" ".join),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
)
askers = st.sampled_from(
    [
        Asker("U0ALICE", "C0OPS", None, None),
        Asker("U0MALLORY", "C0OPS", None, None),
        Asker("U0CAROL", "C0SHARED", None, None),
        Asker("U0ADMIN", None, None, None),
    ]
)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.Runner, Desk]]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "hub.db"
    with asyncio.Runner() as runner:
        db = Database(f"sqlite+aiosqlite:///{path}")
        runner.run(db.upgrade())
        runs = RunService(db)
        cards = Cards(runs, Outgoing(db), CATALOG)
        yield runner, Desk(runs, Access(db), cards, CATALOG, reports=Reports(db, CATALOG))
        runner.run(db.close())


@settings(
    max_examples=10_000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(text=texts, asker=askers)
def test_it_answers_any_command_text_with_a_valid_short_message(
    desk: tuple[asyncio.Runner, Desk], text: str, asker: Asker
) -> None:
    runner, front = desk
    reply = runner.run(replies.answer(front, asker, text, "https://hub.example"))
    assert message_problems(reply) == [], (text, reply)
    assert reply["response_type"] == "ephemeral"
    assert "Something went wrong" not in reply["text"], text


HIDDEN = ("aryanoble", "arbel", "arbel production", "arbel dr", "locked", "vault")
"""What an outsider (no grant anywhere) must never read unless they typed it."""


@settings(
    max_examples=1_000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(text=texts)
def test_an_outsider_learns_no_customer_and_starts_nothing_whatever_they_type(
    desk: tuple[asyncio.Runner, Desk], text: str
) -> None:
    runner, front = desk
    before = [r.id for r in runner.run(front.runs.recent(limit=1))]
    reply = runner.run(replies.answer(front, Asker("U0MALLORY", "C0OPS"), text, None))
    said = reply["text"].lower()
    typed = text.lower()
    assert [name for name in HIDDEN if name in said and name not in typed] == [], (text, reply)
    assert [r.id for r in runner.run(front.runs.recent(limit=1))] == before
