"""The delivery state machine: what one attempt's outcome makes of a delivery (pure; no clock, no database).

A delivery is `pending` until an attempt gets a 2xx (`delivered`, never sent again) or the fifth attempt fails
(`failed`). Between failures it waits 60 s, then 2, 4 and 8 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]
MAX_ATTEMPTS = 5
#: The wait after the 1st, 2nd, 3rd and 4th failed attempt.
BACKOFF: tuple[timedelta, ...] = tuple(timedelta(seconds=60 * 2**n) for n in range(MAX_ATTEMPTS - 1))


@dataclass(frozen=True, slots=True)
class Transition:
    """A delivery after an attempt: its status, attempts made, and when to try next (None unless pending)."""

    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None


def succeeded(status_code: int | None) -> bool:
    """True for an answer that confirms receipt: any 2xx."""
    return status_code is not None and 200 <= status_code < 300


def after_attempt(attempts_before: int, ok: bool, now: datetime) -> Transition:
    """The delivery after one more attempt made at `now` (`attempts_before` attempts were made before it)."""
    if attempts_before < 0 or attempts_before >= MAX_ATTEMPTS:
        raise ValueError(f"a delivery is attempted 1 to {MAX_ATTEMPTS} times, not a {attempts_before + 1}th")
    attempts = attempts_before + 1
    if ok:
        return Transition("delivered", attempts, None)
    if attempts >= MAX_ATTEMPTS:
        return Transition("failed", attempts, None)
    return Transition("pending", attempts, now + BACKOFF[attempts - 1])
