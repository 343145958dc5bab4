"""The monitoring role's policy against what each check really calls.

Every check kind that calls AWS runs over the demo estate (moto behind the edge, as `mhub demo`
plants it) in each of the demo's accounts. The edge records every request with the account its
credentials belong to; each operation recorded in a member account, named as IAM names it
(:func:`app.iam.action_of`), must be an action the kind declares (``Check.actions``), and over
the runs every declared action is called at least once: the policy allows what the checks
call and nothing more. The hub's own ``sts:AssumeRole`` is made with the hub's credentials, in
the hub's account: it belongs to the hub principal's policy, not the member role's.

S3 Control sends each request to ``<account id>.<endpoint host>``: boto3 reaches the edge as
its HTTP proxy (as in test_hygiene), so that host is never looked up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from app.config import Customer
from app.iam import ORG_READER, action_of, actions_of
from app.loader import load_catalog
from app.sandbox import moto
from app.sandbox.edge import Edge
from app.sandbox.seed import seed
from app.sandbox.seed_health import pending_maintenance_xml
from checks import hygiene
from checks.aws import AwsClients
from checks.base import Severity
from checks.registry import REGISTRY
from tests.checks.support import run_check

ROOT = Path(__file__).resolve().parents[2]
HUB_ACCOUNT = "123456789012"
"""moto's account for the hub's own (default) credentials."""
MUST_PROTECT_EVERY_TYPE = [
    "arn:aws:rds:*:*:db:*",
    "arn:aws:rds:*:*:cluster:*",
    "arn:aws:ec2:*:*:volume/*",
    "arn:aws:dynamodb:*:*:table/*",
]
VARIANTS: dict[str, list[dict[str, Any]]] = {
    # the demo's own settings, and those that make a kind call everything it may
    "backup": [{"must_protect": MUST_PROTECT_EVERY_TYPE}],
    "health": [{}, {"source": "ec2+rds"}],
    "hygiene": [{"skip": []}],  # the demo skips s3_public_access; the proxy reaches it here
    "security": [{"require_guardduty": True}],
}
AWS_KINDS = [kind for kind, check in REGISTRY.items() if check.actions]


@pytest.fixture(scope="module")
def demo_edge(moto_url: str) -> Iterator[Edge]:
    """The demo estate in moto, behind an edge whose counts the tests read."""
    moto.reset(moto_url)
    with Edge(moto_url) as edge:
        seed(moto_url, edge)
        # moto lacks it: no pending maintenance where the demo seeded none (health: ec2+rds)
        edge.answer(
            "rds", "DescribePendingMaintenanceActions", [{"xml": pending_maintenance_xml([])}]
        )
        yield edge
    moto.reset(moto_url)


@pytest.fixture
def edge(demo_edge: Edge, monkeypatch: pytest.MonkeyPatch) -> Edge:
    """The demo's edge with its counts at zero, as this process's AWS endpoint and proxy."""
    for key, value in moto.FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", demo_edge.url)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, demo_edge.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hygiene, "REPORT_WAITS_S", (0.01, 0.01, 0.01))
    demo_edge.reset_counts()
    return demo_edge


def demo_customer(kind: str, settings: dict[str, Any]) -> Customer:
    demo = load_catalog(ROOT / "configs" / "demo", env=None).customer("demo")
    checks = {**demo.checks, kind: {**demo.checks.get(kind, {}), **settings}}
    return demo.model_copy(update={"checks": checks})


def called(edge: Edge) -> dict[str, set[str]]:
    """Account id → the IAM actions of the requests made with its credentials."""
    found: dict[str, set[str]] = {}
    for row in edge.counts():
        found.setdefault(row["account"], set()).add(action_of(row["service"], row["operation"]))
    return found


@pytest.mark.parametrize("kind", AWS_KINDS)
async def test_it_calls_only_what_its_kind_declares_and_all_of_it(edge: Edge, kind: str) -> None:
    declared = set(REGISTRY[kind].actions)
    seen: set[str] = set()
    for settings in VARIANTS.get(kind, [{}]):
        who = demo_customer(kind, settings)
        for account in who.accounts:
            clients = AwsClients()
            try:
                result = await run_check(clients, who, account.id, kind)
            finally:
                clients.close()
            assert result.severity != Severity.ERROR, (account.id, settings, result.summary)
            calls = called(edge)
            edge.reset_counts()
            made = calls.pop(account.account_id, set())
            assert made <= declared, f"{kind} on {account.id} called {sorted(made - declared)}"
            assert set(calls) <= {HUB_ACCOUNT}, calls  # nothing landed in another account
            assert calls.get(HUB_ACCOUNT, set()) <= {"sts:AssumeRole"}
            seen |= made
    assert seen == declared, f"{kind} declares {sorted(declared - seen)} but never called it"


def test_the_calls_are_named_as_iam_names_them() -> None:
    assert action_of("cloudwatch", "GetMetricData") == "cloudwatch:GetMetricData"
    assert action_of("budgets", "DescribeBudgets") == "budgets:ViewBudget"
    assert action_of("s3control", "GetPublicAccessBlock") == "s3:GetAccountPublicAccessBlock"
    assert action_of("ce", "GetCostAndUsage") == "ce:GetCostAndUsage"
    assert action_of("rds", "DescribeDBInstances") == "rds:DescribeDBInstances"


def test_every_declared_action_is_the_name_of_a_real_api_call() -> None:
    """A typo (``rds:DescribeDbInstances``) would allow nothing; each declared action must be
    what :func:`action_of` makes of some operation in botocore's service models."""
    session = botocore.session.get_session()
    services = session.get_available_services()
    for action in [*actions_of(REGISTRY), *ORG_READER]:
        prefix = action.partition(":")[0]
        names = {
            action_of(service, operation)
            for service in services
            if action_of(service, "") == f"{prefix}:"  # s3control's calls are s3: actions
            for operation in session.get_service_model(service).operation_names
        }
        assert action in names, f"{action} names no API call"
