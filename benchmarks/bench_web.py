"""Figure of the web console: render time of its pages with 100,000 contacts in a campaign, measured from a second
process (this one) on loopback against a running `herald serve`, signed in as a console user.

  list     GET /  (the campaign list: the campaign's analytics snapshot and final count, as the API counts them)
  new      GET /campaigns/new
  upload   GET /campaigns/{id}/contacts/upload

Each page is loaded 50 times one after the other (after one warm-up load); p50 and p99 of the time to the last byte.
Target (issue 16): no page takes more than one second. The campaign is the export benchmark's (100,000 contacts, a
third answered). Run: `.venv/bin/python benchmarks/bench_web.py [--contacts 100000] [--backend sqlite|postgresql|both]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench_api import start_serve
from bench_export import build
from live_support import Fleet, database, run_main

PASSWORD = "bench password"
EMAIL = "bench@herald.test"


def add_user(database_url: str) -> None:
    """A console user of the business the benchmark's campaign belongs to."""
    from herald.engine.clock import RealClock
    from herald.store.queries import Store
    from herald.store.tenancy import businesses
    from herald.store.users import create_user

    store = Store.open(database_url, migrate=False)
    with store.tx() as tx:
        create_user(tx, businesses(tx)[0].id, EMAIL, PASSWORD, RealClock().now())
    store.close()


def signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    answer = client.post("/login", data={"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")
    return client


def measure(client: httpx.Client, path: str, loads: int) -> dict[str, float]:
    client.get(path).raise_for_status()  # warm-up: plotly, templates, connection pool
    times = []
    for _ in range(loads):
        began = time.perf_counter()
        response = client.get(path)
        response.raise_for_status()
        times.append(time.perf_counter() - began)
    ordered = sorted(times)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max_ms": 1000 * ordered[-1],
    }


def run(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="herald-bench-web-") as name, database(backend, Path(name)) as url:
        folder = Path(name)
        print(f"[{backend}] building {args.contacts:,} contacts ...", flush=True)
        campaign_id = build(url, args.contacts)
        add_user(url)
        fleet = Fleet(folder, url, {})
        try:
            base = start_serve(fleet)
            client = signed_in(base)
            pages = {
                "list": "/",
                "new": "/campaigns/new",
                "upload": f"/campaigns/{campaign_id}/contacts/upload",
            }
            for label, path in pages.items():
                figures = measure(client, path, args.loads)
                print(
                    f"[{backend}] {label:<7} GET {path} with {args.contacts:,} contacts, {args.loads} loads: "
                    f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms "
                    "(target < 1000 ms)"
                )
            client.close()
        finally:
            fleet.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--loads", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        run(backend, args)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
