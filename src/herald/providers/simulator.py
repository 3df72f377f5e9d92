"""The built-in simulator provider: seeded, deterministic, every rate and delay set in the campaign file.

It answers calls and messages with plausible outcomes and schedules the events a real provider would send,
on whatever clock the engine runs (a virtual clock makes a month-long campaign finish in seconds).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from herald.domain.campaign import AgentConfig, ExtractField
from herald.providers.base import CallRequest, MessageRequest, ProviderEvent, StartResult, Throughput

NAME = "simulator"


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PhoneOptions(_Options):
    """Call outcome mix (weights over all calls) and timings."""

    human: float = Field(default=0.55, ge=0)
    machine: float = Field(default=0.25, ge=0)
    unknown: float = Field(default=0.05, ge=0)
    no_answer: float = Field(default=0.08, ge=0)
    busy: float = Field(default=0.04, ge=0)
    failed: float = Field(default=0.03, ge=0)
    ring_seconds_min: float = Field(default=3, ge=0)
    ring_seconds_max: float = Field(default=25, ge=0)
    talk_seconds_median: float = Field(default=75, gt=0)
    talk_seconds_sigma: float = Field(default=0.8, ge=0)
    voicemail_seconds_median: float = Field(default=18, gt=0)
    voicemail_seconds_sigma: float = Field(default=0.4, ge=0)
    ended_by_user: float = Field(default=0.6, ge=0, le=1)

    @model_validator(mode="after")
    def _some_outcome(self) -> PhoneOptions:
        if self.human + self.machine + self.unknown + self.no_answer + self.busy + self.failed <= 0:
            raise ValueError("the call outcome weights (human … failed) add up to zero")
        return self


class ConversationOptions(_Options):
    """What the agent gets out of a human conversation."""

    tag_rate: float = Field(default=0.3, ge=0, le=1)
    field_rate: float = Field(default=0.45, ge=0, le=1)
    convert_rate: float = Field(default=0.2, ge=0, le=1)
    follow_up_rate: float = Field(default=0.05, ge=0, le=1)
    follow_up_hours_min: float = Field(default=20, ge=0)
    follow_up_hours_max: float = Field(default=72, ge=0)


class WhatsAppOptions(_Options):
    """Message outcome rates (each conditional on the step before) and delays."""

    send_error_rate: float = Field(default=0.02, ge=0, le=1)
    failure_rate: float = Field(default=0.05, ge=0, le=1)
    delivered_receipt_rate: float = Field(default=0.9, ge=0, le=1)
    read_rate: float = Field(default=0.65, ge=0, le=1)
    accept_rate: float = Field(default=0.3, ge=0, le=1)
    reject_rate: float = Field(default=0.1, ge=0, le=1)
    opt_out_rate: float = Field(default=0.03, ge=0, le=1)
    link_click_rate: float = Field(default=0.15, ge=0, le=1)
    error_codes: dict[str, float] = Field(
        default_factory=lambda: {"131026": 0.6, "131049": 0.2, "131047": 0.1, "131050": 0.1}
    )

    @model_validator(mode="after")
    def _some_error_code(self) -> WhatsAppOptions:
        if any(weight < 0 for weight in self.error_codes.values()) or sum(self.error_codes.values()) <= 0:
            raise ValueError("error_codes weights must be >= 0 and add up to more than zero")
        return self

    sent_seconds_max: float = Field(default=3, ge=0)
    delivered_seconds_max: float = Field(default=90, ge=0)
    read_minutes_median: float = Field(default=25, gt=0)
    reply_minutes_median: float = Field(default=8, gt=0)


class SimulatorOptions(_Options):
    """`provider_options` of a campaign that uses the simulator."""

    seed: int = 0
    #: Live runs only (`herald worker`): every delay and talk time is multiplied by this, so that a local live
    #: campaign finishes in minutes (0.1: a 75 s conversation takes 7.5 s). Simulated runs ignore it.
    time_scale: float = Field(default=1.0, gt=0, le=1)
    phone: PhoneOptions = PhoneOptions()
    conversation: ConversationOptions = ConversationOptions()
    whatsapp: WhatsAppOptions = WhatsAppOptions()


ERROR_MESSAGES = {
    "131026": "Message Undeliverable.",
    "131047": "Re-engagement message: more than 24 hours since the customer last replied.",
    "131049": "This message was not delivered to maintain healthy ecosystem engagement.",
    "131050": "The user has stopped marketing messages from this business.",
    "131048": "Spam rate limit hit.",
    "131056": "Pair rate limit hit.",
    "130429": "Rate limit hit.",
    "131000": "Something went wrong.",
}

_FIRST = ("Ana", "Luis", "María", "José", "Carmen", "Javier", "Lucía", "Diego", "Sofía", "Pedro", "Elena", "Miguel")
_WORDS = ("yes", "later", "premium", "basic", "card", "transfer", "morning", "evening", "app", "cash")


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return _pick(rng, sum(weights.values()), tuple(weights.items()))


def _pick(rng: random.Random, total: float, weights: tuple[tuple[str, float], ...]) -> str:
    """One of `weights` (name, weight pairs adding up to `total`), drawn with one `rng.random()`."""
    if total <= 0:
        raise ValueError("simulator weights add up to zero")
    pick = rng.random() * total
    for name, weight in weights:
        pick -= weight
        if pick < 0:
            return name
    return weights[-1][0]


_ONE_SECOND = timedelta(seconds=1)
_TWO_SECONDS = timedelta(seconds=2)


def _message_event(
    provider: str,
    external_id: str,
    kind: str,
    occurred_at: datetime,
    ref: str = "",
    data: dict[str, Any] | None = None,
) -> ProviderEvent:
    """A provider event about a WhatsApp message."""
    return ProviderEvent(provider, external_id, kind, occurred_at, ref=ref, data=data or {}, subject="message")


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return float(rng.lognormvariate(math.log(median), sigma))


class Simulator:
    """A deterministic provider for both channels. Events are kept in a time-ordered heap until polled."""

    name = NAME
    #: A new process knows nothing of another's simulated calls: a start whose worker died fails as worker_lost.
    idempotent = False
    throughput: Throughput | None = None

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._heap: list[tuple[datetime, int, ProviderEvent]] = []
        self._sequence = 0
        self._options: dict[int, SimulatorOptions] = {}
        self._outcome_weights: dict[int, tuple[PhoneOptions, float, tuple[tuple[str, float], ...]]] = {}

    def options_for(self, campaign_id: int, raw: dict[str, Any]) -> SimulatorOptions:
        """The campaign's simulator options (validated once per campaign)."""
        options = self._options.get(campaign_id)
        if options is None:
            options = SimulatorOptions.model_validate(raw)
            self._options[campaign_id] = options
        return options

    def _push(self, event: ProviderEvent) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (event.occurred_at, self._sequence, event))

    def poll(self, now: datetime) -> list[ProviderEvent]:
        """Every scheduled event due by `now`, oldest first."""
        due: list[ProviderEvent] = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def next_event_at(self) -> datetime | None:
        """When the earliest scheduled event falls."""
        return self._heap[0][0] if self._heap else None

    # --- phone -------------------------------------------------------------------------------------------------

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        """Accept every call and schedule its ringing, answer and end."""
        results = []
        for request in requests:
            options = self.options_for(request.campaign_id, request.config.provider_options)
            external_id = f"sim-{request.public_id}"
            self._schedule_call(external_id, request, options, now)
            results.append(StartResult(external_id=external_id))
        return results

    def _outcomes(self, phone: PhoneOptions) -> tuple[float, tuple[tuple[str, float], ...]]:
        """The call outcome weights of `phone` and their total, worked out once per options."""
        found = self._outcome_weights.get(id(phone))
        if found is None or found[0] is not phone:
            weights = (
                ("human", phone.human),
                ("machine", phone.machine),
                ("unknown", phone.unknown),
                ("no-answer", phone.no_answer),
                ("busy", phone.busy),
                ("failed", phone.failed),
            )
            found = self._outcome_weights[id(phone)] = (phone, sum(weight for _, weight in weights), weights)
        return found[1], found[2]

    def _schedule_call(self, external_id: str, request: CallRequest, options: SimulatorOptions, now: datetime) -> None:
        # The draws and the pushes keep their order: the same seed gives the same events (and ties in the heap
        # break the same way).
        rng = self._rng
        phone = options.phone
        total, weights = self._outcomes(phone)
        outcome = _pick(rng, total, weights)
        ring = timedelta(
            seconds=rng.uniform(phone.ring_seconds_min, max(phone.ring_seconds_min, phone.ring_seconds_max))
        )
        heap = self._heap
        if outcome == "failed":
            at = now + _ONE_SECOND
            self._sequence += 1
            heapq.heappush(
                heap,
                (at, self._sequence, ProviderEvent(NAME, external_id, "failed", at, data={"reason": "carrier_error"})),
            )
            return
        at = now + _ONE_SECOND
        self._sequence += 1
        heapq.heappush(heap, (at, self._sequence, ProviderEvent(NAME, external_id, "ringing", at)))
        if outcome in ("no-answer", "busy"):
            end = now + (ring if outcome == "no-answer" else _TWO_SECONDS)
            self._sequence += 1
            heapq.heappush(heap, (end, self._sequence, ProviderEvent(NAME, external_id, outcome, end)))
            return
        answered_at = now + ring
        if outcome == "machine":
            talk = _lognormal(rng, phone.voicemail_seconds_median, phone.voicemail_seconds_sigma)
            data: dict[str, Any] = {"ended_by": "agent", "ended_reason": "voicemail"}
        else:
            talk = _lognormal(rng, phone.talk_seconds_median, phone.talk_seconds_sigma)
            by_user = rng.random() < phone.ended_by_user
            data = {
                "ended_by": "user" if by_user else "agent",
                "ended_reason": "user_hangup" if by_user else "agent_hangup",
            }
            data.update(self._conversation(request.config.agent, options, answered_at + timedelta(seconds=talk)))
        ended_at = answered_at + timedelta(seconds=talk)
        self._sequence += 1
        heapq.heappush(
            heap,
            (
                answered_at,
                self._sequence,
                ProviderEvent(NAME, external_id, "in-progress", answered_at, data={"answered_by": outcome}),
            ),
        )
        data.update({"answered_by": outcome, "started_at": answered_at.isoformat(), "recording": True})
        self._sequence += 1
        heapq.heappush(heap, (ended_at, self._sequence, ProviderEvent(NAME, external_id, "ended", ended_at, data=data)))

    def _conversation(self, agent: AgentConfig, options: SimulatorOptions, ended_at: datetime) -> dict[str, Any]:
        rng = self._rng
        conversation = options.conversation
        tags = [tag for tag in agent.tags if rng.random() < conversation.tag_rate]
        extracted = {
            spec.name: self._value(spec, ended_at) for spec in agent.fields if rng.random() < conversation.field_rate
        }
        result: dict[str, Any] = {
            "tags": tags,
            "extracted": extracted,
            "converted": rng.random() < conversation.convert_rate,
        }
        if rng.random() < conversation.follow_up_rate:
            hours = rng.uniform(conversation.follow_up_hours_min, conversation.follow_up_hours_max)
            result["follow_up_at"] = (ended_at + timedelta(hours=hours)).isoformat()
        return result

    def _value(self, spec: ExtractField, at: datetime) -> str:
        rng = self._rng
        name = spec.name.lower()
        if spec.type == "enum":
            return rng.choice(spec.options)
        if spec.type == "bool":
            return rng.choice(("True", "False"))
        if spec.type == "number":
            return str(rng.randrange(100, 5000, 50))
        if spec.type == "date":
            return (at + timedelta(days=rng.randint(1, 30))).date().isoformat()
        if "mail" in name:
            return f"{rng.choice(_FIRST).lower()}.{rng.randrange(10, 999)}@example.com"
        return rng.choice(_WORDS)

    # --- WhatsApp ----------------------------------------------------------------------------------------------

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        """Accept (or refuse) each message and schedule its receipts, replies and clicks."""
        results = []
        for request in requests:
            options = self.options_for(request.campaign_id, request.config.provider_options)
            wa = options.whatsapp
            rng = self._rng
            if rng.random() < wa.send_error_rate:
                code = _weighted(rng, wa.error_codes)
                results.append(StartResult(None, code, ERROR_MESSAGES.get(code, "Message failed to send.")))
                continue
            wamid = f"wamid.sim{request.message_id:012d}{rng.getrandbits(32):08x}"
            self._schedule_message(wamid, request, options, now)
            results.append(StartResult(external_id=wamid))
        return results

    def _schedule_message(self, wamid: str, request: MessageRequest, options: SimulatorOptions, now: datetime) -> None:
        rng = self._rng
        wa = options.whatsapp
        sent_at = now + timedelta(seconds=rng.uniform(0.2, max(0.2, wa.sent_seconds_max)))
        self._push(_message_event(NAME, wamid, "sent", sent_at))
        if rng.random() < wa.failure_rate:
            code = _weighted(rng, wa.error_codes)
            failed_at = sent_at + timedelta(seconds=rng.uniform(1, 30))
            failure: dict[str, Any] = {"error_code": code, "error_msg": ERROR_MESSAGES.get(code, "Message failed.")}
            self._push(_message_event(NAME, wamid, "failed", failed_at, data=failure))
            return
        delivered_at = sent_at + timedelta(seconds=rng.uniform(0.5, max(0.5, wa.delivered_seconds_max)))
        if rng.random() < wa.delivered_receipt_rate:
            self._push(_message_event(NAME, wamid, "delivered", delivered_at))
        if rng.random() >= wa.read_rate:
            return
        read_at = delivered_at + timedelta(minutes=_lognormal(rng, wa.read_minutes_median, 1.0))
        self._push(_message_event(NAME, wamid, "read", read_at))
        reply_at = read_at + timedelta(minutes=_lognormal(rng, wa.reply_minutes_median, 0.8))
        if rng.random() < wa.link_click_rate:
            click_at = read_at + timedelta(seconds=rng.uniform(5, 600))
            bits = rng.getrandbits(24)
            # One of the campaign's tracked links when it has some (same draws either way: runs stay reproducible).
            tracked = request.config.tracked_links
            link = tracked[bits % len(tracked)] if tracked else None
            self._push(
                _message_event(
                    NAME,
                    f"{wamid}.link",
                    "link_click",
                    click_at,
                    ref=wamid,
                    data={"id": link.id, "name": link.name} if link else {"id": f"lnk{bits:06x}", "name": "Ver oferta"},
                )
            )
        pick = rng.random()
        if pick < wa.opt_out_rate:
            self._push(
                _message_event(
                    NAME,
                    f"{wamid}.in",
                    "opt_out",
                    reply_at,
                    ref=wamid,
                    data={"id": "btn-stop", "name": "Stop promotions"},
                )
            )
        elif pick < wa.opt_out_rate + wa.accept_rate:
            data: dict[str, Any] = {"id": "btn-yes", "name": "Yes", "accepted": True}
            data.update(self._conversation(request.config.agent, options, reply_at))
            data.pop("follow_up_at", None)
            self._push(_message_event(NAME, f"{wamid}.in", "reply", reply_at, ref=wamid, data=data))
        elif pick < wa.opt_out_rate + wa.accept_rate + wa.reject_rate:
            self._push(
                _message_event(
                    NAME,
                    f"{wamid}.in",
                    "reply",
                    reply_at,
                    ref=wamid,
                    data={"id": "btn-no", "name": "No", "accepted": False},
                )
            )


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@runtime_checkable
class SchedulesEvents(Protocol):
    """An outbound adapter that knows its attempts' future events (the live simulator, test doubles built on it)."""

    def scheduled(self, now: datetime) -> list[ProviderEvent]:
        """Every event the starts so far will produce, each with the instant it falls due; taken once."""
        ...


class LiveSimulator:
    """The simulator on the real clock, under `herald worker`: each start's events (its whole future, scaled by
    `time_scale`) are handed to the worker, which stores them in the inbox to be applied when they fall due, like a
    real provider's webhooks. A worker's death then loses none of them."""

    name = NAME
    idempotent = False
    throughput: Throughput | None = None

    def __init__(self, options: SimulatorOptions) -> None:
        # Seeded from the system: two workers must not draw the same outcomes for their calls.
        self._simulator = Simulator(random.SystemRandom().getrandbits(64) ^ options.seed)
        self._scale = options.time_scale

    def _scaled(self, event: ProviderEvent, now: datetime) -> ProviderEvent:
        if self._scale == 1:
            return event
        data = dict(event.data)
        for key in ("started_at", "follow_up_at"):
            if data.get(key):
                instant = datetime.fromisoformat(str(data[key]))
                data[key] = (now + (instant - now) * self._scale).isoformat()
        return ProviderEvent(
            event.provider,
            event.external_id,
            event.kind,
            now + (event.occurred_at - now) * self._scale,
            ref=event.ref,
            data=data,
            subject=event.subject,
            attempt_id=event.attempt_id,
        )

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        """Accept every call (its events wait in `scheduled`)."""
        return self._simulator.start_calls(requests, now)

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        """Accept (or refuse) each message (its events wait in `scheduled`)."""
        return self._simulator.send_messages(requests, now)

    def scheduled(self, now: datetime) -> list[ProviderEvent]:
        """Every event the starts so far will produce, with the instant each falls due; taken once."""
        return [self._scaled(event, now) for event in self._simulator.poll(_END_OF_TIME)]


def live_simulator(options: SimulatorOptions) -> LiveSimulator:
    """The registry's factory for `provider: simulator` under `herald worker`."""
    return LiveSimulator(options)
