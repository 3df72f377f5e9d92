"""The campaign page's pure rules: the lifecycle buttons shown are exactly the actions that are allowed now and
change something (Hypothesis over every status and archived flag), and keyset pages walk a filtered list exactly."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import herald
from herald.campaign_file import read_campaign_file
from herald.domain import lifecycle
from herald.domain.statuses import CampaignStatus
from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.queries import NewContact, Store
from herald.web.campaign_page import ACTIONS, available_actions
from herald.web.campaign_queries import contact_search


@given(st.sampled_from(list(CampaignStatus)), st.booleans())
def test_the_buttons_are_the_actions_allowed_now_that_change_something(status: CampaignStatus, archived: bool) -> None:
    shown = dict(available_actions(status, archived))
    for action, name, _ in ACTIONS:
        try:
            result = lifecycle.apply_action(status, archived, action)
        except lifecycle.InvalidTransition:
            assert action.value not in shown
            continue
        assert (action.value in shown) == result.changed
        if result.changed:
            assert shown[action.value] == name
    if status is CampaignStatus.FINISHED:
        assert set(shown) <= {"archive"}


def test_keyset_pages_walk_a_filtered_search_forwards_and_back(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'herald.db'}")
    example = Path(herald.__file__).parent / "examples" / "collections.yaml"
    campaign_id = engine.create_campaign(store, read_campaign_file(example), RealClock().now(), IdFactory(1))
    people = [NewContact(f"+5255{i:08d}", f"{'Ana' if i % 3 == 0 else 'Luis'} {i}", "") for i in range(200)]
    engine.add_contacts(store, campaign_id, people, RealClock().now())
    expected = [f"Ana {i}" for i in range(0, 200, 3)]
    with store.read() as tx:
        seen, after, pages = [], None, []
        while True:
            page = contact_search(tx, campaign_id, search="ana", after=after, limit=7)
            pages.append(page)
            seen += [row.name for row in page.rows]
            if page.after is None:
                break
            after = page.after
        assert seen == expected
        # Back from the last page, page by page, to the first one.
        back, before = [], pages[-1].before
        while before is not None:
            page = contact_search(tx, campaign_id, search="ana", before=before, limit=7)
            back = [row.name for row in page.rows] + back
            before = page.before
        assert back + [row.name for row in pages[-1].rows] == expected
    store.close()
