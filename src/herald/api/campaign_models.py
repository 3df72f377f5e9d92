"""Request and response bodies of the campaign endpoints, in the reference's shapes (`CampaignCreate`,
`CampaignDetail`, `CampaignContact`, `CampaignCall`, …), with every field the reference lists and each required
field marked, so Herald's `/openapi.json` is a stricter version of the reference's."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from herald.api.models import Strict

IntegrationType = Literal["phone_call", "whatsapp"]
CampaignStatusName = Literal["pending", "ready", "active", "inactive", "cooldown", "finished"]


class ScheduleDayIn(Strict):
    """One weekday: `HH:MM` times in the campaign time zone."""

    startTime: str = Field(max_length=5)
    stopTime: str = Field(max_length=5)
    active: bool


class ScheduleIn(Strict):
    """`{mon..sun}`; a day left out is closed."""

    mon: ScheduleDayIn | None = None
    tue: ScheduleDayIn | None = None
    wed: ScheduleDayIn | None = None
    thu: ScheduleDayIn | None = None
    fri: ScheduleDayIn | None = None
    sat: ScheduleDayIn | None = None
    sun: ScheduleDayIn | None = None


class CyclesIn(Strict):
    """The reference's `CampaignCyclesConfig` as sent (every field optional: a PATCH names only what changes)."""

    enabled: bool | None = None
    mode: Literal["cooldown", "scheduled"] | None = None
    max_iterations: int | None = Field(default=None, ge=2, le=12)
    cooldown_minutes: int | None = Field(default=None, ge=0, le=1440)
    filter_statuses: list[str] | None = Field(default=None, max_length=32)
    filter_tags: list[str] | None = Field(default=None, max_length=256)
    schedule: ScheduleIn | None = None
    schedule_start_date: date | None = None
    schedule_end_date: date | None = None


class CampaignCreateIn(Strict):
    """The reference's `CampaignCreate`."""

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    agent_id: str = Field(max_length=64, description="`public_id` (UUID) of the agent that will own the campaign")
    integration_id: str = Field(max_length=64, description="`iph_…` or `iwa_…` id of one of that agent's integrations")
    integration_type: IntegrationType
    timezone: str | None = Field(default=None, max_length=64)
    retries: int | None = Field(default=None, ge=0, le=5)
    message_limit: int | None = Field(default=None, ge=1, le=10_000)
    first_message: str | None = Field(default=None, max_length=10_000)
    template: str | None = Field(default=None, max_length=255)
    template_alt: str | None = Field(default=None, max_length=255)
    scheduling: ScheduleIn | None = None
    cycles: CyclesIn | None = None


class CampaignUpdateIn(Strict):
    """The reference's `CampaignUpdate`; the immutable fields are accepted here only to be refused by name."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    timezone: str | None = Field(default=None, max_length=64)
    retries: int | None = Field(default=None, ge=0, le=5)
    message_limit: int | None = Field(default=None, ge=1, le=10_000)
    scheduling: ScheduleIn | None = None
    first_message: str | None = Field(default=None, max_length=10_000)
    template: str | None = Field(default=None, max_length=255)
    template_alt: str | None = Field(default=None, max_length=255)
    cycles: CyclesIn | None = None
    agent_id: Any = Field(default=None, description="Immutable: refused with IMMUTABLE_FIELD")
    integration_id: Any = Field(default=None, description="Immutable: refused with IMMUTABLE_FIELD")
    integration_type: Any = Field(default=None, description="Immutable: refused with IMMUTABLE_FIELD")


# --- responses -----------------------------------------------------------------------------------------------------


class ScheduleDayOut(Strict):
    """One weekday of a schedule."""

    startTime: str
    stopTime: str
    active: bool


class ScheduleOut(Strict):
    """A weekly schedule; a day that is null is closed."""

    mon: ScheduleDayOut | None
    tue: ScheduleDayOut | None
    wed: ScheduleDayOut | None
    thu: ScheduleDayOut | None
    fri: ScheduleDayOut | None
    sat: ScheduleDayOut | None
    sun: ScheduleDayOut | None


class CyclesOut(Strict):
    """The reference's `CampaignCyclesConfig` (`filter_tags` is input-only there, and here)."""

    enabled: bool
    mode: Literal["cooldown", "scheduled"]
    max_iterations: int
    cooldown_minutes: int
    filter_statuses: list[str]
    schedule: ScheduleOut | None
    schedule_start_date: date | None
    schedule_end_date: date | None


class AgentRef(Strict):
    """The agent of a campaign: `id` is null for a campaign created from a file (its agent is inline)."""

    id: str | None
    name: str


class IntegrationRef(Strict):
    """The integration a campaign was created on."""

    id: str
    type: IntegrationType


class CampaignOut(Strict):
    """The reference's `Campaign` (a list item)."""

    id: int
    name: str
    description: str
    status: CampaignStatusName
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    agent: AgentRef
    scheduling: ScheduleOut | None
    timezone: str
    retries: int
    archived: bool
    template: str | None
    first_message: str | None
    concurrency_limit: int
    cycle_enabled: bool
    cycle_max_iterations: int
    cycle_cooldown_minutes: int
    cycle_filter_statuses: list[str]
    cycle_filter_tags: list[str]
    cycle_current_iteration: int
    cycle_last_iteration_at: datetime | None


class CursorPagination(Strict):
    """The reference's `CursorPagination`: opaque cursors, null when there is no such page."""

    has_next: bool
    has_previous: bool
    next_cursor: str | None
    previous_cursor: str | None


class CampaignsResponse(Strict):
    """`GET /campaigns`."""

    total_count: int
    campaigns: list[CampaignOut]
    pagination: CursorPagination


class CampaignDetailOut(Strict):
    """The reference's `CampaignDetail`, with the settings of `Campaign` beside it."""

    id: int
    name: str
    description: str
    status: CampaignStatusName
    archived: bool
    integration: IntegrationRef | None
    agent: AgentRef
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    timezone: str
    retries: int
    concurrency_limit: int
    message_limit: int | None
    first_message: str | None
    template: str | None
    template_alt: str | None
    scheduling: ScheduleOut | None
    cycles: CyclesOut
    cycle_current_iteration: int
    cycle_last_iteration_at: datetime | None
    analytics: dict[str, int | float | None] = Field(
        description="Phone: calls, callsAnsweredBy*, contacts*, with rates; WhatsApp: sent, delivered, read, "
        "accepted, rejected, failed, converted, with rates over contacts. A rate over nothing is null."
    )


class CampaignDetailResponse(Strict):
    """One campaign."""

    success: bool
    campaign: CampaignDetailOut


class ConflictBody(Strict):
    """The reference's `CampaignLifecycleConflictError`."""

    success: bool
    error: str
    message: str
    current_status: str
    valid_targets: list[str]


# --- contacts ------------------------------------------------------------------------------------------------------


class ContactIn(Strict):
    """One contact of a batch. `contact` may be missing or empty: that item fails as MISSING_CONTACT, not the batch."""

    contact: str | None = Field(default=None, max_length=64, description="Phone number, normalised to E.164")
    name: str | None = Field(default=None, max_length=1000)
    context: str | None = Field(default=None, max_length=100_000)
    extracted_data: dict[str, Any] | None = Field(default=None, description="Stored as the contact's input variables")
    f_id: str | None = Field(default=None, max_length=255)


class ContactBatchIn(Strict):
    """The reference's `CampaignContactBatchCreate`."""

    contacts: list[ContactIn] = Field(min_length=1, max_length=1000)
    if_duplicate: Literal["skip", "update"] = "skip"


class BatchSummary(Strict):
    """Items by outcome; they add up to the number of items sent."""

    created: int
    updated: int
    skipped_duplicate: int
    failed: int


class BatchItemOut(Strict):
    """The outcome of one item, by its index in the request."""

    index: int
    status: Literal["created", "updated", "skipped_duplicate", "failed"]
    id: str | None = Field(description="The contact's id, except when the item failed")
    contact: str = Field(description="The E.164 number (the value as sent when it could not be read)")
    error: str | None = Field(description="INVALID_PHONE_NUMBER, MISSING_CONTACT or SUPPRESSED when failed")
    message: str | None = Field(description="Why the item failed")


class ContactBatchResponse(Strict):
    """The reference's `CampaignContactBatchResponse`."""

    success: bool
    summary: BatchSummary
    results: list[BatchItemOut]


class ContactOut(Strict):
    """The reference's `CampaignContact`."""

    id: int
    f_id: str | None
    name: str
    contact: str
    status: str
    context: str
    retries: int
    has_follow_up: bool
    call_count: int | None = Field(description="Null on WhatsApp campaigns")
    billed_duration: int | None = Field(description="Seconds; null on WhatsApp campaigns")
    last_call_at: str | None = Field(description="`YYYY-MM-DD HH:MM:SS` in the campaign time zone")
    extracted_data: dict[str, Any]
    tags: list[str]


class OffsetPagination(Strict):
    """The reference's `OffsetPagination`."""

    has_next: bool
    has_previous: bool
    next_page: int | None
    previous_page: int | None


class ContactsResponse(Strict):
    """`GET /campaigns/{id}/contacts`."""

    total_count: int
    contacts: list[ContactOut]
    pagination: OffsetPagination


class ContactResponse(Strict):
    """One contact."""

    success: bool
    contact: ContactOut


# --- calls ---------------------------------------------------------------------------------------------------------


class CallContactOut(Strict):
    """The reference's `CampaignCallContact`."""

    id: int
    f_id: str | None
    name: str
    phone_number: str
    status: str


class CampaignCallOut(Strict):
    """The reference's `CampaignCall`."""

    id: str
    type: Literal["inbound", "outbound"]
    status: str
    answered_by: Literal["human", "machine", "unknown"] | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: str
    ended_reason: str
    duration: int
    billed_duration: int
    contact: CallContactOut
    extracted_data: dict[str, Any]
    tags: list[str]
    recording_url: str | None = Field(description="Path of the recording endpoint; null when there is none")


class CallsPagination(Strict):
    """The reference's `CampaignCallsPagination`."""

    page_index: int
    page_size: int
    has_next: bool
    has_previous: bool
    next_page: int | None
    previous_page: int | None


class CampaignCallsResponse(Strict):
    """`GET /campaigns/{id}/calls`."""

    total_count: int
    calls: list[CampaignCallOut]
    pagination: CallsPagination


class CallOut(Strict):
    """The reference's `Call` (`billable_duration` is its name there), with the campaign and contact it belongs to."""

    id: str
    type: Literal["inbound", "outbound"]
    status: str
    answered_by: Literal["human", "machine", "unknown"] | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: str
    ended_reason: str
    duration: int
    billable_duration: int
    campaign_id: int
    contact: CallContactOut
    extracted_data: dict[str, Any]
    tags: list[str]
    recording_url: str | None
