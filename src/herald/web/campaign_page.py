"""The campaign page, `/campaigns/{id}`: the Overview tab, its lifecycle buttons and its live counters.

The other tabs are `campaign_tabs` (Contacts, Calls or Messages) and `campaign_results` (Analytics with the
Download CSV controls, Forecast); `router()` here serves them all. Every number comes from the services the REST API
and the CLI use (the analytics snapshot, `herald campaign show`'s progress, `engine.campaigns.act`), so the console
never counts differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from herald.domain import lifecycle
from herald.domain.scheduling import next_open
from herald.domain.statuses import CampaignStatus, Channel
from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.store import api_queries as q
from herald.store.queries import Conflict, Store
from herald.store.records import Campaign
from herald.web.auth import FormDep, UserDep, store_of
from herald.web.campaign_list import CHANNEL_NAMES, CampaignRow, campaign_row
from herald.web.scope import CampaignDep
from herald.web.templating import render

#: The buttons of the Overview, in the order shown: (action, accessible name, past tense for the notice).
ACTIONS = (
    (lifecycle.Action.ACTIVATE, "Activate", "activated"),
    (lifecycle.Action.PAUSE, "Pause", "paused"),
    (lifecycle.Action.RESUME, "Resume", "resumed"),
    (lifecycle.Action.ARCHIVE, "Archive", "archived"),
)
#: While a campaign is in one of these, its numbers move: the page polls them.
RUNNING = frozenset({CampaignStatus.ACTIVE, CampaignStatus.COOLDOWN, CampaignStatus.INACTIVE})


def available_actions(status: CampaignStatus, archived: bool) -> list[tuple[str, str]]:
    """(action, button name) of each lifecycle action that is allowed now and changes something."""
    found = []
    for action, name, _ in ACTIONS:
        try:
            result = lifecycle.apply_action(status, archived, action)
        except lifecycle.InvalidTransition:
            continue
        if result.changed:
            found.append((action.value, name))
    return found


def tabs(campaign: Campaign) -> list[tuple[str, str]]:
    """The tab strip of a campaign's pages: (accessible name, URL)."""
    base = f"/campaigns/{campaign.id}"
    attempts = (
        ("Calls", f"{base}/calls") if campaign.channel is Channel.PHONE_CALL else ("Messages", f"{base}/messages")
    )
    return [
        ("Overview", base),
        ("Contacts", f"{base}/contacts"),
        attempts,
        ("Analytics", f"{base}/analytics"),
        ("Forecast", f"{base}/forecast"),
    ]


def local_time(value: datetime | None, campaign: Campaign) -> str:
    """An instant in the campaign's time zone, to the minute, or "" for none."""
    return value.astimezone(campaign.config.zone).strftime("%Y-%m-%d %H:%M %Z") if value is not None else ""


@dataclass(frozen=True, slots=True)
class Live:
    """The Overview's moving part: status, counters, cycle and calling hours, as of `as_of`."""

    campaign: Campaign
    row: CampaignRow
    status_counts: list[tuple[str, int]]
    in_flight: int
    attempts: int  # calls or messages so far
    actions: list[tuple[str, str]]
    running: bool
    max_cycles: int
    next_cycle_at: str
    calling_open: bool
    next_window: str
    next_due: str
    started: str
    as_of: str


def live(store: Store, campaign_id: int) -> Live:
    """The Overview's numbers, read in one snapshot (the progress of `herald campaign show`)."""
    now = RealClock().now()
    with store.read() as tx:
        campaign = tx.campaign(campaign_id)
        row = campaign_row(tx, campaign)
        counts = tx.status_counts(campaign_id)
        in_flight, next_due = tx.inflight_count(campaign_id), tx.next_due_at(campaign_id)
        if campaign.channel is Channel.PHONE_CALL:
            attempts = q.count_calls(tx, campaign_id, q.CallFilters())
        else:
            attempts = q.message_counts(tx, campaign_id)["messages"]
    config = campaign.config
    opens = next_open(config.scheduling.windows() if config.scheduling else None, config.zone, now)
    return Live(
        campaign=campaign,
        row=row,
        status_counts=sorted(counts.items(), key=lambda item: (-item[1], item[0])),
        in_flight=in_flight,
        attempts=attempts,
        actions=available_actions(campaign.status, campaign.archived),
        running=campaign.status in RUNNING,
        max_cycles=config.cycles.max_iterations if config.cycles.enabled else 1,
        next_cycle_at=local_time(campaign.next_cycle_at, campaign),
        calling_open=opens == now,
        next_window=local_time(opens, campaign),
        next_due=local_time(next_due, campaign),
        started=local_time(campaign.started_at, campaign),
        as_of=local_time(now, campaign),
    )


def _overview(request: Request, campaign: Campaign, status: int = 200, notice: str = "", alert: str = "") -> Response:
    found = live(store_of(request), campaign.id)
    return render(
        request,
        "campaign/overview.html",
        status,
        campaign=found.campaign,
        tabs=tabs(campaign),
        live=found,
        channels=CHANNEL_NAMES,
        notice=notice,
        alert=alert,
    )


def _act(store: Store, campaign_id: int, action: str) -> str:
    """ "" when the action was applied, else why not (the campaign changed meanwhile, e.g. in another process)."""
    try:
        engine.act(store, campaign_id, action, RealClock().now())
    except lifecycle.InvalidTransition as error:
        return (
            f"The campaign is {error.current_status} now (it may have changed since this page was shown), "
            f"so it cannot be {_PAST[action]}. The buttons below are what can be done now."
        )
    except Conflict:
        return "Another change to this campaign was being saved at the same moment. Look at its status and try again."
    return ""


_PAST = {action.value: past for action, _, past in ACTIONS}


def router() -> APIRouter:
    """Every page of a campaign: this module's Overview, plus `campaign_tabs` and `campaign_results`."""
    from herald.web import campaign_results, campaign_tabs

    routes = APIRouter(include_in_schema=False)

    @routes.get("/campaigns/{id:int}", response_class=HTMLResponse)
    async def overview(request: Request, user: UserDep, campaign: CampaignDep, done: str = "") -> Response:
        """Status, the lifecycle buttons valid now, counters that update while the campaign runs, cycles, hours."""
        notice = f"Campaign {_PAST[done]}." if done in _PAST else ""
        return await run_in_threadpool(_overview, request, campaign, 200, notice)

    @routes.get("/campaigns/{id:int}/live", response_class=HTMLResponse)
    async def live_part(request: Request, user: UserDep, campaign: CampaignDep) -> Response:
        """The Overview's moving part alone, which the page's script fetches every 2 seconds."""
        found = await run_in_threadpool(live, store_of(request), campaign.id)
        return render(request, "campaign/live.html", campaign=found.campaign, live=found, channels=CHANNEL_NAMES)

    @routes.post("/campaigns/{id:int}/lifecycle")
    async def act(request: Request, user: UserDep, campaign: CampaignDep, form: FormDep) -> Response:
        """Apply the button's action; a conflict is shown on the Overview (409), never as a server error."""
        action = str(form.get("action", ""))
        if action not in _PAST:
            return await run_in_threadpool(_overview, request, campaign, 400, "", "Unknown action.")
        problem = await run_in_threadpool(_act, store_of(request), campaign.id, action)
        if problem:
            return await run_in_threadpool(_overview, request, campaign, 409, "", problem)
        return RedirectResponse(f"/campaigns/{campaign.id}?done={action}", status_code=303)

    routes.include_router(campaign_tabs.router())
    routes.include_router(campaign_results.router())
    return routes
