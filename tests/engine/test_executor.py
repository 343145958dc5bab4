"""The executor in one process, on SQLite and PostgreSQL: runs, results, bounds, timeouts,
retries, cancel, recovery and shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from app.catalog import Catalog
from app.db import Database
from app.engine import transitions as tx
from app.engine.executor import Executor
from app.engine.results import ResultRow
from app.engine.retry import RetryPolicy
from app.engine.runs import RunService
from app.models import Finding, Result, Run, RunEvent, RunStatus
from checks.aws import AwsClients
from checks.base import CheckContext, CheckResult, Severity
from checks.errors import PermanentError, TransientError
from tests.engine.support import (
    CATALOG,
    KIND,
    Scripted,
    all_done,
    fast,
    queue,
    returns,
    runs,
    serving,
    sleeps,
    wait_until,
)


async def one(db: Database, run_id: int) -> Run:
    [run] = await runs(db, [run_id])
    return run


async def results(db: Database, run_id: int) -> list[tuple[str, str, int]]:
    async with db.read() as session:
        rows = await session.execute(
            select(Result.account, Result.severity, Result.attempt)
            .where(Result.run_id == run_id)
            .order_by(Result.account)
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def timeline(db: Database, run_id: int) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(RunEvent.type, RunEvent.actor)
            .where(RunEvent.run_id == run_id)
            .order_by(RunEvent.id)
        )
        return [(kind, actor) for kind, actor in rows.all()]


async def open_findings(db: Database) -> list[tuple[str, int]]:
    async with db.read() as session:
        rows = await session.execute(
            select(Finding.fingerprint, Finding.last_run_id)
            .where(Finding.status == "open")
            .order_by(Finding.fingerprint)
        )
        return [(fingerprint, run_id) for fingerprint, run_id in rows.all()]


async def has_status(db: Database, run_id: int, status: RunStatus) -> bool:
    return (await one(db, run_id)).status == status


async def dead_worker_claims(db: Database, lease_s: float = 0.3) -> tx.Claimed:
    """A worker claims the next run and then dies without a word."""
    async with db.write() as session:
        run = await tx.claim(session, db, "dead-worker", lease_s)
    assert run is not None
    return run


# -- running -------------------------------------------------------------------------------------


async def test_it_runs_a_queued_run_and_records_the_worst_severity(db: Database) -> None:
    check = Scripted(
        quick=returns(Severity.OK), slow=returns(Severity.WARN), other=returns(Severity.CRIT)
    )
    [run_id] = await queue(db, accounts=("quick", "slow", "other"))
    async with serving(db, check) as executor:
        await wait_until(lambda: all_done(db, [run_id]))
    run = await one(db, run_id)
    assert (run.status, run.outcome, run.attempt) == (RunStatus.COMPLETED, "crit", 1)
    assert run.lease_owner is None and run.finished_at is not None
    assert await results(db, run_id) == [
        ("other", "crit", 1),
        ("quick", "ok", 1),
        ("slow", "warn", 1),
    ]
    events = await timeline(db, run_id)
    assert events[0] == ("claimed", executor.owner) and events[-1] == ("completed", executor.owner)
    assert [kind for kind, _ in events].count("check_finished") == 3


async def test_it_tells_each_check_which_run_and_target_it_runs_for(db: Database) -> None:
    check = Scripted()
    [run_id] = await queue(db)
    async with serving(db, check):
        await wait_until(lambda: all_done(db, [run_id]))
    assert check.calls == [(run_id, 1, "quick")]


async def test_it_runs_no_more_runs_at_once_than_allowed(db: Database) -> None:
    check = Scripted(default=sleeps(0.05))
    ids = await queue(db, 8)
    async with serving(db, check, fast(max_runs=2)):
        await wait_until(lambda: all_done(db, ids))
    assert check.most_at_once == 2


async def test_it_runs_no_more_checks_of_a_run_at_once_than_allowed(db: Database) -> None:
    check = Scripted(default=sleeps(0.05))
    [run_id] = await queue(db, accounts=("quick", "slow", "other", "flaky"))
    async with serving(db, check, fast(max_targets=2)):
        await wait_until(lambda: all_done(db, [run_id]))
    assert check.most_at_once == 2
    assert len(await results(db, run_id)) == 4


async def test_it_runs_a_run_in_the_calling_process_for_the_cli(db: Database) -> None:
    [run_id] = await queue(db)
    aws = AwsClients()
    executor = Executor(db, CATALOG, {KIND: Scripted()}, aws, fast())
    await executor.run_until_done(run_id)
    aws.close()
    assert (await one(db, run_id)).status == RunStatus.COMPLETED


async def test_it_fails_a_run_whose_customer_is_no_longer_configured(db: Database) -> None:
    [run_id] = await queue(db)
    aws = AwsClients()
    executor = Executor(db, Catalog([]), {KIND: Scripted()}, aws, fast())
    await executor.run_until_done(run_id)
    aws.close()
    run = await one(db, run_id)
    assert (run.status, run.outcome) == (RunStatus.FAILED, "error")
    assert run.error is not None and "no longer configured" in run.error


# -- inside a check: timeout and retries ---------------------------------------------------------


async def test_it_turns_a_hanging_check_into_a_timeout_result(db: Database) -> None:
    [run_id] = await queue(db, accounts=("quick", "slow"))
    async with serving(db, Scripted(slow=sleeps(60)), fast(check_timeout_s=0.2)):
        await wait_until(lambda: all_done(db, [run_id]))
    run = await one(db, run_id)
    assert (run.status, run.outcome) == (RunStatus.COMPLETED, "error")
    async with db.read() as session:
        summary = await session.scalar(select(Result.summary).where(Result.account == "slow"))
    assert summary == "timed out after 0.2 s; AWS was slow or unreachable"


def flaky(failures: list[Exception]) -> Scripted:
    async def run(_: CheckContext) -> CheckResult:
        if failures:
            raise failures.pop(0)
        return CheckResult(Severity.OK, "fine at last")

    return Scripted(default=run)


async def test_it_retries_a_throttled_check_until_it_succeeds(db: Database) -> None:
    check = flaky([TransientError("Throttling"), TransientError("ServiceUnavailable")])
    [run_id] = await queue(db)
    async with serving(db, check, retry=RetryPolicy(base_s=0.01)):
        await wait_until(lambda: all_done(db, [run_id]))
    assert len(check.calls) == 3
    assert await results(db, run_id) == [("quick", "ok", 1)]
    assert [kind for kind, _ in await timeline(db, run_id)].count("check_retried") == 2


async def test_it_does_not_retry_access_denied(db: Database) -> None:
    denied = "quick (000000000001): access denied for rds:DescribeDBInstances"
    check = flaky([PermanentError(denied)])
    [run_id] = await queue(db)
    async with serving(db, check, retry=RetryPolicy(base_s=0.01)):
        await wait_until(lambda: all_done(db, [run_id]))
    assert len(check.calls) == 1
    async with db.read() as session:
        row = (await session.execute(select(Result.severity, Result.summary))).one()
    assert row == ("error", denied)


# -- cancel --------------------------------------------------------------------------------------


async def test_it_cancels_a_queued_run_before_any_check_runs(db: Database) -> None:
    [run_id] = await queue(db)
    outcome = await RunService(db).cancel(run_id, "U1")
    check = Scripted()
    async with serving(db, check):
        [later] = await queue(db)
        await wait_until(lambda: all_done(db, [later]))
    assert outcome.changed
    assert (await one(db, run_id)).status == RunStatus.CANCELLED
    assert [call[0] for call in check.calls] == [later]


async def test_it_cancels_a_running_run_within_2s_and_keeps_its_partial_results(
    db: Database,
) -> None:
    check = Scripted(slow=sleeps(60))
    # Leases and polls far apart: only the in-process signal can make the 2 s.
    options = fast(lease_s=120, heartbeat_s=60, cancel_poll_s=60)
    [run_id] = await queue(db, accounts=("quick", "slow"))
    async with serving(db, check, options) as executor:
        service = RunService(db, changes=executor.changes)
        await wait_until(lambda: results_for(db, run_id, 1))
        asked = asyncio.get_running_loop().time()
        outcome = await service.cancel(run_id, "U1")
        await wait_until(lambda: has_status(db, run_id, RunStatus.CANCELLED))
        took = asyncio.get_running_loop().time() - asked
    assert outcome.changed and took < 2.0
    run = await one(db, run_id)
    assert (run.outcome, run.cancel_requested_by) == ("ok", "U1")
    assert await results(db, run_id) == [("quick", "ok", 1)]
    assert check.running == 0
    events = await timeline(db, run_id)
    assert ("cancel_requested", "U1") in events and events[-1][0] == "cancelled"


async def results_for(db: Database, run_id: int, count: int) -> bool:
    return len(await results(db, run_id)) >= count


async def test_it_cancels_a_run_owned_by_another_replica_within_2s(db: Database) -> None:
    check = Scripted(default=sleeps(60))
    [run_id] = await queue(db)
    elsewhere = Database(db.url)  # another replica: its own connections, no in-process signal
    try:
        async with serving(db, check, fast(cancel_poll_s=1.0, heartbeat_s=5, lease_s=30)):
            await wait_until(lambda: has_status(db, run_id, RunStatus.RUNNING))
            await wait_until(lambda: asyncio.sleep(0, result=check.running == 1))
            asked = asyncio.get_running_loop().time()
            await RunService(elsewhere).cancel(run_id, "U2")
            await wait_until(lambda: has_status(db, run_id, RunStatus.CANCELLED))
            took = asyncio.get_running_loop().time() - asked
    finally:
        await elsewhere.close()
    assert took < 2.0
    run = await one(db, run_id)
    assert run.outcome is None  # nothing finished before the cancel
    assert await results(db, run_id) == []


async def test_it_says_cancelling_a_finished_run_changes_nothing(db: Database) -> None:
    [run_id] = await queue(db)
    async with serving(db, Scripted()):
        await wait_until(lambda: all_done(db, [run_id]))
    outcome = await RunService(db).cancel(run_id, "U1")
    assert not outcome.changed and "already finished" in outcome.message
    assert (await one(db, run_id)).status == RunStatus.COMPLETED


# -- recovery ------------------------------------------------------------------------------------


async def test_it_recovers_a_run_whose_worker_died(db: Database) -> None:
    [run_id] = await queue(db)
    await dead_worker_claims(db)
    async with serving(db, Scripted(), sweep=True) as executor:
        await wait_until(lambda: all_done(db, [run_id]))
    run = await one(db, run_id)
    assert (run.status, run.attempt) == (RunStatus.COMPLETED, 2)
    events = await timeline(db, run_id)
    assert events[:3] == [
        ("claimed", "dead-worker"),
        ("requeued", f"sweeper:{executor.owner}"),
        ("claimed", executor.owner),
    ]


async def test_it_reruns_only_the_checks_a_dead_worker_had_not_recorded(db: Database) -> None:
    [run_id] = await queue(db, accounts=("quick", "slow"))
    run = await dead_worker_claims(db)
    lease = tx.Lease.of(run)
    now = datetime.now(UTC)
    done = ResultRow(
        run_id, 1, "quick", KIND, "warn", "recorded before the crash", {}, {}, now, now, "dead"
    )
    async with db.write() as session:
        await tx.record(session, db, [lease], [done])
    assert await open_findings(db) == []  # a run changes the findings when it ends
    check = Scripted()
    async with serving(db, check, sweep=True):
        await wait_until(lambda: all_done(db, [run_id]))
    assert [account for _, _, account in check.calls] == ["slow"]
    assert await results(db, run_id) == [("quick", "warn", 1), ("slow", "ok", 2)]
    assert (await one(db, run_id)).outcome == "warn"
    # What the dead worker recorded counts: its problem is a finding of the run that ended.
    assert await open_findings(db) == [(f"{KIND}:quick:*", run_id)]


async def test_it_fails_a_run_after_its_last_attempt_dies_too(db: Database) -> None:
    [run_id] = await queue(db, max_attempts=1)
    await dead_worker_claims(db)
    check = Scripted()
    async with serving(db, check, sweep=True):
        await wait_until(lambda: all_done(db, [run_id]))
    run = await one(db, run_id)
    assert (run.status, run.outcome) == (RunStatus.FAILED, "error")
    assert run.error is not None and "gave up after 1 attempts" in run.error
    assert check.calls == []


async def test_it_honours_a_cancel_asked_before_its_worker_died(db: Database) -> None:
    [run_id] = await queue(db)
    await dead_worker_claims(db)
    async with db.write() as session:
        await tx.request_cancel(session, db, run_id, "U1")
    check = Scripted()
    async with serving(db, check, sweep=True):
        await wait_until(lambda: all_done(db, [run_id]))
    assert (await one(db, run_id)).status == RunStatus.CANCELLED
    assert check.calls == []


async def test_it_stops_a_run_and_writes_nothing_once_its_lease_is_lost(db: Database) -> None:
    check = Scripted(default=sleeps(60))
    [run_id] = await queue(db)
    async with serving(db, check) as executor:
        await wait_until(lambda: asyncio.sleep(0, result=check.running == 1))
        async with db.write() as session:  # it stalled long enough for its lease to lapse
            await session.execute(
                update(Run).values(lease_expires_at=datetime.now(UTC) - timedelta(minutes=1))
            )
            assert await tx.requeue_stale(session, db, "sweeper:elsewhere") == [(run_id, 1)]
            assert await tx.claim(session, db, "elsewhere", 60) is not None
        await wait_until(lambda: asyncio.sleep(0, result=not executor.active))
    assert check.running == 0
    run = await one(db, run_id)
    assert (run.status, run.attempt, run.lease_owner) == (RunStatus.RUNNING, 2, "elsewhere")
    assert await results(db, run_id) == []


# -- shutdown ------------------------------------------------------------------------------------


async def test_it_lets_running_work_finish_within_the_grace_period(db: Database) -> None:
    check = Scripted(default=sleeps(0.3))
    [run_id] = await queue(db)
    async with serving(db, check, fast(grace_s=30)):
        await wait_until(lambda: asyncio.sleep(0, result=check.running == 1))
    assert (await one(db, run_id)).status == RunStatus.COMPLETED


async def test_it_requeues_unfinished_work_after_the_grace_without_using_an_attempt(
    db: Database,
) -> None:
    check = Scripted(slow=sleeps(60))
    [run_id] = await queue(db, accounts=("quick", "slow"))
    async with serving(db, check, fast(grace_s=0.2)):
        await wait_until(lambda: results_for(db, run_id, 1))
    run = await one(db, run_id)
    assert (run.status, run.attempt, run.lease_owner) == (RunStatus.QUEUED, 0, None)
    assert await results(db, run_id) == [("quick", "ok", 1)]  # kept; not run again next time
    assert (await timeline(db, run_id))[-1][0] == "requeued"


async def test_it_stops_at_once_when_told_twice(db: Database) -> None:
    check = Scripted(default=sleeps(60))
    [run_id] = await queue(db)
    async with serving(db, check, fast(grace_s=600)) as executor:
        await wait_until(lambda: asyncio.sleep(0, result=check.running == 1))
        executor.stop_now()
    run = await one(db, run_id)
    assert (run.status, run.attempt) == (RunStatus.QUEUED, 0)


async def test_it_claims_nothing_once_told_to_stop(db: Database) -> None:
    check = Scripted(default=sleeps(0.3))
    first, second = await queue(db, 2)
    stop = asyncio.Event()
    aws = AwsClients()
    executor = Executor(db, CATALOG, {KIND: check}, aws, fast(max_runs=1))
    serving_task = asyncio.create_task(executor.serve(stop))
    await wait_until(lambda: asyncio.sleep(0, result=check.running == 1))
    stop.set()
    await serving_task
    aws.close()
    assert (await one(db, first)).status == RunStatus.COMPLETED
    assert (await one(db, second)).status == RunStatus.QUEUED
    assert await timeline(db, second) == []


def test_it_starts_every_accounts_first_check_before_any_accounts_second() -> None:
    from app.engine.shards import interleaved

    targets = [{"account": a, "check": c} for a in ("a", "b", "c") for c in ("rds", "backup")]
    order = [(t["account"], t["check"]) for t in interleaved(targets)]
    assert order == [
        ("a", "rds"),
        ("b", "rds"),
        ("c", "rds"),
        ("a", "backup"),
        ("b", "backup"),
        ("c", "backup"),
    ]
