"""Which events become deliveries, with what bodies: a whole simulated campaign, rollbacks, filters, tenancy."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act, change_status
from herald.ids import IdFactory
from herald.outbox.delivery import HttpSender, deliver_due
from herald.store import schema as t
from herald.store.queries import Store
from herald.store.tenancy import create_business

from ..conftest import START, CampaignFactory
from .conftest import SECRET, Receiver, SignatureCheck, add_hook, delivery_rows

TERMINAL = ("ended", "busy", "no-answer", "failed")


def _bodies(store: Store, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(row.body) for row in delivery_rows(store) if row.event_type == event_type]


def test_a_simulated_campaign_makes_exactly_its_events(store: Store, campaign: CampaignFactory) -> None:
    add_hook(store, "https://example.test/hook")
    campaign_id, engine = campaign(
        contacts=25,
        name="Campaña de Cobranza Ñandú",
        retries=1,
        retry_delay_minutes=30,
        cycles={"enabled": True, "max_iterations": 3, "cooldown_minutes": 45},
    )
    engine.run([campaign_id])
    with store.read() as tx:
        log = tx.campaign_log(campaign_id)
        calls = list(tx.connection.execute(select(t.calls).where(t.calls.c.campaign_id == campaign_id)))
        final = tx.campaign(campaign_id)
    assert final.status is CampaignStatus.FINISHED and final.cycle_iteration == 3

    # One on_call_end per call, each for its call, with the contact as it stood after the call.
    ended = _bodies(store, "on_call_end")
    assert len(calls) > 25 and all(call.status in TERMINAL for call in calls)
    assert sorted(body["id"] for body in ended) == sorted(call.public_id for call in calls)
    by_id = {call.public_id: call for call in calls}
    for body in ended:
        call = by_id[body["id"]]
        assert body["event_type"] == "on_call_end" and body["status"] == call.status
        assert body["duration"] == call.duration and body["billed_duration"] == call.billed_seconds
        assert body["answered_by"] == call.answered_by and body["recording_url"] == call.recording_url
        assert body["campaign_user"]["contact"] == body["phone_number_to"]
        assert body["campaign_user"]["name"].startswith("Person ")
        assert body["end_user"]["phone_number"] == body["phone_number_to"]

    # A status_changed per transition, in order (pending → ready at the import, ready → active, and the cycles').
    changes = [data for kind, _, data in log if kind == "campaign.status_changed"]
    sent = _bodies(store, "campaign.status_changed")
    assert [(b["data"]["campaign"]["previous_status"], b["data"]["campaign"]["status"]) for b in sent] == [
        (c["previous_status"], c["new_status"]) for c in changes
    ]
    assert [c["new_status"] for c in changes] == [
        "ready", "active", "cooldown", "active", "cooldown", "active", "finished",
    ]  # fmt: skip
    for body in sent:
        assert body["api_version"] == "1.0" and body["event_id"].startswith("evt_")
        assert body["data"]["campaign"]["id"] == campaign_id
        assert body["data"]["campaign"]["name"] == "Campaña de Cobranza Ñandú"
        assert body["occurred_at"].endswith("-06:00")  # the campaign's zone (Mexico City)
        assert ("analytics" in body["data"]) == (body["data"]["campaign"]["status"] == "finished")
    analytics = sent[-1]["data"]["analytics"]
    assert analytics["calls"] == len(calls) and analytics["contacts"] == 25
    assert analytics["callsAnsweredByHuman"] == sum(call.answered_by == "human" for call in calls)
    with store.read() as tx:
        counts = tx.status_counts(campaign_id)
    assert analytics["contactsConverted"] == counts.get("converted", 0)

    # A cycle_completed per cycle end, the last one with no next cycle.
    cycles = _bodies(store, "campaign.cycle_completed")
    assert [b["data"]["cycle_iteration"] for b in cycles] == [1, 2, 3]
    assert [b["data"]["campaign"]["status"] for b in cycles] == ["cooldown", "cooldown", "finished"]
    assert cycles[-1]["data"]["next_cycle_at"] is None and all(b["data"]["next_cycle_at"] for b in cycles[:2])
    assert all(b["data"]["campaign"]["previous_status"] is None for b in cycles)

    # Every event once per endpoint, each with an event id of its own.
    rows = delivery_rows(store)
    assert len(rows) == len(ended) + len(sent) + len(cycles)
    assert len({row.event_id for row in rows}) == len(rows)
    assert all(row.status == "pending" and row.attempts == 0 for row in rows)


def test_every_delivery_passes_the_references_signature_check_both_ways(
    store: Store, campaign: CampaignFactory, receiver: Receiver, is_valid_signature: SignatureCheck
) -> None:
    add_hook(store, receiver.url)
    numbers = ["+525511110001", "+525511110002"]
    campaign_id, engine = campaign(contacts=0, name="Señales de Cobranza — Mañana", numbers=numbers)
    with store.tx() as tx:
        tx.connection.execute(
            t.contacts.update().where(t.contacts.c.contact == numbers[0]).values(name="José Núñez Ibáñez")
        )
    engine.run([campaign_id])
    rows = delivery_rows(store)
    assert {row.event_type for row in rows} == {"on_call_end", "campaign.status_changed"}
    sender = HttpSender()
    try:
        while deliver_due(store, 1, engine.clock, sender):
            pass
    finally:
        sender.close()
    assert len(receiver.requests) == len(rows)
    accented = 0
    for request in receiver.requests:
        signature = request.headers["X-Altur-Signature"]
        assert request.headers["Content-Type"] == "application/json"
        text = request.body.decode("utf-8")
        accented += "Jos\\u00e9 N\\u00fa\\u00f1ez" in text or "Se\\u00f1ales" in text
        assert is_valid_signature(SECRET, text, signature)  # the raw body
        assert is_valid_signature(SECRET, json.loads(text), signature)  # the parsed body, serialised again
        assert not is_valid_signature(SECRET, text.replace("}", " }", 1), signature)  # the check can fail
    assert accented >= 3  # the campaign's status changes and José's call carry accents
    assert {row.status for row in delivery_rows(store)} == {"delivered"}


def test_nothing_is_queued_for_a_change_that_rolls_back(store: Store, campaign: CampaignFactory) -> None:
    add_hook(store, "https://example.test/hook")
    campaign_id, _ = campaign(contacts=3, activate=False)
    before = len(delivery_rows(store))
    with pytest.raises(RuntimeError), store.tx() as tx:
        change_status(tx, tx.lock_campaign(campaign_id), CampaignStatus.ACTIVE, START)
        assert len(list(tx.connection.execute(select(t.webhook_deliveries)))) == before + 1
        raise RuntimeError("rolled back")
    assert len(delivery_rows(store)) == before
    act(store, campaign_id, "activate", START)
    assert len(delivery_rows(store)) == before + 1


def test_filters_and_subscriptions_choose_the_events(store: Store, campaign: CampaignFactory) -> None:
    finished_only = add_hook(store, "https://a.test/", events=("campaign.status_changed",), statuses=("finished",))
    calls_only = add_hook(store, "https://b.test/", events=("on_call_end",))
    campaign_id, engine = campaign(contacts=5)
    engine.run([campaign_id])
    by_endpoint = Counter((row.endpoint_id, row.event_type) for row in delivery_rows(store))
    with store.read() as tx:
        calls = len(list(tx.connection.execute(select(t.calls.c.id))))
    assert by_endpoint == {
        (finished_only.id, "campaign.status_changed"): 1,
        (calls_only.id, "on_call_end"): calls,
    }
    body = _bodies(store, "campaign.status_changed")[0]
    assert body["data"]["campaign"]["status"] == "finished"


def test_no_endpoint_no_delivery_and_another_business_hears_nothing(store: Store, campaign: CampaignFactory) -> None:
    with store.tx() as tx:
        other = create_business(tx, "globex", START, IdFactory())
        from herald.outbox.store import add_endpoint

        add_endpoint(tx, other.id, "https://globex.test/", SECRET, ("on_call_end",), (), START)
    campaign_id, engine = campaign(contacts=5, cycles={"enabled": True, "max_iterations": 2})
    engine.run([campaign_id])
    assert delivery_rows(store) == []
