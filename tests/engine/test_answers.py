"""Answers to findings kept by the real executor, on each database, with time frozen: a snooze
ends by itself and comes back marked, a snoozed warn that turns crit comes back at once, an
answer clears when its finding resolves, mute rules (YAML and made) match by glob and expire,
and bad answers change nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.config import Account, Customer, Suppression
from app.db import Database
from app.engine import findings
from app.engine.answers import (
    AnswerError,
    Answers,
    Line,
    Rule,
    parse_for,
    parse_until,
    settle,
    standing,
    yaml_rules,
)
from app.models import Run, RunEvent
from checks.base import Severity
from tests.engine.support import KIND
from tests.engine.test_findings import Estate, kept, sweep

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def made(db: Database, rules: list[Rule] | None = None) -> tuple[Answers, Clock]:
    """The answers service with the customer's YAML ``rules`` and a clock the test moves."""
    clock = Clock()
    return Answers(db, lambda _: rules or [], clock), clock


async def state(answers: Answers, resource: str) -> tuple[str, str | None]:
    rules = await answers.rules("engine")
    found = (await kept(answers.db))[resource]
    now_is = standing(found, rules, answers.clock())
    return now_is.state, now_is.back


async def test_a_snooze_ends_by_itself_and_comes_back_marked(db: Database) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.WARN)]
    await sweep(db, estate)
    answers, clock = made(db)
    found = (await kept(db))["db-1"]
    given = await answers.snooze(
        "engine", [found.id], "U0BOB", "resize Wednesday", NOW + timedelta(hours=24), {}
    )
    assert [f.fingerprint for f in given.changed] == [found.fingerprint]
    assert await state(answers, "db-1") == ("snoozed", None)
    clock.now = NOW + timedelta(hours=23, minutes=59)
    assert await state(answers, "db-1") == ("snoozed", None)
    clock.now = NOW + timedelta(hours=24)
    assert await state(answers, "db-1") == ("open", "snooze ended")


async def test_a_snoozed_warn_that_turns_crit_comes_back_at_once(db: Database) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.WARN)]
    await sweep(db, estate)
    answers, _ = made(db)
    found = (await kept(db))["db-1"]
    await answers.snooze("engine", [found.id], "U0BOB", "known", None, {})
    estate.lines["quick"] = [("db-1", Severity.WARN)]
    await sweep(db, estate)
    assert await state(answers, "db-1") == ("snoozed", None), "still a warn: still snoozed"
    estate.lines["quick"] = [("db-1", Severity.CRIT)]
    await sweep(db, estate)
    assert await state(answers, "db-1") == ("open", "got worse")


async def test_answers_clear_when_the_finding_resolves(db: Database) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.WARN), ("db-2", Severity.CRIT)]
    await sweep(db, estate)
    answers, _ = made(db)
    rows = await kept(db)
    await answers.acknowledge("engine", [rows["db-1"].id], "U0ALICE", {})
    await answers.snooze("engine", [rows["db-2"].id], "U0BOB", "until it resolves", None, {})
    assert await state(answers, "db-1") == ("acknowledged", None)
    estate.lines["quick"] = []
    await sweep(db, estate)
    rows = await kept(db)
    for name in ("db-1", "db-2"):
        assert rows[name].status == "resolved"
        assert rows[name].ack_by is None and rows[name].snooze_by is None
    estate.lines["quick"] = [("db-1", Severity.WARN), ("db-2", Severity.CRIT)]
    await sweep(db, estate)
    assert await state(answers, "db-1") == ("open", None), "back again: answered by nobody"
    assert await state(answers, "db-2") == ("open", None)


async def test_a_second_answer_of_the_same_kind_is_told_who_answered_first(db: Database) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.WARN)]
    await sweep(db, estate)
    answers, _ = made(db)
    found = (await kept(db))["db-1"]
    first = await answers.acknowledge("engine", [found.id], "U0ALICE", {})
    second = await answers.acknowledge("engine", [found.id], "U0BOB", {})
    assert len(first.changed) == 1 and second.changed == []
    [(row, now_is)] = second.first
    assert now_is.ack_by == "U0ALICE" and row.fingerprint == found.fingerprint
    async with db.read() as session:
        events = (
            (await session.execute(select(RunEvent).where(RunEvent.type == "answer")))
            .scalars()
            .all()
        )
    assert [(e.actor, e.data["changed"]) for e in events] == [("U0ALICE", 1), ("U0BOB", 0)]


async def test_mute_rules_match_by_glob_expire_and_yaml_ones_cannot_be_unmuted(
    db: Database,
) -> None:
    estate = Estate()
    estate.lines["quick"] = [("scratch-1", Severity.WARN), ("prod-1", Severity.CRIT)]
    await sweep(db, estate)
    customer = Customer(
        id="engine",
        name="Engine",
        timezone="Asia/Jakarta",
        accounts=(
            Account(id="quick", name="Q", account_id="123456789012", regions=("eu-west-1",)),
        ),
        suppress=(
            Suppression(
                check=KIND,
                resource="scratch-*",
                reason="runs hot by design",
                until=date(2026, 12, 3),
            ),
        ),
    )
    [rule] = yaml_rules(customer)
    assert rule.until == datetime(2026, 12, 3, 17, 0, tzinfo=UTC), "the end of that day in WIB"
    answers, clock = made(db, [rule])
    assert await state(answers, "scratch-1") == ("muted", None)
    assert await state(answers, "prod-1") == ("open", None)
    with pytest.raises(AnswerError, match="in the customer's YAML"):
        await answers.unmute("engine", rule.key, "U0ALICE", {})
    clock.now = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
    assert await state(answers, "scratch-1") == ("open", None), "the rule expired"
    made_rule = await answers.mute(
        "engine", check=KIND, account="quick", region=None, resource="prod-*",
        reason="migrating", owner=None, until=None, by="U0ALICE", audit={},
    )  # fmt: skip
    assert await state(answers, "prod-1") == ("muted", None)
    await answers.unmute("engine", made_rule.key, "U0BOB", {})
    assert await state(answers, "prod-1") == ("open", None)
    with pytest.raises(AnswerError, match="already unmuted by U0BOB"):
        await answers.unmute("engine", made_rule.key, "U0ALICE", {})


async def test_bad_answers_change_nothing(db: Database) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.WARN)]
    await sweep(db, estate)
    answers, _ = made(db)
    found = (await kept(db))["db-1"]
    for reason, until, words in [
        ("", None, "Give a reason"),
        ("x" * 501, None, "keep it to 500"),
        ("ok", NOW - timedelta(minutes=1), "has passed"),
        ("ok", NOW + timedelta(days=366), "more than a year"),
    ]:
        with pytest.raises(AnswerError, match=words):
            await answers.snooze("engine", [found.id], "U0BOB", reason, until, {})
    with pytest.raises(AnswerError, match="no mute rule"):
        await answers.unmute("engine", "12345", "U0BOB", {})
    other = await answers.acknowledge("another-customer", [found.id], "U0BOB", {})
    assert other.changed == [] and other.first == []
    assert (await kept(db))["db-1"].snooze_by is None
    assert (await kept(db))["db-1"].ack_by is None
    pairs = await findings.listing(db, "engine", [], NOW, state="open")
    assert [f.resource for f, _ in pairs] == ["db-1"]


def test_lengths_and_dates_are_read_strictly() -> None:
    assert parse_for("90m") == timedelta(minutes=90)
    assert parse_for("2w") == timedelta(days=14)
    for bad, words in [
        ("0m", "out of range"),
        ("99999d", "out of range"),
        ("soon", "not a length"),
    ]:
        with pytest.raises(AnswerError, match=words):
            parse_for(bad)
    jakarta = Customer(
        id="x", name="X", timezone="Asia/Jakarta",
        accounts=(Account(id="a", name="A", account_id="123456789012", regions=("eu-west-1",)),),
    ).tz  # fmt: skip
    assert parse_until("2026-12-07 09:00", jakarta, NOW) == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert parse_until("2026-12-07", jakarta, NOW) == datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    for bad, words in [("2026-12-01", "has passed"), ("next tuesday", "not a date")]:
        with pytest.raises(AnswerError, match=words):
            parse_until(bad, jakarta, NOW)


def test_a_result_whose_problems_are_all_quiet_settles_ok() -> None:
    snoozed = standing(_Row(snooze_by="U0BOB", snooze_until=None, snooze_severity="crit"), [], NOW)
    assert snoozed.state == "snoozed"
    quiet = Line("a", "crit", snoozed)
    loud = Line("b", "warn", None)
    assert settle("crit", [quiet]) == "ok"
    assert settle("crit", [quiet, loud]) == "warn"
    assert settle("error", [quiet]) == "error", "a check that could not look stays an error"


class _Row:
    """A finding row for :func:`standing` (pure)."""

    def __init__(self, **answers: Any) -> None:
        self.fingerprint, self.account, self.region, self.check = "f", "a", "r", KIND
        self.resource, self.severity, self.status = "db", "crit", "open"
        self.ack_by = self.ack_at = self.snooze_at = self.snooze_reason = None
        self.snooze_by = self.snooze_until = self.snooze_severity = None
        for key, value in answers.items():
            setattr(self, key, value)


async def test_a_run_whose_only_problems_are_quiet_finishes_ok(db: Database) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.CRIT), ("db-2", Severity.WARN)]
    first = await sweep(db, estate)
    answers, _ = made(db)
    rows = await kept(db)
    await answers.snooze("engine", [rows["db-1"].id], "U0BOB", "known", None, {})
    second = await sweep(db, estate)
    await answers.mute(
        "engine", check=KIND, account=None, region=None, resource="db-2",
        reason="meant to", owner=None, until=None, by="U0BOB", audit={},
    )  # fmt: skip
    third = await sweep(db, estate)
    async with db.read() as session:
        outcomes = dict((await session.execute(select(Run.id, Run.outcome))).all())
    assert outcomes[first] == "crit"
    assert outcomes[second] == "warn", "the snoozed crit no longer counts; the warn does"
    assert outcomes[third] == "ok", "every problem is snoozed or muted"
