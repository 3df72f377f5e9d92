"""Connecting to the database: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event

DEFAULT_URL = "sqlite:///herald.db"


def database_url(url: str | None = None) -> str:
    """The URL given, else HERALD_DATABASE_URL, else a `herald.db` file in the current folder."""
    return url or os.environ.get("HERALD_DATABASE_URL") or DEFAULT_URL


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (exports, analytics) run while the engine writes; NORMAL sync is durable at checkpoints.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # The default 2 MiB page cache cannot hold a large campaign's contact and call indexes, so the engine's
    # random-key lookups and updates would keep rereading pages; 64 MiB (negative = KiB) keeps them in memory.
    cursor.execute("PRAGMA cache_size=-65536")
    # The engine rewrites the same contact and call pages all the time: checkpointing every 10,000 WAL pages (about
    # 40 MB) instead of every 1,000 copies each page back to the database file less often, and the file is synced
    # at each checkpoint; the WAL file is reused from its start after each one, so it stays around that size.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def connect(url: str | None = None) -> Engine:
    """An SQLAlchemy engine for `url` with Herald's connection settings."""
    resolved = database_url(url)
    engine = create_engine(resolved)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine
