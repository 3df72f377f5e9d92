"""Figures of the web console: render time of the campaign list and of each campaign tab, measured from a second
process (this one) on loopback against a running `herald serve`, signed in as a console user.

The campaign is the export benchmark's (N contacts, default 100,000; a third answered with tags and extracted data).
Each page is loaded 50 times one after the other (a person clicking, not a load test); p50 and p99 of the whole
response (last byte). Analytics and Forecast compute their figures in the background (`herald.web.computed`): their
first view answers at once with "being computed", so the figures' own computing time is printed separately, and
their 50 loads are taken once the figures are there. Target: every page < 1 s.
Run: `.venv/bin/python benchmarks/bench_web.py [--contacts 100000] [--backend sqlite|postgresql|both]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench_api import start_serve, vacuum_analyze
from bench_export import build
from live_support import Fleet, database, run_main

EMAIL = "bench@example.com"
PASSWORD = "bench password 1"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def create_user(database_url: str) -> None:
    """A console user of the campaign's business (`default`: the one campaign files go to)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "herald",
            "users",
            "create",
            "--business",
            "default",
            "--email",
            EMAIL,
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env={**os.environ, "HERALD_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )


def sign_in(base: str) -> httpx.Client:
    """A client with the session cookie of the bench user."""
    client = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
    found = _CSRF.search(client.get("/login").text)
    assert found is not None
    response = client.post("/login", data={"csrf_token": found.group(1), "email": EMAIL, "password": PASSWORD})
    if response.status_code != 303:
        raise RuntimeError(f"sign-in failed: {response.status_code} {response.text[:300]}")
    return client


def loads(client: httpx.Client, path: str, count: int) -> dict[str, float]:
    """p50/p99/max (ms) of `count` loads of `path`, one after the other."""
    timings = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
    ordered = sorted(timings)
    return {
        "p50": 1000 * statistics.median(ordered),
        "p99": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max": 1000 * ordered[-1],
    }


def until_computed(client: httpx.Client, path: str, meanwhile: str) -> tuple[float, float, list[float]]:
    """(first view in ms, seconds until the page shows its figures, load times in ms of the page `meanwhile`
    while they are computed in the same server process): the page is polled as its meta refresh would."""
    began = time.perf_counter()
    first = client.get(path)
    first_ms = 1000 * (time.perf_counter() - began)
    text = first.text
    others: list[float] = []
    while "being computed" in text:
        start = time.perf_counter()
        client.get(meanwhile).raise_for_status()
        others.append(1000 * (time.perf_counter() - start))
        text = client.get(path).text
    return first_ms, time.perf_counter() - began, others


def run(backend: str, args: argparse.Namespace) -> list[list[str]]:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-web-") as name, database(backend, Path(name)) as url:
        folder = Path(name)
        print(f"[{backend}] building {args.contacts:,} contacts ...", flush=True)
        campaign_id = build(url, args.contacts)
        if backend == "postgresql":
            vacuum_analyze(url)
        create_user(url)
        fleet = Fleet(folder, url, {"HERALD_RATE_LIMIT": "off"})
        try:
            client = sign_in(start_serve(fleet))
            base = f"/campaigns/{campaign_id}"
            for label, path in (("Analytics", f"{base}/analytics"), ("Forecast", f"{base}/forecast")):
                first_ms, ready, others = until_computed(client, path, base)
                print(
                    f"[{backend}] {label}: first view {first_ms:.0f} ms; figures computed in {ready:.1f} s", flush=True
                )
                rows.append([backend, f"{label}: first view (figures being computed)", f"{first_ms:.0f}", "", ""])
                rows.append([backend, f"{label}: computing its figures (background)", f"{ready * 1000:.0f}", "", ""])
                if others:
                    ordered = sorted(others)
                    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
                    median = statistics.median(ordered)
                    label = f"Overview while {label} computes ({len(ordered)} loads)"
                    rows.append([backend, label, f"{median:.1f}", f"{p99:.1f}", f"{ordered[-1]:.1f}"])
            pages = [
                ("campaign list /", "/"),
                ("Overview", base),
                ("Overview live counters (polled every 2 s)", f"{base}/live"),
                ("Contacts, first page", f"{base}/contacts"),
                ("Contacts, a deep page (after id 90% in)", f"{base}/contacts?after={int(args.contacts * 0.9)}"),
                ("Contacts, status filter", f"{base}/contacts?status=answered"),
                ("Contacts, search by name", f"{base}/contacts?q=Persona%2099999"),
                ("Contacts, search by number", f"{base}/contacts?q=5255000777"),
                ("Calls", f"{base}/calls"),
                ("New campaign form", "/campaigns/new"),
                ("Upload contacts form", f"{base}/contacts/upload"),
                ("Analytics (figures computed)", f"{base}/analytics"),
                ("Forecast (figures computed)", f"{base}/forecast"),
            ]
            for label, path in pages:
                figures = loads(client, path, args.loads)
                print(
                    f"[{backend}] {label}: p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, "
                    f"max {figures['max']:.1f} ms",
                    flush=True,
                )
                rows.append([backend, label, f"{figures['p50']:.1f}", f"{figures['p99']:.1f}", f"{figures['max']:.1f}"])
            client.close()
        finally:
            for _role, process in fleet.started:
                fleet.stop(process)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--loads", type=int, default=50, help="loads of each page")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rows = []
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        rows += run(backend, args)
    print("\n| backend | page | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("(target: every page < 1000 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
