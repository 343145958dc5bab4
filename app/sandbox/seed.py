"""The demo estate: what `mhub demo` plants in the AWS emulator for the demo customer.

Three accounts reached by AssumeRole. Something real for every check to find:
shop-prod's database runs hot and its 5xx alarm is firing, its budget is forecast over;
shop-staging's database is low on storage; analytics is healthy apart from a stopped archive
database; one backup job failed last night.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from app.sandbox import (
    seed_backup_points,
    seed_certs,
    seed_cost,
    seed_health,
    seed_hygiene,
    seed_security,
)
from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session

GIB = 1024**3
STEP = timedelta(minutes=5)
HOURS = 24


@dataclass(frozen=True)
class Database:
    name: str
    size_gib: int
    cpu: Callable[[float], float]
    """CPU % at t (0 = 24 h ago, 1 = now)."""
    free_gib: Callable[[float], float]
    connections: Callable[[float], float]
    memory_mib: Callable[[float], float]
    stopped: bool = False


@dataclass(frozen=True)
class Estate:
    account_id: str
    region: str
    databases: tuple[Database, ...] = ()
    alarms: tuple[tuple[str, bool, str], ...] = ()
    """(name, firing, reason)."""
    budgets: tuple[tuple[str, float, float, float], ...] = ()
    """(name, limit $, actual $, forecast $)."""
    backup_jobs: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def _wave(base: float, swing: float, trend: float = 0.0) -> Callable[[float], float]:
    return lambda t: base + swing * math.sin(t * 2 * math.pi * 3) + trend * t**3


def _jobs(count: int, failed: tuple[tuple[str, str], ...] = ()) -> tuple[dict[str, Any], ...]:
    """Backup job specs for the edge (see ``app.sandbox.edge.make_job``); ``hours_ago`` is
    turned into a creation time when seeding."""
    jobs: list[dict[str, Any]] = [
        {
            "state": "COMPLETED",
            "hours_ago": 1 + i % 20,
            "vault": "daily",
            "resource_arn": f"arn:aws:ec2:ap-southeast-3:000000000000:volume/vol-{i:04d}",
        }
        for i in range(count)
    ]
    jobs += [
        {
            "state": "FAILED",
            "resource_arn": arn,
            "status_message": message,
            "hours_ago": 6,
            "vault": "daily",
        }
        for arn, message in failed
    ]
    return tuple(jobs)


ESTATE: tuple[Estate, ...] = (
    Estate(
        "111111111111",
        "ap-southeast-3",
        databases=(
            Database(
                "shop-prod-db",
                200,
                _wave(55, 5, 38),
                _wave(120, 2),
                _wave(180, 40, 60),
                _wave(5200, 300),
            ),
            Database(
                "shop-prod-replica",
                200,
                _wave(30, 5),
                _wave(121, 2),
                _wave(60, 10),
                _wave(5600, 200),
            ),
        ),
        alarms=(
            ("shop-prod-5xx-rate", True, "Threshold Crossed: 5xx rate 4.2 % > 2 %"),
            ("shop-prod-latency-p99", False, ""),
        ),
        budgets=(("shop-monthly", 5000.0, 3900.0, 5300.0),),
        backup_jobs=_jobs(
            14,
            (
                (
                    "arn:aws:rds:ap-southeast-3:111111111111:db:shop-prod-db",
                    "Backup job failed: the DB instance is in an incompatible-parameters state",
                ),
            ),
        ),
    ),
    Estate(
        "222222222222",
        "ap-southeast-3",
        databases=(
            Database(
                "shop-staging-db",
                100,
                _wave(18, 4),
                lambda t: 14 - 6.5 * t,
                _wave(12, 4),
                _wave(1500, 100),
            ),
        ),
        alarms=(("shop-staging-disk", False, ""),),
        budgets=(("staging-monthly", 800.0, 310.0, 620.0),),
        backup_jobs=_jobs(14),
    ),
    Estate(
        "333333333333",
        "ap-southeast-3",
        databases=(
            Database(
                "etl-warehouse", 500, _wave(40, 15), _wave(260, 5), _wave(30, 8), _wave(12000, 800)
            ),
            Database(
                "analytics-archive",
                50,
                _wave(0, 0),
                _wave(40, 0),
                _wave(0, 0),
                _wave(900, 0),
                stopped=True,
            ),
        ),
        alarms=(("etl-nightly-duration", False, ""),),
        budgets=(("analytics-monthly", 2500.0, 1200.0, 2300.0),),
        backup_jobs=_jobs(14),
    ),
)


def seed(moto_url: str, edge: Edge | None = None, now: datetime | None = None) -> None:
    """Plant the estate in a running moto server, and its backup jobs in the edge (moto has
    no ListBackupJobs; without an edge the backup check has nothing to find), then what each
    of the other kinds finds (each ``seed_<kind>`` module: moto where it can, the edge's
    seeded answers where moto lacks the call)."""
    now = now or datetime.now(UTC)
    _seed_estate(moto_url, edge, now)
    for kind in (
        seed_backup_points,
        seed_health,
        seed_certs,
        seed_security,
        seed_cost,
        seed_hygiene,
    ):
        kind.seed(moto_url, edge, now)


def _seed_estate(moto_url: str, edge: Edge | None, now: datetime) -> None:
    rng = random.Random(7)
    for estate in ESTATE:
        session = seed_session(moto_url, estate.account_id, estate.region)
        _seed_rds(session, moto_url, estate, now, rng)
        _seed_alarms(session, moto_url, estate)
        _seed_budgets(session, moto_url, estate)
        if edge is not None:
            edge.add_backup_jobs(
                estate.account_id,
                estate.region,
                [
                    {
                        **{k: v for k, v in job.items() if k != "hours_ago"},
                        "created": (now - timedelta(hours=job["hours_ago"])).isoformat(),
                    }
                    for job in estate.backup_jobs
                ],
            )


def _client(session: boto3.Session, url: str, service: str, region: str | None = None) -> Any:
    return session.client(service, endpoint_url=url, region_name=region or session.region_name)


def _seed_rds(
    session: boto3.Session, url: str, estate: Estate, now: datetime, rng: random.Random
) -> None:
    rds = _client(session, url, "rds")
    cloudwatch = _client(session, url, "cloudwatch")
    points = int(timedelta(hours=HOURS) / STEP)
    for db in estate.databases:
        rds.create_db_instance(
            DBInstanceIdentifier=db.name,
            DBInstanceClass="db.r6g.large",
            Engine="postgres",
            AllocatedStorage=db.size_gib,
            MasterUsername="admin",
            MasterUserPassword="not-a-real-password",
        )
        if db.stopped:
            rds.stop_db_instance(DBInstanceIdentifier=db.name)
            continue
        data = []
        for i in range(points + 1):
            t = i / points
            stamp = now - timedelta(hours=HOURS) + i * STEP
            noise = rng.uniform(-1.5, 1.5)
            for metric, value, unit in (
                ("CPUUtilization", min(99.0, max(0.5, db.cpu(t) + noise)), "Percent"),
                ("FreeStorageSpace", max(0.1, db.free_gib(t)) * GIB, "Bytes"),
                ("DatabaseConnections", max(0.0, round(db.connections(t) + noise)), "Count"),
                ("FreeableMemory", max(1.0, db.memory_mib(t)) * 1024**2, "Bytes"),
            ):
                data.append(
                    {
                        "MetricName": metric,
                        "Timestamp": stamp,
                        "Value": value,
                        "Unit": unit,
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db.name}],
                    }
                )
        for start in range(0, len(data), 500):
            cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=data[start : start + 500])


def _seed_alarms(session: boto3.Session, url: str, estate: Estate) -> None:
    cloudwatch = _client(session, url, "cloudwatch")
    for name, firing, reason in estate.alarms:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="5XXError",
            Namespace="AWS/ApplicationELB",
            Statistic="Average",
            Period=300,
            EvaluationPeriods=3,
            Threshold=2.0,
            ComparisonOperator="GreaterThanThreshold",
            AlarmDescription=f"{name} (demo)",
        )
        cloudwatch.set_alarm_state(
            AlarmName=name,
            StateValue="ALARM" if firing else "OK",
            StateReason=reason or "Threshold not crossed",
        )


def _seed_budgets(session: boto3.Session, url: str, estate: Estate) -> None:
    budgets = _client(session, url, "budgets", "us-east-1")
    for name, limit, actual, forecast in estate.budgets:
        budgets.create_budget(
            AccountId=estate.account_id,
            Budget={
                "BudgetName": name,
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": f"{limit:.2f}", "Unit": "USD"},
                "CalculatedSpend": {
                    "ActualSpend": {"Amount": f"{actual:.2f}", "Unit": "USD"},
                    "ForecastedSpend": {"Amount": f"{forecast:.2f}", "Unit": "USD"},
                },
            },
        )
