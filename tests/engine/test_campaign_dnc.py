"""A campaign's own do-not-call list in a simulated run: the engine's check before each attempt (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store import schema as t
from herald.store.campaign_dnc import suppress_in_campaign
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, phone_numbers

ALL_MACHINE = {"phone": {"human": 0, "machine": 1, "unknown": 0, "no_answer": 0, "busy": 0, "failed": 0}}
RETRIES = 3
NUMBERS = phone_numbers(5)
LISTED = NUMBERS[2]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def _campaigns(store: Store) -> tuple[int, int, Engine]:
    """Two campaigns of one business with the same five numbers, every call a voicemail retried 3 times."""
    clock = VirtualClock(START)
    ids = IdFactory(5)
    made = []
    for name in ("A", "B"):
        data: dict[str, Any] = {
            "name": name,
            "channel": "phone_call",
            "agent": AGENT,
            "retries": RETRIES,
            "retry_delay_minutes": 60,
            "provider_options": ALL_MACHINE,
        }
        campaign_id = create_campaign(store, parse_campaign(data), clock.now(), ids)
        add_contacts(store, campaign_id, [NewContact(contact=n, name="P", context="") for n in NUMBERS], clock.now())
        act(store, campaign_id, "activate", clock.now())
        made.append(campaign_id)
    return made[0], made[1], Engine(store, Simulator(5), clock, ids)


def _calls(store: Store, campaign_id: int) -> list[tuple[str, Any]]:
    """(number called, created_at) of the campaign's calls."""
    with store.read() as tx:
        rows = tx.connection.execute(
            select(t.contacts.c.contact, t.calls.c.created_at)
            .join(t.contacts, t.contacts.c.id == t.calls.c.contact_id)
            .where(t.calls.c.campaign_id == campaign_id)
        )
        return [(row[0], row[1]) for row in rows]


@pytest.mark.parametrize("when", ["in flight", "waiting for its retry"])
def test_a_number_listed_mid_run_is_never_called_again_in_that_campaign(store: Store, when: str) -> None:
    a, b, engine = _campaigns(store)
    if when == "in flight":
        engine.run(max_steps=1)  # every first call placed, none ended
    else:
        engine.run(until=START + timedelta(minutes=30))  # first calls ended, retries due in an hour
    listed_at = engine.clock.now()
    with store.tx() as tx:
        inflight = {c.contact: c.inflight_id is not None for c in tx.all_contacts(a)}
        assert inflight[LISTED] is (when == "in flight")
        suppress_in_campaign(tx, a, LISTED, listed_at, "test")
    engine.run()

    in_a, in_b = _calls(store, a), _calls(store, b)
    assert [
        at for number, at in in_a if number == LISTED and at > listed_at
    ] == []  # (listed after the step that placed it)
    assert sum(1 for number, _ in in_a if number == LISTED) == 1  # the first call, made before it was listed
    for number in NUMBERS:
        assert sum(1 for n, _ in in_b if n == number) == 1 + RETRIES  # campaign B still calls it
        if number != LISTED:
            assert sum(1 for n, _ in in_a if n == number) == 1 + RETRIES
    with store.read() as tx:
        closed = next(c for c in tx.all_contacts(a) if c.contact == LISTED)
        assert (closed.state.opted_out, closed.state.final, closed.state.status.value) == (True, True, "retrying")
        assert not any(c.state.opted_out for c in tx.all_contacts(b))
        assert tx.campaign(a).status.value == tx.campaign(b).status.value == "finished"
