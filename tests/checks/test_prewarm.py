"""A serving hub builds its AWS clients and assumes its roles before the first sweep: the
sweep then makes no AssumeRole call and builds no client, and a role that cannot be assumed
is in the log from the start."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import pytest

from app.catalog import Catalog
from app.engine.prewarm import keep_aws_ready
from app.sandbox.edge import Edge
from checks.aws import AwsClients
from checks.base import Severity
from checks.registry import REGISTRY
from tests.checks.support import (
    ARBEL,
    BILLING,
    account,
    customer,
    grant,
    hub_principal,
    iam_enforced,
    role_arn,
    run_check,
)


class _Warmed(logging.Handler):
    """Sees the warm-up's first round end (its "clients built" line)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.done = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "clients built and" in record.getMessage():
            self.done.set()


async def ready(catalog: Catalog, clients: AwsClients, rounds: int = 1) -> None:
    """``keep_aws_ready`` until its first round is done (however busy the machine: waiting a
    fixed time made this flaky), ``rounds - 1`` more rounds, then stopped."""
    stop = asyncio.Event()
    warmed = _Warmed()
    logger = logging.getLogger("app.engine.prewarm")
    level = logger.level
    logger.addHandler(warmed)
    logger.setLevel(min(level or logging.INFO, logging.INFO))
    task = asyncio.create_task(keep_aws_ready(catalog, clients, stop, every_s=0.05))
    try:
        for _ in range(600):
            if warmed.done.is_set() or task.done():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05 * rounds + 0.2)
    finally:
        stop.set()
        logger.removeHandler(warmed)
        logger.setLevel(level)
    await asyncio.wait_for(task, 10)


SETTINGS: dict[str, dict[str, Any]] = {
    "cost": {"payer": "arbel"},
    # S3 Control puts the account id in front of the endpoint's host, which the emulator
    # cannot take (tests/checks/test_hygiene.py reaches it through the edge as a proxy).
    "hygiene": {"skip": ["s3_public_access"]},
}
"""A kind's settings when it needs some to look at all."""
SEEDED: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "health": [("health", "DescribeEvents", {"events": []})],
    "cost": [("ce", "GetAnomalies", {"Anomalies": []})],
}
"""What the edge answers for a kind's calls moto does not implement."""


@pytest.mark.parametrize(
    ("kind", "clients_built"),
    [
        ("rds", 4),
        ("alarms", 2),
        ("budget", 1),
        ("backup", 8),
        ("health", 5),  # Health once (us-east-1); EC2 and RDS per region for its fallback
        ("certs", 3),  # and us-east-1, where CloudFront's certificates live
        ("security", 4),
        ("cost", 1),
        ("hygiene", 5),  # IAM, CloudTrail, S3 Control once; Config per region
    ],
)
async def test_the_first_sweep_after_start_builds_no_client_and_assumes_no_role(
    edge: Edge, clients: AwsClients, kind: str, clients_built: int
) -> None:
    arbel = account("arbel", ARBEL, regions=("eu-west-1", "eu-central-1"))
    settings = {kind: SETTINGS[kind]} if kind in SETTINGS else None
    who = customer(arbel.model_copy(update={"checks": (kind,)}), checks=settings)
    for service, operation, body in SEEDED.get(kind, []):
        edge.answer(service, operation, [{"json": body}])

    await ready(Catalog([who]), clients)
    assert clients.built == clients_built  # per region; AWS Budgets once (global)
    assert edge.calls("AssumeRole") == 1
    edge.reset_counts()

    result = await run_check(clients, who, "arbel", kind)

    assert result.severity != Severity.ERROR, result.summary
    assert clients.built == clients_built  # every client the check used was built ahead
    assert edge.calls("AssumeRole") == 0
    assert edge.calls() > 0


async def test_a_role_that_cannot_be_assumed_is_logged_once_with_the_fix(
    aws: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    grant(aws, ARBEL, ["rds:DescribeDBInstances"])
    grant(aws, BILLING, ["rds:DescribeDBInstances"])
    for key, value in hub_principal(aws, may_assume=[role_arn(ARBEL)]).items():
        monkeypatch.setenv(key, value)
    who = customer(
        account("arbel", ARBEL).model_copy(update={"checks": ("rds",)}),
        account("billing", BILLING).model_copy(update={"checks": ("rds",)}),
    )
    clients = AwsClients()
    caplog.set_level(logging.INFO)
    try:
        with iam_enforced(aws):
            await ready(Catalog([who]), clients, rounds=4)
    finally:
        clients.close()

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"AWS: billing ({BILLING}): cannot assume {role_arn(BILLING)}")
    assert "trust policy" in warnings[0]
    assert "AWS: 2 clients built and 1 roles assumed" in caplog.text  # shared by both


async def test_nothing_is_built_for_checks_that_do_not_use_aws(clients: AwsClients) -> None:
    site = account("site", ARBEL).model_copy(update={"checks": ("http",)})
    assert REGISTRY["http"].clients(site) == []
    await ready(Catalog([customer(site)]), clients)
    assert clients.built == 0


async def test_stopping_does_not_wait_for_an_aws_endpoint_that_never_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    who = customer(account("arbel", ARBEL).model_copy(update={"checks": ("rds",)}))
    clients = AwsClients()
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(keep_aws_ready(Catalog([who]), clients, stop))
        await asyncio.sleep(1.0)  # AssumeRole is now waiting on the silent endpoint (20 s)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 2)  # SIGTERM → the hub stops at once, not in 80 s
    finally:
        clients.close()
        silent.close()
