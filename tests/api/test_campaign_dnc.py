"""A campaign's own do-not-call list refuses numbers added to that campaign through the API, and only there."""

from __future__ import annotations

from herald.engine.clock import RealClock
from herald.store.campaign_dnc import suppress_in_campaign

from .campaign_support import add, create
from .conftest import Api


def test_a_number_on_the_campaign_list_fails_as_suppressed_in_that_campaign_only(api: Api) -> None:
    listed, other = create(api, api.acme), create(api, api.acme)
    with api.store.tx() as tx:
        suppress_in_campaign(tx, listed["id"], "+525500000001", RealClock().now(), "test")
    numbers = ["+525500000001", "+525500000002"]
    refused = add(api, api.acme, listed["id"], numbers)["results"]
    assert [(r["status"], r.get("error")) for r in refused] == [("failed", "SUPPRESSED"), ("created", None)]
    accepted = add(api, api.acme, other["id"], numbers)["results"]
    assert [r["status"] for r in accepted] == ["created", "created"]
