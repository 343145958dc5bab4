"""``mhub findings``: listing findings with what each is now, and answering them from the
terminal — acknowledge, snooze, mute, unsnooze, unmute — on each database, audited; bad input
changes nothing and exits 2, an answer someone else gave first exits 1 and says who.

The findings are seeded by recording results the way the executor's writer does; the command
runs in-process (click's runner, in a thread with its own event loop) against the same database.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, insert, select

from app.db import Database
from app.engine import findings
from app.engine.answers import Answers, rules_from
from app.engine.results import ResultRow, insert_results
from app.loader import load_catalog
from app.models import Finding, Mute, Run, RunEvent, RunStatus
from checks.base import Severity, resource
from tests.engine.support import KIND, queue

ENGINE = """\
    id: engine
    name: Engine test
    timezone: Asia/Jakarta
    accounts:
      - {id: quick, name: Quick, account_id: "000000000001", regions: [eu-west-1]}
      - {id: other, name: Other, account_id: "000000000003", regions: [eu-west-1]}
    suppress:
      - check: http
        account: other
        resource: "web-*"
        reason: the web tier is being rebuilt
"""
SECOND = """\
    id: second
    name: Second customer
    accounts:
      - {id: second-prod, name: Second, account_id: "000000000009", regions: [eu-west-1]}
"""
ACCOUNT_IDS = {"quick": "000000000001", "other": "000000000003"}


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


async def mhub(env: dict[str, str], *args: str) -> Result:
    """``mhub findings ARGS``, in-process; its own event loop runs in a thread."""
    from app.cli import findings_group

    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, findings_group, list(args), env=env)


def row(account: str, rid: str, severity: str) -> dict[str, Any]:
    account_id = ACCOUNT_IDS.get(account, "000000000009")
    level = Severity(severity)
    return resource(KIND, account_id, "eu-west-1", rid, "health", level, f"{rid} is {severity}")


def result(run_id: int, account: str, lines: list[tuple[str, str]], **more: Any) -> ResultRow:
    worst = max((Severity(s) for _, s in lines), key=lambda s: s.rank).value
    details = {"resources": [row(account, rid, s) for rid, s in lines]}
    at = datetime.now(UTC)
    return ResultRow(run_id, 1, account, KIND, worst, "x", details, {}, at, at, "test", **more)


async def record(db: Database, results: list[ResultRow]) -> None:
    """Record a run's results and keep their findings, in one transaction (as the writer
    does)."""
    async with db.write() as session:
        await insert_results(session, db, results)
        await findings.keep(session, db, results)


@pytest.fixture
async def seeded(db: Database) -> dict[str, Finding]:
    """Engine's findings, by resource: db-1 (crit) and db-2 (warn) open on quick, web-1 open on
    other (and muted by the YAML), old-1 resolved."""
    first, second = await queue(db, count=2, accounts=("quick", "other"))
    web = [("web-1", "warn")]
    quick = [("db-1", "crit"), ("db-2", "warn"), ("old-1", "warn")]
    await record(db, [result(first, "quick", quick), result(first, "other", web)])
    quick[-1] = ("old-1", "ok")
    await record(db, [result(second, "quick", quick), result(second, "other", web)])
    return await kept(db)


async def kept(db: Database) -> dict[str, Finding]:
    async with db.read() as session:
        rows = (await session.execute(select(Finding).order_by(Finding.id))).scalars().all()
    return {f.resource: f for f in rows if f.customer_id == "engine"}


async def answer_events(db: Database) -> list[RunEvent]:
    async with db.read() as session:
        query = select(RunEvent).where(RunEvent.type == "answer").order_by(RunEvent.id)
        return list((await session.execute(query)).scalars())


async def listed(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = await mhub(env, "engine", "--json", *args)
    assert done.exit_code in (0, 1), done.output
    return done.exit_code, {f["resource"]: f for f in json.loads(done.stdout)["findings"]}


async def test_it_lists_each_finding_with_what_it_is_now(
    env: dict[str, str], seeded: dict[str, Finding]
) -> None:
    code, found = await listed(env)
    assert code == 1  # db-1 and db-2 are open: problems nobody silenced
    assert {name: f["state"] for name, f in found.items()} == {
        "db-1": "open",
        "db-2": "open",
        "web-1": "muted",
        "old-1": "resolved",
    }
    assert found["web-1"]["rule"]["id"] == "yaml:1"
    assert found["web-1"]["reason"] == "the web tier is being rebuilt"
    text = (await mhub(env, "engine")).stdout
    assert text.startswith(
        "Engine test · 🔴 1 critical · 🟠 1 warning · 🔕 1 muted · ✅ 1 resolved"
    )
    assert "🔴 quick · HTTP · db-1 — db-1 is crit  (open " in text
    assert "🔕 muted (YAML) — the web tier is being rebuilt (rule yaml:1)" in text
    assert text.index("db-2") < text.index("web-1") < text.index("old-1")  # problems first
    assert seeded["db-1"].fingerprint in text
    only = await mhub(env, "quick", "--state", "open")  # an account alias, one state
    assert "db-1" in only.stdout and "web-1" not in only.stdout and "old-1" not in only.stdout


async def test_it_acknowledges_a_finding_and_audits_who_did_from_where(
    env: dict[str, str], seeded: dict[str, Finding], db: Database
) -> None:
    fingerprint = seeded["db-1"].fingerprint
    done = await mhub(env, "ack", fingerprint, "--as", "alice")
    assert done.exit_code == 0, done.output
    assert "Acknowledged by alice" in done.stdout and "👀 @alice" in done.stdout
    code, found = await listed(env)
    assert code == 1  # acknowledged is still a problem
    assert (found["db-1"]["state"], found["db-1"]["by"]) == ("acknowledged", "alice")
    [event] = await answer_events(db)
    assert (event.run_id, event.actor) == (None, "alice")
    assert event.data["via"] == "cli" and event.data["action"] == "ack"
    assert event.data["findings"] == [fingerprint] and event.data["customer"] == "engine"


async def test_it_answers_as_the_login_name_when_not_told_who(
    env: dict[str, str], seeded: dict[str, Finding], db: Database
) -> None:
    done = await mhub(env, "ack", seeded["db-2"].fingerprint)
    assert done.exit_code == 0, done.output
    [event] = await answer_events(db)
    assert event.actor.startswith("cli:") and len(event.actor) > len("cli:")


async def test_someone_who_answers_second_is_told_who_answered_first(
    env: dict[str, str], seeded: dict[str, Finding], db: Database
) -> None:
    fingerprint = seeded["db-1"].fingerprint
    assert (await mhub(env, "ack", fingerprint, "--as", "alice")).exit_code == 0
    late = await mhub(env, "ack", fingerprint, "--as", "bob")
    assert late.exit_code == 1
    assert "Someone answered first" in late.stderr and "👀 @alice" in late.stderr
    assert "WIB" in late.stderr  # when, in the customer's time zone
    assert (await kept(db))["db-1"].ack_by == "alice"


async def test_a_snooze_for_a_day_quiets_it_until_the_day_has_passed(
    env: dict[str, str], seeded: dict[str, Finding], db: Database, config_dir: Path
) -> None:
    fingerprint = seeded["db-2"].fingerprint
    before = datetime.now(UTC)
    done = await mhub(
        env, "snooze", fingerprint, "--for", "24h", "--reason", "disk grows", "--as", "bob"
    )
    assert done.exit_code == 0, done.output
    assert "💤 until" in done.stdout and "by @bob — disk grows" in done.stdout
    _, found = await listed(env)
    db2 = found["db-2"]
    assert (db2["state"], db2["by"], db2["reason"]) == ("snoozed", "bob", "disk grows")
    until = datetime.fromisoformat(db2["until"])
    assert before + timedelta(hours=24) <= until <= datetime.now(UTC) + timedelta(hours=24)
    [event] = await answer_events(db)
    assert (event.actor, event.data["action"], event.data["via"]) == ("bob", "snooze", "cli")
    assert event.data["until"] == until.isoformat()

    later = Answers(db, rules_from(load_catalog(config_dir)), clock=lambda: until + timedelta(1))
    rules = await later.rules("engine")
    pairs = await findings.listing(db, "engine", rules, later.clock(), state="open")
    [back] = [findings.finding_json(f, s) for f, s in pairs if f.resource == "db-2"]
    assert (back["state"], back["back"]) == ("open", "snooze ended")


async def test_a_snooze_without_an_end_lasts_until_it_resolves_and_can_be_ended(
    env: dict[str, str], seeded: dict[str, Finding]
) -> None:
    fingerprint = seeded["db-2"].fingerprint
    done = await mhub(env, "snooze", fingerprint, "--reason", "known", "--as", "bob")
    assert done.exit_code == 0 and "💤 until it resolves by @bob" in done.stdout
    _, found = await listed(env)
    assert (found["db-2"]["state"], found["db-2"]["until"]) == ("snoozed", None)
    ended = await mhub(env, "unsnooze", fingerprint, "--as", "bob")
    assert ended.exit_code == 0, ended.output
    _, found = await listed(env)
    assert found["db-2"]["state"] == "open"
    again = await mhub(env, "unsnooze", fingerprint, "--as", "bob")
    assert again.exit_code == 1 and "Not snoozed: it is open" in again.stderr


async def test_a_snooze_until_a_local_time_is_read_in_the_customers_time_zone(
    env: dict[str, str], seeded: dict[str, Finding]
) -> None:
    year = datetime.now(UTC).year + 1
    when = f"{year}-01-02 09:00"
    done = await mhub(env, "snooze", seeded["db-1"].fingerprint, "--until", when, "--reason", "r")
    assert done.exit_code == 0, done.output
    _, found = await listed(env)
    assert found["db-1"]["until"] == f"{year}-01-02T02:00:00+00:00"  # 09:00 WIB is 02:00 UTC


async def test_a_mute_quiets_the_finding_and_exits_zero_once_every_problem_is_quiet(
    env: dict[str, str], seeded: dict[str, Finding], db: Database
) -> None:
    one, two = seeded["db-1"].fingerprint, seeded["db-2"].fingerprint
    assert (await mhub(env, "snooze", two, "--reason", "r", "--as", "bob")).exit_code == 0
    done = await mhub(env, "mute", one, "--reason", "load test", "--for", "7d", "--as", "carol")
    assert done.exit_code == 0, done.output
    assert "with rule 1; it mutes 1 open finding" in done.stdout
    assert "`mhub findings unmute 1`" in done.stdout
    code, found = await listed(env)
    assert code == 0  # nothing open or acknowledged: all quiet
    muted = found["db-1"]
    assert (muted["state"], muted["by"], muted["reason"]) == ("muted", "carol", "load test")
    assert muted["rule"]["origin"] == "slack" and muted["rule"]["resource"] == "db-1"
    assert muted["until"] is not None
    rules = await mhub(env, "engine", "--rules", "--json")
    assert rules.exit_code == 0
    assert [(r["id"], r["origin"]) for r in json.loads(rules.stdout)["rules"]] == [
        ("yaml:1", "yaml"),
        ("1", "slack"),
    ]
    text = (await mhub(env, "engine", "--rules")).stdout
    assert "🔕 yaml:1 · HTTP · other · every region · web-* — the web tier" in text
    assert "🔕 1 · HTTP · quick · eu-west-1 · db-1 — load test" in text
    assert "made from Slack or the CLI by @carol" in text and "in the customer's YAML" in text

    unmuted = await mhub(env, "unmute", one, "--as", "carol")
    assert unmuted.exit_code == 0, unmuted.output
    assert "Unmuted by carol: rule 1" in unmuted.stdout
    code, found = await listed(env)
    assert (code, found["db-1"]["state"]) == (1, "open")
    actions = [(e.actor, e.data["action"], e.data["via"]) for e in await answer_events(db)]
    assert actions == [
        ("bob", "snooze", "cli"),
        ("carol", "mute", "cli"),
        ("carol", "unmute", "cli"),
    ]


async def test_a_mute_can_be_widened_to_every_resource_and_ended_by_its_id(
    env: dict[str, str], seeded: dict[str, Finding], db: Database
) -> None:
    done = await mhub(
        env, "mute", seeded["db-1"].fingerprint, "--all-resources", "--reason", "rebuild"
    )
    assert done.exit_code == 0, done.output
    assert "it mutes 2 open findings" in done.stdout
    async with db.read() as session:
        [rule] = (await session.execute(select(Mute))).scalars()
    assert (rule.account, rule.region, rule.resource) == ("quick", None, "*")
    assert (await listed(env))[0] == 0
    assert (await mhub(env, "unmute", str(rule.id), "--as", "dave")).exit_code == 0
    assert (await listed(env))[0] == 1
    again = await mhub(env, "unmute", str(rule.id), "--as", "erin")
    assert again.exit_code == 1 and f"rule {rule.id} was unmuted by @dave" in again.stderr
    loud = await mhub(env, "unmute", seeded["db-1"].fingerprint)
    assert loud.exit_code == 1 and "Not muted" in loud.stderr


async def test_it_refuses_to_unmute_a_rule_that_lives_in_the_yaml(
    env: dict[str, str], seeded: dict[str, Finding], db: Database
) -> None:
    refused = await mhub(env, "unmute", seeded["web-1"].fingerprint)
    assert refused.exit_code == 2
    assert "yaml:1 in engine's YAML" in refused.stderr and "Remove the rule there" in refused.stderr
    by_id = await mhub(env, "unmute", "yaml:1", "--customer", "engine")
    assert by_id.exit_code == 2 and "Remove it there" in by_id.stderr
    assert (await listed(env))[1]["web-1"]["state"] == "muted"
    assert await answer_events(db) == []


async def another_customer_sees(db: Database, found: Finding) -> None:
    """The same fingerprint, recorded for the customer ``second`` too."""
    targets = [{"account": "second-prod", "check": KIND}]
    async with db.write() as session:
        run_id = await session.scalar(
            insert(Run)
            .values(
                customer_id="second",
                requested_by="test",
                source="cli",
                targets=targets,
                params={},
                status=RunStatus.COMPLETED,
                attempt=1,
                max_attempts=1,
                created_at=datetime.now(UTC),
            )
            .returning(Run.id)
        )
    assert run_id is not None
    line = [(found.resource, found.severity)]
    seen = result(run_id, "second-prod", line, customer_id="second")
    await record(db, [replace(seen, details={"resources": [row("quick", *line[0])]})])


async def test_a_fingerprint_of_several_customers_needs_the_customer(
    env: dict[str, str], seeded: dict[str, Finding], db: Database
) -> None:
    found = seeded["db-1"]
    await another_customer_sees(db, found)
    asked = await mhub(env, "ack", found.fingerprint, "--as", "alice")
    assert asked.exit_code == 2
    assert "a finding of 2 customers: engine, second" in asked.stderr
    assert "--customer ID" in asked.stderr
    assert await answer_events(db) == []
    told = await mhub(env, "ack", found.fingerprint, "--as", "alice", "--customer", "second")
    assert told.exit_code == 0, told.output
    assert (await kept(db))["db-1"].ack_by is None  # engine's is untouched


BAD = [
    pytest.param(["ack", "http:000000000001:eu-west-1:nope:health"], "There is no finding",
                 id="an unknown fingerprint"),
    pytest.param(["ack", "{old-1}"], "resolved since", id="a resolved finding"),
    pytest.param(["snooze", "{db-1}"], "Give a reason", id="no reason"),
    pytest.param(["snooze", "{db-1}", "--reason", "   "], "Give a reason", id="an empty reason"),
    pytest.param(["snooze", "{db-1}", "--reason", "x" * 501], "keep it to 500",
                 id="a reason over 500 characters"),
    pytest.param(["snooze", "{db-1}", "--reason", "r", "--for", "0m"], "out of range",
                 id="for 0m"),
    pytest.param(["snooze", "{db-1}", "--reason", "r", "--for", "99999d"], "out of range",
                 id="for 99999d"),
    pytest.param(["snooze", "{db-1}", "--reason", "r", "--for", "a while"], "not a length",
                 id="for a while"),
    pytest.param(["snooze", "{db-1}", "--reason", "r", "--until", "2001-01-01"], "has passed",
                 id="until a day in the past"),
    pytest.param(["snooze", "{db-1}", "--reason", "r", "--until", "next tuesday"],
                 "is not a date", id="until something unparseable"),
    pytest.param(["snooze", "{db-1}", "--reason", "r", "--for", "1h", "--until", "2099-01-01"],
                 "not both", id="both for and until"),
    pytest.param(["mute", "{db-1}"], "Give a reason", id="a mute without a reason"),
    pytest.param(["mute", "{db-1}", "--reason", "r", "--until", "2001-01-01 09:00"],
                 "has passed", id="a mute until the past"),
    pytest.param(["mute", "{old-1}", "--reason", "r"], "resolved since",
                 id="a mute of a resolved finding"),
    pytest.param(["ack", "{db-1}", "--as", " "], "Give --as a name", id="an empty --as"),
    pytest.param(["unsnooze", "{old-1}"], "resolved since", id="an unsnooze of a resolved one"),
    pytest.param(["ack", "{db-1}", "--customer", "nobody"], "nobody",
                 id="an unknown customer"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "says"), BAD)
async def test_bad_input_says_what_to_do_exits_2_and_changes_nothing(
    env: dict[str, str], seeded: dict[str, Finding], db: Database, args: list[str], says: str
) -> None:
    fingerprints = {f"{{{name}}}": f.fingerprint for name, f in seeded.items()}
    done = await mhub(env, *[fingerprints.get(arg, arg) for arg in args])
    assert done.exit_code == 2, done.output
    assert says in done.stderr and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) <= 2  # short
    after = await kept(db)
    assert [(f.answers, f.ack_by, f.snooze_by) for f in after.values()] == [
        (0, None, None) for _ in after
    ]
    assert await answer_events(db) == []
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Mute)) == 0


async def test_the_help_shows_listing_and_answering() -> None:
    done = await mhub({}, "--help")
    assert done.exit_code == 0
    assert "mhub findings TARGET [--state open|acknowledged|snoozed|muted|resolved]" in done.stdout
    assert "mhub findings ack FINGERPRINT" in done.stdout
    assert all(verb in done.stdout for verb in ("snooze", "unsnooze", "mute", "unmute"))
