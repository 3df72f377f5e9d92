"""Sending: the retry schedule on a virtual clock, leases, a receiver that hangs, two loops on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.engine.clock import VirtualClock
from herald.engine.worker import Worker
from herald.outbox import payloads
from herald.outbox.delivery import Deliverer, HttpSender, Response, attempt, deliver_due
from herald.outbox.payloads import CampaignRef
from herald.outbox.schedule import BACKOFF, MAX_ATTEMPTS
from herald.outbox.store import LEASE, Endpoint, claim, enqueue, record
from herald.store import schema as t
from herald.store.queries import Store

from ..conftest import START, CampaignFactory
from .conftest import Receiver, add_hook, attempt_rows, delivery_rows

REF = CampaignRef(7, "Cobranza Peñasco", "America/Mexico_City", "b0f1c3e0-0000-4000-8000-000000000000")


def _queue(store: Store, endpoint: Endpoint, count: int = 1) -> list[str]:
    """`count` status-change deliveries to `endpoint`, due at START; returns their event ids."""
    rows = []
    for _ in range(count):
        evt = payloads.event_id()
        body = payloads.encode(payloads.status_changed(evt, REF, "active", "inactive", START))
        rows.append((endpoint, evt, payloads.STATUS_CHANGED, body))
    with store.tx() as tx:
        enqueue(tx, rows, START)
    return [row[1] for row in rows]


@pytest.fixture
def sender() -> Iterator[HttpSender]:
    made = HttpSender()
    yield made
    made.close()


def test_a_failing_receiver_gets_five_attempts_on_the_schedule_then_none(
    store: Store, receiver: Receiver, sender: HttpSender
) -> None:
    receiver.answers = [500]
    _queue(store, add_hook(store, receiver.url))
    clock = VirtualClock(START)
    offset = timedelta(0)
    for number in range(MAX_ATTEMPTS):
        if number:
            offset += BACKOFF[number - 1]
            clock.wait_until(START + offset - timedelta(seconds=1))
            assert deliver_due(store, 1, clock, sender) == []  # not due a second early
            clock.wait_until(START + offset)
        [after] = deliver_due(store, 1, clock, sender)
        assert after.attempts == number + 1
    assert offset == timedelta(minutes=1 + 2 + 4 + 8)
    [row] = delivery_rows(store)
    assert (row.status, row.attempts, row.next_attempt_at, row.delivered_at) == ("failed", 5, None, None)
    tries = attempt_rows(store)
    assert [a.status_code for a in tries] == [500] * 5 and all(a.error == "ok" for a in tries)
    assert [a.attempted_at - START for a in tries] == [timedelta(minutes=m) for m in (0, 1, 3, 7, 15)]
    clock.wait_until(START + timedelta(days=2))
    assert deliver_due(store, 1, clock, sender) == [] and len(receiver.requests) == 5


def test_500_then_200_is_delivered_once_with_two_attempts(store: Store, receiver: Receiver, sender: HttpSender) -> None:
    receiver.answers = [500, 200]
    [evt] = _queue(store, add_hook(store, receiver.url))
    clock = VirtualClock(START)
    assert [after.status for after in deliver_due(store, 1, clock, sender)] == ["pending"]
    clock.wait_until(START + timedelta(seconds=60))
    assert [after.status for after in deliver_due(store, 1, clock, sender)] == ["delivered"]
    clock.wait_until(START + timedelta(days=1))
    assert deliver_due(store, 1, clock, sender) == []
    [row] = delivery_rows(store)
    assert (row.status, row.attempts, row.delivered_at) == ("delivered", 2, START + timedelta(seconds=60))
    assert [a.status_code for a in attempt_rows(store)] == [500, 200]
    assert len(receiver.requests) == 2 and all(evt.encode() in r.body for r in receiver.requests)


def test_a_connection_error_is_a_failed_attempt(store: Store, sender: HttpSender) -> None:
    _queue(store, add_hook(store, "http://127.0.0.1:9/nothing-listens-here"))
    [after] = deliver_due(store, 1, VirtualClock(START), sender)
    assert (after.status, after.attempts, after.next_attempt_at) == ("pending", 1, START + timedelta(seconds=60))
    [tried] = attempt_rows(store)
    assert tried.status_code is None and "Connect" in tried.error


def test_the_claim_of_a_worker_that_died_is_taken_back_when_its_lease_ends(
    store: Store, receiver: Receiver, sender: HttpSender
) -> None:
    _queue(store, add_hook(store, receiver.url))
    clock = VirtualClock(START)
    with store.tx() as tx:
        [lost] = claim(tx, 1, START, 10)  # worker 1 claims, then dies before sending
    clock.wait_until(START + LEASE - timedelta(seconds=1))
    assert deliver_due(store, 2, clock, sender) == []
    clock.wait_until(START + LEASE)
    assert [after.status for after in deliver_due(store, 2, clock, sender)] == ["delivered"]
    # Worker 1 comes back with an answer after all: its claim is gone, so the outcome stays worker 2's.
    done, after = attempt(lost, lambda url, body, headers: Response(500, "late"), clock)
    with store.tx() as tx:
        assert not record(tx, 1, lost, done, after)
    [row] = delivery_rows(store)
    assert (row.status, row.attempts) == ("delivered", 1) and len(receiver.requests) == 1


def test_a_receiver_that_never_answers_does_not_hold_the_engine_up(
    store: Store, campaign: CampaignFactory, receiver: Receiver
) -> None:
    receiver.hang = True
    add_hook(store, receiver.url)
    campaign_id, engine = campaign(contacts=30)
    # No timeout at all: were a send made from inside the engine's steps, the run below would never end.
    deliverer = Deliverer(store, 9, engine.clock, send=HttpSender(timeout=None), max_in_flight=2, poll_seconds=0.05)
    deliverer.start()
    try:
        receiver.wait_for(lambda r: r.open_requests == 2, "both senders held by the receiver")
        engine.run([campaign_id])
        with store.read() as tx:
            assert tx.campaign(campaign_id).status.value == "finished"
        # The whole campaign ran while both senders were held, and no third was started (bounded in flight).
        assert receiver.open_requests == 2 and len(receiver.requests) == 2 and deliverer.in_flight() == 2
        total = len(delivery_rows(store))
        assert total > 30
        receiver.release.set()
        receiver.wait_for(lambda r: len(r.requests) == total and r.open_requests == 0, "every delivery sent")
    finally:
        receiver.release.set()
        deliverer.stop()
    assert Counter(row.status for row in delivery_rows(store)) == {"delivered": total}


def test_a_worker_delivers_from_its_own_thread(store: Store, campaign: CampaignFactory, receiver: Receiver) -> None:
    add_hook(store, receiver.url, events=("campaign.status_changed",))
    campaign(contacts=3)  # pending → ready → active: two deliveries
    worker = Worker(store, clock=VirtualClock(START))
    worker.register()
    try:
        receiver.wait_for(lambda r: len(r.requests) == 2, "the worker's deliveries")
    finally:
        worker.close()
    assert [row.status for row in delivery_rows(store)] == ["delivered", "delivered"]


def test_two_delivery_loops_on_postgresql_never_send_one_delivery_twice(postgres_url: str, receiver: Receiver) -> None:
    store = Store.open(postgres_url)
    try:
        ids = _queue(store, add_hook(store, receiver.url), 150)
        clock = VirtualClock(START)
        loops = [Deliverer(store, n, clock, max_in_flight=4, poll_seconds=0.01) for n in (1, 2)]
        for loop in loops:
            loop.start()
        try:
            receiver.wait_for(lambda r: len(r.requests) >= len(ids), "every delivery sent")
        finally:
            for loop in loops:
                loop.stop()
        sent = Counter(evt for r in receiver.requests for evt in ids if evt.encode() in r.body)
        assert len(receiver.requests) == len(ids) and set(sent.values()) == {1}
        rows = delivery_rows(store)
        assert all(row.status == "delivered" and row.attempts == 1 for row in rows)
        assert len(attempt_rows(store)) == len(ids)
    finally:
        store.close()


CODES = st.sampled_from([200, 201, 204, 301, 400, 404, 429, 500, 503, None])


def test_the_delivery_state_machine_through_the_store(tmp_path: Path) -> None:
    """Any sequence of answers: delivered at the first 2xx (within five attempts), else failed after five; each
    attempt recorded, made exactly when the schedule says."""
    store = Store.open(f"sqlite:///{tmp_path / 'machine.db'}")
    endpoint = add_hook(store, "http://receiver.test/hook")

    @settings(max_examples=40)
    @given(st.lists(CODES, min_size=MAX_ATTEMPTS, max_size=MAX_ATTEMPTS))
    def check(codes: list[int | None]) -> None:
        answers = iter(codes)

        def send(url: str, body: bytes, headers: dict[str, str]) -> Response:
            code = next(answers)
            return Response(code, "" if code else "ConnectError: refused")

        with store.tx() as tx:
            tx.connection.execute(t.webhook_attempts.delete())
            tx.connection.execute(t.webhook_deliveries.delete())
        _queue(store, endpoint)
        clock = VirtualClock(START)
        while True:
            transitions = deliver_due(store, 1, clock, send)
            if not transitions:
                [row] = delivery_rows(store)
                if row.next_attempt_at is None:
                    break
                clock.wait_until(row.next_attempt_at)
        ok_at = next((i for i, code in enumerate(codes) if code is not None and 200 <= code < 300), None)
        made = MAX_ATTEMPTS if ok_at is None else ok_at + 1
        [row] = delivery_rows(store)
        assert row.status == ("failed" if ok_at is None else "delivered")
        assert row.attempts == made and row.next_attempt_at is None
        tries = attempt_rows(store)
        assert [a.status_code for a in tries] == codes[:made]
        expected = [START + sum(BACKOFF[:n], timedelta(0)) for n in range(made)]
        assert [a.attempted_at for a in tries] == expected
        assert row.delivered_at == (None if ok_at is None else expected[-1])

    try:
        check()
    finally:
        store.close()
