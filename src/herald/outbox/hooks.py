"""What the engine calls in the transaction that makes an event: one delivery row per subscribed endpoint.

Each hook first reads the business's endpoints (once per transaction) and returns at once when none wants the
event, so a business without webhooks costs one indexed lookup per transaction and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from herald.domain.statuses import CampaignStatus
from herald.outbox import payloads
from herald.outbox.payloads import CYCLE_COMPLETED, ON_CALL_END, STATUS_CHANGED, CampaignRef, CampaignUser, EndedCall
from herald.outbox.store import Endpoint, endpoints_of, enqueue
from herald.store import schema as t
from herald.store.queries import Tx
from herald.store.records import Campaign


def _subscribed(tx: Tx, business_id: int, event_type: str, status: str | None = None) -> list[Endpoint]:
    return [
        endpoint
        for endpoint in endpoints_of(tx, business_id)
        if payloads.wanted(endpoint.events, endpoint.filters, event_type, status)
    ]


def _ref(campaign: Campaign) -> CampaignRef:
    return CampaignRef(campaign.id, campaign.name, campaign.config.timezone, campaign.business_public_id)


def status_changed(tx: Tx, campaign: Campaign, target: CampaignStatus, now: datetime) -> None:
    """`campaign.status_changed` from the campaign's stored status to `target` (with analytics when finished)."""
    endpoints = _subscribed(tx, campaign.business_id, STATUS_CHANGED, target.value)
    if not endpoints:
        return
    figures = None
    if target is CampaignStatus.FINISHED:
        # Imported here: the analytics modules load DuckDB, which no other status change needs.
        from herald.analytics.snapshot import analytics

        figures = analytics(tx, campaign)
    evt = payloads.event_id()
    body = payloads.encode(
        payloads.status_changed(evt, _ref(campaign), campaign.status.value, target.value, now, figures)
    )
    enqueue(tx, [(endpoint, evt, STATUS_CHANGED, body) for endpoint in endpoints], now)


def cycle_completed(
    tx: Tx, campaign: Campaign, target: CampaignStatus, next_cycle_at: datetime | None, now: datetime
) -> None:
    """`campaign.cycle_completed` for the campaign's current iteration, which ends now; `target` is the status the
    campaign moves to. Sent for campaigns with cycles enabled, as Altur does."""
    if not campaign.config.cycles.enabled:
        return
    endpoints = _subscribed(tx, campaign.business_id, CYCLE_COMPLETED)
    if not endpoints:
        return
    evt = payloads.event_id()
    body = payloads.encode(
        payloads.cycle_completed(evt, _ref(campaign), target.value, campaign.cycle_iteration, next_cycle_at, now)
    )
    enqueue(tx, [(endpoint, evt, CYCLE_COMPLETED, body) for endpoint in endpoints], now)


_k = t.calls.c
_c = t.contacts.c
_g = t.agents.c
_ENDED_CALLS = (
    select(
        _k.id,
        _k.public_id,
        _k.type,
        _k.status,
        _k.answered_by,
        _k.created_at,
        _k.started_at,
        _k.ended_at,
        _k.ended_by,
        _k.ended_reason,
        _k.duration,
        _k.billed_seconds,
        _k.recording_url,
        _c.external_id,
        _c.name,
        _c.contact,
        _c.context,
        _c.status.label("contact_status"),
        _c.failed_retries,
        _c.retries,
        _c.extracted,
        _c.tags,
        _c.override_agent_name,
        _g.public_id.label("agent_public_id"),
        _g.name.label("agent_name"),
    )
    .join(t.contacts, _c.id == _k.contact_id)
    .join(t.campaigns, t.campaigns.c.id == _k.campaign_id)
    .outerjoin(t.agents, _g.id == t.campaigns.c.agent_id)
)


def _ended_call(row: Any, campaign: Campaign) -> EndedCall:
    agent_name = campaign.config.agent.name
    return EndedCall(
        id=row.public_id,
        type=row.type,
        status=row.status,
        phone_number_to=row.contact,
        answered_by=row.answered_by,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
        ended_reason=row.ended_reason,
        duration=row.duration,
        billed_duration=row.billed_seconds,
        recording_url=row.recording_url,
        assistant_id=row.agent_public_id,
        assistant_nickname=row.agent_name or agent_name,
        assistant_name=row.override_agent_name or agent_name,
        user=CampaignUser(
            f_id=row.external_id or "",
            name=row.name,
            contact=row.contact,
            context=row.context,
            status=row.contact_status,
            failed_retries=row.failed_retries,
            voicemail_retries=row.retries,
            extracted_data=dict(row.extracted or {}),
            tags=tuple(row.tags or ()),
        ),
    )


def calls_ended(tx: Tx, ended: Sequence[tuple[Campaign, int]], now: datetime) -> None:
    """`on_call_end` for calls that ended in this transaction, as (campaign, call id), read after their outcome
    (and their contact's) was written."""
    wanted: dict[int, tuple[Campaign, list[Endpoint]]] = {}
    # The endpoints of each business once per batch: a simulated step ends a call or two, and a business without
    # webhooks then costs one lookup per batch instead of one per call.
    by_business: dict[int, list[Endpoint]] = {}
    for campaign, call_id in ended:
        endpoints = by_business.get(campaign.business_id)
        if endpoints is None:
            endpoints = by_business[campaign.business_id] = _subscribed(tx, campaign.business_id, ON_CALL_END)
        if endpoints:
            wanted[call_id] = (campaign, endpoints)
    if not wanted:
        return
    rows: list[tuple[Endpoint, str, str, str]] = []
    ids = sorted(wanted)
    for start in range(0, len(ids), 500):
        for row in tx.connection.execute(_ENDED_CALLS.where(_k.id.in_(ids[start : start + 500]))):
            campaign, endpoints = wanted[row.id]
            evt = payloads.event_id()
            body = payloads.encode(payloads.on_call_end(_ended_call(row, campaign)))
            rows.extend((endpoint, evt, ON_CALL_END, body) for endpoint in endpoints)
    enqueue(tx, rows, now)
