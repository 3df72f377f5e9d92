"""The contact count and pages of the API: exact for small campaigns, kept a few seconds for large ones."""

from __future__ import annotations

from pathlib import Path

from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import add_contacts, create_campaign
from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store import api_queries as q
from herald.store.queries import NewContact, Store


def _numbers(start: int, count: int) -> list[NewContact]:
    return [NewContact(f"+5255{i:08d}", f"P{i}", "ctx") for i in range(start, start + count)]


def test_small_counts_are_exact_and_large_ones_are_kept_for_a_few_seconds(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'counts.db'}")
    now = RealClock().now()
    campaign_id = create_campaign(store, parse_campaign({"name": "C", "channel": "phone_call"}), now, IdFactory(1))
    seconds = [100.0]

    def count() -> int:
        with store.read() as tx:
            return q.count_contacts(tx, campaign_id, clock=lambda: seconds[0])

    def last_page() -> tuple[list[str], bool]:
        with store.read() as tx:
            rows, more = q.contact_page(tx, campaign_id, None, q.LARGE_COUNT - 2, 50, clock=lambda: seconds[0])
        return [row.contact for row in rows], more

    add_contacts(store, campaign_id, _numbers(0, 10), now)
    assert count() == 10
    add_contacts(store, campaign_id, _numbers(10, 1), now)
    assert count() == 11  # small: never kept
    add_contacts(store, campaign_id, _numbers(11, q.LARGE_COUNT - 11), now)
    assert count() == q.LARGE_COUNT
    before = last_page()
    assert len(before[0]) == 2 and before[1] is False
    add_contacts(store, campaign_id, _numbers(q.LARGE_COUNT, 5), now)
    assert count() == q.LARGE_COUNT  # kept, and so are the pages
    assert last_page() == before
    seconds[0] += q.KEPT_SECONDS - 0.01
    assert count() == q.LARGE_COUNT
    seconds[0] += 0.02
    assert count() == q.LARGE_COUNT + 5  # counted again once the time is up
    after, more = last_page()
    assert after[:2] == before[0] and len(after) == 7 and more is False
    store.close()
