"""Requests per second per API key, shared by every `herald serve` process through the database.

The generic cell rate algorithm (`herald.store.throttle.admit`) keeps one number per key, its theoretical arrival time
(`tat`): a request at `now` is allowed when `tat - now <= tau` (tau lets `burst` requests through back to back) and
moves `tat` on by one interval. One conditional upsert decides and records it atomically, so processes on one
PostgreSQL database (or one SQLite file) share the limit without talking to each other. Times are the servers'
clocks, so keep them in sync (NTP).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from herald.store import schema as t
from herald.store.queries import Tx
from herald.store.throttle import admit, current

DEFAULT_RATE = 12.0
_SMALLEST_WAIT = 0.001


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`rate` requests a second on average, `burst` of them at once."""

    rate: float
    burst: float

    @property
    def interval(self) -> float:
        """Seconds one request uses up."""
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        """How far ahead of now a key's arrival time may run before requests are refused."""
        return (self.burst - 1.0) * self.interval


def from_environment() -> RateLimit | None:
    """HERALD_RATE_LIMIT (requests a second, default 12; 0 or `off` turns limiting off) and HERALD_RATE_BURST
    (default: one second's worth, at least 1). A value that is not a number is an error at start-up."""
    text = os.environ.get("HERALD_RATE_LIMIT", str(DEFAULT_RATE)).strip().lower()
    if text in ("0", "off", "none", ""):
        return None
    burst_text = os.environ.get("HERALD_RATE_BURST", "").strip()
    try:
        rate = float(text)
        burst = float(burst_text) if burst_text else max(1.0, rate)
    except ValueError:
        raise ValueError(
            f"HERALD_RATE_LIMIT={text!r} / HERALD_RATE_BURST={burst_text!r}: not numbers (requests a second)"
        ) from None
    if rate <= 0 or not math.isfinite(rate) or burst < 1 or not math.isfinite(burst):
        raise ValueError("HERALD_RATE_LIMIT must be a positive number and HERALD_RATE_BURST at least 1")
    return RateLimit(rate, burst)


def take(tx: Tx, api_key_id: int, now: float, limit: RateLimit) -> float | None:
    """Count one request of the key at `now` (seconds since the epoch): None if allowed, else the seconds to wait."""
    table = t.rate_limits
    if admit(tx.connection, table, "api_key_id", api_key_id, now, limit.interval, limit.tolerance) is not None:
        return None
    tat = current(tx.connection, table, "api_key_id", api_key_id)
    assert tat is not None  # refused means the key has a row
    # Refused by the database's arithmetic; the wait computed here may round to nothing, and must not.
    return max(tat - limit.tolerance - now, _SMALLEST_WAIT)
