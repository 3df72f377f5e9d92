"""`/agents`: the agents of the caller's business and their integrations (campaigns are created on one)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from herald.api.auth import CallerDep, StoreDep
from herald.api.models import AUTH_RESPONSES, ApiErrorBody, Strict
from herald.domain.campaign import AgentConfig
from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.tenancy import Agent, agents, create_agent

router = APIRouter(tags=["agents"], responses=AUTH_RESPONSES)


class IntegrationOut(Strict):
    """An integration of an agent."""

    public_id: str = Field(description="`iph_…` for a phone integration, `iwa_…` for WhatsApp")
    integration_type: Literal["phone_call", "whatsapp"]
    provider: str


class AgentOut(Strict):
    """An agent as listed."""

    public_id: str = Field(description="The agent's UUID; `agent_id` when creating a campaign")
    name: str
    integrations: list[IntegrationOut]


class AgentsResponse(Strict):
    """Every agent of the business."""

    agents: list[AgentOut]


class AgentResponse(Strict):
    """One agent."""

    success: bool
    agent: AgentOut


def agent_out(agent: Agent) -> AgentOut:
    """The API's view of an agent."""
    return AgentOut(
        public_id=agent.public_id,
        name=agent.name,
        integrations=[
            IntegrationOut(public_id=i.public_id, integration_type=i.integration_type, provider=i.provider)
            for i in agent.integrations
        ],
    )


@router.get("/agents", response_model=AgentsResponse)
def list_agents(caller: CallerDep, store: StoreDep) -> AgentsResponse:
    """The business's agents, oldest first, with their integrations."""
    with store.read() as tx:
        found = agents(tx, caller.business_id)
    return AgentsResponse(agents=[agent_out(agent) for agent in found])


@router.post(
    "/agents",
    response_model=AgentResponse,
    status_code=201,
    responses={400: {"model": ApiErrorBody, "description": "Invalid agent"}},
)
def post_agent(body: AgentConfig, caller: CallerDep, store: StoreDep) -> AgentResponse:
    """Create an agent (name, tags, extractable fields, conversion rule, follow-ups); it has no integration yet."""
    # The body is an AgentConfig already validated (its own rules included): a problem was a 400 before this line.
    with store.tx() as tx:
        agent = create_agent(tx, caller.business_id, body, RealClock().now(), IdFactory())
    return AgentResponse(success=True, agent=agent_out(agent))
