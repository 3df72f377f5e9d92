"""New campaign, `/campaigns/new`: the form of every SPEC §2 field, or a campaign file (YAML) to upload.

On one of the business's agents the campaign is created by the REST API's own service
(`engine.campaigns.create_from_agent`); with the agent defined on the form, or from a file, the campaign document is
stored as `herald campaign create` stores a file's. Either way the domain's validator decides, and its complaints are
shown next to the fields they are about. A new campaign has no contacts yet, so the next page is the upload.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from herald.domain.campaign import CampaignConfig
from herald.domain.statuses import PHONE_STATUSES, WHATSAPP_STATUSES
from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.providers import registry
from herald.store.queries import Store
from herald.store.tenancy import Agent, agents
from herald.web import campaign_form as cf
from herald.web.auth import FormDep, UserDep, WebUser, store_of
from herald.web.campaign_list import CHANNEL_NAMES
from herald.web.templating import render

FIELD_TYPES = ("string", "number", "date", "enum", "bool")


class Values(dict[str, Any]):
    """What the form shows in its inputs: one text per name, lists for the multi-choice inputs."""

    def getlist(self, key: str) -> list[str]:
        found = self.get(key)
        return found if isinstance(found, list) else []

    @classmethod
    def of(cls, form: FormData) -> Values:
        values = cls()
        for key in form:
            items = [item for item in form.getlist(key) if isinstance(item, str)]
            values[key] = items if key == "cycles.filter_statuses" else (items[-1] if items else "")
        return values


def _agents(store: Store, business_id: int) -> list[Agent]:
    with store.read() as tx:
        return agents(tx, business_id)


def _page(
    request: Request, found_agents: list[Agent], values: Values, errors: dict[str, str], form: FormData | None
) -> HTMLResponse:
    agent_options = [(agent.public_id, f"{agent.name}") for agent in found_agents]
    statuses = sorted({status.value for status in PHONE_STATUSES | WHATSAPP_STATUSES} - {"queue", "sending"})
    return render(
        request,
        "new_campaign.html",
        400 if errors else 200,
        values=values,
        errors=errors,
        channels=CHANNEL_NAMES,
        agent_options=[*agent_options, (cf.NEW_AGENT, "A new agent, defined below")],
        providers=[(name, name) for name in registry.names()],
        field_rows=cf.field_rows(form),
        field_types=FIELD_TYPES,
        days=cf.DAY_NAMES,
        contact_statuses=statuses,
    )


def _create(store: Store, user: WebUser, form: FormData) -> tuple[int | None, dict[str, str]]:
    """(the new campaign's id, {}) or (None, errors by form key)."""
    channel = str(form.get("channel", ""))
    if channel not in CHANNEL_NAMES:
        return None, {"channel": "choose phone calls or WhatsApp"}
    settings = cf.settings_document(form)
    choice = str(form.get("agent", cf.NEW_AGENT))
    now = RealClock().now()
    if choice == cf.NEW_AGENT:
        options, problem = cf.provider_options(form)
        if problem:
            return None, {"provider_options": problem}
        document = {
            **settings,
            "channel": channel,
            "agent": cf.agent_document(form),
            "provider": str(form.get("provider", "")) or "simulator",
            "provider_options": options,
        }
        errors = cf.remap_field_errors(cf.problems(document, cf.FORM_KEYS), cf.used_field_rows(form))
        if errors:
            return None, errors
        with store.tx() as tx:
            return tx.create_campaign(user.business_id, CampaignConfig.model_validate(document), now), {}
    agent = next((found for found in _agents(store, user.business_id) if found.public_id == choice), None)
    if agent is None:
        return None, {"agent": "choose one of your agents"}
    integration = next((i for i in agent.integrations if i.integration_type == channel), None)
    if integration is None:
        return None, {"agent": f"this agent has no {CHANNEL_NAMES[channel]} integration"}
    document = engine.config_from_agent(settings, channel, agent.config, integration.provider, integration.options)
    errors = cf.problems(document, cf.FORM_KEYS)
    if errors:
        return None, errors
    try:
        campaign_id = engine.create_from_agent(
            store, user.business_id, agent.public_id, integration.public_id, channel, settings, now
        )
    except (engine.InvalidSettings, LookupError, ValueError) as error:
        return None, {"form": str(error)}
    return campaign_id, {}


def _create_from_file(store: Store, user: WebUser, data: bytes) -> tuple[int | None, str]:
    from herald.campaign_file import CampaignFileError, parse_campaign_text

    try:
        config = parse_campaign_text(data)
    except CampaignFileError as error:
        return None, str(error)
    with store.tx() as tx:
        return tx.create_campaign(user.business_id, config, RealClock().now()), ""


def _created(campaign_id: int) -> Response:
    return RedirectResponse(f"/campaigns/{campaign_id}/contacts/upload?created=1", status_code=303)


def router() -> APIRouter:
    """The form, its post, and the file upload."""
    routes = APIRouter(include_in_schema=False)

    @routes.get("/campaigns/new", response_class=HTMLResponse)
    async def new_campaign(request: Request, user: UserDep) -> HTMLResponse:
        found = await run_in_threadpool(_agents, store_of(request), user.business_id)
        values = Values(cf.DEFAULTS)
        return _page(request, found, values, {}, None)

    @routes.post("/campaigns/new", response_class=HTMLResponse)
    async def create(request: Request, user: UserDep, form: FormDep) -> Response:
        store = store_of(request)
        campaign_id, errors = await run_in_threadpool(_create, store, user, form)
        if campaign_id is not None:
            return _created(campaign_id)
        found = await run_in_threadpool(_agents, store, user.business_id)
        return _page(request, found, Values.of(form), errors, form)

    @routes.post("/campaigns/new/file", response_class=HTMLResponse)
    async def create_from_file(request: Request, user: UserDep, form: FormDep) -> Response:
        store = store_of(request)
        upload = form.get("campaign_file")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
        if not data:
            campaign_id, error = None, "choose a campaign file (YAML or JSON)"
        else:
            campaign_id, error = await run_in_threadpool(_create_from_file, store, user, data)
        if campaign_id is not None:
            return _created(campaign_id)
        found = await run_in_threadpool(_agents, store, user.business_id)
        return _page(request, found, Values(cf.DEFAULTS), {"campaign_file": error}, None)

    return routes
