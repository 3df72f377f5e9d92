"""The events inbox: provider events stored unapplied by whichever process receives them, applied by workers.

An event's idempotency key (provider, external id, kind) is the table's unique constraint, so a webhook delivered
twice, or by two `herald serve` processes, is stored once. On PostgreSQL a worker takes a batch with `FOR UPDATE
SKIP LOCKED`, so workers drain the inbox side by side without applying an event twice; on SQLite the write
transaction holds the database's lock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func, select, update

from herald.providers.base import ProviderEvent
from herald.store import schema as t
from herald.store.base import NOTIFY_CHANNEL, dialect_insert
from herald.store.events import event_payload, event_row
from herald.store.queries import Tx

_e = t.events.c
#: An event that found no call or message is tried again after this long, doubling up to `_RETRY_MAX`.
_RETRY_FIRST = timedelta(seconds=1)
_RETRY_MAX = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class InboxResult:
    """What storing a webhook's events did."""

    accepted: int
    duplicates: int


def add(tx: Tx, events: Sequence[ProviderEvent], now: datetime, *, scheduled: bool = False) -> InboxResult:
    """Store events unapplied; a duplicate (same provider, external id, kind) is a no-op.

    With `scheduled`, each event becomes applicable at its own `occurred_at` (a live simulator's events, stored
    when the attempt starts so that no worker's death can lose them); otherwise at once.
    """
    unique: dict[tuple[str, str, str], ProviderEvent] = {}
    for event in events:
        unique.setdefault(event.key, event)
    if not unique:
        return InboxResult(0, len(events))
    ordered = [unique[key] for key in sorted(unique)]
    if tx.connection.dialect.name == "postgresql":
        accepted = _add_postgresql(tx, ordered, now, scheduled)
    else:
        statement = (
            dialect_insert(tx.connection, t.events)
            .on_conflict_do_nothing(index_elements=["provider", "external_id", "kind"])
            .returning(_e.id)
        )
        rows = [event_row(e, now, applied_at=None, available_at=e.occurred_at if scheduled else now) for e in ordered]
        accepted = 0
        for start in range(0, len(rows), _CHUNK):
            accepted += len(tx.connection.execute(statement, rows[start : start + _CHUNK]).all())
        if accepted and not scheduled:
            tx.notify_workers()
    return InboxResult(accepted, len(events) - accepted)


#: Events per insert statement.
_CHUNK = 500

# One statement per chunk on PostgreSQL: the rows go in as one JSON text (a fixed statement, prepared once per
# connection, where a VALUES list would be a new statement for every body size; and one JSON text is cheaper to send
# than arrays, which psycopg dumps element by element), and the workers' NOTIFY rides in the same round trip.
# `ORDER BY n` keeps the key order given: two statements inserting overlapping events then wait for each other in
# the same order instead of deadlocking (PostgreSQL waits on a concurrent insert of the same unique key).
_PG_INSERT = """
WITH inserted AS (
    INSERT INTO events (provider, external_id, kind, occurred_at, received_at, payload, subject, attempt_id,
                        applied_at, available_at, tries, pending_reason)
    SELECT provider, external_id, kind, occurred_at, %(received_at)s, payload, subject, attempt_id,
           NULL, coalesce(available_at, %(received_at)s), 0, ''
    FROM ROWS FROM (json_to_recordset(%(rows)s::json) AS (provider text, external_id text, kind text,
                    occurred_at timestamp, payload json, subject text, attempt_id text, available_at timestamp))
         WITH ORDINALITY AS given(provider, external_id, kind, occurred_at, payload, subject, attempt_id, available_at,
                                  n)
    ORDER BY n
    ON CONFLICT (provider, external_id, kind) DO NOTHING
    RETURNING 1
)
SELECT n{notify} FROM (SELECT count(*) AS n FROM inserted) AS counted
"""
_PG_INSERT_QUIET = _PG_INSERT.format(notify="")
#: The payload of the NOTIFY of stored webhook events (other work is announced without one): a worker woken by it
#: alone knows that only the inbox has news.
EVENTS_NOTICE = "events"
_PG_INSERT_NOTIFY = _PG_INSERT.format(notify=f", (SELECT pg_notify('{NOTIFY_CHANNEL}', '{EVENTS_NOTICE}') WHERE n > 0)")


def _naive_utc(at: datetime) -> str:
    # As schema.UTCDateTime stores it: naive UTC, here as the ISO text `timestamp` parses.
    return t.naive_utc(at).isoformat()


def _add_postgresql(tx: Tx, events: Sequence[ProviderEvent], now: datetime, scheduled: bool) -> int:
    dumps = getattr(tx.connection.dialect, "_json_serializer", None) or json.dumps
    received_at = t.UTCDateTime().process_bind_param(now, tx.connection.dialect)
    accepted = 0
    for start in range(0, len(events), _CHUNK):
        chunk = events[start : start + _CHUNK]
        rows = [
            {
                "provider": e.provider,
                "external_id": e.external_id,
                "kind": e.kind,
                "occurred_at": (occurred := _naive_utc(e.occurred_at)),
                "payload": event_payload(e),
                "subject": e.subject,
                "attempt_id": e.attempt_id,
                # Unset: available at once (the statement's received_at).
                "available_at": occurred if scheduled else None,
            }
            for e in chunk
        ]
        row = tx.connection.exec_driver_sql(
            _PG_INSERT_QUIET if scheduled else _PG_INSERT_NOTIFY,
            {"received_at": received_at, "rows": dumps(rows)},
        ).one()
        accepted += int(row[0])
    return accepted


@dataclass(frozen=True, slots=True)
class Taken:
    """An inbox event taken by a worker to apply."""

    id: int
    tries: int
    event: ProviderEvent


# PostgreSQL's take, on the driver: a worker runs it every round, and SQLAlchemy's row processing cost more than it.
_PG_TAKE = """
SELECT id, provider, external_id, kind, occurred_at, payload, subject, attempt_id, tries FROM events
WHERE applied_at IS NULL AND available_at <= %s ORDER BY available_at, id LIMIT %s FOR UPDATE SKIP LOCKED
"""


def take(tx: Tx, now: datetime, limit: int) -> list[Taken]:
    """Up to `limit` unapplied events whose time has come, oldest first, locked for this transaction."""
    if tx.locks_rows:
        taken: list[Taken] = []
        rows = tx.connection.exec_driver_sql(_PG_TAKE, (t.naive_utc(now), limit))
        for event_id, provider, external_id, kind, occurred_at, payload, subject, attempt_id, tries in rows:
            data = dict(payload or {})
            event = ProviderEvent(
                provider=provider,
                external_id=external_id,
                kind=kind,
                occurred_at=occurred_at.replace(tzinfo=UTC),
                ref=str(data.pop("ref", "")),
                data=data,
                subject=subject,
                attempt_id=attempt_id,
            )
            taken.append(Taken(event_id, int(tries), event))
        return taken
    query = (
        select(
            _e.id,
            _e.provider,
            _e.external_id,
            _e.kind,
            _e.occurred_at,
            _e.payload,
            _e.subject,
            _e.attempt_id,
            _e.tries,
        )
        .where(_e.applied_at.is_(None), _e.available_at <= now)
        .order_by(_e.available_at, _e.id)
        .limit(limit)
    )
    taken = []
    for row in tx.connection.execute(query):
        payload = dict(row.payload or {})
        ref = str(payload.pop("ref", ""))
        event = ProviderEvent(
            provider=row.provider,
            external_id=row.external_id,
            kind=row.kind,
            occurred_at=row.occurred_at,
            ref=ref,
            data=payload,
            subject=row.subject,
            attempt_id=row.attempt_id,
        )
        taken.append(Taken(row.id, int(row.tries), event))
    return taken


def mark_applied(tx: Tx, ids: Sequence[int], now: datetime) -> None:
    """Events applied."""
    if not ids:
        return
    # One statement for the batch: PostgreSQL runs an executemany as one statement per row. There, an array: the
    # same statement text whatever the batch's size (an IN list is converted and planned anew for each size).
    if tx.locks_rows:
        tx.connection.exec_driver_sql(_PG_MARK_APPLIED, (t.naive_utc(now), list(ids)))
    else:
        tx.connection.execute(update(t.events).where(_e.id.in_(list(ids))).values(applied_at=now))


_PG_MARK_APPLIED = "UPDATE events SET applied_at = %s WHERE id = ANY(%s::integer[])"


def postpone(tx: Tx, pending: Sequence[tuple[int, int, str]], now: datetime) -> None:
    """Events that could not be applied yet, as (id, tries so far, reason): kept, counted, tried again later."""
    if pending:
        tx.connection.execute(
            update(t.events)
            .where(_e.id == bindparam("_id"))
            .values(available_at=bindparam("_at"), tries=bindparam("_tries"), pending_reason=bindparam("_reason")),
            [
                {
                    "_id": event_id,
                    "_at": now + min(_RETRY_MAX, _RETRY_FIRST * 2 ** min(tries, 20)),
                    "_tries": tries + 1,
                    "_reason": reason,
                }
                for event_id, tries, reason in pending
            ],
        )


def next_available(tx: Tx) -> datetime | None:
    """When the earliest unapplied event becomes applicable."""
    value = tx.connection.execute(select(func.min(_e.available_at)).where(_e.applied_at.is_(None))).scalar()
    return t.UTCDateTime().process_result_value(value, tx.connection.dialect)


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event waiting in the inbox, for `herald events --pending`."""

    id: int
    provider: str
    external_id: str
    kind: str
    attempt_id: str
    occurred_at: datetime
    received_at: datetime
    available_at: datetime | None
    tries: int
    reason: str


def pending(tx: Tx, limit: int = 100) -> tuple[int, list[PendingEvent]]:
    """How many events are unapplied, and the oldest `limit` of them."""
    count = int(tx.connection.execute(select(func.count()).where(_e.applied_at.is_(None))).scalar_one())
    rows = tx.connection.execute(
        select(t.events).where(_e.applied_at.is_(None)).order_by(_e.received_at, _e.id).limit(limit)
    )
    return count, [
        PendingEvent(
            id=row.id,
            provider=row.provider,
            external_id=row.external_id,
            kind=row.kind,
            attempt_id=row.attempt_id,
            occurred_at=row.occurred_at,
            received_at=row.received_at,
            available_at=row.available_at,
            tries=row.tries,
            reason=row.pending_reason,
        )
        for row in rows
    ]
