"""Diagnostic behind the inbox figures (benchmarks/README.md): how the webhook finds the calls an event body names.

For SQLite and PostgreSQL (fresh databases with N http calls, as bench_inbox prepares them) it prints the plan of the
lookup `herald.api.webhooks._campaign_options` runs (`public_id IN (...) AND provider = ?`), on PostgreSQL before and
after ANALYZE, then calls `herald.api.webhooks.receive` in-process (no HTTP, one thread) on the same signed bodies
twice: as it is, and with the calls looked up by `public_id` alone (the provider compared on the rows), a stand-in
patched into this process only. Nothing under src/ is changed.

    .venv/bin/python benchmarks/diagnose_inbox.py            # --calls 60000 --bodies 600
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

import herald.api.webhooks as webhooks
from bench_inbox import Stream, prepare
from herald.providers.base import ProviderEvent, WebhookError
from herald.providers.http import SIGNATURE_HEADER, sign
from herald.store import schema as t
from herald.store.queries import Store, Tx
from live_support import SECRET, database, run_main

ORIGINAL = webhooks._campaign_options


def by_public_id(tx: Tx, provider: str, events: Sequence[ProviderEvent]) -> dict[int, Mapping[str, Any]]:
    """The stand-in: calls by their unique public id only; the provider is checked on the rows (calls only)."""
    call_ids = sorted({e.attempt_id for e in events if e.subject == "call" and e.attempt_id})
    if any(e.subject != "call" for e in events):
        return ORIGINAL(tx, provider, events)
    rows = tx.connection.execute(
        select(t.calls.c.public_id, t.calls.c.campaign_id, t.calls.c.provider).where(t.calls.c.public_id.in_(call_ids))
    )
    campaign_of = {row[0]: row[1] for row in rows if row[2] == provider}
    for attempt_id in call_ids:
        if attempt_id not in campaign_of:
            raise WebhookError(422, f"unknown call_id {attempt_id!r}")
    return {cid: tx.campaign(cid).config.provider_options for cid in set(campaign_of.values())}


def plan(store: Store, backend: str) -> list[str]:
    ids = [f"cll_bench{index:012d}" for index in range(0, 500, 10)]
    query = select(t.calls.c.public_id, t.calls.c.campaign_id).where(
        t.calls.c.public_id.in_(ids), t.calls.c.provider == "http"
    )
    with store.read() as tx:
        sql = str(query.compile(tx.connection, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN ANALYZE "
        rows = [str(row[-1] if backend == "sqlite" else row[0]) for row in tx.connection.execute(text(prefix + sql))]
    return [row.strip() for row in rows if "SEARCH" in row or "SCAN" in row or "Scan" in row or "Execution" in row]


def receive_rate(store: Store, bodies: Sequence[bytes]) -> float:
    began = time.perf_counter()
    for body in bodies:
        headers = {SIGNATURE_HEADER.lower(): sign(SECRET, body), "content-type": "application/json"}
        webhooks.receive(store, "http", body, headers, "http://127.0.0.1/webhooks/http", datetime.now(UTC))
    return len(bodies) * 50 / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=60_000)
    parser.add_argument("--bodies", type=int, default=600, help="bodies of 50 events per variant")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    os.environ["AGENT_SECRET"] = SECRET
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as folder, database(backend, Path(folder)) as url:
            store = Store.open(url)
            try:
                prepare(store, args.calls)
                print(f"{backend}, {args.calls:,} http calls")
                print(f"  lookup plan: {plan(store, backend)}")
                if backend == "postgresql":
                    with store.tx() as tx:
                        tx.connection.exec_driver_sql("ANALYZE calls")
                    print(f"  after ANALYZE: {plan(store, backend)}")
                stream = Stream(args.calls, 50, 0.1, 0.1)
                items = [stream.next_body() for _ in range(2 * args.bodies)]
                bodies = [item[0] for item in items if item is not None]
                rate = receive_rate(store, bodies[: args.bodies])
                webhooks._campaign_options = by_public_id  # type: ignore[assignment]
                try:
                    fixed = receive_rate(store, bodies[args.bodies :])
                finally:
                    webhooks._campaign_options = ORIGINAL
                print(f"  receive() in-process: {rate:,.0f} events/s as is, {fixed:,.0f} with the lookup by public_id")
            finally:
                store.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
