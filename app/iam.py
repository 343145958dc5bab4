"""Least-privilege IAM for the roles the hub assumes, made from what each check kind declares
(:attr:`checks.base.Check.actions`): the monitoring role in each member account and the
organization reader. ``mhub iam policy`` prints these; ``deploy/aws/*.yaml`` grant exactly the
same (a test holds them together, and the declarations to what the checks really call);
docs/iam.md explains them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.config import Customer
from checks.registry import REGISTRY

VERSION = "2012-10-17"
DISCOVERY = ("ec2:DescribeRegions",)
"""Asked in every member account when its customer's accounts come from AWS Organizations:
which of the configured regions the account has enabled."""
ORG_READER = (
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListAccountsForParent",
    "organizations:ListTagsForResource",
)
"""What the organization reader (the management or delegated administrator account) is asked."""

_PREFIXES = {"s3control": "s3"}
"""botocore service names whose IAM prefix differs (S3 Control's actions are ``s3:``)."""
_RENAMED = {
    "budgets:DescribeBudgets": "budgets:ViewBudget",
    "s3control:GetPublicAccessBlock": "s3:GetAccountPublicAccessBlock",
}
"""API calls whose IAM action is not named after the operation."""
_TITLES = {
    "acm": "ACM",
    "ce": "CostExplorer",
    "cloudtrail": "CloudTrail",
    "cloudwatch": "CloudWatch",
    "dynamodb": "DynamoDB",
    "ec2": "EC2",
    "guardduty": "GuardDuty",
    "iam": "IAM",
    "rds": "RDS",
    "s3": "S3",
    "securityhub": "SecurityHub",
}
"""How a statement's Sid spells a service; the rest are title-cased (``Backup``)."""


def action_of(service: str, operation: str) -> str:
    """The IAM action an API call needs, from botocore's service name and the operation:
    ``cloudwatch``, ``GetMetricData`` → ``cloudwatch:GetMetricData`` (CloudWatch signs its
    requests as ``monitoring``, but IAM says ``cloudwatch``); ``s3control``,
    ``GetPublicAccessBlock`` → ``s3:GetAccountPublicAccessBlock``."""
    call = f"{service}:{operation}"
    return _RENAMED.get(call) or f"{_PREFIXES.get(service, service)}:{operation}"


def kinds_of(customers: Iterable[Customer]) -> list[str]:
    """The check kinds the customers' accounts run (those discovered from an organization
    too), in the registry's order."""
    used: set[str] = set()
    for customer in customers:
        used.update(kind for account in customer.accounts for kind in account.checks)
        if customer.organization is not None:
            used.update(customer.organization.defaults.checks)
    return [kind for kind in REGISTRY if kind in used]


def actions_of(kinds: Iterable[str]) -> list[str]:
    """Every action the kinds declare, and :data:`DISCOVERY`: sorted, each once."""
    declared = {action for kind in kinds for action in REGISTRY[kind].actions}
    return sorted(declared | set(DISCOVERY))


def member_policy(kinds: Iterable[str]) -> dict[str, Any]:
    """The monitoring role's permissions policy for accounts that run ``kinds``."""
    return document(actions_of(kinds))


def everything() -> dict[str, Any]:
    """The monitoring role's policy for every check kind: what member-role.yaml grants."""
    return member_policy(REGISTRY)


def org_reader_policy() -> dict[str, Any]:
    """The organization reader's permissions policy."""
    return document(ORG_READER)


def document(actions: Iterable[str]) -> dict[str, Any]:
    """A policy allowing ``actions`` on every resource, one statement per service, sorted.
    ``Resource`` is ``*``: most of these list or describe a whole account and support no
    resource-level permissions, and the role can only ever read its own account."""
    by_service: dict[str, list[str]] = {}
    for action in sorted(set(actions)):
        by_service.setdefault(action.partition(":")[0], []).append(action)
    statements = [
        {"Sid": f"Read{_title(service)}", "Effect": "Allow", "Action": names, "Resource": "*"}
        for service, names in sorted(by_service.items())
    ]
    return {"Version": VERSION, "Statement": statements}


def _title(service: str) -> str:
    return _TITLES.get(service) or "".join(c for c in service.title() if c.isalnum())
