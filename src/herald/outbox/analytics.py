"""The analytics snapshot a `campaign.status_changed` to `finished` carries (Altur's campaign-detail `analytics`):
call and contact counts and rates for phone campaigns, message lifecycle counts and rates for WhatsApp ones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select

from herald.domain.statuses import Channel
from herald.store import schema as t
from herald.store.queries import Tx

_c = t.contacts.c
_k = t.calls.c
_m = t.messages.c


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _contacts(tx: Tx, campaign_id: int) -> dict[str, int]:
    row = tx.connection.execute(
        select(
            func.count(),
            _count_if(_c.calls > 0),
            _count_if(_c.status == "failed"),
            _count_if(_c.status == "voicemail"),
            _count_if(_c.status == "answered"),
            _count_if(_c.status == "converted"),
        ).where(_c.campaign_id == campaign_id)
    ).one()
    names = ("contacts", "contactsProcessed", "contactsFailed", "contactsVoicemail", "contactsAnswered")
    return {**dict(zip(names, map(int, row[:5]), strict=True)), "contactsConverted": int(row[5])}


def snapshot(tx: Tx, campaign_id: int, channel: Channel) -> dict[str, Any]:
    """The campaign's figures as they stand in this transaction."""
    contacts = _contacts(tx, campaign_id)
    total = contacts["contacts"]
    result: dict[str, Any] = {}
    if channel is Channel.PHONE_CALL:
        row = tx.connection.execute(
            select(
                func.count(),
                _count_if(_k.answered_by == "human"),
                _count_if(_k.answered_by == "machine"),
                _count_if(_k.answered_by == "unknown"),
            ).where(_k.campaign_id == campaign_id)
        ).one()
        calls, human, machine, unknown = (int(value) for value in row)
        result = {
            "calls": calls,
            "callsAnsweredByHuman": human,
            "callsAnsweredByMachine": machine,
            "callsAnsweredByUnknown": unknown,
            "callsAnsweredByHumanRate": _rate(human, calls),
            "callsAnsweredByMachineRate": _rate(machine, calls),
            "callsAnsweredByUnknownRate": _rate(unknown, calls),
        }
    else:
        row = tx.connection.execute(
            select(
                func.count(),
                _count_if(_m.sent_at.is_not(None)),
                _count_if(_m.delivered_at.is_not(None)),
                _count_if(_m.read_at.is_not(None)),
                _count_if(_m.error_code != ""),
                _count_if(_m.opt_out_at.is_not(None)),
            ).where(_m.campaign_id == campaign_id)
        ).one()
        messages, sent, delivered, read, failed, opted_out = (int(value) for value in row)
        result = {"messages": messages}
        for name, value in (
            ("messagesSent", sent),
            ("messagesDelivered", delivered),
            ("messagesRead", read),
            ("messagesFailed", failed),
            ("messagesOptedOut", opted_out),
        ):
            result[name] = value
            result[name + "Rate"] = _rate(value, messages)
    result["contacts"] = total
    for name in ("contactsProcessed", "contactsFailed", "contactsVoicemail", "contactsAnswered", "contactsConverted"):
        if channel is Channel.WHATSAPP and name in ("contactsVoicemail", "contactsAnswered"):
            continue
        result[name] = contacts[name]
        result[name + "Rate"] = _rate(contacts[name], total)
    return result
