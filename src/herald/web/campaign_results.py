"""A campaign's results in the console: the Analytics tab with one Download CSV control per export, the Forecast
tab, and the session-authenticated downloads (exports, recordings).

Nothing is computed twice: the downloads *are* the REST API's handlers (`api.exports.get_export`,
`api.calls.get_recording`) called for the signed-in user's business, so a CSV is byte for byte what `herald export`
writes; Analytics is `analytics.campaign.campaign_reports` (the figures and charts of `herald analyze --report`);
Forecast is the handler of `GET /campaigns/{id}/forecast`. Analytics and Forecast take seconds on a large campaign,
so they go through `web.computed` (kept per campaign state, computed in the background).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from herald.analytics.campaign import campaign_reports
from herald.analytics.report import PLOTLY_CONFIG
from herald.api import calls as api_calls
from herald.api import exports as api_exports
from herald.api import forecast as api_forecast
from herald.api.auth import Caller
from herald.api.errors import ApiError
from herald.domain.statuses import CampaignStatus, Channel
from herald.exports.formats import available
from herald.exports.kinds import ExportKind
from herald.store import api_queries as q
from herald.store.inspect import final_count
from herald.store.queries import Store
from herald.store.records import Campaign
from herald.web import computed
from herald.web.auth import UserDep, WebError, WebUser, store_of
from herald.web.campaign_page import local_time, tabs
from herald.web.campaign_queries import message_count
from herald.web.scope import NOT_FOUND, CampaignDep
from herald.web.templating import render

#: While a campaign may still change on its own, its figures are recomputed at most this often (seconds).
ANALYTICS_EVERY = 10
FORECAST_EVERY = 300
_SETTLED = frozenset({CampaignStatus.PENDING, CampaignStatus.READY, CampaignStatus.FINISHED})


def _caller(user: WebUser, campaign: Campaign) -> Caller:
    """The signed-in user as the REST API's caller (no API key: key id 0), scoped to the same business."""
    return Caller(business_id=user.business_id, business_public_id=campaign.business_public_id, key_id=0)


def _call_of(store: Store, user: WebUser, campaign: Campaign, call_id: str) -> bool:
    """Whether the call is one of this campaign's: a campaign's URL never serves another campaign's recording."""
    with store.read() as tx:
        found = q.call_by_public_id(tx, user.business_id, call_id)
    return found is not None and found[1].id == campaign.id


def fingerprint(store: Store, campaign_id: int, every: int) -> tuple[Any, ...]:
    """Cheap indexed counts that change when the campaign's results do, and, while it may change on its own
    (active, cooldown, paused with calls still ending), the current `every`-second period."""
    with store.read() as tx:
        campaign = tx.campaign(campaign_id)
        attempts = (
            q.count_calls(tx, campaign_id, q.CallFilters())
            if campaign.channel is Channel.PHONE_CALL
            else message_count(tx, campaign_id)
        )
        counts = (tx.contact_count(campaign_id), final_count(tx, campaign_id), attempts)
    period = None if campaign.status in _SETTLED else int(time.time() // every)
    return (campaign.status.value, campaign.archived, campaign.cycle_iteration, counts, period)


def _figure(kind: str, store: Store, campaign_id: int, every: int, compute: Any) -> computed.Computed:
    return computed.figure((kind, id(store), campaign_id), fingerprint(store, campaign_id, every), compute)


def _figure_json(figure: Any) -> str:
    # Inside <script type="application/json">: "</" would end the element early; JSON allows the escaped form.
    return json.dumps(figure, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _analytics(store: Store, campaign: Campaign) -> computed.Computed:
    return _figure("analytics", store, campaign.id, ANALYTICS_EVERY, lambda: campaign_reports(store, campaign.id))


def _forecast(store: Store, user: WebUser, campaign: Campaign) -> computed.Computed:
    def compute() -> Any:
        return api_forecast.get_forecast(campaign.id, _caller(user, campaign), store, runs=1, seed=0).forecast

    return _figure("forecast", store, campaign.id, FORECAST_EVERY, compute)


def reload_after(found: computed.Computed, campaign: Campaign) -> int | None:
    """Seconds after which a figure's page reloads itself (a `<meta http-equiv="refresh">`), or None: while its
    first value is computed, and while a newer value of a settled campaign is (that one is final, so the page
    stops reloading once it shows it; a running campaign's figures are always on their way, so its pages never do)."""
    if found.pending:
        return 2
    return 5 if found.stale and campaign.status in _SETTLED else None


def _forecast_dates(forecast: Any, campaign: Campaign) -> dict[str, Any]:
    """The start and (mean) finish of a forecast in the campaign's time, and its total billed minutes."""
    if forecast is None:
        return {"start": "", "finish": "", "billed_minutes": 0.0}
    start = datetime.fromisoformat(forecast.start)
    days = forecast.days_to_finish
    finish = local_time(start + timedelta(days=days.mean), campaign) if days is not None else ""
    billed = sum(s["mean"] for s in forecast.phone.billed_minutes.model_dump().values()) if forecast.phone else 0.0
    return {"start": local_time(start, campaign), "finish": finish, "billed_minutes": billed}


def _when(found: computed.Computed, campaign: Campaign) -> str:
    return local_time(found.computed_at, campaign) if found.computed_at else ""


def router() -> APIRouter:
    """`/campaigns/{id}/analytics`, `/campaigns/{id}/exports/{kind}.csv`, `/campaigns/{id}/forecast`,
    `/campaigns/{id}/calls/{call_id}/recording`."""
    routes = APIRouter(include_in_schema=False)

    @routes.get("/campaigns/{id:int}/analytics", response_class=HTMLResponse)
    async def analytics(request: Request, user: UserDep, campaign: CampaignDep) -> HTMLResponse:
        """Status breakdown, reach and conversion, cost by answered_by with billing anomalies, sendout funnel,
        clicks by button, activity over time; one Download CSV control per export."""
        found = await run_in_threadpool(_analytics, store_of(request), campaign)
        return render(
            request,
            "campaign/analytics.html",
            campaign=campaign,
            tabs=tabs(campaign),
            exports=[kind.value for kind in available(campaign)],
            found=found,
            reload_after=reload_after(found, campaign),
            computed_at=_when(found, campaign),
            figure_json=_figure_json,
            plotly_config=json.dumps(PLOTLY_CONFIG),
        )

    @routes.get("/campaigns/{id:int}/exports/{kind}.csv")
    def download(request: Request, user: UserDep, campaign: CampaignDep, kind: str) -> Response:
        """An export as CSV, streamed as it is read: the bytes of `herald export ID KIND`."""
        if kind not in {k.value for k in ExportKind}:
            raise WebError(404, NOT_FOUND)
        try:
            response: Response = api_exports.get_export(
                campaign.id, ExportKind(kind), _caller(user, campaign), store_of(request)
            )
        except ApiError:
            raise WebError(404, f"A {campaign.channel} campaign has no {kind} export.") from None
        return response

    @routes.get("/campaigns/{id:int}/calls/{call_id}/recording")
    def recording(request: Request, user: UserDep, campaign: CampaignDep, call_id: str) -> Response:
        """A call's recording, as the REST API's recording endpoint serves it."""
        if len(call_id) > 64 or not _call_of(store_of(request), user, campaign, call_id):
            raise WebError(404, "There is no such recording.")
        try:
            response: Response = api_calls.get_recording(call_id, _caller(user, campaign), store_of(request))
        except ApiError:
            raise WebError(404, "There is no such recording.") from None
        return response

    @routes.get("/campaigns/{id:int}/forecast", response_class=HTMLResponse)
    async def forecast(request: Request, user: UserDep, campaign: CampaignDep) -> HTMLResponse:
        """Expected reach, conversions, calls (or messages), billed minutes and finish date, before activation and
        at any time: the campaign run to its end by the simulator on a copy, as `GET /campaigns/{id}/forecast`."""
        found = await run_in_threadpool(_forecast, store_of(request), user, campaign)
        return render(
            request,
            "campaign/forecast.html",
            campaign=campaign,
            tabs=tabs(campaign),
            found=found,
            reload_after=reload_after(found, campaign),
            computed_at=_when(found, campaign),
            **_forecast_dates(found.value, campaign),
        )

    return routes
