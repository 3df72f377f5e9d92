"""Provider webhooks into the inbox: verify, parse (pure, per provider), store unapplied. Workers apply them.

Nothing a provider sends is applied here, so a webhook costs one short transaction and any number of `herald serve`
processes can take them side by side; a duplicate is a no-op (the inbox's unique key) and still answers 200.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from herald.api import webhook_routing
from herald.providers import registry
from herald.providers.base import Inbound, ProviderEvent, WebhookError
from herald.store import inbox
from herald.store import schema as t
from herald.store.queries import Store, Tx


@dataclass(frozen=True, slots=True)
class Accepted:
    """A webhook stored: how many events were new, how many were already in the inbox."""

    accepted: int
    duplicates: int


def _campaign_options(tx: Tx, provider: str, events: Sequence[ProviderEvent]) -> dict[int, Mapping[str, Any]]:
    """The provider options of every campaign the events are about; WebhookError(422) names an unknown attempt."""
    call_ids = sorted({e.attempt_id for e in events if e.subject == "call" and e.attempt_id})
    message_ids = sorted({e.attempt_id for e in events if e.subject == "message" and e.attempt_id})
    bad = [aid for aid in message_ids if not aid.isdigit()]
    if bad:
        raise WebhookError(422, f"unknown message_id {bad[0]!r}")
    campaign_of: dict[str, int] = {}
    # By the unique id alone, the provider checked on the rows: with `provider = ?` in the query SQLite chose the
    # (provider, provider id) index and read every call of the provider for each webhook.
    if call_ids:
        rows = tx.connection.execute(
            select(t.calls.c.public_id, t.calls.c.campaign_id, t.calls.c.provider).where(
                t.calls.c.public_id.in_(call_ids)
            )
        )
        campaign_of.update({f"call:{row[0]}": row[1] for row in rows if row[2] == provider})
    if message_ids:
        rows = tx.connection.execute(
            select(t.messages.c.id, t.messages.c.campaign_id, t.messages.c.provider).where(
                t.messages.c.id.in_([int(aid) for aid in message_ids])
            )
        )
        campaign_of.update({f"message:{row[0]}": row[1] for row in rows if row[2] == provider})
    for subject, ids in (("call", call_ids), ("message", message_ids)):
        for attempt_id in ids:
            if f"{subject}:{attempt_id}" not in campaign_of:
                raise WebhookError(422, f"unknown {subject}_id {attempt_id!r}")
    return {cid: tx.campaign(cid).config.provider_options for cid in set(campaign_of.values())}


def receive(store: Store, provider: str, body: bytes, headers: Mapping[str, str], url: str, now: datetime) -> Accepted:
    """Verify and store one webhook; WebhookError (401/403 bad signature, 404 unknown provider, 422 bad body)."""
    try:
        spec = registry.spec(provider)
    except registry.UnknownProvider as error:
        raise WebhookError(404, str(error)) from None
    adapter = spec.make_inbound()
    if adapter is None:
        raise WebhookError(404, f"provider {provider!r} sends no webhooks")
    events = adapter.parse(body, headers, url)
    if not events:
        # A message of a kind the provider sends but Herald does not use (Vapi's transcripts, …): acknowledged so
        # the provider does not retry it; nothing is stored, so nothing needs verifying.
        return Accepted(0, 0)
    for attempt in range(_DEADLOCK_RETRIES):
        try:
            return _store_verified(store, provider, adapter, events, body, headers, url, now)
        except OperationalError as error:
            # Two webhooks inserting the same events (a provider's retry beside its first try) can deadlock on
            # PostgreSQL; the loser's statement was rolled back whole, so it is simply run again.
            if attempt + 1 == _DEADLOCK_RETRIES or not _is_retryable(error):
                raise
    raise AssertionError("unreachable")


_DEADLOCK_RETRIES = 3


def _is_retryable(error: OperationalError) -> bool:
    return type(error.orig).__name__ in {"DeadlockDetected", "SerializationFailure"}


def _store_verified(
    store: Store,
    provider: str,
    adapter: Inbound,
    events: Sequence[ProviderEvent],
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    now: datetime,
) -> Accepted:
    # Nothing here needs its reads and writes in one transaction: an attempt, once known, stays known, and the
    # events go in by one statement (per 500), which is atomic on its own.
    with store.autocommit() as tx:
        if isinstance(adapter, webhook_routing.Routed):
            # Events without Herald's id in each (replies, opt-outs): routed by the body's own keys.
            events = webhook_routing.route(tx, provider, adapter, events, body, headers, url)
            result = inbox.add(tx, events, now)
            return Accepted(result.accepted, result.duplicates)
        options = _campaign_options(tx, provider, events)
        # Every campaign the body speaks of must have signed it: one forged event would otherwise ride along.
        try:
            verified = bool(options) and all(adapter.verify(body, headers, url, o) for o in options.values())
        except KeyError as error:  # a credential's environment variable is missing: say which, never its value
            raise WebhookError(adapter.signature_status, f"cannot verify the signature: {error.args[0]}") from None
        if not verified:
            raise WebhookError(adapter.signature_status, "missing or invalid signature")
        result = inbox.add(tx, events, now)
    return Accepted(result.accepted, result.duplicates)
