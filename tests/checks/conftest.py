"""Fixtures for checks that need the sandbox edge (AWS Backup jobs, injected faults)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.sandbox.edge import Edge
from checks.aws import AwsClients


@pytest.fixture(scope="module")
def edge_server(moto_url: str) -> Iterator[Edge]:
    with Edge(moto_url) as edge:
        yield edge


@pytest.fixture
def edge(aws: str, edge_server: Edge, monkeypatch: pytest.MonkeyPatch) -> Edge:
    """The edge, emptied, with this process's AWS_ENDPOINT_URL pointing at it."""
    edge_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", edge_server.url)
    return edge_server


@pytest.fixture
def clients(edge: Edge) -> Iterator[AwsClients]:
    clients = AwsClients()
    yield clients
    clients.close()


@pytest.fixture(autouse=True)
def _no_cost_figures_kept() -> Iterator[None]:
    """The cost check keeps a day's figures per payer in the process: each test starts
    without them, so none reads another's."""
    from checks import cost

    cost.FIGURES.clear()
    yield
    cost.FIGURES.clear()
