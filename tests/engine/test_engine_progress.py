"""Engine.run's `progress` callback: called after every step, without changing what the run does."""

from __future__ import annotations

from pathlib import Path

from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine, RunStats
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, phone_numbers


def test_progress_sees_every_step_and_ends_like_a_plain_run(tmp_path: Path) -> None:
    def run(name: str, with_progress: bool) -> tuple[RunStats, list[tuple[int, int]], dict[str, int]]:
        store = Store.open(f"sqlite:///{tmp_path / name}")
        try:
            clock = VirtualClock(START)
            ids = IdFactory(3)
            config = parse_campaign({"name": "P", "channel": "phone_call", "agent": AGENT, "retries": 1})
            campaign_id = create_campaign(store, config, clock.now(), ids)
            add_contacts(store, campaign_id, [NewContact(n, "x", "") for n in phone_numbers(30)], clock.now())
            act(store, campaign_id, "activate", clock.now())
            engine = Engine(store, Simulator(3), clock, ids)
            seen: list[tuple[int, int]] = []
            if with_progress:
                engine.run(progress=lambda current: seen.append((current.stats.steps, current.stats.attempts)))
            else:
                engine.run()
            with store.tx() as tx:
                return engine.stats, seen, tx.status_counts(campaign_id)
        finally:
            store.close()

    plain, _, plain_counts = run("plain.db", False)
    watched, seen, watched_counts = run("watched.db", True)
    assert [steps for steps, _ in seen] == list(range(1, watched.steps + 1))
    assert seen[-1][1] == watched.attempts == plain.attempts
    assert watched_counts == plain_counts
