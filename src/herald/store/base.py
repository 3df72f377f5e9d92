"""What every query module of the store shares: the transaction's connection and how statements run on it.

`TxBase` is the root of `herald.store.queries.Tx`, which gathers the queries of each aggregate (campaigns, contacts,
calls, messages, events, exports) from their own modules; each of those keeps its statements beside the methods that
run them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Integer, Text
from sqlalchemy.dialects import postgresql, sqlite

from herald.store.direct import Direct

#: PostgreSQL channel on which workers LISTEN for new work (webhooks stored, campaigns activated, contacts added).
NOTIFY_CHANNEL = "herald_work"
# PostgreSQL's id lists: `= ANY(array)` where the others have an expanding IN, so that the statement's text is the
# same whatever the number of ids (compiled once by SQLAlchemy, converted and prepared once per connection by psycopg).
INTEGER_ARRAY = postgresql.ARRAY(Integer)
TEXT_ARRAY = postgresql.ARRAY(Text)
#: Rows fetched at a time by streamed reads (exports, cycle starts).
STREAM_BATCH = 5000


class NotFound(LookupError):
    """No such row (or not visible to this business)."""


class Conflict(RuntimeError):
    """A conditional write found the row changed by another process (HTTP 409)."""


def dialect_insert(connection: Connection, table: Any) -> Any:
    """An INSERT with the dialect's `on_conflict_*` clauses (PostgreSQL or SQLite)."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chunks(items: Iterable[Any], size: int = 500) -> Iterator[list[Any]]:
    """`items` in lists of at most `size` (IN lists and parameter batches stay within the drivers' limits)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class TxBase:
    """One transaction's connection, and the three ways its queries run statements (rows, many, a stream)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._direct: Direct | None = None
        self._direct_checked = False

    def direct(self) -> Direct | None:
        """The DBAPI shortcut for hot statements, or None where SQLAlchemy runs them (not SQLite/pysqlite)."""
        if not self._direct_checked:
            self._direct_checked = True
            dialect = self.connection.dialect
            if dialect.name == "sqlite" and dialect.driver == "pysqlite" and dialect.paramstyle == "qmark":
                self._direct = Direct(self.connection)
        return self._direct

    @property
    def locks_rows(self) -> bool:
        """True where rows are locked one by one (PostgreSQL); SQLite's write transaction locks the whole database."""
        return self.connection.dialect.name == "postgresql"

    def notify_workers(self) -> None:
        """Wake waiting workers when this transaction commits (PostgreSQL NOTIFY; SQLite workers poll)."""
        if self.connection.dialect.name == "postgresql":
            self.connection.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")

    def _rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
        direct = self.direct()
        plan = direct.plan(statement) if direct is not None else None
        if direct is not None and plan is not None:
            return direct.rows(plan, params)
        return list(self.connection.execute(statement, params))

    def _many(self, statement: Any, params: Sequence[dict[str, Any]], keys: tuple[str, ...] | None = None) -> None:
        direct = self.direct()
        plan = direct.plan(statement, keys) if direct is not None else None
        if direct is not None and plan is not None:
            direct.many(plan, params)
        else:
            self.connection.execute(statement, params)

    def _stream(self, statement: Any, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        """Rows of a read-only query, fetched in batches (positional; memory flat in the number of rows)."""
        direct = self.direct()
        plan = direct.plan(statement) if direct is not None else None
        if direct is not None and plan is not None:
            # Exports and cycle starts read every row: the DBAPI cursor with the plan's cached conversions skips
            # SQLAlchemy's per-row work.
            return direct.stream(plan, params, STREAM_BATCH)
        # Per statement: Connection.execution_options would switch the whole connection to server-side cursors.
        return iter(self.connection.execute(statement, params, execution_options={"yield_per": STREAM_BATCH}))
