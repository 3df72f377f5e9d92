"""Clocks: nothing in Herald reads the wall clock directly; a Clock is passed in."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the time and waits for it."""

    def now(self) -> datetime:
        """The current instant, UTC-aware."""
        ...

    def wait_until(self, instant: datetime) -> None:
        """Return once `instant` has come (at once for a virtual clock, which jumps there)."""
        ...


class RealClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current instant, UTC-aware."""
        return datetime.now(UTC)

    def wait_until(self, instant: datetime) -> None:
        """Sleep until `instant`."""
        delay = (instant - self.now()).total_seconds()
        if delay > 0:
            time.sleep(delay)


class VirtualClock:
    """Simulated time: jumps straight to the next instant anything happens, so a month runs in seconds."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The current simulated instant."""
        return self._now

    def wait_until(self, instant: datetime) -> None:
        """Jump forward to `instant` (never backwards)."""
        if instant > self._now:
            self._now = instant.astimezone(UTC)
