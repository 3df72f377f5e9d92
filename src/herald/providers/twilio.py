"""Twilio Programmable Voice (`provider: twilio`): calls placed with the REST API, status callbacks as events.

Outbound: `POST {api_base_url}/2010-04-01/Accounts/{AccountSid}/Calls.json`, form-encoded with Basic auth (the
account SID and auth token), one request per call, paced by the worker to the account's calls per second (`cps`,
shared by every worker through the database). The call asks for answering-machine detection and for status callbacks
(initiated, ringing, answered, completed) at `{HERALD_PUBLIC_URL}/webhooks/twilio?call_id=<Herald's cll_ id>`.

Twilio has no idempotency key, so a start is never sent twice (`idempotent = False`). A start whose answer was lost
(timeout, a worker that died after posting) is recovered from the callbacks themselves: each carries Herald's id in
its URL and the CallSid in its body, so the first one (`initiated`, a moment after the call is created) binds the
CallSid to Herald's call and the call goes on as if the answer had arrived. A start of which no callback arrived by the
time a dead worker's claims are taken back was never placed, as far as anyone can tell: it fails as `worker_lost`
(the failed-retry rule decides). A call whose lease runs out fails as `lease_expired`; late callbacks for it change
nothing, since a call's status never moves backwards.

Inbound: form-encoded status callbacks, verified with `X-Twilio-Signature` (HMAC-SHA1 of the full URL followed by the
sorted POST parameters, keyed with the auth token; or, when Twilio sends `X-Twilio-Webhooks-Signature-Settings`, the
algorithm it names keyed with the webhook shared key), answered 403 when the signature does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    pending_id,
    public_url,
    resolve_secret,
)
from herald.providers.transport import MAX_MESSAGE, PooledOutbound, redact, response_json, says_later

NAME = "twilio"
DEFAULT_API_BASE_URL = "https://api.twilio.com"
WEBHOOK_PATH = "/webhooks/twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
#: Requests of one batch in flight at once (the worker paces batches to the account's rate).
MAX_CONCURRENCY = 8

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SID = re.compile(r"[A-Za-z0-9]{2,64}")
_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

#: Twilio's `CallStatus` → Herald's call event kind (SPEC §4). `canceled` (the call was cancelled before it was
#: answered; Herald never cancels) is a failure.
CALL_STATUS_KINDS: Mapping[str, str] = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "ringing",
    "in-progress": "in-progress",
    "completed": "ended",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "failed",
}
RECORDING_STATUSES = frozenset({"in-progress", "completed", "absent", "failed"})
#: Twilio's `AnsweredBy` → SPEC's answered_by. A fax is no person: it is billed and retried as a machine.
ANSWERED_BY: Mapping[str, str] = {
    "human": "human",
    "machine_start": "machine",
    "machine_end_beep": "machine",
    "machine_end_silence": "machine",
    "machine_end_other": "machine",
    "fax": "machine",
    "unknown": "unknown",
}


class TwilioOptions(BaseModel):
    """`provider_options` of a campaign on Twilio.

    `auth_token` and `webhook_shared_key` may be `env:NAME`, read from the environment when used (never stored).
    The call's conversation comes from `url` (Twilio fetches TwiML there when the call is answered; Herald's id is
    added as `call_id`) or `twiml` (inline TwiML; `{name}`, `{first_message}` and `{call_id}` are filled in).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    # repr=False: options end up in logs and tracebacks; a literal credential must not.
    auth_token: str = Field(min_length=1, repr=False)
    from_number: str | None = None
    from_numbers: list[str] | None = Field(default=None, min_length=1)
    url: str | None = None
    twiml: str | None = Field(default=None, min_length=1, max_length=4000)
    #: Twilio's `MachineDetection`: `Enable` (answered_by as soon as known), `DetectMessageEnd` (after the
    #: greeting, to leave a message), or `off`.
    machine_detection: Literal["Enable", "DetectMessageEnd", "off"] = "Enable"
    record: bool = False
    #: Seconds Twilio lets the phone ring (its `Timeout`); None: Twilio's default.
    ring_timeout_seconds: int | None = Field(default=None, ge=5, le=600)
    #: The account's calls per second, shared by every worker and campaign on this account.
    cps: float = Field(default=1.0, gt=0, le=1000)
    #: The secret of a Webhooks Rule's SharedKey, for callbacks signed with HMAC-SHA256 instead of the auth token.
    webhook_shared_key: str | None = Field(default=None, min_length=1, repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    timeout_seconds: float = Field(default=10, gt=0, le=120)

    @field_validator("api_base_url", "url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        if parts.fragment:
            raise ValueError("must not have a fragment")
        return value.rstrip("/") if not parts.query else value

    @field_validator("from_number")
    @classmethod
    def _check_number(cls, value: str | None) -> str | None:
        if value is not None and not _E164.fullmatch(value):
            raise ValueError("must be an E.164 number such as +15005550006")
        return value

    @field_validator("from_numbers")
    @classmethod
    def _check_numbers(cls, value: list[str] | None) -> list[str] | None:
        for number in value or []:
            if not _E164.fullmatch(number):
                raise ValueError(f"{number[:20]!r} is not an E.164 number such as +15005550006")
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> TwilioOptions:
        if (self.from_number is None) == (self.from_numbers is None):
            raise ValueError("give exactly one of from_number or from_numbers")
        if (self.url is None) == (self.twiml is None):
            raise ValueError("give exactly one of url (TwiML fetched by Twilio) or twiml (inline)")
        return self

    @property
    def pool(self) -> list[str]:
        """The caller ids calls go out from."""
        return list(self.from_numbers) if self.from_numbers else [self.from_number or ""]

    @property
    def throughput(self) -> Throughput:
        """The account's start rate, shared by every campaign on the account."""
        return Throughput(f"{NAME}:{self.account_sid}", self.cps)


def calls_url(options: TwilioOptions) -> str:
    """The Calls resource of the account."""
    return f"{options.api_base_url}/2010-04-01/Accounts/{quote(options.account_sid)}/Calls.json"


def callback_url(call_id: str, *, record: bool = False) -> str:
    """Where Twilio posts a call's callbacks: Herald's id rides in the URL, so every callback finds its call, and
    `record=1` says a recording was asked for (its URL comes later, in a recording status callback)."""
    query = {"call_id": call_id, **({"record": "1"} if record else {})}
    return f"{public_url()}{WEBHOOK_PATH}?{urlencode(query)}"


def caller_id(options: TwilioOptions, to: str) -> str:
    """The pool number a contact is called from: always the same one for a number, so a contact who is called again
    sees the caller id it saw before."""
    pool = options.pool
    return pool[zlib.crc32(to.encode()) % len(pool)]


def call_form(options: TwilioOptions, request: CallRequest) -> list[tuple[str, str]]:
    """The form fields of `POST Calls.json` for one call (repeated `StatusCallbackEvent`s, as Twilio expects)."""
    form = [("To", request.to), ("From", caller_id(options, request.to))]
    if options.url is not None:
        parts = urlsplit(options.url)
        query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("call_id", request.public_id)])
        form.append(("Url", urlunsplit(parts._replace(query=query))))
    else:
        assert options.twiml is not None
        values = {
            "{name}": request.name,
            "{first_message}": request.first_message or "",
            "{call_id}": request.public_id,
        }
        twiml = options.twiml
        for placeholder, value in values.items():
            twiml = twiml.replace(placeholder, escape(value, {'"': "&quot;"}))
        form.append(("Twiml", twiml))
    if options.machine_detection != "off":
        form.append(("MachineDetection", options.machine_detection))
    if options.record:
        form.append(("Record", "true"))
    if options.ring_timeout_seconds is not None:
        form.append(("Timeout", str(options.ring_timeout_seconds)))
    callback = callback_url(request.public_id, record=options.record)
    form.append(("StatusCallback", callback))
    form.append(("StatusCallbackMethod", "POST"))
    form.extend(("StatusCallbackEvent", event) for event in STATUS_CALLBACK_EVENTS)
    if options.record:
        form += [("RecordingStatusCallback", callback), ("RecordingStatusCallbackMethod", "POST"),
                 ("RecordingStatusCallbackEvent", "completed")]  # fmt: skip
    return form


def classify(response: httpx.Response, token: str, call_id: str) -> StartResult:
    """Twilio's answer to the start of Herald's call `call_id`: the Call's `sid`, or its error `code` and `message`.

    A 2xx without a readable sid took the call all the same: it is placed under a stand-in id (see `pending_id`).

    429, 5xx and 408 are "later" (retried, the failed-retry limit untouched); so are 401 and 403, which say the
    credentials are wrong: fixing them must not cost every contact an attempt. Any other 4xx fails the call.
    """
    status, payload = response.status_code, response_json(response)
    if 200 <= status < 300:
        sid = payload.get("sid") if isinstance(payload, dict) else None
        if isinstance(sid, str) and _SID.fullmatch(sid):
            return StartResult(external_id=sid)
        return StartResult(external_id=pending_id(call_id))
    code, message = f"http_{status}", response.text
    if isinstance(payload, dict):
        if isinstance(payload.get("code"), int | str) and str(payload["code"]):
            code = str(payload["code"])
        if isinstance(payload.get("message"), str):
            message = payload["message"]
    message = redact(message, token) or response.reason_phrase
    code = redact(code, token)[:32]
    if status in (401, 403) or says_later(status):
        return StartResult.retryable(code, message)
    return StartResult.rejected(code, message)


class TwilioOutbound(PooledOutbound):
    """Places calls through Twilio's REST API. Thread-safe; call `close()` when done."""

    name = NAME
    idempotent = False

    def __init__(self, options: TwilioOptions, max_concurrency: int = MAX_CONCURRENCY) -> None:
        super().__init__(options.api_base_url, options.timeout_seconds, max_concurrency, "herald-twilio")
        self.options = options
        self.throughput: Throughput | None = options.throughput
        self._url = calls_url(options)

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        """Create each call; one result per request, in order. Never raises for Twilio's refusals or network errors."""

        def post(request: CallRequest, token: str) -> StartResult:
            return self._post(token, request.public_id, call_form(self.options, request))

        return self._start_all(requests, lambda: resolve_secret(self.options.auth_token), post)

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        """Twilio Voice sends no WhatsApp messages: every one is refused."""
        return [StartResult.rejected("unsupported", "the twilio provider places calls only")] * len(requests)

    def _post(self, token: str, call_id: str, form: list[tuple[str, str]]) -> StartResult:
        try:
            response = self._client.post(
                self._url,
                content=urlencode(form).encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
                auth=(self.options.account_sid, token),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            # Nothing reached Twilio: trying again later places the call once.
            return StartResult.retryable("connect_error", f"could not connect to {self._host}")
        except httpx.RequestError:
            # The request may have reached Twilio and the call may exist: never sent again (Twilio has no idempotency
            # key). It counts as placed under a stand-in id; its first callback, which carries Herald's id, binds the
            # CallSid, and a call of which no callback ever comes fails when its lease runs out.
            return StartResult(external_id=pending_id(call_id))
        except UnicodeEncodeError:
            return StartResult.retryable("config_error", "auth_token is not ASCII text")
        return classify(response, token, call_id)


# --- inbound -------------------------------------------------------------------------------------------------------


def form_fields(body: bytes) -> list[tuple[str, str]]:
    """A form-encoded body as (name, value) pairs, in order; WebhookError(422) when it is not UTF-8 form data."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookError(422, "body is not UTF-8 form data") from None
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=200)
    except ValueError:
        raise WebhookError(422, "body is not application/x-www-form-urlencoded") from None


def signature(secret: str, url: str, fields: Sequence[tuple[str, str]], algorithm: str = "HMAC_SHA1") -> str:
    """Twilio's request signature: base64(HMAC(secret, url + each parameter name and value, sorted by name, then
    value)). Raises KeyError for an algorithm other than HMAC_SHA1 and HMAC_SHA256."""
    values: dict[str, set[str]] = {}
    for name, value in fields:
        values.setdefault(name, set()).add(value)
    message = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), _HASHES[algorithm.upper()]).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as Twilio may have signed it: as received and as `HERALD_PUBLIC_URL` names it (behind a proxy),
    each with and without the scheme's default port (Twilio's own libraries try both)."""
    parts = urlsplit(url)
    # Behind a proxy, Twilio signed the public address, path prefix included, with the query Herald received.
    public = urlsplit(f"{public_url()}{WEBHOOK_PATH}")._replace(query=parts.query)
    candidates = [parts, public]
    found: list[str] = []
    for item in candidates:
        host = item.hostname or ""
        default = 443 if item.scheme == "https" else 80
        port = item.port or default
        userinfo = item.netloc.rsplit("@", 1)[0] + "@" if "@" in item.netloc else ""
        for netloc in (f"{userinfo}{host}:{port}", f"{userinfo}{host}" if port == default else item.netloc):
            variant = urlunsplit(item._replace(netloc=netloc))
            if variant not in found:
                found.append(variant)
    return found


def _settings_algorithm(settings: str) -> str:
    for part in settings.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def _timestamp(fields: Mapping[str, str], name: str = "Timestamp") -> datetime:
    text = fields.get(name, "")
    if not text:
        raise WebhookError(422, f"{name} is required")
    try:
        stamp = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise WebhookError(422, f"{name} is not an RFC 2822 date: {text[:40]!r}") from None
    if stamp.tzinfo is None:
        raise WebhookError(422, f"{name} must have a time zone offset")
    return stamp.astimezone(UTC)


def _query(url: str, name: str) -> list[str]:
    return [value for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True) if key == name]


def _call_id(url: str) -> str:
    values = _query(url, "call_id")
    if len(values) != 1 or not values[0] or len(values[0]) > 64:
        raise WebhookError(422, "the callback URL must carry one call_id (Herald's call id)")
    return values[0]


def _recording_url(fields: Mapping[str, str]) -> str:
    recording = fields.get("RecordingUrl", "")
    if recording and urlsplit(recording).scheme not in ("http", "https"):
        raise WebhookError(422, "RecordingUrl must be an http(s) URL")
    return recording


def _event_data(kind: str, status: str, fields: Mapping[str, str], at: datetime, recorded: bool) -> dict[str, Any]:
    """The normalised `data` of a call event (the keys the engine reads, as the http provider gives them)."""
    answered = fields.get("AnsweredBy", "")
    if answered and answered not in ANSWERED_BY:
        raise WebhookError(422, f"AnsweredBy {answered[:40]!r} is not one of Twilio's values")
    if kind == "in-progress":
        return {"answered_by": ANSWERED_BY[answered]} if answered else {}
    if kind in ("busy", "no-answer"):
        return {"ended_reason": status}
    if kind == "failed":
        code = fields.get("ErrorCode") or fields.get("SipResponseCode") or status
        return {
            "error_code": code[:32],
            "error_msg": fields.get("ErrorMessage", "")[:MAX_MESSAGE],
            "ended_reason": status,
        }
    if kind != "ended":
        return {}
    duration_text = fields.get("CallDuration", "")
    if duration_text and not (duration_text.isascii() and duration_text.isdigit()):
        raise WebhookError(422, f"CallDuration must be whole seconds, not {duration_text[:20]!r}")
    duration = int(duration_text) if duration_text else 0
    if duration > 7 * 24 * 3600:
        raise WebhookError(422, "CallDuration is longer than a week")
    recording = _recording_url(fields)
    return {
        # A completed call was answered; without machine detection nobody said by whom.
        "answered_by": ANSWERED_BY.get(answered, "unknown"),
        "started_at": (at - timedelta(seconds=duration)).isoformat(),
        "ended_at": at.isoformat(),
        "ended_by": "",
        "ended_reason": status,
        # A recording asked for (`record=1` in the callback URL) may be announced after the end, by its own callback.
        "recording": bool(recording) or recorded,
        "recording_url": recording,
        "duration": duration,
        "tags": [],
        "extracted": {},
        "converted": False,
    }


class TwilioInbound:
    """Verifies and parses Twilio's call status callbacks. Pure: no I/O, no clock."""

    name = NAME
    signature_status = 403

    def parse(self, body: bytes, headers: Mapping[str, str], url: str = "") -> list[ProviderEvent]:
        """The event of one status callback (`CallSid`, `CallStatus`, `Timestamp`, `AnsweredBy`, `CallDuration`,
        `RecordingUrl`) or recording status callback (`RecordingSid`, `RecordingStatus`, `RecordingUrl`), about the
        call named by the URL's `call_id`; WebhookError(422) when malformed."""
        fields = dict(form_fields(body))
        call_sid = fields.get("CallSid", "")
        if not _SID.fullmatch(call_sid):
            raise WebhookError(422, "CallSid is missing or malformed")
        if "CallStatus" not in fields and "RecordingSid" in fields:
            return [self._recording(call_sid, fields, url)]
        status = fields.get("CallStatus", "")
        kind = CALL_STATUS_KINDS.get(status)
        if kind is None:
            raise WebhookError(422, f"CallStatus {status[:40]!r} is not one of Twilio's call statuses")
        at = _timestamp(fields)
        data = _event_data(kind, status, fields, at, _query(url, "record") == ["1"])
        return [ProviderEvent(NAME, call_sid, kind, at, data=data, subject="call", attempt_id=_call_id(url))]

    @staticmethod
    def _recording(call_sid: str, fields: Mapping[str, str], url: str) -> ProviderEvent:
        """A recording status callback: kind `recording` (a finished recording and its URL, which the recording
        endpoint serves) or `recording-<status>`; kinds the engine's rules do not apply, kept for the record."""
        status = fields.get("RecordingStatus", "")
        if status not in RECORDING_STATUSES or not _SID.fullmatch(fields.get("RecordingSid", "")):
            raise WebhookError(422, "RecordingSid or RecordingStatus is missing or malformed")
        recording = _recording_url(fields)
        if status == "completed" and not recording:
            raise WebhookError(422, "a completed recording needs its RecordingUrl")
        at = _timestamp(fields, "Timestamp" if fields.get("Timestamp") else "RecordingStartTime")
        kind = "recording" if status == "completed" else f"recording-{status}"
        data = {"recording_url": recording, "recording_sid": fields["RecordingSid"]}
        return ProviderEvent(NAME, call_sid, kind, at, data=data, subject="call", attempt_id=_call_id(url))

    def verify(self, body: bytes, headers: Mapping[str, str], url: str, options: Mapping[str, Any]) -> bool:
        """True when `X-Twilio-Signature` signs the URL and parameters with the campaign's auth token (HMAC-SHA1) or,
        when the callback names a signature setting, with its `webhook_shared_key` and algorithm (constant time).
        KeyError names a credential's environment variable that is not set."""
        given = header(headers, SIGNATURE_HEADER)
        if not given:
            return False
        settings = header(headers, SIGNATURE_SETTINGS_HEADER)
        if settings is None:
            secret, algorithm = resolve_secret(options.get("auth_token")), "HMAC_SHA1"
        else:
            secret, algorithm = resolve_secret(options.get("webhook_shared_key")), _settings_algorithm(settings)
        if not secret or algorithm not in _HASHES:
            return False
        try:
            fields = form_fields(body)
        except WebhookError:
            return False
        wanted = given.strip().encode("utf-8", "replace")
        matches = [
            hmac.compare_digest(signature(secret, variant, fields, algorithm).encode("ascii"), wanted)
            for variant in _url_variants(url)
        ]
        return any(matches)


def recording_auth(options: BaseModel, url: str) -> httpx.Auth | None:
    """The credentials to fetch a recording of this account: Basic auth (account SID, auth token), sent only to the
    API's own origin (`api_base_url`): a recording URL naming any other host gets no credentials.
    KeyError names the token's environment variable when it is not set."""
    if not isinstance(options, TwilioOptions):
        return None
    api, wanted = urlsplit(options.api_base_url), urlsplit(url)
    if (wanted.scheme, wanted.hostname, wanted.port) != (api.scheme, api.hostname, api.port):
        return None
    return httpx.BasicAuth(options.account_sid, resolve_secret(options.auth_token))


if TYPE_CHECKING:
    # The registry builds the adapters by name; this makes mypy hold them to the seam's protocols.
    def _conforms(outbound: TwilioOutbound, inbound: TwilioInbound) -> tuple[Outbound, Inbound]:
        return outbound, inbound
