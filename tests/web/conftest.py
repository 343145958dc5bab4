"""Fixtures for the web view: a planted database and an aiohttp test client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app.catalog import Catalog
from app.db import Database
from app.engine.runs import RunService
from app.web import create_app
from app.web.keys import Probe
from app.web.metrics import HubMetrics
from tests.web.sample import CATALOG, NOW, Estate, plant

ClientFactory = Callable[..., "AsyncIterator[TestClient]"]


@pytest.fixture
async def estate(db: Database) -> Estate:
    return await plant(db)


@pytest.fixture
def metrics() -> HubMetrics:
    return HubMetrics()


async def start(
    db: Database,
    metrics: HubMetrics | None = None,
    auth: str | None = None,
    probes: dict[str, Probe] | None = None,
    public_url: str | None = None,
    catalog: Catalog = CATALOG,
) -> TestClient:
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=catalog,
        metrics=metrics or HubMetrics(),
        auth=auth,
        public_url=public_url,
        probes=probes,
        clock=lambda: NOW,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(db: Database, estate: Estate, metrics: HubMetrics) -> AsyncIterator[TestClient]:
    web = await start(db, metrics)
    yield web
    await web.close()
