"""The provider seam: one Protocol that the simulator and every real provider (Twilio, Vapi, WhatsApp) implement.

Providers start attempts and report what happened as normalised `ProviderEvent`s; they never touch the store.
The engine records each event once (unique on provider, external id, kind) and applies the pure rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from herald.domain.campaign import CampaignConfig


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One call to place; `public_id` is Herald's id of the call (the `cll_…` id of the exports)."""

    public_id: str
    campaign_id: int
    contact_id: int
    to: str
    name: str
    context: str
    first_message: str | None
    follow_up: bool
    config: CampaignConfig
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageRequest:
    """One WhatsApp template message to send."""

    message_id: int
    campaign_id: int
    contact_id: int
    to: str
    template: str
    config: CampaignConfig
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StartResult:
    """The provider's synchronous answer to a start: its id for the attempt, or an error."""

    external_id: str | None
    error_code: str = ""
    error_msg: str = ""

    @property
    def ok(self) -> bool:
        """True when the provider took the attempt."""
        return self.external_id is not None and not self.error_code


#: Call event kinds are call statuses (ringing, in-progress, ended, busy, no-answer, failed).
#: Message event kinds: sent, delivered, read, failed, reply (button or text), link_click, opt_out.
@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """Something a provider reports. `external_id` + `kind` identify it; `ref` names the message a reply answers."""

    provider: str
    external_id: str
    kind: str
    occurred_at: datetime
    ref: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    #: What the event is about: "call" or "message" (a reply or click names its message in `ref`).
    subject: str = "call"

    @property
    def key(self) -> tuple[str, str, str]:
        """The idempotency key: the same event twice is applied once."""
        return (self.provider, self.external_id, self.kind)


class Provider(Protocol):
    """What the engine needs of a provider."""

    name: str

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        """Place calls; one result per request, in order."""
        ...

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        """Send WhatsApp messages; one result per request, in order."""
        ...

    def poll(self, now: datetime) -> list[ProviderEvent]:
        """Events that have arrived by `now` (a simulator's due events, or webhooks queued by the API)."""
        ...

    def next_event_at(self) -> datetime | None:
        """When the next event is expected, if the provider knows (simulators do); else None."""
        ...
