"""The read queries (and the one contact removal) of the REST API's campaign endpoints: scoped lookups, filters
and pagination that stay cheap on large campaigns.

Kept apart from `Tx` (the engine's queries), since only the API and console run them. Every lookup takes the caller's business id
(or a campaign already checked to be the caller's) and answers None for another business's row, so that the API
answers it exactly as a row that does not exist.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, exists, func, select

from herald.store import schema as t
from herald.store.campaigns import CAMPAIGN_SELECT, campaign_from_row
from herald.store.queries import NotFound, Tx
from herald.store.records import Campaign

#: The largest id a path may name: ids are 32-bit integers on PostgreSQL (SQLite's are wider), so anything larger
#: names nothing.
MAX_ID = 2**31 - 1


def owned_campaign(tx: Tx, business_id: int, campaign_id: int) -> Campaign | None:
    """The campaign if it exists and belongs to the business, else None."""
    try:
        campaign = tx.campaign(campaign_id)
    except NotFound:
        return None
    return campaign if campaign.business_id == business_id else None


# --- campaigns -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignFilters:
    """The list filters of `GET /campaigns` (None = not filtered); date bounds are inclusive."""

    agent_public_id: str | None = None
    status: str | None = None
    channel: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    ended_after: datetime | None = None
    ended_before: datetime | None = None
    include_archived: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a keyset listing, in listing order."""

    items: list[Campaign]
    has_next: bool
    has_previous: bool


def _campaign_conditions(business_id: int, filters: CampaignFilters) -> list[Any]:
    c = t.campaigns.c
    conditions: list[Any] = [c.business_id == business_id]
    if filters.agent_public_id is not None:
        conditions.append(
            c.agent_id.in_(
                select(t.agents.c.id).where(
                    t.agents.c.public_id == filters.agent_public_id, t.agents.c.business_id == business_id
                )
            )
        )
    if filters.status is not None:
        conditions.append(c.status == filters.status)
    if filters.channel is not None:
        conditions.append(c.channel == filters.channel)
    if not filters.include_archived:
        conditions.append(c.archived.is_(False))
    bounds = (
        (c.created_at, filters.created_after, filters.created_before),
        (c.started_at, filters.started_after, filters.started_before),
        (c.ended_at, filters.ended_after, filters.ended_before),
    )
    for column, after, before in bounds:
        if after is not None:
            conditions.append(column >= after)
        if before is not None:
            conditions.append(column <= before)
    return conditions


def count_campaigns(tx: Tx, business_id: int, filters: CampaignFilters) -> int:
    """How many campaigns of the business match the filters."""
    query = select(func.count()).select_from(t.campaigns).where(*_campaign_conditions(business_id, filters))
    return int(tx.connection.execute(query).scalar_one())


def campaign_page(
    tx: Tx,
    business_id: int,
    filters: CampaignFilters,
    limit: int,
    *,
    after_id: int | None = None,
    before_id: int | None = None,
) -> Page:
    """Campaigns newest first: the `limit` after the campaign `after_id` (older ones), or the `limit` just before
    `before_id` (newer ones), or the first page; keyset on the primary key, so every page costs the same."""
    c = t.campaigns.c
    conditions = _campaign_conditions(business_id, filters)
    base = CAMPAIGN_SELECT
    if before_id is not None:
        query = base.where(*conditions, c.id > before_id).order_by(c.id.asc()).limit(limit + 1)
        rows = list(tx.connection.execute(query))
        more_newer = len(rows) > limit
        items = [campaign_from_row(row) for row in rows[:limit]][::-1]
    else:
        query = base.where(*conditions).order_by(c.id.desc()).limit(limit + 1)
        if after_id is not None:
            query = query.where(c.id < after_id)
        rows = list(tx.connection.execute(query))
        more_newer = False
        items = [campaign_from_row(row) for row in rows[:limit]]
    if before_id is not None:
        has_previous = more_newer
        has_next = _any(tx, conditions, c.id < (items[-1].id if items else before_id))
    else:
        has_next = len(rows) > limit
        has_previous = after_id is not None and _any(tx, conditions, c.id > (items[0].id if items else after_id - 1))
    return Page(items, has_next, has_previous)


def _any(tx: Tx, conditions: list[Any], extra: Any) -> bool:
    query = select(exists().where(*conditions, extra))
    return bool(tx.connection.execute(query).scalar())


def agent_names(tx: Tx, agent_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Agent table id -> (public id, name)."""
    if not agent_ids:
        return {}
    a = t.agents.c
    rows = tx.connection.execute(select(a.id, a.public_id, a.name).where(a.id.in_(sorted(set(agent_ids)))))
    return {row.id: (row.public_id, row.name) for row in rows}


def integration_refs(tx: Tx, integration_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Integration table id -> (public id, integration type)."""
    if not integration_ids:
        return {}
    i = t.integrations.c
    rows = tx.connection.execute(
        select(i.id, i.public_id, i.integration_type).where(i.id.in_(sorted(set(integration_ids))))
    )
    return {row.id: (row.public_id, row.integration_type) for row in rows}


# --- contacts ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A contact as the API shows it."""

    id: int
    external_id: str | None
    name: str
    contact: str
    status: str
    context: str
    retries: int
    follow_up: bool
    calls: int
    billed_seconds: int
    last_call_at: datetime | None
    extracted: dict[str, Any]
    input_variables: dict[str, Any]
    tags: list[str]


def _last_call() -> Any:
    return (
        select(func.max(t.calls.c.created_at))
        .where(t.calls.c.contact_id == t.contacts.c.id)
        .scalar_subquery()
        .label("last_call_at")
    )


def _contact_query() -> Any:
    k = t.contacts.c
    return select(
        k.id,
        k.external_id,
        k.name,
        k.contact,
        k.status,
        k.context,
        k.retries,
        k.follow_up,
        k.calls,
        k.billed_seconds,
        _last_call(),
        k.extracted,
        k.input_variables,
        k.tags,
    )


def _contact_row(row: Any) -> ContactRow:
    last = row.last_call_at
    if isinstance(last, str):  # SQLite hands a scalar subquery's datetime back as text
        last = datetime.fromisoformat(last)
    if last is not None and last.tzinfo is None:
        from datetime import UTC

        last = last.replace(tzinfo=UTC)
    return ContactRow(
        id=row.id,
        external_id=row.external_id,
        name=row.name,
        contact=row.contact,
        status=row.status,
        context=row.context,
        retries=row.retries,
        follow_up=bool(row.follow_up),
        calls=row.calls,
        billed_seconds=row.billed_seconds,
        last_call_at=last,
        extracted=dict(row.extracted or {}),
        input_variables=dict(row.input_variables or {}),
        tags=list(row.tags or []),
    )


#: A campaign (or status) with at least this many contacts has its contact ids kept in memory for `KEPT_SECONDS`:
#: counting them and walking an OFFSET through them for every page of a 100,000-contact campaign costs more than the
#: rest of the request (on PostgreSQL, before a vacuum, seconds under load). Smaller ones are always read exactly.
LARGE_COUNT = 10_000
KEPT_SECONDS = 30.0
_kept: dict[tuple[str, int, str | None], tuple[float, list[int]]] = {}
#: One request of the process reads a campaign's ids again at a time (the others answer from the kept ones).
_refreshing = threading.Lock()


def forget_kept(campaign_id: int) -> None:
    """Drop the ids kept for a campaign (this process added or removed contacts: its own clients see it at once)."""
    for key in [key for key in _kept if key[1] == campaign_id]:
        _kept.pop(key, None)


def _key(tx: Tx, campaign_id: int, status: str | None) -> tuple[str, int, str | None]:
    return (tx.connection.engine.url.render_as_string(hide_password=True), campaign_id, status)


def _ids_query(campaign_id: int, status: str | None) -> Any:
    k = t.contacts.c
    ids = select(k.id).where(k.campaign_id == campaign_id)
    return ids if status is None else ids.where(k.status == status)


def count_contacts(
    tx: Tx, campaign_id: int, status: str | None = None, *, clock: Callable[[], float] = time.monotonic
) -> int:
    """How many contacts the campaign has (in `status`); for LARGE_COUNT or more, as they stood up to KEPT_SECONDS
    ago (Altur documents its own counts as cached), and their ids are kept for `contact_page`."""
    key = _key(tx, campaign_id, status)
    kept = _kept.get(key)
    if kept is not None and clock() - kept[0] < KEPT_SECONDS:
        return len(kept[1])
    if kept is not None and not _refreshing.acquire(blocking=False):
        # Another request is reading them again: answer from ids at most a few seconds older than that, rather
        # than have every request in flight read 100,000 ids at once.
        return len(kept[1])
    if kept is None:
        counted = _count(tx, campaign_id, status)
        if counted < LARGE_COUNT:
            return counted
        _refreshing.acquire()
    try:
        kept = _kept.get(key)
        if kept is not None and clock() - kept[0] < KEPT_SECONDS:
            return len(kept[1])  # read by the request this one waited for
        ids = [row[0] for row in tx.connection.execute(_ids_query(campaign_id, status).order_by(t.contacts.c.id))]
        if len(ids) < LARGE_COUNT:
            _kept.pop(key, None)
        else:
            if len(_kept) > 64:
                _kept.clear()
            _kept[key] = (clock(), ids)
        return len(ids)
    finally:
        _refreshing.release()


def _count(tx: Tx, campaign_id: int, status: str | None) -> int:
    query = select(func.count()).select_from(_ids_query(campaign_id, status).subquery())
    return int(tx.connection.execute(query).scalar_one())


def contact_page(
    tx: Tx,
    campaign_id: int,
    status: str | None,
    offset: int,
    limit: int,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[ContactRow], bool]:
    """One page of the campaign's contacts in id order, and whether more follow; reads `limit + 1` rows only."""
    k = t.contacts.c
    kept = _kept.get(_key(tx, campaign_id, status))
    if kept is not None and clock() - kept[0] < KEPT_SECONDS:
        page = kept[1][offset : offset + limit + 1]
    else:
        # Ids first (the campaign's (campaign_id, id) index holds them in order), then only the page's rows.
        query = _ids_query(campaign_id, status).order_by(k.id).offset(offset).limit(limit + 1)
        page = [row[0] for row in tx.connection.execute(query)]
    if not page:
        return [], False
    rows = list(tx.connection.execute(_contact_query().where(k.id.in_(page)).order_by(k.id)))
    return [_contact_row(row) for row in rows[:limit]], len(page) > limit


def contact_by_id(tx: Tx, campaign_id: int, contact_id: int) -> ContactRow | None:
    """The campaign's contact with this id, or None."""
    k = t.contacts.c
    row = tx.connection.execute(_contact_query().where(k.campaign_id == campaign_id, k.id == contact_id)).first()
    return None if row is None else _contact_row(row)


def contact_ids(tx: Tx, campaign_id: int, numbers: Sequence[str]) -> dict[str, int]:
    """E.164 number -> contact id, for those of `numbers` already in the campaign (its unique number index)."""
    k = t.contacts.c
    found: dict[str, int] = {}
    for start in range(0, len(numbers), 500):
        chunk = list(numbers[start : start + 500])
        rows = tx.connection.execute(select(k.contact, k.id).where(k.campaign_id == campaign_id, k.contact.in_(chunk)))
        found.update({row.contact: int(row.id) for row in rows})
    return found


def remove_contact(tx: Tx, campaign_id: int, contact_id: int) -> Literal["removed", "missing", "kept"]:
    """Remove a contact never attempted, by id (the rule of `herald contacts remove`): one with calls or messages
    keeps its history, one in flight is the engine's; both are `kept`.

    One conditional DELETE, so a worker that claims the contact meanwhile (setting `inflight_id`) wins.
    """
    k = t.contacts.c
    never_attempted = and_(
        k.inflight_id.is_(None),
        ~exists().where(t.calls.c.contact_id == k.id),
        ~exists().where(t.messages.c.contact_id == k.id),
    )
    result = tx.connection.execute(
        delete(t.contacts).where(k.campaign_id == campaign_id, k.id == contact_id, never_attempted)
    )
    if result.rowcount:
        return "removed"
    there = tx.connection.execute(select(k.id).where(k.campaign_id == campaign_id, k.id == contact_id)).first()
    return "kept" if there is not None else "missing"


# --- calls ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallFilters:
    """The list filters of `GET /campaigns/{id}/calls` (None = not filtered); date bounds are inclusive."""

    status: str | None = None
    answered_by: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _call_query() -> Any:
    c, k = t.calls.c, t.contacts.c
    return select(
        c.public_id,
        c.campaign_id,
        c.provider,
        c.provider_call_id,
        c.type,
        c.status,
        c.answered_by,
        c.created_at,
        c.started_at,
        c.ended_at,
        c.ended_by,
        c.ended_reason,
        c.duration,
        c.billed_seconds,
        c.recording_url,
        c.error_code,  # shown by the console's Calls tab
        c.tags,
        c.extracted,
        k.id.label("contact_id"),
        k.external_id.label("contact_external_id"),
        k.name.label("contact_name"),
        k.contact.label("contact_number"),
        k.status.label("contact_status"),
    ).join(t.contacts, t.contacts.c.id == c.contact_id)


def _call_conditions(campaign_id: int, filters: CallFilters) -> list[Any]:
    c = t.calls.c
    conditions: list[Any] = [c.campaign_id == campaign_id]
    if filters.status is not None:
        conditions.append(c.status == filters.status)
    if filters.answered_by is not None:
        conditions.append(c.answered_by == filters.answered_by)
    if filters.created_after is not None:
        conditions.append(c.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(c.created_at <= filters.created_before)
    return conditions


def count_calls(tx: Tx, campaign_id: int, filters: CallFilters) -> int:
    """How many of the campaign's calls match the filters."""
    query = select(func.count()).select_from(t.calls).where(*_call_conditions(campaign_id, filters))
    return int(tx.connection.execute(query).scalar_one())


def call_page(tx: Tx, campaign_id: int, filters: CallFilters, offset: int, limit: int) -> list[Any]:
    """One page of the campaign's calls in creation (id) order."""
    c = t.calls.c
    # Ids first, in the order of the (campaign_id, id) index, then only the page's rows joined with their contacts:
    # the skip never reads the wide rows of the calls it passes.
    ids = select(c.id).where(*_call_conditions(campaign_id, filters)).order_by(c.id).offset(offset).limit(limit)
    page = [row[0] for row in tx.connection.execute(ids)]
    if not page:
        return []
    return list(tx.connection.execute(_call_query().where(c.id.in_(page)).order_by(c.id)))


def call_by_public_id(tx: Tx, business_id: int, public_id: str) -> tuple[Any, Campaign] | None:
    """The call with this `cll_…` id and its campaign, if the campaign is the business's; else None."""
    row = tx.connection.execute(_call_query().where(t.calls.c.public_id == public_id)).first()
    if row is None:
        return None
    campaign = owned_campaign(tx, business_id, row.campaign_id)
    return None if campaign is None else (row, campaign)


def provider_recording_url(tx: Tx, provider: str, provider_call_id: str | None) -> str:
    """The recording URL the provider gave with the call's end, or in a later `recording` event (Twilio announces
    recordings in their own callback); empty when it gave none, as the simulator."""
    if not provider_call_id:
        return ""
    e = t.events.c
    rows = tx.connection.execute(
        select(e.kind, e.payload).where(
            e.provider == provider, e.external_id == provider_call_id, e.kind.in_(("recording", "ended"))
        )
    )
    found = {kind: payload.get("recording_url") for kind, payload in rows if isinstance(payload, dict)}
    url = found.get("recording") or found.get("ended")
    return url if isinstance(url, str) else ""


# --- analytics -----------------------------------------------------------------------------------------------------


def answered_by_counts(tx: Tx, campaign_id: int) -> dict[str, int]:
    """The campaign's ended calls by `answered_by` ("" for none)."""
    c = t.calls.c
    rows = tx.connection.execute(
        select(c.answered_by, func.count()).where(c.campaign_id == campaign_id).group_by(c.answered_by)
    )
    return {str(row[0] or ""): int(row[1]) for row in rows}


def message_counts(tx: Tx, campaign_id: int) -> dict[str, int]:
    """The campaign's WhatsApp messages: all, sent, delivered, read, failed (error code set), opted out."""
    m = t.messages.c
    row = tx.connection.execute(
        select(
            func.count(),
            func.count(m.sent_at),
            func.count(m.delivered_at),
            func.count(m.read_at),
            func.count().filter(m.error_code != ""),
            func.count(m.opt_out_at),
        ).where(m.campaign_id == campaign_id)
    ).one()
    keys = ("messages", "sent", "delivered", "read", "failed", "opted_out")
    return {key: int(value) for key, value in zip(keys, row, strict=True)}
