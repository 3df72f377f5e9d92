"""`/campaigns/{id}/contacts`: batches accounted item by item, pages, one contact, removal."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.engine.clock import RealClock

from .campaign_support import add, add_call, contact_ids, create, numbers, set_status
from .conftest import BASE, Api


def test_a_batch_reports_every_item_and_makes_the_campaign_ready(api: Api) -> None:
    campaign = create(api, api.acme)
    body = add(
        api,
        api.acme,
        campaign["id"],
        ["55 1234 5678", "+525512345678", "bad", "", "+525599990000"],
    )
    assert body["summary"] == {"created": 2, "updated": 0, "skipped_duplicate": 1, "failed": 2}
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == ["created", "skipped_duplicate", "failed", "failed", "created"]
    assert results[0]["contact"] == "+525512345678" and results[1]["id"] == results[0]["id"]
    assert [r["error"] for r in results] == [None, None, "INVALID_PHONE_NUMBER", "MISSING_CONTACT", None]
    detail = api.client.get(f"{BASE}/campaigns/{campaign['id']}", headers=api.acme.headers).json()["campaign"]
    assert detail["status"] == "ready" and detail["analytics"]["contacts"] == 2


def test_update_overwrites_and_suppressed_numbers_fail(api: Api) -> None:
    campaign = create(api, api.acme)
    add(api, api.acme, campaign["id"], ["+525512345678"])
    with api.store.tx() as tx:
        tx.suppress(api.acme.business_id, "+525500000001", RealClock().now(), "test")
    body = {
        "if_duplicate": "update",
        "contacts": [
            {"contact": "5512345678", "name": "Renamed", "f_id": "ext-1", "extracted_data": {"balance": 1200}},
            {"contact": "+525500000001"},
        ],
    }
    response = api.client.post(f"{BASE}/campaigns/{campaign['id']}/contacts", headers=api.acme.headers, json=body)
    results = response.json()["results"]
    assert [(r["status"], r["error"]) for r in results] == [("updated", None), ("failed", "SUPPRESSED")]
    contact = api.client.get(
        f"{BASE}/campaigns/{campaign['id']}/contacts/{results[0]['id']}", headers=api.acme.headers
    ).json()["contact"]
    assert (contact["name"], contact["f_id"], contact["extracted_data"]) == ("Renamed", "ext-1", {"balance": "1200"})


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(
        st.one_of(
            st.sampled_from(["+525512345678", "5512345678", "55 1234 5679", "+525500000001"]),
            st.sampled_from(["", "  ", "bad", "123", "+1", "5512345678 ext. 4"]),
            st.none(),
            st.text(max_size=20),
        ),
        min_size=1,
        max_size=30,
    ),
    mode=st.sampled_from(["skip", "update"]),
)
def test_every_item_of_any_batch_is_accounted_for(api: Api, items: list[str | None], mode: str) -> None:
    campaign = create(api, api.acme)
    add(api, api.acme, campaign["id"], ["+525512345678"])
    with api.store.tx() as tx:
        tx.suppress(api.acme.business_id, "+525500000001", RealClock().now(), "test")
    contacts: list[dict[str, Any]] = [{} if item is None else {"contact": item} for item in items]
    response = api.client.post(
        f"{BASE}/campaigns/{campaign['id']}/contacts",
        headers=api.acme.headers,
        json={"contacts": contacts, "if_duplicate": mode},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    summary = body["summary"]
    assert sum(summary.values()) == len(items)
    assert [r["index"] for r in body["results"]] == list(range(len(items)))
    for status, count in summary.items():
        assert count == sum(1 for r in body["results"] if r["status"] == status)
    assert all((r["error"] is None) == (r["status"] != "failed") for r in body["results"])
    assert all((r["id"] is None) == (r["status"] == "failed") for r in body["results"])
    listed = api.client.get(f"{BASE}/campaigns/{campaign['id']}/contacts", headers=api.acme.headers).json()
    assert listed["total_count"] == 1 + summary["created"]


def test_contacts_pages(api: Api) -> None:
    campaign = create(api, api.acme)
    url = f"{BASE}/campaigns/{campaign['id']}/contacts"
    empty = api.client.get(url, headers=api.acme.headers).json()
    assert empty["contacts"] == [] and empty["total_count"] == 0 and not empty["pagination"]["has_next"]
    add(api, api.acme, campaign["id"], numbers(7))
    ids = contact_ids(api, campaign["id"])
    pages = [
        api.client.get(url, headers=api.acme.headers, params={"pageSize": 3, "pageIndex": i}).json() for i in range(4)
    ]
    assert [c["id"] for p in pages for c in p["contacts"]] == ids
    assert [p["pagination"]["next_page"] for p in pages] == [1, 2, None, None]
    assert [p["pagination"]["previous_page"] for p in pages] == [None, 0, 1, 2]
    assert all(p["total_count"] == 7 for p in pages) and pages[3]["contacts"] == []
    exact = api.client.get(url, headers=api.acme.headers, params={"pageSize": 7}).json()
    assert len(exact["contacts"]) == 7 and not exact["pagination"]["has_next"]
    queued = api.client.get(url, headers=api.acme.headers, params={"status": "queue"}).json()
    assert queued["total_count"] == 7
    assert api.client.get(url, headers=api.acme.headers, params={"status": "answered"}).json()["total_count"] == 0
    for bad in ({"pageIndex": -1}, {"pageIndex": 25_001}, {"pageSize": 0}, {"status": "lost"}, {"pageSize": 2**70}):
        assert api.client.get(url, headers=api.acme.headers, params=bad).status_code == 400


def test_a_contact_with_a_call_is_not_deletable_one_never_called_is(api: Api) -> None:
    campaign = create(api, api.acme)
    add(api, api.acme, campaign["id"], numbers(2))
    called, fresh = contact_ids(api, campaign["id"])
    add_call(api, campaign["id"], called, "cll_deletetest000000001")
    url = f"{BASE}/campaigns/{campaign['id']}/contacts"
    contact = api.client.get(f"{url}/{called}", headers=api.acme.headers).json()["contact"]
    assert contact["call_count"] == 1 and contact["last_call_at"] == "2026-03-02 09:00:00"
    refused = api.client.delete(f"{url}/{called}", headers=api.acme.headers)
    assert (refused.status_code, refused.json()["error"]) == (409, "CONTACT_NOT_DELETABLE")
    assert api.client.delete(f"{url}/{fresh}", headers=api.acme.headers).status_code == 204
    gone = api.client.get(f"{url}/{fresh}", headers=api.acme.headers)
    assert (gone.status_code, gone.json()["error"]) == (404, "CONTACT_NOT_FOUND")
    assert api.client.delete(f"{url}/{fresh}", headers=api.acme.headers).status_code == 404


def test_a_finished_campaign_takes_no_contacts(api: Api) -> None:
    campaign = create(api, api.acme)
    add(api, api.acme, campaign["id"], numbers(1))
    set_status(api, campaign["id"], "finished")
    url = f"{BASE}/campaigns/{campaign['id']}/contacts"
    added = api.client.post(url, headers=api.acme.headers, json={"contacts": [{"contact": "+525500000009"}]})
    assert (added.status_code, added.json()["error"]) == (409, "CAMPAIGN_FINISHED")
    removed = api.client.delete(f"{url}/{contact_ids(api, campaign['id'])[0]}", headers=api.acme.headers)
    assert removed.status_code == 409


def test_batch_limits_are_400s(api: Api) -> None:
    campaign = create(api, api.acme)
    url = f"{BASE}/campaigns/{campaign['id']}/contacts"
    for body in (
        {"contacts": []},
        {"contacts": [{"contact": "+525500000001"}] * 1001},
        {"contacts": [{"contact": 5512345678}]},
        {"contacts": [{"contact": "+525500000001", "phone": "x"}]},
        {"contacts": [{"contact": "+525500000001"}], "if_duplicate": "merge"},
        {},
    ):
        response = api.client.post(url, headers=api.acme.headers, json=body)
        assert (response.status_code, response.json()["error"]) == (400, "INVALID_REQUEST")
    assert contact_ids(api, campaign["id"]) == []


def test_another_business_contacts_are_not_found_and_not_listed(api: Api) -> None:
    theirs = create(api, api.globex)
    add(api, api.globex, theirs["id"], numbers(2))
    their_contact = contact_ids(api, theirs["id"])[0]
    mine = create(api, api.acme)
    url = f"{BASE}/campaigns"
    for method, path, body in (
        ("GET", f"/{theirs['id']}/contacts", None),
        ("POST", f"/{theirs['id']}/contacts", {"contacts": [{"contact": "+525500000099"}]}),
        ("GET", f"/{theirs['id']}/contacts/{their_contact}", None),
        ("DELETE", f"/{theirs['id']}/contacts/{their_contact}", None),
        ("GET", f"/{mine['id']}/contacts/{their_contact}", None),
        ("DELETE", f"/{mine['id']}/contacts/{their_contact}", None),
    ):
        response = api.client.request(method, f"{url}{path}", headers=api.acme.headers, json=body)
        assert response.status_code == 404, (method, path)
    assert api.client.get(f"{url}/{mine['id']}/contacts", headers=api.acme.headers).json()["total_count"] == 0
    assert len(contact_ids(api, theirs["id"])) == 2
