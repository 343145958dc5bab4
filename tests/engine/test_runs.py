"""The run service on each database: submit, read, list, cancel and retry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.catalog import Catalog, Plan
from app.config import Account, Customer
from app.db import Database
from app.engine import transitions as tx
from app.engine.runs import RunService, Submit, parse_run_id, run_json
from app.errors import NotFound, UsageError
from app.models import RunStatus, Source

CUSTOMER = Customer(
    id="aryanoble",
    name="Aryanoble",
    timezone="Asia/Jakarta",
    accounts=(
        Account(
            id="arbel",
            name="Arbel Production",
            account_id="111122223333",
            regions=("ap-southeast-3",),
            checks=("rds", "budget"),
        ),
        Account(
            id="arbel-dr",
            name="Arbel DR",
            account_id="111122224444",
            regions=("ap-southeast-1",),
            checks=("rds",),
        ),
    ),
)
CATALOG = Catalog([CUSTOMER])


def plan(target: str = "arbel", *checks: str) -> Plan:
    return CATALOG.plan(target, checks)


async def test_it_queues_a_run_with_its_targets_and_window(db: Database) -> None:
    runs = RunService(db)
    run, created = await runs.submit(
        Submit(
            plan("arbel", "rds"), "U1", Source.SLASH, window=timedelta(hours=12), channel_id="C1"
        )
    )
    assert created
    view = await runs.get(run.id, events=True)
    assert view.run.status == RunStatus.QUEUED
    assert view.run.targets == [{"account": "arbel", "check": "rds"}]
    assert view.run.params == {"window_s": 43200}
    assert [e.type for e in view.events] == ["created"]
    assert view.events[0].actor == "U1"


async def test_it_runs_every_configured_check_of_every_account_for_a_customer(db: Database) -> None:
    run, _ = await RunService(db).submit(Submit(plan("aryanoble"), "cli", Source.CLI))
    assert run.targets == [
        {"account": "arbel", "check": "rds"},
        {"account": "arbel", "check": "budget"},
        {"account": "arbel-dr", "check": "rds"},
    ]


async def test_it_creates_one_run_for_a_command_delivered_twice(db: Database) -> None:
    runs = RunService(db)
    first, created = await runs.submit(Submit(plan(), "U1", Source.SLASH, idempotency_key="k1"))
    again, created_again = await runs.submit(
        Submit(plan(), "U1", Source.SLASH, idempotency_key="k1")
    )
    assert created and not created_again
    assert again.id == first.id
    assert len(await runs.recent()) == 1


async def test_it_lists_recent_runs_newest_first_and_by_customer(db: Database) -> None:
    runs = RunService(db)
    ids = [(await runs.submit(Submit(plan(), "U1", Source.CLI)))[0].id for _ in range(3)]
    assert [r.id for r in await runs.recent(limit=2)] == ids[::-1][:2]
    assert await runs.recent("someone-else") == []


async def test_it_cancels_a_queued_run_at_once(db: Database) -> None:
    runs = RunService(db)
    run, _ = await runs.submit(Submit(plan(), "U1", Source.SLASH))
    outcome = await runs.cancel(run.id, "U2")
    assert outcome.changed
    view = await runs.get(run.id, events=True)
    assert view.run.status == RunStatus.CANCELLED
    assert view.run.cancel_requested_by == "U2"
    assert view.events[-1].type == "cancelled"


async def test_it_flags_a_running_run_for_its_owner_to_cancel(db: Database) -> None:
    runs = RunService(db)
    run, _ = await runs.submit(Submit(plan(), "U1", Source.SLASH))
    async with db.write() as session:
        await tx.claim(session, db, "worker-1", 30)
    outcome = await runs.cancel(run.id, "U2")
    assert outcome.changed and "Cancelling" in outcome.message
    view = await runs.get(run.id)
    assert view.run.status == RunStatus.RUNNING
    assert view.run.cancel_requested_by == "U2"


async def test_it_says_a_finished_run_has_nothing_to_cancel(db: Database) -> None:
    runs = RunService(db)
    run, _ = await runs.submit(Submit(plan(), "U1", Source.SLASH))
    async with db.write() as session:
        claimed = await tx.claim(session, db, "worker-1", 30)
        assert claimed is not None
        await tx.complete(session, db, [tx.Lease.of(claimed)], "ok")
    outcome = await runs.cancel(run.id, "U2")
    assert not outcome.changed
    assert "already finished" in outcome.message and f"/monitor retry {run.id}" in outcome.message
    assert (await runs.get(run.id)).run.status == RunStatus.COMPLETED


async def test_it_retries_as_a_new_linked_run_once_per_double_click(db: Database) -> None:
    runs = RunService(db)
    run, _ = await runs.submit(
        Submit(
            plan("arbel", "rds"), "U1", Source.SLASH, window=timedelta(hours=12), channel_id="C1"
        )
    )
    async with db.write() as session:
        await tx.cancel_queued(session, db, run.id, "U1")
    retry, created = await runs.retry(run.id, plan("arbel", "rds"), "U2", Source.BUTTON)
    again, created_again = await runs.retry(run.id, plan("arbel", "rds"), "U2", Source.BUTTON)
    assert created and not created_again and again.id == retry.id
    assert retry.retry_of == run.id
    assert retry.params == {"window_s": 43200}
    assert retry.channel_id == "C1"
    assert (await runs.get(run.id)).run.status == RunStatus.CANCELLED  # history unchanged


async def test_it_retries_a_run_once_and_its_retry_in_turn(db: Database) -> None:
    runs = RunService(db)
    run, _ = await runs.submit(Submit(plan(), "U1", Source.SLASH))
    async with db.write() as session:
        await tx.cancel_queued(session, db, run.id, "U1")
    first, _ = await runs.retry(run.id, plan(), "U2", Source.BUTTON)
    async with db.write() as session:
        await tx.cancel_queued(session, db, first.id, "U2")
    same, created = await runs.retry(run.id, plan(), "U3", Source.SLASH)
    assert not created and same.id == first.id  # another person, later: still the one retry
    second, created = await runs.retry(first.id, plan(), "U3", Source.SLASH)
    assert created and second.retry_of == first.id


async def test_it_refuses_to_retry_a_run_that_has_not_finished(db: Database) -> None:
    runs = RunService(db)
    run, _ = await runs.submit(Submit(plan(), "U1", Source.SLASH))
    with pytest.raises(UsageError, match="still queued"):
        await runs.retry(run.id, plan(), "U1", Source.SLASH)


async def test_it_says_which_run_does_not_exist(db: Database) -> None:
    with pytest.raises(NotFound, match="no run #404"):
        await RunService(db).get(404)


async def test_it_prints_runs_in_the_contract_json_shape(db: Database) -> None:
    runs = RunService(db)
    run, _ = await runs.submit(Submit(plan(), "cli", Source.CLI))
    shape = run_json(await runs.get(run.id))
    assert set(shape) == {
        "id",
        "status",
        "outcome",
        "customer",
        "requested_by",
        "attempts",
        "created_at",
        "finished_at",
        "results",
    }
    assert shape["customer"] == "aryanoble" and shape["results"] == []


@pytest.mark.parametrize("text, expected", [("1842", 1842), ("#1842", 1842), (" #7 ", 7)])
def test_it_reads_run_ids_with_or_without_hash(text: str, expected: int) -> None:
    assert parse_run_id(text) == expected


@pytest.mark.parametrize("text", ["", "#", "abc", "-1", "0", "1e3", "99999999999999999999"])
def test_it_rejects_malformed_run_ids_with_an_example(text: str) -> None:
    with pytest.raises(UsageError, match="#1842"):
        parse_run_id(text)
