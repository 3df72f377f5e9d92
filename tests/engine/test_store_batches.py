"""Batched writes on the SQLite fast path: ids and "new or seen" answers match what row-by-row writes would give."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from herald.providers.base import ProviderEvent
from herald.store import schema as t
from herald.store.events import _RECORD_EVENTS, EVENT_KEYS
from herald.store.queries import Store

from ..conftest import START, CampaignFactory


def _event(external_id: str, kind: str = "ringing") -> ProviderEvent:
    return ProviderEvent("simulator", external_id, kind, START, data={"n": external_id})


def test_record_events_returns_only_new_ones_when_some_were_stored(store: Store) -> None:
    with store.tx() as tx:
        assert [e.external_id for e in tx.record_events([_event("a"), _event("c")], START)] == ["a", "c"]
    batch = [_event("a"), _event("b"), _event("c"), _event("d"), _event("b"), _event("a", "ended")]
    with store.tx() as tx:
        fresh = tx.record_events(batch, START + timedelta(seconds=1))
    assert [(e.external_id, e.kind) for e in fresh] == [("b", "ringing"), ("d", "ringing"), ("a", "ended")]
    with store.tx() as tx:
        stored = tx.connection.execute(select(t.events.c.external_id, t.events.c.kind).order_by(t.events.c.id)).all()
        assert [tuple(row) for row in stored] == [
            ("a", "ringing"),
            ("c", "ringing"),
            ("b", "ringing"),
            ("d", "ringing"),
            ("a", "ended"),
        ]
        assert tx.record_events(batch, START) == []


def test_insert_calls_returns_each_rows_id(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(contacts=3, retries=0)
    engine.run()
    with store.tx() as tx:
        contact_id = tx.connection.execute(select(t.contacts.c.id)).scalars().first()
        rows = [
            {
                "public_id": f"cll_test_{index}",
                "campaign_id": campaign_id,
                "contact_id": contact_id,
                "provider": "simulator",
                "provider_call_id": f"test-{index}",
                "status": "queued",
                "created_at": START,
            }
            for index in range(5)
        ]
        ids = tx.insert_calls(rows)
        found = dict(tx.connection.execute(select(t.calls.c.public_id, t.calls.c.id)).all())
    assert ids == [found[row["public_id"]] for row in rows]


def test_calls_by_provider_ids_sees_the_transactions_own_inserts_and_updates(
    store: Store, campaign: CampaignFactory
) -> None:
    campaign_id, engine = campaign(contacts=3, retries=0)
    engine.run()
    with store.tx() as tx:
        contact_id = tx.connection.execute(select(t.contacts.c.id)).scalars().first()
        earlier = tx.connection.execute(select(t.calls.c.provider_call_id)).scalars().first()
        rows = [
            {
                "public_id": f"cll_seen_{index}",
                "campaign_id": campaign_id,
                "contact_id": contact_id,
                "provider": "simulator",
                "provider_call_id": f"seen-{index}",
                "status": "queued",
                "created_at": START,
                "follow_up": index == 1,
            }
            for index in range(3)
        ]
        tx.insert_calls(rows)
        calls = tx.calls_by_provider_ids("simulator", ["seen-0", "seen-1", str(earlier)])
        calls["seen-0"].values.update({"status": "ringing"})
        calls["seen-1"].values.update({"status": "in-progress", "answered_by": "human", "started_at": START})
        tx.update_calls(list(calls.values()))
        inside = tx.calls_by_provider_ids("simulator", ["seen-2", "seen-1", "seen-0", str(earlier)])
    with store.tx() as tx:
        fresh = tx.calls_by_provider_ids("simulator", ["seen-2", "seen-1", "seen-0", str(earlier)])
    assert list(inside) == list(fresh)
    assert inside == fresh
    assert inside["seen-1"].status == "in-progress" and inside["seen-1"].follow_up is True


def test_event_inserts_stay_on_the_direct_path(store: Store) -> None:
    """Every events column is given by record_events, so SQLite takes the one-executemany path (a new column with a
    default once sent every event batch back through SQLAlchemy, a third of a simulated run's time)."""
    with store.tx() as tx:
        tx.record_events([_event("a")], START)
        direct = tx.direct()
        assert direct is not None
        plan = direct.plan(_RECORD_EVENTS["direct"], EVENT_KEYS)
        assert plan is not None and plan.names == EVENT_KEYS
        stored = tx.connection.execute(select(t.events.c.applied_at, t.events.c.tries, t.events.c.subject)).one()
    assert tuple(stored) == (START, 0, "call")


def test_in_flight_lookups_read_the_partial_index(store: Store) -> None:
    # Without statistics SQLite would as soon take ix_contacts_campaign_order, which reads every contact of the
    # campaign each step (16x slower at 20,000 contacts).
    from herald.store.contacts import _EXPIRED_CALLS, _EXPIRED_MESSAGES, _INFLIGHT_COUNT, _NEXT_LEASE_EXPIRY
    from herald.store.direct import compiled_plan

    with store.tx() as tx:
        for statement in (_INFLIGHT_COUNT, _NEXT_LEASE_EXPIRY, _EXPIRED_CALLS, _EXPIRED_MESSAGES):
            plan = compiled_plan(statement, tx.connection.dialect)
            assert plan is not None
            params = [None] * plan.sql.count("?")
            steps = [row[-1] for row in tx.connection.exec_driver_sql("EXPLAIN QUERY PLAN " + plan.sql, tuple(params))]
            contacts = [step for step in steps if "contacts" in step]
            assert contacts and all("ix_contacts_campaign_inflight" in step for step in contacts), steps
