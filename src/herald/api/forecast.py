"""`GET /campaigns/{id}/forecast` (Herald's own): the campaign run to its end by the simulator on a copy."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from herald.api.auth import CallerDep, StoreDep
from herald.api.campaign_views import RowId
from herald.api.errors import not_found
from herald.api.models import AUTH_RESPONSES, ApiErrorBody, Strict
from herald.engine.clock import RealClock
from herald.engine.forecast import MAX_RUNS, forecast_campaign
from herald.store.queries import NotFound

router = APIRouter(tags=["forecast"], responses=AUTH_RESPONSES)


class SpreadOut(Strict):
    """One figure over the runs."""

    mean: float
    min: float
    max: float


class ByAnsweredBy(Strict):
    """A figure for each kind of answer."""

    human: SpreadOut
    machine: SpreadOut
    unknown: SpreadOut


class PhoneForecast(Strict):
    """Phone campaigns: the calls the rest of the campaign makes and what they bill."""

    calls: SpreadOut
    answered_calls: ByAnsweredBy
    billed_minutes: ByAnsweredBy


class WhatsAppForecast(Strict):
    """WhatsApp campaigns: the messages the rest of the campaign sends and what comes of them."""

    messages: SpreadOut
    delivered: SpreadOut
    read: SpreadOut
    replies: SpreadOut


class CurrentFigures(Strict):
    """The campaign as it stands."""

    reach: int
    conversions: int


class ForecastOut(Strict):
    """A campaign's forecast. Counts of calls, messages and minutes are what remains to be done; reach and
    conversions are the campaign's totals at its end."""

    campaign_id: int
    channel: Literal["phone_call", "whatsapp"]
    status: str = Field(description="The campaign's status now")
    start: str = Field(description="When the simulated runs start (ISO 8601)")
    seed: int
    runs: int
    finished_runs: int = Field(description="Runs in which the campaign finished within a year")
    contacts: int
    remaining: int = Field(description="Contacts still owed an attempt (or in flight)")
    simulated_contacts: int = Field(
        description="Contacts simulated: all, or a seeded sample above 2,000 (phone) or 250 (WhatsApp)"
    )
    sampled: bool
    outcome_mix: Literal["campaign", "simulator defaults"]
    current: CurrentFigures
    reach: SpreadOut
    conversions: SpreadOut
    days_to_finish: SpreadOut | None = Field(description="Over the runs that finished; null if none did")
    phone: PhoneForecast | None
    whatsapp: WhatsAppForecast | None


class ForecastResponse(Strict):
    """The forecast of one campaign."""

    success: bool
    forecast: ForecastOut


@router.get(
    "/campaigns/{campaign_id}/forecast",
    response_model=ForecastResponse,
    responses={
        400: {"model": ApiErrorBody, "description": "Invalid runs or seed"},
        404: {"model": ApiErrorBody, "description": "Campaign not found"},
    },
)
def get_forecast(
    campaign_id: RowId,
    caller: CallerDep,
    store: StoreDep,
    runs: Annotated[int, Query(ge=1, le=MAX_RUNS, description="Simulated runs (seeds seed, seed+1, …)")] = 1,
    seed: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="Seed of the first run: the same seed gives the same forecast")
    ] = 0,
) -> ForecastResponse:
    """Run the campaign's configuration and contacts as they stand to the end with the simulator on a virtual
    clock, on a temporary copy (the campaign is not changed): expected reach, conversions, calls and billed minutes
    by answered_by (WhatsApp: messages, delivered, read, replies) and days to finish, as mean, min and max."""
    try:
        result = forecast_campaign(
            store, campaign_id, RealClock().now(), runs=runs, seed=seed, business_id=caller.business_id
        )
    except NotFound:
        raise not_found("campaign") from None
    return ForecastResponse(success=True, forecast=ForecastOut.model_validate(result.as_json()))
