"""Contacts upload, `/campaigns/{id}/contacts/upload`: choose a CSV, see a preview, then the import report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from herald.web.auth import UserDep
from herald.web.scope import CampaignDep
from herald.web.templating import render


def router() -> APIRouter:
    """The upload form and its report."""
    routes = APIRouter(include_in_schema=False)

    @routes.get("/campaigns/{id:int}/contacts/upload", response_class=HTMLResponse)
    def upload_form(request: Request, user: UserDep, campaign: CampaignDep) -> HTMLResponse:
        """The form: a CSV file of contacts for the campaign."""
        return render(request, "contacts_upload.html", campaign=campaign)

    return routes
