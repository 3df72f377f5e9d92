"""Provider events applied to calls, messages and contacts, a batch at a time: load → decide → save.

For each provider's events in a batch: load the calls (or messages) they name and, for those that end an attempt,
their contacts, in the caller's transaction; decide through the pure rules (a call's status only moves forward, an
ended call is billed by its campaign's own rules, `rules.call_ended`/`message_*` give the contact's next state); save
the changed calls or messages, the contacts, and the outbox's call-ended records. Events are recorded once each
(`Tx.record_events` or the inbox) before they come here; those whose call or message is unknown are handed back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from herald.domain import rules
from herald.domain.billing import billed_seconds
from herald.domain.durations import call_seconds
from herald.domain.rules import CallResult, ContactState, Conversation
from herald.domain.statuses import CALL_STATUS_RANK, TERMINAL_CALL_STATUSES, AnsweredBy, CallStatus
from herald.engine.context import CampaignContext
from herald.outbox import hooks as outbox
from herald.providers.base import ProviderEvent
from herald.store.queries import ContactChange, Tx
from herald.store.records import CallRecord

CALL_KINDS = frozenset(status.value for status in CallStatus)
MESSAGE_KINDS = frozenset({"sent", "delivered", "read", "failed", "reply", "link_click", "opt_out"})
#: A call event's kind: its status, the status's text and rank (looked up once per event, not through the enum).
_CALL_KINDS = {status.value: (status, status.value, CALL_STATUS_RANK[status]) for status in CallStatus}
_CALL_RANK = {status.value: rank for status, rank in CALL_STATUS_RANK.items()}
_ANSWERED_BY: Mapping[str, AnsweredBy] = {member.value: member for member in AnsweredBy}
_OCCURRED_AT = attrgetter("occurred_at")


def _connectly_ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EventApplier:
    """Applies recorded events; `context_of` gives a campaign's context as read in the transaction at hand."""

    context_of: Callable[[int, Tx], CampaignContext]
    #: The base of recording URLs (HERALD_PUBLIC_URL).
    public_base_url: str

    def apply(self, tx: Tx, events: Sequence[ProviderEvent], now: datetime) -> list[ProviderEvent]:
        """Apply recorded events through the rules; returns those whose call or message is not known (yet)."""
        unmatched: list[ProviderEvent] = []
        by_provider: dict[str, list[ProviderEvent]] = {}
        for event in events:
            by_provider.setdefault(event.provider, []).append(event)
        for provider, group in by_provider.items():
            call_events = [event for event in group if event.subject == "call" and event.kind in CALL_KINDS]
            message_events = [event for event in group if event.subject == "message" and event.kind in MESSAGE_KINDS]
            if call_events:
                unmatched.extend(self._calls(tx, provider, call_events, now))
            if message_events:
                unmatched.extend(self._messages(tx, provider, message_events, now))
        return unmatched

    def _calls(self, tx: Tx, provider: str, events: Sequence[ProviderEvent], now: datetime) -> list[ProviderEvent]:
        # Load the calls the events name; decide each event in the order it happened (a call's status only moves
        # forward, an ending sets its final values); save the calls. Then the same for the contacts of the calls
        # that ended: load, `rules.call_ended`, save (with the outbox's records).
        calls = tx.calls_by_provider_ids(provider, [event.external_id for event in events])
        ended: list[tuple[CallRecord, ProviderEvent, CampaignContext]] = []
        unmatched: list[ProviderEvent] = []
        for event in sorted(events, key=_OCCURRED_AT) if len(events) > 1 else events:
            call = calls.get(event.external_id)
            if call is None:
                unmatched.append(event)
                continue
            status, text, rank = _CALL_KINDS[event.kind]
            current = _CALL_RANK.get(call.status)
            if current is None:
                current = CALL_STATUS_RANK[CallStatus(call.status)]
            if rank <= current:
                continue  # late, repeated or out of order: a call never moves backwards
            values = call.values
            call.status = text
            values["status"] = text
            answered_by = event.data.get("answered_by")
            if answered_by and call.answered_by is None:
                call.answered_by = str(answered_by)
                values["answered_by"] = call.answered_by
            if status is CallStatus.IN_PROGRESS and call.started_at is None:
                call.started_at = event.occurred_at
                values["started_at"] = event.occurred_at
            if status in TERMINAL_CALL_STATUSES:
                context = self.context_of(call.campaign_id, tx)
                finish_call(call, status, event, context, self.public_base_url)
                ended.append((call, event, context))
        tx.update_calls(list(calls.values()))
        if not ended:
            return unmatched
        contacts = tx.contacts_by_id(call.contact_id for call, _, _ in ended)
        changes: list[ContactChange] = []
        for call, event, context in ended:
            record = contacts[call.contact_id]
            data = event.data
            conversation = Conversation(
                tags=frozenset(data.get("tags", ())),
                # As `_finish_call` stored it for the call (nothing changes it afterwards).
                extracted=call.values["extracted"],
                converted=bool(data.get("converted", False)),
                follow_up_at=_parse_time(data.get("follow_up_at")),
            )
            result = CallResult(
                status=_CALL_KINDS[call.status][0],
                answered_by=(_ANSWERED_BY.get(call.answered_by) or AnsweredBy(call.answered_by))
                if call.answered_by
                else None,
                duration=int(call.values.get("duration", 0)),
                conversation=conversation,
                follow_up_call=call.follow_up,
            )
            state = rules.call_ended(
                record.state,
                result,
                context.policy,
                context.campaign.config.agent.conversion,
                context.billing,
                event.occurred_at,
                context.follow_up_window,
                context.zone_for(record.contact),
            )
            changes.append((record.id, state, {"inflight_id": None, "lease_expires_at": None}))
        tx.save_contacts(changes, now)
        outbox.calls_ended(tx, [(context.campaign, call.id) for call, _, context in ended], now)
        return unmatched

    def _messages(self, tx: Tx, provider: str, events: Sequence[ProviderEvent], now: datetime) -> list[ProviderEvent]:
        # Load the messages and their contacts; decide each event in the order it happened (receipts, failures,
        # replies, clicks, opt-outs through the rules); save messages, then contacts (those whose attempt ended
        # released from it).
        messages = tx.messages_by_provider_ids(provider, [event.ref or event.external_id for event in events])
        contacts = tx.contacts_by_id(message.contact_id for message in messages.values())
        states: dict[int, ContactState] = {}
        extra: dict[int, dict[str, Any]] = {}
        unmatched: list[ProviderEvent] = []
        for event in sorted(events, key=lambda item: item.occurred_at):
            message = messages.get(event.ref or event.external_id)
            if message is None:
                unmatched.append(event)
                continue
            record = contacts[message.contact_id]
            context = self.context_of(message.campaign_id, tx)
            state = states.get(record.id, record.state)
            current = record.current_message_id == message.id
            at = event.occurred_at
            if event.kind in ("sent", "delivered", "read"):
                column = f"{event.kind}_at"
                if getattr(message, column) is None:
                    setattr(message, column, at)
                    message.changed = True
                state = rules.message_receipt(state, event.kind, at, context.policy, current)
            elif event.kind == "failed":
                message.error_code = str(event.data.get("error_code", ""))
                message.error_msg = str(event.data.get("error_msg", ""))
                message.changed = True
                state = rules.message_failed(state, context.policy, at, current)
            elif event.kind in ("reply", "opt_out"):
                if event.data.get("id"):
                    click = {
                        "id": str(event.data["id"]),
                        "name": str(event.data.get("name", "")),
                        "ts": _connectly_ts(at),
                    }
                    message.button_clicks = [*message.button_clicks, click]
                    message.changed = True
                if event.kind == "opt_out":
                    message.opt_out_at = message.opt_out_at or at
                    message.changed = True
                    state = rules.opted_out(state)
                    tx.suppress(context.campaign.business_id, record.contact, at, f"campaign:{context.campaign.id}")
                else:
                    conversation = Conversation(
                        tags=frozenset(event.data.get("tags", ())),
                        extracted={str(k): str(v) for k, v in dict(event.data.get("extracted", {})).items()},
                        converted=bool(event.data.get("converted", False)),
                    )
                    if conversation.extracted:
                        message.output_variables = {**message.output_variables, **conversation.extracted}
                        message.changed = True
                    accepted = bool(event.data.get("accepted", False))
                    state = rules.message_reply(state, accepted, conversation, context.campaign.config.agent.conversion)
            elif event.kind == "link_click":
                click = {
                    "id": str(event.data.get("id", "")),
                    "name": str(event.data.get("name", "")),
                    "ts": _connectly_ts(at),
                }
                message.link_clicks = [*message.link_clicks, click]
                message.changed = True
            states[record.id] = state
            if current and event.kind in ("sent", "failed") and record.inflight_id == message.id:
                extra.setdefault(record.id, {"inflight_id": None, "lease_expires_at": None})
        tx.update_messages(list(messages.values()))
        released = [(cid, state, extra[cid]) for cid, state in states.items() if cid in extra]
        kept: list[ContactChange] = [(cid, state, {}) for cid, state in states.items() if cid not in extra]
        tx.save_contacts(released, now)
        tx.save_contacts(kept, now)
        return unmatched


def finish_call(
    call: CallRecord, status: CallStatus, event: ProviderEvent, context: CampaignContext, public_base_url: str
) -> None:
    """Set an ended call's final values from its ending event (answered or not, duration, billing by the campaign's
    own rules, recording URL, tags and extracted fields): pure, on the call record alone."""
    data = event.data
    started_at = call.started_at or _parse_time(data.get("started_at"))
    answered = status is CallStatus.ENDED and started_at is not None
    if not answered:
        started_at = None
        call.answered_by = None
        call.values["answered_by"] = None
    duration = call_seconds(started_at, event.occurred_at)
    # The campaign's own billing, read in this transaction: a fresh worker bills exactly like an old one.
    billed = billed_seconds(duration, call.answered_by, context.billing)
    call.ended_at = event.occurred_at
    call.values.update(
        {
            "started_at": started_at,
            "ended_at": event.occurred_at,
            "duration": duration,
            "billed_seconds": billed,
            "ended_by": str(data.get("ended_by", "")) if answered else "",
            "ended_reason": str(data.get("ended_reason", data.get("reason", ""))),
            "recording_url": f"{public_base_url}/api/v1.0/call/{call.public_id}/recording"
            if answered and data.get("recording")
            else "",
            "tags": sorted(str(tag) for tag in data.get("tags", ())),
            "extracted": {str(k): str(v) for k, v in dict(data.get("extracted", {})).items()},
        }
    )
