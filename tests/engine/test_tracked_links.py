"""Tracked links in the engine: the virtual-clock runner issues tokens with the message rows and hands the tracked
URLs to the provider; the simulator's clicks name the campaign's links; a live worker keeps a message's tokens when
its start is retried."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from herald.domain import links as tracking
from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.worker import Worker
from herald.ids import IdFactory
from herald.providers.base import MessageRequest, StartResult
from herald.providers.simulator import Simulator
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, CampaignFactory, phone_numbers

LINKS = [{"id": "offer", "name": "Ver oferta", "url": "https://shop.example.com/o"}, {"id": "faq", "name": "FAQ",
         "url": "https://shop.example.com/faq"}]  # fmt: skip
WA: dict[str, Any] = {"channel": "whatsapp", "template": "promo", "links": LINKS}
CLICKING = {"whatsapp": {"send_error_rate": 0, "failure_rate": 0, "read_rate": 1, "link_click_rate": 1}}


class SpySimulator(Simulator):
    """The simulator, keeping the requests it was given."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.requests: list[MessageRequest] = []

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        self.requests.extend(requests)
        return super().send_messages(requests, now)


def _tracked(store: Store) -> dict[str, Any]:
    with store.read() as tx:
        return {row.token: row for row in tx.connection.execute(select(t.tracked_links))}


def test_the_runner_sends_tracked_urls_and_simulated_clicks_name_the_links(
    store: Store, campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_PUBLIC_URL", "https://h.example")
    _, engine = campaign(contacts=8, retries=0, provider_options=CLICKING, **WA)
    spy = SpySimulator(1)
    engine.provider = spy
    engine.run()
    tracked = _tracked(store)
    assert len(spy.requests) == 8 and len(tracked) == 16
    for request in spy.requests:
        for link in LINKS:
            url = str(request.variables[link["id"]])
            token = url.removeprefix("https://h.example/l/")
            assert tracking.is_token(token)
            row = tracked[token]
            assert (row.message_id, row.link_id, row.name, row.url) == (
                request.message_id,
                link["id"],
                link["name"],
                link["url"],
            )
    with store.read() as tx:
        rows = list(tx.connection.execute(select(t.messages.c.link_clicks, t.messages.c.input_variables)))
    clicks = [click for row in rows for click in row.link_clicks]
    assert len(clicks) == 8 and {(c["id"], c["name"]) for c in clicks} <= {("offer", "Ver oferta"), ("faq", "FAQ")}
    assert all("offer" not in row.input_variables for row in rows)  # the stored variables are the imported ones


class FlakyProvider:
    """Refuses each message's first start with a retryable error, then takes it."""

    name = "simulator"
    idempotent = True
    throughput = None

    def __init__(self) -> None:
        self.requests: list[MessageRequest] = []

    def start_calls(self, requests: Sequence[Any], now: datetime) -> list[StartResult]:
        raise AssertionError("no calls here")

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        results = []
        for request in requests:
            seen = any(earlier.message_id == request.message_id for earlier in self.requests)
            results.append(
                StartResult(f"wamid.{request.message_id}") if seen else StartResult.retryable("http_503", "")
            )
            self.requests.append(request)
        return results


def test_a_retried_start_keeps_the_message_tokens(store: Store) -> None:
    config = {"name": "Retry", "agent": AGENT, **WA}
    campaign_id = create_campaign(store, parse_campaign(config), START, IdFactory(1))
    add_contacts(store, campaign_id, [NewContact(n, "P", "") for n in phone_numbers(3)], START)
    act(store, campaign_id, "activate", START)
    clock = VirtualClock(START)
    provider = FlakyProvider()
    worker = Worker(store, clock=clock, ids=IdFactory(), outbound_factory=lambda _n, _o: provider)  # type: ignore[arg-type,return-value]
    worker.register()
    try:
        for _ in range(20):
            worker.round()
            clock.wait_until(clock.now() + timedelta(seconds=5))
    finally:
        worker.close()
    by_message: dict[int, list[dict[str, Any]]] = {}
    for request in provider.requests:
        by_message.setdefault(request.message_id, []).append(dict(request.variables))
    assert len(by_message) == 3 and all(len(sent) == 2 and sent[0] == sent[1] for sent in by_message.values())
    assert len(_tracked(store)) == 6
