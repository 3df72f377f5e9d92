"""Hypothesis over whole simulated campaigns on real SQLite files: the engine's invariants hold for any settings."""

from __future__ import annotations

import itertools
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, migrated_sqlite, phone_numbers

weights = st.floats(min_value=0, max_value=1)
settings_strategy = st.fixed_dictionaries(
    {
        "retries": st.integers(0, 3),
        "failed_retry_limit": st.integers(0, 2),
        "concurrency_limit": st.integers(1, 8),
        "retry_delay_minutes": st.integers(0, 120),
        "cycles": st.one_of(
            st.just({"enabled": False}),
            st.fixed_dictionaries(
                {
                    "enabled": st.just(True),
                    "max_iterations": st.integers(2, 3),
                    "cooldown_minutes": st.integers(0, 90),
                    "filter_statuses": st.lists(st.sampled_from(["answered", "voicemail", "failed"]), max_size=2),
                }
            ),
        ),
        "provider_options": st.fixed_dictionaries(
            {
                "phone": st.fixed_dictionaries(
                    {
                        "human": weights,
                        "machine": weights,
                        "unknown": weights,
                        "no_answer": weights,
                        "busy": weights,
                        "failed": st.floats(min_value=0.01, max_value=1),
                    }
                ),
                "conversation": st.fixed_dictionaries({"follow_up_rate": weights, "tag_rate": weights}),
            }
        ),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=settings_strategy, contacts=st.integers(1, 12), seed=st.integers(0, 1000))
def test_campaign_invariants(config: dict[str, Any], contacts: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(migrated_sqlite(Path(folder) / "h.db"))
        try:
            _check(store, config, contacts, seed)
        finally:
            store.close()


def _check(store: Store, config: dict[str, Any], contacts: int, seed: int) -> None:
    clock = VirtualClock(START)
    ids = IdFactory(seed)
    parsed = parse_campaign({"name": "P", "channel": "phone_call", "agent": AGENT, **config})
    campaign_id = create_campaign(store, parsed, clock.now(), ids)
    add_contacts(store, campaign_id, [NewContact(n, "x", "") for n in phone_numbers(contacts)], clock.now())
    act(store, campaign_id, "activate", clock.now())
    engine = Engine(store, Simulator(seed), clock, ids)
    max_inflight = 0

    def watch(current: Engine) -> None:
        nonlocal max_inflight
        with store.tx() as tx:
            max_inflight = max(max_inflight, tx.inflight_count(campaign_id))

    engine.run(on_step=watch)
    with store.tx() as tx:
        campaign = tx.campaign(campaign_id)
        calls = tx.connection.execute(select(t.calls).order_by(t.calls.c.id)).all()
        rows = list(tx.all_contacts(campaign_id))
    assert campaign.status is CampaignStatus.FINISHED
    assert max_inflight <= parsed.concurrency_limit
    budget = 1 + parsed.retries + parsed.failed_retry_limit
    per_cycle: dict[tuple[int, int], int] = defaultdict(int)
    intervals: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for call in calls:
        assert call.status in ("ended", "busy", "no-answer", "failed")
        if not call.follow_up:
            per_cycle[(call.contact_id, call.cycle)] += 1
        intervals[call.contact_id].append((call.created_at, call.ended_at))
        if call.answered_by is None:
            assert call.duration == 0 and call.billed_seconds == 0
    assert all(count <= budget for count in per_cycle.values()), per_cycle
    for spans in intervals.values():
        spans.sort()
        for (_, first_end), (second_start, _) in itertools.pairwise(spans):
            assert first_end <= second_start, "a contact was in two calls at once"
    for row in rows:
        assert row.state.final and not row.state.follow_up and row.inflight_id is None
        own = [call for call in calls if call.contact_id == row.id]
        assert row.state.calls == len(own)
        assert row.state.billed_seconds == sum(call.billed_seconds for call in own)
    assert campaign.cycle_iteration <= (parsed.cycles.max_iterations if parsed.cycles.enabled else 1)
