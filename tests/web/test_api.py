"""The JSON API and the operations endpoints."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from app.db import Database
from app.engine import findings
from app.engine.runs import RunService, run_json
from app.models import Result
from app.version import current
from app.web.keys import Probe
from app.web.metrics import HubMetrics, RunObserver
from tests.web.conftest import start
from tests.web.sample import NOW, Estate, insert_run, ok


async def test_it_serves_a_run_as_json_in_the_same_shape_as_the_cli(
    db: Database, client: TestClient, estate: Estate
) -> None:
    response = await client.get(f"/api/runs/{estate.hot}")
    assert response.status == 200 and response.content_type == "application/json"
    body = await response.json()
    assert body == run_json(await RunService(db).get(estate.hot))
    assert set(body) == {
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
    assert body["outcome"] == "crit" and len(body["results"]) == 8
    assert set(body["results"][0]) == {"account", "check", "severity", "summary", "details"}


async def test_it_lists_runs_as_json_with_filters_and_cursors(
    db: Database, client: TestClient, estate: Estate
) -> None:
    body = await (await client.get("/api/runs?customer=demo")).json()
    assert [r["id"] for r in body["runs"]] == [
        estate.running,
        estate.hot,
        estate.cancelled,
        estate.failed,
    ]
    runs = RunService(db)
    assert body["runs"][1] == run_json(await runs.get(estate.hot))
    assert body["older"] is None and body["newer"] is None
    for n in range(55):
        await insert_run(
            db,
            "billing",
            [("billing-prod", "rds")],
            outcome="ok",
            created=NOW + timedelta(seconds=n),
            results=[ok("billing-prod", "rds")],
        )
    page = await (await client.get("/api/runs?customer=billing")).json()
    assert len(page["runs"]) == 50 and page["older"] is not None
    rest = await (await client.get(f"/api/runs?customer=billing&before={page['older']}")).json()
    assert len(rest["runs"]) == 7 and rest["older"] is None  # 5 more, the queued one, the ok one


async def test_it_answers_api_errors_as_json(client: TestClient) -> None:
    response = await client.get("/api/runs/424242")
    assert response.status == 404
    assert (await response.json())["detail"] == "There is no run #424242."
    response = await client.get("/api/runs?outcome=purple")
    assert response.status == 400
    assert "Unknown outcome" in (await response.json())["detail"]


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/runs?before=²", 400, '"²" is not a run id.'),
        ("/api/runs?before=１２", 400, '"１２" is not a run id.'),
        ("/api/runs?after=" + "9" * 40, 400, "is not a run id."),
        ("/api/runs?customer=acme%0Ax", 400, '"acme�x" is not a customer id.'),
        ("/api/runs/١٢", 404, None),  # Arabic-Indic digits are no run id: no such page
        ("/api/runs/²", 404, None),
    ],
)
async def test_it_answers_non_ascii_digits_and_trailing_newlines_without_an_error(
    client: TestClient, path: str, status: int, says: str | None
) -> None:
    response = await client.get(path)
    assert response.status == status
    if says is not None:
        assert says in (await response.json())["detail"]


async def test_it_is_alive_without_asking_anything(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and await response.text() == "ok\n"


async def test_it_is_ready_only_when_every_probe_is(db: Database) -> None:
    state: dict[str, str | None] = {"executor": None, "slack": None}

    def probe(name: str) -> Probe:
        async def answer() -> str | None:
            return state[name]

        return answer

    web = await start(db, probes={"executor": probe("executor"), "slack": probe("slack")})
    try:
        response = await web.get("/readyz")
        assert response.status == 200
        assert await response.json() == {
            "ready": True,
            "version": current(),
            "checks": {"executor": "ok", "slack": "ok"},
        }
        state["slack"] = "Slack (Socket Mode) is not connected"
        response = await web.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["ready"] is False
        assert body["checks"]["slack"] == "Slack (Socket Mode) is not connected"
    finally:
        await web.close()


def samples(text: str, name: str) -> dict[str, float]:
    """``{'label="value",…': number}`` for every sample of one metric in the exposition."""
    found = {}
    for match in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        found[match.group(1) or ""] = float(match.group(2))
    return found


async def test_it_exports_runs_queue_and_slack_figures_for_prometheus(
    client: TestClient, estate: Estate, metrics: HubMetrics
) -> None:
    metrics.slack_delivery_failed("update", permanent=False)
    metrics.slack_delivery_failed("update", permanent=False)
    metrics.slack_acked(0.2)
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    assert samples(text, "mhub_runs") == {
        '{status="queued"}': 1,
        '{status="running"}': 1,
        '{status="completed"}': 2,
        '{status="failed"}': 1,
        '{status="cancelled"}': 1,
    }
    assert samples(text, "mhub_run_outcomes") == {'{outcome="crit"}': 1, '{outcome="ok"}': 1}
    assert samples(text, "mhub_queue_depth") == {"": 1}
    assert samples(text, "mhub_oldest_queued_seconds") == {"": 5}
    assert samples(text, "mhub_slack_delivery_failures_total") == {
        '{kind="update",permanent="false"}': 2
    }
    assert samples(text, "mhub_slack_ack_seconds_count") == {"": 1}
    for name in ("mhub_run_duration_seconds", "mhub_check_duration_seconds"):
        assert f"# TYPE {name} histogram" in text


async def test_it_records_run_and_check_durations_when_a_run_ends(
    db: Database, estate: Estate
) -> None:
    metrics = HubMetrics()
    observer = RunObserver(db, metrics)
    observer.changed(estate.hot)
    observer.changed(estate.hot)  # told twice: counted once
    observer.changed(estate.running)  # not finished: nothing yet
    await observer.step()
    text = (await metrics.render(db, datetime.now(UTC))).decode()
    runs = samples(text, "mhub_run_duration_seconds_count")
    assert runs == {'{source="slash",status="completed"}': 1}
    assert samples(text, "mhub_run_duration_seconds_sum") == {
        '{source="slash",status="completed"}': 14
    }
    checks = samples(text, "mhub_check_duration_seconds_count")
    assert checks['{check="rds",severity="crit"}'] == 1
    assert sum(checks.values()) == 8


async def test_it_lists_a_customers_findings_as_json(client: TestClient, db: Database) -> None:
    async with db.read() as session:
        recorded = (await session.execute(select(Result).order_by(Result.run_id))).scalars().all()
    async with db.write() as session:  # as the executor keeps them when it records results
        await findings.keep(session, db, recorded)
    body = await (await client.get("/api/findings?customer=demo&state=open")).json()
    assert body["customer"] == "demo"
    hot = next(f for f in body["findings"] if f["resource"] == "shop-prod-db")
    assert (hot["account"], hot["check"], hot["severity"], hot["state"]) == (
        "shop-prod",
        "rds",
        "crit",
        "open",
    )
    assert hot["fingerprint"] == "rds:111111111111:ap-southeast-3:shop-prod-db:cpu"
    assert body["findings"][0]["severity"] == "crit"  # the worst first
    assert {f["state"] for f in body["findings"]} == {"open"}
    billing = await (await client.get("/api/findings?customer=billing")).json()
    assert billing == {"customer": "billing", "findings": []}


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("", 400, "Say which customer"),
        ("?customer=nosuch", 404, 'There is no customer "nosuch".'),
        (
            "?customer=demo&state=asleep",
            400,
            'Unknown state "asleep". Use one of: open, acknowledged, snoozed, muted, resolved.',
        ),
        ("?customer=de%0Amo", 400, "is not a customer id"),
    ],
)
async def test_it_answers_a_bad_findings_query_with_what_to_ask(
    client: TestClient, query: str, status: int, says: str
) -> None:
    response = await client.get(f"/api/findings{query}")
    assert response.status == status
    assert says in (await response.json())["detail"]
