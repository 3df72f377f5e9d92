"""Figures of the REST API, measured from a second process (this one) on loopback against a running `herald serve`:

  export   GET /campaigns/{id}/exports/contacts of N contacts (default 100,000): time to first byte and total,
           next to `herald export ID contacts -o FILE` (the whole command) of the same campaign in the same run;
           target: API total <= 1.2x the command.
  contacts GET /campaigns/{id}/contacts at a fixed rate (default 100 requests/s, open loop: a request is sent on
           schedule whether or not earlier ones have answered) on the same campaign: p50/p99/max latency;
           target: p99 < 50 ms.

The campaign is the export benchmark's (a third of the contacts answered with tags and extracted data). The server runs
with HERALD_RATE_LIMIT=off (one key at 100/s is over the default limit of 12/s; the limit's own cost is measured by
running once more with it set high: --with-rate-limit).
Run: `.venv/bin/python benchmarks/bench_api.py [--contacts 100000] [--backend sqlite|postgresql|both]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench_export import build
from live_support import Fleet, database, free_port, run_main


def start_serve(fleet: Fleet) -> str:
    port = free_port()
    fleet.herald("serve", "serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        fleet.check_alive()
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("herald serve did not answer")


def api_key(database_url: str) -> str:
    env = {**os.environ, "HERALD_DATABASE_URL": database_url}
    made = subprocess.run(
        [sys.executable, "-m", "herald", "keys", "create", "--business", "default", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(made.stdout)["key"])


def measure_export(base: str, key: str, campaign_id: int, database_url: str, folder: Path) -> dict[str, float]:
    """TTFB and total of the download (written to a file, as a user's client would), and the command's wall time."""
    target = folder / "api.csv"
    began = time.perf_counter()
    first = 0.0
    with (
        httpx.stream(
            "GET",
            f"{base}/api/v1.0/campaigns/{campaign_id}/exports/contacts",
            headers={"Authorization": f"api-key {key}"},
            timeout=600,
        ) as response,
        target.open("wb") as out,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes():
            if not first:
                first = time.perf_counter() - began
            out.write(chunk)
    total = time.perf_counter() - began
    command_target = folder / "command.csv"
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "herald", "export", str(campaign_id), "contacts", "-o", str(command_target), "--force"],
        env={**os.environ, "HERALD_DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )
    command = time.perf_counter() - began
    if target.read_bytes() != command_target.read_bytes():
        raise RuntimeError("the API's export differs from herald export's")
    return {"ttfb": first, "total": total, "command": command, "mb": target.stat().st_size / 1e6}


def measure_contacts(
    base: str, key: str, campaign_id: int, contacts: int, rate: float, seconds: float
) -> dict[str, float]:
    """Open-loop load: requests for pages spread over the whole list, sent on a fixed schedule."""
    headers = {"Authorization": f"api-key {key}"}
    count = int(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    client = httpx.Client(headers=headers, timeout=30, limits=httpx.Limits(max_connections=64))
    probe = client.get(f"{base}/api/v1.0/campaigns/{campaign_id}/contacts")
    probe.raise_for_status()
    page_size = max(1, len(probe.json().get("contacts", [])) or 1)
    pages = max(1, contacts // page_size)

    def one(i: int) -> None:
        page = (i * 7919) % pages  # spread over the whole list, deep pages included
        began = time.perf_counter()
        try:
            response = client.get(f"{base}/api/v1.0/campaigns/{campaign_id}/contacts", params={"pageIndex": page})
            ok = response.status_code == 200
            detail = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as error:
            ok, detail = False, repr(error)
        elapsed = time.perf_counter() - began
        with lock:
            latencies.append(elapsed)
            if not ok:
                errors.append(detail)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    client.close()
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    ordered = sorted(latencies)
    return {
        "requests": float(count),
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max_ms": 1000 * ordered[-1],
        "achieved_rate": count / (time.perf_counter() - start),
    }


def vacuum_analyze(database_url: str) -> None:
    """PostgreSQL's own maintenance after a bulk load: statistics for the planner, the visibility map for
    index-only scans (autovacuum does the same on its own schedule)."""
    import psycopg
    from sqlalchemy import make_url

    url = make_url(database_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database, autocommit=True
    ) as connection:
        connection.execute("VACUUM ANALYZE contacts")


def run(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="herald-bench-api-") as name, database(backend, Path(name)) as url:
        folder = Path(name)
        print(f"[{backend}] building {args.contacts:,} contacts ...", flush=True)
        campaign_id = build(url, args.contacts)
        key = api_key(url)
        env = {"HERALD_RATE_LIMIT": "100000" if args.with_rate_limit else "off"}
        fleet = Fleet(folder, url, env)
        try:
            base = start_serve(fleet)
            figures = measure_export(base, key, campaign_id, url, folder)
            print(
                f"[{backend}] export of {args.contacts:,} contacts ({figures['mb']:.0f} MB): API first byte "
                f"{figures['ttfb'] * 1000:.0f} ms, total {figures['total']:.2f} s; `herald export` {figures['command']:.2f} s;"
                f" ratio API/command {figures['total'] / figures['command']:.2f}x (target <= 1.2x)"
            )
            if not args.skip_contacts:
                stages = ["right after loading (import, then results written to a third of the contacts at once)"]
                if backend == "postgresql":
                    stages.append("after VACUUM ANALYZE (what autovacuum does within minutes of an import)")
                for stage in stages:
                    if stage.startswith("after"):
                        vacuum_analyze(url)
                    load = measure_contacts(base, key, campaign_id, args.contacts, args.rate, args.seconds)
                    print(
                        f"[{backend}] GET contacts at {args.rate:.0f}/s for {args.seconds:.0f} s, {stage} "
                        f"({load['achieved_rate']:.0f}/s achieved): p50 {load['p50_ms']:.1f} ms, "
                        f"p99 {load['p99_ms']:.1f} ms, max {load['max_ms']:.1f} ms (target p99 < 50 ms)"
                    )
        finally:
            for _role, process in fleet.started:
                fleet.stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rate", type=float, default=100.0, help="contacts requests a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the contacts load lasts")
    parser.add_argument("--skip-contacts", action="store_true", help="only the export figure")
    parser.add_argument("--with-rate-limit", action="store_true", help="keep the rate limiter on (set very high)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        run(backend, args)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
