"""Customers with schedules, a settable clock, and runs/results as plain values, for the
schedules-and-digests tests. Production code never imports this."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.catalog import Catalog
from app.config import Account, Customer, Schedule, SlackSettings
from app.engine.runs import RunView
from app.models import Result, Run

WIB = ZoneInfo("Asia/Jakarta")
SEVEN_WIB = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)  # Sat 21 Nov 2026, 07:00 in Jakarta


def customer(
    *,
    cron: str = "0 7 * * *",
    timezone: str = "Asia/Jakarta",
    accounts: Sequence[str] = ("arbel", "billing"),
    checks: tuple[str, ...] = ("http",),
    schedules: Sequence[Schedule] | None = None,
) -> Customer:
    return Customer(
        id="aryanoble",
        name="Aryanoble",
        timezone=timezone,
        slack=SlackSettings(channel="C0OPS"),
        accounts=tuple(
            Account(
                id=alias,
                name=alias.title(),
                account_id=f"{index:012d}",
                regions=("ap-southeast-3",),
                checks=checks,
            )
            for index, alias in enumerate(accounts, start=1)
        ),
        schedules=tuple(schedules)
        if schedules is not None
        else (Schedule(name="daily", cron=cron),),
    )


def catalog(**options: Any) -> Catalog:
    return Catalog([customer(**options)])


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# -- runs and results as values (for blocks.digest) ---------------------------------------------


def run(status: str = "completed", outcome: str | None = "ok", **fields: Any) -> Run:
    values: dict[str, Any] = {
        "id": 1842,
        "customer_id": "aryanoble",
        "requested_by": "schedule:daily",
        "channel_id": "C0OPS",
        "source": "schedule",
        "targets": [],
        "params": {"schedule": "daily", "slot": "2026-11-21T00:00:00Z"},
        "status": status,
        "outcome": outcome,
        "attempt": 1,
        "max_attempts": 3,
        "created_at": SEVEN_WIB,
        "started_at": SEVEN_WIB,
        "finished_at": SEVEN_WIB + timedelta(seconds=41),
        "retry_of": None,
        "error": None,
        "cancel_requested_by": None,
    }
    values.update(fields)
    return Run(**values)


def finding(
    kind: str,
    account: str,
    rid: str,
    severity: str,
    summary: str,
    aspect: str = "state",
    **extra: Any,
) -> dict[str, Any]:
    """A resource as checks.base.resource makes it (the fingerprint is what matters)."""
    return {
        "id": rid,
        "region": "ap-southeast-3",
        "fingerprint": f"{kind}:{account}:ap-southeast-3:{rid}:{aspect}",
        "severity": severity,
        "summary": summary,
        **extra,
    }


def result(
    account: str,
    check: str,
    severity: str,
    summary: str = "",
    resources: list[dict[str, Any]] | None = None,
    series: dict[str, list[float]] | None = None,
    **details: Any,
) -> Result:
    return Result(
        run_id=1842,
        account=account,
        check=check,
        severity=severity,
        summary=summary or f"{check} is {severity}",
        details={"resources": resources or [], **details},
        series=series or {},
        attempt=1,
        finished_at=SEVEN_WIB,
    )


def view(results: Sequence[Result], **fields: Any) -> RunView:
    targets = [{"account": r.account, "check": r.check} for r in results]
    return RunView(run(targets=targets, **fields), list(results))
