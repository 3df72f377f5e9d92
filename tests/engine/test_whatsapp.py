"""WhatsApp campaigns through the engine: daily limit, waves, alternate template, opt-out suppression."""

from __future__ import annotations

from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import import_contacts
from herald.store import schema as t
from herald.store.queries import Store

from ..conftest import CampaignFactory, phone_numbers

WA: dict[str, Any] = {"channel": "whatsapp", "template": "promo", "template_alt": "promo_again"}
SILENT = {"whatsapp": {"send_error_rate": 0, "failure_rate": 0, "read_rate": 0, "delivered_receipt_rate": 1}}


def _messages(store: Store, campaign_id: int) -> list[Any]:
    with store.tx() as tx:
        return tx.connection.execute(
            select(t.messages, t.sendouts.c.wave, t.sendouts.c.cycle.label("sendout_cycle"))
            .join(t.sendouts, t.sendouts.c.id == t.messages.c.sendout_id)
            .where(t.messages.c.campaign_id == campaign_id)
            .order_by(t.messages.c.id)
        ).all()


def test_daily_message_limit_spreads_sends_over_days(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(contacts=25, message_limit=10, retries=0, provider_options=SILENT, **WA)
    engine.run()
    zone = ZoneInfo("America/Mexico_City")
    per_day = Counter(
        t.UTCDateTime().process_result_value(m.created_at, None).astimezone(zone).date()  # type: ignore[union-attr]
        for m in _messages(store, campaign_id)
    )
    assert sorted(per_day.values()) == [5, 10, 10]
    with store.tx() as tx:
        assert tx.campaign(campaign_id).status is CampaignStatus.FINISHED
        assert tx.status_counts(campaign_id) == {"delivered": 25}


def test_no_response_retry_uses_the_alternate_template_in_a_new_wave(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(contacts=6, retries=1, response_timeout_hours=2, provider_options=SILENT, **WA)
    engine.run()
    messages = _messages(store, campaign_id)
    by_contact: dict[int, list[Any]] = {}
    for message in messages:
        by_contact.setdefault(message.contact_id, []).append(message)
    for sent in by_contact.values():
        assert [(m.template, m.wave) for m in sent] == [("promo", 0), ("promo_again", 1)]
    with store.tx() as tx:
        contacts = list(tx.all_contacts(campaign_id))
    assert {(c.state.status.value, c.state.retries, c.state.final) for c in contacts} == {("delivered", 1, True)}


def test_one_sendout_row_per_contact_per_wave(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(
        contacts=40, retries=1, cycles={"enabled": True, "max_iterations": 2, "cooldown_minutes": 60}, **WA
    )
    engine.run()
    messages = _messages(store, campaign_id)
    keys = Counter((m.contact_id, m.sendout_cycle, m.wave) for m in messages)
    assert max(keys.values()) == 1
    assert {m.sendout_cycle for m in messages} == {1, 2}


def test_opt_out_suppresses_the_number_in_every_campaign_of_the_business(
    store: Store, campaign: CampaignFactory
) -> None:
    always_opt_out = {
        "whatsapp": {"send_error_rate": 0, "failure_rate": 0, "read_rate": 1, "opt_out_rate": 1, "link_click_rate": 0}
    }
    numbers = phone_numbers(5)
    first_id, engine = campaign(numbers=numbers, provider_options=always_opt_out, **WA)
    engine.run()
    with store.tx() as tx:
        assert tx.suppressed_numbers(tx.campaign(first_id).business_id) == set(numbers)
        opt_outs = tx.connection.execute(select(func.count()).where(t.messages.c.opt_out_at.is_not(None))).scalar_one()
    assert opt_outs == 5
    second_id, second_engine = campaign(numbers=numbers[:2], seed=2, **WA)
    report = import_contacts(
        store, second_id, b"contact,name,context\n+525500000003,A,x\n+525599999999,B,y\n", second_engine.clock.now()
    )
    assert [(r.line, r.reason) for r in report.result.rejects] == [(2, "SUPPRESSED")]
    second_engine.run()
    with store.tx() as tx:
        sent_numbers = tx.connection.execute(
            select(t.contacts.c.contact)
            .join(t.messages, t.messages.c.contact_id == t.contacts.c.id)
            .where(t.messages.c.campaign_id == second_id)
        ).scalars()
        assert set(sent_numbers) == {"+525599999999"}
        closed = [c for c in tx.all_contacts(second_id) if c.contact in numbers]
        assert closed and all(c.state.opted_out and c.state.final for c in closed)
