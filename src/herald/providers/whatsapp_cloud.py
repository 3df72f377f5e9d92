"""Meta's WhatsApp Cloud API: approved templates out, status and reply webhooks in (docs/providers/whatsapp_cloud.md).

Outbound: `POST {api_base_url}/{api_version}/{phone_number_id}/messages` (bearer token), one template message per
attempt with Herald's message id in `biz_opaque_callback_data`, which Meta echoes in every status webhook. The API
has no idempotency key, so a send whose answer was lost is not repeated (it fails as `worker_lost`).

Inbound: Meta posts `{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": …}]}]}` to
`/webhooks/whatsapp_cloud`, signed with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`.
`parse` is pure and knows no campaign; what a reply means (accept, reject, opt-out) depends on the campaign's
options, so `resolve` decides it once the inbox has found the message the reply is about (see herald.api.routing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from herald.providers.base import (
    Inbound,
    MessageRequest,
    Outbound,
    ProviderEvent,
    StartResult,
    Throughput,
    WebhookError,
    header,
    resolve_secret,
)
from herald.providers.transport import MAX_CONCURRENCY, MAX_MESSAGE, PooledOutbound, redact, response_json, says_later

if TYPE_CHECKING:
    from herald.providers.base import CallRequest

NAME = "whatsapp_cloud"
SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_API_BASE_URL = "https://graph.facebook.com"
#: Graph API version used unless `api_version` says otherwise (Meta keeps each version about two years).
DEFAULT_API_VERSION = "v25.0"
#: Longest provider id kept (the inbox's and the messages table's column width).
MAX_ID = 128

#: Keywords (and quick-reply payloads or titles) that opt a recipient out, compared without case or accents.
DEFAULT_OPT_OUT_KEYWORDS = (
    "STOP",
    "BAJA",
    "ALTO",
    "CANCELAR",
    "UNSUBSCRIBE",
    "PARAR",
    "DETENER",
    "STOP PROMOTIONS",
    "DETENER PROMOCIONES",
)
DEFAULT_ACCEPT_REPLIES = ("ACCEPT", "YES", "SI", "ACEPTO", "ACEPTAR", "CONFIRMAR", "CONFIRM")
DEFAULT_REJECT_REPLIES = ("REJECT", "NO", "RECHAZAR", "NO GRACIAS", "NO THANKS")

#: Graph error codes that mean "later", not "no": throughput (130429, 80007, 4), pair rate limit (131056), generic
#: or unknown errors (131000, 1, 2), service unavailable (131016, 133004), number in maintenance (131057).
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004})
#: Credentials that do not work (expired or wrong token, missing permission): fixing the configuration fixes every
#: send, so they wait for it instead of failing the contacts.
CREDENTIAL_CODES = frozenset({0, 10, 190, 200})

STATUS_KINDS = frozenset({"sent", "delivered", "read", "failed"})
#: Provisional kinds of inbound messages, turned into `reply` / `opt_out` (or dropped) by `resolve`.
BUTTON, TEXT = "button", "text"

_VERSION = re.compile(r"v[0-9]+\.[0-9]+")
_DIGITS = re.compile(r"[0-9]{1,20}")


def _normal(text: str) -> str:
    """A reply as compared with keywords: no accents, no case, no surrounding spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.casefold().strip(" \t\r\n.!¡?¿,;:\"'").split())


class WhatsAppCloudOptions(BaseModel):
    """`provider_options` of a campaign on the WhatsApp Cloud API.

    `access_token`, `app_secret` and `verify_token` may be `env:NAME`, read from the environment when used.
    `body_parameters` names, in order, the variables that fill the template's body placeholders: `name`,
    `context` or any input variable (a column of the contacts file).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    phone_number_id: str = Field(pattern=r"^[0-9]{1,32}$")
    # repr=False: options end up in logs and tracebacks; a literal credential must not.
    access_token: str = Field(min_length=1, repr=False)
    app_secret: str = Field(min_length=1, repr=False)
    verify_token: str | None = Field(default=None, min_length=1, repr=False)
    api_version: str = DEFAULT_API_VERSION
    api_base_url: str = DEFAULT_API_BASE_URL
    language: str = Field(default="es_MX", min_length=2, max_length=16)
    body_parameters: tuple[str, ...] = ("name",)
    #: `positional` fills {{1}}, {{2}}…; `named` sends each variable's name as `parameter_name` ({{name}}).
    parameter_format: Literal["positional", "named"] = "positional"
    header_image_url: str | None = None
    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT_KEYWORDS
    accept_replies: tuple[str, ...] = DEFAULT_ACCEPT_REPLIES
    reject_replies: tuple[str, ...] = DEFAULT_REJECT_REPLIES
    messages_per_second: float = Field(default=80, gt=0, le=10_000)
    timeout_seconds: float = Field(default=10, gt=0)

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError("must look like v25.0")
        return value

    @field_validator("api_base_url", "header_image_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("opt_out_keywords", "accept_replies", "reject_replies")
    @classmethod
    def _check_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not _normal(word) for word in value):
            raise ValueError("must not contain empty words")
        return value


def options_of(options: Mapping[str, Any]) -> WhatsAppCloudOptions:
    """A campaign's raw `provider_options` validated (they were validated when the campaign was created)."""
    return WhatsAppCloudOptions.model_validate(dict(options))


def _reply_words(options: Mapping[str, Any]) -> tuple[Sequence[str], Sequence[str], Sequence[str]]:
    """(opt-out, accept, reject) words of a campaign; the defaults when its stored options no longer validate,
    so that a webhook is never lost to a configuration edited behind Herald's back."""
    try:
        settings = options_of(options)
    except ValidationError:
        return DEFAULT_OPT_OUT_KEYWORDS, DEFAULT_ACCEPT_REPLIES, DEFAULT_REJECT_REPLIES
    return settings.opt_out_keywords, settings.accept_replies, settings.reject_replies


def sign(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value of a body: `sha256=` and the hex HMAC-SHA256 of it under the app secret."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# --- outbound ------------------------------------------------------------------------------------------------------


class MissingVariable(ValueError):
    """A body parameter names a variable the contact does not have (or has empty)."""


def template_body(request: MessageRequest, options: WhatsAppCloudOptions) -> dict[str, Any]:
    """The JSON body of one template message. Raises MissingVariable for an empty body parameter."""
    values = {**request.variables, "context": request.context} if request.context else dict(request.variables)
    parameters: list[dict[str, Any]] = []
    for variable in options.body_parameters:
        value = str(values.get(variable, "") or "").strip()
        if not value:
            # Meta refuses empty text parameters (error 131008); saying which variable saves a round trip.
            raise MissingVariable(f"body parameter {variable!r} is empty for this contact")
        parameter: dict[str, Any] = {"type": "text", "text": value}
        if options.parameter_format == "named":
            parameter["parameter_name"] = variable
        parameters.append(parameter)
    components: list[dict[str, Any]] = []
    if options.header_image_url:
        components.append(
            {"type": "header", "parameters": [{"type": "image", "image": {"link": options.header_image_url}}]}
        )
    if parameters:
        components.append({"type": "body", "parameters": parameters})
    template: dict[str, Any] = {"name": request.template, "language": {"code": options.language}}
    if components:
        template["components"] = components
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": request.to,
        "type": "template",
        "template": template,
        # Echoed in every status webhook: a status finds its message even if the send's answer was never recorded.
        "biz_opaque_callback_data": str(request.message_id),
    }


def classify(response: httpx.Response, token: str) -> StartResult:
    """Graph's answer to a send as a StartResult: the `wamid`, a retryable error or a refusal (code and message)."""
    status, payload = response.status_code, response_json(response)
    if 200 <= status < 300:
        messages = payload.get("messages") if isinstance(payload, dict) else None
        first = messages[0] if isinstance(messages, list) and messages else None
        wamid = first.get("id") if isinstance(first, dict) else None
        if isinstance(wamid, str) and wamid:
            return StartResult(external_id=wamid)
        return StartResult.rejected("bad_response", f"HTTP {status} without messages[0].id")
    error = payload.get("error") if isinstance(payload, dict) else None
    code: int | None = None
    message = response.text
    if isinstance(error, dict):
        if isinstance(error.get("code"), int) and not isinstance(error.get("code"), bool):
            code = error["code"]
        details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
        title = error.get("error_user_title") or error.get("message")
        message = " ".join(str(part) for part in (title, details) if isinstance(part, str) and part) or message
    message = redact(message, token) or response.reason_phrase
    label = str(code) if code is not None else f"http_{status}"
    if code in RETRYABLE_CODES or says_later(status):
        return StartResult.retryable(label, message)
    if code in CREDENTIAL_CODES or status == 401:
        return StartResult.retryable(label, message)
    return StartResult.rejected(label[:16], message)


class WhatsAppCloudOutbound(PooledOutbound):
    """Sends template messages through the Cloud API. Thread-safe; call `close()` when done."""

    name = NAME
    idempotent = False

    def __init__(self, options: WhatsAppCloudOptions, max_concurrency: int = MAX_CONCURRENCY) -> None:
        super().__init__(options.api_base_url, options.timeout_seconds, max_concurrency, "herald-whatsapp")
        self.options = options
        # One second's worth as the burst: Meta measures throughput per second.
        self.throughput: Throughput | None = Throughput(
            f"{NAME}:{options.phone_number_id}", options.messages_per_second, max(1.0, options.messages_per_second)
        )
        self.url = f"{options.api_base_url}/{options.api_version}/{options.phone_number_id}/messages"

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        """WhatsApp places no calls: every request is refused."""
        return [StartResult.rejected("unsupported", "the whatsapp_cloud provider sends messages, not calls")] * len(
            requests
        )

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        """Send each template message; one result per request, in order. Never raises for provider errors."""

        def send(request: MessageRequest, token: str) -> StartResult:
            try:
                body = template_body(request, self.options)
            except MissingVariable as problem:
                return StartResult.rejected("missing_variable", str(problem))
            response = self._post_json(self.url, body, {"Authorization": f"Bearer {token}"}, "access_token")
            return response if isinstance(response, StartResult) else classify(response, token)

        return self._start_all(requests, lambda: resolve_secret(self.options.access_token), send)


# --- inbound -------------------------------------------------------------------------------------------------------


def _fail(where: str, problem: str) -> NoReturn:
    raise WebhookError(422, f"{where}: {problem}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(where, "must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(where, "must be a list")
    return value


def _text(container: Mapping[str, Any], field: str, where: str, *, required: bool = True) -> str:
    value = container.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        _fail(f"{where}.{field}", "must be a non-empty string" if required else "must be a string")
    return value


def _ident(container: Mapping[str, Any], field: str, where: str, *, required: bool = True) -> str:
    """A message id (`wamid.…`): stored as the inbox key, so bounded like it."""
    value = _text(container, field, where, required=required)
    if len(value) > MAX_ID:
        _fail(f"{where}.{field}", f"is longer than {MAX_ID} characters")
    return value


def _time(container: Mapping[str, Any], where: str) -> datetime:
    value = container.get("timestamp")
    # Meta sends Unix seconds as a string; a number is accepted too.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        _fail(f"{where}.timestamp", "must be Unix seconds")
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (OverflowError, OSError, ValueError):
        _fail(f"{where}.timestamp", "is out of range")


def _values(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Each `messages` change's `value` with its place in the body, checked for the shape every use needs."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookError(422, "body is not JSON") from None
    payload = _object(payload, "body")
    if payload.get("object") != "whatsapp_business_account":
        _fail("object", 'must be "whatsapp_business_account"')
    found: list[tuple[str, dict[str, Any]]] = []
    for e, entry in enumerate(_list(payload.get("entry"), "entry")):
        entry = _object(entry, f"entry[{e}]")
        for c, change in enumerate(_list(entry.get("changes"), f"entry[{e}].changes")):
            where = f"entry[{e}].changes[{c}]"
            change = _object(change, where)
            if change.get("field", "messages") != "messages":
                continue  # account, template and quality updates are not about a message
            value = _object(change.get("value"), f"{where}.value")
            metadata = _object(value.get("metadata"), f"{where}.value.metadata")
            _text(metadata, "phone_number_id", f"{where}.value.metadata")
            found.append((f"{where}.value", value))
    return found


def _sender(message: Mapping[str, Any], contacts: Sequence[Any], where: str) -> str:
    """The sender's phone number (digits, no `+`): `from` in the older shape; with usernames (BSUIDs) `from` may
    be a user id, and the number is the `wa_id` of the matching entry of `contacts`."""
    sender = message.get("from")
    if isinstance(sender, str) and _DIGITS.fullmatch(sender):
        return sender
    user_id = message.get("from_user_id") or sender
    for index, contact in enumerate(contacts):
        contact = _object(contact, f"{where}.contacts[{index}]")
        wa_id = contact.get("wa_id")
        if (
            isinstance(wa_id, str)
            and _DIGITS.fullmatch(wa_id)
            and (len(contacts) == 1 or contact.get("user_id") == user_id)
        ):
            return wa_id
    return ""


def _status_events(value: Mapping[str, Any], where: str) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    for index, raw in enumerate(_list(value.get("statuses"), f"{where}.statuses")):
        at = f"{where}.statuses[{index}]"
        status = _object(raw, at)
        wamid = _ident(status, "id", at)
        kind = _text(status, "status", at)
        occurred_at = _time(status, at)
        tracker = status.get("biz_opaque_callback_data")
        # Herald's id is a row id: digits, and few enough to be one (anything else is another system's tracker).
        attempt_id = ""
        if isinstance(tracker, str) and tracker.isascii() and tracker.isdigit() and len(tracker) <= 18:
            attempt_id = tracker
        if kind not in STATUS_KINDS:
            continue  # `deleted`, `warning`, …: nothing a sendout records
        data: dict[str, Any] = {}
        if kind == "failed":
            errors = _list(status.get("errors", value.get("errors")), f"{at}.errors")
            first = _object(errors[0], f"{at}.errors[0]") if errors else {}
            code = first.get("code")
            data = {
                "error_code": str(code)[:16] if isinstance(code, int | str) and not isinstance(code, bool) else "",
                "error_msg": str(first.get("title") or first.get("message") or "")[:MAX_MESSAGE],
            }
        events.append(
            ProviderEvent(NAME, wamid, kind, occurred_at, data=data, subject="message", attempt_id=attempt_id)
        )
    return events


def _message_events(value: Mapping[str, Any], where: str) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    contacts = _list(value.get("contacts"), f"{where}.contacts")
    for index, raw in enumerate(_list(value.get("messages"), f"{where}.messages")):
        at = f"{where}.messages[{index}]"
        message = _object(raw, at)
        wamid = _ident(message, "id", at)
        kind = _text(message, "type", at)
        occurred_at = _time(message, at)
        context = message.get("context")
        ref = _ident(_object(context, f"{at}.context"), "id", f"{at}.context", required=False) if context else ""
        data: dict[str, Any] = {"from": _sender(message, contacts, where)}
        if kind == "button":
            button = _object(message.get("button"), f"{at}.button")
            name = _text(button, "text", f"{at}.button", required=False)
            data.update(id=_text(button, "payload", f"{at}.button", required=False) or name, name=name)
            provisional = BUTTON
        elif kind == "interactive":
            interactive = _object(message.get("interactive"), f"{at}.interactive")
            reply = interactive.get("button_reply") or interactive.get("list_reply")
            if reply is None:
                continue  # flows and other interactive answers are not a campaign's buttons
            reply = _object(reply, f"{at}.interactive.button_reply")
            data.update(id=_text(reply, "id", f"{at}.interactive"), name=_text(reply, "title", at, required=False))
            provisional = BUTTON
        elif kind == "text":
            text = _object(message.get("text"), f"{at}.text")
            data["text"] = _text(text, "body", f"{at}.text", required=False)[:MAX_MESSAGE]
            provisional = TEXT
        else:
            continue  # images, reactions, locations…: not an answer a campaign acts on
        events.append(ProviderEvent(NAME, wamid, provisional, occurred_at, ref=ref, data=data, subject="message"))
    return events


class WhatsAppCloudInbound:
    """Verifies and parses the Cloud API's webhooks. Pure: no I/O, no clock."""

    name = NAME
    signature_status = 403

    def parse(self, body: bytes, headers: Mapping[str, str], url: str = "") -> list[ProviderEvent]:
        """Statuses (sent, delivered, read, failed) and recipient messages (button replies, texts) of a body.

        Texts and button replies come out with the provisional kinds `text` and `button`: `resolve` turns them
        into `reply`/`opt_out` with the options of the campaign they answer. WebhookError(422) names a bad field.
        """
        events: list[ProviderEvent] = []
        for where, value in _values(body):
            events.extend(_status_events(value, where))
            events.extend(_message_events(value, where))
        return events

    def route(self, body: bytes) -> list[dict[str, str]]:
        """Option filters naming the campaigns a body may be about: one `{"phone_number_id": …}` per number."""
        numbers = sorted({str(value["metadata"]["phone_number_id"]) for _, value in _values(body)})
        return [{"phone_number_id": number} for number in numbers]

    def resolve(self, event: ProviderEvent, options: Mapping[str, Any]) -> ProviderEvent | None:
        """An event as the campaign it is about sees it: a text is an opt-out when it is one of the campaign's
        keywords (other texts are dropped); a button is an opt-out, an accept or a reject reply, or a click that
        changes no status (kind `button`). Statuses are returned as they are."""
        if event.kind not in (BUTTON, TEXT):
            return event
        stop_words, accept_words, reject_words = _reply_words(options)
        stop = {_normal(word) for word in stop_words}
        if event.kind == TEXT:
            if _normal(str(event.data.get("text", ""))) in stop:
                return replace(event, kind="opt_out", data={"from": event.data.get("from", "")})
            return None
        said = {_normal(str(event.data.get("id", ""))), _normal(str(event.data.get("name", "")))} - {""}
        button = {"id": str(event.data.get("id", "")), "name": str(event.data.get("name", ""))}
        if said & stop:
            return replace(event, kind="opt_out", data=button)
        for words, accepted in ((accept_words, True), (reject_words, False)):
            if said & {_normal(word) for word in words}:
                # Accepting the template's offer is the recipient's own "converted" (the agent flag of §6).
                data = {**button, "text": button["name"], "accepted": accepted, "converted": accepted}
                return replace(event, kind="reply", data=data)
        return replace(event, data=button)

    def verify(self, body: bytes, headers: Mapping[str, str], url: str, options: Mapping[str, Any]) -> bool:
        """True when `X-Hub-Signature-256` is the body's HMAC under the options' `app_secret` (constant time)."""
        given = header(headers, SIGNATURE_HEADER)
        if not given:
            return False
        secret = resolve_secret(options.get("app_secret"))  # KeyError names a missing variable; the caller says so
        if not secret:
            return False
        expected = sign(secret, body)
        return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace"))

    def challenge(self, params: Mapping[str, str], verify_tokens: Sequence[str]) -> str | None:
        """The answer to Meta's subscription handshake (`hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`):
        the challenge when the token is one of the campaigns' verify tokens, else None (a 403)."""
        token, answer = params.get("hub.verify_token", ""), params.get("hub.challenge", "")
        if params.get("hub.mode") != "subscribe" or not token or not answer:
            return None
        matches = [hmac.compare_digest(token.encode(), known.encode()) for known in verify_tokens if known]
        return answer if any(matches) else None

    def verify_token_of(self, options: Mapping[str, Any]) -> str:
        """A campaign's verify token, resolved (empty when it has none or its variable is not set)."""
        try:
            return resolve_secret(options.get("verify_token")) if options.get("verify_token") else ""
        except KeyError:
            return ""


if TYPE_CHECKING:
    # The registry builds the adapters by name; this makes mypy hold them to the seam's protocols.
    def _conforms(outbound: WhatsAppCloudOutbound, inbound: WhatsAppCloudInbound) -> tuple[Outbound, Inbound]:
        return outbound, inbound
