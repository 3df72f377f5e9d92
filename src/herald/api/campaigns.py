"""`/campaigns`: Altur's campaign endpoints (list, create, detail, update, lifecycle actions) over the caller's
business; another business's campaign is answered exactly as a missing one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from herald.api.auth import CallerDep, StoreDep
from herald.api.campaign_models import (
    CampaignCreateIn,
    CampaignDetailResponse,
    CampaignsResponse,
    CampaignUpdateIn,
    ConflictBody,
    CursorPagination,
)
from herald.api.campaign_views import (
    RowId,
    campaign_detail,
    campaign_of,
    campaign_out,
    check_range,
    decode_cursor,
    encode_cursor,
    instant,
)
from herald.api.errors import ApiError
from herald.api.models import AUTH_RESPONSES, ApiErrorBody
from herald.domain import lifecycle
from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.store import api_queries as q
from herald.store.queries import Conflict

router = APIRouter(tags=["campaigns"], responses=AUTH_RESPONSES)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorBody, "description": "No such campaign in your business"}
}
_INVALID: dict[int | str, dict[str, Any]] = {400: {"model": ApiErrorBody, "description": "Invalid input"}}
_ACTIONS = tuple(action.value for action in lifecycle.Action)


def _detail(store: StoreDep, business_id: int, campaign_id: int) -> CampaignDetailResponse:
    with store.read() as tx:
        return CampaignDetailResponse(
            success=True, campaign=campaign_detail(tx, campaign_of(tx, business_id, campaign_id))
        )


@router.get("/campaigns", response_model=CampaignsResponse, responses=_INVALID)
def list_campaigns(
    caller: CallerDep,
    store: StoreDep,
    agentId: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["pending", "ready", "active", "inactive", "cooldown", "finished"] | None = None,
    integration: Literal["phone_call", "whatsapp"] | None = None,
    startDate: Annotated[str | None, Query(max_length=64)] = None,
    endDate: Annotated[str | None, Query(max_length=64)] = None,
    createdAfter: Annotated[str | None, Query(max_length=64)] = None,
    createdBefore: Annotated[str | None, Query(max_length=64)] = None,
    startedAfter: Annotated[str | None, Query(max_length=64)] = None,
    startedBefore: Annotated[str | None, Query(max_length=64)] = None,
    endedAfter: Annotated[str | None, Query(max_length=64)] = None,
    endedBefore: Annotated[str | None, Query(max_length=64)] = None,
    archived: bool = False,
    pageSize: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> CampaignsResponse:
    """The business's campaigns, newest first, filtered; cursor pagination (`next_cursor` / `previous_cursor`)."""
    created_after = instant("createdAfter", createdAfter) or instant("startDate", startDate)
    created_before = instant("createdBefore", createdBefore, end_of_day=True) or instant(
        "endDate", endDate, end_of_day=True
    )
    filters = q.CampaignFilters(
        agent_public_id=agentId,
        status=status,
        channel=integration,
        created_after=created_after,
        created_before=created_before,
        started_after=instant("startedAfter", startedAfter),
        started_before=instant("startedBefore", startedBefore, end_of_day=True),
        ended_after=instant("endedAfter", endedAfter),
        ended_before=instant("endedBefore", endedBefore, end_of_day=True),
        include_archived=archived,
    )
    check_range("createdAfter", filters.created_after, "createdBefore", filters.created_before)
    check_range("startedAfter", filters.started_after, "startedBefore", filters.started_before)
    check_range("endedAfter", filters.ended_after, "endedBefore", filters.ended_before)
    after_id = before_id = None
    if cursor:
        direction, campaign_id = decode_cursor(cursor)
        after_id, before_id = (campaign_id, None) if direction == "n" else (None, campaign_id)
    with store.read() as tx:
        total = q.count_campaigns(tx, caller.business_id, filters)
        page = q.campaign_page(tx, caller.business_id, filters, pageSize, after_id=after_id, before_id=before_id)
        agents = q.agent_names(tx, [c.agent_id for c in page.items if c.agent_id is not None])
    items = page.items
    return CampaignsResponse(
        total_count=total,
        campaigns=[campaign_out(campaign, agents) for campaign in items],
        pagination=CursorPagination(
            has_next=page.has_next,
            has_previous=page.has_previous,
            next_cursor=encode_cursor("n", items[-1].id) if page.has_next and items else None,
            previous_cursor=encode_cursor("p", items[0].id) if page.has_previous and items else None,
        ),
    )


@router.post(
    "/campaigns",
    response_model=CampaignDetailResponse,
    status_code=201,
    responses={
        400: {"model": ApiErrorBody, "description": "Invalid input or integration of the other type"},
        404: {"model": ApiErrorBody, "description": "AGENT_NOT_FOUND or INTEGRATION_NOT_FOUND"},
    },
)
def create_campaign(body: CampaignCreateIn, caller: CallerDep, store: StoreDep) -> CampaignDetailResponse:
    """Create a campaign on one of the business's agents and that agent's integration of `integration_type`."""
    settings = body.model_dump(
        mode="json", exclude_unset=True, exclude={"agent_id", "integration_id", "integration_type"}
    )
    try:
        campaign_id = engine.create_from_agent(
            store,
            caller.business_id,
            body.agent_id,
            body.integration_id,
            body.integration_type,
            settings,
            RealClock().now(),
        )
    except engine.AgentNotFound as error:
        raise ApiError(404, "AGENT_NOT_FOUND", str(error)) from None
    except engine.IntegrationNotFound as error:
        raise ApiError(404, "INTEGRATION_NOT_FOUND", str(error)) from None
    except engine.WrongIntegrationType as error:
        raise ApiError(400, "INVALID_INTEGRATION_TYPE", str(error)) from None
    except engine.InvalidSettings as error:
        raise ApiError(400, error.key, str(error)) from None
    return _detail(store, caller.business_id, campaign_id)


@router.get("/campaigns/{id}", response_model=CampaignDetailResponse, responses=_NOT_FOUND)
def get_campaign(id: RowId, caller: CallerDep, store: StoreDep) -> CampaignDetailResponse:
    """One campaign with its agent, integration, cycles and analytics."""
    return _detail(store, caller.business_id, id)


@router.patch(
    "/campaigns/{id}",
    response_model=CampaignDetailResponse,
    responses={
        **_NOT_FOUND,
        400: {"model": ApiErrorBody, "description": "Invalid input, IMMUTABLE_FIELD (with `field`), …"},
        409: {"model": ApiErrorBody, "description": "CAMPAIGN_FINISHED"},
    },
)
def patch_campaign(
    id: RowId,
    body: CampaignUpdateIn,
    caller: CallerDep,
    store: StoreDep,
) -> CampaignDetailResponse:
    """Change some settings of a campaign; immutable fields and finished campaigns are refused."""
    with store.read() as tx:
        campaign_of(tx, caller.business_id, id)
    changes = body.model_dump(mode="json", exclude_unset=True)
    try:
        engine.update_settings(store, id, changes)
    except engine.InvalidSettings as error:
        if error.field:
            raise ApiError(400, error.key, str(error), field=error.field) from None
        raise ApiError(400, error.key, str(error)) from None
    except engine.CampaignFinished:
        raise ApiError(409, "CAMPAIGN_FINISHED", f"campaign {id} is finished and read-only") from None
    except Conflict as error:
        raise ApiError(409, "INVALID_STATUS", str(error)) from None
    return _detail(store, caller.business_id, id)


@router.post(
    "/campaigns/{id}/{action}",
    response_model=CampaignDetailResponse,
    responses={
        **_NOT_FOUND,
        400: {"model": ApiErrorBody, "description": "UNKNOWN_ACTION"},
        409: {"model": ConflictBody, "description": "INVALID_STATUS_TRANSITION"},
    },
)
def campaign_action(
    id: RowId,
    action: Annotated[str, Path(description="activate, pause, resume or archive")],
    caller: CallerDep,
    store: StoreDep,
) -> CampaignDetailResponse:
    """Apply a lifecycle action (activate, pause, resume, archive) as the reference's table allows."""
    if action not in _ACTIONS:
        raise ApiError(400, "UNKNOWN_ACTION", f"unknown action {action[:40]!r}; actions: {', '.join(_ACTIONS)}")
    with store.read() as tx:
        campaign_of(tx, caller.business_id, id)
    try:
        engine.act(store, id, action, RealClock().now())
    except lifecycle.InvalidTransition as error:
        raise _conflict(str(error), error.current_status.value, [s.value for s in error.valid_targets]) from None
    except Conflict as error:
        with store.read() as tx:
            current = campaign_of(tx, caller.business_id, id).status
        targets = [s.value for s in lifecycle.valid_targets(current)]
        raise _conflict(str(error), current.value, targets) from None
    return _detail(store, caller.business_id, id)


def _conflict(message: str, current: str, targets: list[str]) -> ApiError:
    return ApiError(409, "INVALID_STATUS_TRANSITION", message, current_status=current, valid_targets=targets)
