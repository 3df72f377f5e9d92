"""Figure: a 1,000,000-row contact export — wall time and peak RSS, next to DuckDB writing the same rows to CSV.

Builds (once, cached in benchmarks/out/) a SQLite database with one campaign of N contacts, a third of them with
tags and extracted data. Then, each in its own process so that peak RSS is its own:
  herald  — `herald export 1 contacts -o FILE` (streams rows from SQLite through the CSV writer)
  duckdb  — the same rows already loaded into a DuckDB table, written with COPY ... TO CSV
Also runs herald on a 10x smaller campaign to show memory does not grow with rows.
Run: `.venv/bin/python benchmarks/bench_export.py [--contacts 1000000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
CONFIG = {
    "name": "Export benchmark",
    "channel": "phone_call",
    "agent": {
        "tags": ["promise", "callback", "wrong_number"],
        "fields": [{"name": "email"}, {"name": "amount", "type": "number"}, {"name": "date", "type": "date"}],
    },
}


def build(database: Path | str, contacts: int) -> int:
    """A campaign with `contacts` contacts, a third answered with tags and extracted data (in a new SQLite file, or
    the empty database at a URL); returns the campaign's id."""
    from sqlalchemy import text

    from herald.domain.campaign import parse_campaign
    from herald.engine.campaigns import add_contacts, create_campaign
    from herald.ids import IdFactory
    from herald.store.queries import NewContact, Store

    if isinstance(database, Path):
        database.unlink(missing_ok=True)
    store = Store.open(f"sqlite:///{database}" if isinstance(database, Path) else database)
    now = datetime(2026, 1, 5, 15, tzinfo=UTC)
    campaign_id = create_campaign(store, parse_campaign(CONFIG), now, IdFactory(1))
    for start in range(0, contacts, 100_000):
        batch = [
            NewContact(
                f"+5255{i:08d}",
                f"Persona {i}",
                f"Saldo {i % 9000}",
                external_id=f"C{i}",
                input_variables={"plan": "gold"},
            )
            for i in range(start, min(start + 100_000, contacts))
        ]
        add_contacts(store, campaign_id, batch, now)
    with store.tx() as tx:
        tx.connection.execute(
            text(
                "UPDATE contacts SET status='answered', final=true, calls=2, billed_seconds=id % 600,"
                ' tags=\'["promise"]\', extracted=\'{"email": "x@example.com", "amount": "1200"}\''
                " WHERE id % 3 = 0"
            )
        )
    store.close()
    return campaign_id


def measure(code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of running `code` in a fresh Python process (RSS sampled every 10 ms)."""
    import psutil

    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit(f"benchmark child failed with {process.returncode}")
    return seconds, peak / 1e6


def herald_code(database: Path, target: Path) -> str:
    return (
        "from herald.store.queries import Store\n"
        "from herald.exports.formats import export\n"
        "from herald.exports.kinds import ExportKind\n"
        f"store = Store.open('sqlite:///{database}')\n"
        f"print(export(store, 1, ExportKind.CONTACTS, {str(target)!r}))\n"
    )


def duckdb_code(source: Path, target: Path) -> str:
    return (
        "import duckdb, time\n"
        "con = duckdb.connect()\n"
        f"con.execute(\"CREATE TABLE t AS SELECT * FROM read_csv('{source}', all_varchar=true, header=true)\")\n"
        "began = time.perf_counter()\n"
        f"con.execute(\"COPY t TO '{target}' (HEADER, DELIMITER ',')\")\n"
        "print(time.perf_counter() - began)\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    small, large = OUT / "export-small.db", OUT / "export-large.db"
    for path, count in ((small, args.contacts // 10), (large, args.contacts)):
        marker = path.with_suffix(".json")
        if not path.exists() or not marker.exists() or json.loads(marker.read_text()) != count:
            print(f"building {count:,} contacts in {path.name} ...", flush=True)
            build(path, count)
            marker.write_text(json.dumps(count))
    small_s, small_rss = measure(herald_code(small, OUT / "contacts-small.csv"))
    herald_s, herald_rss = measure(herald_code(large, OUT / "contacts-large.csv"))
    # DuckDB's figure is the COPY alone (its own timer), since loading the table is not writing rows.
    completed = subprocess.run(
        [sys.executable, "-c", duckdb_code(OUT / "contacts-large.csv", OUT / "contacts-duckdb.csv")],
        check=True,
        capture_output=True,
        text=True,
    )
    duck_s = float(completed.stdout.strip())
    size = (OUT / "contacts-large.csv").stat().st_size / 1e6
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"herald export, {args.contacts // 10:,} rows: {small_s:.1f} s, peak RSS {small_rss:.0f} MB")
    print(f"herald export, {args.contacts:,} rows ({size:.0f} MB): {herald_s:.1f} s, peak RSS {herald_rss:.0f} MB")
    print(f"duckdb COPY of the same rows: {duck_s:.2f} s")
    print(f"ratio herald/duckdb time: {herald_s / duck_s:.1f}x;  RSS 10x rows: {herald_rss / small_rss:.2f}x")


if __name__ == "__main__":
    main()
