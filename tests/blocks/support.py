"""Runs and results as plain values, for rendering without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.engine.runs import RunView
from app.models import Result, Run

NOW = datetime(2026, 11, 21, 0, 5, tzinfo=UTC)  # 07:05 in Jakarta
WIB = ZoneInfo("Asia/Jakarta")


def run(
    status: str = "running",
    targets: list[tuple[str, str]] | None = None,
    **fields: Any,
) -> Run:
    values: dict[str, Any] = {
        "id": 1842,
        "customer_id": "aryanoble",
        "requested_by": "U0ALICE",
        "channel_id": "C0OPS",
        "source": "slash",
        "targets": [
            {"account": a, "check": c}
            for a, c in (targets or [("arbel", "rds"), ("arbel", "budget"), ("arbel", "backup")])
        ],
        "params": {"window_s": 43200},
        "status": status,
        "outcome": None,
        "attempt": 1,
        "max_attempts": 3,
        "created_at": NOW - timedelta(minutes=2),
        "started_at": NOW - timedelta(minutes=2),
        "finished_at": None if status in ("queued", "running") else NOW,
        "retry_of": None,
        "error": None,
        "cancel_requested_by": None,
    }
    values.update(fields)
    return Run(**values)


def result(
    account: str,
    check: str,
    severity: str,
    summary: str = "",
    resources: list[dict[str, Any]] | None = None,
    series: dict[str, list[float]] | None = None,
) -> Result:
    return Result(
        run_id=1842,
        account=account,
        check=check,
        severity=severity,
        summary=summary or f"{check} is {severity}",
        details={"resources": resources or []},
        series=series or {},
        attempt=1,
        finished_at=NOW,
    )


def view(the_run: Run, *results: Result) -> RunView:
    return RunView(the_run, list(results))


HOT_DB = result(
    "arbel",
    "rds",
    "crit",
    "1 critical, 1 warning",
    [
        {
            "id": "arbel-prod-db",
            "severity": "crit",
            "summary": "CPU max 93 % (crit ≥ 90 %)",
            "series": "arbel-prod-db:cpu",
        },
        {"id": "arbel-staging-db", "severity": "warn", "summary": "free 7.5 GiB (7 %)"},
        {"id": "arbel-quiet-db", "severity": "ok", "summary": "fine"},
    ],
    {"arbel-prod-db:cpu": [40, 45, 50, 60, 70, 85, 93]},
)
BUDGET = result(
    "arbel",
    "budget",
    "warn",
    "actual 78 % of $5,000, forecast 106 %",
    [{"id": "arbel-monthly", "severity": "warn", "summary": "forecast 106 %", "fraction": 0.78}],
)
