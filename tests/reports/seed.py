"""A month of history written straight into the database, shaped as the checks record it
(``details`` as each check writes them), with figures known in advance: for the report's
tests and for ``bench/reports.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from app.config import Account, Customer, Schedule, SlackSettings
from app.db import Database
from app.models import Finding, Result, Run, RunEvent

STEP = timedelta(minutes=12)


@dataclass
class History:
    """Runs and their results, kept in memory and written in a few statements."""

    customer: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def run(
        self,
        at: datetime,
        looks: list[tuple[str, str, str, dict[str, Any]]],
        *,
        schedule: str | None = None,
        summary: str = "",
    ) -> None:
        """One run made at ``at``: ``looks`` are (account, check, severity, details)."""
        run_id = len(self.runs) + 1
        at = at.astimezone(UTC)
        self.runs.append(
            {
                "id": run_id,
                "customer_id": self.customer,
                "requested_by": f"schedule:{schedule}" if schedule else "U1",
                "channel_id": None,
                "source": "schedule" if schedule else "slash",
                "targets": [{"account": a, "check": c} for a, c, _, _ in looks],
                "params": {"schedule": schedule} if schedule else {},
                "status": "completed",
                "outcome": "ok",
                "attempt": 1,
                "max_attempts": 3,
                "idempotency_key": f"slot:{self.customer}:{schedule}:{at.isoformat()}"
                if schedule
                else None,
                "created_at": at,
                "started_at": at,
                "finished_at": at,
            }
        )
        for account, check, severity, details in looks:
            self.results.append(
                {
                    "run_id": run_id,
                    "account": account,
                    "check": check,
                    "severity": severity,
                    "summary": summary or f"{check} {severity}",
                    "details": details,
                    "series": {},
                    "attempt": 1,
                    "started_at": at,
                    "finished_at": at,
                }
            )

    async def write(self, db: Database, *, offset: int = 0) -> None:
        """Insert everything (run ids shifted by ``offset`` when the table has rows)."""
        async with db.write() as session:
            for chunk in _chunks([{**r, "id": r["id"] + offset} for r in self.runs]):
                await session.execute(insert(Run), chunk)
            for chunk in _chunks([{**r, "run_id": r["run_id"] + offset} for r in self.results]):
                await session.execute(insert(Result), chunk)
            if self.findings:
                await session.execute(insert(Finding), self.findings)
            if self.events:
                await session.execute(insert(RunEvent), self.events)


def _chunks(rows: list[dict[str, Any]], size: int = 2_000) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


# -- lines as the checks write them ---------------------------------------------------------


def http_line(
    account_id: str, name: str, *, down: bool, latency_ms: float = 120.0, cert_days: int = 54
) -> dict[str, Any]:
    if down:
        return {
            "id": name,
            "region": "global",
            "fingerprint": f"http:{account_id}:global:{name}:reachable",
            "severity": "crit",
            "summary": f"{name}: unreachable: could not connect (connection refused)",
            "url": f"https://{name}.example.com/health",
        }
    return {
        "id": name,
        "region": "global",
        "fingerprint": f"http:{account_id}:global:{name}:health",
        "severity": "ok",
        "summary": f"{name}: status 200, {latency_ms:,.0f} ms",
        "url": f"https://{name}.example.com/health",
        "status": 200,
        "latency_ms": latency_ms,
        "cert_expires": None,
        "cert_days_left": cert_days,
    }


def backup_details(jobs: list[tuple[str, str, str, datetime]]) -> dict[str, Any]:
    """``jobs``: (job id, state, resource, created) seen by one look."""
    seen = [
        [
            job_id,
            state,
            "ap-southeast-3",
            name,
            created.astimezone(UTC).isoformat(),
            (created + timedelta(minutes=30)).astimezone(UTC).isoformat()
            if state == "COMPLETED"
            else None,
        ]
        for job_id, state, name, created in jobs
    ]
    counts: dict[str, int] = {}
    for _, state, _, _ in jobs:
        counts[state] = counts.get(state, 0) + 1
    return {"window": "48h", "jobs": len(jobs), "counts": counts, "resources": [], "seen": seen}


def rds_details(
    account_id: str, name: str, cpu_max: float, free_pct: float, *, crit_cpu: float = 90.0
) -> dict[str, Any]:
    severity = "crit" if cpu_max >= crit_cpu else "ok"
    aspect = "cpu" if severity == "crit" else "health"
    text = (
        f"CPU max {cpu_max:g} % (crit ≥ {crit_cpu:g} %)"
        if severity == "crit"
        else f"CPU max {cpu_max:g} %, free {free_pct:g} GiB ({free_pct:g} %)"
    )
    return {
        "resources": [
            {
                "id": name,
                "region": "ap-southeast-3",
                "fingerprint": f"rds:{account_id}:ap-southeast-3:{name}:{aspect}",
                "severity": severity,
                "summary": text,
                "status": "available",
            }
        ],
        "instances": 1,
        "metrics": {name: {"cpu_max": cpu_max, "free_gib": free_pct, "free_pct": free_pct}},
    }


def alarm_details(
    account_id: str, firing: list[tuple[str, str | None, datetime]]
) -> dict[str, Any]:
    return {
        "resources": [
            {
                "id": name,
                "region": "ap-southeast-3",
                "fingerprint": f"alarms:{account_id}:ap-southeast-3:{name}:state",
                "severity": "crit",
                "summary": f"{name} in ALARM",
                "label": label,
                "since": since.astimezone(UTC).isoformat(),
            }
            for name, label, since in firing
        ],
        "in_alarm": len(firing),
    }


def budget_details(
    account_id: str, name: str, actual: float, limit: float, forecast: float
) -> dict[str, Any]:
    pct = actual / limit * 100
    return {
        "resources": [
            {
                "id": name,
                "region": "global",
                "fingerprint": f"budget:{account_id}:global:{name}:spend",
                "severity": "crit" if pct >= 100 else "ok",
                "summary": f"{name}: actual {pct:.0f} %",
                "type": "COST",
                "time_unit": "MONTHLY",
                "limit": limit,
                "unit": "USD",
                "actual": actual,
                "forecast": forecast,
                "actual_pct": round(pct, 1),
                "forecast_pct": round(forecast / limit * 100, 1),
                "fraction": round(actual / limit, 4),
            }
        ],
        "budgets": 1,
    }


def error_details(reason: str = "role", call: str = "sts:AssumeRole") -> dict[str, Any]:
    return {"error": "CheckError", "permanent": True, "reason": reason, "call": call,
            "code": "AccessDenied"}  # fmt: skip


# -- the month: November 2026 for Arbel, in Asia/Jakarta ----------------------------

WIB = ZoneInfo("Asia/Jakarta")
PROD, DATA = "111111111111", "222222222222"
OUTAGE_START = datetime(2026, 11, 10, 2, 0, tzinfo=WIB)
OUTAGE_LOOKS = 18
"""18 looks 12 minutes apart: down for exactly 3 h 36 min of 720 h (3,600 looks): 99.5 %."""
SKIPPED_DAY = 17
"""The day the morning schedule did not run: 29 of 30 scheduled runs."""


def arbel(since: datetime | None = None, timezone: str = "Asia/Jakarta") -> Customer:
    return Customer(
        id="arbel",
        name="Arbel Retail",
        timezone=timezone,
        slack=SlackSettings(channel="C0ARBEL001"),
        accounts=(
            Account(
                id="arbel-prod",
                name="Arbel Production",
                account_id=PROD,
                regions=("ap-southeast-3",),
                checks=("backup", "rds", "alarms", "budget", "http"),
            ),
            Account(
                id="arbel-data",
                name="Arbel Data",
                account_id=DATA,
                regions=("ap-southeast-3",),
                checks=("backup", "budget"),
            ),
        ),
        checks={
            "http": {"endpoints": [{"name": "shop", "url": "https://shop.example.com/health"}]},
            "backup": {"rpo_hours": 24},
        },
        schedules=(Schedule(name="morning", cron="0 7 * * *"),),
    )


def _jobs(day: datetime) -> list[tuple[str, str, str, datetime]]:
    """The backup jobs created on ``day`` (its midnight, WIB): orders-db daily at 01:00
    (failed on the 12th and 13th), files daily at 02:00 and again at 14:00 on the 1st and
    15th — 62 jobs in November, 2 failed."""
    jobs = []
    orders = day.replace(hour=1)
    state = "FAILED" if day.day in (12, 13) else "COMPLETED"
    jobs.append((f"job-orders-{day:%m%d}", state, "orders-db", orders))
    jobs.append((f"job-files-{day:%m%d}", "COMPLETED", "files", day.replace(hour=2)))
    if day.day in (1, 15):
        jobs.append((f"job-files-{day:%m%d}-b", "COMPLETED", "files", day.replace(hour=14)))
    return jobs


def november_history() -> History:
    """Every 12 minutes an HTTP look at shop; every morning at 07:00 (but the 17th) a
    scheduled run of backup, RDS, alarms and budgets on both accounts; the last days of
    October for the comparison."""
    history = History("arbel")
    start = datetime(2026, 10, 25, tzinfo=WIB)
    end = datetime(2026, 12, 1, tzinfo=WIB)
    at = start
    while at < end:
        down = OUTAGE_START <= at < OUTAGE_START + OUTAGE_LOOKS * STEP
        latency = 2_350.0 if at == datetime(2026, 11, 9, 14, 12, tzinfo=WIB) else 120.0
        line = http_line(PROD, "shop", down=down, latency_ms=latency)
        details = {"endpoints": 1, "resources": [line]}
        history.run(at, [("arbel-prod", "http", "crit" if down else "ok", details)])
        at += STEP
    day = start
    while day < end:
        morning = day.replace(hour=7)
        if not (day.month == 11 and day.day == SKIPPED_DAY):
            history.run(morning, _morning(day), schedule="morning")
        day += timedelta(days=1)
    return with_findings(history)


def _morning(day: datetime) -> list[tuple[str, str, str, dict[str, Any]]]:
    # a 48-hour window: every job is seen by two looks (and the 17th's by the 18th's alone)
    seen = _jobs(day) + _jobs(day - timedelta(days=1)) + _jobs(day - timedelta(days=2))
    since, until = day.replace(hour=7) - timedelta(hours=48), day.replace(hour=7)
    seen = [j for j in seen if since <= j[3] < until]
    prod = [j for j in seen if j[2] == "orders-db"]
    data = [j for j in seen if j[2] == "files"]
    cpu = 93.2 if day.month == 11 and day.day == 18 else 40.0 + day.day
    free = 41.0 - (day.day - 1) * 0.25 if day.month == 11 else 42.0
    fired = []
    if day.month == 11 and day.day in (5, 6):
        fired.append(("shop-5xx-rate", "Shop", datetime(2026, 11, 5, 6, 0, tzinfo=WIB)))
    if day.month == 11 and day.day == 22:
        fired.append(("shop-5xx-rate", "Shop", datetime(2026, 11, 22, 3, 0, tzinfo=WIB)))
    actual = 4_700.0 if day.month == 10 else 5_200.0 * day.day / 30
    looks: list[tuple[str, str, str, dict[str, Any]]] = [
        ("arbel-prod", "backup", "crit" if any(j[1] == "FAILED" for j in prod) else "ok",
         backup_details(prod)),
        ("arbel-data", "backup", "ok", backup_details(data)),
        ("arbel-prod", "rds", "crit" if cpu >= 90 else "ok",
         rds_details(PROD, "orders-db", cpu, free)),
        ("arbel-prod", "alarms", "crit" if fired else "ok", alarm_details(PROD, fired)),
        ("arbel-prod", "budget", "crit" if actual >= 5_000 else "ok",
         budget_details(PROD, "monthly", actual, 5_000.0, 5_200.0)),
    ]  # fmt: skip
    if day.month == 11 and day.day in (20, 21):
        looks.append(("arbel-data", "budget", "error", error_details()))
    else:
        looks.append(("arbel-data", "budget", "ok",
                      budget_details(DATA, "data-monthly", 300.0, 1_000.0, 310.0)))  # fmt: skip
    return looks


def _finding(
    fingerprint: str, check: str, resource: str, summary: str, first: datetime,
    resolved: datetime | None,
) -> dict[str, Any]:  # fmt: skip
    account = "arbel-prod"
    seen = resolved or datetime(2026, 11, 30, 7, tzinfo=WIB)
    return {
        "customer_id": "arbel", "fingerprint": fingerprint, "account": account,
        "region": "ap-southeast-3", "check": check, "resource": resource, "severity": "crit",
        "summary": summary, "status": "resolved" if resolved else "open",
        "first_seen_at": first.astimezone(UTC), "last_seen_at": seen.astimezone(UTC),
        "resolved_at": resolved.astimezone(UTC) if resolved else None,
        "last_run_id": 1, "looked_run_id": 1, "returns": 0, "history": "1", "answers": 0,
    }  # fmt: skip


FINDINGS_MEAN_RESOLVE = timedelta(hours=(48 + 24 + 3.6) / 3)
"""Opened 4 (one more opened in October is still open), resolved 3, open at the end 2."""


def with_findings(history: History) -> History:
    """The month's findings and the answers given to them (their audit rows)."""
    on = lambda d, h, m=0: datetime(2026, 11, d, h, m, tzinfo=WIB)  # noqa: E731
    history.findings += [
        _finding(f"backup:{PROD}:ap-southeast-3:orders-db:job", "backup", "orders-db",
                 'orders-db: failed in vault main — "Backup job failed"', on(12, 7), on(14, 7)),
        _finding(f"rds:{PROD}:ap-southeast-3:orders-db:cpu", "rds", "orders-db",
                 "CPU max 93.2 % (crit ≥ 90 %)", on(18, 7), on(19, 7)),
        _finding(f"http:{PROD}:global:shop:reachable", "http", "shop",
                 "shop: unreachable", on(10, 2), on(10, 5, 36)),
        _finding(f"budget:{PROD}:global:monthly:spend", "budget", "monthly",
                 "monthly: actual 100 %", on(29, 7), None),
        _finding(f"rds:{PROD}:ap-southeast-3:orders-db:storage", "rds", "orders-db",
                 "free 9 GiB (9 %) (warn ≤ 10 %)", datetime(2026, 10, 28, 7, tzinfo=WIB), None),
    ]  # fmt: skip
    audit = {"customer": "arbel", "findings": [], "answered_first": []}
    history.events += [
        {"run_id": None, "type": "answer", "actor": "U0ALICE", "created_at": on(29, 8),
         "data": {**audit, "action": "ack", "changed": 1}},
        {"run_id": None, "type": "answer", "actor": "U0BOB", "created_at": on(3, 9),
         "data": {**audit, "action": "snooze", "changed": 1,
                  "reason": "disk grows on schedule; resize booked", "until": "resolved"}},
        {"run_id": None, "type": "answer", "actor": "U0BOB", "created_at": on(4, 9),
         "data": {**audit, "action": "mute", "changed": 0,
                  "rule": {"reason": "staging is meant to be stopped"}}},
        {"run_id": None, "type": "answer", "actor": "U0EVE", "created_at": on(4, 9),
         "data": {**audit, "customer": "someone-else", "action": "ack", "changed": 5}},
    ]  # fmt: skip
    return history
