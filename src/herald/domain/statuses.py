"""The status vocabularies of campaigns, contacts and calls (SPEC §2.1, §3.2, §4)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """How a campaign reaches its contacts."""

    PHONE_CALL = "phone_call"
    WHATSAPP = "whatsapp"


class CampaignStatus(StrEnum):
    """Campaign lifecycle status; `archived` is a separate flag, not a status."""

    PENDING = "pending"
    READY = "ready"
    ACTIVE = "active"
    INACTIVE = "inactive"
    COOLDOWN = "cooldown"
    FINISHED = "finished"


class ContactStatus(StrEnum):
    """Contact status in a campaign. Legacy values are read from old exports but never assigned."""

    QUEUE = "queue"
    SENDING = "sending"
    FAILED = "failed"
    RETRYING = "retrying"
    CONVERTED = "converted"
    # phone
    VOICEMAIL = "voicemail"
    ANSWERED = "answered"
    # whatsapp
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


#: Values that appear in exports made before Dec 2025; Herald never assigns them.
LEGACY_CONTACT_STATUSES: frozenset[str] = frozenset({"no-answer", "busy", "unreachable", "acepted"})

PHONE_STATUSES: frozenset[ContactStatus] = frozenset(
    {
        ContactStatus.QUEUE,
        ContactStatus.SENDING,
        ContactStatus.FAILED,
        ContactStatus.RETRYING,
        ContactStatus.CONVERTED,
        ContactStatus.VOICEMAIL,
        ContactStatus.ANSWERED,
    }
)
WHATSAPP_STATUSES: frozenset[ContactStatus] = frozenset(
    {
        ContactStatus.QUEUE,
        ContactStatus.SENDING,
        ContactStatus.FAILED,
        ContactStatus.RETRYING,
        ContactStatus.CONVERTED,
        ContactStatus.SENT,
        ContactStatus.DELIVERED,
        ContactStatus.READ,
        ContactStatus.ACCEPTED,
        ContactStatus.REJECTED,
    }
)


class CallStatus(StrEnum):
    """Status of one call; `ended`, `busy`, `no-answer` and `failed` are terminal."""

    CREATED = "created"
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    FORWARDING = "forwarding"
    ENDED = "ended"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"


TERMINAL_CALL_STATUSES: frozenset[CallStatus] = frozenset(
    {CallStatus.ENDED, CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED}
)

#: Progress order of call statuses; a call never moves to a lower rank (SPEC §4).
CALL_STATUS_RANK: dict[CallStatus, int] = {
    CallStatus.CREATED: 0,
    CallStatus.QUEUED: 1,
    CallStatus.RINGING: 2,
    CallStatus.IN_PROGRESS: 3,
    CallStatus.FORWARDING: 4,
    CallStatus.ENDED: 5,
    CallStatus.BUSY: 5,
    CallStatus.NO_ANSWER: 5,
    CallStatus.FAILED: 5,
}


class AnsweredBy(StrEnum):
    """Who picked up a call."""

    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


class EndedBy(StrEnum):
    """Who ended a call (empty string when the call never connected)."""

    AGENT = "agent"
    USER = "user"
    SYSTEM = "system"
