"""The bodies Herald sends, shaped as Altur's (pure functions of records; nothing here reads a database or a clock).

`on_call_end` keeps Altur's flat call shape; the campaign events use the versioned envelope (`event_id`,
`event_type`, `occurred_at` in the campaign's time zone, `api_version`, `project_id`, `data`). `encode` gives the
exact bytes stored, signed and sent: compact and ASCII-escaped, which is also what a receiver gets back from
`json.dumps(parsed, separators=(",", ":"))`, so both ways of checking Altur's signature accept it.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

ON_CALL_END = "on_call_end"
STATUS_CHANGED = "campaign.status_changed"
CYCLE_COMPLETED = "campaign.cycle_completed"
EVENT_TYPES: tuple[str, ...] = (ON_CALL_END, STATUS_CHANGED, CYCLE_COMPLETED)
API_VERSION = "1.0"
_ALPHABET = string.ascii_letters + string.digits


def event_id() -> str:
    """A new event id, `evt_` and 20 letters or digits (from the system's random source: seeded simulations must
    not spend their generator on webhooks, or their call ids would change)."""
    return "evt_" + "".join(secrets.choice(_ALPHABET) for _ in range(20))


def encode(payload: dict[str, Any]) -> str:
    """The body as sent: compact JSON, non-ASCII escaped (so its UTF-8 bytes are the text itself)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def _utc(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def local_time(at: datetime, timezone: str) -> str:
    """An instant in a campaign's time zone, as Altur's envelopes write it (`2026-06-08T14:23:15.482000-06:00`)."""
    return at.astimezone(ZoneInfo(timezone)).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class CampaignRef:
    """What the campaign events say about a campaign."""

    id: int
    name: str
    timezone: str
    project_id: str


@dataclass(frozen=True, slots=True)
class CampaignUser:
    """A contact as `on_call_end` shows it, after the call's outcome was applied."""

    f_id: str
    name: str
    contact: str
    context: str
    status: str
    failed_retries: int
    voicemail_retries: int
    extracted_data: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EndedCall:
    """A call that has just ended, with its contact and the agent that made it."""

    id: str
    type: str
    status: str
    phone_number_to: str
    answered_by: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: str
    ended_reason: str
    duration: int
    billed_duration: int
    recording_url: str
    assistant_id: str | None
    assistant_nickname: str
    assistant_name: str
    user: CampaignUser
    phone_number_from: str = ""


def on_call_end(call: EndedCall) -> dict[str, Any]:
    """Altur's `on_call_end` body (flat; `end_user` is Altur's deprecated copy of `campaign_user`). Herald keeps no
    transcript, so `transcript` is empty."""
    user = call.user
    return {
        "event_type": ON_CALL_END,
        "id": call.id,
        "type": call.type,
        "status": call.status,
        "phone_number_from": call.phone_number_from,
        "phone_number_to": call.phone_number_to,
        "answered_by": call.answered_by,
        "created_at": _utc(call.created_at),
        "started_at": _utc(call.started_at),
        "ended_at": _utc(call.ended_at),
        "ended_by": call.ended_by,
        "ended_reason": call.ended_reason,
        "duration": call.duration,
        "billed_duration": call.billed_duration,
        "recording_url": call.recording_url,
        "transcript": [],
        "assistant": {"id": call.assistant_id, "nickname": call.assistant_nickname, "name": call.assistant_name},
        "end_user": {
            "id": user.f_id,
            "status": user.status,
            "display_name": user.name,
            "phone_number": user.contact,
            "context": user.context,
            "extracted_data": dict(user.extracted_data),
            "tags": list(user.tags),
        },
        "campaign_user": {
            "f_id": user.f_id,
            "name": user.name,
            "contact": user.contact,
            "context": user.context,
            "status": user.status,
            "failed_retries": user.failed_retries,
            "voicemail_retries": user.voicemail_retries,
            "extracted_data": dict(user.extracted_data),
            "tags": list(user.tags),
        },
    }


def _envelope(
    kind: str, evt: str, campaign: CampaignRef, occurred_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": evt,
        "event_type": kind,
        "occurred_at": local_time(occurred_at, campaign.timezone),
        "api_version": API_VERSION,
        "project_id": campaign.project_id,
        "data": data,
    }


def status_changed(
    evt: str,
    campaign: CampaignRef,
    previous: str,
    status: str,
    occurred_at: datetime,
    analytics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`campaign.status_changed`; `analytics` is given (and sent) only when the new status is `finished`."""
    data: dict[str, Any] = {
        "campaign": {"id": campaign.id, "name": campaign.name, "status": status, "previous_status": previous}
    }
    if analytics is not None:
        data["analytics"] = analytics
    return _envelope(STATUS_CHANGED, evt, campaign, occurred_at, data)


def cycle_completed(
    evt: str,
    campaign: CampaignRef,
    status: str,
    iteration: int,
    next_cycle_at: datetime | None,
    occurred_at: datetime,
) -> dict[str, Any]:
    """`campaign.cycle_completed`: the iteration that ended, and when the next starts (None when none will)."""
    data = {
        "campaign": {"id": campaign.id, "name": campaign.name, "status": status, "previous_status": None},
        "cycle_iteration": iteration,
        "next_cycle_at": local_time(next_cycle_at, campaign.timezone) if next_cycle_at is not None else None,
    }
    return _envelope(CYCLE_COMPLETED, evt, campaign, occurred_at, data)


def wanted(events: tuple[str, ...], filters: dict[str, Any], event_type: str, status: str | None = None) -> bool:
    """Whether an endpoint subscribed to `events` with `filters` gets this event: `filters.status` (a list of
    statuses) restricts `campaign.status_changed` to those new statuses."""
    if event_type not in events:
        return False
    if event_type == STATUS_CHANGED:
        statuses = filters.get("status")
        if statuses:
            return status in statuses
    return True
