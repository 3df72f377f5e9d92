"""Provider webhooks into the inbox: verify, parse (pure, per provider), store unapplied. Workers apply them.

Nothing a provider sends is applied here, so a webhook costs one short transaction and any number of `herald serve`
processes can take them side by side; a duplicate is a no-op (the inbox's unique key) and still answers 200.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, case, cast, func, select
from sqlalchemy.exc import OperationalError

from herald.api import webhook_routing
from herald.providers import registry
from herald.providers.base import Inbound, ProviderEvent, WebhookError
from herald.store import inbox
from herald.store import schema as t
from herald.store.queries import Store, Tx, campaign_config


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
    if tx.locks_rows:
        return _campaign_options_postgresql(tx, provider, call_ids, sorted({int(aid) for aid in message_ids}))
    options: dict[int, Mapping[str, Any]] = {}
    for subject, table, key, ids in (
        ("call", t.calls, t.calls.c.public_id, call_ids),
        ("message", t.messages, t.messages.c.id, [int(aid) for aid in message_ids]),
    ):
        if not ids:
            continue
        # By the unique id alone, the provider checked on the rows: with `provider = ?` in the query SQLite chose
        # the (provider, provider id) index and read every call of the provider for each webhook. Each campaign's
        # configuration comes in the same round trip, on the first of its attempts' rows only.
        first_of_campaign = func.row_number().over(partition_by=table.c.campaign_id, order_by=key) == 1
        rows = tx.connection.execute(
            select(
                key, table.c.campaign_id, table.c.provider, case((first_of_campaign, cast(t.campaigns.c.config, Text)))
            )
            .join(t.campaigns, t.campaigns.c.id == table.c.campaign_id)
            .where(key.in_(ids))
        ).all()
        _add_options(options, subject, ids, provider, rows)
    return options


def _add_options(
    options: dict[int, Mapping[str, Any]], subject: str, ids: Sequence[Any], provider: str, rows: Sequence[Any]
) -> None:
    """422 for an id with no row of `provider` among `rows` (id, campaign id, provider, the campaign's configuration
    on its first row); otherwise each campaign's provider options into `options`."""
    found = {str(row[0]) for row in rows if row[2] == provider}
    for attempt_id in ids:
        if str(attempt_id) not in found:
            raise WebhookError(422, f"unknown {subject}_id {str(attempt_id)!r}")
    options.update({row[1]: campaign_config(row[3]).provider_options for row in rows if row[3] is not None})


# PostgreSQL's lookup, on the driver: one statement text whatever the number of ids (an expanding IN is a new
# statement, compiled by SQLAlchemy and prepared by PostgreSQL, for every count of ids, and it cost a webhook more CPU
# than parsing its events did). Same rows as the Core query above: each campaign's configuration on its first row.
# One index probe per id (ids given once each; a LATERAL subquery with LIMIT 1 is not flattened into a join): as
# `= ANY(ids)` the planner read all the calls whenever it thought that cheaper, as it does on a table of a few
# thousand rows without statistics, and each of the 40 connections of `herald serve` plans its first runs anew.
_PG_ATTEMPTS = {
    subject: f"""
SELECT a.{key}, a.campaign_id, a.provider,
       CASE WHEN row_number() OVER (PARTITION BY a.campaign_id ORDER BY a.{key}) = 1 THEN c.config::text END
FROM unnest(%s::{kind}[]) AS w(key)
CROSS JOIN LATERAL (SELECT * FROM {table} AS y WHERE y.{key} = w.key LIMIT 1) AS a
JOIN campaigns AS c ON c.id = a.campaign_id
"""
    for subject, table, key, kind in (("call", "calls", "public_id", "text"), ("message", "messages", "id", "integer"))
}


def _campaign_options_postgresql(
    tx: Tx, provider: str, call_ids: Sequence[str], message_ids: Sequence[int]
) -> dict[int, Mapping[str, Any]]:
    options: dict[int, Mapping[str, Any]] = {}
    for subject, ids in (("call", call_ids), ("message", message_ids)):
        if not ids:
            continue
        rows = tx.connection.exec_driver_sql(_PG_ATTEMPTS[subject], (list(ids),)).all()
        _add_options(options, subject, ids, provider, rows)
    return options


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
