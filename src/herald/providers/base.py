"""The provider seam, split in two: outbound (place calls, send messages) and inbound (verify and parse webhooks).

Providers never touch the store. Outbound adapters are called by a worker *after* the attempt's row has committed,
outside any transaction; they are told Herald's id of each attempt (as idempotency key and in the callback), so a
webhook can always find its attempt. Inbound adapters are pure: `parse` turns a webhook body into normalised
`ProviderEvent`s and `verify` checks its signature; whichever process receives the webhook puts the events in the
inbox (the `events` table, unique on provider, external id, kind) and a worker applies them through the rules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
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
    """One WhatsApp template message to send; `message_id` is Herald's id of the message row."""

    message_id: int
    campaign_id: int
    contact_id: int
    to: str
    template: str
    config: CampaignConfig
    variables: Mapping[str, str] = field(default_factory=dict)
    #: The contact's `context` column (a template body parameter may name it).
    context: str = ""


class StartError(StrEnum):
    """How a start failed, which decides what happens next."""

    #: 429, 5xx, timeouts, connection errors: tried again later with backoff; `failed_retry_limit` is not consumed.
    RETRYABLE = "retryable"
    #: Any other refusal (4xx): the attempt fails with the provider's code and message, through the failed-retry rule.
    REJECTED = "rejected"


#: The provider id of an attempt the provider may have taken without Herald learning its id (the answer to the start
#: was lost on the wire, and the provider has no idempotency key to ask again with). The attempt counts as placed, so
#: it is never sent twice: the first webhook that names Herald's id puts the provider's id in its place (see
#: `store.claims.adopt`); if none ever comes, the contact's lease runs out and the attempt fails as `lease_expired`.
PENDING_PREFIX = "pending:"


def pending_id(attempt_id: str) -> str:
    """The stand-in provider id of an attempt whose start answer was lost (see PENDING_PREFIX)."""
    return PENDING_PREFIX + attempt_id


@dataclass(frozen=True, slots=True)
class StartResult:
    """The provider's synchronous answer to a start: its id for the attempt, or an error."""

    external_id: str | None
    error_code: str = ""
    error_msg: str = ""
    #: Set when the start failed; None when the provider took the attempt.
    error: StartError | None = None

    @property
    def ok(self) -> bool:
        """True when the provider took the attempt."""
        return self.external_id is not None and not self.error_code and self.error is None

    @classmethod
    def retryable(cls, code: str, message: str) -> StartResult:
        """A failure worth trying again (rate limit, server error, timeout)."""
        return cls(None, code, message, StartError.RETRYABLE)

    @classmethod
    def rejected(cls, code: str, message: str) -> StartResult:
        """A refusal: the attempt fails."""
        return cls(None, code, message, StartError.REJECTED)


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
    #: Herald's id of the attempt when the provider echoes it (a call's `cll_…` id, a message's row id as text):
    #: it finds the attempt even if the worker that started it died before recording the provider's id.
    attempt_id: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """The idempotency key: the same event twice is applied once."""
        return (self.provider, self.external_id, self.kind)


@dataclass(frozen=True, slots=True)
class Throughput:
    """A provider's starts-per-second limit, shared by every worker that uses the same account or number.

    `key` names what the limit belongs to (e.g. `twilio:AC…`, `whatsapp_cloud:<phone_number_id>`): workers with the
    same key share one budget through the database, whatever campaign they run.
    """

    key: str
    per_second: float
    burst: float = 1.0


class Outbound(Protocol):
    """Places calls and sends messages. Called outside any database transaction."""

    name: str
    #: True when the provider treats a repeated Herald id as the same attempt (an idempotency key): a start whose
    #: answer was lost (worker died, timeout) is then sent again; otherwise it fails as `worker_lost`.
    idempotent: bool
    #: The account's or number's rate limit on starts, honoured across workers; None when the provider has none.
    throughput: Throughput | None

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        """Place calls; one result per request, in order. Never raises for a provider's refusal or a network error."""
        ...

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        """Send WhatsApp messages; one result per request, in order."""
        ...


class WebhookError(ValueError):
    """A webhook that cannot be accepted; `status` is the HTTP answer (401/403 bad signature, 422 bad body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Inbound(Protocol):
    """Turns a provider's webhook into normalised events. Pure: no I/O, no clock."""

    name: str
    #: The HTTP status of a webhook whose signature does not verify (401, or 403 where the provider expects it).
    signature_status: int

    def parse(self, body: bytes, headers: Mapping[str, str], url: str = "") -> list[ProviderEvent]:
        """The events in a webhook body; WebhookError(422) naming the problem when it is malformed.

        `url` is the full URL the webhook was posted to (providers that carry Herald's id in the callback URL).
        """
        ...

    def verify(self, body: bytes, headers: Mapping[str, str], url: str, options: Mapping[str, Any]) -> bool:
        """True when the webhook is signed with the credentials in a campaign's `provider_options`."""
        ...


#: Herald's public base URL when `HERALD_PUBLIC_URL` is not set (a local `herald serve`).
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def public_url(default: str = DEFAULT_PUBLIC_URL) -> str:
    """Herald's public base URL (`HERALD_PUBLIC_URL`, else `default`), without a trailing slash: the base of every
    callback, tracked-link and recording URL (SPEC §11)."""
    return (os.environ.get("HERALD_PUBLIC_URL") or default).rstrip("/")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A webhook header's value whatever the case of its name; None when absent."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((item for key, item in headers.items() if key.lower() == wanted), None)


def resolve_secret(value: Any) -> str:
    """A credential from `provider_options`: `env:NAME` reads the environment variable NAME, anything else is itself.

    Raises KeyError naming the variable (never its value) when it is not set.
    """
    text = "" if value is None else str(value)
    if text.startswith("env:"):
        name = text[4:]
        if name not in os.environ:
            raise KeyError(f"environment variable {name} is not set")
        return os.environ[name]
    return text
