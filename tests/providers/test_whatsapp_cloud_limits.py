"""The campaign's daily `message_limit` holds across two workers sending through the Cloud API (the fake), with the
fake's webhooks going through Herald's app into the inbox, on SQLite and PostgreSQL, over three virtual days."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.api.app import create_app
from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.worker import Worker
from herald.ids import IdFactory
from herald.store import schema as t
from herald.store.queries import NewContact, Store
from herald.testing.fake_whatsapp import PHONE_NUMBER_ID, FakeWhatsApp

from ..conftest import phone_numbers

SECRET = "limits-app-secret-0123456789"
TOKEN = "EAAG-limits-token-0123456789"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def test_two_workers_keep_the_daily_message_limit(store: Store) -> None:
    with TestClient(create_app(store, rate_limit=None)) as app:
        fake = FakeWhatsApp(
            "http://testserver/webhooks/whatsapp_cloud", SECRET, token=TOKEN, client=app, senders=1,
            outcomes={"accepted": 0.5, "rejected": 0.5}, max_delay=0.01,
        )  # fmt: skip
        with fake:
            config = {
                "name": "Limited",
                "channel": "whatsapp",
                "template": "promo",
                "message_limit": 10,
                "retries": 0,
                "failed_retry_limit": 0,
                "concurrency_limit": 50,
                "provider": "whatsapp_cloud",
                "provider_options": {
                    "phone_number_id": PHONE_NUMBER_ID,
                    "access_token": TOKEN,
                    "app_secret": SECRET,
                    "api_base_url": fake.url,
                },
            }
            # Virtual time starts at the wall clock's now and only runs ahead of it, so that webhooks (stored at
            # the wall clock's time) are always due for the workers.
            clock = VirtualClock(datetime.now(UTC))
            campaign_id = create_campaign(store, parse_campaign(config), clock.now(), IdFactory(3))
            numbers = phone_numbers(25)
            add_contacts(
                store,
                campaign_id,
                [NewContact(contact=n, name=f"P{i}", context="c") for i, n in enumerate(numbers)],
                clock.now(),
            )
            act(store, campaign_id, "activate", clock.now())
            workers = [Worker(store, clock=clock, ids=IdFactory()) for _ in range(2)]
            for worker in workers:
                worker.register()
            try:
                for _ in range(2000):
                    for worker in workers:
                        worker.round()
                    assert fake.drain()
                    with store.read() as tx:
                        if tx.campaign(campaign_id).status is CampaignStatus.FINISHED:
                            break
                    clock.wait_until(clock.now() + timedelta(minutes=10))
            finally:
                for worker in workers:
                    worker.close()
            stats = fake.stats()
    with store.read() as tx:
        assert tx.campaign(campaign_id).status is CampaignStatus.FINISHED
        created = [row[0] for row in tx.connection.execute(select(t.messages.c.created_at))]
        statuses = Counter(row[0] for row in tx.connection.execute(select(t.contacts.c.status)))
    zone = ZoneInfo("America/Mexico_City")
    assert sorted(Counter(at.astimezone(zone).date() for at in created).values()) == [5, 10, 10]
    assert stats["messages"] == 25 and sum(statuses.values()) == 25
    assert set(statuses) <= {"converted", "rejected"}
