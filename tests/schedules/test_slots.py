"""When schedules fire: cron in the customer's zone, both DST transitions, slot keys, the
listing `/monitor schedules` shows. Pure functions, time frozen where "now" matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
import time_machine

from app.config import Schedule
from app.schedules.slots import (
    CronCadence,
    EverySeconds,
    Slot,
    fire_times,
    fires_between,
    next_fire,
    next_fire_times,
)
from app.schedules.timer import SlotTrigger
from app.settings import Settings
from tests.schedules.support import SEVEN_WIB, WIB, catalog, customer

DST_ZONES = ["America/New_York", "Europe/Berlin"]
# 2026: New York springs forward on 8 March (02:00 → 03:00) and falls back on 1 November
# (02:00 → 01:00); Berlin on 29 March (02:00 → 03:00) and 25 October (03:00 → 02:00).
SPRING = {"America/New_York": (2026, 3, 8), "Europe/Berlin": (2026, 3, 29)}
FALL = {"America/New_York": (2026, 11, 1, 1), "Europe/Berlin": (2026, 10, 25, 2)}


def local(zone: str, *parts: int, fold: int = 0) -> datetime:
    """A wall-clock time in ``zone`` as a UTC instant (aware datetimes in a repeated hour
    never compare equal across zones, PEP 495)."""
    return datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc]


def wall(moments: list[datetime], zone: str) -> list[str]:
    return [m.astimezone(ZoneInfo(zone)).strftime("%d %H:%M %Z") for m in moments]


def test_it_fires_the_pilot_digest_at_seven_in_jakarta() -> None:
    daily = CronCadence("0 7 * * *", WIB)
    assert daily.after(SEVEN_WIB - timedelta(minutes=1)) == SEVEN_WIB  # 00:00 UTC
    assert daily.after(SEVEN_WIB) == SEVEN_WIB + timedelta(days=1)
    assert daily.at_or_before(SEVEN_WIB) == SEVEN_WIB
    assert daily.at_or_before(SEVEN_WIB - timedelta(seconds=1)) == SEVEN_WIB - timedelta(days=1)


def test_it_reads_the_cron_in_each_customers_zone() -> None:
    moment = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    jakarta = CronCadence("0 7 * * *", WIB).after(moment)
    london = CronCadence("0 7 * * *", ZoneInfo("Europe/London")).after(moment)
    assert (
        jakarta.astimezone(WIB).hour == 7 and london.astimezone(ZoneInfo("Europe/London")).hour == 7
    )
    assert london - jakarta == timedelta(hours=7)


def test_it_keys_a_slot_by_its_fire_time_in_utc() -> None:
    slot = Slot("aryanoble", "daily", SEVEN_WIB.astimezone(WIB))
    assert slot.key == "schedule:aryanoble:daily:2026-11-21T00:00:00Z"


@pytest.mark.parametrize("zone", DST_ZONES)
def test_it_fires_a_wall_time_skipped_by_spring_forward_once_shifted_by_the_gap(
    zone: str,
) -> None:
    year, month, day = SPRING[zone]
    cadence = CronCadence("30 2 * * *", ZoneInfo(zone))
    fires = fire_times(cadence, local(zone, year, month, day - 1, 12), 2)
    assert fires == [
        local(zone, year, month, day, 3, 30),  # 02:30 never happens that day: 03:30, once
        local(zone, year, month, day + 1, 2, 30),
    ]
    day_before = cadence.at_or_before(fires[0] - timedelta(seconds=1))
    assert day_before == local(zone, year, month, day - 1, 2, 30)
    assert fires[0] - day_before == timedelta(hours=24)


@pytest.mark.parametrize("zone", DST_ZONES)
def test_it_fires_an_hourly_cron_once_per_real_hour_across_spring_forward(zone: str) -> None:
    year, month, day = SPRING[zone]
    start = local(zone, year, month, day, 0, 30)
    fires = fires_between(
        CronCadence("0 * * * *", ZoneInfo(zone)), start, start + timedelta(hours=4)
    )
    assert [f.astimezone(ZoneInfo(zone)).hour for f in fires] == [1, 3, 4, 5]
    assert len(set(fires)) == len(fires)


@pytest.mark.parametrize("zone", DST_ZONES)
def test_it_fires_a_wall_time_repeated_by_fall_back_once_at_its_first_occurrence(
    zone: str,
) -> None:
    year, month, day, hour = FALL[zone]
    cadence = CronCadence(f"30 {hour} * * *", ZoneInfo(zone))
    start = local(zone, year, month, day, 0, 0) - timedelta(hours=12)
    fires = fires_between(cadence, start, start + timedelta(days=2))
    first = local(zone, year, month, day, hour, 30, fold=0)
    second = local(zone, year, month, day, hour, 30, fold=1)
    assert first in fires and second not in fires
    assert len(fires) == 2  # that day's, and the next day's
    assert second - first == timedelta(hours=1)


@pytest.mark.parametrize("zone", DST_ZONES)
def test_it_does_not_repeat_minutes_when_the_clock_falls_back(zone: str) -> None:
    year, month, day, hour = FALL[zone]
    start = local(zone, year, month, day, hour - 1, 0)
    fires = fires_between(
        CronCadence("* * * * *", ZoneInfo(zone)), start, start + timedelta(hours=3)
    )
    walls = [f.astimezone(ZoneInfo(zone)).replace(tzinfo=None) for f in fires]
    assert len(walls) == len(set(walls)) == 120  # 3 real hours, the repeated hour fires once
    assert fires == sorted(fires)


@pytest.mark.parametrize("zone", DST_ZONES)
def test_it_fires_every_real_minute_once_when_the_clock_springs_forward(zone: str) -> None:
    year, month, day = SPRING[zone]
    start = local(zone, year, month, day, 1, 0)
    fires = fires_between(
        CronCadence("* * * * *", ZoneInfo(zone)), start, start + timedelta(hours=2)
    )
    assert len(fires) == len(set(fires)) == 120
    assert all(b - a == timedelta(minutes=1) for a, b in pairwise(fires))


@pytest.mark.parametrize("zone", DST_ZONES)
def test_it_finds_the_latest_slot_across_both_transitions(zone: str) -> None:
    tz = ZoneInfo(zone)
    year, month, day = SPRING[zone]
    spring = CronCadence("30 2 * * *", tz)
    shifted = local(zone, year, month, day, 3, 30)
    assert spring.at_or_before(shifted) == shifted
    assert spring.at_or_before(shifted - timedelta(seconds=1)) == local(
        zone, year, month, day - 1, 2, 30
    )
    year, month, day, hour = FALL[zone]
    fall = CronCadence(f"30 {hour} * * *", tz)
    first = local(zone, year, month, day, hour, 30)
    assert fall.at_or_before(local(zone, year, month, day, hour, 45, fold=1)) == first
    assert fall.at_or_before(first - timedelta(seconds=1)) == first - timedelta(hours=24)


def test_it_lists_next_fire_times_in_each_customers_zone_soonest_first() -> None:
    with time_machine.travel(SEVEN_WIB - timedelta(minutes=5), tick=False):
        upcoming = next_fire_times(catalog(), datetime.now(UTC))
    [only] = upcoming
    assert only.at == SEVEN_WIB and only.at.tzinfo == WIB
    assert only.at.strftime("%a %d %b %H:%M %Z") == "Sat 21 Nov 07:00 WIB"
    with time_machine.travel(SEVEN_WIB + timedelta(minutes=5), tick=False):
        tomorrow = next_fire(
            Schedule(name="daily", cron="0 7 * * *"), customer(), datetime.now(UTC)
        )
    assert tomorrow == SEVEN_WIB + timedelta(days=1)


def test_it_gives_apscheduler_the_same_instants_as_the_slot_keys() -> None:
    trigger = SlotTrigger(CronCadence("0 7 * * *", WIB))
    now = SEVEN_WIB - timedelta(hours=1)
    assert trigger.get_next_fire_time(None, now) == SEVEN_WIB
    assert trigger.get_next_fire_time(SEVEN_WIB, now) == SEVEN_WIB + timedelta(days=1)


def test_it_fires_test_slots_on_multiples_of_the_test_interval() -> None:
    every = EverySeconds(10)
    moment = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert every.after(moment) == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert every.at_or_before(moment) == datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)


def test_it_takes_the_misfire_grace_in_seconds_or_as_a_window() -> None:
    assert Settings().misfire_grace == timedelta(minutes=15)
    assert Settings(HUB_MISFIRE_GRACE="900").misfire_grace == timedelta(minutes=15)
    assert Settings(HUB_MISFIRE_GRACE="1h").misfire_grace == timedelta(hours=1)
    with pytest.raises(ValueError, match="not a misfire grace"):
        Settings(HUB_MISFIRE_GRACE="soon")
