"""Acceptance with real OS processes on SQLite and PostgreSQL: workers side by side, killed workers, two simulated
runs on one database, and a pause from another process during a run."""

from __future__ import annotations

import itertools
import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from herald.domain.statuses import CampaignStatus
from herald.store import schema as t
from herald.store.queries import Store

from .processes import Processes, log_of, processes, stop, wait_for

__all__ = ["processes"]

LIVE_CAMPAIGN = """
name: Live acceptance
channel: phone_call
timezone: America/Mexico_City
retries: 1
retry_delay_minutes: 0
failed_retry_limit: 1
concurrency_limit: {limit}
agent: {{name: Test, tags: [promise], conversion: {{tag: promise}}}}
provider: simulator
provider_options:
  time_scale: 0.01
  conversation: {{follow_up_rate: 0}}
"""


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def load_campaign(processes: Processes, folder: Path, contacts: int, limit: int, text: str = LIVE_CAMPAIGN) -> None:
    (folder / "campaign.yaml").write_text(text.format(limit=limit))
    lines = ["contact,name,context", *(f"+5255{index:08d},Person {index},ctx" for index in range(contacts))]
    (folder / "contacts.csv").write_text("\n".join(lines) + "\n")
    for args in (
        ("campaign", "create", str(folder / "campaign.yaml")),
        ("contacts", "import", "1", str(folder / "contacts.csv")),
        ("campaign", "activate", "1"),
    ):
        result = processes.run(*args)
        assert result.returncode == 0, result.stderr


def campaign_status(store: Store) -> CampaignStatus:
    with store.read() as tx:
        return tx.campaign(1).status


def check_invariants(store: Store, contacts: int, limit: int) -> None:
    """No contact in two calls at once, never more than `limit` calls at once, every call id once, all final."""
    with store.read() as tx:
        calls = list(tx.connection.execute(select(t.calls).order_by(t.calls.c.created_at, t.calls.c.id)))
        final = tx.connection.execute(select(func.count()).where(t.contacts.c.final)).scalar_one()
        inflight = tx.inflight_count(1)
    assert final == contacts and inflight == 0
    assert len({row.public_id for row in calls}) == len(calls) >= contacts
    assert len({row.provider_call_id for row in calls}) == len(calls)
    assert all(row.ended_at is not None and row.start_after is None for row in calls)
    moments = sorted([(row.created_at, 1) for row in calls] + [(row.ended_at, -1) for row in calls])
    level = peak = 0
    for _, step in moments:
        level += step
        peak = max(peak, level)
    assert peak <= limit
    by_contact: dict[int, list[Any]] = {}
    for row in calls:
        by_contact.setdefault(row.contact_id, []).append(row)
    for rows in by_contact.values():
        for earlier, later in itertools.pairwise(rows):
            assert earlier.ended_at <= later.created_at


def test_workers_side_by_side_finish_a_campaign(processes: Processes, store: Store, tmp_path: Path) -> None:
    load_campaign(processes, tmp_path, contacts=150, limit=12)
    workers = [processes.start("worker", "--poll", "0.2") for _ in range(2)]
    wait_for(lambda: campaign_status(store) is CampaignStatus.FINISHED, "the campaign to finish")
    assert stop(workers) == [0, 0], [log_of(worker) for worker in workers]
    check_invariants(store, contacts=150, limit=12)
    with store.read() as tx:
        stopped = list(tx.connection.execute(select(t.workers.c.stop_reason)))
    assert [row[0] for row in stopped] == ["stopped", "stopped"]
    assert "Traceback" not in "".join(log_of(worker) for worker in workers)


def test_killed_workers_lose_nothing(processes: Processes, store: Store, tmp_path: Path) -> None:
    load_campaign(processes, tmp_path, contacts=150, limit=12)
    rng = random.Random(5)
    workers = [processes.start("worker", "--poll", "0.2") for _ in range(2)]
    for _ in range(5):
        # Kill one worker when some calls have been placed since the last kill, and start a new one.
        with store.read() as tx:
            placed = tx.connection.execute(select(func.count()).select_from(t.calls)).scalar_one()
        wait_for(
            lambda placed=placed: (
                _calls(store) >= placed + rng.randint(1, 20) or campaign_status(store) is CampaignStatus.FINISHED
            ),
            "calls to be placed",
            every=0.05,
        )
        victim = workers.pop(rng.randrange(len(workers)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        workers.append(processes.start("worker", "--poll", "0.2"))
    wait_for(lambda: campaign_status(store) is CampaignStatus.FINISHED, "the campaign to finish")
    assert stop(workers) == [0, 0]
    check_invariants(store, contacts=150, limit=12)


def _calls(store: Store) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(select(func.count()).select_from(t.calls)).scalar_one())


SIMULATED_CAMPAIGN = """
name: Simulated
channel: phone_call
timezone: America/Mexico_City
retries: 2
retry_delay_minutes: 30
concurrency_limit: {limit}
agent: {{name: Test, tags: [promise], conversion: {{tag: promise}}}}
provider: simulator
"""


def test_a_second_simulated_run_refuses_clearly(processes: Processes, store: Store, tmp_path: Path) -> None:
    load_campaign(processes, tmp_path, contacts=20000, limit=5, text=SIMULATED_CAMPAIGN)
    first = processes.start("run", "--simulate")
    wait_for(lambda: _calls(store) > 0, "the first run to start")
    second = processes.run("run", "--simulate")
    assert second.returncode == 1
    assert "another process is running campaigns on this database" in second.stderr
    assert "Traceback" not in second.stderr
    assert stop([first], signal.SIGKILL)


def test_a_pause_from_another_process_stops_a_simulated_run(processes: Processes, store: Store, tmp_path: Path) -> None:
    load_campaign(processes, tmp_path, contacts=20000, limit=5, text=SIMULATED_CAMPAIGN)
    run = processes.start("run", "--simulate", "--json")
    wait_for(lambda: _calls(store) > 20, "the run to place calls")
    paused = processes.run("campaign", "pause", "1")
    assert paused.returncode == 0, paused.stderr
    placed = _calls(store)
    assert run.wait(timeout=600) == 0, log_of(run)
    assert _calls(store) == placed  # no attempt started after the pause committed
    assert campaign_status(store) is CampaignStatus.INACTIVE  # never overwritten
    result = json.loads(log_of(run)[log_of(run).index("{") :])
    assert result["campaigns"] == {"1": "inactive"}
