"""Calls: `/campaigns/{id}/calls` (a campaign's calls, page by page), `/call/{id}` (one call by its `cll_…` id) and
`/call/{id}/recording` (its recording)."""

from __future__ import annotations

import struct
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import RedirectResponse

from herald.api import recordings
from herald.api.auth import CallerDep, StoreDep
from herald.api.campaign_models import CallContactOut, CallOut, CallsPagination, CampaignCallOut, CampaignCallsResponse
from herald.api.campaign_views import RowId, campaign_of, check_range, instant
from herald.api.errors import ApiError, not_found
from herald.api.models import AUTH_RESPONSES, ApiErrorBody
from herald.store import api_queries as q

router = APIRouter(tags=["calls"], responses=AUTH_RESPONSES)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorBody, "description": "No such call (or campaign) in your business"}
}
CallId = Annotated[str, Path(max_length=64, description="The call's `cll_…` id")]

#: The longest silence served for a simulated call's recording (the simulator records no audio).
_SIMULATED_SECONDS = 5


def _contact(row: Any) -> CallContactOut:
    return CallContactOut(
        id=row.contact_id,
        f_id=row.contact_external_id,
        name=row.contact_name,
        phone_number=row.contact_number,
        status=row.contact_status,
    )


def _recording_path(row: Any) -> str | None:
    # Herald's own recording endpoint, as Altur gives it; the stored absolute URL uses HERALD_PUBLIC_URL.
    return f"/api/v1.0/call/{row.public_id}/recording" if row.recording_url else None


def _call_fields(row: Any) -> dict[str, Any]:
    # What the reference's `CampaignCall` and `Call` share, from one calls row joined with its contact.
    return {
        "id": row.public_id,
        "type": row.type,
        "status": row.status,
        "answered_by": row.answered_by or None,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "ended_by": row.ended_by,
        "ended_reason": row.ended_reason,
        "duration": row.duration,
        "contact": _contact(row),
        "extracted_data": dict(row.extracted or {}),
        "tags": list(row.tags or []),
        "recording_url": _recording_path(row),
    }


def campaign_call(row: Any) -> CampaignCallOut:
    """The reference's `CampaignCall`."""
    return CampaignCallOut(**_call_fields(row), billed_duration=row.billed_seconds)


@router.get(
    "/campaigns/{id}/calls",
    response_model=CampaignCallsResponse,
    responses={**_NOT_FOUND, 400: {"model": ApiErrorBody, "description": "Invalid input"}},
)
def list_calls(
    id: RowId,
    caller: CallerDep,
    store: StoreDep,
    status: Literal["ended", "failed", "busy", "no-answer", "in-progress"] | None = None,
    answeredBy: Literal["human", "machine", "unknown"] | None = None,
    startDate: Annotated[str | None, Query(max_length=64)] = None,
    endDate: Annotated[str | None, Query(max_length=64)] = None,
    pageSize: Annotated[int, Query(ge=1, le=100)] = 50,
    pageIndex: Annotated[int, Query(ge=0, le=25_000)] = 0,
) -> CampaignCallsResponse:
    """The campaign's calls in the order they were placed, `pageSize` a page (`page_index` from 0)."""
    filters = q.CallFilters(
        status=status,
        answered_by=answeredBy,
        created_after=instant("startDate", startDate),
        created_before=instant("endDate", endDate, end_of_day=True),
    )
    check_range("startDate", filters.created_after, "endDate", filters.created_before)
    with store.read() as tx:
        campaign_of(tx, caller.business_id, id)
        total = q.count_calls(tx, id, filters)
        rows = q.call_page(tx, id, filters, pageIndex * pageSize, pageSize)
    has_next = (pageIndex + 1) * pageSize < total
    return CampaignCallsResponse(
        total_count=total,
        calls=[campaign_call(row) for row in rows],
        pagination=CallsPagination(
            page_index=pageIndex,
            page_size=pageSize,
            has_next=has_next,
            has_previous=pageIndex > 0,
            next_page=pageIndex + 1 if has_next else None,
            previous_page=pageIndex - 1 if pageIndex > 0 else None,
        ),
    )


@router.get("/call/{id}", response_model=CallOut, responses=_NOT_FOUND)
def get_call(id: CallId, caller: CallerDep, store: StoreDep) -> CallOut:
    """One call of the business, by its `cll_…` id."""
    with store.read() as tx:
        found = q.call_by_public_id(tx, caller.business_id, id)
    if found is None:
        raise not_found("call")
    row, campaign = found
    # `billable_duration` is the reference `Call`'s name for what `CampaignCall` calls `billed_duration`.
    return CallOut(**_call_fields(row), billable_duration=row.billed_seconds, campaign_id=campaign.id)


def silence_wav(seconds: int) -> bytes:
    """A WAV file of `seconds` of silence (8 kHz, 8-bit mono): the simulator's stand-in for a recording."""
    frames = 8000 * max(0, seconds)
    header = b"RIFF" + struct.pack("<I", 36 + frames) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
    return header + fmt + b"data" + struct.pack("<I", frames) + b"\x80" * frames


@router.get(
    "/call/{id}/recording",
    responses={
        **_NOT_FOUND,
        200: {"content": {"audio/wav": {}}, "description": "The recording (simulated calls: silence)"},
        302: {"description": "Redirect to the provider's recording (providers whose recordings need no credentials)"},
        502: {"model": ApiErrorBody, "description": "The provider did not hand over the recording"},
    },
    response_class=Response,
)
def get_recording(id: CallId, caller: CallerDep, store: StoreDep) -> Response:
    """The call's recording: streamed from the provider with its credentials (Twilio), a redirect to the provider's
    file (providers that need none), or (simulated calls) a short silent WAV."""
    with store.read() as tx:
        found = q.call_by_public_id(tx, caller.business_id, id)
        if found is None:
            raise not_found("call")
        row, _campaign = found
        url = q.provider_recording_url(tx, row.provider, row.provider_call_id) if row.recording_url else ""
    if not row.recording_url:
        raise ApiError(404, "NOT_FOUND", f"call {id} has no recording")
    if url.startswith(("https://", "http://")):
        # Providers whose recordings need their credentials are proxied; the others' are a redirect.
        auth = recordings.credentials(row.provider, _campaign.config.provider_options, url)
        return RedirectResponse(url, status_code=302) if auth is None else recordings.stream(url, auth)
    if row.provider == "simulator":
        return Response(silence_wav(min(row.duration, _SIMULATED_SECONDS)), media_type="audio/wav")
    raise ApiError(404, "NOT_FOUND", f"the provider of call {id} gave no recording file")
