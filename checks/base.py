"""What every check shares: severities, results, and the context a check runs in. Why a check
could not look is :mod:`checks.errors`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from app.config import Account, Customer
from checks.aws import AwsClients


class Severity(StrEnum):
    OK = "ok"
    WARN = "warn"
    CRIT = "crit"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def worst(cls, severities: Sequence[Severity | str]) -> Severity:
        """The most urgent severity; ``ok`` for an empty list."""
        values = [cls(s) for s in severities]
        return max(values, key=lambda s: s.rank, default=cls.OK)


# crit outranks error: a finding we are sure of matters more than one we could not look for.
_RANK = {Severity.SKIPPED: 0, Severity.OK: 1, Severity.WARN: 2, Severity.ERROR: 3, Severity.CRIT: 4}


def resource(
    kind: str,
    account_id: str,
    region: str,
    rid: str,
    aspect: str,
    severity: Severity,
    summary: str,
    **extra: Any,
) -> dict[str, Any]:
    """One finding about one resource, in the shape every renderer understands.

    ``fingerprint`` is stable across runs (kind, account, region, resource, aspect), so a digest
    can tell new problems from old ones. Optional extras the renderers use: ``series`` (a key
    into the result's series, drawn as a sparkline), ``fraction`` (drawn as a bar).
    """
    return {
        "id": rid,
        "region": region,
        "fingerprint": f"{kind}:{account_id}:{region}:{rid}:{aspect}",
        "severity": severity.value,
        "summary": summary,
        **extra,
    }


@dataclass(frozen=True)
class CheckResult:
    """One result per account × check.

    ``details["resources"]`` lists findings built with :func:`resource`, problems first;
    other keys are check-specific (counts, thresholds). ``series`` maps a name to a list of
    floats, oldest first.
    """

    severity: Severity
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    series: Mapping[str, Sequence[float]] = field(default_factory=dict)


class CheckSettings(BaseModel):
    """Base of every check's settings model: frozen, unknown keys are errors, and so are numbers
    that are not finite (a ``nan`` threshold is never crossed: it would turn alerting off)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True)
class CheckContext:
    customer: Customer
    account: Account
    window: timedelta
    settings: CheckSettings
    aws: AwsClients
    now: datetime

    @property
    def since(self) -> datetime:
        return self.now - self.window

    async def call(self, region: str, service: str, method: str, **kwargs: Any) -> Any:
        return await self.aws.call(self.account, region, service, method, **kwargs)

    async def paginate(
        self, region: str, service: str, method: str, key: str, **kwargs: Any
    ) -> list[Any]:
        return await self.aws.paginate(self.account, region, service, method, key, **kwargs)


class Check:
    """A check kind: subclass, set ``kind``, ``Settings``, ``services`` and ``actions``,
    implement ``run``."""

    kind: ClassVar[str]
    Settings: ClassVar[type[CheckSettings]] = CheckSettings
    services: ClassVar[tuple[str, ...]] = ()
    """The AWS services ``run`` calls in each of the account's regions."""
    actions: ClassVar[tuple[str, ...]] = ()
    """Every IAM action ``run`` may need in the monitored account, as IAM spells it
    (``rds:DescribeDBInstances``), whatever the settings: the monitoring role's policy is made
    from these (``app.iam``, ``mhub iam policy``, ``deploy/aws/member-role.yaml``), and a test
    holds them to what the check really calls."""

    def clients(self, account: Account) -> list[tuple[str, str]]:
        """The (region, service) clients ``run`` uses for ``account``; ``mhub serve`` builds
        them when it starts, so the first sweep does not."""
        return [(region, service) for region in account.regions for service in self.services]

    async def run(self, ctx: CheckContext) -> CheckResult:
        raise NotImplementedError
