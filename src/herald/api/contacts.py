"""`/campaigns/{id}/contacts`: list, add in batches, read and remove the contacts of one of the caller's campaigns."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from herald.api.auth import CallerDep, StoreDep
from herald.api.campaign_models import (
    BatchItemOut,
    BatchSummary,
    ContactBatchIn,
    ContactBatchResponse,
    ContactOut,
    ContactResponse,
    ContactsResponse,
    OffsetPagination,
)
from herald.api.campaign_views import RowId, campaign_of, local_text
from herald.api.errors import ApiError, not_found
from herald.api.models import AUTH_RESPONSES, ApiErrorBody
from herald.domain.statuses import CampaignStatus, Channel
from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.store import api_queries as q
from herald.store.records import Campaign

router = APIRouter(tags=["contacts"], responses=AUTH_RESPONSES)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorBody, "description": "No such campaign (or contact) in your business"}
}
_STATUSES = Literal[
    "queue",
    "sending",
    "sent",
    "delivered",
    "voicemail",
    "read",
    "failed",
    "retrying",
    "converted",
    "answered",
    "accepted",
    "rejected",
]


def contact_out(row: q.ContactRow, campaign: Campaign) -> ContactOut:
    """The reference's `CampaignContact`: extracted data is the contact's input variables overlaid with what its
    conversations extracted."""
    phone = campaign.channel is Channel.PHONE_CALL
    return ContactOut(
        id=row.id,
        f_id=row.external_id,
        name=row.name,
        contact=row.contact,
        status=row.status,
        context=row.context,
        retries=row.retries,
        has_follow_up=row.follow_up,
        call_count=row.calls if phone else None,
        billed_duration=row.billed_seconds if phone else None,
        last_call_at=local_text(row.last_call_at, campaign.config),
        extracted_data={**row.input_variables, **row.extracted},
        tags=row.tags,
    )


@router.get(
    "/campaigns/{id}/contacts",
    response_model=ContactsResponse,
    responses={**_NOT_FOUND, 400: {"model": ApiErrorBody, "description": "Invalid input"}},
)
def list_contacts(
    id: RowId,
    caller: CallerDep,
    store: StoreDep,
    status: _STATUSES | None = None,
    pageSize: Annotated[int, Query(ge=1, le=100)] = 50,
    pageIndex: Annotated[int, Query(ge=0, le=25_000)] = 0,
) -> ContactsResponse:
    """The campaign's contacts in the order they were added, `pageSize` a page; `total_count` counts them all."""
    with store.read() as tx:
        campaign = campaign_of(tx, caller.business_id, id)
        total = q.count_contacts(tx, id, status)
        rows, has_next = q.contact_page(tx, id, status, pageIndex * pageSize, pageSize)
    return ContactsResponse(
        total_count=total,
        contacts=[contact_out(row, campaign) for row in rows],
        pagination=OffsetPagination(
            has_next=has_next,
            has_previous=pageIndex > 0,
            next_page=pageIndex + 1 if has_next else None,
            previous_page=pageIndex - 1 if pageIndex > 0 else None,
        ),
    )


def _variables(data: dict[str, Any] | None) -> dict[str, str] | None:
    # Stored as the import stores extra columns: text values.
    if data is None:
        return None
    return {str(key): value if isinstance(value, str) else json.dumps(value) for key, value in data.items()}


@router.post(
    "/campaigns/{id}/contacts",
    response_model=ContactBatchResponse,
    status_code=201,
    responses={
        **_NOT_FOUND,
        400: {"model": ApiErrorBody, "description": "Invalid batch"},
        409: {"model": ApiErrorBody, "description": "CAMPAIGN_FINISHED"},
    },
)
def add_contacts(id: RowId, body: ContactBatchIn, caller: CallerDep, store: StoreDep) -> ContactBatchResponse:
    """Add up to 1000 contacts; each item succeeds or fails on its own and is reported by its index."""
    with store.read() as tx:
        campaign_of(tx, caller.business_id, id)
    items = [
        engine.BatchItem(
            contact=item.contact,
            name=(item.name or "").strip(),
            context=(item.context or "").strip(),
            external_id=(item.f_id or "").strip() or None,
            input_variables=_variables(item.extracted_data),
        )
        for item in body.contacts
    ]
    try:
        results = engine.add_contact_batch(store, id, items, body.if_duplicate, RealClock().now())
    except engine.CampaignFinished:
        raise ApiError(409, "CAMPAIGN_FINISHED", f"campaign {id} is finished and read-only") from None
    except ValueError as error:  # a campaign whose time zone names no phone region (campaign files only)
        raise ApiError(400, "INVALID_REQUEST", str(error)) from None
    q.forget_kept(id)
    counts = {"created": 0, "updated": 0, "skipped_duplicate": 0, "failed": 0}
    for result in results:
        counts[result.status] += 1
    return ContactBatchResponse(
        success=True,
        summary=BatchSummary(**counts),
        results=[
            BatchItemOut(
                index=result.index,
                status=result.status,
                id=None if result.contact_id is None else str(result.contact_id),
                contact=result.contact,
                error=result.error,
                message=result.detail or None,
            )
            for result in results
        ],
    )


@router.get("/campaigns/{id}/contacts/{contact_id}", response_model=ContactResponse, responses=_NOT_FOUND)
def get_contact(id: RowId, contact_id: RowId, caller: CallerDep, store: StoreDep) -> ContactResponse:
    """One contact of the campaign."""
    with store.read() as tx:
        campaign = campaign_of(tx, caller.business_id, id)
        row = q.contact_by_id(tx, id, contact_id)
    if row is None:
        raise not_found("contact", "CONTACT_NOT_FOUND")
    return ContactResponse(success=True, contact=contact_out(row, campaign))


@router.delete(
    "/campaigns/{id}/contacts/{contact_id}",
    status_code=204,
    response_class=Response,
    responses={**_NOT_FOUND, 409: {"model": ApiErrorBody, "description": "CONTACT_NOT_DELETABLE"}},
)
def delete_contact(id: RowId, contact_id: RowId, caller: CallerDep, store: StoreDep) -> Response:
    """Remove a contact that was never called or messaged (one already contacted keeps its history: 409)."""
    with store.read() as tx:
        if campaign_of(tx, caller.business_id, id).status is CampaignStatus.FINISHED:
            raise ApiError(409, "CAMPAIGN_FINISHED", f"campaign {id} is finished and read-only")
    with store.tx() as tx:
        outcome = q.remove_contact(tx, id, contact_id)
    q.forget_kept(id)
    if outcome == "missing":
        raise not_found("contact", "CONTACT_NOT_FOUND")
    if outcome == "kept":
        raise ApiError(
            409,
            "CONTACT_NOT_DELETABLE",
            "the contact has been called or messaged, or an attempt is in flight; its history stays in the exports",
        )
    return Response(status_code=204)
