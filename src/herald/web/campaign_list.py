"""The campaign list, `/`: the business's campaigns with status, contacts, progress, reach and conversion so far.

The rows are the REST API's: the same filters and keyset pages (`store.api_queries`), the same analytics snapshot
(`analytics.snapshot`), and the `final` count of `herald campaign show`; nothing is counted differently here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from herald.analytics.snapshot import analytics
from herald.api.campaign_views import decode_cursor, encode_cursor
from herald.api.errors import ApiError
from herald.domain.statuses import CampaignStatus, Channel
from herald.store import api_queries as q
from herald.store.inspect import final_count
from herald.store.queries import Store, Tx
from herald.store.records import Campaign
from herald.web.auth import UserDep, store_of
from herald.web.templating import render

PAGE_SIZE = 25
CHANNEL_NAMES = {Channel.PHONE_CALL.value: "Phone calls", Channel.WHATSAPP.value: "WhatsApp"}


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """One line of the list."""

    id: int
    name: str
    channel: str
    status: str
    archived: bool
    contacts: int
    final: int
    reached: int
    reach_rate: float | None
    converted: int
    conversion_rate: float | None


@dataclass(frozen=True, slots=True)
class Listing:
    """A page of the list and its links."""

    rows: list[CampaignRow]
    total: int
    next_cursor: str | None
    previous_cursor: str | None


def campaign_row(tx: Tx, campaign: Campaign) -> CampaignRow:
    """A campaign's line: its analytics snapshot (the API's) and how many contacts are final."""
    numbers = analytics(tx, campaign)
    reach_key, converted_key = (
        ("contactsAnswered", "contactsConverted")
        if campaign.channel is Channel.PHONE_CALL
        else ("reached", "converted")
    )

    def count(key: str) -> int:
        return int(numbers.get(key) or 0)

    def share(key: str) -> float | None:
        value = numbers.get(f"{key}Rate")
        return None if value is None else float(value)

    return CampaignRow(
        id=campaign.id,
        name=campaign.name,
        channel=campaign.channel.value,
        status=campaign.status.value,
        archived=campaign.archived,
        contacts=count("contacts"),
        final=final_count(tx, campaign.id),
        reached=count(reach_key),
        reach_rate=share(reach_key),
        converted=count(converted_key),
        conversion_rate=share(converted_key),
    )


def listing(store: Store, business_id: int, filters: q.CampaignFilters, cursor: str | None) -> Listing:
    """One page of the business's campaigns, newest first (`cursor` as the API hands them out)."""
    after_id = before_id = None
    if cursor:
        try:
            direction, campaign_id = decode_cursor(cursor)
        except ApiError:  # a hand-edited link: show the first page
            direction, campaign_id = "", 0
        if direction == "n":
            after_id = campaign_id
        elif direction == "p":
            before_id = campaign_id
    with store.read() as tx:
        total = q.count_campaigns(tx, business_id, filters)
        page = q.campaign_page(tx, business_id, filters, PAGE_SIZE, after_id=after_id, before_id=before_id)
        rows = [campaign_row(tx, campaign) for campaign in page.items]
    return Listing(
        rows=rows,
        total=total,
        next_cursor=encode_cursor("n", rows[-1].id) if page.has_next and rows else None,
        previous_cursor=encode_cursor("p", rows[0].id) if page.has_previous and rows else None,
    )


def router() -> APIRouter:
    """`/` and `/campaigns`: the list."""
    routes = APIRouter(include_in_schema=False)

    @routes.get("/", response_class=HTMLResponse)
    @routes.get("/campaigns", response_class=HTMLResponse)
    async def campaign_list(
        request: Request,
        user: UserDep,
        status: Annotated[str, Query(max_length=16)] = "",
        channel: Annotated[str, Query(max_length=16)] = "",
        archived: Annotated[str, Query(max_length=8)] = "",
        cursor: Annotated[str, Query(max_length=64)] = "",
    ) -> HTMLResponse:
        """The business's campaigns, filtered by status and channel; archived ones only when asked."""
        status = status if status in {s.value for s in CampaignStatus} else ""
        channel = channel if channel in CHANNEL_NAMES else ""
        show_archived = archived in ("1", "on", "true")
        filters = q.CampaignFilters(status=status or None, channel=channel or None, include_archived=show_archived)
        found = await run_in_threadpool(listing, store_of(request), user.business_id, filters, cursor or None)
        query = {"status": status, "channel": channel, "archived": "1" if show_archived else ""}
        return render(
            request,
            "campaigns.html",
            listing=found,
            statuses=[s.value for s in CampaignStatus],
            channels=CHANNEL_NAMES,
            chosen=query,
            link_query="&".join(f"{k}={v}" for k, v in query.items() if v),
        )

    return routes
