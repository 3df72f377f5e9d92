"""WhatsApp messages (and their send waves) as `Tx` reads and writes them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from herald.store import schema as t
from herald.store.base import TxBase, chunks
from herald.store.records import MessageRecord


class MessageQueries(TxBase):
    """Messages and sendouts."""

    def sendout(self, campaign_id: int, cycle: int, wave: int, public_id: str, now: datetime) -> int:
        """The id of the campaign's send wave `wave` of cycle `cycle`, created if new."""
        query = select(t.sendouts.c.id).where(
            t.sendouts.c.campaign_id == campaign_id, t.sendouts.c.cycle == cycle, t.sendouts.c.wave == wave
        )
        found = self.connection.execute(query).scalar()
        if found is not None:
            return int(found)
        result = self.connection.execute(
            insert(t.sendouts)
            .values(campaign_id=campaign_id, cycle=cycle, wave=wave, public_id=public_id, created_at=now)
            .returning(t.sendouts.c.id)
        )
        return int(result.scalar_one())

    def insert_messages(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert messages, returning their ids in the order given."""
        if not rows:
            return []
        statement = insert(t.messages).returning(t.messages.c.id, sort_by_parameter_order=True)
        return [row[0] for row in self.connection.execute(statement, rows)]

    def messages_since(self, campaign_id: int, since: datetime) -> int:
        """Messages the campaign created since `since` (for the daily message limit)."""
        query = (
            select(func.count())
            .select_from(t.messages)
            .where(t.messages.c.campaign_id == campaign_id, t.messages.c.created_at >= since)
        )
        return int(self.connection.execute(query).scalar_one())

    def set_message_results(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record provider ids or send errors of messages (keys: _id, provider_message_id, error_code, error_msg)."""
        if rows:
            self.connection.execute(
                update(t.messages)
                .where(t.messages.c.id == bindparam("_id"))
                .values(
                    provider_message_id=bindparam("provider_message_id"),
                    error_code=bindparam("error_code"),
                    error_msg=bindparam("error_msg"),
                ),
                rows,
            )

    def messages_by_provider_ids(self, provider: str, provider_ids: Iterable[str]) -> dict[str, MessageRecord]:
        """Messages by their provider id."""
        found: dict[str, MessageRecord] = {}
        m = t.messages.c
        for chunk in chunks(sorted(set(provider_ids))):
            query = select(t.messages).where(m.provider == provider, m.provider_message_id.in_(chunk))
            if self.locks_rows:
                query = query.order_by(m.id).with_for_update()
            rows = self.connection.execute(query)
            for row in rows:
                found[row.provider_message_id] = MessageRecord(
                    id=row.id,
                    campaign_id=row.campaign_id,
                    contact_id=row.contact_id,
                    provider_message_id=row.provider_message_id,
                    sent_at=row.sent_at,
                    delivered_at=row.delivered_at,
                    read_at=row.read_at,
                    opt_out_at=row.opt_out_at,
                    error_code=row.error_code,
                    error_msg=row.error_msg,
                    button_clicks=list(row.button_clicks or []),
                    link_clicks=list(row.link_clicks or []),
                    output_variables=dict(row.output_variables or {}),
                )
        return found

    def update_messages(self, records: Sequence[MessageRecord]) -> None:
        """Write back messages changed by events."""
        changed = [record for record in records if record.changed]
        if changed:
            keys = (
                "sent_at",
                "delivered_at",
                "read_at",
                "opt_out_at",
                "error_code",
                "error_msg",
                "button_clicks",
                "link_clicks",
                "output_variables",
            )
            self.connection.execute(
                update(t.messages)
                .where(t.messages.c.id == bindparam("_id"))
                .values({key: bindparam(key) for key in keys}),
                [{"_id": record.id, **{key: getattr(record, key) for key in keys}} for record in changed],
            )
