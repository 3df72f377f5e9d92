"""Timers of seconds through the engine (issue 17): a 3-second retry delay and a 10.8-second response timeout hold
under the virtual-clock runner and under the live worker, neither truncated to whole minutes nor to zero."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.engine.worker import Worker
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, phone_numbers

#: Every call reaches a voicemail: each contact is retried after `retry_delay_minutes`.
VOICEMAIL = {"phone": {"human": 0, "machine": 1, "unknown": 0, "no_answer": 0, "busy": 0, "failed": 0}}
#: Every message is delivered (within a second of `sent`, so the timer runs from delivery) and never read or
#: answered: each contact times out after `response_timeout_hours`.
UNANSWERED = {
    "whatsapp": {
        "send_error_rate": 0,
        "failure_rate": 0,
        "delivered_receipt_rate": 1,
        "delivered_seconds_max": 1,
        "read_rate": 0,
    },
}
PHONE: dict[str, Any] = {"channel": "phone_call", "retries": 2, "retry_delay_minutes": 0.05, "failed_retry_limit": 0}
WHATSAPP: dict[str, Any] = {"channel": "whatsapp", "template": "t", "retries": 1, "response_timeout_hours": 0.003}
#: How often the runner (its tick) or the live worker (its rounds, here) looks for due work.
STEP = timedelta(milliseconds=500)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def _campaign(store: Store, options: dict[str, Any], **config: Any) -> int:
    data = {"name": "Seconds", "agent": AGENT, "provider_options": options, **config}
    campaign_id = create_campaign(store, parse_campaign(data), START, IdFactory(1))
    rows = [NewContact(contact=n, name=f"Person {i}", context="ctx") for i, n in enumerate(phone_numbers(3))]
    add_contacts(store, campaign_id, rows, START)
    act(store, campaign_id, "activate", START)
    return campaign_id


def _run_simulated(store: Store, campaign_id: int) -> None:
    engine = Engine(store, Simulator(1), VirtualClock(START), IdFactory(1), tick=STEP)
    assert campaign_id in engine.run().finished_campaigns


def _run_live(store: Store, campaign_id: int) -> None:
    clock = VirtualClock(START)
    worker = Worker(store, clock=clock, ids=IdFactory())
    worker.register()
    try:
        for _ in range(5000):
            worker.round()
            with store.read() as tx:
                if tx.campaign(campaign_id).status is CampaignStatus.FINISHED:
                    return
            clock.wait_until(clock.now() + STEP)
    finally:
        worker.close()
    raise AssertionError("the campaign did not finish")


def _by_contact(rows: list[Any]) -> list[list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.contact_id, []).append(row)
    return list(grouped.values())


@pytest.mark.parametrize("run", [_run_simulated, _run_live], ids=["runner", "worker"])
def test_a_retry_delay_of_three_seconds(store: Store, run: Any) -> None:
    campaign_id = _campaign(store, VOICEMAIL, **PHONE)
    run(store, campaign_id)
    with store.read() as tx:
        calls = list(tx.connection.execute(select(t.calls).order_by(t.calls.c.id)))
    contacts = _by_contact(calls)
    assert len(contacts) == 3 and all(len(calls) == 3 for calls in contacts)
    for earlier, later in itertools.chain.from_iterable(itertools.pairwise(calls) for calls in contacts):
        gap = later.created_at - earlier.ended_at
        assert timedelta(seconds=3) <= gap <= timedelta(seconds=3) + STEP, gap


@pytest.mark.parametrize("run", [_run_simulated, _run_live], ids=["runner", "worker"])
def test_a_response_timeout_of_ten_point_eight_seconds(store: Store, run: Any) -> None:
    campaign_id = _campaign(store, UNANSWERED, **WHATSAPP)
    run(store, campaign_id)
    with store.read() as tx:
        messages = list(tx.connection.execute(select(t.messages).order_by(t.messages.c.id)))
    contacts = _by_contact(messages)
    assert len(contacts) == 3 and all(len(sent) == 2 for sent in contacts)
    for first, second in contacts:
        gap = second.created_at - first.delivered_at
        assert timedelta(seconds=10.8) <= gap <= timedelta(seconds=10.8) + STEP, gap
