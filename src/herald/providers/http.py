"""Herald's open HTTP provider: any agent backend that speaks a small JSON contract (docs/providers/http.md).

Outbound: `POST {base_url}/calls` and `POST {base_url}/messages`, one request per attempt with Herald's id as the
`Idempotency-Key`, sent concurrently over one keep-alive client. Inbound: the backend posts batches of events to
`{HERALD_PUBLIC_URL}/webhooks/http`, signed with `X-Herald-Signature` = base64(HMAC-SHA256(secret, raw body)).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.providers.base import (
    CallRequest,
    Inbound,
    MessageRequest,
    Outbound,
    ProviderEvent,
    StartResult,
    Throughput,
    WebhookError,
    header,
    public_url,
    resolve_secret,
)
from herald.providers.transport import MAX_CONCURRENCY as MAX_CONCURRENCY
from herald.providers.transport import MAX_MESSAGE as MAX_MESSAGE

# Re-exported (`X as X`): other adapters and branches import these two from here.
from herald.providers.transport import Answer, PooledOutbound, redact, response_json, says_later

NAME = "http"
SIGNATURE_HEADER = "X-Herald-Signature"
WEBHOOK_PATH = "/webhooks/http"

CALL_KINDS = frozenset({"ringing", "in-progress", "forwarding", "ended", "busy", "no-answer", "failed"})
MESSAGE_KINDS = frozenset({"sent", "delivered", "read", "failed", "reply", "link_click", "opt_out"})
#: Message events that are an action of the recipient: several of one kind may happen per message, so each is
#: identified by its own event id and names its message in `ref`.
RECIPIENT_KINDS = frozenset({"reply", "link_click", "opt_out"})
ANSWERED_BY = frozenset({"human", "machine", "unknown", ""})
ENDED_BY = frozenset({"agent", "user", "system", ""})

# RFC 3339 with a mandatory offset; ASCII digits only (Python's \d would also take other scripts' digits).
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _is_base64(text: str) -> bool:
    try:
        return bool(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return False


class HttpOptions(BaseModel):
    """`provider_options` of a campaign on the HTTP provider.

    `auth_token` and `webhook_secret` may be `env:NAME`, read from the environment when used (never stored).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    # repr=False: options end up in logs and tracebacks; a literal credential must not.
    auth_token: str = Field(min_length=1, repr=False)
    #: Base64 text; its decoded bytes are the HMAC key of the webhook signature.
    webhook_secret: str = Field(min_length=1, repr=False)
    timeout_seconds: float = Field(default=10, gt=0)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: str) -> str:
        # An env: reference is checked when used: the variable may be set only where `herald serve` runs.
        if not value.startswith("env:") and not _is_base64(value):
            raise ValueError("must be base64 text (or env:NAME)")
        return value


def sign(secret_b64: str, body: bytes) -> str:
    """The `X-Herald-Signature` of a body: base64(HMAC-SHA256(key = base64-decoded secret, message = raw body)).

    Raises ValueError when the secret is not base64.
    """
    key = base64.b64decode(secret_b64, validate=True)
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


class HttpOutbound(PooledOutbound):
    """Places calls and sends messages through an HTTP agent backend. Thread-safe; call `close()` when done."""

    name = NAME
    idempotent = True
    throughput: Throughput | None = None

    def __init__(self, options: HttpOptions, max_concurrency: int = MAX_CONCURRENCY) -> None:
        super().__init__(options.base_url, options.timeout_seconds, max_concurrency, "herald-http", keep_alive=True)
        self.options = options
        self.callback_url = public_url() + WEBHOOK_PATH

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        """Place each call with `POST /calls`; one result per request, in order. Never raises for provider errors."""
        bodies = [
            (
                request.public_id,
                {
                    "call_id": request.public_id,
                    "campaign_id": request.campaign_id,
                    "to": request.to,
                    "name": request.name,
                    "context": request.context,
                    "first_message": request.first_message,
                    "variables": dict(request.variables),
                    "callback_url": self.callback_url,
                },
            )
            for request in requests
        ]
        return self._post_all("/calls", bodies)

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        """Send each message with `POST /messages`; one result per request, in order."""
        bodies = [
            (
                str(request.message_id),
                {
                    "message_id": str(request.message_id),
                    "campaign_id": request.campaign_id,
                    "to": request.to,
                    "template": request.template,
                    "variables": dict(request.variables),
                    "callback_url": self.callback_url,
                },
            )
            for request in requests
        ]
        return self._post_all("/messages", bodies)

    def _post_all(self, path: str, bodies: Sequence[tuple[str, dict[str, Any]]]) -> list[StartResult]:
        url = self.options.base_url + path

        def post(item: tuple[str, dict[str, Any]], token: str) -> StartResult:
            key, body = item
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
            response = self._post_kept(url, body, headers, "auth_token")
            return response if isinstance(response, StartResult) else _classify(response, token)

        return self._start_all(bodies, lambda: resolve_secret(self.options.auth_token), post)


def _classify(response: Answer, token: str) -> StartResult:
    """A backend's answer to a start as a StartResult (see the retry classification in the contract)."""
    status, payload = response.status_code, response_json(response)
    if 200 <= status < 300:
        external_id = payload.get("external_id") if isinstance(payload, dict) else None
        if isinstance(external_id, str) and external_id:
            return StartResult(external_id=external_id)
        return StartResult.rejected("bad_response", f"HTTP {status} without a string external_id")
    code = f"http_{status}"
    message = response.text
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        if isinstance(error.get("code"), str) and error["code"]:
            code = error["code"]
        if isinstance(error.get("message"), str):
            message = error["message"]
    message = redact(message, token) or response.reason_phrase
    if says_later(status):
        return StartResult.retryable(f"http_{status}", message)
    return StartResult.rejected(redact(code, token)[:100], message)


# --- inbound -------------------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


class _Event:
    """One raw event of a webhook body, with checks that name the event's index and field."""

    def __init__(self, index: int, raw: Any) -> None:
        self.index = index
        if not isinstance(raw, dict):
            self.fail("", "must be an object")
        self.raw: dict[str, Any] = raw
        #: Timestamps already checked and parsed: `check_optional` and the kind's data read the same fields.
        self._times: dict[str, datetime | None] = {}

    def fail(self, field: str, problem: str) -> NoReturn:
        where = f"events[{self.index}]" + (f".{field}" if field else "")
        raise WebhookError(422, f"{where}: {problem}")

    def text(self, field: str, *, required: bool = False, default: str = "") -> str:
        value = self.raw.get(field)
        if value is None:
            if required:
                self.fail(field, "is required")
            return default
        if not isinstance(value, str):
            self.fail(field, "must be a string")
        if required and not value:
            self.fail(field, "must not be empty")
        return value

    def flag(self, field: str, *, required: bool = False) -> bool:
        value = self.raw.get(field)
        if value is None:
            if required:
                self.fail(field, "is required")
            return False
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
        return value

    def time(self, field: str, *, required: bool = False) -> datetime | None:
        if field in self._times:
            return self._times[field]
        value = self.raw.get(field)
        if value is None:
            if required:
                self.fail(field, "is required")
            return None
        if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
            self.fail(field, "must be an ISO 8601 timestamp with an offset, e.g. 2026-01-05T15:00:00Z")
        try:
            parsed = self._times[field] = datetime.fromisoformat(value).astimezone(UTC)
        except (ValueError, OverflowError):
            self.fail(field, f"is not a valid timestamp: {value[:40]!r}")
        return parsed

    def choice(self, field: str, allowed: frozenset[str]) -> str:
        value = self.text(field)
        if value not in allowed:
            self.fail(field, f"must be one of {', '.join(repr(item) for item in sorted(allowed))}")
        return value

    def tags(self) -> list[str]:
        value = self.raw.get("tags")
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
            self.fail("tags", "must be a list of strings")
        return list(value)

    def extracted(self) -> dict[str, str]:
        value = self.raw.get("extracted")
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
            self.fail("extracted", "must be an object of strings")
        return dict(value)

    def named(self, field: str, *, required: bool = False) -> dict[str, str] | None:
        """A `{"id", "name"}` object (a button, a link)."""
        value = self.raw.get(field)
        if value is None:
            if required:
                self.fail(field, "is required")
            return None
        if not isinstance(value, dict):
            self.fail(field, 'must be an object {"id", "name"}')
        ident, name = value.get("id"), value.get("name", "")
        if not isinstance(ident, str) or not ident:
            self.fail(f"{field}.id", "must be a non-empty string")
        if not isinstance(name, str):
            self.fail(f"{field}.name", "must be a string")
        return {"id": ident, "name": name}

    def check_optional(self) -> None:
        """Every optional field the contract names has its documented type, on any event that carries it."""
        # Only the fields the event carries, in the contract's order (the first problem found is the one reported):
        # an absent field passes every check, and most events carry two or three of these fourteen. Half a webhook's
        # parsing went to looking up the absent ones.
        for name, check in _OPTIONAL_CHECKS:
            if name in self.raw:
                check(self, name)

    def outcome(self) -> dict[str, Any]:
        """What the agent got out of a conversation."""
        return {"tags": self.tags(), "extracted": self.extracted(), "converted": self.flag("converted")}


#: `_Event.check_optional`'s checks, in the order they are made: (field, check of that field).
_OPTIONAL_CHECKS: tuple[tuple[str, Callable[[_Event, str], object]], ...] = (
    *((name, _Event.text) for name in ("ended_reason", "recording_url", "error_code", "error_msg", "text")),
    *((name, _Event.time) for name in ("started_at", "ended_at", "follow_up_at")),
    ("answered_by", lambda event, name: event.choice(name, ANSWERED_BY)),
    ("ended_by", lambda event, name: event.choice(name, ENDED_BY)),
    ("tags", lambda event, _: event.tags()),
    ("extracted", lambda event, _: event.extracted()),
    ("converted", _Event.flag),
    ("accepted", _Event.flag),
    ("button", _Event.named),
    ("link", _Event.named),
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _call_data(event: _Event, kind: str) -> tuple[dict[str, Any], datetime | None]:
    """The normalised `data` of a call event, and its end time when it overrides `occurred_at`."""
    if kind == "in-progress":
        answered_by = event.choice("answered_by", ANSWERED_BY)
        return ({"answered_by": answered_by} if answered_by else {}), None
    if kind == "failed":
        code = event.text("error_code")
        data: dict[str, Any] = {"error_code": code, "error_msg": event.text("error_msg")}
        # The engine keeps a call's reason in `ended_reason`; a failed call's reason is its error code.
        data["ended_reason"] = event.text("ended_reason") or code
        return data, None
    if kind != "ended":
        return {}, None
    ended_at = event.time("ended_at")
    recording_url = event.text("recording_url")
    ended: dict[str, Any] = {
        "answered_by": event.choice("answered_by", ANSWERED_BY),
        "started_at": _iso(event.time("started_at")),
        "ended_at": _iso(ended_at),
        "ended_by": event.choice("ended_by", ENDED_BY),
        "ended_reason": event.text("ended_reason"),
        "recording": bool(recording_url),
        "recording_url": recording_url,
        **event.outcome(),
        "follow_up_at": _iso(event.time("follow_up_at")),
    }
    return ended, ended_at


def _message_data(event: _Event, kind: str) -> dict[str, Any]:
    """The normalised `data` of a message event."""
    if kind == "failed":
        return {"error_code": event.text("error_code"), "error_msg": event.text("error_msg")}
    if kind == "reply":
        button = event.named("button")
        text = event.text("text")
        if button is None and event.raw.get("text") is None:
            event.fail("button", "a reply needs a button or a text")
        data: dict[str, Any] = dict(button or {})
        data.update({"text": text, "accepted": event.flag("accepted", required=True), **event.outcome()})
        return data
    if kind == "link_click":
        return dict(event.named("link", required=True) or {})
    if kind == "opt_out":
        return dict(event.named("button") or {})
    return {}


def _parse_event(event: _Event) -> ProviderEvent:
    has_call, has_message = "call_id" in event.raw, "message_id" in event.raw
    if has_call == has_message:
        event.fail("call_id", "an event names exactly one of call_id or message_id")
    event_id = event.text("event_id", required=True)
    external_id = event.text("external_id", required=True)
    kind = event.text("type", required=True)
    occurred_at = event.time("occurred_at", required=True) or event.fail("occurred_at", "is required")
    # Checked on every event, not only where the kind uses them, so the JSON Schema of the docs can say the same.
    event.check_optional()
    if has_call:
        call_id = event.text("call_id", required=True)
        if kind not in CALL_KINDS:
            event.fail("type", f"unknown call event type {kind[:40]!r}")
        data, ended_at = _call_data(event, kind)
        return ProviderEvent(
            NAME, external_id, kind, ended_at or occurred_at, data=data, subject="call", attempt_id=call_id
        )
    message_id = event.text("message_id", required=True)
    if kind not in MESSAGE_KINDS:
        event.fail("type", f"unknown message event type {kind[:40]!r}")
    data = _message_data(event, kind)
    if kind in RECIPIENT_KINDS:
        return ProviderEvent(
            NAME, event_id, kind, occurred_at, ref=external_id, data=data, subject="message", attempt_id=message_id
        )
    return ProviderEvent(NAME, external_id, kind, occurred_at, data=data, subject="message", attempt_id=message_id)


class HttpInbound:
    """Verifies and parses the webhooks of an HTTP agent backend. Pure: no I/O, no clock."""

    name = NAME
    signature_status = 401

    def parse(self, body: bytes, headers: Mapping[str, str], url: str = "") -> list[ProviderEvent]:
        """The events of a body `{"events": [...]}`; WebhookError(422) naming the event index and field otherwise."""
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise WebhookError(422, "body is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            raise WebhookError(422, 'body must be an object {"events": [...]}')
        return [_parse_event(_Event(index, raw)) for index, raw in enumerate(payload["events"])]

    def verify(self, body: bytes, headers: Mapping[str, str], url: str, options: Mapping[str, Any]) -> bool:
        """True when `X-Herald-Signature` is the body's HMAC under the options' `webhook_secret` (constant time)."""
        given = header(headers, SIGNATURE_HEADER)
        if not given:
            return False
        try:
            expected = sign(resolve_secret(options.get("webhook_secret")), body)
        except (KeyError, ValueError):
            return False
        return hmac.compare_digest(expected.encode("ascii"), given.strip().encode("utf-8", "replace"))


if TYPE_CHECKING:
    # The registry builds the adapters by name; this makes mypy hold them to the seam's protocols.
    def _conforms(outbound: HttpOutbound, inbound: HttpInbound) -> tuple[Outbound, Inbound]:
        return outbound, inbound
