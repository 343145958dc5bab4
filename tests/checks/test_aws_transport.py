"""How the hub's AWS calls travel: connection pools as large as the threads that share them,
AssumeRole through the account's region's own STS endpoint, and one retry layer, so a
throttled call costs at most ``max_attempts`` requests in all."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from app.catalog import Catalog
from app.db import Database
from app.engine.checking import CheckRunner
from app.engine.executor import Executor
from app.engine.retry import RetryPolicy
from app.engine.runs import RunService, Submit
from app.models import RunStatus, Source
from app.sandbox.edge import Edge
from checks.aws import AwsClients, AwsOptions
from checks.base import Severity
from checks.registry import REGISTRY
from tests.checks.support import ARBEL, account, customer

QUICK = RetryPolicy(max_tries=3, base_s=0.01, cap_s=0.05)


async def test_a_50_account_run_never_discards_a_pooled_connection(
    edge: Edge, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    accounts = [
        account(f"acct-{n:02d}", str(400_000_000_000 + n)).model_copy(
            update={"checks": ("backup", "rds", "alarms")}
        )
        for n in range(50)
    ]
    catalog = Catalog([customer(*accounts)])
    edge.inject(latency_ms=50)  # calls overlap, as they do against AWS
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    runs = RunService(db)
    run, _ = await runs.submit(Submit(catalog.plan("aryanoble"), "U0TEST", Source.CLI))
    clients = AwsClients()
    try:
        await Executor(db, catalog, REGISTRY, clients).run_until_done(run.id)
    finally:
        clients.close()

    view = await runs.get(run.id)
    assert view.run.status == RunStatus.COMPLETED
    assert len(view.results) == 150
    assert [r.summary for r in view.results if r.severity == Severity.ERROR] == []
    assert edge.calls("AssumeRole") == 50
    assert "Connection pool is full" not in caplog.text


async def test_a_call_throttled_without_end_makes_max_attempts_requests_in_all(
    edge: Edge,
) -> None:
    edge.inject(error="throttling", operations=["ListBackupJobs"])
    who = customer(account("arbel", ARBEL).model_copy(update={"checks": ("backup",)}))
    clients = AwsClients(AwsOptions(max_attempts=4))
    try:
        result = await CheckRunner(REGISTRY, clients, retry=QUICK).run(
            who, "arbel", "backup", run_id=1
        )
    finally:
        clients.close()

    assert result.severity == Severity.ERROR
    assert result.details["reason"] == "throttled"
    assert "(4 requests)" in result.summary
    assert edge.calls("ListBackupJobs") == 4  # not 4 × the check's 3 tries


async def test_a_throttled_assume_role_makes_max_attempts_requests_in_all(edge: Edge) -> None:
    edge.inject(error="throttling", operations=["AssumeRole"])
    who = customer(account("arbel", ARBEL).model_copy(update={"checks": ("alarms",)}))
    clients = AwsClients(AwsOptions(max_attempts=3))
    try:
        result = await CheckRunner(REGISTRY, clients, retry=QUICK).run(
            who, "arbel", "alarms", run_id=1
        )
    finally:
        clients.close()

    assert result.severity == Severity.ERROR
    assert edge.calls("AssumeRole") == 3
    assert edge.calls("DescribeAlarms") == 0


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """An HTTPS proxy that writes down where each connection was going and refuses it; this
    process's AWS calls go through it to the real endpoints' names, with no
    ``AWS_ENDPOINT_URL`` and a config that asks for the global STS endpoint."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(4096).decode(errors="replace")
                seen.append(" ".join(request.split()[:2]))  # CONNECT host:port
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_PROFILE", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy")  # botocore: global for these
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.getsockname()[1]}")
    yield seen
    server.close()


def test_it_assumes_each_role_at_its_accounts_regional_sts_endpoint(proxy: list[str]) -> None:
    clients = AwsClients(AwsOptions(max_attempts=1, connect_timeout_s=2))
    accounts = [
        account("ireland", "111111111111", regions=("eu-west-1",)),
        account("virginia", "222222222222", regions=("us-east-1", "eu-west-1")),
    ]
    try:
        problems = clients.refresh(accounts)
    finally:
        clients.close()

    assert sorted(problems) == ["ireland", "virginia"]  # the proxy let nothing through
    assert sorted(proxy) == [
        "CONNECT sts.eu-west-1.amazonaws.com:443",
        "CONNECT sts.us-east-1.amazonaws.com:443",  # legacy: sts.amazonaws.com
    ]
