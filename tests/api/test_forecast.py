"""`GET /api/v1.0/campaigns/{id}/forecast`: scoped to the caller's business, strict body, the database unchanged."""

from __future__ import annotations

from sqlalchemy import func, select

from herald.demo import DEMO_START, example_config, synthetic_contacts
from herald.domain.statuses import Channel
from herald.engine.campaigns import import_contacts
from herald.store import schema as t

from .conftest import BASE, Api


def _campaign(api: Api, business_id: int, channel: Channel = Channel.PHONE_CALL) -> int:
    with api.store.tx() as tx:
        campaign_id = tx.create_campaign(business_id, example_config(channel), DEMO_START)
    import_contacts(api.store, campaign_id, synthetic_contacts(15, 8), DEMO_START)
    return campaign_id


def _counts(api: Api) -> dict[str, int]:
    with api.store.read() as tx:
        return {
            table.name: tx.connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in t.metadata.sorted_tables
        }


def test_the_forecast_of_the_callers_campaign(api: Api) -> None:
    campaign_id = _campaign(api, api.acme.business_id)
    before = _counts(api)
    answer = api.client.get(f"{BASE}/campaigns/{campaign_id}/forecast?runs=2&seed=4", headers=api.acme.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    forecast = body["forecast"]
    assert (forecast["campaign_id"], forecast["channel"], forecast["runs"], forecast["seed"]) == (
        campaign_id,
        "phone_call",
        2,
        4,
    )
    assert forecast["contacts"] == forecast["remaining"] == 15 and forecast["whatsapp"] is None
    assert set(forecast["phone"]["billed_minutes"]) == {"human", "machine", "unknown"}
    assert forecast["phone"]["calls"]["min"] >= 15
    assert _counts(api) == before  # nothing was written
    again = api.client.get(f"{BASE}/campaigns/{campaign_id}/forecast?runs=2&seed=4", headers=api.acme.headers)
    assert {**again.json()["forecast"], "start": None} == {**forecast, "start": None}


def test_a_whatsapp_forecast(api: Api) -> None:
    campaign_id = _campaign(api, api.acme.business_id, Channel.WHATSAPP)
    answer = api.client.get(f"{BASE}/campaigns/{campaign_id}/forecast", headers=api.acme.headers)
    assert answer.status_code == 200, answer.text
    forecast = answer.json()["forecast"]
    assert forecast["phone"] is None and forecast["whatsapp"]["messages"]["mean"] >= 15 and forecast["runs"] == 1


def test_another_business_or_no_campaign_is_a_404(api: Api) -> None:
    campaign_id = _campaign(api, api.acme.business_id)
    for path in (f"/campaigns/{campaign_id}/forecast", f"/campaigns/{campaign_id + 100}/forecast"):
        answer = api.client.get(BASE + path, headers=api.globex.headers)
        assert answer.status_code == 404
        assert answer.json() == {"success": False, "error": "NOT_FOUND", "message": "campaign not found"}


def test_bad_parameters_are_a_400_and_no_key_a_401(api: Api) -> None:
    campaign_id = _campaign(api, api.acme.business_id)
    for query in ("runs=0", "runs=11", "seed=-1", "seed=2147483648", "runs=many"):
        answer = api.client.get(f"{BASE}/campaigns/{campaign_id}/forecast?{query}", headers=api.acme.headers)
        assert answer.status_code == 400, query
        assert answer.json()["error"] == "INVALID_REQUEST"
    assert api.client.get(f"{BASE}/campaigns/{campaign_id}/forecast").status_code == 401
    huge = api.client.get(f"{BASE}/campaigns/{2**63}/forecast", headers=api.acme.headers)
    assert huge.status_code in (400, 404) and huge.json()["success"] is False


def test_the_route_is_in_herald_openapi(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    operation = document["paths"][f"{BASE}/campaigns/{{campaign_id}}/forecast"]["get"]
    assert {"200", "400", "401", "404"} <= set(operation["responses"])
    assert "ForecastOut" in document["components"]["schemas"]
