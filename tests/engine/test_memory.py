"""The simulated run's in-memory view (herald.store.memory): the same results as the database path, the view equal to
the tables after each commit, and commits of other connections between batches seen."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CampaignStatus
from herald.engine import runner
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store import memory as memory_module
from herald.store import schema as t
from herald.store.memory import Memory
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, CampaignFactory, migrated_sqlite, phone_numbers
from .test_engine_properties import settings_strategy

Hook = Callable[[Engine, Store, int], None]


def _simulate(
    folder: Path, config: dict[str, Any], contacts: int, seed: int, *, view: bool, on_step: Hook | None = None
) -> dict[str, Any]:
    """Run a campaign to its end (with or without the view) and return everything an export or report reads."""
    store = Store.open(migrated_sqlite(folder / ("view.db" if view else "table.db")))
    try:
        clock = VirtualClock(START)
        ids = IdFactory(seed)
        parsed = parse_campaign({"name": "P", "channel": "phone_call", "agent": AGENT, **config})
        campaign_id = create_campaign(store, parsed, clock.now(), ids)
        add_contacts(store, campaign_id, [NewContact(n, f"P{n}", "") for n in phone_numbers(contacts)], clock.now())
        act(store, campaign_id, "activate", clock.now())
        engine = Engine(store, Simulator(seed), clock, ids)
        with pytest.MonkeyPatch.context() as patch:
            if not view:
                patch.setattr(memory_module, "usable", lambda _store: False)
            stats = engine.run(on_step=(lambda e: on_step(e, store, campaign_id)) if on_step else None)
        with store.read() as tx:
            return {
                "stats": (stats.steps, stats.attempts, stats.events, stats.duplicate_events, stats.ended_at),
                "contacts": [tuple(row) for row in tx.stream_contacts(campaign_id)],
                "calls": [tuple(row) for row in tx.stream_calls(campaign_id)],
                "events": [
                    tuple(row)
                    for row in tx.connection.execute(
                        select(
                            t.events.c.provider,
                            t.events.c.external_id,
                            t.events.c.kind,
                            t.events.c.occurred_at,
                            t.events.c.received_at,
                            t.events.c.payload,
                        ).order_by(t.events.c.id)
                    )
                ],
                "log": tx.campaign_log(campaign_id),
                "campaign": tx.campaign(campaign_id),
            }
    finally:
        store.close()


def _foreign_write(_engine: Engine, store: Store, _campaign_id: int) -> None:
    # A commit by another connection that changes nothing the engine reads: the view is dropped and read again.
    with store.tx() as tx:
        tx.connection.exec_driver_sql("UPDATE businesses SET name = name")


@settings(max_examples=20, deadline=None)
@given(
    config=settings_strategy,
    contacts=st.integers(1, 15),
    seed=st.integers(0, 1000),
    foreign=st.sampled_from(["none", "every step", "every 7th step"]),
)
def test_the_view_gives_what_the_tables_give(config: dict[str, Any], contacts: int, seed: int, foreign: str) -> None:
    hook: Hook | None = None
    if foreign == "every step":
        hook = _foreign_write
    elif foreign == "every 7th step":

        def hook(engine: Engine, store: Store, campaign_id: int) -> None:
            if engine.stats.steps % 7 == 0:
                _foreign_write(engine, store, campaign_id)

    with tempfile.TemporaryDirectory() as folder:
        with_view = _simulate(Path(folder), config, contacts, seed, view=True, on_step=hook)
        without = _simulate(Path(folder), config, contacts, seed, view=False, on_step=hook)
    assert with_view == without


class _Watched(Memory):
    """Memory that remembers itself, so a test can look at it between batches."""

    last: _Watched | None = None

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        _Watched.last = self


def _assert_view_is_the_tables(store: Store, memory: Memory) -> None:
    assert not memory.pending
    with store.read() as tx:
        stored = tx.contacts_by_id(memory.contacts)
        leases = dict(
            tx.connection.execute(
                select(t.contacts.c.id, t.contacts.c.lease_expires_at).where(t.contacts.c.id.in_(list(memory.contacts)))
            ).all()
        )
        assert stored == memory.contacts
        assert {i: lease for i, lease in leases.items() if lease is not None} == {
            i: lease for i, lease in memory.leases.items() if lease is not None
        }
        for campaign_id, view in memory.views.items():
            assert view.ids == sorted(i for i, r in stored.items() if r.campaign_id == campaign_id)
            assert len(view.inflight) == tx.inflight_count(campaign_id)
            assert (view.open > 0) == tx.cycle_open(campaign_id)
        for call_id, values in memory.calls.items():
            row = tx.connection.execute(
                select(
                    t.calls.c.id,
                    t.calls.c.public_id,
                    t.calls.c.campaign_id,
                    t.calls.c.contact_id,
                    t.calls.c.status,
                    t.calls.c.answered_by,
                    t.calls.c.started_at,
                    t.calls.c.ended_at,
                    t.calls.c.follow_up,
                ).where(t.calls.c.id == call_id)
            ).one()
            assert list(row) == values
            kinds = tx.connection.execute(
                select(t.events.c.kind)
                .join(t.calls, (t.calls.c.provider == t.events.c.provider))
                .where(t.calls.c.id == call_id, t.events.c.external_id == t.calls.c.provider_call_id)
            ).scalars()
            assert set(kinds) == memory.kinds[call_id]


@settings(max_examples=10, deadline=None)
@given(config=settings_strategy, contacts=st.integers(1, 12), seed=st.integers(0, 1000))
def test_after_each_commit_the_view_equals_the_tables(config: dict[str, Any], contacts: int, seed: int) -> None:
    def check(engine: Engine, store: Store, campaign_id: int) -> None:
        assert _Watched.last is not None
        _assert_view_is_the_tables(store, _Watched.last)
        if engine.stats.steps % 5 == 0:
            _foreign_write(engine, store, campaign_id)  # the next batch reads the view anew

    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "Memory", _Watched)
        _simulate(Path(folder), config, contacts, seed, view=True, on_step=check)


def test_a_pause_committed_by_another_connection_stops_new_attempts(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(contacts=40, concurrency_limit=3, retries=1)
    paused_at: list[Any] = []

    def pause(current: Engine) -> None:
        if current.stats.steps == 5:
            act(store, campaign_id, "pause", current.clock.now())
            paused_at.append(current.clock.now())

    engine.run(on_step=pause)
    with store.read() as tx:
        created = tx.connection.execute(select(t.calls.c.created_at)).scalars().all()
        status = tx.campaign(campaign_id).status
        inflight = tx.inflight_count(campaign_id)
    assert status is CampaignStatus.INACTIVE  # never overwritten by the run
    assert created and all(at <= paused_at[0] for at in created)
    assert inflight == 0  # the calls in flight at the pause still ended


def test_contacts_imported_by_another_connection_between_batches_are_called(
    store: Store, campaign: CampaignFactory
) -> None:
    campaign_id, engine = campaign(contacts=5, concurrency_limit=2, retries=0)
    late = phone_numbers(4, start=100)

    def import_more(current: Engine) -> None:
        if current.stats.steps == 3:
            add_contacts(store, campaign_id, [NewContact(n, "Late", "") for n in late], current.clock.now())

    engine.run(on_step=import_more)
    with store.read() as tx:
        called = set(
            tx.connection.execute(
                select(t.contacts.c.contact).join(t.calls, t.calls.c.contact_id == t.contacts.c.id)
            ).scalars()
        )
        status = tx.campaign(campaign_id).status
    assert set(late) <= called
    assert status is CampaignStatus.FINISHED


def test_a_suppression_committed_by_another_connection_closes_the_contact(
    store: Store, campaign: CampaignFactory
) -> None:
    numbers = phone_numbers(6)
    campaign_id, engine = campaign(numbers=numbers, concurrency_limit=1, retries=0)

    def suppress(current: Engine) -> None:
        if current.stats.steps == 2:
            with store.tx() as tx:
                business_id = tx.campaign(campaign_id).business_id
                tx.suppress(business_id, numbers[-1], current.clock.now(), "test")

    engine.run(on_step=suppress)
    with store.read() as tx:
        called = set(
            tx.connection.execute(
                select(t.contacts.c.contact).join(t.calls, t.calls.c.contact_id == t.contacts.c.id)
            ).scalars()
        )
        closed = tx.connection.execute(
            select(t.contacts.c.opted_out).where(t.contacts.c.contact == numbers[-1])
        ).scalar_one()
    assert numbers[-1] not in called and closed


def test_a_heartbeat_in_the_runs_own_transactions_keeps_the_view(
    store: Store, campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herald.engine.worker import Membership

    loads: list[int] = []
    load = memory_module.MemoryTx._load

    def counted(self: memory_module.MemoryTx, campaign: Any) -> None:
        loads.append(campaign.id)
        load(self, campaign)

    monkeypatch.setattr(memory_module.MemoryTx, "_load", counted)
    campaign_id, engine = campaign(contacts=10, concurrency_limit=2)
    membership = Membership(store, "simulate", on_lost=lambda: None)
    beats: list[int] = []

    def beat(tx: Any) -> None:
        membership._last_beat = 0.0  # due at every batch here, whatever the wall clock says
        membership.beat(tx)
        beats.append(1)

    try:
        with store.read() as tx:
            registered = tx.connection.execute(select(t.workers.c.heartbeat_at)).scalar_one()
        engine.run(on_step=lambda _engine: None, on_batch=beat)
        with store.read() as tx:
            last = tx.connection.execute(select(t.workers.c.heartbeat_at)).scalar_one()
    finally:
        membership.close()
    assert len(beats) == engine.stats.steps > 1
    assert last >= registered
    assert loads == [campaign_id]  # read once: the heartbeats were the run's own commits
