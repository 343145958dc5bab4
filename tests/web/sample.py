"""A realistic estate for the web tests: two customers, runs in every state, results shaped
exactly like the checks' own (resources, series, thresholds), and their timelines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from app.catalog import Catalog
from app.config import Account, Customer, Schedule, SlackSettings
from app.db import Database
from app.models import Result, Run, RunEvent

NOW = datetime(2026, 11, 21, 0, 5, tzinfo=UTC)  # 07:05 WIB
XSS = "<script>alert(1)</script>"

DEMO = Customer(
    id="demo",
    name="Demo Retail",
    timezone="Asia/Jakarta",
    slack=SlackSettings(channel="C0DEMO0001"),
    accounts=(
        Account(
            id="shop-prod",
            name="Shop Production",
            account_id="111111111111",
            regions=("ap-southeast-3",),
            checks=("backup", "rds", "alarms", "budget"),
            role_arn="arn:aws:iam::111111111111:role/MonitoringReadOnly",
            external_id="demo-monitoring",
        ),
        Account(
            id="shop-staging",
            name="Shop Staging",
            account_id="222222222222",
            regions=("ap-southeast-3",),
            checks=("rds", "budget"),
        ),
        Account(
            id="analytics",
            name="Analytics",
            account_id="333333333333",
            regions=("ap-southeast-3", "us-east-1"),
            checks=("backup", "rds"),
        ),
    ),
    checks={"rds": {"window": "24h"}, "alarms": {"labels": {"shop-*": "Shop"}}},
    schedules=(Schedule(name="daily", cron="0 7 * * *", checks=("backup", "rds")),),
)
BILLING = Customer(
    id="billing",
    name="Billing Co",
    timezone="Europe/London",
    slack=SlackSettings(channel="C0BILL0001"),
    accounts=(
        Account(
            id="billing-prod",
            name="Billing Production",
            account_id="444444444444",
            regions=("eu-west-2",),
            checks=("rds", "alarms"),
        ),
    ),
    schedules=(Schedule(name="morning", cron="30 6 * * 1-5"),),
)
CATALOG = Catalog([DEMO, BILLING])

RDS_THRESHOLDS = {
    "cpu_warn_pct": 80,
    "cpu_crit_pct": 90,
    "free_storage_warn_pct": 10,
    "free_storage_crit_pct": 5,
    "freeable_memory_warn_mib": 256,
    "freeable_memory_crit_mib": 128,
    "connections_warn": None,
    "connections_crit": None,
    "no_data": "warn",
}


def wave(base: float, swing: float, trend: float = 0.0, n: int = 48) -> list[float]:
    return [
        round(base + swing * math.sin(i / n * 6 * math.pi) + trend * (i / n) ** 3, 2)
        for i in range(n)
    ]


def res(
    kind: str,
    account_id: str,
    rid: str,
    aspect: str,
    severity: str,
    summary: str,
    region: str = "ap-southeast-3",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": rid,
        "region": region,
        "fingerprint": f"{kind}:{account_id}:{region}:{rid}:{aspect}",
        "severity": severity,
        "summary": summary,
        **extra,
    }


@dataclass
class R:
    """One result to insert."""

    account: str
    check: str
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 2.0


def rds_hot() -> R:
    return R(
        "shop-prod",
        "rds",
        "crit",
        "2 instances: 1 critical",
        {
            "resources": [
                res(
                    "rds",
                    "111111111111",
                    "shop-prod-db",
                    "cpu",
                    "crit",
                    "CPU max 93 % (crit ≥ 90 %)",
                    series="shop-prod-db:cpu",
                    status="available",
                ),
                res(
                    "rds",
                    "111111111111",
                    "shop-prod-replica",
                    "health",
                    "ok",
                    "CPU max 41 %, free 180 GiB (70 %), memory min 2,048 MiB, connections max 40",
                    series="shop-prod-replica:cpu",
                    status="available",
                ),
            ],
            "instances": 2,
            "counts": {"crit": 1, "warn": 0, "ok": 1},
            "stopped": 0,
            "period_s": 1800,
            "thresholds": RDS_THRESHOLDS,
        },
        {"shop-prod-db:cpu": wave(55, 8, 35), "shop-prod-replica:cpu": wave(30, 10)},
        3.1,
    )


def rds_low_storage() -> R:
    return R(
        "shop-staging",
        "rds",
        "warn",
        "1 instance: 1 warning",
        {
            "resources": [
                res(
                    "rds",
                    "222222222222",
                    "shop-staging-db",
                    "storage",
                    "warn",
                    "free 7.5 GiB (7 %) (warn ≤ 10 %)",
                    series="shop-staging-db:free_storage_gib",
                    status="available",
                    allocated_gib=107,
                ),
            ],
            "instances": 1,
            "counts": {"crit": 0, "warn": 1, "ok": 0},
            "stopped": 0,
            "period_s": 1800,
            "thresholds": RDS_THRESHOLDS,
        },
        {"shop-staging-db:free_storage_gib": wave(12, 0.6, -4.5)},
        2.4,
    )


def alarms(name: str = "shop-5xx-rate") -> R:
    return R(
        "shop-prod",
        "alarms",
        "crit",
        f"1 alarm in ALARM: [Shop] {name}",
        {
            "resources": [
                res(
                    "alarms",
                    "111111111111",
                    name,
                    "state",
                    "crit",
                    "Shop · in ALARM since 21 Nov 06:41 WIB (24 min): Threshold Crossed: 1 "
                    "datapoint [12.0] was greater than the threshold (5.0).",
                    label="Shop",
                    since="2026-11-20T23:41:00+00:00",
                    reason="Threshold Crossed: 1 datapoint [12.0] was greater than the threshold "
                    "(5.0).",
                    type="metric",
                    metric="AWS/ApplicationELB/HTTPCode_Target_5XX",
                    arn=f"arn:aws:cloudwatch:ap-southeast-3:111111111111:alarm:{name}",
                ),
            ],
            "in_alarm": 1,
        },
        seconds=0.8,
    )


def budget() -> R:
    return R(
        "shop-prod",
        "budget",
        "warn",
        "monthly: actual 78 % of $5,000, forecast 106 %",
        {
            "resources": [
                res(
                    "budget",
                    "111111111111",
                    "monthly",
                    "spend",
                    "warn",
                    "actual $3,900 (78 %) of $5,000, forecast $5,300 (106 %) (forecast ≥ 100 %)",
                    region="us-east-1",
                    type="COST",
                    time_unit="MONTHLY",
                    limit=5000.0,
                    unit="USD",
                    actual=3900.0,
                    forecast=5300.0,
                    actual_pct=78.0,
                    forecast_pct=106.0,
                    fraction=0.78,
                ),
            ],
            "budgets": 1,
        },
        seconds=1.2,
    )


def backup_failed() -> R:
    return R(
        "shop-prod",
        "backup",
        "crit",
        '41 completed, 1 failed: shop-prod-db "incompatible state"',
        {
            "window": "24h",
            "jobs": 42,
            "counts": {"COMPLETED": 41, "FAILED": 1},
            "resources": [
                res(
                    "backup",
                    "111111111111",
                    "shop-prod-db",
                    "job",
                    "crit",
                    'shop-prod-db: failed in vault Default — "incompatible state"',
                    vault="Default",
                    state="FAILED",
                    status_message="incompatible state",
                ),
            ],
        },
        seconds=1.5,
    )


def ok(account: str, check: str, summary: str = "all OK", seconds: float = 1.0) -> R:
    return R(account, check, "ok", summary, {"resources": []}, seconds=seconds)


async def insert_run(
    db: Database,
    customer: str,
    targets: Sequence[tuple[str, str]],
    *,
    status: str = "completed",
    outcome: str | None = None,
    created: datetime = NOW,
    took: float = 14.0,
    results: Sequence[R] = (),
    requested_by: str = "U0ALICE",
    source: str = "slash",
    heartbeat: datetime | None = None,
    error: str | None = None,
    cancelled_by: str | None = None,
    window_s: int | None = 43200,
) -> int:
    """Insert one run with its results and a plausible timeline; returns its id."""
    started = created + timedelta(seconds=1) if status != "queued" else None
    finished = (
        started + timedelta(seconds=took)
        if started and status not in ("queued", "running")
        else None
    )
    async with db.write() as session:
        run_id = (
            await session.execute(
                insert(Run)
                .values(
                    customer_id=customer,
                    requested_by=requested_by,
                    channel_id="C0DEMO0001",
                    source=source,
                    targets=[{"account": a, "check": c} for a, c in targets],
                    params={"window_s": window_s} if window_s else {},
                    status=status,
                    outcome=outcome,
                    attempt=0 if status == "queued" else 1,
                    max_attempts=3,
                    heartbeat_at=heartbeat or (started if status == "running" else None),
                    cancel_requested_by=cancelled_by,
                    error=error,
                    created_at=created,
                    started_at=started,
                    finished_at=finished,
                )
                .returning(Run.id)
            )
        ).scalar_one()
        events: list[dict[str, Any]] = [
            {
                "type": "created",
                "actor": requested_by,
                "data": {"source": source},
                "created_at": created,
            }
        ]
        if started:
            events.append(
                {
                    "type": "claimed",
                    "actor": "worker-1:4242",
                    "data": {"attempt": 1},
                    "created_at": started,
                }
            )
        clock = started or created
        for r in results:
            clock = at = clock + timedelta(seconds=r.seconds)
            await session.execute(
                insert(Result).values(
                    run_id=run_id,
                    account=r.account,
                    check=r.check,
                    severity=r.severity,
                    summary=r.summary,
                    details=r.details,
                    series=r.series,
                    attempt=1,
                    started_at=started,
                    finished_at=at,
                )
            )
            events.append(
                {
                    "type": "check_finished",
                    "actor": "worker-1:4242",
                    "data": {"account": r.account, "check": r.check, "severity": r.severity},
                    "created_at": at,
                }
            )
        if finished:
            events.append(
                {
                    "type": status,
                    "actor": cancelled_by or "worker-1:4242",
                    "data": {"outcome": outcome} if outcome else {},
                    "created_at": finished,
                }
            )
        await session.execute(insert(RunEvent), [{"run_id": run_id, **e} for e in events])
    return run_id


@dataclass
class Estate:
    hot: int
    running: int
    queued: int
    failed: int
    billing_ok: int
    cancelled: int


async def plant(db: Database, now: datetime = NOW) -> Estate:
    """The runboard at ``now`` (07:05 WIB by default): one run going, one waiting, the
    morning's results."""
    prod = [("shop-prod", c) for c in ("backup", "rds", "alarms", "budget")]
    billing_ok = await insert_run(
        db,
        "billing",
        [("billing-prod", "rds"), ("billing-prod", "alarms")],
        outcome="ok",
        created=now - timedelta(hours=7),
        took=9,
        requested_by="schedule:morning",
        source="schedule",
        results=[
            ok("billing-prod", "rds", "3 instances, all OK"),
            ok("billing-prod", "alarms", "no alarms in ALARM"),
        ],
    )
    failed = await insert_run(
        db,
        "demo",
        [("analytics", "backup")],
        status="failed",
        created=now - timedelta(hours=3),
        took=95,
        error="gave up after 3 attempts: the worker running it stopped responding",
        requested_by="schedule:daily",
        source="schedule",
    )
    cancelled = await insert_run(
        db,
        "demo",
        [("shop-staging", "rds"), ("shop-staging", "budget")],
        status="cancelled",
        created=now - timedelta(hours=2),
        took=4,
        cancelled_by="U0BOB",
        results=[ok("shop-staging", "budget", "1 budget, all OK")],
    )
    hot = await insert_run(
        db,
        "demo",
        [
            *prod,
            ("shop-staging", "rds"),
            ("shop-staging", "budget"),
            ("analytics", "backup"),
            ("analytics", "rds"),
        ],
        outcome="crit",
        created=now - timedelta(minutes=2, seconds=30),
        results=[
            rds_hot(),
            backup_failed(),
            alarms(),
            budget(),
            rds_low_storage(),
            ok("shop-staging", "budget", "1 budget, all OK"),
            ok("analytics", "backup", "12 completed in the last 24h"),
            ok("analytics", "rds", "2 instances, all OK (1 stopped)"),
        ],
    )
    running = await insert_run(
        db,
        "demo",
        [
            ("shop-prod", "rds"),
            ("shop-prod", "alarms"),
            ("shop-prod", "backup"),
            ("shop-prod", "budget"),
        ],
        status="running",
        created=now - timedelta(seconds=40),
        heartbeat=now - timedelta(seconds=2),
        requested_by="U0CAROL",
        results=[ok("shop-prod", "alarms", "no alarms in ALARM"), rds_hot()],
    )
    queued = await insert_run(
        db,
        "billing",
        [("billing-prod", "rds")],
        status="queued",
        created=now - timedelta(seconds=5),
        requested_by="U0DAVE",
    )
    return Estate(hot, running, queued, failed, billing_ok, cancelled)
