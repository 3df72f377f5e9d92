"""Figure: simulated campaign throughput (contact-attempts per second), next to raw SQLite executemany.

A phone campaign of N contacts (retries 2, 3 cycles, no calling-hours limit) runs from activate to finished on
the simulator and a virtual clock, on a SQLite file. In the same run, the reference inserts the same number of
rows (one per attempt) into a plain SQLite table with `executemany`. Run: `.venv/bin/python benchmarks/bench_engine.py`
(`--contacts 10000` for a quicker look).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store.queries import NewContact, Store

TICK = float(__import__("os").environ.get("TICK", "5"))
START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def run_campaign(folder: Path, contacts: int, concurrency: int) -> tuple[int, float, int, int]:
    """Returns (attempts, seconds, events, steps)."""
    store = Store.open(f"sqlite:///{folder / 'bench.db'}")
    clock = VirtualClock(START)
    ids = IdFactory(1)
    config = parse_campaign(
        {
            "name": "Throughput",
            "channel": "phone_call",
            "retries": 2,
            "retry_delay_minutes": 30,
            "concurrency_limit": concurrency,
            "provider_options": {"conversation": {"follow_up_rate": float(os.environ.get("FOLLOW", "0.05"))}},
            "cycles": {"enabled": True, "max_iterations": 3, "cooldown_minutes": 10},
            "agent": {
                "tags": ["promise", "callback"],
                "fields": [{"name": "email"}, {"name": "amount", "type": "number"}, {"name": "date", "type": "date"}],
                "conversion": {"tag": "promise"},
            },
        }
    )
    campaign_id = create_campaign(store, config, clock.now(), ids)
    add_contacts(
        store, campaign_id, [NewContact(f"+5255{i:08d}", f"Person {i}", "") for i in range(contacts)], clock.now()
    )
    engine = Engine(store, Simulator(1), clock, ids, tick=timedelta(seconds=TICK))
    began = time.perf_counter()
    act(store, campaign_id, "activate", clock.now())
    stats = engine.run([campaign_id])
    seconds = time.perf_counter() - began
    with store.tx() as tx:
        assert tx.campaign(campaign_id).status.value == "finished"
    store.close()
    return stats.attempts, seconds, stats.events, stats.steps


def raw_insert_rate(folder: Path, rows: int) -> float:
    """Rows per second of a plain executemany INSERT of `rows` call-like rows into SQLite (WAL, NORMAL sync)."""
    connection = sqlite3.connect(folder / "raw.db")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE calls (id INTEGER PRIMARY KEY, public_id TEXT UNIQUE, contact_id INTEGER, status TEXT,"
        " created_at TEXT, ended_at TEXT, duration INTEGER, billed INTEGER)"
    )
    data = [
        (f"cll_{i:020d}", i % 100_000, "ended", "2026-01-05 15:00:00", "2026-01-05 15:01:00", 60, 60)
        for i in range(rows)
    ]
    began = time.perf_counter()
    with connection:
        connection.executemany(
            "INSERT INTO calls (public_id, contact_id, status, created_at, ended_at, duration, billed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            data,
        )
    seconds = time.perf_counter() - began
    connection.close()
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    args = parser.parse_args()
    # What `herald run --simulate` and `herald demo` do at their start (herald.cli._freeze_gc, process-wide, so an
    # entry point's call): without it each full collection of the run scans every object loaded so far.
    gc.freeze()
    with tempfile.TemporaryDirectory() as folder:
        attempts, seconds, events, steps = run_campaign(Path(folder), args.contacts, args.concurrency)
        reference = raw_insert_rate(Path(folder), attempts)
    rate = attempts / seconds
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"campaign: {args.contacts} contacts, retries 2, 3 cycles, concurrency {args.concurrency}")
    print(
        f"herald: {attempts} attempts, {events} provider events, {steps} steps in {seconds:.1f} s = {rate:,.0f} attempts/s"
    )
    print(f"reference: raw sqlite3 executemany of {attempts} rows = {reference:,.0f} rows/s")
    print(
        f"ratio herald/raw insert: {rate / reference:.3f}   target: >= 10,000 attempts/s ({'met' if rate >= 10_000 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
