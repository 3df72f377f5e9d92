"""A campaign's own do-not-call list (`campaign_suppressions`), beside the business-wide `suppressions`.

A number on it is refused by imports into that campaign and closed by the engine just before an attempt, exactly as a
number on the business's list is, but only in that campaign: the business's other campaigns still reach it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update

from herald.store import schema as t
from herald.store.base import chunks, dialect_insert
from herald.store.queries import Tx

_s = t.campaign_suppressions.c
# The engine's pre-attempt check, in the form of the business-wide one (so SQLite runs it on the DBAPI cursor).
_LISTED_AMONG = select(_s.contact).where(
    _s.campaign_id == bindparam("cid"), _s.contact.in_(bindparam("numbers", expanding=True))
)


def listed_numbers(tx: Tx, campaign_id: int, numbers: Iterable[str] | None = None) -> set[str]:
    """The numbers on the campaign's own list (all, or those among `numbers`)."""
    if numbers is None:
        return {row[0] for row in tx.connection.execute(select(_s.contact).where(_s.campaign_id == campaign_id))}
    found: set[str] = set()
    for chunk in chunks(numbers):
        found.update(row[0] for row in tx._rows(_LISTED_AMONG, {"cid": campaign_id, "numbers": chunk}))
    return found


def barred_numbers(tx: Tx, business_id: int, campaign_id: int) -> set[str]:
    """Every number an import into the campaign must refuse as `SUPPRESSED`: the business's list and the campaign's."""
    return tx.suppressed_numbers(business_id) | listed_numbers(tx, campaign_id)


def suppress_in_campaign(tx: Tx, campaign_id: int, number: str, now: datetime, source: str) -> None:
    """Put a number on the campaign's list and close its contact in that campaign (as the business-wide list closes
    it in every campaign); a contact in flight is closed by the engine's check before its next attempt."""
    tx.connection.execute(
        dialect_insert(tx.connection, t.campaign_suppressions)
        .values(campaign_id=campaign_id, contact=number, opted_out_at=now, source=source)
        .on_conflict_do_nothing()
    )
    tx.connection.execute(
        update(t.contacts)
        .where(
            t.contacts.c.contact == number,
            t.contacts.c.campaign_id == campaign_id,
            t.contacts.c.inflight_id.is_(None),
        )
        .values(opted_out=True, final=True, follow_up=False, due_at=None, respond_by=None, last_update=now)
    )


def campaign_suppressions(tx: Tx, campaign_id: int) -> list[tuple[str, datetime, str]]:
    """The campaign's own list: (E.164 number, since when, source), by number."""
    rows = tx.connection.execute(
        select(_s.contact, _s.opted_out_at, _s.source).where(_s.campaign_id == campaign_id).order_by(_s.contact)
    )
    return [(str(row[0]), row[1], str(row[2])) for row in rows]


def unsuppress_in_campaign(tx: Tx, campaign_id: int, numbers: Iterable[str]) -> list[str]:
    """Take numbers off the campaign's list; returns those that were on it. Contacts it closed stay closed."""
    removed = []
    for number in numbers:
        result = tx.connection.execute(
            delete(t.campaign_suppressions).where(_s.campaign_id == campaign_id, _s.contact == number)
        )
        if result.rowcount:
            removed.append(number)
    return removed
