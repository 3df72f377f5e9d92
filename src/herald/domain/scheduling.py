"""Sending windows: when an attempt may start, in a campaign's (or contact's) time zone (SPEC §2.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class DayWindow:
    """One weekday's opening, `start` inclusive to `stop` exclusive, in local time."""

    start: time
    stop: time | None  # None means midnight at the end of the day ("24:00")
    active: bool = True


Schedule = Mapping[str, DayWindow]


def parse_hhmm(text: str) -> time | None:
    """`HH:MM` to a time; `24:00` gives None (end of day)."""
    hours_text, sep, minutes_text = text.strip().partition(":")
    if not sep or not hours_text.isdigit() or not minutes_text.isdigit() or len(minutes_text) != 2:
        raise ValueError(f"time must be HH:MM, got {text!r}")
    hours, minutes = int(hours_text), int(minutes_text)
    if (hours, minutes) == (24, 0):
        return None
    if hours > 23 or minutes > 59:
        raise ValueError(f"time out of range: {text!r}")
    return time(hours, minutes)


def _local(day: date, at: time | None, zone: ZoneInfo) -> datetime:
    if at is None:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return datetime.combine(day, at, tzinfo=zone)


def next_open(schedule: Schedule | None, zone: ZoneInfo, at: datetime) -> datetime | None:
    """The first instant at or after `at` (UTC) when the schedule is open, or None if it never opens.

    A missing schedule is always open. Windows never cross midnight; a day with `stop <= start` is closed.
    """
    if schedule is None:
        return at
    local = at.astimezone(zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        window = schedule.get(WEEKDAYS[day.weekday()])
        if window is None or not window.active:
            continue
        opens = _local(day, window.start, zone).astimezone(UTC)
        closes = _local(day, window.stop, zone).astimezone(UTC)
        if closes <= opens:
            continue
        if at < closes:
            return max(at, opens)
    return None


def is_open(schedule: Schedule | None, zone: ZoneInfo, at: datetime) -> bool:
    """True when an attempt may start at `at` (UTC)."""
    return next_open(schedule, zone, at) == at


def next_open_on_or_after(
    schedule: Schedule | None,
    zone: ZoneInfo,
    at: datetime,
    first_day: date | None = None,
    last_day: date | None = None,
) -> datetime | None:
    """Like `next_open`, limited to local dates between `first_day` and `last_day` (both inclusive)."""
    start = at
    if first_day is not None:
        first_instant = datetime.combine(first_day, time(0), tzinfo=zone).astimezone(UTC)
        start = max(start, first_instant)
    found = next_open(schedule, zone, start)
    if found is None or (last_day is not None and found.astimezone(zone).date() > last_day):
        return None
    return found
