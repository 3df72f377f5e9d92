"""Diagnostic behind the live figures (benchmarks/README.md): how many `POST /calls` a second the fake agent takes.

Starts `python -m herald.testing.fake_agent` alone (events scheduled an hour out, so it only answers starts) and
posts start requests in the contract's shape from 1 client thread, from 16 threads on one keep-alive httpx client (as
one worker's HttpOutbound does), and from 2 and 4 client processes of 8 threads at once. If the total does not grow with the
clients, the agent is the ceiling.

    .venv/bin/python benchmarks/diagnose_agent.py            # --starts 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Process, Queue
from pathlib import Path

import httpx

from live_support import TOKEN, Fleet, run_main


def post_starts(url: str, first: int, count: int, threads: int, results: Queue[float] | None = None) -> float:
    """Post `count` starts on `threads` threads sharing one client; returns (and queues) the wall seconds."""
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(timeout=30.0, limits=limits) as client:

        def post(index: int) -> None:
            body = {
                "call_id": f"cll_diag{index:012d}",
                "campaign_id": 1,
                "to": f"+5255{index:08d}",
                "name": "Person",
                "context": "",
                "first_message": None,
                "variables": {},
                "callback_url": "http://127.0.0.1:9/webhooks/http",
            }
            headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": body["call_id"]}
            response = client.post(f"{url}/calls", json=body, headers=headers)
            response.raise_for_status()

        began = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, range(first, first + count)))
        seconds = time.perf_counter() - began
    if results is not None:
        results.put(seconds)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=2000, help="starts per client")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        fleet = Fleet(Path(folder), "sqlite:///unused.db", {})
        try:
            url = fleet.fake_agent(9, min_delay=3600.0, max_delay=3600.0, senders=1)
            for threads in (1, 16):
                seconds = post_starts(url, threads * 10**6, args.starts, threads)
                print(f"1 client, {threads:2d} thread(s): {args.starts / seconds:,.0f} starts/s")
            for processes in (2, 4):
                results: Queue[float] = Queue()
                clients = [
                    Process(target=post_starts, args=(url, 10**8 * processes + k * 10**6, args.starts, 8, results))
                    for k in range(processes)
                ]
                began = time.perf_counter()
                for client in clients:
                    client.start()
                for client in clients:
                    client.join()
                wall = time.perf_counter() - began
                each = [args.starts / results.get() for _ in clients]
                print(
                    f"{processes} client processes of 8 threads at once: {processes * args.starts / wall:,.0f} starts/s "
                    f"in total (each {', '.join(f'{rate:,.0f}' for rate in each)} starts/s)"
                )
        finally:
            fleet.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
