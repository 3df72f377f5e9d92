"""Provider events as `Tx` stores them once each (the events table's unique provider, external id, kind)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite

from herald.providers.base import ProviderEvent
from herald.store import schema as t
from herald.store.base import TxBase, dialect_insert
from herald.store.direct import MAX_ROWID, Direct, Plan

_MAX_EVENT_ID = "SELECT max(id) FROM events"
_EVENT_KEYS_AFTER = "SELECT provider, external_id, kind FROM events WHERE id > ?"
_RECORD_EVENTS: dict[str, Any] = {}
#: The columns of an events row as `applied_event_values` and `insert_event_rows` give them, in order.
EVENT_KEYS = (
    "provider",
    "external_id",
    "kind",
    "occurred_at",
    "received_at",
    "payload",
    "subject",
    "attempt_id",
    "applied_at",
    "tries",
    "pending_reason",
)


def event_payload(event: ProviderEvent) -> dict[str, Any]:
    """What the `payload` column keeps of an event: its data, and the message it answers (`ref`) when it names one."""
    return {"ref": event.ref, **event.data} if event.ref else dict(event.data)


def applied_event_values(event: ProviderEvent, now: datetime) -> list[Any]:
    """The `events` row of an event received and applied at `now`, as values in `EVENT_KEYS` order."""
    return [
        event.provider,
        event.external_id,
        event.kind,
        event.occurred_at,
        now,
        event_payload(event),
        event.subject,
        event.attempt_id,
        now,
        0,
        "",
    ]


def event_row(
    event: ProviderEvent, now: datetime, *, applied_at: datetime | None, available_at: datetime | None = None
) -> dict[str, Any]:
    """The `events` row of an event received at `now`: applied already (`applied_at`), or waiting in the inbox until
    `available_at`."""
    return {
        "provider": event.provider,
        "external_id": event.external_id,
        "kind": event.kind,
        "occurred_at": event.occurred_at,
        "received_at": now,
        "payload": event_payload(event),
        "subject": event.subject,
        "attempt_id": event.attempt_id,
        "applied_at": applied_at,
        "available_at": available_at,
        "tries": 0,
        "pending_reason": "",
    }


class EventQueries(TxBase):
    """Events."""

    def record_events(self, events: Sequence[ProviderEvent], now: datetime) -> list[ProviderEvent]:
        """Store events once each (unique provider, external id, kind) as applied by the caller in this
        transaction; return only those not seen before. (Events received for a worker to apply go through
        `herald.store.inbox.add`.)"""
        unique: dict[tuple[str, str, str], ProviderEvent] = {}
        for event in events:
            unique.setdefault(event.key, event)
        if not unique:
            return []
        direct = self.direct()
        if direct is not None:
            plan = self._event_plan(direct)
            # Every column is given (none left to a default), so rows go straight in the statement's order.
            if plan is not None:
                rows = [applied_event_values(event, now) for event in unique.values()]
                # One executemany; its row count says how many were new. From its first insert this transaction
                # holds the write lock and each new row takes the largest id so far plus one (no AUTOINCREMENT), so
                # when some were already stored, the new ones are those with the largest ids right after it.
                cursor = direct.cursor
                direct.many_rows(plan, rows)
                added = cursor.rowcount
                if added == len(rows):
                    return list(unique.values())
                if added == 0:
                    return []
                largest = cursor.execute(_MAX_EVENT_ID).fetchone()[0]
                if largest >= MAX_ROWID:
                    # From there SQLite picks ids at random and the new rows cannot be told from the old ones.
                    raise RuntimeError("the events table has reached SQLite's largest rowid")
                cursor.execute(_EVENT_KEYS_AFTER, (largest - added,))
                inserted = {(row[0], row[1], row[2]) for row in cursor.fetchall()}
                return [event for key, event in unique.items() if key in inserted]
        params = [event_row(event, now, applied_at=now) for event in unique.values()]
        dialect = self.connection.dialect.name
        statement = _RECORD_EVENTS.get(dialect)
        if statement is None:
            statement = _RECORD_EVENTS[dialect] = (
                dialect_insert(self.connection, t.events)
                .on_conflict_do_nothing(index_elements=["provider", "external_id", "kind"])
                .returning(t.events.c.provider, t.events.c.external_id, t.events.c.kind)
            )
        inserted = {(row[0], row[1], row[2]) for row in self.connection.execute(statement, params)}
        return [event for key, event in unique.items() if key in inserted]

    @staticmethod
    def _event_plan(direct: Direct) -> Plan | None:
        statement = _RECORD_EVENTS.get("direct")
        if statement is None:
            statement = _RECORD_EVENTS["direct"] = sqlite.insert(t.events).on_conflict_do_nothing(
                index_elements=["provider", "external_id", "kind"]
            )
        plan = direct.plan(statement, EVENT_KEYS)
        return plan if plan is not None and plan.names == EVENT_KEYS else None

    def insert_event_rows(self, rows: list[list[Any]]) -> None:
        """Store events known to be new and applied, as rows of values in `EVENT_KEYS` order (SQLite only)."""
        direct = self.direct()
        plan = self._event_plan(direct) if direct is not None else None
        if direct is None or plan is None:
            raise RuntimeError("insert_event_rows needs SQLite's direct path")
        direct.many_rows(plan, rows)

    def event_count(self) -> int:
        """Events stored."""
        return int(self.connection.execute(select(func.count()).select_from(t.events)).scalar_one())
