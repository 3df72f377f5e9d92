"""Batched writes on the SQLite fast path: ids and "new or seen" answers match what row-by-row writes would give."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from herald.providers.base import ProviderEvent
from herald.store import schema as t
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
