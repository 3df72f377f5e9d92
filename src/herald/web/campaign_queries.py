"""The console's own read queries: a campaign's contacts searched by name or number, and its WhatsApp messages.

Both page by keyset on the id (the `(campaign_id, id)` order of the REST API's pages), so a page costs the same
on the first page and the thousandth; ids are read first and then only the page's rows, as `api_queries` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from herald.store import schema as t

# The REST API's contact columns and their reading, so a contact looks the same in both.
from herald.store.api_queries import ContactRow, _contact_query, _contact_row
from herald.store.queries import Tx

_NUMBER = re.compile(r"^[+\d][\d\s().-]*$")


@dataclass(frozen=True, slots=True)
class KeysetPage:
    """One page in id order, and the ids its neighbour pages start from (None when there is none)."""

    rows: list[Any]
    after: int | None  # the "next page" link: ids after this one
    before: int | None  # the "previous page" link: ids before this one


def _pick(ids: list[int], limit: int, after: int | None, before: int | None) -> tuple[list[int], bool, bool]:
    """The page's ids in ascending order, whether ids follow, and whether ids precede (cheaply known)."""
    more = len(ids) > limit
    ids = ids[:limit]
    if before is not None:
        # read backwards from `before`: the extra row means more precede; something follows (we came from there)
        return sorted(ids), True, more
    return ids, more, after is not None


def _page(rows: list[Any], ids: list[int], follows: bool, precedes: bool) -> KeysetPage:
    return KeysetPage(rows, ids[-1] if follows and ids else None, ids[0] if precedes and ids else None)


def contact_search(
    tx: Tx,
    campaign_id: int,
    *,
    status: str | None = None,
    search: str = "",
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> KeysetPage:
    """A page of the campaign's contacts (ContactRow), in the order they were added, in `status` if given, whose
    name contains `search` (any case) or, when it reads as a number, whose number contains its digits."""
    k = t.contacts.c
    ids_query = select(k.id).where(k.campaign_id == campaign_id)
    if status:
        ids_query = ids_query.where(k.status == status)
    text = search.strip()
    if text:
        digits = re.sub(r"\D", "", text)
        if _NUMBER.match(text) and digits:
            ids_query = ids_query.where(k.contact.contains(digits, autoescape=True))
        else:
            ids_query = ids_query.where(k.name.icontains(text, autoescape=True))
    if before is not None:
        ids_query = ids_query.where(k.id < before).order_by(k.id.desc())
    else:
        ids_query = ids_query.where(k.id > (after or 0)).order_by(k.id)
    ids = [row[0] for row in tx.connection.execute(ids_query.limit(limit + 1))]
    ids, follows, precedes = _pick(ids, limit, after, before)
    rows: list[ContactRow] = []
    if ids:
        rows = [
            _contact_row(row) for row in tx.connection.execute(_contact_query().where(k.id.in_(ids)).order_by(k.id))
        ]
    return _page(rows, ids, follows, precedes)


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A WhatsApp message as the Messages tab shows it."""

    id: int
    contact_id: int
    contact_name: str
    contact_number: str
    template: str
    created_at: Any
    sent_at: Any
    delivered_at: Any
    read_at: Any
    opt_out_at: Any
    error_code: str
    error_msg: str
    button_clicks: list[Any]
    link_clicks: list[Any]


def message_count(tx: Tx, campaign_id: int) -> int:
    """How many messages the campaign has sent or tried to send."""
    m = t.messages.c
    return int(tx.connection.execute(select(func.count()).where(m.campaign_id == campaign_id)).scalar_one())


def message_page(
    tx: Tx, campaign_id: int, *, after: int | None = None, before: int | None = None, limit: int = 50
) -> KeysetPage:
    """A page of the campaign's messages (MessageRow) in the order they were created."""
    m, k = t.messages.c, t.contacts.c
    ids_query = select(m.id).where(m.campaign_id == campaign_id)
    if before is not None:
        ids_query = ids_query.where(m.id < before).order_by(m.id.desc())
    else:
        ids_query = ids_query.where(m.id > (after or 0)).order_by(m.id)
    ids = [row[0] for row in tx.connection.execute(ids_query.limit(limit + 1))]
    ids, follows, precedes = _pick(ids, limit, after, before)
    rows: list[MessageRow] = []
    if ids:
        query = (
            select(
                m.id,
                m.contact_id,
                k.name.label("contact_name"),
                k.contact.label("contact_number"),
                m.template,
                m.created_at,
                m.sent_at,
                m.delivered_at,
                m.read_at,
                m.opt_out_at,
                m.error_code,
                m.error_msg,
                m.button_clicks,
                m.link_clicks,
            )
            .join(t.contacts, k.id == m.contact_id)
            .where(m.id.in_(ids))
            .order_by(m.id)
        )
        rows = [
            MessageRow(
                **{
                    **row._asdict(),
                    "button_clicks": list(row.button_clicks or []),
                    "link_clicks": list(row.link_clicks or []),
                }
            )
            for row in tx.connection.execute(query)
        ]
    return _page(rows, ids, follows, precedes)
