"""Calls as `Tx` reads and writes them: inserts at a start, lookups by provider id, updates from events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, any_, bindparam, insert, select, update

from herald.store import pg_batch
from herald.store import schema as t
from herald.store.base import TEXT_ARRAY, TxBase, chunks
from herald.store.direct import MAX_ROWID
from herald.store.records import CallRecord

_CALLS_BY_PROVIDER_ID = select(
    t.calls.c.id,
    t.calls.c.public_id,
    t.calls.c.campaign_id,
    t.calls.c.contact_id,
    t.calls.c.status,
    t.calls.c.answered_by,
    t.calls.c.started_at,
    t.calls.c.ended_at,
    t.calls.c.follow_up,
    t.calls.c.provider_call_id,
).where(t.calls.c.provider == bindparam("provider"), t.calls.c.provider_call_id.in_(bindparam("ids", expanding=True)))
_CALLS_BY_PROVIDER_ID_LOCKED = (
    select(*_CALLS_BY_PROVIDER_ID.selected_columns)
    .where(
        t.calls.c.provider == bindparam("provider"),
        t.calls.c.provider_call_id == any_(bindparam("ids", type_=TEXT_ARRAY)),
    )
    .order_by(t.calls.c.id)
    .with_for_update()
)
INSERT_CALLS = insert(t.calls)
_MAX_CALL_ID = "SELECT max(id) FROM calls"
_CALL_IDS = select(t.calls.c.public_id, t.calls.c.id).where(t.calls.c.public_id.in_(bindparam("ids", expanding=True)))
_UPDATE_CALLS: dict[tuple[str, ...], Any] = {}
# Insert keys a remembered call can take as given (the others would read back as their column default).
CALL_INSERT_KEYS = frozenset(
    {
        "public_id",
        "campaign_id",
        "contact_id",
        "provider",
        "provider_call_id",
        "type",
        "status",
        "answered_by",
        "created_at",
        "started_at",
        "ended_at",
        "follow_up",
        "cycle",
        "tags",
        "extracted",
    }
)
CALL_VIEW_FIELDS = {"status": 4, "answered_by": 5, "started_at": 6, "ended_at": 7}


def inserted_call_view(call_id: int, row: Mapping[str, Any]) -> list[Any]:
    """What the engine reads back of a call it has just inserted (positions as in `CALL_VIEW_FIELDS`), from the row given."""
    return [
        call_id,
        row["public_id"],
        row["campaign_id"],
        row["contact_id"],
        row["status"],
        row.get("answered_by"),
        row.get("started_at"),
        row.get("ended_at"),
        bool(row.get("follow_up", False)),
    ]


class CallQueries(TxBase):
    """Calls."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        # Calls this transaction inserted or read, as they stand after its own updates: id -> the values of
        # _CALLS_BY_PROVIDER_ID without the provider id, and (provider, provider id) -> id. A call's events mostly
        # arrive within the few steps that share a transaction, so they find it here instead of in the table.
        self._calls: dict[int, list[Any]] = {}
        self._call_ids: dict[tuple[str, str], int] = {}

    def insert_calls(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert calls, returning their ids in the order given."""
        if not rows:
            return []
        if self.locks_rows:
            ordered = _pg_insert_calls(self.connection, rows)
            self._remember_calls(rows, ordered)
            return ordered
        direct = self.direct()
        plan = direct.plan(INSERT_CALLS, tuple(rows[0])) if direct is not None else None
        if direct is not None and plan is not None:
            # One executemany. Without AUTOINCREMENT SQLite gives each new row the largest id so far plus one (until
            # the largest possible id), and from its first insert this transaction holds the write lock, so the new
            # ids are the largest ones right after it, in order. (Read before the insert, the largest id could be
            # outside the transaction: pysqlite only begins one at the first write.)
            direct.many(plan, rows)
            largest = direct.cursor.execute(_MAX_CALL_ID).fetchone()[0]
            if largest < MAX_ROWID:
                new_ids = list(range(largest - len(rows) + 1, largest + 1))
                self._remember_calls(rows, new_ids)
                return new_ids
        else:
            # A plain executemany and a lookup by the unique public id beat an ordered RETURNING, which SQLite
            # can only do row by row.
            self.connection.execute(INSERT_CALLS, rows)
        ids: dict[str, int] = {}
        public_ids = [row["public_id"] for row in rows]
        for chunk in chunks(public_ids):
            ids.update((row[0], row[1]) for row in self.connection.execute(_CALL_IDS, {"ids": list(chunk)}))
        ordered = [ids[public_id] for public_id in public_ids]
        self._remember_calls(rows, ordered)
        return ordered

    def _remember_calls(self, rows: Sequence[dict[str, Any]], ids: Sequence[int]) -> None:
        for row, call_id in zip(rows, ids, strict=True):
            provider_call_id = row.get("provider_call_id")
            # Only rows whose read-back values are the ones given (the rest come from column defaults).
            if provider_call_id is None or not row.keys() <= CALL_INSERT_KEYS:
                continue
            self._calls[call_id] = inserted_call_view(call_id, row)
            self._call_ids[(row["provider"], provider_call_id)] = call_id

    def set_call_provider_ids(self, pairs: Sequence[tuple[int, str]]) -> None:
        """Record each call's provider id."""
        if pairs:
            self._calls.clear()
            self._call_ids.clear()
            self.connection.execute(
                update(t.calls).where(t.calls.c.id == bindparam("_id")).values(provider_call_id=bindparam("pid")),
                [{"_id": call_id, "pid": provider_id} for call_id, provider_id in pairs],
            )

    def calls_by_provider_ids(self, provider: str, provider_ids: Iterable[str]) -> dict[str, CallRecord]:
        """Calls by their provider id."""
        known = self._calls
        known_ids = self._call_ids
        views: dict[str, list[Any]] = {}
        missing: list[str] = []
        for provider_id in sorted(set(provider_ids)):
            call_id = known_ids.get((provider, provider_id))
            if call_id is None:
                missing.append(provider_id)
            else:
                views[provider_id] = known[call_id]
        for chunk in chunks(missing):
            params = {"provider": provider, "ids": list(chunk)}
            # On PostgreSQL two workers may apply events of one call at once: the second waits for the first.
            rows = (
                self.connection.execute(_CALLS_BY_PROVIDER_ID_LOCKED, params)
                if self.locks_rows
                else self._rows(_CALLS_BY_PROVIDER_ID, params)
            )
            for row in rows:
                view = [*row[:8], bool(row[8])]
                known[row[0]] = view
                known_ids[(provider, row[9])] = row[0]
                views[row[9]] = view
        # In provider id order, as the table's unique index returned them when every call was read from it.
        return {
            provider_id: CallRecord(
                id=view[0],
                public_id=view[1],
                campaign_id=view[2],
                contact_id=view[3],
                status=view[4],
                answered_by=view[5],
                started_at=view[6],
                ended_at=view[7],
                follow_up=view[8],
            )
            for provider_id, view in sorted(views.items())
        }

    def update_calls(self, records: Sequence[CallRecord]) -> None:
        """Write the changed values of calls; records sharing the same changed keys go in one batch."""
        known = self._calls
        for record in records:
            if record.values:
                view = known.get(record.id)
                if view is not None:
                    for key, index in CALL_VIEW_FIELDS.items():
                        if key in record.values:
                            view[index] = record.values[key]
        self.write_call_values([(record.id, record.values) for record in records if record.values])

    def write_call_values(self, changes: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Set columns of calls by id; changes with the same keys go in one batch."""
        if self.locks_rows:
            _pg_write_call_values(self.connection, changes)
            return
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for call_id, values in changes:
            groups.setdefault(tuple(sorted(values)), []).append({"_id": call_id, **values})
        for keys, params in groups.items():
            statement = _UPDATE_CALLS.get(keys)
            if statement is None:
                statement = _UPDATE_CALLS[keys] = (
                    update(t.calls)
                    .where(t.calls.c.id == bindparam("_id"))
                    .values({key: bindparam(key) for key in keys})
                )
            self._many(statement, params)


def _pg_write_call_values(connection: Connection, changes: Iterable[tuple[int, dict[str, Any]]]) -> None:
    # One statement whatever columns each call's change sets (an executemany would be one per row).
    pg_batch.update_sparse(connection, t.calls, "id", list(changes))


def _pg_insert_calls(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    keys = tuple(rows[0])
    ids = dict(
        pg_batch.insert(connection, t.calls, keys, [[row[key] for key in keys] for row in rows], ("public_id", "id"))
    )
    return [ids[row["public_id"]] for row in rows]
