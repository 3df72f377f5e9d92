"""What the campaign endpoints share: the caller's campaign or a 404, query-string dates and cursors read without
ever failing with a 5xx, and the API's views of a stored campaign (list item, detail with its analytics)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import Path

from herald.analytics.snapshot import analytics
from herald.api.campaign_models import (
    AgentRef,
    CampaignDetailOut,
    CampaignOut,
    CyclesOut,
    IntegrationRef,
    ScheduleDayOut,
    ScheduleOut,
)
from herald.api.errors import ApiError, not_found
from herald.domain.campaign import CampaignConfig, ScheduleConfig
from herald.domain.statuses import Channel
from herald.store import api_queries as q
from herald.store.queries import Tx
from herald.store.records import Campaign

#: A campaign, contact id in a path: beyond 32 bits it cannot name a row (400, like any malformed id).
RowId = Annotated[int, Path(ge=1, le=q.MAX_ID, description="The identifier (an integer)")]


def campaign_of(tx: Tx, business_id: int, campaign_id: int) -> Campaign:
    """The business's campaign; 404 for a missing one and for another business's alike."""
    campaign = q.owned_campaign(tx, business_id, campaign_id)
    if campaign is None:
        raise not_found("campaign")
    return campaign


def instant(name: str, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """A query-string ISO 8601 date or date-time as UTC (naive = UTC); a bare date as the start of that day, or with
    `end_of_day` its last instant, so that `createdBefore=2026-01-31` includes the 31st. 400 when unreadable."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            found = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        else:
            if "T" in text and " " in text:
                text = text.replace(" ", "+")  # an unescaped `+` of an offset arrives as a space
            found = datetime.fromisoformat(text)
            found = found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
    except (ValueError, OverflowError):
        message = f"{value!r} is not an ISO 8601 date"
        raise ApiError(
            400, "INVALID_REQUEST", f"{name}: {message}", errors=[{"field": name, "message": message}]
        ) from None
    return found


def check_range(after_name: str, after: datetime | None, before_name: str, before: datetime | None) -> None:
    """400 when both ends of a date pair are given and the `after` one is not earlier."""
    if after is not None and before is not None and after >= before:
        raise ApiError(400, "INVALID_REQUEST", f"{after_name} must be earlier than {before_name}")


def encode_cursor(direction: str, campaign_id: int) -> str:
    """An opaque cursor: the direction (`n`ext = older, `p`revious = newer) and the campaign it starts from."""
    return base64.urlsafe_b64encode(f"{direction}:{campaign_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """(direction, campaign id) of a cursor; 400 INVALID_REQUEST for anything this API did not hand out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        direction, _, number = text.partition(":")
        campaign_id = int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        campaign_id, direction = 0, ""
    if direction not in ("n", "p") or not 0 < campaign_id <= q.MAX_ID or len(cursor) > 64:
        message = "not a cursor this API handed out"
        raise ApiError(400, "INVALID_REQUEST", f"cursor: {message}", errors=[{"field": "cursor", "message": message}])
    return direction, campaign_id


def _schedule(schedule: ScheduleConfig | None) -> ScheduleOut | None:
    if schedule is None:
        return None
    days: dict[str, Any] = {}
    for name in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        day = getattr(schedule, name)
        days[name] = None if day is None else ScheduleDayOut(**day.model_dump())
    return ScheduleOut(**days)


def _agent(campaign: Campaign, agents: dict[int, tuple[str, str]]) -> AgentRef:
    if campaign.agent_id is not None and campaign.agent_id in agents:
        public_id, name = agents[campaign.agent_id]
        return AgentRef(id=public_id, name=name)
    return AgentRef(id=None, name=campaign.config.agent.name)


def campaign_out(campaign: Campaign, agents: dict[int, tuple[str, str]]) -> CampaignOut:
    """A campaign as listed (the reference's `Campaign`)."""
    config = campaign.config
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        description=config.description,
        status=campaign.status.value,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        ended_at=campaign.ended_at,
        agent=_agent(campaign, agents),
        scheduling=_schedule(config.scheduling),
        timezone=config.timezone,
        retries=config.retries,
        archived=campaign.archived,
        template=config.template,
        first_message=config.first_message,
        concurrency_limit=config.concurrency_limit,
        cycle_enabled=config.cycles.enabled,
        cycle_max_iterations=config.cycles.max_iterations,
        cycle_cooldown_minutes=config.cycles.cooldown_minutes,
        cycle_filter_statuses=[str(status) for status in config.cycles.filter_statuses],
        cycle_filter_tags=list(config.cycles.filter_tags),
        cycle_current_iteration=campaign.cycle_iteration,
        cycle_last_iteration_at=campaign.cycle_last_iteration_at,
    )


def _cycles(config: CampaignConfig) -> CyclesOut:
    cycles = config.cycles
    return CyclesOut(
        enabled=cycles.enabled,
        mode=cycles.mode,
        max_iterations=cycles.max_iterations,
        cooldown_minutes=cycles.cooldown_minutes,
        filter_statuses=[str(status) for status in cycles.filter_statuses],
        schedule=_schedule(cycles.schedule),
        schedule_start_date=cycles.schedule_start_date,
        schedule_end_date=cycles.schedule_end_date,
    )


def campaign_detail(tx: Tx, campaign: Campaign) -> CampaignDetailOut:
    """The reference's `CampaignDetail` of a campaign, read in `tx`."""
    config = campaign.config
    agents = q.agent_names(tx, [campaign.agent_id] if campaign.agent_id is not None else [])
    integrations = q.integration_refs(tx, [campaign.integration_id] if campaign.integration_id is not None else [])
    integration = None
    if campaign.integration_id is not None and campaign.integration_id in integrations:
        public_id, kind = integrations[campaign.integration_id]
        integration = IntegrationRef(id=public_id, type=kind)  # type: ignore[arg-type]
    return CampaignDetailOut(
        id=campaign.id,
        name=campaign.name,
        description=config.description,
        status=campaign.status.value,
        archived=campaign.archived,
        integration=integration,
        agent=_agent(campaign, agents),
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        ended_at=campaign.ended_at,
        timezone=config.timezone,
        retries=config.retries,
        concurrency_limit=config.concurrency_limit,
        message_limit=config.daily_message_limit if campaign.channel is Channel.WHATSAPP else None,
        first_message=config.first_message,
        template=config.template,
        template_alt=config.template_alt,
        scheduling=_schedule(config.scheduling),
        cycles=_cycles(config),
        cycle_current_iteration=campaign.cycle_iteration,
        cycle_last_iteration_at=campaign.cycle_last_iteration_at,
        analytics=analytics(tx, campaign),
    )


def local_text(moment: datetime | None, config: CampaignConfig) -> str | None:
    """`YYYY-MM-DD HH:MM:SS` in the campaign time zone (the exports' form), or None."""
    if moment is None:
        return None
    return moment.astimezone(config.zone).strftime("%Y-%m-%d %H:%M:%S")
