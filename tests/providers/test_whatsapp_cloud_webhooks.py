"""WhatsApp webhooks through `herald serve`'s app into the inbox and through a worker's rules, on SQLite and PostgreSQL.

Messages are really sent (a worker round against the fake Graph endpoint), then webhooks are posted by hand: each
shape of event finds its message (Herald's id, the wamid a reply answers, or the sender of a bare STOP); a bad
signature, a malformed body or an unknown id is a 4xx that stores nothing; the handshake answers its challenge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from herald.api.app import create_app
from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.worker import Worker
from herald.ids import IdFactory
from herald.providers.whatsapp_cloud import sign
from herald.store import schema as t
from herald.store.queries import NewContact, Store
from herald.testing.fake_whatsapp import PHONE_NUMBER_ID, FakeWhatsApp

from ..live.processes import free_port

SECRET = "app-secret-0123456789"
TOKEN = "EAAG-token-0123456789"
URL = "/webhooks/whatsapp_cloud"
NUMBERS = ["+525500000001", "+525500000002", "+525500000003"]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def sent(store: Store) -> Iterator[dict[str, str]]:
    """A WhatsApp campaign whose three messages were sent; yields number -> wamid."""
    dead = f"http://127.0.0.1:{free_port()}{URL}"
    with FakeWhatsApp(dead, SECRET, token=TOKEN, min_delay=3600, max_delay=3600) as fake:
        config = {
            "name": "WA",
            "channel": "whatsapp",
            "template": "promo",
            "agent": {"tags": ["promise"], "conversion": {"agent_flag": True}},
            "provider": "whatsapp_cloud",
            "provider_options": {
                "phone_number_id": PHONE_NUMBER_ID,
                "access_token": TOKEN,
                "app_secret": SECRET,
                "verify_token": "verify-me",
                "api_base_url": fake.url,
            },
        }
        now = datetime.now(UTC)
        campaign_id = create_campaign(store, parse_campaign(config), now, IdFactory(1))
        add_contacts(
            store, campaign_id, [NewContact(contact=n, name=f"P{i}", context="c") for i, n in enumerate(NUMBERS)], now
        )
        act(store, campaign_id, "activate", now)
        worker = Worker(store)
        worker.register()
        try:
            worker.round()
        finally:
            worker.close()
        with store.read() as tx:
            rows = tx.connection.execute(
                select(t.contacts.c.contact, t.messages.c.provider_message_id).join(
                    t.contacts, t.contacts.c.id == t.messages.c.contact_id
                )
            ).all()
        yield {row[0]: row[1] for row in rows}


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, rate_limit=None)) as made:
        yield made


def body(value: dict[str, Any], phone_number_id: str = PHONE_NUMBER_ID) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1555", "phone_number_id": phone_number_id},
        **value,
    }
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "9", "changes": [{"value": value, "field": "messages"}]}],
        }
    ).encode()


def post(client: TestClient, raw: bytes, secret: str = SECRET) -> Any:
    return client.post(
        URL, content=raw, headers={"X-Hub-Signature-256": sign(secret, raw), "Content-Type": "application/json"}
    )


def status(wamid: str, kind: str, tracker: str | None, **extra: Any) -> bytes:
    item: dict[str, Any] = {"id": wamid, "status": kind, "timestamp": "1767625200", "recipient_id": "1", **extra}
    if tracker is not None:
        item["biz_opaque_callback_data"] = tracker
    return body({"statuses": [item]})


def inbound(sender: str, content: dict[str, Any], answers: str | None = None, wamid: str = "wamid.IN1") -> bytes:
    message: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": "1767625260", **content}
    if answers:
        message["context"] = {"from": "1555", "id": answers}
    return body({"contacts": [{"profile": {"name": "X"}, "wa_id": sender, "user_id": "MX.1"}], "messages": [message]})


def events(store: Store) -> list[tuple[str, str, str]]:
    with store.read() as tx:
        rows = tx.connection.execute(
            select(t.events.c.external_id, t.events.c.kind, t.events.c.payload)
            .where(t.events.c.provider == "whatsapp_cloud")
            .order_by(t.events.c.id)
        )
        return [(row[0], row[1], str((row[2] or {}).get("ref", ""))) for row in rows]


def message_id(store: Store, wamid: str) -> str:
    with store.read() as tx:
        return str(
            tx.connection.execute(select(t.messages.c.id).where(t.messages.c.provider_message_id == wamid)).scalar_one()
        )


def apply(store: Store) -> None:
    worker = Worker(store)
    worker.register()
    try:
        worker.round()
    finally:
        worker.close()


def contact(store: Store, number: str) -> Any:
    with store.read() as tx:
        return tx.connection.execute(select(t.contacts).where(t.contacts.c.contact == number)).one()


def message(store: Store, wamid: str) -> Any:
    with store.read() as tx:
        return tx.connection.execute(select(t.messages).where(t.messages.c.provider_message_id == wamid)).one()


def test_statuses_by_heralds_id_once_each_and_signed(store: Store, sent: dict[str, str], client: TestClient) -> None:
    wamid = sent[NUMBERS[0]]
    raw = status(wamid, "delivered", message_id(store, wamid))
    assert post(client, raw, secret="forged").status_code == 403
    assert events(store) == []
    assert post(client, raw).json() == {"accepted": 1, "duplicates": 0}
    assert post(client, raw).json() == {"accepted": 0, "duplicates": 1}
    failed = status(wamid, "failed", message_id(store, wamid), errors=[{"code": 131049, "title": "Not delivered"}])
    assert post(client, failed).status_code == 200
    apply(store)
    row = message(store, wamid)
    assert row.delivered_at is not None and (row.error_code, row.error_msg) == ("131049", "Not delivered")


def test_statuses_of_a_send_given_up_as_lost_are_recorded_on_it(
    store: Store, sent: dict[str, str], client: TestClient
) -> None:
    wamid = sent[NUMBERS[0]]
    herald_id = message_id(store, wamid)
    with store.tx() as tx:  # what the worker recovery does to a start whose worker died before recording the answer
        tx.connection.execute(
            update(t.messages)
            .where(t.messages.c.id == int(herald_id))
            .values(provider_message_id=f"send-{herald_id}", error_code="worker_lost")
        )
    assert post(client, status(wamid, "delivered", herald_id)).json() == {"accepted": 1, "duplicates": 0}
    apply(store)
    with store.read() as tx:
        row = tx.connection.execute(select(t.messages).where(t.messages.c.id == int(herald_id))).one()
        waiting = tx.connection.execute(select(t.events.c.id).where(t.events.c.applied_at.is_(None))).all()
    assert row.delivered_at is not None and waiting == []


def test_a_quick_reply_finds_its_message_by_the_wamid_it_answers(
    store: Store, sent: dict[str, str], client: TestClient
) -> None:
    wamid = sent[NUMBERS[1]]
    for kind in ("sent", "delivered", "read"):
        assert post(client, status(wamid, kind, message_id(store, wamid))).status_code == 200
    reply = inbound(NUMBERS[1][1:], {"type": "button", "button": {"payload": "Sí", "text": "Sí"}}, answers=wamid)
    assert post(client, reply).json() == {"accepted": 1, "duplicates": 0}
    assert ("wamid.IN1", "reply", wamid) in events(store)
    apply(store)
    assert contact(store, NUMBERS[1]).status == "converted"
    assert message(store, wamid).button_clicks[0]["id"] == "Sí"


def test_a_bare_stop_opts_out_the_latest_message_to_that_number(
    store: Store, sent: dict[str, str], client: TestClient
) -> None:
    wamid = sent[NUMBERS[2]]
    assert post(client, status(wamid, "delivered", message_id(store, wamid))).status_code == 200
    # Mexican mobiles: WhatsApp's id keeps the 1 after 52 that E.164 dropped.
    stop = inbound("5215500000003", {"type": "text", "text": {"body": "Baja"}}, wamid="wamid.IN2")
    assert post(client, stop).json() == {"accepted": 1, "duplicates": 0}
    assert ("wamid.IN2", "opt_out", wamid) in events(store)
    apply(store)
    assert message(store, wamid).opt_out_at is not None
    row = contact(store, NUMBERS[2])
    assert row.opted_out and row.final
    with store.read() as tx:
        business_id = tx.campaign(row.campaign_id).business_id
        assert NUMBERS[2] in tx.suppressed_numbers(business_id)


def test_a_bare_stop_while_the_newest_message_is_being_sent_is_taken_once_its_id_is_known(
    store: Store, sent: dict[str, str], client: TestClient
) -> None:
    wamid = sent[NUMBERS[2]]
    with store.tx() as tx:  # sent, but the worker has not recorded Meta's answer yet
        tx.connection.execute(
            update(t.messages).where(t.messages.c.provider_message_id == wamid).values(provider_message_id=None)
        )
    stop = inbound("5215500000003", {"type": "text", "text": {"body": "STOP"}}, wamid="wamid.IN3")
    answer = post(client, stop)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "retry_later"
    assert events(store) == []
    with store.tx() as tx:  # the answer recorded; Meta posts the webhook again
        tx.connection.execute(
            update(t.messages).where(t.messages.c.provider_message_id.is_(None)).values(provider_message_id=wamid)
        )
    assert post(client, stop).json() == {"accepted": 1, "duplicates": 0}
    apply(store)
    assert message(store, wamid).opt_out_at is not None


def test_texts_that_mean_nothing_and_unknown_senders_store_nothing(
    store: Store, sent: dict[str, str], client: TestClient
) -> None:
    thanks = inbound(NUMBERS[0][1:], {"type": "text", "text": {"body": "Gracias"}}, answers=sent[NUMBERS[0]])
    stranger = inbound("5215599999999", {"type": "text", "text": {"body": "STOP"}}, wamid="wamid.IN3")
    assert post(client, thanks).json() == {"accepted": 0, "duplicates": 0}
    assert post(client, stranger).json() == {"accepted": 0, "duplicates": 0}
    assert events(store) == []


def test_bad_bodies_and_unknown_ids_are_4xx_and_store_nothing(
    store: Store, sent: dict[str, str], client: TestClient
) -> None:
    wamid = sent[NUMBERS[0]]
    cases = [
        (status(wamid, "read", "999999"), 422),
        (
            inbound(
                NUMBERS[0][1:], {"type": "button", "button": {"payload": "No", "text": "No"}}, answers="wamid.UNKNOWN"
            ),
            422,
        ),
        (status(wamid, "read", message_id(store, wamid)).replace(PHONE_NUMBER_ID.encode(), b"777"), 422),
        (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses": []}}]}]}', 422),
        (b"{not json", 422),
    ]
    for raw, expected in cases:
        answer = post(client, raw)
        assert answer.status_code == expected, (raw, answer.text)
    unsigned = client.post(URL, content=status(wamid, "read", message_id(store, wamid)))
    assert unsigned.status_code == 403
    assert events(store) == []


def test_the_handshake(store: Store, sent: dict[str, str], client: TestClient) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    answer = client.get(URL, params=params)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    assert answer.headers["content-type"].startswith("text/plain")
    assert client.get(URL, params={**params, "hub.verify_token": "guess"}).status_code == 403
    assert client.get("/webhooks/http", params=params).status_code == 403
    assert client.get("/webhooks/nope", params=params).status_code == 403
