"""Durations: computing whole seconds, and the `MM:SS` text of the exports (SPEC §5.1)."""

from __future__ import annotations

import math
import re
from datetime import datetime

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2})$")
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


class DurationError(ValueError):
    """A duration text that is none of `MM:SS`, `H:MM:SS` or plain seconds."""


def call_seconds(started_at: datetime | None, ended_at: datetime | None) -> int:
    """Whole seconds from answer to end, rounded up; 0 for a call that was never answered."""
    if started_at is None or ended_at is None:
        return 0
    delta = (ended_at - started_at).total_seconds()
    return max(0, math.ceil(delta))


def format_mmss(seconds: int) -> str:
    """`MM:SS` with minutes zero-padded to two digits and allowed past 59 (`125:07`)."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def parse_duration(text: str) -> int:
    """Seconds from `MM:SS` (minutes may exceed 59), `H:MM:SS` or plain (possibly fractional, rounded up) seconds.

    An empty string reads as 0, since exports write durations of unanswered calls as `00:00` or blank.
    """
    value = text.strip()
    if value == "":
        return 0
    if _SECONDS.match(value):
        return math.ceil(float(value))
    match = _CLOCK.match(value)
    if match is None:
        raise DurationError(f"not a duration (MM:SS, H:MM:SS or seconds): {text!r}")
    hours_text, minutes_text, seconds_text = match.groups()
    seconds = int(seconds_text)
    if seconds > 59:
        raise DurationError(f"seconds past 59 in duration: {text!r}")
    if hours_text is None:
        return int(minutes_text) * 60 + seconds
    minutes = int(minutes_text)
    if minutes > 59:
        raise DurationError(f"minutes past 59 in H:MM:SS duration: {text!r}")
    return int(hours_text) * 3600 + minutes * 60 + seconds
