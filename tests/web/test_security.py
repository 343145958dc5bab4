"""Read-only methods, HTTP Basic, headers on every response, and the exposure refusal."""

from __future__ import annotations

import base64
import re

import pytest
from aiohttp.test_utils import TestClient

from app.db import Database
from app.errors import HubError
from app.web.security import WebRefused, check_exposure, is_loopback
from tests.web.conftest import start
from tests.web.sample import Estate

PATHS = (
    "/",
    "/runs",
    "/runs/1",
    "/customers/demo",
    "/api/runs",
    "/api/runs/1",
    "/api/version",
    "/readyz",
    "/metrics",
    "/static/hub.css",
    "/healthz",
)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_it_refuses_every_method_but_get_and_head(client: TestClient, method: str) -> None:
    for path in ("/", "/runs/1", "/nowhere", "/healthz", "/runs/1/cancel", "/api/runs/1"):
        response = await client.request(method, path)
        assert response.status == 405, (method, path)
        assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "HEAD"}


async def test_only_an_api_token_may_post_a_run(client: TestClient) -> None:
    """The one write is the API's (docs/api.md): the operator's view cannot start a run."""
    for path in ("/api/runs", "/api/runs/1/cancel", "/api/runs/1/retry"):
        response = await client.post(path, json={"target": "demo"})
        assert response.status == 403, path
        assert response.content_type == "application/problem+json"
        assert "token" in (await response.json())["detail"]


async def test_it_answers_head_like_get_without_a_body(client: TestClient, estate: Estate) -> None:
    for path in ("/", "/runs", f"/runs/{estate.hot}", "/api/runs", "/healthz"):
        response = await client.head(path)
        assert response.status == 200, path
        assert await response.read() == b""


async def test_it_asks_for_a_password_on_every_route_but_healthz(
    db: Database, estate: Estate
) -> None:
    web = await start(db, auth="ops:s3cret:with-colon")
    try:
        for path in PATHS:
            response = await web.get(path)
            if path == "/healthz":
                assert response.status == 200
                continue
            assert response.status == 401, path
            assert response.headers["WWW-Authenticate"] == (
                'Basic realm="Monitoring Hub", charset="UTF-8"'
            )
            wrong = await web.get(path, headers=basic("ops", "guess"))
            assert wrong.status == 401, path
            right = await web.get(path, headers=basic("ops", "s3cret:with-colon"))
            assert right.status == 200, path
        garbled = await web.get("/", headers={"Authorization": "Basic !!!not-base64"})
        assert garbled.status == 401
        post = await web.post("/", headers=basic("ops", "s3cret:with-colon"))
        assert post.status == 405
    finally:
        await web.close()


async def test_it_sets_security_headers_on_every_response(db: Database, estate: Estate) -> None:
    web = await start(db, auth="ops:pw")
    try:
        responses = [await web.get(p, headers=basic("ops", "pw")) for p in PATHS]
        responses += [
            await web.get("/"),
            await web.get("/nowhere", headers=basic("ops", "pw")),
            await web.post("/", headers=basic("ops", "pw")),
            await web.get("/runs?status=x", headers=basic("ops", "pw")),
        ]
        statuses = {r.status for r in responses}
        assert statuses == {200, 401, 404, 405, 400}
        for response in responses:
            headers = response.headers
            csp = headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
            assert "unsafe-inline" not in csp and "script-src 'self'" in csp
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["Cache-Control"] == "no-store"
            assert headers["X-Frame-Options"] == "DENY"
    finally:
        await web.close()


async def test_it_has_no_inline_script_or_style_for_the_csp_to_block(
    client: TestClient, estate: Estate
) -> None:
    for path in ("/", f"/runs/{estate.hot}", "/runs", "/customers/demo"):
        html = await (await client.get(path)).text()
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


def test_it_refuses_to_listen_beyond_loopback_without_a_password() -> None:
    with pytest.raises(WebRefused) as refused:
        check_exposure("0.0.0.0", 8080, None)
    message = str(refused.value)
    assert "0.0.0.0:8080" in message and "without a password" in message
    assert "HUB_WEB_AUTH=user:password" in message and "--no-web" in message
    assert isinstance(refused.value, HubError)
    for host in ("10.0.0.5", "hub.example.com", "", "::"):
        with pytest.raises(WebRefused):
            check_exposure(host, 8080, None)


def test_it_listens_on_loopback_without_a_password_or_anywhere_with_one() -> None:
    for host in ("127.0.0.1", "127.0.1.1", "::1", "localhost", "[::1]"):
        assert is_loopback(host)
        check_exposure(host, 8080, None)
    check_exposure("0.0.0.0", 8080, "ops:pw")


def test_it_refuses_a_malformed_password_setting() -> None:
    for auth in ("justapassword", ":pw", "ops:"):
        with pytest.raises(WebRefused, match="HUB_WEB_AUTH must be user:password"):
            check_exposure("127.0.0.1", 8080, auth)


async def test_it_answers_only_to_known_host_names_without_a_password(
    db: Database, estate: Estate
) -> None:
    open_view = await start(db)
    guarded = await start(db, auth="ops:pw")
    try:
        rebound = await open_view.get("/api/runs", headers={"Host": "attacker.example:8080"})
        assert rebound.status == 421
        assert "HUB_PUBLIC_URL" in (await rebound.json())["detail"]
        assert (await open_view.get("/healthz", headers={"Host": "10.1.2.3"})).status == 200
        for host in ("localhost:8080", "127.0.0.1", "[::1]:8080"):
            assert (await open_view.get("/", headers={"Host": host})).status == 200, host
        behind_password = await guarded.get(
            "/", headers={"Host": "hub.example.com", **basic("ops", "pw")}
        )
        assert behind_password.status == 200
    finally:
        await open_view.close()
        await guarded.close()


async def test_it_answers_to_its_public_name_behind_a_proxy(db: Database) -> None:
    web = await start(db, public_url="https://hub.example.com/")
    try:
        assert (await web.get("/", headers={"Host": "hub.example.com"})).status == 200
        assert (await web.get("/", headers={"Host": "other.example.com"})).status == 421
    finally:
        await web.close()
