"""The inbox's store: every event a webhook carries is stored once, as given, on SQLite and on PostgreSQL.

PostgreSQL inserts a body's events with one array statement outside any transaction (`Store.autocommit`), with the
workers' NOTIFY in the same statement; SQLite in one write transaction. Both must store the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlalchemy import select as sql_select

from herald.providers.base import ProviderEvent
from herald.store import inbox
from herald.store import schema as t
from herald.store.queries import NOTIFY_CHANNEL, Store

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    try:
        yield opened
    finally:
        opened.close()


def _stored(store: Store) -> dict[tuple[str, str, str], ProviderEvent]:
    with store.read() as tx:
        return {taken.event.key: taken.event for taken in inbox.take(tx, datetime(2100, 1, 1, tzinfo=UTC), 100_000)}


def _clear(store: Store) -> None:
    with store.tx() as tx:
        tx.connection.execute(t.events.delete())


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)
_events = st.builds(
    ProviderEvent,
    provider=st.sampled_from(["http", "twilio"]),
    external_id=st.sampled_from(["a", "b", "c", "ext-ü", "x" * 128]),
    kind=st.sampled_from(["ringing", "in-progress", "ended", "reply"]),
    occurred_at=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    ref=st.sampled_from(["", "wamid.1"]),
    data=st.dictionaries(st.sampled_from(["answered_by", "tags", "note", "n"]), st.one_of(_text, st.integers(), st.lists(_text, max_size=3)), max_size=3),
    subject=st.sampled_from(["call", "message"]),
    attempt_id=st.sampled_from(["", "cll_1", "42"]),
)  # fmt: skip


# The store is emptied at the start of each example.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(batches=st.lists(st.lists(_events, max_size=8), min_size=1, max_size=3), scheduled=st.booleans())
def test_each_event_is_stored_once_as_given(store: Store, batches: list[list[ProviderEvent]], scheduled: bool) -> None:
    _clear(store)
    first: dict[tuple[str, str, str], ProviderEvent] = {}
    for batch in batches:
        with store.autocommit() as tx:
            result = inbox.add(tx, batch, NOW, scheduled=scheduled)
        new = {e.key for e in batch if e.key not in first}
        for event in batch:
            first.setdefault(event.key, event)
        assert result == inbox.InboxResult(len(new), len(batch) - len(new))
    assert _stored(store) == first
    e = t.events.c
    with store.read() as tx:
        rows = tx.connection.execute(sql_select(e.provider, e.external_id, e.kind, e.available_at)).all()
    available = {(row[0], row[1], row[2]): row[3] for row in rows}
    # A scheduled event waits for its own time; a received one is applicable at once.
    assert available == {key: event.occurred_at if scheduled else NOW for key, event in first.items()}


def test_a_body_larger_than_one_statement_is_stored_whole(store: Store) -> None:
    events = [ProviderEvent("http", f"e{i}", "ringing", NOW, data={"i": i}) for i in range(1_234)]
    with store.autocommit() as tx:
        assert inbox.add(tx, [*events, *events[:10]], NOW) == inbox.InboxResult(1_234, 10)
    with store.autocommit() as tx:
        assert inbox.add(tx, events, NOW) == inbox.InboxResult(0, 1_234)
    with store.read() as tx:
        assert tx.connection.execute(sql_select(func.count()).select_from(t.events)).scalar_one() == 1_234
    assert _stored(store)[("http", "e1233", "ringing")].data == {"i": 1_233}


def test_workers_are_woken_only_by_new_events_that_are_due(store: Store, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite workers poll; NOTIFY is PostgreSQL's")
    plain_url = database_url.replace("postgresql+psycopg://", "postgresql://")
    listener = psycopg.connect(plain_url, autocommit=True)
    try:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")

        def woken() -> bool:
            # Notifications arrive in commit order: a sentinel sent after the statement under test comes second if
            # that statement notified, first if it did not. No waiting on the clock either way.
            with psycopg.connect(plain_url, autocommit=True) as other:
                other.execute(f"NOTIFY {NOTIFY_CHANNEL}, 'sentinel'")
            payloads: list[str] = []
            while "sentinel" not in payloads:
                payloads += [n.payload for n in listener.notifies(stop_after=1)]
            assert payloads in (["sentinel"], [inbox.EVENTS_NOTICE, "sentinel"])
            return payloads == [inbox.EVENTS_NOTICE, "sentinel"]

        event = ProviderEvent("http", "n1", "ringing", NOW)
        with store.autocommit() as tx:
            inbox.add(tx, [event], NOW)
        assert woken()
        with store.autocommit() as tx:
            inbox.add(tx, [event], NOW)  # a duplicate: nothing new to apply
        assert not woken()
        with store.autocommit() as tx:
            inbox.add(tx, [ProviderEvent("http", "n2", "ringing", NOW)], NOW, scheduled=True)
        assert not woken()
        with store.tx() as tx:  # inside a transaction: at its commit
            inbox.add(tx, [ProviderEvent("http", "n3", "ringing", NOW)], NOW)
        assert woken()
    finally:
        listener.close()
