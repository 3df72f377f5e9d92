"""The whole live system as a user runs it: `herald serve`, several `herald worker`s and a fake agent backend (the
open `http` provider) as separate processes on 127.0.0.1, on SQLite and on PostgreSQL.

The fake answers starts, honours idempotency keys and posts signed events back after random delays, 10% duplicated
and 10% out of order; it counts what it saw. The checks compare its counts with what Herald stored.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from herald.domain.statuses import CampaignStatus
from herald.store import schema as t
from herald.store.queries import Store

from .processes import (
    Processes,
    campaign_status,
    fake_server,
    fake_stats,
    free_port,
    kill_workers,
    load_campaign,
    log_of,
    processes,
    serve,
    stop,
    store,
    wait_for,
)

__all__ = ["processes", "store"]

SECRET = base64.b64encode(b"acceptance-secret-0123456789abcdef").decode()
TOKEN = "acceptance-token-0123456789"

CAMPAIGN = """
name: HTTP acceptance
channel: phone_call
timezone: America/Mexico_City
retries: 1
retry_delay_minutes: 0
failed_retry_limit: 1
concurrency_limit: {limit}
agent: {{name: Test, tags: [promise], conversion: {{tag: promise}}}}
provider: http
provider_options:
  base_url: "{agent_url}"
  auth_token: "env:AGENT_TOKEN"
  webhook_secret: "env:AGENT_SECRET"
  timeout_seconds: 5
"""


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The fake agent backend as a process; yields its URL and Herald's port it posts events to."""
    herald_port = free_port()
    options = [
        "--secret", SECRET, "--token", TOKEN, "--seed", "3", "--min-delay", "0.05", "--max-delay", "0.6",
        "--callback-url", f"http://127.0.0.1:{herald_port}/webhooks/http",
    ]  # fmt: skip
    with fake_server(tmp_path / "agent.log", "fake_agent", *options) as url:
        yield url, herald_port


def run_live(
    processes: Processes,
    store: Store,
    agent: tuple[str, int],
    tmp_path: Path,
    *,
    workers: int,
    contacts: int,
    limit: int,
    kills: int = 0,
) -> None:
    agent_url, port = agent
    env = {"AGENT_TOKEN": TOKEN, "AGENT_SECRET": SECRET, "HERALD_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    lines = ["contact,name,context", *(f"+5255{index:08d},Person {index},ctx" for index in range(contacts))]
    load_campaign(processes, tmp_path, CAMPAIGN.format(limit=limit, agent_url=agent_url), lines, **env)
    server, _ = serve(processes, port, **env)
    running = [processes.start("worker", "--poll", "0.2", **env) for _ in range(workers)]
    assert processes.run("campaign", "activate", "1", **env).returncode == 0
    rng = random.Random(7)
    most = max(6, contacts // (kills + 1))
    kill_workers(
        processes,
        running,
        store,
        kills=kills,
        rng=rng,
        done=lambda: _calls(store),
        most=most,
        what="calls to be placed",
        **env,
    )
    wait_for(lambda: campaign_status(store) is CampaignStatus.FINISHED, "the campaign to finish", every=0.5)
    # The fake may still post late events (an out-of-order `ringing` after the end): the workers must have applied
    # every one before they stop, or `check` would find it waiting in the inbox.
    wait_for(
        lambda: fake_stats(agent_url)["pending_events"] == 0 and _pending(store) == 0,
        "every event posted and applied",
        every=0.2,
    )
    assert stop(running) == [0] * workers, [log_of(worker) for worker in running]
    assert stop([server]) == [0], log_of(server)
    check(store, agent_url, contacts=contacts, limit=limit)


def _pending(store: Store) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(select(func.count()).where(t.events.c.applied_at.is_(None))).scalar_one())


def _calls(store: Store) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(select(func.count()).select_from(t.calls)).scalar_one())


def check(store: Store, agent_url: str, contacts: int, limit: int) -> None:
    stats = fake_stats(agent_url)
    with store.read() as tx:
        calls = list(tx.connection.execute(select(t.calls).order_by(t.calls.c.id)))
        final = tx.connection.execute(select(func.count()).where(t.contacts.c.final)).scalar_one()
        inflight = tx.inflight_count(1)
        pending = tx.connection.execute(select(func.count()).where(t.events.c.applied_at.is_(None))).scalar_one()
    assert final == contacts and inflight == 0 and pending == 0
    placed = [row for row in calls if not row.provider_call_id.startswith("start-")]
    # No call placed twice; every placement is one of Herald's calls; never over the limit; no number twice at once.
    assert stats["placements"] == len(placed) == len({row.public_id for row in placed})
    assert set(stats["outcomes"]) == {row.public_id for row in placed}
    assert stats["max_in_flight"] <= limit
    assert stats["overlapping_numbers"] == []
    # What the fake said happened is what Herald recorded.
    for row in placed:
        sent = stats["outcomes"][row.public_id]
        assert (row.status, row.answered_by or "") == (sent["status"], sent.get("answered_by") or ""), row.public_id


@pytest.mark.parametrize("workers", [2])
def test_serve_and_workers_run_a_campaign_through_the_http_provider(
    processes: Processes, store: Store, agent: tuple[str, int], tmp_path: Path, workers: int, database_url: str
) -> None:
    count = 3 if database_url.startswith("postgresql") else workers
    run_live(processes, store, agent, tmp_path, workers=count, contacts=2000, limit=50)


def test_workers_killed_at_random_moments_lose_and_double_nothing(
    processes: Processes, store: Store, agent: tuple[str, int], tmp_path: Path
) -> None:
    run_live(processes, store, agent, tmp_path, workers=2, contacts=600, limit=30, kills=10)
