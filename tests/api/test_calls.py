"""Calls: a campaign's calls page by page, one call by its id, its recording."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from herald.store import schema as t

from .campaign_support import add, add_call, contact_ids, create, numbers
from .conftest import BASE, Api


def _campaign_with_calls(api: Api, count: int) -> tuple[int, list[str]]:
    campaign = create(api, api.acme)
    add(api, api.acme, campaign["id"], numbers(count))
    ids = []
    for index, contact_id in enumerate(contact_ids(api, campaign["id"])):
        public_id = f"cll_test{index:016d}"
        answered = ("human", "machine", None)[index % 3]
        add_call(
            api,
            campaign["id"],
            contact_id,
            public_id,
            answered_by=answered,
            status="ended" if answered else "no-answer",
            recording_url="" if answered != "human" else f"http://x/api/v1.0/call/{public_id}/recording",
        )
        ids.append(public_id)
    return campaign["id"], ids


def test_campaign_calls_pages_and_filters(api: Api) -> None:
    campaign_id, ids = _campaign_with_calls(api, 5)
    url = f"{BASE}/campaigns/{campaign_id}/calls"
    pages = [
        api.client.get(url, headers=api.acme.headers, params={"pageSize": 2, "pageIndex": i}).json() for i in range(3)
    ]
    assert [c["id"] for p in pages for c in p["calls"]] == ids
    assert [p["pagination"]["has_next"] for p in pages] == [True, True, False]
    assert pages[2]["pagination"] == {
        "page_index": 2, "page_size": 2, "has_next": False, "has_previous": True, "next_page": None, "previous_page": 1
    }  # fmt: skip
    first = pages[0]["calls"][0]
    assert first["contact"]["phone_number"] == numbers(1)[0] and first["billed_duration"] == 42
    assert (
        first["recording_url"] == f"/api/v1.0/call/{ids[0]}/recording" and pages[0]["calls"][1]["recording_url"] is None
    )
    human = api.client.get(url, headers=api.acme.headers, params={"answeredBy": "human"}).json()
    assert [c["id"] for c in human["calls"]] == [ids[0], ids[3]] and human["total_count"] == 2
    unanswered = api.client.get(url, headers=api.acme.headers, params={"status": "no-answer"}).json()
    assert unanswered["total_count"] == 1 and unanswered["calls"][0]["answered_by"] is None
    assert api.client.get(url, headers=api.acme.headers, params={"startDate": "2026-03-03"}).json()["total_count"] == 0
    assert api.client.get(url, headers=api.acme.headers, params={"endDate": "2026-03-02"}).json()["total_count"] == 5
    for bad in ({"status": "ringing"}, {"answeredBy": "robot"}, {"startDate": "soon"}, {"pageIndex": 25_001}):
        assert api.client.get(url, headers=api.acme.headers, params=bad).status_code == 400


def test_a_call_by_its_id_and_its_recording(api: Api) -> None:
    campaign_id, ids = _campaign_with_calls(api, 3)
    call = api.client.get(f"{BASE}/call/{ids[0]}", headers=api.acme.headers)
    assert call.status_code == 200
    body = call.json()
    assert (body["id"], body["campaign_id"], body["billable_duration"], body["answered_by"]) == (
        ids[0],
        campaign_id,
        42,
        "human",
    )
    recording = api.client.get(f"{BASE}/call/{ids[0]}/recording", headers=api.acme.headers)
    assert recording.status_code == 200 and recording.headers["content-type"] == "audio/wav"
    assert recording.content[:4] == b"RIFF" and recording.content[8:12] == b"WAVE"
    none = api.client.get(f"{BASE}/call/{ids[1]}/recording", headers=api.acme.headers)
    assert none.status_code == 404


def test_a_provider_recording_is_a_redirect(api: Api) -> None:
    campaign_id = create(api, api.acme)["id"]
    add(api, api.acme, campaign_id, ["+525511110000"])
    contact_id = contact_ids(api, campaign_id)[0]
    add_call(api, campaign_id, contact_id, "cll_httpcall0000000001", provider="http", provider_call_id="p-1")
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    with api.store.tx() as tx:
        tx.connection.execute(
            insert(t.events).values(
                provider="http", external_id="p-1", kind="ended", occurred_at=now, received_at=now,
                payload={"recording_url": "https://recordings.example/p-1.mp3"}, applied_at=now,
            )
        )  # fmt: skip
    response = api.client.get(
        f"{BASE}/call/cll_httpcall0000000001/recording", headers=api.acme.headers, follow_redirects=False
    )
    assert response.status_code == 302 and response.headers["location"] == "https://recordings.example/p-1.mp3"


def test_another_business_calls_are_not_found(api: Api) -> None:
    campaign_id, ids = _campaign_with_calls(api, 1)
    for path in (
        f"/call/{ids[0]}",
        f"/call/{ids[0]}/recording",
        f"/campaigns/{campaign_id}/calls",
        "/call/cll_nothing",
        "/call/" + "x" * 500,
    ):
        response = api.client.get(f"{BASE}{path}", headers=api.globex.headers)
        assert response.status_code in (404, 400), path
        assert response.status_code == 404 or path.endswith("x" * 500)
