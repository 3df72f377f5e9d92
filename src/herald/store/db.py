"""Connecting to the database: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

DEFAULT_URL = "sqlite:///herald.db"


def database_url(url: str | None = None) -> str:
    """The URL given, else HERALD_DATABASE_URL, else a `herald.db` file in the current folder."""
    return url or os.environ.get("HERALD_DATABASE_URL") or DEFAULT_URL


#: Execution option of a connection that only reads (exports, reports): on SQLite it begins a deferred transaction,
#: which reads one consistent snapshot of the WAL without taking the write lock.
READ_ONLY = "herald_read_only"
#: How long a SQLite writer waits for another's write lock before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would begin a transaction only at the first write, so a read-modify-write could read a state another
    # process changes before the write: Herald begins every transaction itself (see `_sqlite_begin`).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (exports, analytics) run while the engine writes; NORMAL sync is durable at checkpoints.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # The default 2 MiB page cache cannot hold a large campaign's contact and call indexes, so the engine's
    # random-key lookups and updates would keep rereading pages; 64 MiB (negative = KiB) keeps them in memory.
    cursor.execute("PRAGMA cache_size=-65536")
    # The engine rewrites the same contact and call pages all the time: checkpointing every 10,000 WAL pages (about
    # 40 MB) instead of every 1,000 copies each page back to the database file less often, and the file is synced
    # at each checkpoint; the WAL file is reused from its start after each one, so it stays around that size.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock when the transaction begins, so everything it reads stays true until it commits:
    # several processes (workers, `herald run`, a pause from the CLI) then never act on a state another has changed.
    # Read-only transactions begin deferred and read a snapshot without blocking writers.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def connect(url: str | None = None, *, pool_size: int | None = None) -> Engine:
    """An SQLAlchemy engine for `url` with Herald's connection settings (`pool_size`: connections kept open, for
    servers that run many requests at once)."""
    resolved = database_url(url)
    options: dict[str, Any] = {} if pool_size is None else {"pool_size": pool_size, "max_overflow": pool_size}
    engine = create_engine(resolved, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


class WriteGate:
    """Takes turns at a SQLite database's write lock in the order processes ask for it.

    SQLite's own busy handler polls at growing intervals (up to 100 ms), so a process that holds the write lock for
    long stretches (a simulated run commits once a second and begins again at once) starves everyone else: a
    `herald campaign pause` beside it waited 40 s. Before each write transaction, Herald processes block on an
    `flock` of a file beside the database instead; the kernel wakes a waiter as soon as the holder lets go. Each
    acquisition opens its own descriptor (flock is per open file), re-entrant per thread.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def __enter__(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            handle = open(self.path, "a+b")
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._local.handle = handle
        self._local.depth = depth + 1

    def __exit__(self, *_exc: object) -> None:
        self._local.depth -= 1
        if self._local.depth == 0:
            handle = self._local.handle
            self._local.handle = None
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def write_gate(engine: Engine) -> WriteGate | None:
    """The write gate of a SQLite file database (None for PostgreSQL, which locks rows, and in-memory SQLite)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return WriteGate(f"{database}-writer.lock")
