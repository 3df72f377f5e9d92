"""Sending windows in the campaign's time zone (SPEC §2.2)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.domain.scheduling import WEEKDAYS, DayWindow, is_open, next_open, parse_hhmm

MX = ZoneInfo("America/Mexico_City")
WEEKDAY_HOURS = {day: DayWindow(time(9), time(18)) for day in WEEKDAYS[:5]}


def test_missing_schedule_is_always_open() -> None:
    at = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    assert next_open(None, MX, at) == at


def test_inside_window_is_open_now() -> None:
    at = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)  # Monday 10:00 in Mexico City
    assert is_open(WEEKDAY_HOURS, MX, at)


def test_friday_evening_waits_for_monday_morning() -> None:
    at = datetime(2026, 1, 10, 1, 0, tzinfo=UTC)  # Friday 19:00 local
    assert next_open(WEEKDAY_HOURS, MX, at) == datetime(2026, 1, 12, 15, 0, tzinfo=UTC)


def test_stop_time_is_exclusive_and_24_00_means_midnight() -> None:
    schedule = {"mon": DayWindow(time(9), time(18))}
    at = datetime(2026, 1, 6, 0, 0, tzinfo=UTC)  # Monday 18:00 local
    assert not is_open(schedule, MX, at)
    assert parse_hhmm("24:00") is None
    late = {"mon": DayWindow(time(22), None)}
    assert is_open(late, MX, datetime(2026, 1, 6, 5, 59, tzinfo=UTC))


def test_inactive_days_and_closed_schedule() -> None:
    assert next_open({"mon": DayWindow(time(9), time(18), active=False)}, MX, datetime(2026, 1, 5, tzinfo=UTC)) is None
    assert next_open({}, MX, datetime(2026, 1, 5, tzinfo=UTC)) is None


@pytest.mark.parametrize("text", ["9", "9:5", "25:00", "12:60", "ab:cd", ""])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(text)


windows = st.builds(
    DayWindow,
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    stop=st.one_of(st.none(), st.times().map(lambda t: t.replace(second=0, microsecond=0))),
    active=st.booleans(),
)
schedules = st.dictionaries(st.sampled_from(WEEKDAYS), windows)
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
zones = st.sampled_from(["America/Mexico_City", "Europe/Madrid", "America/New_York", "Asia/Kolkata", "UTC"])


@given(schedules, zones, instants)
def test_next_open_is_open_and_nothing_earlier_is(schedule: dict[str, DayWindow], zone_name: str, at: datetime) -> None:
    zone = ZoneInfo(zone_name)
    found = next_open(schedule, zone, at)
    if found is None:
        # Never opens: then no minute of the coming week is open either.
        for minutes in range(0, 8 * 24 * 60, 37):
            assert not _open_by_definition(schedule, zone, at + timedelta(minutes=minutes))
        return
    assert found >= at
    assert _open_by_definition(schedule, zone, found)
    probe = at
    while probe < found:
        assert not _open_by_definition(schedule, zone, probe)
        probe += timedelta(minutes=53)


def _open_by_definition(schedule: dict[str, DayWindow], zone: ZoneInfo, at: datetime) -> bool:
    local = at.astimezone(zone)
    window = schedule.get(WEEKDAYS[local.weekday()])
    if window is None or not window.active:
        return False
    opens = datetime.combine(local.date(), window.start, tzinfo=zone)
    closes = (
        datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
        if window.stop is None
        else datetime.combine(local.date(), window.stop, tzinfo=zone)
    )
    return opens.astimezone(UTC) <= at < closes.astimezone(UTC)
