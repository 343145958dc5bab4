"""``mhub list``, ``customers``, ``schedules``, ``cancel`` and ``retry`` — what ``/monitor``
offers in Slack, from the terminal, on each database — plus ``mhub --version`` and shell
completion. Errors speak the terminal's words (``mhub customers``), Slack keeps its own.

The runs are queued straight into the database; the commands run in-process (click's runner,
in a thread with its own event loop) against it, as ``tests/app/test_cli_answers.py`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from app import version
from app.catalog import Catalog
from app.db import Database
from app.engine.runs import RunService
from app.errors import UsageError
from app.loader import load_catalog
from app.models import Run, RunEvent, RunStatus
from tests.engine.support import queue

ENGINE = """\
    id: engine
    name: Engine test
    timezone: Asia/Jakarta
    slack: {channel: C0ENGINE01}
    accounts:
      - {id: quick, name: Quick, account_id: "000000000001", regions: [eu-west-1], checks: [http]}
      - {id: other, name: Other, account_id: "000000000003", regions: [eu-west-1], checks: [http]}
    checks:
      http: {endpoints: [{name: api, url: "http://127.0.0.1:9/health"}]}
    schedules:
      - {name: morning, cron: "0 7 * * *"}
"""
SECOND = """\
    id: second
    name: Second customer
    timezone: Europe/London
    slack: {channel: C0SECOND01}
    accounts:
      - {id: second-prod, name: Second, account_id: "000000000009", regions: [eu-west-1]}
    schedules:
      - {name: monthly, cron: "0 9 1 * *", kind: report}
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    customers = tmp_path / "config" / "customers"
    customers.mkdir(parents=True)
    (customers / "engine.yaml").write_text(textwrap.dedent(ENGINE))
    (customers / "second.yaml").write_text(textwrap.dedent(SECOND))
    return customers.parent


@pytest.fixture
def env(config_dir: Path, database_url: str) -> dict[str, str]:
    return {"HUB_CONFIG_DIR": str(config_dir), "DATABASE_URL": database_url}


async def mhub(env: dict[str, str], command: str, *args: str) -> Result:
    """``mhub COMMAND ARGS``, in-process; its own event loop runs in a thread."""
    from app import cli

    chosen = cli.main.commands[command]
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, chosen, list(args), env=env)


async def finish(db: Database, run_id: int, outcome: str = "crit") -> None:
    """Mark a queued run completed, as the executor would have."""
    async with db.write() as session:
        await session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status=RunStatus.COMPLETED, outcome=outcome, finished_at=datetime.now(UTC))
        )


async def run_row(db: Database, run_id: int) -> Run:
    async with db.read() as session:
        found = await session.get(Run, run_id)
    assert found is not None
    return found


# -- the version and shell completion ---------------------------------------------------------


def test_it_prints_its_version() -> None:
    from app.cli import main

    done = CliRunner().invoke(main, ["--version"])
    assert done.exit_code == 0
    assert done.output.strip() == f"mhub {version.current()}"


def test_bash_completion_is_a_script_that_completes_mhub() -> None:
    script = Path(sys.executable).with_name("mhub")
    done = subprocess.run(
        [str(script)],
        env={**os.environ, "_MHUB_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "_mhub_completion()" in done.stdout and "complete " in done.stdout
    assert "mhub" in done.stdout.splitlines()[-1]  # `complete … -F _mhub_completion mhub`


def test_completion_offers_the_commands_that_start_with_what_was_typed() -> None:
    script = Path(sys.executable).with_name("mhub")
    done = subprocess.run(
        [str(script)],
        env={**os.environ, "_MHUB_COMPLETE": "bash_complete", "COMP_WORDS": "mhub sch",
             "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "plain,schedules" in done.stdout.splitlines()


# -- mhub list ----------------------------------------------------------------------------------


async def test_it_lists_recent_runs_newest_first_in_the_customers_zone(
    env: dict[str, str], db: Database
) -> None:
    first, second = await queue(db, count=2, accounts=("quick", "other"))
    await finish(db, first)
    done = await mhub(env, "list")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == "Recent runs:"
    assert lines[1].startswith(f"⏸️ #{second} Engine test / quick, other · HTTP · @test · ")
    assert lines[1].endswith(" WIB · queued")  # the customer's time zone
    assert lines[2].startswith(f"🔴 #{first} ") and lines[2].endswith(" · crit")


async def test_it_lists_one_customers_runs_as_json_and_as_many_as_asked(
    env: dict[str, str], db: Database
) -> None:
    ids = await queue(db, count=3)
    done = await mhub(env, "list", "engine", "--limit", "2", "--json")
    assert done.exit_code == 0, done.output
    runs = json.loads(done.stdout)["runs"]
    assert [r["id"] for r in runs] == [ids[2], ids[1]]
    assert runs[0]["customer"] == "engine" and runs[0]["accounts"] == ["quick"]
    assert runs[0]["checks"] == ["http"] and runs[0]["status"] == "queued"
    none = await mhub(env, "list", "second")
    assert none.exit_code == 0
    assert (
        none.stdout.strip() == "No runs yet for Second customer. Start one with `mhub run TARGET`."
    )


async def test_list_answers_an_unknown_customer_in_the_terminals_words(
    env: dict[str, str], db: Database
) -> None:
    done = await mhub(env, "list", "engin")
    assert done.exit_code == 2
    assert 'I don\'t know "engin". Did you mean `engine` (Engine test)?' in done.stderr
    assert "`mhub customers`" in done.stderr and "/monitor" not in done.stderr
    wrong = await mhub(env, "list", "--limit", "0")
    assert wrong.exit_code == 2 and "0 is not in the range 1<=x<=500" in wrong.output


# -- mhub customers and schedules ---------------------------------------------------------------


async def test_it_lists_customers_with_their_accounts_checks_and_channel(
    env: dict[str, str],
) -> None:
    done = await mhub(env, "customers")
    assert done.exit_code == 0, done.output
    assert "Engine test (engine) · Asia/Jakarta · C0ENGINE01" in done.stdout
    assert "  quick  Quick (000000000001, eu-west-1) — http" in done.stdout
    assert "second-prod  Second (000000000009, eu-west-1) — no checks" in done.stdout
    body = json.loads((await mhub(env, "customers", "--json")).stdout)
    engine = body["customers"][0]
    assert (engine["id"], engine["timezone"], engine["channel"]) == (
        "engine",
        "Asia/Jakarta",
        "C0ENGINE01",
    )
    assert [a["id"] for a in engine["accounts"]] == ["quick", "other"]
    assert engine["accounts"][0]["checks"] == ["http"]


async def test_it_lists_schedules_with_their_next_run_in_the_customers_zone(
    env: dict[str, str],
) -> None:
    done = await mhub(env, "schedules", "--json")
    assert done.exit_code == 0, done.output
    found = {s["name"]: s for s in json.loads(done.stdout)["schedules"]}
    morning = datetime.fromisoformat(found["morning"]["next"])
    assert morning.utcoffset() == timedelta(hours=7)  # Asia/Jakarta
    assert (morning.hour, morning.minute) == (7, 0)
    assert morning > datetime.now(UTC) and found["morning"]["channel"] == "C0ENGINE01"
    monthly = datetime.fromisoformat(found["monthly"]["next"])
    assert (monthly.day, monthly.hour) == (1, 9) and found["monthly"]["kind"] == "report"
    text = (await mhub(env, "schedules", "engine")).stdout
    assert text.startswith("Engine test morning — 0 7 * * * · next ")
    assert " 07:00 WIB · every configured check · C0ENGINE01" in text
    assert "monthly" not in text
    unknown = await mhub(env, "schedules", "nobody")
    assert unknown.exit_code == 2 and "`mhub customers`" in unknown.stderr


# -- mhub cancel and retry ----------------------------------------------------------------------


async def test_it_cancels_a_queued_run_and_says_so_once(env: dict[str, str], db: Database) -> None:
    [run_id] = await queue(db)
    done = await mhub(env, "cancel", f"#{run_id}", "--as", "cli:alice")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == f"Cancelled run #{run_id} before it started."
    assert (await run_row(db, run_id)).status == RunStatus.CANCELLED
    async with db.read() as session:
        actors = await session.execute(select(RunEvent.actor).where(RunEvent.run_id == run_id))
        assert "cli:alice" in actors.scalars().all()
    again = await mhub(env, "cancel", str(run_id), "--json")
    assert again.exit_code == 1  # nothing changed
    body = json.loads(again.stdout)
    assert (body["id"], body["status"], body["changed"]) == (run_id, "cancelled", False)
    assert body["message"] == (
        f"Run #{run_id} has already been cancelled — nothing to cancel. "
        f"Retry it with `mhub retry {run_id}`."
    )


async def test_cancel_and_retry_refuse_bad_input_and_change_nothing(
    env: dict[str, str], db: Database
) -> None:
    [run_id] = await queue(db)
    missing = await mhub(env, "cancel", "99")
    assert missing.exit_code == 2
    assert "There is no run #99. `mhub list` shows recent runs." in missing.stderr
    bad = await mhub(env, "retry", "one")
    assert bad.exit_code == 2 and '"one" is not a run id' in bad.stderr
    early = await mhub(env, "retry", str(run_id))
    assert early.exit_code == 2
    assert f"Run #{run_id} is still queued; retry it once it ends." in early.stderr
    async with db.read() as session:
        assert len((await session.execute(select(Run))).scalars().all()) == 1
    assert (await run_row(db, run_id)).status == RunStatus.QUEUED


async def test_it_retries_a_finished_run_once_with_the_same_targets(
    env: dict[str, str], db: Database
) -> None:
    [run_id] = await queue(db, accounts=("quick", "other"))
    await finish(db, run_id)
    done = await mhub(env, "retry", str(run_id), "--no-wait", "--json")
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert body["retry_of"] == run_id and body["status"] == "queued"
    retry = await run_row(db, body["id"])
    assert retry.retry_of == run_id and retry.source == "cli"
    assert retry.targets == (await run_row(db, run_id)).targets
    assert retry.requested_by.startswith("cli:")
    again = await mhub(env, "retry", f"#{run_id}", "--no-wait")
    assert again.exit_code == 0
    assert f"#{run_id} was already retried as #{body['id']}." in again.stderr
    assert f"`mhub status {body['id']}`" in again.stdout


# -- errors speak the terminal's words; Slack keeps its own -------------------------------------


async def test_a_check_the_account_does_not_run_points_at_mhub_customers(
    env: dict[str, str], db: Database
) -> None:
    done = await mhub(env, "run", "quick", "rds")
    assert done.exit_code == 2
    assert "quick does not run rds; configured: http. See `mhub customers`." in done.stderr
    async with db.read() as session:
        assert (await session.execute(select(Run))).scalars().all() == []


async def test_slack_keeps_its_own_words_for_the_same_errors(
    config_dir: Path, db: Database
) -> None:
    catalog: Catalog = load_catalog(config_dir)
    with pytest.raises(UsageError) as caught:
        catalog.plan("quick", ["rds"])
    assert str(caught.value).endswith("See `/monitor customers`.")
    assert caught.value.said("mhub").endswith("See `mhub customers`.")
    [run_id] = await queue(db)
    await finish(db, run_id)
    outcome = await RunService(db).cancel(run_id, "U0ALICE")
    assert outcome.message.endswith(f"Retry it with `/monitor retry {run_id}`.")


def test_the_terminal_has_the_run_commands_slack_has() -> None:
    from app.cli import main
    from app.slack.grammar import VERBS

    runs = {"run", "status", "list", "cancel", "retry", "customers", "schedules", "report"}
    assert runs <= set(VERBS) and runs <= set(main.commands)
    assert all(isinstance(main.commands[name], click.Command) for name in runs)
