"""Vapi (AI voice agents): outbound calls through `POST /call`, server messages back at `/webhooks/vapi`.

Outbound: one `POST {api_base_url}/call` per attempt (Bearer private API key) naming the campaign's assistant and
phone number, the customer's number, and assistant overrides that carry the contact (name, context and input
variables as `variableValues`, the first message), Herald's call id (in `metadata` and `variableValues`, which Vapi
echoes in every server message), and Herald's server URL with its credential.

Inbound: Vapi posts `{"message": {...}}`. `status-update` moves the call (queued, ringing, in-progress, forwarding;
`ended` only when the call never connected); `end-of-call-report` ends it with the outcome (who answered, who hung
up, recording, the analysis' structured data and success evaluation). Every other message type is acknowledged and
ignored. A message is authentic when it carries the campaign's `server_secret` as `X-Vapi-Secret`, as a bearer
token, or as the HMAC-SHA256 of the body (Vapi's HMAC credential).

Vapi has no idempotency key on `POST /call`, so `idempotent` is False and a start is never sent twice blindly:
- its worker died before recording the answer: the call's first server message (queued or ringing, within seconds)
  carries Herald's id and adopts it, long before a dead worker's claims are taken back (20 s); a start still without
  any message then is failed as `worker_lost` and the failed-retry rule places a new attempt;
- the request went out but no answer came (timeout, dropped connection): the call is looked up (`GET /call`, by
  Herald's id in its metadata) and adopted if Vapi created it; otherwise it is retried later, and its server
  messages, if it exists after all, adopt it before the retry is due (5 s or more).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import httpx
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
from herald.providers.transport import MAX_CONCURRENCY, PooledOutbound, redact, response_json, says_later

NAME = "vapi"
DEFAULT_API_BASE_URL = "https://api.vapi.ai"
WEBHOOK_PATH = "/webhooks/vapi"
SECRET_HEADER = "X-Vapi-Secret"
#: Where an HMAC credential puts its signature (Vapi's documented name first, then the plan's default name).
SIGNATURE_HEADERS = ("X-Vapi-Signature", "X-Signature")
TIMESTAMP_HEADER = "X-Timestamp"
#: The key of Herald's call id in the overrides' `metadata` and `variableValues`.
CALL_ID_KEY = "heraldCallId"
#: The structured-data key an assistant uses to ask for a follow-up call (SPEC §6).
FOLLOW_UP_KEY = "follow_up_at"
#: The only server messages Herald asks for (the overrides replace the assistant's list): less traffic to ignore.
SERVER_MESSAGES = ("status-update", "end-of-call-report")
#: Vapi does not retry a server message unless told to; a report lost to a restart would leave the call open.
BACKOFF_PLAN = {"type": "exponential", "maxRetries": 10, "baseDelaySeconds": 1}
#: Vapi caps a customer's and a call's `name` at 40 characters.
MAX_NAME = 40
#: The longest `ended_reason` a call keeps (the store's column); a few of Vapi's error reasons are longer.
MAX_REASON = 64
#: How long before the start a lookup after a timeout searches from (the start is seconds old; the margin covers a
#: skew between Herald's clock and Vapi's, and keeps the list under its 1000-call page).
LOOKUP_WINDOW = timedelta(minutes=2)

# --- endedReason → Herald (SPEC §4) --------------------------------------------------------------------------------

#: Reasons of a call that never connected, beyond busy and no-answer: it failed.
_NOT_CONNECTED_PREFIXES = (
    "call.start.",
    "call-start-",
    "assistant-request-",
    "assistant-not-",
    "call.ringing.",
    "call.in-progress.error-providerfault-outbound-sip-",
    "call.in-progress.error-sip-outbound-call-failed-to-connect",
    "call.in-progress.error-providerfault-transport-never-connected",
    "call.in-progress.error-vapifault-transport-never-connected",
    "twilio-failed-to-connect-call",
    "twilio-reported-customer-misdialed",
    "vonage-failed-to-connect-call",
    "vonage-rejected",
    "sip-outbound-unallocated-number",
    "phone-call-provider-bypass-enabled-but-no-call-received",
    "scheduled-call-deleted",
    "call-deleted",
)
#: Who hung up, by reason prefix; any other reason of a connected call is the system's (timeouts, errors).
_ENDED_BY_PREFIXES = (("customer-ended-call", "user"), ("assistant-", "agent"), ("voicemail", "agent"))
#: Vapi's reasons for the common endings, in the words the simulator and the Altur exports use; others are kept.
_REASON_WORDS = {
    "customer-ended-call": "user_hangup",
    "assistant-ended-call": "agent_hangup",
    "assistant-said-end-call-phrase": "agent_hangup",
    "assistant-ended-call-with-hangup-task": "agent_hangup",
    "assistant-ended-call-after-message-spoken": "agent_hangup",
    "voicemail": "voicemail",
}
_STATUS_KINDS = {"queued": "queued", "ringing": "ringing", "in-progress": "in-progress", "forwarding": "forwarding"}


def outcome_kind(ended_reason: str, connected: bool | None = None) -> str:
    """The terminal call status an `endedReason` means: `busy`, `no-answer`, `failed` or `ended`.

    `connected` settles reasons that say nothing about it (errors): True or None (unknown) → `ended`, False → `failed`.
    """
    if ended_reason == "customer-busy":
        return "busy"
    if ended_reason == "customer-did-not-answer":
        return "no-answer"
    if ended_reason.startswith(_NOT_CONNECTED_PREFIXES):
        return "failed"
    if ended_reason == "voicemail" or ended_reason in _REASON_WORDS or ended_reason.startswith("customer-"):
        return "ended"
    return "failed" if connected is False else "ended"


def ended_by(ended_reason: str) -> str:
    """Who ended a connected call: `user`, `agent` or `system`."""
    return next((who for prefix, who in _ENDED_BY_PREFIXES if ended_reason.startswith(prefix)), "system")


def reason_words(ended_reason: str) -> str:
    """The `ended_reason` Herald records for a Vapi `endedReason` (at most MAX_REASON characters)."""
    return _REASON_WORDS.get(ended_reason, ended_reason)[:MAX_REASON]


# --- options -------------------------------------------------------------------------------------------------------


class VapiOptions(BaseModel):
    """`provider_options` of a campaign on Vapi. `api_key` and `server_secret` may be `env:NAME` (read when used)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # repr=False: options end up in logs and tracebacks; a literal credential must not.
    api_key: str = Field(min_length=1, repr=False)
    assistant_id: str = Field(min_length=1)
    phone_number_id: str = Field(min_length=1)
    #: Vapi sends it back as `X-Vapi-Secret` on every server message (Herald sets it in the overrides' server).
    server_secret: str = Field(min_length=1, repr=False)
    #: A Vapi custom credential (bearer or HMAC) to sign server messages with instead of the `X-Vapi-Secret` header;
    #: its secret must be `server_secret`.
    server_credential_id: str | None = None
    api_base_url: str = DEFAULT_API_BASE_URL
    timeout_seconds: float = Field(default=10, gt=0)

    @field_validator("api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")


# --- outbound ------------------------------------------------------------------------------------------------------


def call_body(request: CallRequest, options: VapiOptions, server_url: str, secret: str) -> dict[str, Any]:
    """The `POST /call` body of one attempt."""
    variables = {**request.variables, "name": request.name, "context": request.context, CALL_ID_KEY: request.public_id}
    server: dict[str, Any] = {"url": server_url, "backoffPlan": dict(BACKOFF_PLAN)}
    if options.server_credential_id:
        server["credentialId"] = options.server_credential_id
    else:
        server["headers"] = {SECRET_HEADER: secret}
    overrides: dict[str, Any] = {
        "variableValues": variables,
        "metadata": {
            CALL_ID_KEY: request.public_id,
            "campaignId": request.campaign_id,
            "contactId": request.contact_id,
        },
        "server": server,
        "serverMessages": list(SERVER_MESSAGES),
    }
    if request.first_message:
        overrides["firstMessage"] = request.first_message
    customer: dict[str, Any] = {"number": request.to}
    if request.name:
        customer["name"] = request.name[:MAX_NAME]
    return {
        "name": request.public_id[:MAX_NAME],
        "assistantId": options.assistant_id,
        "phoneNumberId": options.phone_number_id,
        "customer": customer,
        "assistantOverrides": overrides,
    }


class VapiOutbound(PooledOutbound):
    """Places calls through Vapi's API. Thread-safe; call `close()` when done."""

    name = NAME
    #: Vapi honours no idempotency key: see the module docstring for how a lost answer is handled.
    idempotent = False
    #: Vapi limits concurrent calls per organisation, which the campaign's `concurrency_limit` already bounds.
    throughput: Throughput | None = None

    def __init__(self, options: VapiOptions, max_concurrency: int = MAX_CONCURRENCY) -> None:
        super().__init__(options.api_base_url, options.timeout_seconds, max_concurrency, "herald-vapi")
        self.options = options
        self.server_url = public_url() + WEBHOOK_PATH

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        """Place each call with `POST /call`; one result per request, in order. Never raises for provider errors."""

        def credentials() -> tuple[str, str]:
            key = resolve_secret(self.options.api_key)
            return key, "" if self.options.server_credential_id else resolve_secret(self.options.server_secret)

        def start(request: CallRequest, resolved: tuple[str, str]) -> StartResult:
            key, secret = resolved
            body = call_body(request, self.options, self.server_url, secret)
            return self._start(request, key, body, now, secret)

        return self._start_all(requests, credentials, start)

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        """Vapi places calls only: every message is refused."""
        return [StartResult.rejected("unsupported", "the vapi provider places calls, not messages")] * len(requests)

    def _headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def _start(
        self, request: CallRequest, key: str, body: dict[str, Any], now: datetime, secret: str = ""
    ) -> StartResult:
        url = self.options.api_base_url + "/call"
        try:
            response = self._client.post(url, json=body, headers=self._headers(key))
        except (httpx.ConnectError, httpx.ConnectTimeout):
            # The request never reached Vapi: trying again cannot place a second call.
            return StartResult.retryable("connect_error", f"cannot connect to {self._host}")
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            # The request may have reached Vapi: find the call it created before anyone tries again.
            return self._recover(request, key, now)
        except UnicodeEncodeError:
            # httpx's message would quote the key, so it is not kept.
            return StartResult.retryable("config_error", "api_key is not ASCII text")
        except httpx.HTTPError as error:
            return StartResult.retryable("network_error", redact(f"{type(error).__name__}: {error}", key))
        return classify(response, key, secret)

    def _recover(self, request: CallRequest, key: str, now: datetime) -> StartResult:
        """After an unanswered start: the call Vapi created for it, or retryable when there is none (or no answer)."""
        since = (now - LOOKUP_WINDOW).astimezone(UTC).isoformat().replace("+00:00", "Z")
        params = {"phoneNumberId": self.options.phone_number_id, "createdAtGe": since, "limit": "1000"}
        try:
            response = self._client.get(self.options.api_base_url + "/call", params=params, headers=self._headers(key))
            calls = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, UnicodeEncodeError):
            calls = None
        if isinstance(calls, list):
            for call in calls:
                found = isinstance(call, dict) and herald_call_id(call) == request.public_id
                if found and isinstance(call.get("id"), str) and call["id"]:
                    return StartResult(external_id=call["id"])
        message = f"no answer from {self._host} in {self.options.timeout_seconds}s"
        if calls is None:
            message += "; the lookup of the call failed too, its server messages adopt it if it exists"
        return StartResult.retryable("timeout", message)


def _vapi_message(payload: Any, fallback: str) -> str:
    """Vapi's error text: `message` is a string or a list of validation messages."""
    if isinstance(payload, dict):
        message = payload.get("message")
        if isinstance(message, list) and all(isinstance(item, str) for item in message):
            return "; ".join(message)
        if isinstance(message, str) and message:
            return message
        if isinstance(payload.get("error"), str) and payload["error"]:
            return str(payload["error"])
    return fallback


def classify(response: httpx.Response, key: str, secret: str = "") -> StartResult:
    """Vapi's answer to `POST /call`: the call's id, retryable (408, 429, 5xx), or rejected with Vapi's message.

    Neither the API key nor the server secret (which the request carries) survives in the message.
    """
    status, payload = response.status_code, response_json(response)
    if 200 <= status < 300:
        external_id = payload.get("id") if isinstance(payload, dict) else None
        if isinstance(external_id, str) and external_id:
            return StartResult(external_id=external_id)
        return StartResult.rejected("bad_response", f"HTTP {status} without a call id")
    message = redact(redact(_vapi_message(payload, response.text), key), secret) or response.reason_phrase
    if says_later(status):
        return StartResult.retryable(f"http_{status}", message)
    return StartResult.rejected(f"http_{status}", message)


# --- inbound -------------------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _fail(field: str, problem: str) -> NoReturn:
    raise WebhookError(422, f"message.{field}: {problem}" if field else f"message: {problem}")


def _object(value: Any, field: str, *, required: bool = False) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        _fail(field, "must be an object")
    return value


def _text(value: Any, field: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        _fail(field, "must be a non-empty string" if required else "must be a string")
    return value


def _time(value: Any, field: str) -> datetime | None:
    """A Vapi time: milliseconds since the epoch (message timestamps) or ISO 8601 text (call times)."""
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError
            return datetime.fromtimestamp(value / 1000, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
            if parsed.tzinfo is None:
                raise ValueError
            return parsed.astimezone(UTC)
        raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        _fail(field, "must be epoch milliseconds or an ISO 8601 time with an offset")


def herald_call_id(call: Mapping[str, Any], artifact: Mapping[str, Any] | None = None) -> str:
    """Herald's call id as Vapi echoes it: the overrides' metadata, their variable values, or the artifact's."""
    overrides = call.get("assistantOverrides")
    places: list[Any] = []
    if isinstance(overrides, dict):
        places += [overrides.get("metadata"), overrides.get("variableValues")]
    places += [call.get("metadata"), (artifact or {}).get("variableValues")]
    for place in places:
        if isinstance(place, dict) and isinstance(place.get(CALL_ID_KEY), str) and place[CALL_ID_KEY]:
            return str(place[CALL_ID_KEY])
    return ""


def _scalar(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def outcome(analysis: Mapping[str, Any]) -> dict[str, Any]:
    """Tags, extracted fields and the converted flag from a report's `analysis`.

    `structuredData.tags` (strings) and every other key whose value is `true` are tags; other non-empty values are
    extracted fields (text; objects and lists as compact JSON); `structuredData.converted`, else a `successEvaluation`
    of true, is the agent's converted flag. The campaign's conversion rule then decides (SPEC §6).
    `structuredData.follow_up_at`, an ISO 8601 time with an offset, asks for a follow-up call (ignored otherwise).
    """
    data = analysis.get("structuredData")
    tags: set[str] = set()
    extracted: dict[str, str] = {}
    converted: bool | None = None
    follow_up_at: str | None = None
    if isinstance(data, dict):
        for key, value in data.items():
            if key == FOLLOW_UP_KEY:
                follow_up_at = _follow_up(value)
            elif key == "tags" and isinstance(value, list):
                tags.update(str(tag) for tag in value if isinstance(tag, str) and tag)
            elif key == "converted" and isinstance(value, bool):
                converted = value
            elif value is True:
                tags.add(str(key))
            elif value is False or value is None or value == "":
                continue
            else:
                extracted[str(key)] = _scalar(value)
    if converted is None:
        evaluation = analysis.get("successEvaluation")
        converted = evaluation is True or (isinstance(evaluation, str) and evaluation.strip().lower() == "true")
    return {"tags": sorted(tags), "extracted": extracted, "converted": converted, "follow_up_at": follow_up_at}


def _follow_up(value: Any) -> str | None:
    """A follow-up time the agent asked for, normalised to UTC ISO text; None when it is not a time with an offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    return parsed.astimezone(UTC).isoformat() if parsed.tzinfo is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class VapiInbound:
    """Verifies and parses Vapi's server messages. Pure: no I/O, no clock."""

    name = NAME
    signature_status = 401

    def parse(self, body: bytes, headers: Mapping[str, str], url: str = "") -> list[ProviderEvent]:
        """The events of one server message `{"message": {...}}` (none for the types Herald ignores)."""
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise WebhookError(422, "body is not JSON") from None
        if not isinstance(payload, dict):
            raise WebhookError(422, 'body must be an object {"message": {...}}')
        message = _object(payload.get("message"), "", required=True)
        kind = _text(message.get("type"), "type", required=True)
        if kind not in SERVER_MESSAGES:
            return []
        call = _object(message.get("call"), "call", required=True)
        external_id = _text(call.get("id"), "call.id", required=True)
        artifact = _object(message.get("artifact"), "artifact")
        attempt_id = herald_call_id(call, artifact)
        if not attempt_id:
            _fail("call.assistantOverrides.metadata", f"has no {CALL_ID_KEY}: not a call Herald placed")
        at = _time(message.get("timestamp"), "timestamp")
        if kind == "status-update":
            return self._status(message, external_id, attempt_id, at or _time(call.get("updatedAt"), "call.updatedAt"))
        return [self._report(message, call, artifact, external_id, attempt_id, at)]

    @staticmethod
    def _status(
        message: Mapping[str, Any], external_id: str, attempt_id: str, at: datetime | None
    ) -> list[ProviderEvent]:
        status = _text(message.get("status"), "status", required=True)
        reason = _text(message.get("endedReason"), "endedReason")
        if at is None:
            _fail("timestamp", "is required")
        if status in _STATUS_KINDS:
            return [ProviderEvent(NAME, external_id, _STATUS_KINDS[status], at, attempt_id=attempt_id)]
        if status != "ended":
            return []  # scheduled, not-found, deletion-failed: nothing a call of Herald's goes through
        kind = outcome_kind(reason, connected=None)
        if kind == "ended":
            # A connected call ends with its end-of-call report, which carries the outcome; ending it here would
            # make the engine ignore the report (a call never moves backwards).
            return []
        return [ProviderEvent(NAME, external_id, kind, at, data=_unconnected(kind, reason), attempt_id=attempt_id)]

    @staticmethod
    def _report(
        message: Mapping[str, Any],
        call: Mapping[str, Any],
        artifact: Mapping[str, Any],
        external_id: str,
        attempt_id: str,
        at: datetime | None,
    ) -> ProviderEvent:
        reason = _text(message.get("endedReason"), "endedReason", required=True)
        analysis = _object(message.get("analysis"), "analysis")
        started_at = _time(message.get("startedAt"), "startedAt") or _time(call.get("startedAt"), "call.startedAt")
        ended_at = _time(message.get("endedAt"), "endedAt") or _time(call.get("endedAt"), "call.endedAt") or at
        if ended_at is None:
            _fail("endedAt", "is required (or a timestamp)")
        recording_url = _text(artifact.get("recordingUrl"), "artifact.recordingUrl") or _text(
            message.get("recordingUrl"), "recordingUrl"
        )
        kind = outcome_kind(reason, connected=started_at is not None)
        if kind != "ended":
            return ProviderEvent(
                NAME, external_id, kind, ended_at, data=_unconnected(kind, reason), attempt_id=attempt_id
            )
        data: dict[str, Any] = {
            "answered_by": "machine" if reason == "voicemail" else "human",
            # A connected call without a start time lasted 0 s rather than being taken for unanswered.
            "started_at": _iso(min(started_at or ended_at, ended_at)),
            "ended_at": _iso(ended_at),
            "ended_by": ended_by(reason),
            "ended_reason": reason_words(reason),
            "recording": bool(recording_url),
            "recording_url": recording_url,
            **outcome(analysis),
        }
        return ProviderEvent(NAME, external_id, "ended", ended_at, data=data, attempt_id=attempt_id)

    def verify(self, body: bytes, headers: Mapping[str, str], url: str, options: Mapping[str, Any]) -> bool:
        """True when the message carries the options' `server_secret` (header, bearer or HMAC; constant time).

        KeyError naming the variable when `server_secret` is an `env:` reference that is not set.
        """
        secret = resolve_secret(options.get("server_secret")).encode()
        if not secret:
            return False
        given = header(headers, SECRET_HEADER)
        if given is not None and hmac.compare_digest(given.strip().encode(), secret):
            return True
        bearer = header(headers, "Authorization") or ""
        if bearer[:7].lower() == "bearer " and hmac.compare_digest(bearer[7:].strip().encode(), secret):
            return True
        signature = next((value for name in SIGNATURE_HEADERS if (value := header(headers, name))), None)
        if signature is None:
            return False
        stamp = header(headers, TIMESTAMP_HEADER)
        signed = f"{stamp.strip()}.".encode() + body if stamp else body
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest().encode()
        given_signature = signature.strip().removeprefix("sha256=").lower().encode()
        return hmac.compare_digest(expected, given_signature)


def _unconnected(kind: str, reason: str) -> dict[str, Any]:
    """The `data` of a call that never connected: its reason (and, when it failed, as the error)."""
    if kind == "failed":
        return {
            "ended_reason": reason[:MAX_REASON],
            "error_code": reason[:MAX_REASON],
            "error_msg": f"Vapi ended the call: {reason[:500]}",
        }
    return {"ended_reason": reason[:MAX_REASON]}


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The hex HMAC-SHA256 a Vapi HMAC credential (SHA256, hex) sends for a body (`{timestamp}.{body}` if stamped)."""
    signed = f"{timestamp}.".encode() + body if timestamp else body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


if TYPE_CHECKING:
    # The registry builds the adapters by name; this makes mypy hold them to the seam's protocols.
    def _conforms(outbound: VapiOutbound, inbound: VapiInbound) -> tuple[Outbound, Inbound]:
        return outbound, inbound
