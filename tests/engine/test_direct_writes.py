"""The SQLite fast path's batched writes (`_Direct.many_rows`, which converts whole columns itself) store exactly the
bytes SQLAlchemy's own statement execution stores for the same values: text, integers and NULLs alike."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from herald.domain.rules import ContactState
from herald.domain.statuses import ContactStatus
from herald.store import schema as t
from herald.store.events import EVENT_KEYS
from herald.store.queries import NewContact, Store, Tx, state_values

from ..conftest import migrated_sqlite

ZONES = [UTC, ZoneInfo("America/Mexico_City"), ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-3, minutes=-30))]

instants = st.builds(
    lambda at, zone: at.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
    st.sampled_from(ZONES),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _assert_written_alike(table: str, write: Callable[[Tx, bool], None]) -> None:
    """Run `write` in a transaction on two fresh databases, once through SQLAlchemy (`direct` False) and once through
    the direct path (True); `table` must hold the same rows, value for value and storage type for storage type."""
    with tempfile.TemporaryDirectory() as folder:
        stored = {}
        for direct in (False, True):
            path = Path(folder) / f"{'direct' if direct else 'sqlalchemy'}.db"
            store = Store.open(migrated_sqlite(path))
            try:
                with store.tx() as tx:
                    write(tx, direct)
            finally:
                store.close()
            stored[direct] = _stored(path, table)
    assert stored[True] == stored[False]


def _stored(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row of `table` as (storage class, value) pairs, as SQLite holds them."""
    connection = sqlite3.connect(path)
    try:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        selected = ", ".join(f"typeof({name}), {name}" for name in columns)
        return [tuple(row) for row in connection.execute(f"SELECT {selected} FROM {table} ORDER BY id")]
    finally:
        connection.close()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            instants,
            instants,
            st.dictionaries(st.text(max_size=8), documents, max_size=5),
            st.one_of(st.none(), instants),
            st.integers(0, 5),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_event_rows_store_what_sqlalchemy_stores(rows: list[tuple[Any, ...]]) -> None:
    values = [
        {
            "provider": "simulator",
            "external_id": f"sim-{index}",
            "kind": "ended",
            "occurred_at": occurred_at,
            "received_at": received_at,
            "payload": payload,
            "subject": "call",
            "attempt_id": "",
            "applied_at": applied_at,
            "tries": tries,
            "pending_reason": "",
        }
        for index, (occurred_at, received_at, payload, applied_at, tries) in enumerate(rows)
    ]

    def write(tx: Tx, direct: bool) -> None:
        if direct:
            tx.insert_event_rows([[item[key] for key in EVENT_KEYS] for item in values])
        else:
            tx.connection.execute(insert(t.events), [dict(item) for item in values])

    _assert_written_alike("events", write)


states = st.builds(
    ContactState,
    status=st.sampled_from(list(ContactStatus)),
    retries=st.integers(0, 5),
    failed_retries=st.integers(0, 5),
    final=st.booleans(),
    due_at=st.one_of(st.none(), instants),
    respond_by=st.one_of(st.none(), instants),
    follow_up=st.booleans(),
    follow_up_attempts=st.integers(0, 3),
    calls=st.integers(0, 20),
    billed_seconds=st.integers(0, 10_000),
    tags=st.frozensets(st.text(max_size=8), max_size=4),
    extracted=st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4),
    opted_out=st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(
    changes=st.lists(
        st.tuples(states, st.one_of(st.none(), instants), st.one_of(st.none(), st.integers(1, 99)), instants),
        min_size=1,
        max_size=6,
    ),
    # The extra columns set, the same for every change: none, one, or several (the in-memory view sets all four).
    keys=st.sets(st.sampled_from(("attempts_in_cycle", "current_message_id", "inflight_id", "lease_expires_at"))),
)
def test_contact_updates_store_what_sqlalchemy_stores(
    changes: list[tuple[ContactState, datetime | None, int | None, datetime]], keys: set[str]
) -> None:
    start = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)

    def extra(state: ContactState, lease: datetime | None, inflight: int | None) -> dict[str, Any]:
        values = {
            "attempts_in_cycle": len(state.tags),
            "current_message_id": inflight,
            "inflight_id": inflight,
            "lease_expires_at": lease,
        }
        return {key: value for key, value in values.items() if key in keys}

    def write(tx: Tx, direct: bool) -> None:
        business = tx.ensure_business("B", "b", start)
        campaign = tx.connection.execute(
            insert(t.campaigns)
            .values(business_id=business, name="C", channel="phone_call", status="ready", config={})
            .values(created_at=start)
            .returning(t.campaigns.c.id)
        ).scalar_one()
        numbers = [f"+5255{index:08d}" for index in range(len(changes))]
        tx.add_contacts(campaign, [NewContact(number, "N", "") for number in numbers], start)
        ids = [row[0] for row in tx.connection.exec_driver_sql("SELECT id FROM contacts ORDER BY id")]
        if not direct:
            for contact_id, (state, lease, inflight, at) in zip(ids, changes, strict=True):
                tx.connection.execute(
                    t.contacts.update()
                    .where(t.contacts.c.id == contact_id)
                    .values(**state_values(state), **extra(state, lease, inflight), last_update=at)
                )
        else:
            # The extra columns given in another order than the table's (the view's own order, for all four).
            tx.save_contacts_at(
                [
                    (contact_id, state, extra(state, lease, inflight), at)
                    for contact_id, (state, lease, inflight, at) in zip(ids, changes, strict=True)
                ]
            )

    _assert_written_alike("contacts", write)
