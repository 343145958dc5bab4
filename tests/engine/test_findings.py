"""Findings kept across runs: opened, kept open, resolved, back again, and flapping — by the real
executor on each database; a check that could not look changes nothing; the newest run's look
stands; and the migration's backfill from recorded results agrees with what the hub keeps."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, select

from app.db import Database
from app.engine import findings
from app.engine.results import ResultRow
from app.models import Finding, Result, Run
from checks.base import CheckContext, CheckResult, Severity, resource
from tests.engine.support import KIND, Scripted, all_done, queue, serving, wait_until


class Estate:
    """What the test check sees per account: resource lines, or None for "could not look"."""

    def __init__(self) -> None:
        self.lines: dict[str, list[tuple[str, Severity]] | None] = {}

    async def check(self, ctx: CheckContext) -> CheckResult:
        lines = self.lines.get(ctx.account.id, [])
        if lines is None:
            return CheckResult(Severity.ERROR, "AccessDenied: could not look")
        resources = [
            resource(
                KIND, ctx.account.account_id, "eu-west-1", rid, "health", level, f"{rid} {level}"
            )
            for rid, level in lines
        ]
        worst = max((level for _, level in lines), key=lambda s: s.rank, default=Severity.OK)
        return CheckResult(worst, f"{len(lines)} lines", {"resources": resources})


async def sweep(db: Database, estate: Estate, accounts: Sequence[str] = ("quick",)) -> int:
    """One run of the test check over ``accounts``, to the end; its id."""
    check = Scripted(estate.check)
    async with serving(db, check):
        [run_id] = await queue(db, accounts=accounts)
        await wait_until(lambda: all_done(db, [run_id]))
    return run_id


async def kept(db: Database) -> dict[str, Finding]:
    async with db.read() as session:
        rows = (await session.execute(select(Finding).order_by(Finding.id))).scalars().all()
    return {row.resource: row for row in rows}


async def test_a_problem_opens_stays_resolves_comes_back_and_flaps(db: Database) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.WARN), ("db-2", Severity.OK)]
    first = await sweep(db, estate)
    estate.lines["quick"] = [("db-1", Severity.CRIT), ("db-2", Severity.OK)]
    second = await sweep(db, estate)
    found = (await kept(db))["db-1"]
    assert (found.status, found.severity, found.history, found.returns) == ("open", "crit", "11", 0)
    assert (found.last_run_id, found.customer_id, found.account, found.check) == (
        second,
        "engine",
        "quick",
        KIND,
    )
    assert found.first_seen_at < found.last_seen_at
    assert "db-2" not in await kept(db)  # an OK line is no finding
    assert second > first

    estate.lines["quick"] = [("db-1", Severity.OK)]
    await sweep(db, estate)
    found = (await kept(db))["db-1"]
    assert (found.status, found.history, found.last_run_id) == ("resolved", "110", second)
    assert found.resolved_at is not None

    for level in (Severity.WARN, Severity.OK, Severity.WARN):
        estate.lines["quick"] = [("db-1", level)]
        await sweep(db, estate)
    found = (await kept(db))["db-1"]
    assert (found.status, found.history, found.returns) == ("open", "110101", 2)
    assert found.resolved_at is None
    assert findings.flips(found.history) == 4  # flapping: 3 or more in the last 10 looks


async def test_a_check_that_could_not_look_neither_opens_nor_resolves(db: Database) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.CRIT)]
    estate.lines["other"] = [("web-1", Severity.WARN), ("web-2", Severity.WARN)]
    await sweep(db, estate, ("quick", "other"))
    estate.lines["quick"] = None  # the role broke
    estate.lines["other"] = [("web-1", Severity.ERROR), ("web-2", Severity.OK)]  # one line blind
    await sweep(db, estate, ("quick", "other"))
    now = await kept(db)
    assert {name: (f.status, f.history) for name, f in now.items()} == {
        "db-1": ("open", "1"),
        "web-1": ("open", "1"),
        "web-2": ("resolved", "10"),
    }


async def test_a_run_only_decides_about_the_accounts_and_checks_it_looked_at(
    db: Database,
) -> None:
    estate = Estate()
    estate.lines["quick"] = [("db-1", Severity.WARN)]
    estate.lines["other"] = [("web-1", Severity.WARN)]
    await sweep(db, estate, ("quick", "other"))
    estate.lines["quick"] = []
    await sweep(db, estate, ("quick",))  # "other" was not looked at: its finding stays open
    assert {n: f.status for n, f in (await kept(db)).items()} == {
        "db-1": "resolved",
        "web-1": "open",
    }


def result(run_id: int, *lines: tuple[str, str]) -> ResultRow:
    resources = [
        resource(KIND, "000000000001", "eu-west-1", rid, "health", Severity(level), rid)
        for rid, level in lines
    ]
    worst = max((Severity(level) for _, level in lines), key=lambda s: s.rank, default=Severity.OK)
    at = datetime.now(UTC)
    return ResultRow(
        run_id, 1, "quick", KIND, worst.value, "x", {"resources": resources}, {}, at, at, "test"
    )


async def test_the_newest_runs_look_stands_and_a_look_recorded_twice_counts_once(
    db: Database,
) -> None:
    older, newer = await queue(db, count=2)
    async with db.write() as session:  # the newer run's results land first
        await findings.keep(session, db, [result(newer, ("db-1", "crit"))])
    async with db.write() as session:
        await findings.keep(session, db, [result(older, ("db-1", "warn"))])
    async with db.write() as session:  # a check finished again after a crash
        await findings.keep(session, db, [result(newer, ("db-1", "crit"))])
    now = await kept(db)
    assert (now["db-1"].severity, now["db-1"].history, now["db-1"].last_run_id) == (
        "crit",
        "1",
        newer,
    )


async def test_the_backfill_from_recorded_results_agrees_with_what_the_hub_kept(
    db: Database, tmp_path: Path
) -> None:
    estate = Estate()
    script: list[dict[str, Any]] = [
        {"quick": [("db-1", Severity.WARN)], "other": [("web-1", Severity.CRIT)]},
        {"quick": [("db-1", Severity.OK), ("db-2", Severity.WARN)], "other": None},
        {"quick": [("db-1", Severity.CRIT)], "other": [("web-1", Severity.OK)]},
        {"quick": [], "other": [("web-1", Severity.WARN), ("web-2", Severity.ERROR)]},
    ]
    for lines in script:
        estate.lines.update(lines)
        await sweep(db, estate, ("quick", "other"))
    live = {name: columns(f) for name, f in (await kept(db)).items()}
    assert len(live) == 3

    async with db.write() as session:
        await session.execute(delete(Finding))
    config = db.alembic_config()
    await asyncio.to_thread(command.downgrade, config, "0002")
    await db.upgrade()  # 0003 creates the table and backfills it from the results
    backfilled = {name: columns(f) for name, f in (await kept(db)).items()}
    assert {
        (name, key, value, live[name][key])
        for name, row in backfilled.items()
        for key, value in row.items()
        if value != live[name][key]
    } == set()
    async with db.read() as session:
        assert (await session.execute(select(Result.id))).first() is not None
        assert (await session.execute(select(Run.id))).first() is not None


def columns(found: Finding) -> dict[str, Any]:
    return {
        c: getattr(found, c)
        for c in (
            "customer_id", "fingerprint", "account", "region", "check", "resource", "severity",
            "summary", "status", "first_seen_at", "last_seen_at", "resolved_at", "last_run_id",
            "looked_run_id", "returns", "history",
        )
    }  # fmt: skip


@pytest.mark.parametrize(
    ("history", "flips"),
    [("", 0), ("1", 0), ("1111", 0), ("10", 1), ("1101", 2), ("1010101010", 9)],
)
def test_flips_count_the_changes_in_a_history(history: str, flips: int) -> None:
    assert findings.flips(history) == flips


async def test_a_very_long_resource_name_is_kept_cut_and_never_refused(db: Database) -> None:
    [run_id] = await queue(db)
    name = "arn:aws:rds:eu-west-1:000000000001:db:" + "x" * 3000
    async with db.write() as session:
        await findings.keep(session, db, [result(run_id, (name, "warn"))])
    [found] = (await kept(db)).values()
    assert len(found.fingerprint) == findings.WIDE and found.resource == name[: findings.WIDE]
