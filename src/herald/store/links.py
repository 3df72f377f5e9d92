"""Tracked links in the store: tokens issued for the messages being sent, and clicks recorded into the inbox.

Tokens are issued in the transaction that builds a message's request (with the message row under the virtual-clock
runner, with the taking of the start under a live worker), so they are committed before any provider sees the URL.
A message keeps its tokens across retried starts. A click becomes the message's `link_click` event in the inbox, with
an event id of its own, and a worker applies it through the same rules as a provider's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from herald.domain import links as tracking
from herald.domain.campaign import CampaignConfig
from herald.providers.base import ProviderEvent
from herald.store import inbox
from herald.store import schema as t
from herald.store.base import dialect_insert
from herald.store.claims import Start
from herald.store.queries import Tx
from herald.store.records import Campaign

_l = t.tracked_links.c
_m = t.messages.c


def issue(
    tx: Tx,
    config: CampaignConfig,
    messages: Sequence[tuple[int, Mapping[str, Any]]],
    now: datetime,
    base_url: str,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> list[Mapping[str, Any]]:
    """The variables each message's request carries, as (message id, variables) in, with its tracked URLs in place.

    Stores a token for each tracked link of each message that has none yet; a message's existing tokens are reused.
    Without `links` in the campaign this is the variables as given (not copied), and no query.
    """
    specs = config.tracked_links
    if not specs or not messages:
        return [variables for _, variables in messages]
    known: dict[tuple[int, str], str] = {}
    ids = sorted({message_id for message_id, _ in messages})
    for start in range(0, len(ids), 500):
        rows = tx.connection.execute(
            select(_l.message_id, _l.link_id, _l.token).where(_l.message_id.in_(ids[start : start + 500]))
        )
        known.update({(row[0], row[1]): row[2] for row in rows})
    fresh: list[dict[str, Any]] = []
    result: list[Mapping[str, Any]] = []
    for message_id, variables in messages:
        tracked: dict[str, tuple[tracking.LinkSpec, str]] = {}
        for target in tracking.targets(specs, variables):
            token = known.get((message_id, target.link.id))
            if token is None:
                token = known[(message_id, target.link.id)] = tracking.new_token(random_bytes)
                fresh.append(
                    {
                        "token": token,
                        "message_id": message_id,
                        "link_id": target.link.id,
                        "name": target.link.name,
                        "url": target.url,
                        "created_at": now,
                    }
                )
            tracked[target.link.id] = (target.link, token)
        result.append(tracking.rewrite(variables, tracked, base_url))
    if fresh:
        tx.connection.execute(
            dialect_insert(tx.connection, t.tracked_links).on_conflict_do_nothing(
                index_elements=["message_id", "link_id"]
            ),
            fresh,
        )
    return result


def track_starts(
    tx: Tx, campaigns: Mapping[int, Campaign], starts: Sequence[Start], now: datetime, base_url: str
) -> list[Start]:
    """A live worker's message starts with their tracked URLs in `variables` (which then include `name`, as the
    request's do); the tokens are stored in the caller's transaction, which commits before any provider call."""
    by_campaign: dict[int, list[int]] = {}
    for index, start in enumerate(starts):
        by_campaign.setdefault(start.campaign_id, []).append(index)
    tracked = list(starts)
    for campaign_id, indexes in by_campaign.items():
        config = campaigns[campaign_id].config
        if not config.tracked_links:
            continue
        messages = [(starts[i].id, {"name": starts[i].name, **starts[i].variables}) for i in indexes]
        for index, variables in zip(indexes, issue(tx, config, messages, now, base_url), strict=True):
            tracked[index] = replace(starts[index], variables=dict(variables))
    return tracked


def target(tx: Tx, token: str) -> str | None:
    """Where a token leads, without recording anything; None for a malformed or unknown token."""
    if not tracking.is_token(token):
        return None
    return tx.connection.execute(select(_l.url).where(_l.token == token)).scalar()


@dataclass(frozen=True, slots=True)
class Click:
    """A recorded click: where to send the browser, and whether it was counted (see `record_click`)."""

    url: str
    recorded: bool
    message_id: int


def record_click(tx: Tx, token: str, now: datetime) -> Click | None:
    """Record one click on a tracked link: None for a token that is malformed or not issued (answer 404).

    The click goes to the inbox as the message's `link_click` event, named by its provider's message id so that the
    rules find it like any provider event. A message whose provider id is not known yet (its start's answer was
    lost with its worker) cannot be named: the browser is still redirected, and the click is not counted.
    """
    if not tracking.is_token(token):
        return None
    row = tx.connection.execute(
        select(_l.url, _l.link_id, _l.name, _l.message_id, _m.provider, _m.provider_message_id)
        .join(t.messages, _m.id == _l.message_id)
        .where(_l.token == token)
    ).first()
    if row is None:
        return None
    url, link_id, name, message_id, provider, provider_message_id = row
    if not provider_message_id:
        return Click(url, recorded=False, message_id=message_id)
    event = ProviderEvent(
        provider,
        "click-" + secrets.token_hex(16),  # each click is an event of its own
        "link_click",
        now,
        ref=provider_message_id,
        data={"id": link_id, "name": name},
        subject="message",
        attempt_id=str(message_id),
    )
    inbox.add(tx, [event], now)
    return Click(url, recorded=True, message_id=message_id)
