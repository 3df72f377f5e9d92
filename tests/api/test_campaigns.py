"""`/campaigns`: create on an agent's integration, list with filters and cursors, detail, update, lifecycle."""

from __future__ import annotations

from typing import Any

import pytest

from herald.domain import lifecycle
from herald.domain.statuses import CampaignStatus

from .campaign_support import add, create, integrations, numbers, set_status
from .conftest import BASE, Api


def test_a_phone_campaign_is_created_from_the_agent_and_its_integration(api: Api) -> None:
    cycles = {"enabled": True, "mode": "cooldown", "max_iterations": 3, "cooldown_minutes": 30}
    campaign = create(api, api.acme, first_message="Hi {name}", cycles={**cycles, "filter_statuses": ["converted"]})
    agent, ids = integrations(api, api.acme)
    assert campaign["status"] == "pending" and campaign["first_message"] == "Hi {name}"
    assert campaign["integration"] == {"id": ids["phone_call"], "type": "phone_call"}
    assert campaign["agent"] == {"id": agent, "name": "Herald simulator agent"}
    assert campaign["cycles"]["max_iterations"] == 3 and campaign["cycles"]["filter_statuses"] == ["converted"]
    assert campaign["analytics"]["calls"] == 0 and campaign["analytics"]["contactsConvertedRate"] is None
    with api.store.read() as tx:
        stored = tx.campaign(campaign["id"])
    assert stored.agent_id is not None and stored.integration_id is not None
    assert stored.config.provider == "simulator" and stored.config.agent.name == "Herald simulator agent"


def test_a_whatsapp_campaign_has_its_own_analytics_keys(api: Api) -> None:
    campaign = create(api, api.acme, "whatsapp", template="promo_v1", message_limit=40)
    assert campaign["message_limit"] == 40 and campaign["template"] == "promo_v1"
    assert {"sent", "delivered", "read", "converted", "convertedRate"} <= set(campaign["analytics"])


@pytest.mark.parametrize(
    ("change", "status", "key"),
    [
        ({"agent_id": "00000000-0000-4000-8000-000000000000"}, 404, "AGENT_NOT_FOUND"),
        ({"integration_id": "iph_doesnotexist000000"}, 404, "INTEGRATION_NOT_FOUND"),
        ({"integration_type": "whatsapp"}, 400, "INVALID_INTEGRATION_TYPE"),
        ({"template": "x"}, 400, "INVALID_REQUEST"),
        ({"timezone": "Mars/Olympus"}, 400, "INVALID_REQUEST"),
        ({"retries": 6}, 400, "INVALID_REQUEST"),
        ({"name": ""}, 400, "INVALID_REQUEST"),
        ({"surprise": 1}, 400, "INVALID_REQUEST"),
        (
            {"cycles": {"enabled": True, "mode": "cooldown", "schedule_start_date": "2026-01-01"}},
            400,
            "INVALID_REQUEST",
        ),
    ],
)
def test_create_refuses_what_the_reference_refuses(api: Api, change: dict[str, Any], status: int, key: str) -> None:
    agent, ids = integrations(api, api.acme)
    body = {"name": "C", "agent_id": agent, "integration_id": ids["phone_call"], "integration_type": "phone_call"}
    response = api.client.post(f"{BASE}/campaigns", headers=api.acme.headers, json={**body, **change})
    assert (response.status_code, response.json()["error"]) == (status, key), response.text


def test_another_business_agent_or_integration_is_not_found(api: Api) -> None:
    mine, my_ids = integrations(api, api.acme)
    theirs, their_ids = integrations(api, api.globex)
    base = {"name": "C", "integration_type": "phone_call"}
    for agent, integration, key in (
        (theirs, their_ids["phone_call"], "AGENT_NOT_FOUND"),
        (mine, their_ids["phone_call"], "INTEGRATION_NOT_FOUND"),
    ):
        body = {**base, "agent_id": agent, "integration_id": integration}
        response = api.client.post(f"{BASE}/campaigns", headers=api.acme.headers, json=body)
        assert (response.status_code, response.json()["error"]) == (404, key)
    # An integration of another agent of the same business is not this agent's.
    other = api.client.post(f"{BASE}/agents", headers=api.acme.headers, json={"name": "Other"}).json()["agent"]
    body = {**base, "agent_id": other["public_id"], "integration_id": my_ids["phone_call"]}
    response = api.client.post(f"{BASE}/campaigns", headers=api.acme.headers, json=body)
    assert response.json()["error"] == "INTEGRATION_NOT_FOUND"


def _page(api: Api, **params: Any) -> dict[str, Any]:
    response = api.client.get(f"{BASE}/campaigns", headers=api.acme.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_list_pages_with_cursors_both_ways_and_counts_everything(api: Api) -> None:
    assert _page(api)["campaigns"] == [] and _page(api)["total_count"] == 0
    created = [create(api, api.acme, name=f"C{i}")["id"] for i in range(5)]
    create(api, api.globex)
    newest_first = created[::-1]
    exact = _page(api, pageSize=5)
    assert [c["id"] for c in exact["campaigns"]] == newest_first and exact["total_count"] == 5
    assert exact["pagination"] == {
        "has_next": False,
        "has_previous": False,
        "next_cursor": None,
        "previous_cursor": None,
    }
    first = _page(api, pageSize=2)
    second = _page(api, pageSize=2, cursor=first["pagination"]["next_cursor"])
    last = _page(api, pageSize=2, cursor=second["pagination"]["next_cursor"])
    assert [c["id"] for p in (first, second, last) for c in p["campaigns"]] == newest_first
    assert (last["pagination"]["has_next"], last["pagination"]["next_cursor"]) == (False, None)
    assert second["pagination"]["has_previous"] and not first["pagination"]["has_previous"]
    back = _page(api, pageSize=2, cursor=last["pagination"]["previous_cursor"])
    assert back["campaigns"] == second["campaigns"] and back["pagination"]["has_previous"]
    assert all(p["total_count"] == 5 for p in (first, second, last, back))


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "bjo5OTk5OTk5OTk5OTk5"},
        {"pageSize": 0},
        {"pageSize": 101},
        {"pageSize": "many"},
        {"status": "sleeping"},
        {"createdAfter": "yesterday"},
        {"createdAfter": "2026-02-01", "createdBefore": "2026-01-01"},
        {"archived": "perhaps"},
        {"startedBefore": "99999-01-01"},
    ],
)
def test_bad_list_parameters_are_400s(api: Api, params: dict[str, Any]) -> None:
    response = api.client.get(f"{BASE}/campaigns", headers=api.acme.headers, params=params)
    assert (response.status_code, response.json()["error"]) == (400, "INVALID_REQUEST"), response.text


def test_list_filters(api: Api) -> None:
    phone = create(api, api.acme)["id"]
    whatsapp = create(api, api.acme, "whatsapp")["id"]
    archived = create(api, api.acme)["id"]
    api.client.post(f"{BASE}/campaigns/{archived}/archive", headers=api.acme.headers)
    add(api, api.acme, phone, numbers(1))
    agent, _ = integrations(api, api.acme)

    def ids(**params: Any) -> list[int]:
        return sorted(c["id"] for c in _page(api, **params)["campaigns"])

    assert ids() == [phone, whatsapp]
    assert ids(archived="true") == [phone, whatsapp, archived]
    assert ids(integration="whatsapp") == [whatsapp]
    assert ids(status="ready") == [phone]
    assert ids(agentId=agent) == [phone, whatsapp]
    assert ids(agentId="00000000-0000-4000-8000-000000000000") == []
    assert ids(createdAfter="2000-01-01", createdBefore="2999-01-01T00:00:00+00:00") == [phone, whatsapp]
    assert ids(startDate="2999-01-01") == []
    assert ids(startedAfter="2000-01-01") == []  # none has started


def test_update_changes_settings_and_refuses_immutable_fields_and_finished_campaigns(api: Api) -> None:
    campaign = create(api, api.acme, cycles={"enabled": True, "mode": "cooldown", "max_iterations": 2})
    url = f"{BASE}/campaigns/{campaign['id']}"
    changed = api.client.patch(url, headers=api.acme.headers, json={"name": "wave 2", "retries": 2})
    assert changed.status_code == 200 and changed.json()["campaign"]["name"] == "wave 2"
    assert changed.json()["campaign"]["retries"] == 2
    cycles = api.client.patch(url, headers=api.acme.headers, json={"cycles": {"cooldown_minutes": 60}})
    assert cycles.json()["campaign"]["cycles"]["cooldown_minutes"] == 60
    for body, field in (
        ({"agent_id": "x"}, "agent_id"),
        ({"integration_id": "x"}, "integration_id"),
        ({"integration_type": "whatsapp"}, "integration_type"),
        ({"cycles": {"enabled": False}}, "cycles.enabled"),
        ({"cycles": {"mode": "scheduled"}}, "cycles.mode"),
    ):
        refused = api.client.patch(url, headers=api.acme.headers, json=body)
        assert (refused.status_code, refused.json()["error"], refused.json()["field"]) == (
            400,
            "IMMUTABLE_FIELD",
            field,
        )
    scheduled_only = api.client.patch(
        url, headers=api.acme.headers, json={"cycles": {"schedule_end_date": "2026-05-01"}}
    )
    assert scheduled_only.json()["error"] == "SCHEDULED_MODE_ONLY"
    assert api.client.patch(url, headers=api.acme.headers, json={"template": "x"}).status_code == 400
    plain = create(api, api.acme)
    no_cycles = api.client.patch(
        f"{BASE}/campaigns/{plain['id']}", headers=api.acme.headers, json={"cycles": {"max_iterations": 3}}
    )
    assert no_cycles.json()["error"] == "CYCLES_NOT_ENABLED"
    set_status(api, campaign["id"], "finished")
    finished = api.client.patch(url, headers=api.acme.headers, json={"name": "late"})
    assert (finished.status_code, finished.json()["error"]) == (409, "CAMPAIGN_FINISHED")
    assert api.client.get(url, headers=api.acme.headers).json()["campaign"]["name"] == "wave 2"


@pytest.mark.parametrize("status", [s.value for s in CampaignStatus])
@pytest.mark.parametrize("action", [a.value for a in lifecycle.Action])
def test_every_action_from_every_status_follows_the_lifecycle(api: Api, status: str, action: str) -> None:
    campaign = create(api, api.acme)
    set_status(api, campaign["id"], status)
    response = api.client.post(f"{BASE}/campaigns/{campaign['id']}/{action}", headers=api.acme.headers)
    try:
        expected = lifecycle.apply_action(CampaignStatus(status), False, action)
    except lifecycle.InvalidTransition as error:
        body = response.json()
        assert response.status_code == 409 and body["error"] == "INVALID_STATUS_TRANSITION"
        assert body["current_status"] == status
        assert body["valid_targets"] == [s.value for s in error.valid_targets]
        with api.store.read() as tx:
            assert tx.campaign(campaign["id"]).status.value == status
        return
    assert response.status_code == 200, response.text
    assert response.json()["campaign"]["status"] == expected.status.value
    assert response.json()["campaign"]["archived"] is expected.archived


def test_an_unknown_action_is_a_400(api: Api) -> None:
    campaign = create(api, api.acme)
    response = api.client.post(f"{BASE}/campaigns/{campaign['id']}/launch", headers=api.acme.headers)
    assert (response.status_code, response.json()["error"]) == (400, "UNKNOWN_ACTION")


def test_another_business_campaign_is_a_404_on_every_campaign_route(api: Api) -> None:
    theirs = create(api, api.globex)["id"]
    missing = theirs + 1000
    for campaign_id in (theirs, missing):
        for method, path, body in (
            ("GET", "", None),
            ("PATCH", "", {"name": "mine now"}),
            ("POST", "/activate", None),
            ("POST", "/archive", None),
        ):
            response = api.client.request(
                method, f"{BASE}/campaigns/{campaign_id}{path}", headers=api.acme.headers, json=body
            )
            assert (response.status_code, response.json()["error"]) == (404, "NOT_FOUND"), (method, path)
    assert _page(api, archived="true")["total_count"] == 0
    with api.store.read() as tx:
        stored = tx.campaign(theirs)
    assert stored.name == "Campaign" and not stored.archived and stored.status is CampaignStatus.PENDING


@pytest.mark.parametrize(
    "path", ["/campaigns/abc", "/campaigns/-1", "/campaigns/0", f"/campaigns/{10**30}", "/campaigns/1.5"]
)
def test_malformed_ids_are_client_errors(api: Api, path: str) -> None:
    response = api.client.get(f"{BASE}{path}", headers=api.acme.headers)
    assert response.status_code in (400, 404)
