"""Businesses and what belongs to one beside its campaigns: API keys, agents and their integrations.

Every API request is scoped to the business of its key (SPEC §1), so the lookups here take a business id and
answer None for another business's row: the API turns that into the same 404 as an id that does not exist.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update

from herald.domain.campaign import AgentConfig
from herald.ids import IdFactory
from herald.store import schema as t
from herald.store.queries import Tx

IntegrationType = Literal["phone_call", "whatsapp"]
#: The public id prefix of an integration, by channel (Altur's `iph_…` phone and `iwa_…` WhatsApp integrations).
INTEGRATION_PREFIX: dict[str, str] = {"phone_call": "iph_", "whatsapp": "iwa_"}
#: Every key starts with this, so that a key pasted in the wrong place is recognisable (and secret scanners find it).
KEY_PREFIX = "hk_"
_SHOWN = 10


class BusinessExists(Exception):
    """`herald business create` with a name already taken."""


@dataclass(frozen=True, slots=True)
class Business:
    """A tenant: owns campaigns, keys, agents, webhook endpoints and a do-not-call list."""

    id: int
    public_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as listed: never the key itself, only its first characters."""

    id: int
    business_id: int
    business: str
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Who a valid key speaks for."""

    key_id: int
    business_id: int
    business_public_id: str


@dataclass(frozen=True, slots=True)
class Integration:
    """A channel of an agent through a provider."""

    id: int
    public_id: str
    agent_id: int
    integration_type: IntegrationType
    provider: str
    options: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent of a business, with its integrations."""

    id: int
    public_id: str
    business_id: int
    name: str
    config: AgentConfig
    created_at: datetime
    integrations: tuple[Integration, ...]


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


# --- businesses ----------------------------------------------------------------------------------------------------


def _business(row: Any) -> Business:
    return Business(row.id, row.public_id, row.name, row.created_at)


def business_named(tx: Tx, name: str) -> Business | None:
    """The business called `name`, if any."""
    row = tx.connection.execute(select(t.businesses).where(t.businesses.c.name == name)).first()
    return None if row is None else _business(row)


def businesses(tx: Tx) -> list[Business]:
    """Every business, oldest first."""
    return [_business(row) for row in tx.connection.execute(select(t.businesses).order_by(t.businesses.c.id))]


def create_business(tx: Tx, name: str, now: datetime, ids: IdFactory) -> Business:
    """A new business with its ready agent (a simulator phone and WhatsApp integration). Raises BusinessExists."""
    if not name.strip():
        raise ValueError("a business needs a name")
    if business_named(tx, name) is not None:
        raise BusinessExists(f"a business called {name!r} already exists")
    business_id = tx.ensure_business(name, ids.uuid(), now)
    seed_agent(tx, business_id, now)
    found = business_named(tx, name)
    assert found is not None
    return found


def ensure_business(tx: Tx, name: str, now: datetime, ids: IdFactory) -> tuple[Business, bool]:
    """The business called `name`, created (with its ready agent) if missing; and whether it was created."""
    found = business_named(tx, name)
    if found is not None:
        return found, False
    return create_business(tx, name, now, ids), True


def seed_agent(tx: Tx, business_id: int, now: datetime) -> Agent:
    """The agent every new business starts with, so that the reference's samples work on a fresh install."""
    # Ids of their own (never the caller's seeded factory), so seeded simulations make the same ids as before.
    ids = IdFactory()
    agent = create_agent(tx, business_id, AgentConfig(name="Herald simulator agent"), now, ids)
    for channel in ("phone_call", "whatsapp"):
        create_integration(tx, agent.id, channel, "simulator", {}, now, ids)
    found = agent_by_public_id(tx, business_id, agent.public_id)
    assert found is not None
    return found


# --- API keys ------------------------------------------------------------------------------------------------------


def create_key(tx: Tx, business_id: int, now: datetime, label: str = "") -> tuple[ApiKey, str]:
    """A new key for the business: its listing and the key itself, which is shown once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = tx.connection.execute(
        insert(t.api_keys)
        .values(business_id=business_id, prefix=key[:_SHOWN], key_hash=hash_key(key), label=label, created_at=now)
        .returning(t.api_keys.c.id)
    ).scalar_one()
    listed = [found for found in api_keys(tx, business_id) if found.id == key_id]
    return listed[0], key


def api_keys(tx: Tx, business_id: int | None = None) -> list[ApiKey]:
    """Keys (of one business, or all), oldest first."""
    k = t.api_keys.c
    query = (
        select(*t.api_keys.c, t.businesses.c.name.label("business"))
        .join(t.businesses, t.businesses.c.id == k.business_id)
        .order_by(k.id)
    )
    if business_id is not None:
        query = query.where(k.business_id == business_id)
    return [
        ApiKey(row.id, row.business_id, row.business, row.prefix, row.label, row.created_at, row.revoked_at)
        for row in tx.connection.execute(query)
    ]


def revoke_key(tx: Tx, wanted: str, now: datetime) -> list[ApiKey]:
    """Revoke the live key whose id or shown prefix is `wanted`; returns what was revoked (nothing if none matched)."""
    k = t.api_keys.c
    match = k.prefix == wanted
    if wanted.isdigit():
        match = match | (k.id == int(wanted))
    ids = list(tx.connection.execute(select(k.id).where(match, k.revoked_at.is_(None))).scalars())
    if len(ids) != 1:
        if len(ids) > 1:
            raise ValueError(f"{wanted!r} matches {len(ids)} keys; give the key's id")
        return []
    tx.connection.execute(update(t.api_keys).where(k.id == ids[0]).values(revoked_at=now))
    return [found for found in api_keys(tx) if found.id == ids[0]]


def key_owner(tx: Tx, key: str) -> KeyOwner | None:
    """The business a live key belongs to, or None for an unknown or revoked key."""
    k = t.api_keys.c
    row = tx.connection.execute(
        select(k.id, k.business_id, t.businesses.c.public_id)
        .join(t.businesses, t.businesses.c.id == k.business_id)
        .where(k.key_hash == hash_key(key), k.revoked_at.is_(None))
    ).first()
    return None if row is None else KeyOwner(row.id, row.business_id, row.public_id)


# --- agents and integrations ---------------------------------------------------------------------------------------


def create_agent(tx: Tx, business_id: int, config: AgentConfig, now: datetime, ids: IdFactory) -> Agent:
    """Store an agent of the business."""
    public_id = ids.uuid()
    agent_id = tx.connection.execute(
        insert(t.agents)
        .values(
            public_id=public_id,
            business_id=business_id,
            name=config.name,
            config=config.model_dump(mode="json"),
            created_at=now,
        )
        .returning(t.agents.c.id)
    ).scalar_one()
    return Agent(agent_id, public_id, business_id, config.name, config, now, ())


def _integration_id(ids: IdFactory, integration_type: str) -> str:
    # The call id alphabet and length: `iph_` + 20 letters or digits.
    return INTEGRATION_PREFIX[integration_type] + ids.call_id().removeprefix("cll_")


def create_integration(
    tx: Tx,
    agent_id: int,
    integration_type: IntegrationType,
    provider: str,
    options: dict[str, Any],
    now: datetime,
    ids: IdFactory,
) -> Integration:
    """Store an integration of an agent (validate `options` against the provider first)."""
    public_id = _integration_id(ids, integration_type)
    integration_id = tx.connection.execute(
        insert(t.integrations)
        .values(
            public_id=public_id,
            agent_id=agent_id,
            integration_type=integration_type,
            provider=provider,
            options=options,
            created_at=now,
        )
        .returning(t.integrations.c.id)
    ).scalar_one()
    return Integration(integration_id, public_id, agent_id, integration_type, provider, dict(options), now)


def _integrations(tx: Tx, agent_ids: list[int]) -> dict[int, list[Integration]]:
    i = t.integrations.c
    found: dict[int, list[Integration]] = {agent_id: [] for agent_id in agent_ids}
    if not agent_ids:
        return found
    for row in tx.connection.execute(select(t.integrations).where(i.agent_id.in_(agent_ids)).order_by(i.id)):
        found[row.agent_id].append(
            Integration(
                row.id, row.public_id, row.agent_id, row.integration_type, row.provider, row.options, row.created_at
            )
        )
    return found


def agents(tx: Tx, business_id: int, public_id: str | None = None) -> list[Agent]:
    """The business's agents (or the one with `public_id`) with their integrations, oldest first."""
    a = t.agents.c
    query = select(t.agents).where(a.business_id == business_id).order_by(a.id)
    if public_id is not None:
        query = query.where(a.public_id == public_id)
    rows = list(tx.connection.execute(query))
    integrations = _integrations(tx, [row.id for row in rows])
    return [
        Agent(
            row.id,
            row.public_id,
            row.business_id,
            row.name,
            AgentConfig.model_validate(row.config),
            row.created_at,
            tuple(integrations[row.id]),
        )
        for row in rows
    ]


def agent_owner(tx: Tx, public_id: str) -> int | None:
    """The id of the business an agent belongs to (the command line acts for every business), or None."""
    found = tx.connection.execute(select(t.agents.c.business_id).where(t.agents.c.public_id == public_id)).scalar()
    return None if found is None else int(found)


def agent_by_public_id(tx: Tx, business_id: int, public_id: str) -> Agent | None:
    """The business's agent with this UUID, or None (also when it belongs to another business)."""
    found = agents(tx, business_id, public_id)
    return found[0] if found else None


def integration_by_public_id(tx: Tx, business_id: int, public_id: str) -> tuple[Agent, Integration] | None:
    """The business's integration with this id and the agent it belongs to, or None."""
    i = t.integrations.c
    row = tx.connection.execute(
        select(t.agents.c.public_id)
        .join(t.agents, t.agents.c.id == i.agent_id)
        .where(i.public_id == public_id, t.agents.c.business_id == business_id)
    ).first()
    if row is None:
        return None
    agent = agent_by_public_id(tx, business_id, row.public_id)
    assert agent is not None
    integration = next(found for found in agent.integrations if found.public_id == public_id)
    return agent, integration
