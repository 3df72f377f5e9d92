"""A stored campaign's analytics snapshot under Altur's key names: the `analytics` of a campaign's detail in the
REST API and of the `campaign.status_changed` webhook when a campaign finishes (one function, so they always agree).

Counted in SQL from the stored contacts, calls and messages (no export is written), with the definitions of
`herald analyze` (reach: `REACH_STATUSES`; rates: `rate`).
"""

from __future__ import annotations

from herald.analytics.metrics import REACH_STATUSES, rate
from herald.domain.statuses import Channel
from herald.store import api_queries as q
from herald.store.queries import Tx
from herald.store.records import Campaign


def analytics(tx: Tx, campaign: Campaign) -> dict[str, int | float | None]:
    """The campaign's analytics snapshot under Altur's key names, from the stored contacts, calls and messages.

    Reach is the SPEC §9 definition of `herald analyze` (`REACH_STATUSES`), rates are its `rate` (4 decimals, null
    over nothing). Phone: calls by `answered_by` (rates over calls), contacts processed (no longer waiting for a
    first attempt), failed, voicemail, answered (= reach) and converted (rates over contacts). WhatsApp: messages
    sent, delivered, read (rates over sent), contacts accepted, rejected, failed, converted (rates over contacts).
    """
    statuses = tx.status_counts(campaign.id)
    contacts = sum(statuses.values())

    def count(*names: str) -> int:
        return sum(statuses.get(name, 0) for name in names)

    out: dict[str, int | float | None] = {"contacts": contacts}
    if campaign.channel is Channel.PHONE_CALL:
        by = q.answered_by_counts(tx, campaign.id)
        calls = sum(by.values())
        out = {"calls": calls}
        for who in ("human", "machine", "unknown"):
            out[f"callsAnsweredBy{who.title()}"] = by.get(who, 0)
        for who in ("human", "machine", "unknown"):
            out[f"callsAnsweredBy{who.title()}Rate"] = rate(by.get(who, 0), calls)
        out["contacts"] = contacts
        groups = {
            "Processed": contacts - count("queue", "sending"),
            "Failed": count("failed"),
            "Voicemail": count("voicemail"),
            "Answered": count(*REACH_STATUSES["phone_call"]),
            "Converted": count("converted"),
        }
        for name, value in groups.items():
            out[f"contacts{name}"] = value
            out[f"contacts{name}Rate"] = rate(value, contacts)
        return out
    messages = q.message_counts(tx, campaign.id)
    sent = messages["sent"]
    out.update(messages=messages["messages"], sent=sent, sentRate=rate(sent, messages["messages"]))
    for name in ("delivered", "read"):
        out[name] = messages[name]
        out[f"{name}Rate"] = rate(messages[name], sent)
    reach = count(*REACH_STATUSES["whatsapp"])
    out.update(reached=reach, reachedRate=rate(reach, contacts))
    for name in ("accepted", "rejected", "failed", "converted"):
        out[name] = count(name)
        out[f"{name}Rate"] = rate(count(name), contacts)
    out.update(optedOut=messages["opted_out"], optedOutRate=rate(messages["opted_out"], contacts))
    return out
