"""The report's figures from a seeded month whose numbers are known in advance (see
tests/reports/seed.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from app.catalog import Catalog
from app.db import Database
from app.reports.gather import Reports
from app.reports.period import ReportError, month_of
from tests.reports.seed import FINDINGS_MEAN_RESOLVE, WIB, arbel, november_history

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 09:00 WIB on the 1st


@pytest.fixture
async def seeded(db: Database) -> AsyncIterator[Reports]:
    await november_history().write(db)
    yield Reports(db, Catalog([arbel()]), clock=lambda: NOW)


async def test_the_month_has_the_figures_known_in_advance(seeded: Reports) -> None:
    customer = arbel()
    report = await seeded.build("arbel", month_of(customer, "2026-11", NOW))

    [shop] = report.availability
    assert shop.looks == 3_600 and shop.up_looks == 3_582
    assert shop.uptime_pct == pytest.approx(99.5)
    assert shop.outages == 1 and shop.longest is not None
    assert shop.longest.start == datetime(2026, 11, 10, 2, 0, tzinfo=WIB)
    assert shop.longest.end == datetime(2026, 11, 10, 5, 36, tzinfo=WIB)
    assert shop.longest.seconds == timedelta(hours=3, minutes=36).total_seconds()
    assert shop.worst_latency_ms == 2_350.0
    assert shop.cert_days_left == 54
    assert shop.daily_uptime[9] == pytest.approx(100 * (120 - 18) / 120)

    backups = report.backups
    assert (backups.jobs, backups.failed, backups.completed) == (62, 2, 60)
    [breach] = backups.breaches
    assert breach.resource == "orders-db"
    assert breach.start == datetime(2026, 11, 12, 1, 30, tzinfo=WIB)
    assert breach.end == datetime(2026, 11, 14, 1, 30, tzinfo=WIB)

    budgets = {b.name: b for b in report.cost}
    assert budgets["monthly"].actual_pct == pytest.approx(104.0)
    assert budgets["monthly"].previous_actual == 4_700.0

    [orders] = report.databases
    assert orders.cpu_peak == 93.2
    assert orders.cpu_peak_at == datetime(2026, 11, 18, 7, 0, tzinfo=WIB)
    assert (orders.free_start_pct, orders.free_end_pct) == (41.0, 33.75)
    [crossing] = orders.crossings
    assert (crossing.metric, crossing.level) == ("CPU", "critical")
    assert "crit" not in crossing.text.replace("critical", "")

    [alarm] = report.alarms
    assert alarm.fired == 2
    # 06:00 on the 5th to the look at 07:00 on the 7th, then 03:00 on the 22nd to 07:00 on the 23rd
    assert alarm.seconds == timedelta(hours=49 + 28).total_seconds()

    [gap] = report.gaps
    assert (gap.account, gap.check, gap.looks) == ("arbel-data", "Budget", 2)
    assert gap.end == datetime(2026, 11, 22, 7, 0, tzinfo=WIB)
    assert "cannot be assumed" in gap.why

    findings = report.findings
    assert (findings.opened, findings.resolved, findings.open_at_end) == (4, 3, 2)
    assert findings.mean_resolve_s == FINDINGS_MEAN_RESOLVE.total_seconds()
    assert findings.longest[0].since == datetime(2026, 10, 28, 7, tzinfo=WIB)  # open all month
    assert findings.longest[0].resolved_at is None
    assert "warning at ≤ 10 %" in findings.longest[0].summary
    assert findings.acknowledged == 1  # another customer's answers are not counted
    assert [(s.reason, s.count) for s in findings.snoozed] == [
        ("disk grows on schedule; resize booked", 1)
    ]
    assert [(m.reason, m.count) for m in findings.muted] == [("staging is meant to be stopped", 1)]

    summary = report.summary
    assert (summary.scheduled_expected, summary.scheduled_done) == (30, 29)
    assert summary.accounts == 2 and summary.days == 30
    assert report.previous is not None and report.previous.days == 7  # from 25 Oct
    assert report.began is None
    assert report.notes == ()


async def test_a_month_before_monitoring_began_is_refused(seeded: Reports) -> None:
    with pytest.raises(ReportError, match="began on 25 Oct 2026: choose October 2026 or later"):
        await seeded.build("arbel", month_of(arbel(), "2026-09", NOW))


async def test_the_month_monitoring_began_says_from_when(seeded: Reports) -> None:
    report = await seeded.build("arbel", month_of(arbel(), "2026-10", NOW))
    assert report.began == datetime(2026, 10, 25, 0, 0, tzinfo=WIB)
    assert report.summary.days == 7
    assert report.summary.scheduled_expected == 7
    assert report.previous is None


async def test_a_month_with_a_clock_change_counts_its_real_hours(db: Database) -> None:
    """Berlin's October 2026 has 745 hours (the clocks go back on the 25th): hourly looks
    number 745, the one at 02:30 that happens twice lands on the 25th both times, and the
    07:00 schedule had 31 slots."""
    from zoneinfo import ZoneInfo

    from tests.reports.seed import PROD, History, http_line

    berlin = ZoneInfo("Europe/Berlin")
    history = History("arbel")
    at = datetime(2026, 10, 1, 0, 30, tzinfo=berlin).astimezone(UTC)
    end = datetime(2026, 11, 1, tzinfo=berlin).astimezone(UTC)
    while at < end:
        down = at.astimezone(berlin).day == 25
        line = http_line(PROD, "shop", down=down)
        history.run(at, [("arbel-prod", "http", "crit" if down else "ok", {"resources": [line]})])
        at += timedelta(hours=1)
    await history.write(db)
    customer = arbel(timezone="Europe/Berlin")
    reports = Reports(db, Catalog([customer]), clock=lambda: NOW)
    period = month_of(customer, "2026-10", NOW)
    report = await reports.build("arbel", period)

    assert period.hours == 745
    [shop] = report.availability
    assert shop.looks == 745
    assert shop.up_looks == 745 - 25  # the 25th had 25 hours
    assert shop.daily_uptime[24] == 0 and shop.daily_uptime[23] == shop.daily_uptime[25] == 100
    assert shop.longest is not None and shop.longest.seconds == 25 * 3600
    assert shop.longest.start == datetime(2026, 10, 25, 0, 30, tzinfo=berlin)
    assert report.summary.scheduled_expected == 31


async def test_a_month_with_no_looks_says_nothing_happened(db: Database) -> None:
    """Looks in October and December but none in November: every section empty, no error."""
    from tests.reports.seed import PROD, History, http_line

    history = History("arbel")
    for moment in (datetime(2026, 10, 20, tzinfo=WIB), datetime(2026, 12, 1, 1, tzinfo=WIB)):
        line = http_line(PROD, "shop", down=False)
        history.run(moment, [("arbel-prod", "http", "ok", {"resources": [line]})])
    await history.write(db)
    reports = Reports(db, Catalog([arbel()]), clock=lambda: NOW)
    report = await reports.build("arbel", month_of(arbel(), "2026-11", NOW))
    assert report.summary.looks == 0 and report.summary.problem_days == 0
    assert report.summary.scheduled_expected == 30 and report.summary.scheduled_done == 0
    assert report.availability == () and report.backups.jobs == 0 and report.gaps == ()
    assert report.began is None
