"""Webhooks that do not carry Herald's id in every event: finding their campaigns, verifying, resolving.

A WhatsApp status echoes Herald's message id, but a button reply names only the provider's id of the message it
answers, and a typed `STOP` names nothing at all. An inbound adapter that has `route` and `resolve` (a `Routed`
one) is handled here instead of by attempt ids alone:

1. `route(body)` gives option filters (e.g. `{"phone_number_id": …}`); the campaigns of that provider whose options
   match are the candidates, and the body must be signed under the credentials of at least one of them;
2. each event finds its message among the signed campaigns: by Herald's id, else by the provider's id it answers
   (`ref`), else (a reply without context) the latest message sent to the sender's number from those campaigns;
3. `resolve(event, options)` gives the event its meaning under that campaign's options (keywords, buttons).

An event about a message Herald does not know (an id it never gave, a reply to an unknown message) is a 422, and
nothing of the body is stored; statuses and texts of messages that are not Herald's are dropped, so that a number
shared with another system does not fill the inbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select

from herald.providers import registry
from herald.providers.base import ProviderEvent, WebhookError
from herald.store import schema as t
from herald.store.queries import Store, Tx

_m = t.messages.c
_c = t.contacts.c


@runtime_checkable
class Routed(Protocol):
    """An inbound adapter whose events are routed by option filters and resolved with a campaign's options."""

    signature_status: int

    def route(self, body: bytes) -> list[dict[str, str]]:
        """Option filters, each naming the campaigns the body may be about."""
        ...

    def resolve(self, event: ProviderEvent, options: Mapping[str, Any]) -> ProviderEvent | None:
        """The event under a campaign's options; None when it means nothing to that campaign."""
        ...

    def verify(self, body: bytes, headers: Mapping[str, str], url: str, options: Mapping[str, Any]) -> bool:
        """True when the body is signed with the credentials in these options."""
        ...


def _matches(options: Mapping[str, Any], filters: Sequence[Mapping[str, str]]) -> bool:
    return any(all(str(options.get(key, "")) == value for key, value in wanted.items()) for wanted in filters)


def _candidates(tx: Tx, provider: str, filters: Sequence[Mapping[str, str]]) -> dict[int, Mapping[str, Any]]:
    """Options of every campaign of the provider (finished and archived ones too: a late opt-out still counts).

    Filtered by provider in SQL and on the raw stored options, without validating whole campaign configurations:
    this runs for every webhook.
    """
    config = t.campaigns.c.config
    rows = tx.connection.execute(
        select(t.campaigns.c.id, config["provider_options"]).where(config["provider"].as_string() == provider)
    )
    found: dict[int, Mapping[str, Any]] = {}
    for campaign_id, options in rows:
        if isinstance(options, dict) and _matches(options, filters):
            found[campaign_id] = options
    return found


def _numbers(digits: str) -> list[str]:
    """E.164 forms of a WhatsApp id: `+` and the digits, and for Mexico and Argentina the form without the mobile
    prefix WhatsApp keeps (52 1…, 54 9…) while numbering plans dropped it."""
    forms = [f"+{digits}"]
    for country, mobile in (("52", "1"), ("54", "9")):
        if digits.startswith(country + mobile) and len(digits) == 13:
            forms.append(f"+{country}{digits[3:]}")
    return forms


def _message_of(
    tx: Tx, provider: str, event: ProviderEvent, signed: Sequence[int]
) -> tuple[int, int, str | None] | None:
    """The (message id, campaign id, provider's id) an event is about, among the signed campaigns."""
    columns = (_m.id, _m.campaign_id, _m.provider_message_id)
    if event.attempt_id:
        row = tx.connection.execute(
            select(*columns).where(_m.id == int(event.attempt_id), _m.provider == provider)
        ).first()
        if row is None or row[1] not in signed:
            raise WebhookError(422, f"unknown message_id {event.attempt_id!r}")
        return row[0], row[1], row[2]
    known = event.ref or (event.external_id if event.kind in ("sent", "delivered", "read", "failed") else "")
    if known:
        row = tx.connection.execute(
            select(*columns).where(_m.provider == provider, _m.provider_message_id == known)
        ).first()
        if row is not None and row[1] in signed:
            return row[0], row[1], row[2]
        if event.ref:
            raise WebhookError(422, f"unknown message {event.ref[:80]!r} (the message this one answers)")
        return None  # a status of a message sent by something else on the same number
    sender = str(event.data.get("from", ""))
    if not sender:
        return None
    row = tx.connection.execute(
        select(*columns)
        .join(t.contacts, _c.id == _m.contact_id)
        .where(_m.provider == provider, _m.campaign_id.in_(list(signed)), _c.contact.in_(_numbers(sender)))
        .order_by(_m.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    if row[2] is None:
        # The newest message to this number is being sent and its id is not recorded yet: the text answers it (or
        # will), never an older one. The provider posts the webhook again later, when the id is there.
        raise WebhookError(503, "the message this text answers is still being sent; post it again shortly")
    return row[0], row[1], row[2]


def route(
    tx: Tx,
    provider: str,
    adapter: Routed,
    events: Sequence[ProviderEvent],
    body: bytes,
    headers: Mapping[str, str],
    url: str,
) -> list[ProviderEvent]:
    """The events of a verified body, each resolved under its campaign's options; WebhookError otherwise."""
    filters = adapter.route(body)
    candidates = _candidates(tx, provider, filters) if filters else {}
    if not candidates:
        wanted = ", ".join(f"{k}={v}" for item in filters for k, v in item.items()) or "nothing"
        raise WebhookError(422, f"no {provider} campaign matches {wanted[:200]}")
    try:
        signed = [cid for cid, options in candidates.items() if adapter.verify(body, headers, url, options)]
    except KeyError as error:  # a credential's environment variable is missing: say which, never its value
        raise WebhookError(adapter.signature_status, f"cannot verify the signature: {error.args[0]}") from None
    if not signed:
        raise WebhookError(adapter.signature_status, "missing or invalid signature")
    resolved: list[ProviderEvent] = []
    for event in events:
        found = _message_of(tx, provider, event, signed)
        if found is None:
            continue
        message_id, campaign_id, provider_id = found
        if not event.attempt_id and event.kind not in ("sent", "delivered", "read", "failed"):
            # A reply is applied to the message it answers: by the provider's id when known, else by Herald's.
            event = replace(event, ref=provider_id or event.ref, attempt_id="" if provider_id else str(message_id))
        elif event.attempt_id and provider_id and provider_id != event.external_id and provider_id.startswith("send-"):
            # The send was given up as lost (its worker died before recording Meta's answer) but Meta had taken it:
            # its statuses are recorded on it under the id it is known by, instead of waiting in the inbox forever.
            event = replace(event, ref=provider_id)
        outcome = adapter.resolve(event, candidates[campaign_id])
        if outcome is not None:
            resolved.append(outcome)
    return resolved


def handshake(store: Store, provider: str, params: Mapping[str, str]) -> str | None:
    """The answer to a provider's subscription handshake (GET on its webhook URL), or None for a 403: the adapter's
    `challenge(params, tokens)` with the verify tokens of every campaign on that provider."""
    try:
        adapter = registry.spec(provider).make_inbound()
    except registry.UnknownProvider:
        return None
    challenge = getattr(adapter, "challenge", None)
    token_of = getattr(adapter, "verify_token_of", None)
    if challenge is None or token_of is None:
        return None
    with store.read() as tx:
        tokens = [token_of(options) for options in _candidates(tx, provider, [{}]).values()]
    answer: str | None = challenge(params, tokens)
    return answer
