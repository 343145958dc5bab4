"""Fixtures of the organization tests: an organization planted in moto, and the edge in front
of it for what moto cannot be asked (faults, one account's regions)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.sandbox.edge import Edge
from tests.accounts.support import Org, plant


@pytest.fixture
def org(aws: str) -> Org:
    return plant(aws)


@pytest.fixture
def edge(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Edge]:
    with Edge(aws) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        yield running
