"""Live workers in one process, rounds interleaved by hand on a virtual clock, on SQLite and on PostgreSQL.

Several `Worker`s share one database exactly as separate processes would (each has its own worker row, its own
claims); interleaving their rounds by hand makes the races repeatable. What must hold is checked after every round.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.worker import STALE_AFTER, Worker, _Waker
from herald.ids import IdFactory
from herald.providers.base import CallRequest, MessageRequest, ProviderEvent, StartResult
from herald.providers.simulator import LiveSimulator, SimulatorOptions
from herald.store import claims, inbox
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, phone_numbers
from .processes import wait_for

LIVE_OPTIONS = {"time_scale": 0.05, "conversation": {"follow_up_rate": 0}}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def make_campaign(store: Store, contacts: int, **config: Any) -> int:
    data: dict[str, Any] = {
        "name": "Live",
        "channel": "phone_call",
        "agent": AGENT,
        "provider_options": LIVE_OPTIONS,
        "retry_delay_minutes": 1,
        **config,
    }
    campaign_id = create_campaign(store, parse_campaign(data), START, IdFactory(1))
    rows = [NewContact(contact=n, name=f"Person {i}", context="ctx") for i, n in enumerate(phone_numbers(contacts))]
    add_contacts(store, campaign_id, rows, START)
    act(store, campaign_id, "activate", START)
    return campaign_id


def inflight(store: Store, campaign_id: int) -> int:
    with store.read() as tx:
        return tx.inflight_count(campaign_id)


def status(store: Store, campaign_id: int) -> CampaignStatus:
    with store.read() as tx:
        return tx.campaign(campaign_id).status


def call_rows(store: Store) -> list[Any]:
    with store.read() as tx:
        return list(tx.connection.execute(select(t.calls).order_by(t.calls.c.id)))


def assert_no_contact_in_two_calls(store: Store) -> None:
    """Per contact, each call ends before the next is created."""
    by_contact: dict[int, list[Any]] = {}
    for row in call_rows(store):
        by_contact.setdefault(row.contact_id, []).append(row)
    for rows in by_contact.values():
        for earlier, later in itertools.pairwise(rows):
            assert earlier.ended_at is not None and earlier.ended_at <= later.created_at, (earlier, later)


def run_workers(
    workers: Sequence[Worker], clock: VirtualClock, store: Store, campaign_id: int, limit: int, rounds: int = 3000
) -> None:
    """Interleave the workers' rounds, one virtual second apart, until the campaign is finished."""
    for _ in range(rounds):
        for worker in workers:
            worker.round()
            assert inflight(store, campaign_id) <= limit
        if status(store, campaign_id) is CampaignStatus.FINISHED:
            return
        clock.wait_until(clock.now() + timedelta(seconds=1))
    raise AssertionError(f"campaign not finished after {rounds} rounds: {status(store, campaign_id)}")


def workers_on(store: Store, clock: VirtualClock, count: int, **kwargs: Any) -> list[Worker]:
    made = [Worker(store, clock=clock, ids=IdFactory(), **kwargs) for _ in range(count)]
    for worker in made:
        worker.register()
    return made


def close(workers: Sequence[Worker]) -> None:
    for worker in workers:
        worker.close()


def test_three_workers_finish_a_campaign_within_the_limit(store: Store) -> None:
    campaign_id = make_campaign(store, 60, concurrency_limit=7, retries=1, failed_retry_limit=1)
    clock = VirtualClock(START)
    workers = workers_on(store, clock, 3)
    try:
        run_workers(workers, clock, store, campaign_id, limit=7)
    finally:
        close(workers)
    assert_no_contact_in_two_calls(store)
    rows = call_rows(store)
    assert len({row.public_id for row in rows}) == len(rows) >= 60
    assert all(row.start_after is None and row.provider_call_id for row in rows)
    with store.read() as tx:
        assert tx.status_counts(campaign_id) and not tx.cycle_open(campaign_id)
        pending, _ = inbox.pending(tx)
    assert pending == 0
    assert sum(worker.stats.claimed for worker in workers) == len(rows)


def test_a_pause_from_elsewhere_stops_new_claims_and_is_never_overwritten(store: Store) -> None:
    campaign_id = make_campaign(store, 40, concurrency_limit=5)
    clock = VirtualClock(START)
    workers = workers_on(store, clock, 2)
    try:
        for worker in workers:
            worker.round()
        before = len(call_rows(store))
        assert before == 5
        act(store, campaign_id, "pause", clock.now())
        for _ in range(200):
            clock.wait_until(clock.now() + timedelta(seconds=1))
            for worker in workers:
                worker.round()
        assert len(call_rows(store)) == before  # the calls in flight end; no new one starts
        assert status(store, campaign_id) is CampaignStatus.INACTIVE
        assert inflight(store, campaign_id) == 0
        act(store, campaign_id, "resume", clock.now())
        run_workers(workers, clock, store, campaign_id, limit=5)
    finally:
        close(workers)
    assert_no_contact_in_two_calls(store)


class ScriptedProvider:
    """An outbound provider whose answers a test decides: a list of results, used in order, then accept."""

    name = "simulator"
    idempotent = True

    def __init__(self, script: list[StartResult]) -> None:
        self.script = script
        self.placed: list[str] = []
        self.simulator = LiveSimulator(SimulatorOptions.model_validate(LIVE_OPTIONS))

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        results = []
        for request in requests:
            if self.script:
                results.append(self.script.pop(0))
            else:
                self.placed.append(request.public_id)
                results.extend(self.simulator.start_calls([request], now))
        return results

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        raise AssertionError("no messages in these tests")

    def scheduled(self, now: datetime) -> list[ProviderEvent]:
        return self.simulator.scheduled(now)


def test_retryable_errors_back_off_without_using_the_failed_retry_limit(store: Store) -> None:
    campaign_id = make_campaign(store, 1, failed_retry_limit=0)
    provider = ScriptedProvider([StartResult.retryable("http_503", "busy"), StartResult.retryable("http_429", "slow")])
    clock = VirtualClock(START)
    (worker,) = workers_on(store, clock, 1, outbound_factory=lambda _name, _options: provider)  # type: ignore[arg-type, return-value]
    try:
        worker.round()
        (row,) = call_rows(store)
        assert (row.start_tries, row.error_code, row.start_after) == (1, "http_503", START + timedelta(seconds=5))
        worker.round()  # not due yet: nothing placed
        assert provider.placed == [] and len(provider.script) == 1
        clock.wait_until(START + timedelta(seconds=5))
        worker.round()
        (row,) = call_rows(store)
        assert (row.start_tries, row.error_code) == (2, "http_429")
        assert row.start_after == START + timedelta(seconds=15)  # doubled
        clock.wait_until(START + timedelta(seconds=15))
        worker.round()
        (row,) = call_rows(store)
        assert provider.placed == [row.public_id] and row.start_after is None
        run_workers([worker], clock, store, campaign_id, limit=10)
    finally:
        close([worker])
    with store.read() as tx:
        (contact,) = tx.contacts_by_id([1]).values()
    assert contact.state.failed_retries == 0
    assert len(call_rows(store)) >= 1


def test_a_refused_start_fails_the_attempt_with_the_providers_words(store: Store) -> None:
    campaign_id = make_campaign(store, 1, failed_retry_limit=1)
    provider = ScriptedProvider([StartResult.rejected("21211", "Invalid 'To' phone number")])
    clock = VirtualClock(START)
    (worker,) = workers_on(store, clock, 1, outbound_factory=lambda _name, _options: provider)  # type: ignore[arg-type, return-value]
    try:
        worker.round()
        first = call_rows(store)[0]
        assert (first.status, first.error_code, first.error_msg) == ("failed", "21211", "Invalid 'To' phone number")
        assert first.start_after is None
        run_workers([worker], clock, store, campaign_id, limit=10)
    finally:
        close([worker])
    rows = call_rows(store)
    assert len(rows) >= 2 and rows[1].error_code == ""  # the failed-retry rule gave it one more try
    with store.read() as tx:
        (contact,) = tx.contacts_by_id([rows[0].contact_id]).values()
    assert contact.state.failed_retries == 1


@pytest.mark.parametrize("idempotent", [True, False])
def test_the_claims_of_a_dead_worker_are_taken_back(store: Store, idempotent: bool) -> None:
    campaign_id = make_campaign(store, 3, failed_retry_limit=1)
    provider = ScriptedProvider([])
    provider.idempotent = idempotent
    clock = VirtualClock(START)
    factory = lambda _name, _options: provider  # noqa: E731
    dead, survivor = workers_on(store, clock, 2, outbound_factory=factory)  # type: ignore[arg-type]
    try:
        # The first worker claims (the rows commit) and dies before it calls the provider.
        dead._campaigns()
        dead._membership._done.set()  # type: ignore[union-attr]  # its heartbeat stops, as if SIGKILLed
        claimed = call_rows(store)
        assert len(claimed) == 3 and all(row.worker_id == dead.worker_id and row.start_after for row in claimed)
        survivor.round()
        assert provider.placed == []  # nothing is taken from a worker that may still be alive
        with store.tx() as tx:  # its heartbeat is now older than the limit
            tx.connection.execute(
                update(t.workers)
                .where(t.workers.c.id == dead.worker_id)
                .values(heartbeat_at=datetime.now(UTC) - STALE_AFTER - timedelta(seconds=1))
            )
        survivor._next_recover = None
        survivor.round()
        rows = call_rows(store)
        if idempotent:
            # Re-sent under the same ids (the provider's idempotency key): still one call per attempt.
            assert sorted(provider.placed) == sorted(row.public_id for row in claimed)
            assert len(rows) == 3
        else:
            assert provider.placed == [row.public_id for row in rows[3:]]
            assert [row.ended_reason for row in rows[:3]] == ["worker_lost"] * 3
        run_workers([survivor], clock, store, campaign_id, limit=10)
    finally:
        # The "dead" one's threads (webhook deliveries) would otherwise outlive the test and its database.
        close([survivor, dead])
    assert_no_contact_in_two_calls(store)


def test_an_event_for_an_unknown_call_waits_in_the_inbox_and_is_applied_later(store: Store) -> None:
    make_campaign(store, 1)
    clock = VirtualClock(START)
    (worker,) = workers_on(store, clock, 1)
    early = ProviderEvent("simulator", "sim-early", "ringing", START)
    with store.tx() as tx:
        assert inbox.add(tx, [early, early], START) == inbox.InboxResult(1, 1)
    try:
        worker._drain()
        with store.read() as tx:
            count, (waiting,) = inbox.pending(tx)
        assert count == 1 and waiting.tries == 1 and "no call" in waiting.reason
        worker._drain()  # not due again yet: left alone
        with store.read() as tx:
            assert inbox.pending(tx)[1][0].tries == 1
        # The call it belongs to appears (its start's answer is recorded late): the event then applies.
        worker._campaigns()
        with store.tx() as tx:
            tx.connection.execute(update(t.calls).values(provider_call_id="sim-early", start_after=None))
        clock.wait_until(clock.now() + timedelta(seconds=5))
        worker._drain()
        with store.read() as tx:
            assert inbox.pending(tx)[0] == 0
        assert [row.status for row in call_rows(store)] == ["ringing"]
    finally:
        close([worker])


def test_a_webhook_that_echoes_heralds_id_finds_a_call_whose_start_was_never_recorded(store: Store) -> None:
    make_campaign(store, 1)
    clock = VirtualClock(START)
    (worker,) = workers_on(store, clock, 1)
    try:
        worker._campaigns()  # claimed, never started: no provider id
        (row,) = call_rows(store)
        assert row.provider_call_id is None
        events = [
            ProviderEvent("simulator", "ext-1", "in-progress", START, data={"answered_by": "human"}, attempt_id=row.public_id),
            ProviderEvent("simulator", "ext-1", "ended", START + timedelta(seconds=30), data={"answered_by": "human"}, attempt_id=row.public_id),
        ]  # fmt: skip
        with store.tx() as tx:
            inbox.add(tx, events, START)
        worker._drain()
        (row,) = call_rows(store)
        assert (row.provider_call_id, row.status, row.start_after, row.duration) == ("ext-1", "ended", None, 30)
    finally:
        close([worker])


def test_a_campaign_whose_provider_cannot_start_is_paused_with_the_reason(store: Store) -> None:
    good = make_campaign(store, 2)
    bad = make_campaign(store, 2, provider="simulator", provider_options={"time_scale": 5})
    clock = VirtualClock(START)
    (worker,) = workers_on(store, clock, 1)
    try:
        worker.round()
    finally:
        close([worker])
    assert status(store, bad) is CampaignStatus.INACTIVE
    with store.read() as tx:
        log = tx.campaign_log(bad)
    assert any(kind == "campaign.provider_error" and "time_scale" in data["error"] for kind, _, data in log)
    assert status(store, good) is CampaignStatus.ACTIVE and inflight(store, good) == 2


def test_a_stopped_worker_gives_back_its_pending_starts(store: Store) -> None:
    make_campaign(store, 2)
    clock = VirtualClock(START)
    (worker,) = workers_on(store, clock, 1)
    worker._campaigns()
    worker.close()
    rows = call_rows(store)
    assert len(rows) == 2 and all(row.worker_id is None and row.start_after is not None for row in rows)
    with store.read() as tx:
        assert claims.alive(tx, START - timedelta(days=1)) == []


def test_a_waiting_worker_on_postgresql_wakes_when_work_is_announced(database_url: str, store: Store) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")
    campaign_id = make_campaign(store, 3)
    act(store, campaign_id, "pause", START)
    worker = Worker(store, poll_seconds=600)  # only a notification can wake it within the test
    worker.register()
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: worker.stats.rounds >= 1, "the first round")
        act(store, campaign_id, "resume", datetime.now(UTC))  # commits a NOTIFY
        wait_for(lambda: len(call_rows(store)) == 3, "the woken worker to claim")
    finally:
        worker.stop()
        thread.join()


def test_two_workers_keep_the_daily_message_limit_between_them(store: Store) -> None:
    campaign_id = make_campaign(
        store,
        25,
        channel="whatsapp",
        template="promo",
        message_limit=10,
        retries=0,
        concurrency_limit=50,
        provider_options={**LIVE_OPTIONS, "whatsapp": {"send_error_rate": 0, "failure_rate": 0, "read_rate": 0}},
    )
    clock = VirtualClock(START)
    workers = workers_on(store, clock, 2)
    try:
        for _ in range(2000):
            for worker in workers:
                worker.round()
            if status(store, campaign_id) is CampaignStatus.FINISHED:
                break
            clock.wait_until(clock.now() + timedelta(minutes=10))
    finally:
        close(workers)
    assert status(store, campaign_id) is CampaignStatus.FINISHED
    zone = ZoneInfo("America/Mexico_City")
    with store.read() as tx:
        created = [row[0] for row in tx.connection.execute(select(t.messages.c.created_at))]
    per_day = Counter(instant.astimezone(zone).date() for instant in created)
    assert sorted(per_day.values()) == [5, 10, 10]
    assert sum(worker.stats.started for worker in workers) == 25


def test_a_burst_of_notifications_wakes_a_worker_once_and_a_later_one_again(database_url: str, store: Store) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")
    waker = _Waker(store, threading.Event())

    def woken() -> bool:
        # In a thread, so that a waker that hangs fails the test instead of hanging it.
        thread = threading.Thread(target=waker.wait, args=(600,), daemon=True)
        thread.start()
        thread.join(60)
        return not thread.is_alive()

    try:
        for _ in range(3):
            with store.tx() as tx:
                tx.notify_workers()
        assert woken()
        with store.tx() as tx:
            tx.notify_workers()
        assert woken()
    finally:
        waker.close()


def test_a_waker_tells_stored_webhook_events_from_other_work(database_url: str, store: Store) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")
    waker = _Waker(store, threading.Event())

    def announced() -> bool:
        # In a thread, so that a waker that hangs fails the test instead of hanging it.
        said: list[bool] = []
        thread = threading.Thread(target=lambda: said.append(waker.wait(600)), daemon=True)
        thread.start()
        thread.join(60)
        assert said, "the waker did not wake"
        return said[0]

    try:
        with store.autocommit() as tx:
            inbox.add(tx, [ProviderEvent("http", "w1", "ringing", START)], START)
        assert not announced()  # only the inbox has news: a worker need not look for claims because of it
        with store.tx() as tx:
            tx.notify_workers()  # an activation, an import
        assert announced()
    finally:
        waker.close()
