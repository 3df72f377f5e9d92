"""What a page may show: only the signed-in user's business. Another business's campaign is answered exactly as a
campaign that does not exist (404), as the REST API does (`store.api_queries.owned_campaign`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool

from herald.store import api_queries as q
from herald.store.records import Campaign
from herald.web.auth import UserDep, WebError, store_of

NOT_FOUND = "There is no such campaign in your business."


def _owned(request: Request, business_id: int, campaign_id: int) -> Campaign | None:
    with store_of(request).read() as tx:
        return q.owned_campaign(tx, business_id, campaign_id)


async def campaign_of_user(request: Request, user: UserDep, campaign_id: Annotated[int, Path(alias="id")]) -> Campaign:
    """The campaign `{id}` of the path if it belongs to the user's business; WebError 404 otherwise."""
    if not 1 <= campaign_id <= q.MAX_ID:
        raise WebError(404, NOT_FOUND)
    found = await run_in_threadpool(_owned, request, user.business_id, campaign_id)
    if found is None:
        raise WebError(404, NOT_FOUND)
    return found


#: A route parameter `campaign: CampaignDep` with `{id}` in the path: the user's campaign, or a 404 page.
CampaignDep = Annotated[Campaign, Depends(campaign_of_user)]
