"""Diagnostic behind the simulated-engine figure (benchmarks/README.md): how fast SQLite alone stores what a simulated
campaign stores.

It runs bench_engine's campaign once (counting the contact rows its flushes write and its commits), then replays the
rows the run left in its database (every call, every event, and as many contact updates as the run wrote) into a
fresh migrated database with the same connection settings, through plain sqlite3 `executemany`, in as many
transactions as the run committed. No rule runs, no value is converted: what is timed is SQLite keeping the same
tables and indexes up to date, the floor under any engine that stores the same rows on this schema.

    .venv/bin/python benchmarks/diagnose_engine_floor.py        # --contacts 20000 --concurrency 10
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

import bench_engine
from herald.store import queries
from herald.store.db import SQLITE_BUSY_TIMEOUT_MS
from herald.store.queries import Store

_COUNTS = {"contact_rows": 0, "commits": 0}


def _counted_run(folder: Path, contacts: int, concurrency: int) -> tuple[int, float]:
    """bench_engine's campaign, counting contact rows written and transactions committed (this process only)."""
    save = queries.Tx.save_contacts_at

    def save_counted(self: Any, changes: Any) -> None:
        _COUNTS["contact_rows"] += len(changes)
        save(self, changes)

    queries.Tx.save_contacts_at = save_counted  # type: ignore[method-assign]

    def count_commit(_connection: Any) -> None:
        _COUNTS["commits"] += 1

    event.listen(Engine, "commit", count_commit)
    try:
        attempts, seconds, _events, _steps = bench_engine.run_campaign(folder, contacts, concurrency)
    finally:
        queries.Tx.save_contacts_at = save  # type: ignore[method-assign]
        event.remove(Engine, "commit", count_commit)
    return attempts, seconds


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    # As herald.store.db sets every connection.
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "cache_size=-65536",
        "wal_autocheckpoint=10000",
    ):
        connection.execute(f"PRAGMA {pragma}")
    return connection


def _rows(connection: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = connection.execute(f"SELECT * FROM {table} ORDER BY id")
    return [column[0] for column in cursor.description], cursor.fetchall()


def replay(source: Path, target: Path, contact_rows: int, commits: int) -> tuple[float, dict[str, int]]:
    """Seconds to write the run's calls, events and contact updates into `target` (migrated, with its campaign)."""
    Store.open(f"sqlite:///{target}").close()
    old = sqlite3.connect(source)
    new = _connect(target)
    # Everything the run found in place before its first attempt: the business, the campaign, the contacts.
    for table in ("businesses", "campaigns", "contacts"):
        columns, rows = _rows(old, table)
        marks = ", ".join("?" * len(columns))
        new.execute("BEGIN")
        new.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        new.execute("COMMIT")
    call_columns, calls = _rows(old, "calls")
    event_columns, events = _rows(old, "events")
    contact_columns, contacts = _rows(old, "contacts")
    old.close()
    # The engine's contact write sets the state columns, the in-flight ones and last_update (herald's
    # `save_contacts_at`); here with the run's final values, cycled to as many rows as the run wrote.
    state = [
        "status",
        "retries",
        "failed_retries",
        "final",
        "due_at",
        "respond_by",
        "follow_up",
        "follow_up_attempts",
        "calls",
        "billed_seconds",
        "tags",
        "extracted",
        "opted_out",
        "attempts_in_cycle",
        "current_message_id",
        "inflight_id",
        "lease_expires_at",
        "last_update",
    ]
    positions = [contact_columns.index(name) for name in state]
    identifier = contact_columns.index("id")
    updates = [
        [contacts[n % len(contacts)][p] for p in positions] + [contacts[n % len(contacts)][identifier]]
        for n in range(contact_rows)
    ]
    update_sql = f"UPDATE contacts SET {', '.join(f'{name} = ?' for name in state)} WHERE id = ?"
    call_sql = f"INSERT INTO calls ({', '.join(call_columns)}) VALUES ({', '.join('?' * len(call_columns))})"
    event_sql = f"INSERT INTO events ({', '.join(event_columns)}) VALUES ({', '.join('?' * len(event_columns))})"
    batches = max(1, commits)
    began = time.perf_counter()
    for batch in range(batches):
        new.execute("BEGIN IMMEDIATE")
        new.executemany(call_sql, calls[batch * len(calls) // batches : (batch + 1) * len(calls) // batches])
        new.executemany(event_sql, events[batch * len(events) // batches : (batch + 1) * len(events) // batches])
        new.executemany(update_sql, updates[batch * len(updates) // batches : (batch + 1) * len(updates) // batches])
        new.execute("COMMIT")
    seconds = time.perf_counter() - began
    new.close()
    return seconds, {"calls": len(calls), "events": len(events), "contact updates": len(updates), "commits": batches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    gc.freeze()
    with tempfile.TemporaryDirectory() as folder:
        attempts, seconds = _counted_run(Path(folder), args.contacts, args.concurrency)
        floor, counts = replay(
            Path(folder) / "bench.db", Path(folder) / "floor.db", _COUNTS["contact_rows"], _COUNTS["commits"]
        )
    print(f"campaign: {args.contacts} contacts, concurrency {args.concurrency}: {attempts} attempts")
    print(f"herald: {seconds:.1f} s = {attempts / seconds:,.0f} attempts/s")
    print(f"sqlite alone, the same rows ({', '.join(f'{v:,} {k}' for k, v in counts.items())}):")
    print(
        f"  {floor:.1f} s = {attempts / floor:,.0f} attempts/s at most on this schema; herald/floor {floor / seconds:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
