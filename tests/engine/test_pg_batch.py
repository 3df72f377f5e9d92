"""PostgreSQL's one-statement batch writes, and the row locks workers skip instead of waiting for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import add_contacts, create_campaign
from herald.ids import IdFactory
from herald.store import claims
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, phone_numbers


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Store]:
    opened = Store.open(postgres_url)
    yield opened
    opened.close()


def _calls(store: Store, count: int) -> list[int]:
    """`count` queued calls, each claimed (pending start), of one campaign; their ids."""
    config = parse_campaign({"name": "Batches", "channel": "phone_call", "agent": AGENT})
    campaign_id = create_campaign(store, config, START, IdFactory(1))
    add_contacts(store, campaign_id, [NewContact(n, "Name", "ctx") for n in phone_numbers(count)], START)
    with store.tx() as tx:
        contacts = tx.connection.execute(select(t.contacts.c.id).order_by(t.contacts.c.id)).scalars().all()
        rows = [
            {
                "public_id": f"cll_batch_{index}",
                "campaign_id": campaign_id,
                "contact_id": contact_id,
                "provider": "http",
                "provider_call_id": None,
                "status": "queued",
                "created_at": START,
                "start_after": START,
            }
            for index, contact_id in enumerate(contacts)
        ]
        return tx.insert_calls(rows)


def _read(store: Store, *columns: str) -> dict[int, tuple[object, ...]]:
    with store.read() as tx:
        query = select(t.calls.c.id, *(t.calls.c[name] for name in columns))
        return {row[0]: tuple(row[1:]) for row in tx.connection.execute(query)}


def test_call_changes_setting_different_columns_go_in_one_write_as_one_by_one(pg: Store) -> None:
    first, second, third = _calls(pg, 3)
    with pg.tx() as tx:
        tx.write_call_values(
            [
                (first, {"status": "ringing"}),
                (second, {"status": "ended", "answered_by": "human", "duration": 7}),
                (first, {"answered_by": "machine"}),  # a later change of the same call: applied after the first
            ]
        )
    found = _read(pg, "status", "answered_by", "duration", "public_id")
    assert found[first] == ("ringing", "machine", 0, "cll_batch_0")
    assert found[second] == ("ended", "human", 7, "cll_batch_1")
    assert found[third] == ("queued", None, 0, "cll_batch_2")  # untouched


def test_a_start_recorded_without_waiting_leaves_held_calls_for_later(pg: Store) -> None:
    ids = _calls(pg, 3)
    held = ids[1]
    with pg.tx() as holder:  # a worker applying the held call's first events
        holder.connection.execute(select(t.calls.c.id).where(t.calls.c.id == held).with_for_update())
        with pg.tx() as tx:
            left = claims.started(tx, "call", [(call_id, f"ext-{call_id}") for call_id in ids], wait=False)
        assert left == [(held, f"ext-{held}")]
        with pg.tx() as tx:
            assert claims.lock_calls(tx, ["cll_batch_0", "cll_batch_1", "cll_unknown"]) == {"cll_batch_1"}
    found = _read(pg, "provider_call_id", "start_after")
    assert found[ids[0]] == (f"ext-{ids[0]}", None)
    assert found[held] == (None, START)
    with pg.tx() as tx:
        assert claims.started(tx, "call", left) == []
    assert _read(pg, "provider_call_id")[held] == (f"ext-{held}",)


def test_an_adopted_id_is_the_first_one_learnt_and_never_replaces_a_recorded_one(pg: Store) -> None:
    ids = _calls(pg, 2)
    with pg.tx() as tx:
        claims.started(tx, "call", [(ids[1], "ext-recorded")])
        claims.adopt(tx, "http", "call", [("cll_batch_0", "ext-a"), ("cll_batch_0", "ext-b"), ("cll_batch_1", "x")])
    found = _read(pg, "provider_call_id", "start_after")
    assert found[ids[0]] == ("ext-a", None)
    assert found[ids[1]] == ("ext-recorded", None)
