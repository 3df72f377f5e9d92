"""Figure: live dispatch throughput (attempts/s) through the open `http` provider, with real processes.

Each configuration gets a fresh database, `herald serve`, the fake agent backend (tiny delays, so the provider is not
the bottleneck), N `herald worker` processes and one phone campaign of N contacts (`retries: 0`,
`failed_retry_limit: 0`, a large `concurrency_limit`). The clock runs from `campaign activate` to the campaign's
`finished`; attempts are the call rows. Configurations: 1, 2 and 4 workers on PostgreSQL, and the reference measured
in the same run, 1 worker on SQLite. Everything listens on 127.0.0.1; every process started is stopped at the end.

    .venv/bin/python benchmarks/bench_live.py                # --contacts 5000 --limit 1000 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.ids import IdFactory
from herald.store import schema as t
from herald.store.queries import NewContact, Store
from live_support import (
    SECRET,
    TOKEN,
    Fleet,
    WaitSampler,
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

TARGET_SCALING = 2.5
TARGET_RATE = 1000.0


def campaign_config(agent_url: str, limit: int) -> dict[str, Any]:
    return {
        "name": "Live throughput",
        "channel": "phone_call",
        "timezone": "America/Mexico_City",
        "retries": 0,
        "retry_delay_minutes": 0,
        "failed_retry_limit": 0,
        "concurrency_limit": limit,
        "agent": {"name": "Bench", "tags": ["promise"], "conversion": {"tag": "promise"}},
        "provider": "http",
        "provider_options": {
            "base_url": agent_url,
            "auth_token": "env:AGENT_TOKEN",
            "webhook_secret": "env:AGENT_SECRET",
            "timeout_seconds": 10,
        },
    }


def count(store: Store, statement: Any) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(statement).scalar_one())


def status(store: Store, campaign_id: int) -> CampaignStatus:
    with store.read() as tx:
        return tx.campaign(campaign_id).status


def worker_figures(fleet: Fleet) -> list[dict[str, Any]]:
    """The figures each stopped worker printed (`herald worker --json`)."""
    figures: list[dict[str, Any]] = []
    text, decoder = fleet.log("worker"), json.JSONDecoder()
    at = text.find("\n{")
    while at >= 0:
        with suppress(ValueError):
            value, _ = decoder.raw_decode(text, at + 1)
            if isinstance(value, dict):
                figures.append(value)
        at = text.find("\n{", at + 1)
    return figures


def run_config(backend: str, workers: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"{backend}-{workers}w-", dir=root))
    result: dict[str, Any] = {"backend": backend, "workers": workers, "contacts": args.contacts, "limit": args.limit}
    with database(backend, folder) as url:
        port = free_port()
        env = {"AGENT_TOKEN": TOKEN, "AGENT_SECRET": SECRET, "HERALD_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        fleet = Fleet(folder, url, env)
        if args.profile:
            # Every process (workers, serve, the fake agent) under cProfile in all its threads; each writes its
            # profile when it stops.
            fleet.profile = Path(args.profile).resolve() / f"{backend}-{workers}w"
            result["profile"] = str(fleet.profile)
        store = Store.open(url)
        try:
            agent_url = fleet.fake_agent(port, min_delay=0.0, max_delay=args.agent_delay, senders=args.agent_senders)
            now = datetime.now(UTC)
            campaign_id = create_campaign(
                store, parse_campaign(campaign_config(agent_url, args.limit)), now, IdFactory()
            )
            people = [NewContact(f"+5255{index:08d}", f"Person {index}", "ctx") for index in range(args.contacts)]
            add_contacts(store, campaign_id, people, now)
            serve = fleet.herald("serve", "serve", "--port", str(port))
            wait_for(lambda: healthy(port), "herald serve to answer", 60, fleet)
            # --json: each worker prints its figures (rounds, claims, events) when it stops, in its log.
            running = [fleet.herald("worker", "worker", "--poll", str(args.poll), "--json") for _ in range(workers)]
            alive = select(func.count()).select_from(t.workers).where(t.workers.c.stopped_at.is_(None))
            wait_for(lambda: count(store, alive) >= workers, "the workers to register", 60, fleet)

            pids = {
                "workers": [p.pid for p in running],
                "serve": [serve.pid],
                "agent": [p.pid for role, p in fleet.started if role == "fake-agent"],
            }
            before = {role: cpu_seconds(group) for role, group in pids.items()}
            postgres_before = {pid: cpu_seconds([pid]) for pid in backend_pids(url)}
            stats_before = database_stats(url)
            sampler = WaitSampler(url) if args.sample_waits and backend == "postgresql" else nullcontext()
            with sampler:
                began = time.perf_counter()
                act(store, campaign_id, "activate", datetime.now(UTC))
                try:
                    wait_for(
                        lambda: status(store, campaign_id) is CampaignStatus.FINISHED,
                        "the campaign to finish",
                        args.timeout,
                        fleet,
                        every=0.05,
                    )
                    finished = True
                except TimeoutError:
                    finished = False
                seconds = time.perf_counter() - began
            if isinstance(sampler, WaitSampler):
                result["postgres_backends_by_state"] = sampler.top()
            cpu = {role: cpu_seconds(group) - before[role] for role, group in pids.items()}
            cpu["postgres"] = sum(cpu_seconds([pid]) - postgres_before.get(pid, 0.0) for pid in backend_pids(url))

            time.sleep(0.6)  # the statistics collector's lag
            stats_after = database_stats(url)
            attempts = count(store, select(func.count()).select_from(t.calls))
            applied = count(store, select(func.count()).where(t.events.c.applied_at.is_not(None)))
            stored = count(store, select(func.count()).select_from(t.events))
            final = count(store, select(func.count()).where(t.contacts.c.final))
            stats = httpx.get(f"{agent_url}/stats", timeout=10).json()
            codes = [fleet.stop(process) for process in running]
            figures = worker_figures(fleet)
            result.update(
                finished=finished,
                seconds=round(seconds, 2),
                attempts=attempts,
                attempts_per_second=round(attempts / seconds, 1),
                events_stored=stored,
                events_applied=applied,
                events_applied_per_second=round(applied / seconds, 1),
                contacts_final=final,
                agent_placements=stats["placements"],
                agent_max_in_flight=stats["max_in_flight"],
                agent_post_failures=stats["post_failures"],
                agent_last_post_error=stats["last_post_error"],
                worker_exit_codes=codes,
                # Rounds (and the drains and claims in them) cost queries whatever they find: fewer per attempt, less CPU.
                worker_rounds=sum(f.get("rounds", 0) for f in figures),
                worker_errors=sum(f.get("errors", 0) for f in figures),
                worker_empty_drains=sum(f.get("empty_drains", 0) for f in figures),
                worker_campaigns_held=sum(f.get("campaigns_held", 0) for f in figures),
                postgres_counters={key: stats_after[key] - value for key, value in stats_before.items()},
                cpu_seconds={role: round(value, 1) for role, value in cpu.items()},
                cpu_ms_per_attempt={role: round(1000 * value / max(attempts, 1), 2) for role, value in cpu.items()},
                cpu_share_of_machine=round(sum(cpu.values()) / (seconds * (machine()["cpus"] or 1)), 2),
                load_average_after=machine()["load_average"],
            )
        finally:
            fleet.stop_all()
            store.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=1000, help="concurrency_limit (the example campaign has 10)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts on PostgreSQL")
    parser.add_argument("--poll", type=float, default=0.2, help="herald worker --poll (seconds between idle rounds)")
    parser.add_argument("--agent-delay", type=float, default=0.01, help="fake agent max delay between events (s)")
    parser.add_argument("--agent-senders", type=int, default=4, help="fake agent threads posting events")
    parser.add_argument("--timeout", type=float, default=600, help="give up on one configuration after this (s)")
    parser.add_argument("--profile", help="run every process under cProfile (all threads), profiles in this folder")
    parser.add_argument(
        "--sample-waits", action="store_true", help="PostgreSQL: sample what the backends wait on (pg_stat_activity)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite reference")
    parser.add_argument("--logs", help="keep the processes' logs in this folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    configs = [] if args.no_sqlite else [("sqlite", 1)]
    configs += [("postgresql", int(n)) for n in args.workers.split(",")]
    info = machine()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-live-") as scratch:
        root = Path(args.logs) if args.logs else Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        for backend, workers in configs:
            print(f"running {backend} with {workers} worker(s)…", file=sys.stderr, flush=True)
            results.append(run_config(backend, workers, args, root))
            print(f"  {json.dumps(results[-1])}", file=sys.stderr, flush=True)

    reference = next((r for r in results if r["backend"] == "sqlite"), None)
    pg = {r["workers"]: r for r in results if r["backend"] == "postgresql"}
    figures: dict[str, Any] = {}
    if 1 in pg and 4 in pg:
        scaling = pg[4]["attempts_per_second"] / pg[1]["attempts_per_second"]
        figures["pg_4_over_1"] = round(scaling, 2)
        figures["pg_4_over_1_met"] = scaling >= TARGET_SCALING
    if 4 in pg:
        figures["pg_4_attempts_per_second_met"] = pg[4]["attempts_per_second"] >= TARGET_RATE
    for r in results:
        r["ratio_to_sqlite_1"] = (
            round(r["attempts_per_second"] / reference["attempts_per_second"], 2) if reference else None
        )
    if args.json:
        print(json.dumps({"machine": info, "args": vars(args), "results": results, "figures": figures}, indent=2))
        return 0
    print(
        f"machine: {info['cpus']} CPUs, {info['cpu_model']}, Python {info['python']}, load average at start "
        f"{info['load_average']}"
    )
    print(f"campaign: {args.contacts} contacts, retries 0, failed_retry_limit 0, concurrency_limit {args.limit}")
    rows = []
    for r in results:
        cpu = r["cpu_seconds"]
        rows.append(
            [
                f"{r['backend']}, {r['workers']} worker(s)" + ("" if r["finished"] else " (TIMEOUT)"),
                f"{r['attempts']:,}",
                f"{r['seconds']:.1f}",
                f"{r['attempts_per_second']:,.0f}",
                f"{r['events_applied_per_second']:,.0f}",
                f"{r['ratio_to_sqlite_1']:.2f}x" if r["ratio_to_sqlite_1"] is not None else "-",
                f"{cpu['workers']:.1f}/{cpu['serve']:.1f}/{cpu['agent']:.1f}/{cpu['postgres']:.1f}",
                "/".join(f"{r['cpu_ms_per_attempt'][role]:.2f}" for role in ("workers", "serve", "agent", "postgres"))
                + f" = {sum(r['cpu_ms_per_attempt'].values()):.2f}",
                f"{r['cpu_share_of_machine']:.0%}",
            ]
        )
    print(
        table(
            [
                "configuration",
                "attempts",
                "s",
                "attempts/s",
                "events/s",
                "vs sqlite 1w",
                "CPU s w/serve/agent/pg",
                "CPU ms per attempt w/serve/agent/pg",
                "CPU",
            ],
            rows,
        )
    )
    if "pg_4_over_1" in figures:
        verdict = "met" if figures["pg_4_over_1_met"] else "NOT met"
        print(
            f"PostgreSQL 4 workers / 1 worker: {figures['pg_4_over_1']:.2f}x   target >= {TARGET_SCALING}x ({verdict})"
        )
    if 4 in pg:
        verdict = "met" if figures["pg_4_attempts_per_second_met"] else "NOT met"
        print(f"PostgreSQL 4 workers: {pg[4]['attempts_per_second']:,.0f} attempts/s   target >= 1,000 ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
