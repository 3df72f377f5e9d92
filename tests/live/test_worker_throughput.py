"""A worker starting calls of a rate-limited provider: slots reserved through the database, the rest handed back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import pytest

from herald.engine.clock import VirtualClock
from herald.providers.base import CallRequest, MessageRequest, StartResult, Throughput
from herald.store.queries import Store

from ..conftest import START
from .test_worker import call_rows, close, make_campaign, workers_on


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


class Limited:
    """A provider allowing one start a second (a burst of one), that records the calls it was asked to place."""

    name = "simulator"
    idempotent = False
    throughput = Throughput("test:account", per_second=1.0)

    def __init__(self) -> None:
        self.placed: list[str] = []

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        self.placed.extend(request.public_id for request in requests)
        return [StartResult(external_id=f"ext-{request.public_id}") for request in requests]

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        raise AssertionError("no messages here")


def test_starts_beyond_the_rate_go_back_to_the_pool_untouched(store: Store) -> None:
    make_campaign(store, 6, concurrency_limit=6)
    provider = Limited()
    clock = VirtualClock(START)
    workers = workers_on(store, clock, 2, outbound_factory=lambda _name, _options: provider)
    try:
        for worker in workers:
            worker.round()
    finally:
        close(workers)
    rows = call_rows(store)
    started = [row for row in rows if row.start_after is None]
    waiting = [row for row in rows if row.start_after is not None]
    # One slot now and one a second later fit in the one-second horizon: two calls placed, whichever worker asked.
    assert len(rows) == 6 and len(started) == 2 and sorted(provider.placed) == sorted(r.public_id for r in started)
    for row in waiting:
        # Waiting for a slot is no failure: no try counted, no error, no owner, due again when slots open.
        assert (row.start_tries, row.error_code, row.worker_id) == (0, "", None)
        assert START < row.start_after <= START + timedelta(seconds=2)
