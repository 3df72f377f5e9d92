"""Contact outcome rules for both channels (SPEC §2.3, §3.3, §3.4, §6): pure functions, no I/O, no clock reads.

Each function takes a contact's state and one event and returns the new state. The engine applies them to
whatever arrives (simulator or webhooks), so a simulated campaign follows exactly the rules of a real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from herald.domain.billing import BillingPolicy, billed_seconds
from herald.domain.campaign import CampaignConfig, ConversionRule
from herald.domain.replacing import replacer
from herald.domain.scheduling import Schedule, next_open
from herald.domain.statuses import AnsweredBy, CallStatus, ContactStatus

S = ContactStatus
_UTC = ZoneInfo("UTC")
#: The one empty tag set states share: each `frozenset()` is a new object, and a simulated run keeps every contact's
#: state in memory, where each of them would be one more object for every full garbage collection to scan.
NO_TAGS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The counters and delays a campaign sets for one contact."""

    retries: int = 1
    retry_delay: timedelta = timedelta(minutes=60)
    failed_retry_limit: int = 1
    response_timeout: timedelta = timedelta(hours=24)
    follow_up_max_retries: int = 1
    follow_ups_enabled: bool = True

    @classmethod
    def of(cls, config: CampaignConfig) -> RetryPolicy:
        """The policy a campaign configuration sets."""
        return cls(
            retries=config.retries,
            retry_delay=timedelta(minutes=config.retry_delay_minutes),
            failed_retry_limit=config.failed_retry_limit,
            response_timeout=timedelta(hours=config.response_timeout),
            follow_up_max_retries=config.agent.follow_ups.max_retries,
            follow_ups_enabled=config.agent.follow_ups.enabled,
        )


@dataclass(frozen=True, slots=True)
class ContactState:
    """What the rules know of one contact in one campaign."""

    status: ContactStatus = S.QUEUE
    retries: int = 0
    failed_retries: int = 0
    final: bool = False
    due_at: datetime | None = None
    respond_by: datetime | None = None
    follow_up: bool = False
    follow_up_attempts: int = 0
    calls: int = 0
    billed_seconds: int = 0
    tags: frozenset[str] = NO_TAGS
    extracted: Mapping[str, str] = field(default_factory=dict)
    opted_out: bool = False

    @property
    def awaiting_attempt(self) -> bool:
        """True when the dispatcher owes this contact an attempt (a first try, a retry or a follow-up)."""
        return (not self.final and self.status in (S.QUEUE, S.RETRYING)) or self.follow_up


if TYPE_CHECKING:
    # mypy checks every call's field names and types as it does for dataclasses.replace.
    from dataclasses import replace
else:
    # Over a million states in a large campaign: dataclasses.replace, about three times cheaper.
    replace = replacer(ContactState)


@dataclass(frozen=True, slots=True)
class Conversation:
    """What an agent reports of one conversation."""

    tags: frozenset[str] = NO_TAGS
    extracted: Mapping[str, str] = field(default_factory=dict)
    converted: bool = False
    follow_up_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallResult:
    """A call's terminal facts, as far as the contact's rules care."""

    status: CallStatus
    answered_by: AnsweredBy | None
    duration: int
    conversation: Conversation | None = None
    follow_up_call: bool = False


def _merge(state: ContactState, conversation: Conversation | None) -> tuple[frozenset[str], dict[str, str]]:
    extracted = dict(state.extracted)
    if conversation is None:
        return state.tags, extracted
    extracted.update({key: value for key, value in conversation.extracted.items() if value != ""})
    # The same set when nothing is added (a union is always a new one).
    return (state.tags | conversation.tags if conversation.tags else state.tags), extracted


def _follow_up_due(at: datetime, window: Schedule | None, zone: ZoneInfo) -> datetime | None:
    return next_open(window, zone, at)


def wait_until(state: ContactState, opening: datetime) -> ContactState:
    """A contact due while its own hours are closed (`local_time`): it waits for them to open."""
    return replace(state, due_at=opening)


def dispatch(state: ContactState) -> ContactState:
    """A contact leased for an attempt: `sending`, unless it is a follow-up of a finished conversation."""
    if state.follow_up and state.final:
        return replace(state, due_at=None)
    return replace(state, status=S.SENDING, due_at=None, respond_by=None)


def call_ended(
    state: ContactState,
    result: CallResult,
    policy: RetryPolicy,
    conversion: ConversionRule,
    billing: BillingPolicy,
    now: datetime,
    follow_up_window: Schedule | None = None,
    zone: ZoneInfo | None = None,
) -> ContactState:
    """Apply a terminal call to its contact (SPEC §3.3; follow-ups per §6)."""
    billed = billed_seconds(result.duration, result.answered_by.value if result.answered_by else None, billing)
    # Every outcome counts the call and its billed seconds; each branch makes the new state in one `replace`.
    calls = state.calls + 1
    billed_total = state.billed_seconds + billed
    answered = result.status is CallStatus.ENDED and result.answered_by is not None
    effective = result.answered_by
    if effective is AnsweredBy.UNKNOWN:
        effective = AnsweredBy(billing.unknown_as)

    if result.follow_up_call:
        if answered and effective is AnsweredBy.HUMAN:
            tags, extracted = _merge(state, result.conversation)
            conv = result.conversation or Conversation()
            converted = state.status is S.CONVERTED or conversion.holds(conv.tags, dict(conv.extracted), conv.converted)
            return replace(
                state,
                calls=calls,
                billed_seconds=billed_total,
                status=S.CONVERTED if converted else state.status,
                tags=tags,
                extracted=extracted,
                follow_up=False,
                due_at=None,
            )
        attempts = state.follow_up_attempts + 1
        if attempts <= policy.follow_up_max_retries:
            due = _follow_up_due(now + policy.retry_delay, follow_up_window, zone or _UTC)
            if due is not None:
                return replace(state, calls=calls, billed_seconds=billed_total, follow_up_attempts=attempts, due_at=due)
        return replace(
            state, calls=calls, billed_seconds=billed_total, follow_up=False, follow_up_attempts=attempts, due_at=None
        )

    if answered and effective is AnsweredBy.HUMAN:
        conv = result.conversation or Conversation()
        tags, extracted = _merge(state, conv)
        converted = conversion.holds(conv.tags, dict(conv.extracted), conv.converted)
        follow_due = None
        if conv.follow_up_at is not None and policy.follow_ups_enabled:
            follow_due = _follow_up_due(max(conv.follow_up_at, now), follow_up_window, zone or _UTC)
        return replace(
            state,
            calls=calls,
            billed_seconds=billed_total,
            status=S.CONVERTED if converted else S.ANSWERED,
            final=True,
            tags=tags,
            extracted=extracted,
            follow_up=follow_due is not None,
            follow_up_attempts=0,
            due_at=follow_due,
        )
    if answered:  # machine, or unknown billed as machine
        if state.retries < policy.retries:
            return replace(
                state,
                calls=calls,
                billed_seconds=billed_total,
                status=S.RETRYING,
                retries=state.retries + 1,
                final=False,
                due_at=now + policy.retry_delay,
            )
        return replace(state, calls=calls, billed_seconds=billed_total, status=S.VOICEMAIL, final=True, due_at=None)
    return _failed(state, policy, now, calls, billed_total)


def _failed(
    state: ContactState, policy: RetryPolicy, now: datetime, calls: int | None = None, billed: int | None = None
) -> ContactState:
    # `calls` and `billed`: the counters a failed call sets in the same state (a failed message leaves them).
    calls = state.calls if calls is None else calls
    billed = state.billed_seconds if billed is None else billed
    if state.failed_retries < policy.failed_retry_limit:
        return replace(
            state,
            calls=calls,
            billed_seconds=billed,
            status=S.QUEUE,
            failed_retries=state.failed_retries + 1,
            final=False,
            due_at=now,
        )
    return replace(state, calls=calls, billed_seconds=billed, status=S.FAILED, final=True, due_at=None)


#: WhatsApp progress order; a contact's status never moves to a lower rank within an attempt.
WHATSAPP_RANK: dict[ContactStatus, int] = {
    S.QUEUE: 0,
    S.RETRYING: 0,
    S.FAILED: 0,
    S.SENDING: 1,
    S.SENT: 2,
    S.DELIVERED: 3,
    S.READ: 4,
    S.ACCEPTED: 5,
    S.REJECTED: 5,
    S.CONVERTED: 6,
}

_RECEIPTS = {"sent": S.SENT, "delivered": S.DELIVERED, "read": S.READ}


def message_receipt(
    state: ContactState, receipt: str, at: datetime, policy: RetryPolicy, current_message: bool
) -> ContactState:
    """A `sent`, `delivered` or `read` receipt. Late or repeated receipts never move a contact backwards.

    The response timer runs from the latest receipt (SPEC §3.4 measures from delivery; a message whose
    delivery receipt never comes is timed from `sent` so that it cannot wait forever).
    """
    target = _RECEIPTS[receipt]
    if not current_message or state.final or state.opted_out:
        return state
    if WHATSAPP_RANK[target] <= WHATSAPP_RANK[state.status]:
        return state
    return replace(state, status=target, respond_by=at + policy.response_timeout)


def message_failed(state: ContactState, policy: RetryPolicy, now: datetime, current_message: bool) -> ContactState:
    """A send error or undeliverable status: the failed-retry rule, as for calls."""
    if not current_message or state.final or WHATSAPP_RANK[state.status] >= WHATSAPP_RANK[S.DELIVERED]:
        return state
    return replace(_failed(state, policy, now), respond_by=None)


def message_reply(
    state: ContactState, accepted: bool, conversation: Conversation, conversion: ConversionRule
) -> ContactState:
    """The contact pressed the agent's accept or reject button (or replied in kind), on any of its messages."""
    if state.opted_out or WHATSAPP_RANK.get(state.status, 0) >= WHATSAPP_RANK[S.ACCEPTED]:
        return state
    tags, extracted = _merge(state, conversation)
    if not accepted:
        return replace(
            state, status=S.REJECTED, final=True, due_at=None, respond_by=None, tags=tags, extracted=extracted
        )
    converted = conversion.holds(conversation.tags, dict(conversation.extracted), conversation.converted)
    return replace(
        state,
        status=S.CONVERTED if converted else S.ACCEPTED,
        final=True,
        due_at=None,
        respond_by=None,
        tags=tags,
        extracted=extracted,
    )


def response_timeout(state: ContactState, policy: RetryPolicy, now: datetime) -> ContactState:
    """No accept or reject in time: retry while retries remain (with the alternate template), else final."""
    if state.final or state.status not in (S.SENT, S.DELIVERED, S.READ):
        return state
    if state.respond_by is None or state.respond_by > now:
        return state
    if state.retries < policy.retries:
        return replace(state, status=S.RETRYING, retries=state.retries + 1, due_at=now, respond_by=None)
    return replace(state, final=True, due_at=None, respond_by=None)


def opted_out(state: ContactState) -> ContactState:
    """Opt-out (or a number the business already suppressed): never contacted again; the status stays as it was."""
    return replace(state, opted_out=True, final=True, follow_up=False, due_at=None, respond_by=None)


def next_cycle(
    state: ContactState, filter_statuses: frozenset[str], filter_tags: frozenset[str], now: datetime
) -> ContactState | None:
    """The state a contact starts a new cycle in, or None when it stays as it is (SPEC §2.3)."""
    if state.status is S.CONVERTED or state.opted_out:
        return None
    if state.status.value in filter_statuses or state.tags & filter_tags:
        return None
    return replace(
        state,
        status=S.QUEUE,
        retries=0,
        failed_retries=0,
        final=False,
        due_at=now,
        respond_by=None,
        follow_up=False,
        follow_up_attempts=0,
    )
