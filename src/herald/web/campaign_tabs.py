"""The Contacts tab and the Calls (phone) or Messages (WhatsApp) tab of a campaign: pages of rows with filters.

Contacts page by keyset (`campaign_queries.contact_search`); calls by the REST API's own page query (`api_queries.
call_page`, ids first through the `(campaign_id, id)` index); messages by keyset. Times are in the campaign's zone.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from herald.domain.statuses import Channel
from herald.store import api_queries as q
from herald.store.queries import Store
from herald.store.records import Campaign
from herald.web import campaign_queries as cq
from herald.web.auth import UserDep, WebError, store_of
from herald.web.campaign_page import local_time, tabs
from herald.web.scope import NOT_FOUND, CampaignDep
from herald.web.templating import render

PAGE_SIZE = 50
#: Call statuses a user can filter by (the REST API's `status` of `GET /campaigns/{id}/calls`).
CALL_STATUSES = ("ended", "failed", "busy", "no-answer", "in-progress")
_Id = Annotated[int | None, Query(ge=1, le=q.MAX_ID)]


def _link(base: str, **params: Any) -> str:
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return f"{base}?{urlencode(kept)}" if kept else base


def _contacts(store: Store, campaign: Campaign, status: str, search: str, after: int | None, before: int | None) -> Any:
    with store.read() as tx:
        counts = tx.status_counts(campaign.id)
        page = cq.contact_search(
            tx, campaign.id, status=status or None, search=search, after=after, before=before, limit=PAGE_SIZE
        )
    total = counts.get(status, 0) if status else sum(counts.values())
    return counts, total, page


def _calls(store: Store, campaign: Campaign, status: str, page_index: int) -> tuple[int, list[Any]]:
    filters = q.CallFilters(status=status or None)
    with store.read() as tx:
        total = q.count_calls(tx, campaign.id, filters)
        rows = q.call_page(tx, campaign.id, filters, page_index * PAGE_SIZE, PAGE_SIZE)
    return total, rows


def _messages(store: Store, campaign: Campaign, after: int | None, before: int | None) -> tuple[int, cq.KeysetPage]:
    with store.read() as tx:
        return cq.message_count(tx, campaign.id), cq.message_page(
            tx, campaign.id, after=after, before=before, limit=PAGE_SIZE
        )


def _only(campaign: Campaign, channel: Channel) -> None:
    # A phone campaign has no Messages tab and a WhatsApp one no Calls tab.
    if campaign.channel is not channel:
        raise WebError(404, NOT_FOUND)


def router() -> APIRouter:
    """`/campaigns/{id}/contacts`, `/campaigns/{id}/calls`, `/campaigns/{id}/messages`."""
    routes = APIRouter(include_in_schema=False)

    @routes.get("/campaigns/{id:int}/contacts", response_class=HTMLResponse)
    async def contacts(
        request: Request,
        user: UserDep,
        campaign: CampaignDep,
        status: Annotated[str, Query(max_length=16)] = "",
        q_: Annotated[str, Query(alias="q", max_length=100)] = "",
        after: _Id = None,
        before: _Id = None,
    ) -> HTMLResponse:
        """The contacts in the order they were added, 50 a page; filter by status, search by name or number."""
        counts, total, page = await run_in_threadpool(_contacts, store_of(request), campaign, status, q_, after, before)
        base = f"/campaigns/{campaign.id}/contacts"
        return render(
            request,
            "campaign/contacts.html",
            campaign=campaign,
            tabs=tabs(campaign),
            counts=sorted(counts.items()),
            total=total,
            page=page,
            status=status,
            search=q_,
            phone=campaign.channel is Channel.PHONE_CALL,
            when=lambda value: local_time(value, campaign),
            next_url=_link(base, status=status, q=q_, after=page.after) if page.after else "",
            previous_url=_link(base, status=status, q=q_, before=page.before) if page.before else "",
        )

    @routes.get("/campaigns/{id:int}/calls", response_class=HTMLResponse)
    async def calls(
        request: Request,
        user: UserDep,
        campaign: CampaignDep,
        status: Annotated[str, Query(max_length=16)] = "",
        page: Annotated[int, Query(ge=0, le=25_000)] = 0,
    ) -> HTMLResponse:
        """The calls in the order they were placed, 50 a page, with recording links and error codes."""
        _only(campaign, Channel.PHONE_CALL)
        status = status if status in CALL_STATUSES else ""
        total, rows = await run_in_threadpool(_calls, store_of(request), campaign, status, page)
        base = f"/campaigns/{campaign.id}/calls"
        return render(
            request,
            "campaign/calls.html",
            campaign=campaign,
            tabs=tabs(campaign),
            total=total,
            rows=rows,
            status=status,
            statuses=CALL_STATUSES,
            when=lambda value: local_time(value, campaign),
            next_url=_link(base, status=status, page=page + 1) if (page + 1) * PAGE_SIZE < total else "",
            previous_url=_link(base, status=status, page=page - 1 or None) if page > 0 else "",
        )

    @routes.get("/campaigns/{id:int}/messages", response_class=HTMLResponse)
    async def messages(
        request: Request, user: UserDep, campaign: CampaignDep, after: _Id = None, before: _Id = None
    ) -> HTMLResponse:
        """The WhatsApp messages in the order they were created, 50 a page, with delivery times and error codes."""
        _only(campaign, Channel.WHATSAPP)
        total, page = await run_in_threadpool(_messages, store_of(request), campaign, after, before)
        base = f"/campaigns/{campaign.id}/messages"
        return render(
            request,
            "campaign/messages.html",
            campaign=campaign,
            tabs=tabs(campaign),
            total=total,
            page=page,
            when=lambda value: local_time(value, campaign),
            next_url=_link(base, after=page.after) if page.after else "",
            previous_url=_link(base, before=page.before) if page.before else "",
        )

    return routes
