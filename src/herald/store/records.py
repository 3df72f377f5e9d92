"""Typed rows the store hands to the engine, exports and CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.domain.campaign import CampaignConfig
from herald.domain.rules import ContactState
from herald.domain.statuses import CampaignStatus, Channel


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign as stored."""

    id: int
    business_id: int
    business_public_id: str
    name: str
    channel: Channel
    status: CampaignStatus
    archived: bool
    config: CampaignConfig
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    cycle_iteration: int
    cycle_last_iteration_at: datetime | None
    next_cycle_at: datetime | None
    # The agent and integration (table ids) of a campaign created through the API; None for campaign files.
    agent_id: int | None = None
    integration_id: int | None = None


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A contact with the state the rules work on."""

    id: int
    campaign_id: int
    contact: str
    name: str
    context: str
    external_id: str | None
    input_variables: dict[str, str]
    state: ContactState
    inflight_id: int | None
    current_message_id: int | None
    attempts_in_cycle: int


@dataclass(slots=True)
class CallRecord:
    """A call being updated by provider events (mutable while one batch of events is applied)."""

    id: int
    public_id: str
    campaign_id: int
    contact_id: int
    status: str
    answered_by: str | None
    started_at: datetime | None
    ended_at: datetime | None
    follow_up: bool
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class MessageRecord:
    """A WhatsApp message being updated by provider events."""

    id: int
    campaign_id: int
    contact_id: int
    provider_message_id: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    opt_out_at: datetime | None
    error_code: str
    error_msg: str
    button_clicks: list[dict[str, str]]
    link_clicks: list[dict[str, str]]
    output_variables: dict[str, Any]
    changed: bool = False
