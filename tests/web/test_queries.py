"""The read queries: keyset pages, the check filter's bounded scan, and index use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, inspect

from app.db import Database
from app.engine import runboard
from app.models import Base
from app.web import queries
from app.web.queries import RunFilter
from tests.web.sample import CATALOG, NOW, R, insert_run, ok

CHANGES = "SCAN run_events USING INDEX ix_run_events_changes"


async def plant_many(db: Database, count: int = 30) -> list[int]:
    ids = []
    for n in range(count):
        check = "http" if n % 5 == 0 else "rds"
        ids.append(
            await insert_run(
                db,
                "demo",
                [("shop-prod", check)],
                outcome="warn" if n % 3 == 0 else "ok",
                created=NOW - timedelta(minutes=count - n),
                results=[R("shop-prod", check, "warn" if n % 3 == 0 else "ok", "x")],
            )
        )
    return ids


async def test_it_walks_every_run_exactly_once_page_by_page(db: Database) -> None:
    ids = await plant_many(db)
    seen: list[int] = []
    page = await queries.runs_page(db, RunFilter(), limit=7)
    while True:
        seen += [r.id for r in page.runs]
        if page.older is None:
            break
        page = await queries.runs_page(db, RunFilter(), before=page.older, limit=7)
    assert seen == sorted(ids, reverse=True)
    back: list[int] = []
    page = await queries.runs_page(db, RunFilter(), after=ids[0] - 1, limit=7)
    assert page.older is not None
    back += [r.id for r in page.runs]
    while page.newer is not None:
        page = await queries.runs_page(db, RunFilter(), after=page.newer, limit=7)
        back = [r.id for r in page.runs] + back
    assert back == sorted(ids, reverse=True)


async def test_it_searches_a_check_a_bounded_stretch_at_a_time(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await plant_many(db)
    monkeypatch.setattr(queries, "CHECK_SCAN", 2)
    flt = RunFilter(check="http", outcome="warn")  # http: every 5th run; warn: every 3rd
    found: list[int] = []
    page = await queries.runs_page(db, flt, limit=50)
    pages = 1
    while True:
        found += [r.id for r in page.runs]
        if page.older is None:
            break
        assert page.partial
        page = await queries.runs_page(db, flt, before=page.older, limit=50)
        pages += 1
    assert found == [ids[15], ids[0]]
    assert pages == 2  # http results that warned, two a page: 15 0 | none left


async def test_it_counts_the_last_day_and_finds_each_customers_latest_run(db: Database) -> None:
    old = await insert_run(
        db,
        "billing",
        [("billing-prod", "rds")],
        outcome="crit",
        created=NOW - timedelta(days=2),
        results=[ok("billing-prod", "rds")],
    )
    new = await insert_run(
        db, "billing", [("billing-prod", "rds")], outcome="ok", created=NOW - timedelta(hours=1)
    )
    await insert_run(db, "billing", [("billing-prod", "rds")], status="queued")
    board = await runboard.read(db, list(CATALOG.customers), NOW)
    assert board.day == {"runs": 2, "crit": 0, "warn": 0, "error": 0, "failed": 0}
    assert board.latest["billing"].id == new and "demo" not in board.latest
    assert board.queued == 1 and [r.id for r in board.recent] == [new, old]


@contextmanager
def captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            statements.append((sql, params))

    engine = db.reader.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    "flt",
    [
        RunFilter(),
        RunFilter(customer="demo"),
        RunFilter(status="failed"),
        RunFilter(outcome="crit"),
        RunFilter(check="http"),
        RunFilter(check="http", outcome="warn"),
        RunFilter(since=NOW - timedelta(days=3), until=NOW - timedelta(days=1)),
    ],
    ids=["all", "customer", "status", "outcome", "check", "check-outcome", "dates"],
)
async def test_it_reads_runs_pages_through_indexes(
    db: Database, flt: RunFilter, request: pytest.FixtureRequest
) -> None:
    if not db.is_sqlite:
        pytest.skip("the plans are checked on SQLite, whose planner has no statistics here")
    await plant_many(db, 5)
    with captured(db) as statements:
        await queries.runs_page(db, flt, before=10_000)
        await runboard.read(db, list(CATALOG.customers), NOW)
    async with db.reader.connect() as conn:
        for sql, params in statements:
            plan = " / ".join(
                row[-1] for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
            scans = [step for step in plan.split(" / ") if step.startswith("SCAN ")]
            for step in scans:
                if step == "SCAN CONSTANT ROW" or step.startswith("SCAN anon_"):
                    continue  # a row of scalar subqueries; the check filter's candidates
                # otherwise a bare scan only where it walks the primary key backwards
                assert step in ("SCAN runs", "SCAN run_events", CHANGES), (sql, plan)
                assert "ORDER BY runs.id DESC" in sql or "max(" in sql.lower(), (sql, plan)
            assert "TEMP B-TREE FOR ORDER BY" not in plan or "IN (SELECT" in sql, (sql, plan)


async def test_it_has_the_web_indexes_in_the_schema_and_the_models(db: Database) -> None:
    wanted = {
        ("runs", "ix_runs_outcome_id"): ["outcome", "id"],
        ("results", "ix_results_check_run"): ["check", "run_id"],
        ("results", "ix_results_check_severity_run"): ["check", "severity", "run_id"],
        ("findings", "ix_findings_resolved"): ["customer_id", "status", "resolved_at"],
    }
    async with db.reader.connect() as conn:
        found = await conn.run_sync(
            lambda sync: {
                (table, ix["name"]): ix["column_names"]
                for table in ("runs", "results", "findings")
                for ix in inspect(sync).get_indexes(table)
            }
        )
    modelled = {
        (t.name, ix.name): [c.name for c in ix.columns]
        for t in Base.metadata.tables.values()
        for ix in t.indexes
    }
    for key, columns in wanted.items():
        assert found[key] == columns and modelled[key] == columns


@pytest.mark.parametrize(
    ("flt", "index"),
    [
        (RunFilter(check="http"), "ix_results_check_run"),
        (RunFilter(check="http", outcome="warn"), "ix_results_check_severity_run"),
    ],
    ids=["check", "check-outcome"],
)
async def test_it_finds_a_checks_results_through_its_index(
    db: Database, flt: RunFilter, index: str
) -> None:
    """The check filter's candidates walk an index on both databases (PostgreSQL told to
    avoid a sequential scan, as it would on a table of millions; it has no statistics here)."""
    await plant_many(db, 5)
    with captured(db) as statements:
        await queries.runs_page(db, flt, before=10_000)
    [sql, params] = next((s, p) for s, p in statements if "FROM results" in s)
    async with db.reader.connect() as conn:
        if db.is_sqlite:
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
        else:
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = await conn.exec_driver_sql(f"EXPLAIN {sql}", params)
        plan = " / ".join(str(row[-1]) for row in rows)
    assert index in plan, plan
