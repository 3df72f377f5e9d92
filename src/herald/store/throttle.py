"""Rates shared through the database: the generic cell rate algorithm (GCRA), keyed by anything.

GCRA keeps one number per key, its theoretical arrival time (`tat`, seconds since the epoch). A unit arriving at `now`
conforms when `tat - now <= tolerance` (the tolerance, `(burst - 1) * interval`, lets `burst` units through back to
back), and then moves `tat` on by one interval. One conditional upsert decides and records that atomically, so any
number of processes on one PostgreSQL database (or one SQLite file) share a limit without talking to each other.
Times are the processes' wall clocks, so keep the machines in sync (NTP).

Two users: API keys (`herald.api.ratelimit`, one request at a time) and provider starts (`reserve`, below: the
calls-per-second of a Twilio account, the messages-per-second of a WhatsApp number), where a worker reserves the
slots of a batch at once and paces its starts to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, case, select

from herald.providers.base import Throughput
from herald.store import schema as t
from herald.store.base import dialect_insert
from herald.store.queries import Tx

#: Rounding room for the float arithmetic done on both sides (here and in the database).
_EPSILON = 1e-9
#: Attempts at a reservation when another process moved the key between our read and our write.
_RACES = 5


def admit(
    connection: Connection,
    table: Table,
    key_column: str,
    key: Any,
    now: float,
    interval: float,
    tolerance: float,
    cost: int = 1,
) -> float | None:
    """Count `cost` units of `key` at `now` if they conform: the key's new `tat`, or None (nothing written).

    The units conform when the last of them would: `tat + (cost - 1) * interval - now <= tolerance`. `table` has the
    primary key `key_column` and a float column `tat`.
    """
    tat = table.c.tat
    later = case((tat > now, tat), else_=now)
    statement = (
        dialect_insert(connection, table)
        .values({key_column: key, "tat": now + cost * interval})
        .on_conflict_do_update(
            index_elements=[key_column],
            set_={"tat": later + cost * interval},
            where=tat - now <= tolerance - (cost - 1) * interval,
        )
        .returning(tat)
    )
    row = connection.execute(statement).first()
    return None if row is None else float(row[0])


def current(connection: Connection, table: Table, key_column: str, key: Any) -> float | None:
    """The key's `tat`, None when it has none yet."""
    value = connection.execute(select(table.c.tat).where(table.c[key_column] == key)).scalar()
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Slots reserved for starts: `go[i]` is when the i-th may start (seconds since the epoch, ascending); the
    starts that got no slot may come back at `retry_at`."""

    go: list[float]
    retry_at: float


def reserve(tx: Tx, throughput: Throughput, count: int, now: float, horizon: float) -> Reservation:
    """Reserve up to `count` consecutive start slots of `throughput.key` that open within `horizon` seconds of
    `now`. Every worker reserving under one key shares `per_second` (with `burst` back to back), so starts made at
    their `go` times never exceed the limit summed over processes."""
    interval = 1.0 / throughput.per_second
    tolerance = (max(throughput.burst, 1.0) - 1.0) * interval
    table = t.provider_throttles
    for _ in range(_RACES):
        tat = current(tx.connection, table, "key", throughput.key)
        base = max(tat if tat is not None else now, now)
        # The j-th unit from `base` may go at base + j * interval - tolerance; those that open within the horizon:
        room = math.floor((now + horizon + tolerance - base) / interval + _EPSILON) + 1
        wanted = min(count, room)
        if wanted <= 0:
            return Reservation([], base - tolerance - horizon)
        # The horizon widens the tolerance: slots opening up to `horizon` ahead are handed out now.
        new_tat = admit(
            tx.connection, table, "key", throughput.key, now, interval, tolerance + horizon + _EPSILON, wanted
        )
        if new_tat is None:
            continue  # another worker took slots meanwhile: read again
        first = new_tat - wanted * interval
        go = [max(now, first + index * interval - tolerance) for index in range(wanted)]
        return Reservation(go, max(now, new_tat - tolerance - horizon))
    return Reservation([], now + interval)
