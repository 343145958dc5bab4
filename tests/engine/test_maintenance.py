"""Maintenance windows with time frozen: which are active and which are coming, recurring windows
read in the customer's zone across both clock changes of a year (Europe/Berlin), one-off
windows, and windows started from Slack read back, audited, on each database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.config import Account, Customer, MaintenanceWindow
from app.db import Database
from app.engine import maintenance
from app.engine.maintenance import MaintenanceError, Window, active, occurrences, upcoming
from app.models import Maintenance, RunEvent

BERLIN = "Europe/Berlin"
"""CET (UTC+1) in winter, CEST (UTC+2) in summer; in 2026 the clocks go 02:00 → 03:00 on
Sunday 29 March and 03:00 → 02:00 on Sunday 25 October."""


def customer(*windows: MaintenanceWindow, timezone: str = BERLIN) -> Customer:
    return Customer(
        id="acme",
        name="Acme",
        timezone=timezone,
        accounts=(
            Account(
                id="acme-prod",
                name="Acme Production",
                account_id="123456789012",
                regions=("eu-central-1",),
                checks=("rds", "alarms"),
            ),
            Account(
                id="acme-staging",
                name="Acme Staging",
                account_id="210987654321",
                regions=("eu-central-1",),
                checks=("rds",),
            ),
        ),
        maintenance=windows,
    )


WEEKLY = MaintenanceWindow.model_validate(
    {
        "name": "RDS upgrades",
        "accounts": ["acme-prod"],
        "checks": ["rds"],
        "cron": "0 2 * * SUN",
        "duration": "2h",
        "reason": "Weekly engine patching",
    }
)
MIGRATION = MaintenanceWindow.model_validate(
    {"name": "Data-centre migration", "start": "2026-12-12 22:00", "end": "2026-12-13 04:00"}
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def spans(windows: list[Window]) -> list[tuple[str, datetime, datetime]]:
    return [(w.name, w.starts_at, w.ends_at) for w in windows]


# --- recurring windows, and the clocks changing -----------------------------------------------


def test_a_weekly_window_opens_at_its_wall_clock_time_each_sunday() -> None:
    acme = customer(WEEKLY)

    found = occurrences(acme, utc(2026, 6, 1), utc(2026, 6, 15))

    assert spans(found) == [  # 02:00-04:00 CEST
        ("RDS upgrades", utc(2026, 6, 7, 0), utc(2026, 6, 7, 2)),
        ("RDS upgrades", utc(2026, 6, 14, 0), utc(2026, 6, 14, 2)),
    ]
    assert found[0].accounts == ("acme-prod",) and found[0].checks == ("rds",)
    assert found[0].reason == "Weekly engine patching" and found[0].source == "config"


def test_on_the_sunday_the_clocks_skip_02_00_it_opens_at_03_00_and_lasts_two_real_hours() -> None:
    """02:00 does not exist in Berlin on 29 March 2026: the window opens shifted forward by
    the gap, at 03:00 CEST (01:00 UTC), and lasts its 2 hours, to 05:00 CEST."""
    acme = customer(WEEKLY)

    found = occurrences(acme, utc(2026, 3, 21), utc(2026, 4, 6))

    assert spans(found) == [
        ("RDS upgrades", utc(2026, 3, 22, 1), utc(2026, 3, 22, 3)),  # 02:00-04:00 CET
        ("RDS upgrades", utc(2026, 3, 29, 1), utc(2026, 3, 29, 3)),  # 03:00-05:00 CEST
        ("RDS upgrades", utc(2026, 4, 5, 0), utc(2026, 4, 5, 2)),  # 02:00-04:00 CEST
    ]
    local = [w.starts_at.astimezone(acme.tz).strftime("%H:%M %Z") for w in found]
    assert local == ["02:00 CET", "03:00 CEST", "02:00 CEST"]


def test_on_the_sunday_02_00_happens_twice_it_opens_at_the_first_and_lasts_two_real_hours() -> None:
    """On 25 October 2026, 02:00-02:59 happens twice in Berlin: the window opens once, at the
    first 02:00 (CEST, 00:00 UTC), and closes 2 hours later, at 03:00 CET."""
    acme = customer(WEEKLY)

    found = occurrences(acme, utc(2026, 10, 24), utc(2026, 10, 27))

    assert spans(found) == [("RDS upgrades", utc(2026, 10, 25, 0), utc(2026, 10, 25, 2))]
    [window] = found
    assert window.starts_at.astimezone(acme.tz).strftime("%H:%M %Z") == "02:00 CEST"
    assert window.ends_at.astimezone(acme.tz).strftime("%H:%M %Z") == "03:00 CET"


def test_what_is_active_follows_the_clock_change_minute_by_minute() -> None:
    acme = customer(WEEKLY)
    windows = occurrences(acme, utc(2026, 3, 28), utc(2026, 3, 30))

    assert active(windows, utc(2026, 3, 29, 0, 59)) == []  # 01:59 CET
    assert spans(active(windows, utc(2026, 3, 29, 1))) == [  # 03:00 CEST, right after the jump
        ("RDS upgrades", utc(2026, 3, 29, 1), utc(2026, 3, 29, 3))
    ]
    assert len(active(windows, utc(2026, 3, 29, 2, 59))) == 1  # 04:59 CEST
    assert active(windows, utc(2026, 3, 29, 3)) == []  # 05:00 CEST: over


def test_a_window_already_open_when_the_span_starts_is_included() -> None:
    acme = customer(WEEKLY)

    found = occurrences(acme, utc(2026, 6, 7, 1), utc(2026, 6, 7, 1, 1))

    assert spans(found) == [("RDS upgrades", utc(2026, 6, 7, 0), utc(2026, 6, 7, 2))]
    assert occurrences(acme, utc(2026, 6, 7, 2), utc(2026, 6, 7, 3)) == []  # ends are open


def test_overlapping_windows_are_each_reported() -> None:
    daily = MaintenanceWindow(name="Nightly", cron="0 1 * * *", duration="2h")  # type: ignore[arg-type]
    acme = customer(WEEKLY, daily)

    found = active(occurrences(acme, utc(2026, 6, 6), utc(2026, 6, 8)), utc(2026, 6, 7, 0, 30))

    assert [w.name for w in found] == ["Nightly", "RDS upgrades"]


# --- one-off windows, scope, upcoming ---------------------------------------------------------


def test_a_one_off_window_is_read_in_the_customers_zone() -> None:
    acme = customer(MIGRATION)

    found = occurrences(acme, utc(2026, 12, 1), utc(2027, 1, 1))

    assert spans(found) == [  # 22:00 CET to 04:00 CET
        ("Data-centre migration", utc(2026, 12, 12, 21), utc(2026, 12, 13, 3))
    ]
    assert occurrences(acme, utc(2026, 12, 13, 3), utc(2027, 1, 1)) == []
    assert (found[0].accounts, found[0].checks) == (None, None)


def test_a_window_covers_only_its_accounts_and_checks() -> None:
    [weekly] = occurrences(customer(WEEKLY), utc(2026, 6, 6), utc(2026, 6, 8))
    [migration] = occurrences(customer(MIGRATION), utc(2026, 12, 1), utc(2027, 1, 1))

    assert weekly.covers("acme-prod", "rds")
    assert not weekly.covers("acme-prod", "alarms")
    assert not weekly.covers("acme-staging", "rds")
    assert migration.covers("acme-staging", "alarms")  # no accounts or checks: all of them


def test_upcoming_windows_are_those_opening_within_the_week_ahead() -> None:
    acme = customer(WEEKLY, MIGRATION)
    now = utc(2026, 12, 10, 12)  # a Thursday

    windows = occurrences(acme, now, now + maintenance.UPCOMING)

    assert spans(upcoming(windows, now)) == [
        ("Data-centre migration", utc(2026, 12, 12, 21), utc(2026, 12, 13, 3)),
        ("RDS upgrades", utc(2026, 12, 13, 1), utc(2026, 12, 13, 3)),
    ]
    assert active(windows, now) == []
    assert [w.name for w in active(windows, utc(2026, 12, 13, 1, 30))] == [
        "Data-centre migration",
        "RDS upgrades",
    ]
    assert [w.name for w in upcoming(windows, now, timedelta(days=2, hours=12))] == [
        "Data-centre migration"
    ]


def test_a_cron_matching_every_minute_is_cut_at_a_bound() -> None:
    busy = MaintenanceWindow(name="Busy", cron="* * * * *", duration="1m")  # type: ignore[arg-type]

    found = occurrences(customer(busy), utc(2026, 6, 1), utc(2026, 6, 8))

    assert len(found) == maintenance.MAX_OCCURRENCES
    assert found[0].starts_at == utc(2026, 6, 1)


# --- started from Slack, on each database ------------------------------------------------------


async def started(db: Database, **overrides: object) -> Window:
    values: dict[str, object] = {
        "name": "Maintenance of acme-prod",
        "accounts": ("acme-prod",),
        "checks": None,
        "starts_at": utc(2026, 12, 10, 9),
        "ends_at": utc(2026, 12, 10, 11),
        "reason": "Engine upgrade",
        "by": "U0ALICE",
        "audit": {"via": "slack", "channel": "C0OPS"},
    }
    values.update(overrides)
    return await maintenance.start(db, "acme", **values)  # type: ignore[arg-type]


async def test_a_window_started_from_slack_is_read_back_beside_the_yaml_ones(db: Database) -> None:
    acme = customer(WEEKLY, MIGRATION)
    window = await started(db, starts_at=utc(2026, 12, 13, 2), ends_at=utc(2026, 12, 13, 4))

    async with db.read() as session:
        found = await maintenance.windows_in(session, acme, utc(2026, 12, 12), utc(2026, 12, 14))

    assert [(w.name, w.source, w.starts_at, w.ends_at) for w in found] == [
        ("Data-centre migration", "config", utc(2026, 12, 12, 21), utc(2026, 12, 13, 3)),
        ("RDS upgrades", "config", utc(2026, 12, 13, 1), utc(2026, 12, 13, 3)),
        ("Maintenance of acme-prod", "slack", utc(2026, 12, 13, 2), utc(2026, 12, 13, 4)),
    ]
    assert found[2] == window
    assert (window.accounts, window.checks, window.reason, window.by) == (
        ("acme-prod",),
        None,
        "Engine upgrade",
        "U0ALICE",
    )
    assert window.id is not None


async def test_only_the_customers_own_windows_in_the_span_are_read(db: Database) -> None:
    await started(db)  # 09:00-11:00 UTC
    await maintenance.start(
        db,
        "other",
        name="Theirs",
        accounts=None,
        checks=None,
        starts_at=utc(2026, 12, 10, 9),
        ends_at=utc(2026, 12, 10, 11),
        reason=None,
        by="U0BOB",
        audit={},
    )
    acme = customer()

    async with db.read() as session:
        during = await maintenance.windows_in(
            session, acme, utc(2026, 12, 10, 10), utc(2026, 12, 10, 10, 1)
        )
        after = await maintenance.windows_in(
            session, acme, utc(2026, 12, 10, 11), utc(2026, 12, 11)
        )
        before = await maintenance.windows_in(
            session, acme, utc(2026, 12, 10), utc(2026, 12, 10, 9)
        )

    assert [w.name for w in during] == ["Maintenance of acme-prod"]
    assert after == [] and before == []


async def test_a_window_ended_early_lasts_until_it_was_ended(db: Database) -> None:
    window = await started(db)
    async with db.write() as session:
        await session.execute(
            update(Maintenance)
            .where(Maintenance.id == window.id)
            .values(ended_by="U0ADMIN", ended_at=utc(2026, 12, 10, 10))
        )

    async with db.read() as session:
        found = await maintenance.windows_in(
            session, customer(), utc(2026, 12, 10), utc(2026, 12, 11)
        )
        later = await maintenance.windows_in(
            session, customer(), utc(2026, 12, 10, 10), utc(2026, 12, 11)
        )

    assert spans(found) == [
        ("Maintenance of acme-prod", utc(2026, 12, 10, 9), utc(2026, 12, 10, 10))
    ]
    assert later == []


async def test_starting_a_window_is_audited_in_its_transaction(db: Database) -> None:
    window = await started(db)

    async with db.read() as session:
        events = (
            (await session.execute(select(RunEvent).where(RunEvent.type == "answer")))
            .scalars()
            .all()
        )

    [event] = events
    assert (event.run_id, event.actor) == (None, "U0ALICE")
    assert event.data == {
        "via": "slack",
        "channel": "C0OPS",
        "action": "maintenance",
        "customer": "acme",
        "window": maintenance.as_json(window),
    }
    assert event.data["window"]["ends_at"] == "2026-12-10T11:00:00+00:00"


@pytest.mark.parametrize(
    "ends_at", [utc(2026, 12, 10, 9), utc(2026, 12, 10, 8), utc(2026, 12, 17, 9, 1)]
)
async def test_a_window_of_no_time_or_over_seven_days_is_refused_and_nothing_is_kept(
    db: Database, ends_at: datetime
) -> None:
    with pytest.raises(MaintenanceError, match="lasts from 1m to 7d"):
        await started(db, ends_at=ends_at)

    async with db.read() as session:
        assert (await session.execute(select(Maintenance))).scalars().all() == []
        assert (await session.execute(select(RunEvent))).scalars().all() == []
