"""The API for automation over real HTTP, on each database: tokens start, cancel and retry
runs of their own customers only; bad input is a problem document and creates nothing; the
same Idempotency-Key gives the same run; a token is rate-limited; every decision is audited;
the OpenAPI document describes every path and the answers match it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import func, select

from app.db import Database
from app.engine.runs import RunService
from app.engine.tokens import Tokens
from app.models import Run, RunEvent
from app.web import create_app
from app.web.limits import per_token
from app.web.metrics import HubMetrics
from app.web.viewer import OPERATOR, VIEWER, Scope, Via, Viewer
from checks import kinds
from tests.web.sample import CATALOG, NOW, Estate

PROBLEM = "application/problem+json"


class Api:
    """A client of the API, with tokens made in the same database."""

    def __init__(self, client: TestClient, tokens: Tokens) -> None:
        self.client = client
        self.tokens = tokens
        self.secrets: dict[str, str] = {}

    async def token(self, name: str, customers: list[str], scope: str = "run") -> str:
        _, secret = await self.tokens.create(name, customers, scope, None, "cli:test")
        self.secrets[name] = secret
        return secret

    async def post(
        self, path: str, body: Any = None, *, token: str | None = "ci", key: str | None = "k1"
    ) -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.secrets[token]}"
        if key is not None:
            headers["Idempotency-Key"] = key
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        sent = data if body is not None else b""
        response = await self.client.post(path, data=sent, headers=headers)
        return response.status, dict(response.headers), await response.json(content_type=None)

    async def get(self, path: str, token: str | None = "ci") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.secrets[token]}"} if token else {}
        response = await self.client.get(path, headers=headers)
        return response.status, await response.json(content_type=None)


@pytest.fixture
async def api(db: Database, estate: Estate) -> AsyncIterator[Api]:
    tokens = Tokens(db, lambda: NOW)
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=CATALOG,
        metrics=HubMetrics(),
        tokens=tokens,
        clock=lambda: NOW,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    made = Api(client, tokens)
    await made.token("ci", ["demo"])
    await made.token("reader", ["demo"], scope="read")
    await made.token("billing-bot", ["billing"])
    yield made
    await client.close()


async def runs(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Run)) or 0)


async def audit(db: Database, actor: str) -> list[dict[str, Any]]:
    """The access decisions recorded for ``actor`` (reads aside), oldest first."""
    async with db.read() as session:
        rows = await session.execute(
            select(RunEvent.run_id, RunEvent.data)
            .where(RunEvent.actor == actor, RunEvent.type == "access")
            .order_by(RunEvent.id)
        )
        return [{"run_id": run_id, **data} for run_id, data in rows]


def is_problem(status: int, headers: dict[str, str], body: Any, expected: int) -> bool:
    return (
        status == expected
        and headers["Content-Type"].startswith(PROBLEM)
        and body["type"] == "about:blank"
        and body["status"] == expected
        and bool(body["title"])
        and bool(body["detail"])
    )


# -- starting runs -----------------------------------------------------------------------------


async def test_a_run_token_starts_a_run_and_is_told_where_to_follow_it(
    api: Api, db: Database
) -> None:
    asked = {"target": "shop-prod", "checks": ["RDS", "alarms"], "window": "12h"}
    status, headers, body = await api.post("/api/runs", asked)
    assert status == 202, body
    assert body["status"] == "queued" and body["customer"] == "demo"
    assert body["checks"] == ["rds", "alarms"] and body["url"] == f"/api/runs/{body['id']}"
    assert headers["Location"] == body["url"] and "Idempotent-Replayed" not in headers
    async with db.read() as session:
        run = await session.get(Run, body["id"])
    assert run is not None and run.requested_by == "token:ci" and run.source == "web"
    assert run.targets == [
        {"account": "shop-prod", "check": "rds"},
        {"account": "shop-prod", "check": "alarms"},
    ]
    assert run.params == {"window_s": 12 * 3600}
    status, shown = await api.get(body["url"])
    assert status == 200 and shown["id"] == body["id"] and shown["requested_by"] == "token:ci"


async def test_a_customer_target_runs_its_accounts_configured_checks(api: Api) -> None:
    status, _, body = await api.post("/api/runs", {"target": "demo"})
    assert status == 202 and body["checks"] == ["backup", "rds", "alarms", "budget"]


async def test_the_same_key_gives_the_same_run_and_starts_no_second(api: Api, db: Database) -> None:
    before = await runs(db)
    asked = {"target": "shop-prod", "checks": ["rds"]}
    first = await api.post("/api/runs", asked, key="nightly-2026-11-21")
    again = await api.post("/api/runs", asked, key="nightly-2026-11-21")
    assert first[0] == again[0] == 202
    assert again[2]["id"] == first[2]["id"] and again[1]["Idempotent-Replayed"] == "true"
    assert again[1]["Location"] == first[1]["Location"]
    assert await runs(db) == before + 1
    other = await api.post("/api/runs", asked, key="nightly-2026-11-22")
    assert other[2]["id"] != first[2]["id"] and await runs(db) == before + 2


async def test_a_key_is_the_tokens_own(api: Api, db: Database) -> None:
    await api.token("ci-2", ["demo"])
    first = await api.post("/api/runs", {"target": "shop-prod"}, key="same")
    second = await api.post("/api/runs", {"target": "shop-prod"}, token="ci-2", key="same")
    assert first[2]["id"] != second[2]["id"] and "Idempotent-Replayed" not in second[1]


async def test_a_key_used_for_another_request_is_refused(api: Api, db: Database) -> None:
    await api.post("/api/runs", {"target": "shop-prod", "checks": ["rds"]}, key="k")
    before = await runs(db)
    status, headers, body = await api.post("/api/runs", {"target": "shop-prod"}, key="k")
    assert is_problem(status, headers, body, 422)
    assert "already used for a different request" in body["detail"]
    assert body["errors"][0]["field"] == "Idempotency-Key" and await runs(db) == before


async def test_a_read_token_may_not_start_a_run(api: Api, db: Database) -> None:
    before = await runs(db)
    status, headers, body = await api.post("/api/runs", {"target": "shop-prod"}, token="reader")
    assert is_problem(status, headers, body, 403)
    assert "scope read" in body["detail"] and "--scope run" in body["detail"]
    assert await runs(db) == before
    [row] = await audit(db, "token:reader")
    assert (row["action"], row["allowed"], row["reason"], row["via"]) == (
        "run",
        False,
        "scope",
        "api",
    )


async def test_a_person_or_the_operator_is_told_to_use_a_token(api: Api, db: Database) -> None:
    before = await runs(db)
    status, headers, body = await api.post("/api/runs", {"target": "shop-prod"}, token=None)
    assert is_problem(status, headers, body, 403) and "Use an API token" in body["detail"]
    assert await runs(db) == before
    [row] = await audit(db, OPERATOR.actor)
    assert (row["action"], row["allowed"], row["reason"]) == ("run", False, "no-token")


@pytest.mark.parametrize("target", ["billing-prod", "billing", "nowhere"])
async def test_a_customer_the_token_cannot_see_reads_as_unknown(
    api: Api, db: Database, target: str
) -> None:
    before = await runs(db)
    status, headers, body = await api.post("/api/runs", {"target": target, "checks": ["rds"]})
    assert is_problem(status, headers, body, 404)
    assert body["detail"] == (
        f'There is no customer or account "{target}" that this token can see. A token sees '
        "the customers it was made for (`mhub token list`)."
    )
    assert await runs(db) == before
    [row] = await audit(db, "token:ci")
    assert row["asked"] == target and row["allowed"] is False and row["via"] == "api"


async def test_suggestions_come_from_the_tokens_customers_only(api: Api) -> None:
    _, _, near_theirs = await api.post("/api/runs", {"target": "billing-prd"})
    assert "Did you mean" not in near_theirs["detail"]
    _, _, near_ours = await api.post("/api/runs", {"target": "shop-prd"})
    assert "Did you mean `shop-prod` (Demo Retail)?" in near_ours["detail"]


BAD = [
    ("not json", b"{target: shop-prod", 400, None, "not JSON"),
    ("nested too deep", b"[" * 100_000, 400, None, "not JSON"),
    ("an array", [], 422, "body", None),
    ("no target", {"checks": ["rds"]}, 422, "target", None),
    ("an extra field", {"target": "shop-prod", "colour": "red"}, 422, "colour", "not a field"),
    ("checks not a list", {"target": "shop-prod", "checks": "rds"}, 422, "checks", None),
    ("an unknown check", {"target": "shop-prod", "checks": ["rds", "dns"]}, 422, "checks.1",
     'no check "dns"'),
    ("a check it does not run", {"target": "billing-prod", "checks": ["backup"]}, 422, "checks",
     "it runs rds, alarms"),
    ("a bad window", {"target": "shop-prod", "window": "12 hours"}, 422, "window",
     "30m, 12h or 7d"),
    ("a window too long", {"target": "shop-prod", "window": "90d"}, 422, "window", "1m to 31d"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "body", "expected", "field", "says"), BAD, ids=[b[0] for b in BAD]
)
async def test_bad_input_is_a_problem_document_and_creates_nothing(
    api: Api, db: Database, what: str, body: Any, expected: int, field: str | None, says: str | None
) -> None:
    token = "billing-bot" if what == "a check it does not run" else "ci"
    before = await runs(db)
    status, headers, answer = await api.post("/api/runs", body, token=token)
    assert is_problem(status, headers, answer, expected), answer
    if says is not None:
        assert says in answer["detail"]
    if field is not None:
        assert field in [e["field"] for e in answer["errors"]]
    assert await runs(db) == before


async def test_an_unknown_check_names_the_allowed_ones(api: Api) -> None:
    _, _, body = await api.post("/api/runs", {"target": "shop-prod", "checks": ["dns"]})
    [error] = body["errors"]
    assert error["allowed"] == list(kinds.NAMES)
    asked = {"target": "billing-prod", "checks": ["backup"]}
    _, _, body = await api.post("/api/runs", asked, token="billing-bot")
    assert body["errors"][0]["allowed"] == ["rds", "alarms"]


@pytest.mark.parametrize("key", [None, "", "x" * 201, "tab\there"])
async def test_a_missing_or_bad_idempotency_key_is_a_400_saying_to_send_one(
    api: Api, db: Database, key: str | None
) -> None:
    before = await runs(db)
    status, headers, body = await api.post("/api/runs", {"target": "shop-prod"}, key=key)
    assert is_problem(status, headers, body, 400)
    assert "Send an Idempotency-Key header" in body["detail"] and await runs(db) == before


async def test_an_unknown_or_revoked_token_is_a_401_problem(api: Api, db: Database) -> None:
    await api.tokens.revoke("ci")
    before = await runs(db)
    status, headers, body = await api.post("/api/runs", {"target": "shop-prod"})
    assert is_problem(status, headers, body, 401) and await runs(db) == before
    response = await api.client.get("/api/runs", headers={"Authorization": "Bearer mhub_nope"})
    assert response.status == 401 and response.content_type == PROBLEM


# -- cancel and retry --------------------------------------------------------------------------


async def test_a_run_token_cancels_a_queued_run_and_again_is_the_same_answer(
    api: Api, db: Database
) -> None:
    _, _, started = await api.post("/api/runs", {"target": "shop-prod"})
    status, headers, body = await api.post(f"/api/runs/{started['id']}/cancel", key=None)
    assert status == 202 and body["status"] == "cancelled" and body["id"] == started["id"]
    assert headers["Location"] == f"/api/runs/{started['id']}"
    again = await api.post(f"/api/runs/{started['id']}/cancel", key=None)
    assert again[0] == 202 and "already cancelled" in again[2]["message"]
    rows = [r for r in await audit(db, "token:ci") if r["action"] == "cancel"]
    assert [(r["run_id"], r["allowed"], r["reason"]) for r in rows] == [
        (started["id"], True, "token"),
        (started["id"], True, "token"),
    ]


async def test_a_running_run_is_asked_to_stop(api: Api, estate: Estate) -> None:
    status, _, body = await api.post(f"/api/runs/{estate.running}/cancel", key=None)
    assert status == 202 and body["status"] == "running" and "Cancelling" in body["message"]


async def test_a_finished_run_cannot_be_cancelled(api: Api, estate: Estate) -> None:
    status, headers, body = await api.post(f"/api/runs/{estate.hot}/cancel", key=None)
    assert is_problem(status, headers, body, 409) and "/retry" in body["detail"]


async def test_a_run_token_retries_a_finished_run_once(
    api: Api, db: Database, estate: Estate
) -> None:
    before = await runs(db)
    status, headers, body = await api.post(f"/api/runs/{estate.failed}/retry", key=None)
    assert status == 202 and body["retry_of"] == estate.failed and body["id"] != estate.failed
    assert body["status"] == "queued" and headers["Location"] == f"/api/runs/{body['id']}"
    again = await api.post(f"/api/runs/{estate.failed}/retry", key=None)
    assert again[2]["id"] == body["id"] and again[1]["Idempotent-Replayed"] == "true"
    assert await runs(db) == before + 1
    async with db.read() as session:
        retry = await session.get(Run, body["id"])
    assert retry is not None and retry.requested_by == "token:ci"
    assert retry.targets == [{"account": "analytics", "check": "backup"}]


async def test_an_unfinished_run_cannot_be_retried(api: Api, estate: Estate) -> None:
    status, headers, body = await api.post(f"/api/runs/{estate.running}/retry", key=None)
    assert is_problem(status, headers, body, 409) and "still running" in body["detail"]


@pytest.mark.parametrize("action", ["cancel", "retry"])
async def test_another_customers_run_reads_as_a_missing_one(
    api: Api, db: Database, estate: Estate, action: str
) -> None:
    before = await runs(db)
    hidden = await api.post(f"/api/runs/{estate.queued}/{action}", key=None)
    missing = await api.post(f"/api/runs/424242/{action}", key=None)
    assert is_problem(*hidden, 404) and is_problem(*missing, 404)
    assert hidden[2]["detail"].replace(str(estate.queued), "N") == missing[2]["detail"].replace(
        "424242", "N"
    )
    assert await runs(db) == before
    async with db.read() as session:
        queued = await session.get(Run, estate.queued)
    assert queued is not None and queued.status == "queued"
    rows = await audit(db, "token:ci")
    assert [(r["action"], r["allowed"], r["asked"]) for r in rows] == [
        (action, False, f"#{estate.queued}"),
        (action, False, "#424242"),
    ]


@pytest.mark.parametrize("action", ["cancel", "retry"])
async def test_a_read_token_may_not_cancel_or_retry(api: Api, estate: Estate, action: str) -> None:
    answer = await api.post(f"/api/runs/{estate.failed}/{action}", token="reader", key=None)
    assert is_problem(*answer, 403)


# -- the audit trail ---------------------------------------------------------------------------


async def test_a_started_run_records_its_grant_first_naming_the_token(
    api: Api, db: Database
) -> None:
    _, _, body = await api.post("/api/runs", {"target": "shop-prod"})
    async with db.read() as session:
        events = (
            await session.execute(
                select(RunEvent.type, RunEvent.actor, RunEvent.data)
                .where(RunEvent.run_id == body["id"])
                .order_by(RunEvent.id)
            )
        ).all()
    kind, actor, data = events[0]
    assert (kind, actor) == ("access", "token:ci")
    assert data["action"] == "run" and data["allowed"] is True and data["reason"] == "token"
    assert data["via"] == "api" and data["customer"] == "demo"
    assert [e.type for e in events[1:]] == ["created"]


# -- the rate limit ----------------------------------------------------------------------------


async def test_a_token_that_asks_too_often_is_told_when_to_come_back(
    api: Api, estate: Estate
) -> None:
    headers = {"Authorization": f"Bearer {api.secrets['ci']}"}
    for _ in range(200):  # a burst of 30, and 2 a second back: a 429 comes long before 200
        response = await api.client.get(f"/api/runs/{estate.hot}", headers=headers)
        if response.status == 429:
            break
        assert response.status == 200
    assert response.status == 429 and response.content_type == PROBLEM
    body = await response.json(content_type=None)
    assert int(response.headers["Retry-After"]) >= 1 and body["retry_after"] >= 1
    assert "120 requests a minute" in body["detail"]
    other = await api.client.get(
        f"/api/runs/{estate.hot}", headers={"Authorization": f"Bearer {api.secrets['reader']}"}
    )
    assert other.status == 200  # another token has its own bucket


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_viewer(token_id: int | None) -> Viewer:
    return Viewer(
        actor=f"token:t{token_id}",
        label="t",
        via=Via.TOKEN if token_id else Via.OPERATOR,
        customers=frozenset({"demo"}),
        scope=Scope.READ,
        token_id=token_id,
    )


async def test_the_bucket_refills_at_the_rate_and_holds_at_most_the_burst() -> None:
    ticks = Ticks()

    @web.middleware
    async def who(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("X-Token")
        request[VIEWER] = token_viewer(int(given) if given else None)
        return await handler(request)

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[who, per_token(rate_per_minute=60, burst=3, clock=ticks)])
    app.router.add_get("/api/x", ok)
    async with TestClient(TestServer(app)) as client:

        async def hit(token: str | None = "1") -> ClientResponse:
            return await client.get("/api/x", headers={"X-Token": token} if token else {})

        assert [(await hit()).status for _ in range(4)] == [200, 200, 200, 429]
        refused = await hit()
        assert refused.headers["Retry-After"] == "1" and refused.content_type == PROBLEM
        assert (await hit("2")).status == 200
        assert [(await hit(None)).status for _ in range(10)] == [200] * 10  # no token: no limit
        ticks.now += 1  # one request back a second
        assert [(await hit()).status for _ in range(2)] == [200, 429]
        ticks.now += 3600  # an hour idle fills the bucket to its burst, no more
        assert [(await hit()).status for _ in range(4)] == [200, 200, 200, 429]


# -- the OpenAPI document ----------------------------------------------------------------------


async def test_the_openapi_document_is_served_without_credentials(db: Database) -> None:
    app = create_app(
        db=db, runs=RunService(db), catalog=CATALOG, metrics=HubMetrics(), auth="ops:secret"
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/openapi.json")
        assert response.status == 200 and response.content_type == "application/json"
        document = json.loads(await response.text())
        assert (await client.get("/api/runs")).status == 401
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)
    text = json.dumps(document)
    for name in ("demo", "Demo Retail", "billing", "shop-prod", "Billing Co"):
        assert name not in text
    api_paths = {
        _openapi_path(resource.canonical)
        for resource in app.router.resources()
        if resource.canonical.startswith("/api/") and resource.canonical != "/api/version"
    }
    assert api_paths == set(document["paths"])
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["paths"]["/api/openapi.json"]["get"]["security"] == []


def _openapi_path(canonical: str) -> str:
    """aiohttp's ``/api/runs/{id:[0-9]{1,15}}`` as OpenAPI writes it: ``/api/runs/{id}``."""
    return re.sub(r"\{(\w+)(?::(?:[^{}]|\{[^{}]*\})*)?\}", r"{\1}", canonical)


async def test_the_answers_match_the_openapi_document(api: Api, estate: Estate) -> None:
    _, document = await api.get("/api/openapi.json", token=None)

    def check(schema: str, body: Any) -> None:
        root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
        Draft202012Validator(root).validate(body)

    check("RunPage", (await api.get("/api/runs"))[1])
    check("RunOut", (await api.get(f"/api/runs/{estate.hot}"))[1])
    check("FindingList", (await api.get("/api/findings?customer=demo"))[1])
    check("BlindSpotList", (await api.get("/api/blind-spots"))[1])
    check("MaintenanceList", (await api.get("/api/maintenance"))[1])
    check("Report", (await api.get("/api/customers/demo/reports/2026-11"))[1])
    started = await api.post("/api/runs", {"target": "shop-prod"})
    check("RunAccepted", started[2])
    for answer in (
        await api.post("/api/runs", {"target": "shop-prod", "checks": ["dns"]}),
        await api.post("/api/runs", {"target": "shop-prod"}, key=None),
        await api.post("/api/runs", {"target": "billing-prod"}),
    ):
        check("Problem", answer[2])
    document_paths = document["paths"]
    assert "post" in document_paths["/api/runs"] and "get" in document_paths["/api/runs"]
