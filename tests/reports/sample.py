"""A report with every section filled, built by hand (no database): for the renderers' tests.
Its figures are the issue's: an endpoint up 99.5 %, 2 failed backup jobs of 62, a budget at
104 %."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.reports.model import (
    Alarm,
    BackupAccount,
    Backups,
    Budget,
    Crossing,
    Database,
    Endpoint,
    Findings,
    Gap,
    LongOpen,
    Outage,
    Period,
    Reasoned,
    Report,
    RpoBreach,
    Summary,
)

TZ = ZoneInfo("Asia/Jakarta")


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def november() -> Period:
    return Period(
        first=date(2026, 11, 1),
        last=date(2026, 11, 30),
        start=at(1),
        end=datetime(2026, 12, 1, tzinfo=TZ),
        month="2026-11",
        label="November 2026",
    )


def sample_report(*, empty: bool = False) -> Report:
    period = november()
    days = 30
    summary = Summary(
        looks=0 if empty else 3_600,
        scheduled_expected=30,
        scheduled_done=0 if empty else 29,
        accounts=0 if empty else 2,
        accounts_configured=2,
        problem_days=0 if empty else 4,
        days=days,
    )
    if empty:
        return Report(
            customer_id="arbel",
            customer="Arbel Retail",
            timezone="Asia/Jakarta",
            period=period,
            began=None,
            generated_at=datetime(2026, 12, 1, 9, 0, tzinfo=TZ),
            summary=summary,
            previous=None,
            availability=(),
            backups=Backups(accounts=(), breaches=(), rpo_hours=24),
            databases=(),
            alarms=(),
            cost=(),
            findings=Findings(0, 0, 0, None, (), 0, (), ()),
            gaps=(),
        )
    daily = tuple(100.0 if d != 9 else 85.0 for d in range(days))
    return Report(
        customer_id="arbel",
        customer="Arbel Retail",
        timezone="Asia/Jakarta",
        period=period,
        began=None,
        generated_at=datetime(2026, 12, 1, 9, 0, tzinfo=TZ),
        summary=summary,
        previous=Summary(
            looks=3_400,
            scheduled_expected=31,
            scheduled_done=31,
            accounts=2,
            accounts_configured=2,
            problem_days=6,
            days=31,
        ),
        availability=(
            Endpoint(
                name="shop",
                account="arbel-prod",
                url="https://shop.example.com/health",
                looks=3_600,
                up_looks=3_582,
                worst_latency_ms=2_350.0,
                worst_latency_at=at(9, 14, 12),
                outages=1,
                longest=Outage(at(10, 2, 0), at(10, 5, 36), 3 * 3600 + 36 * 60),
                cert_days_left=54,
                daily_uptime=daily,
            ),
        ),
        backups=Backups(
            accounts=(
                BackupAccount("arbel-prod", completed=29, failed=2, other=0),
                BackupAccount("arbel-data", completed=31, failed=0, other=0),
            ),
            breaches=(RpoBreach("arbel-prod", "orders-db", at(12, 1), at(13, 1, 30), 24.5 * 3600),),
            rpo_hours=24,
        ),
        databases=(
            Database(
                account="arbel-prod",
                region="ap-southeast-3",
                name="orders-db",
                cpu_peak=93.2,
                cpu_peak_at=at(18, 20, 5),
                free_start_pct=41.0,
                free_end_pct=33.5,
                free_start_gib=41.0,
                free_end_gib=33.5,
                daily_cpu_peak=tuple(40.0 + d for d in range(days)),
                daily_free_pct=tuple(41.0 - d / 4 for d in range(days)),
                crossings=(
                    Crossing("CPU", "critical", at(18, 20, 5), "CPU max 93.2 % (over 90 %)"),
                ),
            ),
        ),
        alarms=(
            Alarm("arbel-prod", "shop-5xx-rate", "Shop", fired=3, seconds=5_400, last_at=at(22)),
        ),
        cost=(
            Budget(
                account="arbel-prod",
                name="monthly",
                unit="USD",
                limit=5_000.0,
                actual=5_200.0,
                forecast=5_200.0,
                as_of=at(30, 23),
                previous_actual=4_700.0,
            ),
        ),
        findings=Findings(
            opened=7,
            resolved=5,
            open_at_end=2,
            mean_resolve_s=timedelta(hours=9).total_seconds(),
            longest=(
                LongOpen(
                    "arbel-prod",
                    "RDS",
                    "orders-db",
                    "free storage 8 % (under 10 %)",
                    at(3),
                    None,
                    (datetime(2026, 12, 1, tzinfo=TZ) - at(3)).total_seconds(),
                ),
            ),
            acknowledged=3,
            snoozed=(Reasoned("vendor fix due Monday", 2),),
            muted=(Reasoned("staging is meant to be stopped", 1),),
        ),
        gaps=(
            Gap(
                "arbel-data",
                "Budget",
                at(20, 7),
                at(21, 7),
                24 * 3600,
                2,
                "the monitoring role could not be assumed",
            ),
        ),
    )
