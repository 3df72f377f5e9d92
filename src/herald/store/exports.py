"""The whole-campaign reads of exports (SPEC §7), streamed: their rows are positional, in their select's column order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select

from herald.store import schema as t
from herald.store.base import TxBase

_c = t.contacts.c
_k = t.calls.c
_m = t.messages.c
_STREAM_CONTACTS = (
    select(
        _c.external_id,
        _c.contact,
        _c.name,
        _c.context,
        _c.status,
        _c.retries,
        _c.calls,
        _c.billed_seconds,
        _c.last_update,
        _c.follow_up,
        _c.tags,
        _c.extracted,
    )
    .where(_c.campaign_id == bindparam("cid"))
    .order_by(_c.id)
)
_CALL_SELECT = select(
    _k.public_id,
    _c.contact.label("number_to"),
    _c.name.label("contact_name"),
    _k.type,
    _k.status,
    _k.answered_by,
    _k.created_at,
    _k.started_at,
    _k.ended_at,
    _k.ended_by,
    _k.ended_reason,
    _k.duration,
    _k.billed_seconds,
    _k.recording_url,
    _k.tags,
    _k.extracted,
).join(t.contacts, _c.id == _k.contact_id)
_STREAM_CALLS = _CALL_SELECT.where(_k.campaign_id == bindparam("cid")).order_by(_k.id)
_STREAM_CALLS_ANSWERED_BY = _CALL_SELECT.where(
    _k.campaign_id == bindparam("cid"), _k.answered_by == bindparam("answered_by")
).order_by(_k.id)
_MESSAGE_SELECT = (
    select(
        _c.external_id,
        _c.contact,
        t.sendouts.c.public_id.label("sendout_id"),
        _m.session_id,
        _m.sent_at,
        _m.delivered_at,
        _m.read_at,
        _m.opt_out_at,
        _m.error_code,
        _m.error_msg,
        _m.button_clicks,
        _m.link_clicks,
        _m.input_variables,
        _m.output_variables,
    )
    .join(t.contacts, _c.id == _m.contact_id)
    .join(t.sendouts, t.sendouts.c.id == _m.sendout_id)
)
_STREAM_MESSAGES = _MESSAGE_SELECT.where(_m.campaign_id == bindparam("cid")).order_by(_m.id)


class ExportQueries(TxBase):
    """Streamed campaign rows for the exports, and the latest instant recorded."""

    def stream_contacts(self, campaign_id: int) -> Iterator[Sequence[Any]]:
        """Every contact row of a campaign in id order (columns of `_STREAM_CONTACTS`)."""
        return self._stream(_STREAM_CONTACTS, {"cid": campaign_id})

    def stream_calls(self, campaign_id: int, answered_by: str | None = None) -> Iterator[Sequence[Any]]:
        """Every call of a campaign (or those answered by `answered_by`) in id order (columns of `_CALL_SELECT`)."""
        if answered_by is None:
            return self._stream(_STREAM_CALLS, {"cid": campaign_id})
        return self._stream(_STREAM_CALLS_ANSWERED_BY, {"cid": campaign_id, "answered_by": answered_by})

    def stream_messages(self, campaign_id: int) -> Iterator[Sequence[Any]]:
        """Every WhatsApp message of a campaign with its contact and sendout, in id order (columns of
        `_MESSAGE_SELECT`)."""
        return self._stream(_STREAM_MESSAGES, {"cid": campaign_id})

    def latest_activity(self) -> datetime | None:
        """The latest instant recorded anywhere (campaign log, calls, messages): virtual clocks start after it."""
        candidates = [
            select(func.max(t.campaign_log.c.occurred_at)),
            select(func.max(t.calls.c.ended_at)),
            select(func.max(t.messages.c.created_at)),
            select(func.max(t.events.c.occurred_at)),
        ]
        values = [
            t.UTCDateTime().process_result_value(self.connection.execute(q).scalar(), self.connection.dialect)
            for q in candidates
        ]
        present = [value for value in values if value is not None]
        return max(present) if present else None
