"""The findings page and /api/findings, on each database: every standing with who, why and
until; the YAML and Slack rules side by side; bad parameters; what the view does not show;
escaping; and the indexes the reads walk."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select

from app.catalog import Catalog
from app.config import Suppression
from app.db import Database
from app.engine import findings, maintenance
from app.engine.answers import Answers, Rule, standing, yaml_rules
from app.models import Finding, Result
from app.web import standings
from tests.web.conftest import start
from tests.web.sample import BILLING, DEMO, NOW, XSS, plant
from tests.web.test_queries import captured

SCRATCH = Suppression(
    check="rds",
    resource="shop-staging-*",
    reason="staging databases run hot on purpose",
    owner="U0CAROL",
)
SHOP = DEMO.model_copy(update={"suppress": (SCRATCH,)})
CUSTOMERS = Catalog([SHOP, BILLING])
AUDIT = {"source": "test"}


def rules_of(customer_id: str) -> list[Rule]:
    return yaml_rules(CUSTOMERS.customers[customer_id])


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(html: str, group: str) -> str:
    """The visible text of one group of the findings page."""
    found = re.search(rf'<section id="s-{group}".*?</section>', html, re.S)
    assert found is not None, group
    return text_of(found.group(0))


async def add(db: Database, customer: str, resource: str, **values: Any) -> int:
    """A finding row as the executor would have kept it (open, first seen 9 days ago)."""
    check = values.pop("check", "backup")
    account = values.pop("account", "shop-prod")
    row = {
        "customer_id": customer,
        "fingerprint": f"{check}:111111111111:ap-southeast-3:{resource}:job",
        "account": account,
        "region": "ap-southeast-3",
        "check": check,
        "resource": resource,
        "severity": "warn",
        "summary": f"{resource}: 2 jobs failed",
        "status": "open",
        "first_seen_at": NOW - timedelta(days=9),
        "last_seen_at": NOW - timedelta(hours=1),
        "resolved_at": None,
        "last_run_id": 1,
        "looked_run_id": 1,
        "returns": 0,
        "history": "11",
        **values,
    }
    async with db.write() as session:
        return int((await session.execute(insert(Finding).returning(Finding.id), row)).scalar_one())


@dataclass
class Seeded:
    ids: dict[str, int]
    slack_rule: Rule


async def seed(db: Database) -> Seeded:
    """The sample morning's results kept as findings (as the executor keeps them), a few rows
    of the past, and answers given through the Answers service."""
    await plant(db)
    async with db.read() as session:
        recorded = (await session.execute(select(Result).order_by(Result.run_id))).scalars().all()
    async with db.write() as session:
        await findings.keep(session, db, recorded)
    async with db.read() as session:
        kept = {
            (f.check, f.resource): f.id
            for f in await session.scalars(select(Finding).where(Finding.customer_id == "demo"))
        }
    ids = {
        "hot": kept[("rds", "shop-prod-db")],
        "backup": kept[("backup", "shop-prod-db")],
        "budget": kept[("budget", "monthly")],
        "alarm": kept[("alarms", "shop-5xx-rate")],  # resolved by the run still going
        "staging": kept[("rds", "shop-staging-db")],
    }
    ids["old"] = await add(db, "demo", "nightly-etl", history="1101", returns=1)
    ids["forever"] = await add(db, "demo", "archive-vault", severity="crit")
    ids["xss"] = await add(db, "demo", XSS, history="10101")
    ids["latency"] = await add(db, "demo", "shop-5xx-latency", check="alarms")
    ids["gone"] = await add(
        db, "demo", "orders-db", status="resolved", resolved_at=NOW - timedelta(days=2),
        first_seen_at=NOW - timedelta(days=5), history="10",
    )  # fmt: skip
    ids["long_gone"] = await add(
        db, "demo", "legacy-db", status="resolved", resolved_at=NOW - timedelta(days=10),
        history="10",
    )  # fmt: skip
    ids["ghost"] = await add(db, "ghost", "haunted-db")
    answers = Answers(db, rules_of, lambda: NOW)
    await answers.acknowledge("demo", [ids["backup"], ids["old"]], "U0ALICE", AUDIT)
    await answers.snooze(
        "demo", [ids["budget"]], "U0BOB", "waiting for the finance review",
        NOW + timedelta(days=2), AUDIT,
    )  # fmt: skip
    await answers.snooze("demo", [ids["forever"]], "U0BOB", "vault is being replaced", None, AUDIT)
    rule = await answers.mute(
        "demo", check="alarms", account="shop-prod", region=None, resource="shop-5xx-*",
        reason=f"the 5xx alarm is being retuned {XSS}", owner=None,
        until=NOW + timedelta(days=30), by="U0DAVE", audit=AUDIT,
    )  # fmt: skip
    return Seeded(ids, rule)


@pytest.fixture
async def seeded(db: Database) -> Seeded:
    return await seed(db)


@pytest.fixture
async def web(db: Database, seeded: Seeded) -> AsyncIterator[TestClient]:
    client = await start(db, catalog=CUSTOMERS)
    yield client
    await client.close()


async def test_it_groups_a_customers_findings_by_standing_with_who_why_and_until(
    web: TestClient,
) -> None:
    response = await web.get("/customers/demo/findings")
    assert response.status == 200
    html = await response.text()
    assert "🔴 2 critical" in text_of(html) and "👀 2 acknowledged" in text_of(html)
    opened = section(html, "open")
    assert "🔴 shop-prod · RDS · shop-prod-db — CPU max 93 % (crit ≥ 90 %)" in opened
    assert "(crit ≥ 90 %) open 2 min · last seen by #" in opened  # seen twice: not new
    assert "🔴 shop-prod · Backup · shop-prod-db" in opened
    assert "open 2 min · 🆕 new · 👀 acknowledged by @U0ALICE 07:05 WIB" in opened
    assert "rds:111111111111:ap-southeast-3:shop-prod-db:cpu" in opened
    assert "nightly-etl" in opened and "open 9 d · ↩️ came back" in opened
    assert "🔁 flapping" in opened
    snoozed = section(html, "snoozed")
    assert (
        "💤 snoozed by @U0BOB until Mon 23 Nov 07:05 WIB — waiting for the finance review"
        in snoozed
    )
    assert "💤 snoozed by @U0BOB until it resolves — vault is being replaced" in snoozed
    assert "archive-vault" in snoozed and "archive-vault" not in opened
    muted = section(html, "muted")
    assert "🔕 muted by @U0CAROL (YAML rule yaml:1) — staging databases run hot" in muted
    assert "🔕 muted by @U0DAVE (Slack rule" in muted and "until Mon 21 Dec 07:05 WIB" in muted
    resolved = section(html, "resolved")
    assert "✅ shop-prod · Backup · orders-db" in resolved
    assert "was open 3 d · resolved Thu 19 Nov 07:05 WIB" in resolved
    assert "legacy-db" not in html  # resolved 10 days ago: not recently
    assert "haunted-db" not in html  # another customer's


async def test_it_lists_the_yaml_and_the_slack_rules_side_by_side(
    web: TestClient, seeded: Seeded
) -> None:
    html = await (await web.get("/customers/demo/findings")).text()
    rules = re.findall(r'<li class="rule origin-(\w+)"[^>]*>(.*?)</li>', html, re.S)
    assert [origin for origin, _ in rules] == ["yaml", "slack"]
    yaml, slack = (text_of(body) for _, body in rules)
    assert yaml.startswith("YAML yaml:1 RDS · every account · every region · shop-staging-*")
    assert "staging databases run hot on purpose" in yaml and "@U0CAROL" in yaml
    assert "no end" in yaml and "mutes 1 open" in yaml
    key = seeded.slack_rule.key
    assert slack.startswith(f"Slack {key} Alarms · shop-prod · every region · shop-5xx-*")
    assert "@U0DAVE" in slack and "until Mon 21 Dec 07:05 WIB" in slack
    assert "mutes 1 open" in slack


async def test_it_answers_each_state_as_json_with_who_why_and_until(
    web: TestClient, seeded: Seeded
) -> None:
    async def states(query: str = "") -> dict[str, dict[str, Any]]:
        response = await web.get(f"/api/findings?customer=demo{query}")
        assert response.status == 200
        body = await response.json()
        assert body["customer"] == "demo"
        return {f["resource"]: f for f in body["findings"]}

    every = await states()
    ids = seeded.ids
    assert next(iter(every)) == "shop-prod-db"  # open first, the worst first
    assert {f["state"] for f in every.values()} == set(standings.GROUPS) | {"acknowledged"}
    acked = (await states("&state=acknowledged"))["nightly-etl"]
    assert (acked["state"], acked["by"], acked["at"]) == (
        "acknowledged",
        "U0ALICE",
        NOW.isoformat(),
    )
    snoozed = await states("&state=snoozed")
    assert set(snoozed) == {"monthly", "archive-vault"}
    budget = snoozed["monthly"]
    assert (budget["by"], budget["reason"]) == ("U0BOB", "waiting for the finance review")
    assert budget["until"] == (NOW + timedelta(days=2)).isoformat()
    assert snoozed["archive-vault"]["until"] is None  # until it resolves
    muted = await states("&state=muted")
    assert set(muted) == {"shop-staging-db", "shop-5xx-latency"}
    assert muted["shop-staging-db"]["rule"]["origin"] == "yaml"
    assert muted["shop-staging-db"]["by"] == "U0CAROL"
    assert muted["shop-5xx-latency"]["rule"]["origin"] == "slack"
    assert muted["shop-5xx-latency"]["until"] == (NOW + timedelta(days=30)).isoformat()
    opened = await states("&state=open")
    assert set(opened) == {"shop-prod-db", XSS}
    assert "by" not in opened["shop-prod-db"] and opened["shop-prod-db"]["change"] is None
    assert opened[XSS]["change"] == "flapping"
    resolved = await states("&state=resolved")
    assert list(resolved) == ["shop-5xx-rate", "orders-db", "legacy-db"]  # the latest first
    assert every["orders-db"]["id"] == ids["gone"]


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/findings", 400, "Say which customer"),
        ("/api/findings?customer=demo&state=asleep", 400, 'Unknown state "asleep". Use one of'),
        ("/api/findings?customer=de%0Amo", 400, "is not a customer id"),
        ("/api/findings?customer=nosuch", 404, 'There is no customer "nosuch".'),
        ("/customers/demo/findings?group=asleep", 400, 'Unknown group "asleep". Use one of'),
        ("/customers/nosuch/findings", 404, 'There is no customer "nosuch".'),
    ],
)
async def test_it_answers_bad_parameters_with_what_to_ask(
    web: TestClient, path: str, status: int, says: str
) -> None:
    response = await web.get(path)
    assert response.status == status
    if path.startswith("/api/"):
        assert says in (await response.json())["detail"]
    else:
        assert says in text_of(await response.text())


async def test_it_shows_no_customer_the_view_does_not_know(
    db: Database, seeded: Seeded, web: TestClient
) -> None:
    # "ghost" has findings in the database but is not configured: the view shows configured
    # customers only, the same rule as /customers/{id} and /api/findings.
    for path in ("/customers/ghost/findings", "/api/findings?customer=ghost"):
        response = await web.get(path)
        assert response.status == 404
        assert "haunted-db" not in await response.text()
    guarded = await start(db, auth="ops:s3cret", catalog=CUSTOMERS)
    try:
        for path in ("/customers/demo/findings", "/api/findings?customer=demo"):
            assert (await guarded.get(path)).status == 401
            ok = await guarded.get(path, headers={"Authorization": "Basic b3BzOnMzY3JldA=="})
            assert ok.status == 200
        assert (await guarded.post("/customers/demo/findings")).status == 405
    finally:
        await guarded.close()


async def test_it_escapes_a_resource_named_like_a_script(web: TestClient) -> None:
    html = await (await web.get("/customers/demo/findings")).text()
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert XSS in section(html, "open") and XSS in section(html, "rules")
    body = await (await web.get("/api/findings?customer=demo")).json()
    assert XSS in {f["resource"] for f in body["findings"]}


async def test_it_lists_one_group_whole_and_links_to_it(
    web: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(standings, "SHOWN", {**standings.SHOWN, "open": 2})
    html = await (await web.get("/customers/demo/findings")).text()
    assert "The first 2 of 4 · all open →" in text_of(html)
    assert 'href="/customers/demo/findings?group=open"' in html
    alone = await (await web.get("/customers/demo/findings?group=open")).text()
    assert len(re.findall(r'<li class="finding ', alone)) == 4
    assert 'id="s-snoozed"' not in alone and "← every group" in text_of(alone)


async def test_it_links_to_the_findings_from_where_a_customer_is_shown(web: TestClient) -> None:
    for path in ("/customers/demo", "/"):
        html = await (await web.get(path)).text()
        assert 'href="/customers/demo/findings"' in html, path


async def test_it_sorts_findings_into_the_standings_the_engine_gives(db: Database) -> None:
    """The page's shortcuts (rules held to their check, account and region; unanswered
    findings no rule can match are open) give exactly what ``standing`` gives with every rule."""
    rng = random.Random(5)
    answers = Answers(db, rules_of, lambda: NOW)
    ids = []
    for n in range(300):
        resource = rng.choice(("shop-staging-db", "shop-5xx-rate", "etl", f"x{n}"))
        check = rng.choice(("rds", "alarms", "backup"))
        account = rng.choice(("shop-prod", "shop-staging"))
        severity = rng.choice(("warn", "crit"))
        seen = NOW - timedelta(minutes=rng.randrange(10_000))
        fingerprint = f"{check}:{account}:{resource}:{n}"
        ids.append(
            await add(
                db,
                "demo",
                resource,
                check=check,
                account=account,
                severity=severity,
                last_seen_at=seen,
                fingerprint=fingerprint,
            )
        )
    await answers.acknowledge("demo", rng.sample(ids, 60), "U0ALICE", AUDIT)
    for until in (None, NOW + timedelta(hours=3)):
        await answers.snooze("demo", rng.sample(ids, 40), "U0BOB", "later", until, AUDIT)
    for resource in ("shop-5xx-*", "x1*", "*etl*"):
        await answers.mute(
            "demo", check=rng.choice(("alarms", "backup")), account=None, region=None,
            resource=resource, reason="noise", owner=None, until=None, by="U0DAVE", audit=AUDIT,
        )  # fmt: skip
    rules = await answers.rules("demo")
    board = await standings.board(db, "demo", rules, NOW)
    async with db.read() as session:
        rows = list(
            await session.scalars(
                select(Finding).where(Finding.customer_id == "demo", Finding.status == "open")
            )
        )
    expected = {f.id: standing(f, rules, NOW) for f in rows}
    counts = {state: 0 for state in ("open", "acknowledged", "snoozed", "muted")}
    for s in expected.values():
        counts[s.state] += 1
    assert {k: board.counts[k] for k in counts} == counts
    assert counts["muted"] and counts["snoozed"] and counts["acknowledged"] and counts["open"]
    for state in ("open", "acknowledged", "snoozed", "muted"):
        listed = await standings.listing(db, "demo", rules, NOW, state)
        assert {line.id for line, _ in listed} == {
            i for i, s in expected.items() if s.state == state
        }
        assert all(s == expected[line.id] for line, s in listed)
    every = await standings.listing(db, "demo", rules, NOW, limit=50)
    worst = sorted(rows, key=lambda f: (f.severity, -f.last_seen_at.timestamp(), f.id))[:50]
    assert [line.id for line, _ in every] == [f.id for f in worst]


async def test_it_reads_findings_through_indexes(db: Database, seeded: Seeded) -> None:
    if not db.is_sqlite:
        pytest.skip("the plans are checked on SQLite (bench/findings_page.py --explain: both)")
    rules = await Answers(db, rules_of, lambda: NOW).rules("demo")
    with captured(db) as statements:
        await standings.board(db, "demo", rules, NOW)
        for state in (None, "snoozed", "resolved"):
            await standings.listing(db, "demo", rules, NOW, state)
    assert len(statements) >= 6
    async with db.reader.connect() as conn:
        for sql, params in statements:
            plan = " / ".join(
                row[-1] for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
            assert "SCAN findings" not in plan, (sql, plan)
            assert re.search(
                r"SEARCH findings USING (COVERING )?INDEX ix_findings_|INTEGER PRIMARY KEY", plan
            ), (sql, plan)
            if "resolved_at DESC" in sql:
                assert "ix_findings_resolved" in plan and "TEMP B-TREE" not in plan, (sql, plan)


async def test_a_finding_in_a_maintenance_window_is_labelled_and_not_listed_as_open(
    db: Database, seeded: Seeded
) -> None:
    await maintenance.start(
        db, "demo", name="RDS upgrades", accounts=["shop-prod"], checks=["rds"],
        starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1),
        reason="engine patching", by="U0ERIN", audit=AUDIT,
    )  # fmt: skip
    client = await start(db, catalog=CUSTOMERS)
    try:
        html = await (await client.get("/customers/demo/findings")).text()
    finally:
        await client.close()
    assert "🛠️ 1 during maintenance" in text_of(html)
    assert "shop-prod-db — CPU" not in section(html, "open")
    quiet = section(html, "snoozed")
    assert "🔴 shop-prod · RDS · shop-prod-db" in quiet
    assert "🛠️ during maintenance (RDS upgrades) until 08:05 WIB — engine patching" in quiet
    rules = re.findall(r'<li class="rule origin-(\w+)"', html)
    assert rules == ["yaml", "slack"]  # a window is not a mute rule
