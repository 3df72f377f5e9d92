"""Shared fixtures: real SQLite files, a virtual clock, and a campaign factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store.queries import NewContact, Store

# The suite runs on a shared, busy 2-core machine: timing says nothing about correctness there, so no property test
# may fail for being slow (no deadline, no too_slow health check). Every other health check stays on.
settings.register_profile("herald", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("herald")

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # Monday 09:00 in Mexico City

AGENT: dict[str, Any] = {
    "tags": ["promise", "callback"],
    "fields": [{"name": "email"}, {"name": "amount", "type": "number"}, {"name": "date", "type": "date"}],
    "conversion": {"tag": "promise"},
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite file with the migrated schema."""
    opened = Store.open(f"sqlite:///{tmp_path / 'herald.db'}")
    yield opened
    opened.close()


def phone_numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid-looking Mexico City mobile numbers."""
    return [f"+5255{start + index:08d}" for index in range(count)]


CampaignFactory = Callable[..., tuple[int, Engine]]


@pytest.fixture
def campaign(store: Store) -> CampaignFactory:
    """Create, load and activate a campaign; returns its id and an engine on a virtual clock."""

    def make(
        contacts: int = 20,
        seed: int = 1,
        activate: bool = True,
        numbers: list[str] | None = None,
        **config: Any,
    ) -> tuple[int, Engine]:
        clock = VirtualClock(START)
        ids = IdFactory(seed)
        data: dict[str, Any] = {"name": "Test campaign", "channel": "phone_call", "agent": AGENT, **config}
        campaign_id = create_campaign(store, parse_campaign(data), clock.now(), ids)
        rows = [
            NewContact(contact=n, name=f"Person {i}", context="ctx")
            for i, n in enumerate(numbers or phone_numbers(contacts))
        ]
        add_contacts(store, campaign_id, rows, clock.now())
        if activate:
            act(store, campaign_id, "activate", clock.now())
        return campaign_id, Engine(store, Simulator(seed), clock, ids)

    return make
