"""Helpers of the campaign endpoint tests: campaigns created through the API, stored calls, forced statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from herald.store import schema as t

from .conftest import BASE, Api, Tenant


def integrations(api: Api, tenant: Tenant) -> tuple[str, dict[str, str]]:
    """The tenant's ready agent: its UUID and its integration ids by type."""
    agent = api.client.get(f"{BASE}/agents", headers=tenant.headers).json()["agents"][0]
    return agent["public_id"], {i["integration_type"]: i["public_id"] for i in agent["integrations"]}


def create(api: Api, tenant: Tenant, channel: str = "phone_call", **fields: Any) -> dict[str, Any]:
    """A campaign of the tenant through `POST /campaigns`; its detail."""
    agent, ids = integrations(api, tenant)
    body = {"name": "Campaign", "agent_id": agent, "integration_id": ids[channel], "integration_type": channel}
    response = api.client.post(f"{BASE}/campaigns", headers=tenant.headers, json={**body, **fields})
    assert response.status_code == 201, response.text
    campaign: dict[str, Any] = response.json()["campaign"]
    return campaign


def add(api: Api, tenant: Tenant, campaign_id: int, numbers: list[str], **extra: Any) -> dict[str, Any]:
    """Contacts added through the batch endpoint; the response body."""
    body = {"contacts": [{"contact": number, "name": f"N{i}"} for i, number in enumerate(numbers)], **extra}
    response = api.client.post(f"{BASE}/campaigns/{campaign_id}/contacts", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def set_status(api: Api, campaign_id: int, status: str) -> None:
    """Put a campaign in a status (test setup: the engine's own moves are tested elsewhere)."""
    with api.store.tx() as tx:
        tx.connection.execute(update(t.campaigns).where(t.campaigns.c.id == campaign_id).values(status=status))


def add_call(api: Api, campaign_id: int, contact_id: int, public_id: str, **values: Any) -> None:
    """A stored call of a contact, as the engine would have written it."""
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    row = {
        "public_id": public_id,
        "campaign_id": campaign_id,
        "contact_id": contact_id,
        "provider": "simulator",
        "provider_call_id": f"sim-{public_id}",
        "type": "outbound",
        "status": "ended",
        "answered_by": "human",
        "ended_by": "user",
        "ended_reason": "user_hangup",
        "created_at": now,
        "started_at": now,
        "ended_at": now,
        "duration": 42,
        "billed_seconds": 42,
        "recording_url": f"http://127.0.0.1/api/v1.0/call/{public_id}/recording",
        "tags": ["promise"],
        "extracted": {"amount": "100"},
        "cycle": 1,
        **values,
    }
    with api.store.tx() as tx:
        tx.connection.execute(insert(t.calls).values(**row))
        tx.connection.execute(
            update(t.contacts).where(t.contacts.c.id == contact_id).values(calls=t.contacts.c.calls + 1)
        )


def contact_ids(api: Api, campaign_id: int) -> list[int]:
    """The campaign's contact ids in order."""
    with api.store.read() as tx:
        query = select(t.contacts.c.id).where(t.contacts.c.campaign_id == campaign_id).order_by(t.contacts.c.id)
        return [int(row[0]) for row in tx.connection.execute(query)]


def numbers(count: int, start: int = 0) -> list[str]:
    """Valid Mexico City numbers in E.164."""
    return [f"+5255{start + i:08d}" for i in range(count)]
