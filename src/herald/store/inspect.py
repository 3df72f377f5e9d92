"""Queries behind the command line's inspection and editing commands (`campaign show`, `contacts remove`).

Kept apart from `Tx` (the engine's queries), since only the CLI runs them; each function takes the `Tx` of the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, or_, select

from herald.store import schema as t
from herald.store.queries import Tx


def final_count(tx: Tx, campaign_id: int) -> int:
    """How many of the campaign's contacts are in a final status (nothing more to do in this cycle)."""
    query = (
        select(func.count())
        .select_from(t.contacts)
        .where(t.contacts.c.campaign_id == campaign_id, t.contacts.c.final.is_(True))
    )
    return int(tx.connection.execute(query).scalar_one())


@dataclass
class Removal:
    """What `remove_contacts` did: contacts removed, and the ones it kept with the reason."""

    removed: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # key as given -> why it was not removed


def remove_contacts(tx: Tx, campaign_id: int, keys: Iterable[str]) -> Removal:
    """Remove contacts never attempted, found by E.164 number or external id.

    A contact with calls or messages keeps its history in the exports, and one in flight is the engine's, so
    both are kept and reported; so is a key that matches no contact.
    """
    outcome = Removal()
    c = tx.connection
    for key in keys:
        rows = c.execute(
            select(t.contacts.c.id, t.contacts.c.contact, t.contacts.c.inflight_id).where(
                t.contacts.c.campaign_id == campaign_id,
                or_(t.contacts.c.contact == key, t.contacts.c.external_id == key),
            )
        ).all()
        if not rows:
            outcome.kept[key] = "no such contact in this campaign"
            continue
        for contact_id, number, inflight_id in rows:
            calls = c.execute(select(func.count()).where(t.calls.c.contact_id == contact_id)).scalar_one()
            messages = c.execute(select(func.count()).where(t.messages.c.contact_id == contact_id)).scalar_one()
            if inflight_id is not None or calls or messages:
                outcome.kept[key] = "already contacted (its calls and messages stay in the exports)"
                continue
            c.execute(delete(t.contacts).where(t.contacts.c.id == contact_id))
            outcome.removed.append(number)
    return outcome


def suppressions(tx: Tx, business_id: int) -> list[tuple[str, datetime, str]]:
    """The business's do-not-call list: (E.164 number, since when, source), by number."""
    rows = tx.connection.execute(
        select(t.suppressions.c.contact, t.suppressions.c.opted_out_at, t.suppressions.c.source)
        .where(t.suppressions.c.business_id == business_id)
        .order_by(t.suppressions.c.contact)
    )
    return [(str(row[0]), row[1], str(row[2])) for row in rows]


def unsuppress(tx: Tx, business_id: int, numbers: Iterable[str]) -> list[str]:
    """Take numbers off the business's do-not-call list; returns those that were on it.

    Contacts the suppression closed stay closed: lifting it lets later imports and campaigns reach the number.
    """
    removed = []
    for number in numbers:
        result = tx.connection.execute(
            delete(t.suppressions).where(
                t.suppressions.c.business_id == business_id, t.suppressions.c.contact == number
            )
        )
        if result.rowcount:
            removed.append(number)
    return removed
