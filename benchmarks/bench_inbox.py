"""Figure: inbox ingestion (provider events accepted per second) of `herald serve`'s `POST /webhooks/http`.

A load generator (threads, one keep-alive httpx client each) posts signed event bodies in the contract's shape
(docs/providers/http.md; batches of 50 events, 10% of events sent twice, 10% swapped with the next event of their
call) for a fixed time, on SQLite (1 serve process) and on PostgreSQL (1 and 2 serve processes). The events name real
calls: before the load, a campaign on the `http` provider gets N contacts and one call row each, inserted through
Herald's store (`Tx.insert_calls`); the webhook verifies every body with the campaign's `webhook_secret`. No worker
runs, so what is measured is the webhook alone: events/s = unique events stored / seconds of load. Then the
events table is checked against what was sent: every answer 200, nothing lost, nothing stored twice.

    .venv/bin/python benchmarks/bench_inbox.py               # --seconds 60 --threads 8 --json
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import add_contacts, create_campaign
from herald.ids import IdFactory
from herald.providers.http import SIGNATURE_HEADER, sign
from herald.store import schema as t
from herald.store.queries import NewContact, Store
from live_support import (
    SECRET,
    Fleet,
    backend_pids,
    cpu_seconds,
    database,
    database_stats,
    free_port,
    healthy,
    machine,
    run_main,
    table,
    wait_for,
)

#: Times a body is posted again after a 5xx or a network error before the generator gives up on it.
RETRIES = 5
TARGETS = {"sqlite": 2000.0, "postgresql": 5000.0}
#: Call outcomes and their event stories, as the fake agent tells them.
STORIES: list[tuple[float, list[str]]] = [
    (0.8, ["ringing", "in-progress", "ended"]),
    (0.1, ["ringing", "no-answer"]),
    (0.05, ["busy"]),
    (0.05, ["failed"]),
]


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def call_events(rng: random.Random, index: int, base: datetime) -> list[dict[str, Any]]:
    """One call's events in the contract's shape (call i: `cll_bench…` / `bench-call-…`)."""
    kinds = rng.choices([story for _, story in STORIES], weights=[weight for weight, _ in STORIES])[0]
    call_id, external_id = f"cll_bench{index:012d}", f"bench-call-{index:08d}"
    events = []
    for serial, kind in enumerate(kinds, 1):
        at = _stamp(base + timedelta(seconds=serial))
        event: dict[str, Any] = {
            "event_id": f"{external_id}.{serial}",
            "call_id": call_id,
            "external_id": external_id,
            "type": kind,
            "occurred_at": at,
        }
        if kind == "in-progress":
            event["answered_by"] = "human"
        elif kind == "ended":
            event.update(
                answered_by="human",
                started_at=_stamp(base + timedelta(seconds=serial - 1)),
                ended_at=at,
                ended_by="user",
                ended_reason="user_hangup",
                recording_url=f"https://recordings.invalid/{external_id}.mp3",
                tags=["promise"] if index % 3 == 0 else [],
                extracted={"email": f"{call_id}@example.com"} if index % 3 == 0 else {},
                converted=index % 3 == 0,
            )
        elif kind == "failed":
            event.update(error_code="carrier_error", error_msg="The carrier refused the call.")
        events.append(event)
    return events


class Stream:
    """Signed bodies of `batch` events, made on demand (thread-safe): calls in order, each event of a call swapped
    with the next one at `reorder` rate, and each event sent a second time, a few bodies later, at `duplicate`."""

    def __init__(
        self, calls: int, batch: int, duplicate: float, reorder: float, *, sort: bool = False, seed: int = 1
    ) -> None:
        self.calls, self.batch, self.duplicate, self.reorder, self.sort = calls, batch, duplicate, reorder, sort
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._events = self._generate()
        self.exhausted = False

    def _generate(self) -> Iterator[dict[str, Any]]:
        base = datetime.now(UTC)
        later: list[tuple[int, int, dict[str, Any]]] = []  # heap of (due position, tie-break, duplicate)
        position = 0
        for index in range(self.calls):
            story = call_events(self._rng, index, base)
            for i in range(len(story) - 1):
                if self._rng.random() < self.reorder:
                    story[i], story[i + 1] = story[i + 1], story[i]
            for event in story:
                if self._rng.random() < self.duplicate:
                    heapq.heappush(later, (position + self._rng.randint(self.batch, 4 * self.batch), position, event))
                yield event
                position += 1
                while later and later[0][0] <= position:
                    yield heapq.heappop(later)[2]
        while later:
            yield heapq.heappop(later)[2]

    def next_body(self) -> tuple[bytes, list[tuple[str, str]]] | None:
        """A body and the (external_id, type) keys of its events; None when the calls are used up."""
        with self._lock:
            events = [event for _, event in zip(range(self.batch), self._events, strict=False)]
        if not events:
            self.exhausted = True
            return None
        if self.sort:  # a diagnostic: every body in one key order (see --sorted-bodies)
            events.sort(key=lambda event: (event["external_id"], event["type"]))
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        return body, [(event["external_id"], event["type"]) for event in events]


class Load:
    """Sender threads posting the stream's bodies until the deadline; what was answered, and how fast."""

    def __init__(self, url: str, stream: Stream, threads: int) -> None:
        self.url, self.stream, self.threads = url, stream, threads
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.sent_keys: set[tuple[str, str]] = set()
        self.events_posted = 0
        self.accepted = 0
        self.duplicates = 0
        self.latencies: list[float] = []
        self.given_up = 0

    def _send(self, deadline: float) -> None:
        with httpx.Client(timeout=30.0, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as client:
            while time.perf_counter() < deadline:
                item = self.stream.next_body()
                if item is None:
                    return
                self._post(client, *item)

    def _post(self, client: httpx.Client, body: bytes, keys: list[tuple[str, str]]) -> None:
        """Post one body as the contract asks of a provider: on a 5xx or no answer, the same body again, with
        backoff (every answer that was not 200 is counted)."""
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET, body)}
        backoff = 0.05
        for _ in range(RETRIES + 1):
            began = time.perf_counter()
            try:
                response = client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as error:
                with self.lock:
                    self.errors[type(error).__name__] += 1
            else:
                took = time.perf_counter() - began
                answer = response.json() if response.status_code == 200 else {}
                with self.lock:
                    self.statuses[response.status_code] += 1
                    self.latencies.append(took)
                    if response.status_code == 200:
                        self.events_posted += len(keys)
                        self.sent_keys.update(keys)
                        self.accepted += int(answer.get("accepted", 0))
                        self.duplicates += int(answer.get("duplicates", 0))
                        return
                    self.errors[f"HTTP {response.status_code}: {response.text[:100]}"] += 1
                if response.status_code < 500:
                    return  # the contract: a 4xx is not retried
            time.sleep(backoff)
            backoff *= 2
        with self.lock:
            self.given_up += 1

    def run(self, seconds: float) -> float:
        """Post for `seconds`; returns the wall time from the first post to the last answer."""
        began = time.perf_counter()
        deadline = began + seconds
        senders = [threading.Thread(target=self._send, args=(deadline,), daemon=True) for _ in range(self.threads)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        return time.perf_counter() - began


def prepare(store: Store, calls: int) -> int:
    """A campaign on the http provider with `calls` contacts and one queued call row each; returns its id."""
    config = {
        "name": "Inbox load",
        "channel": "phone_call",
        "timezone": "America/Mexico_City",
        "agent": {
            "name": "Bench",
            "tags": ["promise"],
            "fields": [{"name": "email"}],
            "conversion": {"tag": "promise"},
        },
        "provider": "http",
        "provider_options": {
            "base_url": "http://127.0.0.1:9",  # never called: no worker runs
            "auth_token": "env:AGENT_TOKEN",
            "webhook_secret": "env:AGENT_SECRET",
        },
    }
    now = datetime.now(UTC)
    campaign_id = create_campaign(store, parse_campaign(config), now, IdFactory())
    add_contacts(store, campaign_id, [NewContact(f"+5255{i:08d}", f"Person {i}", "") for i in range(calls)], now)
    with store.read() as tx:
        contact_ids = [
            row[0]
            for row in tx.connection.execute(
                select(t.contacts.c.id).where(t.contacts.c.campaign_id == campaign_id).order_by(t.contacts.c.id)
            )
        ]
    for start in range(0, calls, 10_000):
        with store.tx() as tx:
            tx.insert_calls(
                [
                    {
                        "public_id": f"cll_bench{index:012d}",
                        "campaign_id": campaign_id,
                        "contact_id": contact_ids[index],
                        "provider": "http",
                        "provider_call_id": f"bench-call-{index:08d}",
                        "type": "outbound",
                        "status": "queued",
                        "created_at": now,
                        "follow_up": False,
                        "cycle": 1,
                        "tags": [],
                        "extracted": {},
                    }
                    for index in range(start, min(calls, start + 10_000))
                ]
            )
    return campaign_id


def run_config(backend: str, processes: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"{backend}-{processes}p-", dir=root))
    result: dict[str, Any] = {
        "backend": backend,
        "serve_processes": processes,
        "seconds_asked": args.seconds,
        "sorted_bodies": args.sorted_bodies,
        "analyzed": backend == "postgresql" and not args.no_analyze,
    }
    with database(backend, folder) as url:
        port = free_port()
        fleet = Fleet(folder, url, {"AGENT_TOKEN": "unused", "AGENT_SECRET": SECRET})
        store = Store.open(url)
        try:
            prepare(store, args.calls)
            if backend == "postgresql" and not args.no_analyze:
                # Table statistics, as autovacuum would gather them within a minute or so. Without them the planner
                # looks the calls of a webhook up through (provider, provider_call_id) and reads every http call.
                with store.tx() as tx:
                    tx.connection.exec_driver_sql("ANALYZE")
            serve = fleet.herald("serve", "serve", "--port", str(port), "--processes", str(processes))
            wait_for(lambda: healthy(port), "herald serve to answer", 60, fleet)
            stream = Stream(args.calls, args.batch, args.duplicate_rate, args.reorder_rate, sort=args.sorted_bodies)
            load = Load(f"http://127.0.0.1:{port}/webhooks/http", stream, args.threads)
            cpu_before = cpu_seconds([serve.pid])
            postgres_before = {pid: cpu_seconds([pid]) for pid in backend_pids(url)}
            own_before = time.process_time()
            stats_before = database_stats(url)
            seconds = load.run(args.seconds)
            cpu = {
                "serve": cpu_seconds([serve.pid]) - cpu_before,
                "postgres": sum(cpu_seconds([pid]) - postgres_before.get(pid, 0.0) for pid in backend_pids(url)),
                "load_generator": time.process_time() - own_before,
            }
            fleet.check_alive()
            time.sleep(0.6)  # the statistics collector's lag
            stats_after = database_stats(url)
            with store.read() as tx:
                keys = {
                    (row[0], row[1])
                    for row in tx.connection.execute(
                        select(t.events.c.external_id, t.events.c.kind).where(t.events.c.provider == "http")
                    )
                }
                rows = int(
                    tx.connection.execute(
                        select(func.count()).select_from(t.events).where(t.events.c.provider == "http")
                    ).scalar_one()
                )
            latencies = sorted(load.latencies)
            posts = sum(load.statuses.values())
            lost = len(load.sent_keys - keys)
            result.update(
                seconds=round(seconds, 2),
                posts=posts,
                events_posted=load.events_posted,
                unique_events_sent=len(load.sent_keys),
                events_stored=rows,
                events_per_second=round(rows / seconds, 1),
                posts_per_second=round(posts / seconds, 1),
                answers={str(code): n for code, n in sorted(load.statuses.items())},
                errors=dict(load.errors),
                all_200=set(load.statuses) == {200} and not load.errors,
                bodies_given_up=load.given_up,
                postgres_counters={key: stats_after[key] - value for key, value in stats_before.items()},
                lost=lost,
                unexpected=len(keys - load.sent_keys),
                doubled=rows - len(keys),
                accepted_in_answers=load.accepted,
                duplicates_in_answers=load.duplicates,
                calls_used_up=stream.exhausted,
                latency_ms_p50=round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
                latency_ms_p99=round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
                cpu_seconds={role: round(value, 1) for role, value in cpu.items()},
                cpu_share_of_machine=round(sum(cpu.values()) / (seconds * (machine()["cpus"] or 1)), 2),
                load_average_after=machine()["load_average"],
                target=TARGETS[backend] if backend == "sqlite" or processes == 2 else None,
            )
            result["serve_exit_code"] = fleet.stop(serve)
        finally:
            fleet.stop_all()
            store.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="load duration per configuration")
    parser.add_argument("--calls", type=int, default=150_000, help="call rows the events refer to (about 2.7 each)")
    parser.add_argument("--threads", type=int, default=8, help="sender threads (one keep-alive connection each)")
    parser.add_argument("--batch", type=int, default=50, help="events per body")
    parser.add_argument("--duplicate-rate", type=float, default=0.1)
    parser.add_argument("--reorder-rate", type=float, default=0.1)
    parser.add_argument(
        "--sorted-bodies",
        action="store_true",
        help="diagnostic: sort each body's events by (external_id, type), so concurrent inserts take their locks in "
        "one order (what sorting in herald.store.inbox.add would do)",
    )
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: skip ANALYZE after loading the calls")
    parser.add_argument("--configs", default="sqlite:1,postgresql:1,postgresql:2", help="backend:serve-processes")
    parser.add_argument("--logs", help="keep the processes' logs in this folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    info = machine()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-inbox-") as scratch:
        root = Path(args.logs) if args.logs else Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        for config in args.configs.split(","):
            backend, processes = config.split(":")
            print(f"running {backend} with {processes} serve process(es)…", file=sys.stderr, flush=True)
            results.append(run_config(backend, int(processes), args, root))
            print(f"  {json.dumps(results[-1])}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"machine": info, "args": vars(args), "results": results}, indent=2))
        return 0
    print(
        f"machine: {info['cpus']} CPUs, {info['cpu_model']}, Python {info['python']}, load average at start "
        f"{info['load_average']}"
    )
    print(
        f"load: {args.threads} threads, {args.batch} events a body, {args.duplicate_rate:.0%} duplicated, "
        f"{args.reorder_rate:.0%} reordered, {args.seconds:.0f} s per configuration"
    )
    rows = []
    for r in results:
        cpu = r["cpu_seconds"]
        ok = r["all_200"] and r["lost"] == 0 and r["doubled"] == 0 and r["unexpected"] == 0
        target = r["target"]
        rows.append(
            [
                f"{r['backend']}, {r['serve_processes']} serve",
                f"{r['events_stored']:,}",
                f"{r['seconds']:.1f}",
                f"{r['events_per_second']:,.0f}",
                f"{r['latency_ms_p50']}/{r['latency_ms_p99']}",
                "yes" if ok else f"NO ({r['answers']}, lost {r['lost']}, doubled {r['doubled']})",
                f"{cpu['serve']:.0f}/{cpu['postgres']:.0f}/{cpu['load_generator']:.0f}",
                "-"
                if target is None
                else f">= {target:,.0f} " + ("met" if r["events_per_second"] >= target else "NOT met"),
            ]
        )
    print(
        table(
            [
                "configuration",
                "events",
                "s",
                "events/s",
                "ms p50/p99",
                "all 200, 0 lost/doubled",
                "CPU s serve/pg/gen",
                "target",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
