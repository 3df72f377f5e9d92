"""The REST API under `/api/v1.0`: the reference's campaign endpoints and Herald's own, one router per resource."""

from __future__ import annotations

from fastapi import APIRouter

from herald.api import agents, calls, campaigns, contacts, exports, forecast

PREFIX = "/api/v1.0"


def router() -> APIRouter:
    """Every REST route, mounted under `PREFIX`."""
    api = APIRouter(prefix=PREFIX)
    api.include_router(agents.router)
    api.include_router(exports.router)
    # Contacts, calls and forecast before campaigns: `/campaigns/{id}/contacts` must not be read as the action `contacts`.
    api.include_router(contacts.router)
    api.include_router(calls.router)
    api.include_router(forecast.router)
    api.include_router(campaigns.router)
    return api
