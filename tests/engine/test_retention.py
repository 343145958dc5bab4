"""Retention on each back end: old history goes in bounded batches, and what digests, open
findings, the runboard and the monthly reports need stays."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from app.catalog import Catalog
from app.db import Database
from app.engine import retention
from app.engine.retention import Pruned, cutoff, keep_pruning, prune
from app.main import build, tasks_of
from app.models import Finding, Notice, Outbox, Result, Run, RunEvent, Sight
from app.settings import Settings
from tests.conftest import mhub

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=200)
BEFORE = cutoff(NOW, timedelta(days=90))


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def add_run(
    db: Database,
    customer: str = "acme",
    *,
    at: datetime = OLD,
    status: str = "completed",
    schedule: str | None = None,
    retry_of: int | None = None,
    outbox: str | None = "posted",
) -> int:
    """A run with two results, two events and (unless ``outbox`` is None) a card row."""
    async with db.write() as session:
        run = Run(
            customer_id=customer,
            requested_by="test",
            channel_id=None,
            source="schedule" if schedule else "cli",
            targets=[{"account": "prod", "check": "rds"}, {"account": "prod", "check": "ec2"}],
            params={"schedule": schedule} if schedule else {},
            status=status,
            attempt=1,
            max_attempts=3,
            retry_of=retry_of,
            created_at=at,
        )
        session.add(run)
        await session.flush()
        for check in ("rds", "ec2"):
            session.add(
                Result(
                    run_id=run.id,
                    account="prod",
                    check=check,
                    severity="ok",
                    summary="fine",
                    details={},
                    series={},
                    attempt=1,
                    finished_at=at,
                )
            )
        for kind in ("created", "completed"):
            session.add(RunEvent(run_id=run.id, type=kind, actor="test", data={}, created_at=at))
        if outbox is not None:
            session.add(
                Outbox(
                    dedupe_key=f"card:{run.id}",
                    run_id=run.id,
                    kind="card",
                    channel="C1",
                    payload={},
                    status=outbox,
                    next_attempt_at=at,
                    created_at=at,
                    updated_at=at,
                )
            )
        return run.id


async def add_finding(db: Database, run_id: int, status: str) -> None:
    async with db.write() as session:
        session.add(
            Finding(
                customer_id="acme",
                fingerprint=f"rds:db-{run_id}",
                account="prod",
                region="eu-west-1",
                check="rds",
                resource=f"db-{run_id}",
                severity="warn",
                summary="slow",
                status=status,
                first_seen_at=OLD,
                last_seen_at=OLD,
                resolved_at=OLD if status == "resolved" else None,
                last_run_id=run_id,
                looked_run_id=run_id,
            )
        )


async def add_audit(db: Database, kind: str, at: datetime = OLD) -> None:
    async with db.write() as session:
        session.add(RunEvent(run_id=None, type=kind, actor="U1", data={}, created_at=at))


async def add_notice(db: Database, status: str, at: datetime = OLD) -> None:
    async with db.write() as session:
        session.add(
            Notice(
                dedupe_key=f"n:{status}:{at.isoformat()}",
                customer_id="acme",
                destination="pagerduty",
                action="trigger",
                payload={},
                status=status,
                next_attempt_at=at,
                created_at=at,
            )
        )


async def runs(db: Database) -> set[int]:
    async with db.read() as session:
        return set((await session.execute(select(Run.id))).scalars())


async def rows(db: Database, table: Any, *where: Any) -> int:
    async with db.read() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(table).where(*where))
            ).scalar_one()
        )


async def test_old_runs_go_with_their_results_events_and_slack_rows(db: Database) -> None:
    old = [await add_run(db) for _ in range(3)]
    recent = await add_run(db, at=ago(10))

    pruned = await prune(db, BEFORE)

    assert pruned == Pruned(runs=3, results=6, events=6, outbox=3)
    assert await runs(db) == {recent}
    assert await rows(db, Result) == 2 and await rows(db, RunEvent) == 2
    assert await rows(db, Outbox) == 1
    assert not set(old) & await runs(db)


async def test_queued_and_running_runs_stay_however_old(db: Database) -> None:
    queued = await add_run(db, status="queued", outbox=None)
    running = await add_run(db, status="running", outbox=None)
    await add_run(db, at=ago(1))

    await prune(db, BEFORE)

    assert {queued, running} <= await runs(db)


async def test_the_latest_run_of_each_customer_stays_for_the_runboard(db: Database) -> None:
    await add_run(db, "acme")
    last_of_acme = await add_run(db, "acme")
    only_of_globex = await add_run(db, "globex")

    assert (await prune(db, BEFORE)).runs == 1
    assert await runs(db) == {last_of_acme, only_of_globex}


async def test_the_run_each_account_and_check_last_looked_with_stays(db: Database) -> None:
    looked = await add_run(db)
    await add_run(db)
    await add_run(db, at=ago(1))
    async with db.write() as session:
        session.add(
            Sight(
                customer_id="acme",
                account="prod",
                check="rds",
                last_ok_at=OLD,
                failed=0,
                looked_at=OLD,
                looked_run_id=looked,
            )
        )

    await prune(db, BEFORE)

    assert looked in await runs(db)


async def test_an_open_findings_evidence_stays_and_a_resolved_ones_goes(db: Database) -> None:
    evidence = await add_run(db)
    resolved = await add_run(db)
    await add_finding(db, evidence, "open")
    await add_finding(db, resolved, "resolved")
    await add_run(db, at=ago(1))

    await prune(db, BEFORE)

    left = await runs(db)
    assert evidence in left and resolved not in left
    assert await rows(db, Finding) == 2  # findings themselves are kept


async def test_the_latest_completed_run_of_each_schedule_stays_for_the_next_digest(
    db: Database,
) -> None:
    await add_run(db, schedule="daily")
    previous = await add_run(db, schedule="daily")
    await add_run(db, schedule="daily", status="failed")
    weekly = await add_run(db, schedule="weekly")
    await add_run(db, at=ago(1))

    await prune(db, BEFORE)

    left = await runs(db)
    assert previous in left and weekly in left
    assert len(left) == 3


async def test_a_run_with_a_slack_row_not_yet_delivered_stays(db: Database) -> None:
    waiting = await add_run(db, outbox="pending")
    refused = await add_run(db, outbox="failed")
    await add_run(db, at=ago(1))

    await prune(db, BEFORE)

    left = await runs(db)
    assert waiting in left and refused not in left
    assert await rows(db, Outbox, Outbox.status == "pending") == 1


async def test_a_recent_retry_of_a_pruned_run_stays_without_its_link(db: Database) -> None:
    original = await add_run(db)
    retry = await add_run(db, at=ago(1), retry_of=original)

    await prune(db, BEFORE)

    assert await runs(db) == {retry}
    async with db.read() as session:
        assert (await session.get(Run, retry)).retry_of is None  # type: ignore[union-attr]


async def test_reads_and_access_decisions_go_answers_stay(db: Database) -> None:
    for kind in ("read", "read", "access", "answer"):
        await add_audit(db, kind)
    await add_audit(db, "read", at=ago(1))

    assert (await prune(db, BEFORE)).audit == 3

    async with db.read() as session:
        kinds = sorted((await session.execute(select(RunEvent.type))).scalars())
    assert kinds == ["answer", "read"]


async def test_notices_sent_or_refused_go_pending_ones_stay(db: Database) -> None:
    for status in ("sent", "failed", "pending"):
        await add_notice(db, status)
    await add_notice(db, "sent", at=ago(1))

    assert (await prune(db, BEFORE)).notices == 2
    assert await rows(db, Notice) == 2
    assert await rows(db, Notice, Notice.status == "pending") == 1


@pytest.fixture
def deletes(db: Database) -> Iterator[list[int]]:
    """The row count of every DELETE of runs the database is sent."""
    counts: list[int] = []

    def seen(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM RUNS"):
            counts.append(cursor.rowcount)

    event.listen(db.writer.sync_engine, "after_cursor_execute", seen)
    yield counts
    event.remove(db.writer.sync_engine, "after_cursor_execute", seen)


async def test_each_transaction_deletes_a_bounded_batch(db: Database, deletes: list[int]) -> None:
    for _ in range(5):
        await add_run(db)
    for _ in range(5):
        await add_audit(db, "read")
    await add_run(db, at=ago(1))

    pruned = await prune(db, BEFORE, batch=2)

    assert pruned.runs == 5 and pruned.audit == 5
    assert deletes == [2, 2, 1]


async def test_a_dry_run_counts_what_a_prune_deletes_and_changes_nothing(db: Database) -> None:
    for _ in range(3):
        await add_run(db)
    keep = await add_run(db, at=ago(1))
    await add_audit(db, "read")
    await add_notice(db, "sent")

    counted = await retention.count(db, BEFORE)

    assert len(await runs(db)) == 4 and await rows(db, RunEvent) == 9
    assert counted == Pruned(runs=3, results=6, events=6, outbox=3, audit=1, notices=1)
    assert await prune(db, BEFORE) == counted
    assert await runs(db) == {keep}


async def test_replicas_pruning_at_once_delete_each_row_once(db: Database) -> None:
    for _ in range(6):
        await add_run(db)
    await add_run(db, at=ago(1))

    done = await asyncio.gather(*(prune(db, BEFORE, batch=2) for _ in range(3)))

    # PostgreSQL: one prunes while the others find the lock taken (they try next round)
    assert 1 <= sum(p.runs for p in done) <= 6
    assert (await prune(db, BEFORE)).runs == 6 - sum(p.runs for p in done)
    assert len(await runs(db)) == 1


async def test_the_server_prunes_in_the_background_until_stopped(db: Database) -> None:
    old = await add_run(db, at=datetime.now(UTC) - timedelta(days=400))
    await add_run(db)  # now: the latest of its customer
    stop = asyncio.Event()
    task = asyncio.create_task(keep_pruning(db, 90, stop, pause_s=0))
    for _ in range(600):
        if old not in await runs(db):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert old not in await runs(db)


def test_the_month_before_last_is_always_kept_for_the_monthly_report() -> None:
    assert cutoff(NOW, timedelta(days=1)) == datetime(2026, 9, 30, tzinfo=UTC)
    assert cutoff(NOW, timedelta(days=90)) == datetime(2026, 9, 5, 12, tzinfo=UTC)
    assert cutoff(datetime(2026, 2, 1, tzinfo=UTC), timedelta(days=1)) == datetime(
        2025, 11, 30, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["90", "ninety", "0d", "90 days", "-5d", "9999999d"])
def test_a_bad_age_is_refused_with_what_to_write(value: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db", "PATH": "/usr/bin:/bin"}
    done = mhub(env, "db", "prune", "--older-than", value)
    assert done.returncode == 2
    assert "--older-than" in done.stderr and "such as 90d" in done.stderr
    assert not (tmp_path / "hub.db").exists()  # nothing was touched


def test_mhub_db_prune_dry_run_says_what_it_would_delete(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db", "PATH": "/usr/bin:/bin"}
    done = mhub(env, "db", "prune", "--older-than", "90d", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Would delete 0 run(s) with 0 result(s)")
    done = mhub(env, "db", "prune", "--older-than", "120d")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Deleted 0 run(s)")


async def test_mhub_serve_prunes_only_when_hub_retention_days_is_set(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/hub.db"
    for days, named in ((None, False), (90, True)):
        settings = Settings(DATABASE_URL=url, HUB_RETENTION_DAYS=days)
        async with build(settings, Catalog([]), slack=False) as hub:
            assert ("retention" in tasks_of(hub, asyncio.Event(), web=False)) is named
