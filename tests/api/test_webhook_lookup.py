"""`herald.api.webhooks.receive` on both databases: the calls a body names are found (with each campaign's secret),
an unknown call or one of another provider is refused by name, and every campaign named must have signed the body."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from herald.api.webhooks import receive
from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import add_contacts, create_campaign
from herald.ids import IdFactory
from herald.providers.base import WebhookError
from herald.providers.http import SIGNATURE_HEADER, sign
from herald.store import schema as t
from herald.store.queries import NewContact, Store

SECRETS = [base64.b64encode(f"secret of campaign {n}".encode()).decode() for n in range(2)]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
URL = "http://127.0.0.1/webhooks/http"


def _campaign(store: Store, n: int) -> int:
    config = {
        "name": f"Lookup {n}",
        "channel": "phone_call",
        "timezone": "America/Mexico_City",
        "agent": {"name": "Bench", "tags": ["promise"], "conversion": {"tag": "promise"}},
        "provider": "http",
        "provider_options": {"base_url": "http://127.0.0.1:9", "auth_token": "t" * 12, "webhook_secret": SECRETS[n]},
    }
    campaign_id = create_campaign(store, parse_campaign(config), NOW, IdFactory())
    add_contacts(store, campaign_id, [NewContact(f"+52550000{n}{i:03d}", f"P{i}", "") for i in range(3)], NOW)
    with store.tx() as tx:
        contacts = [
            row[0] for row in tx.connection.execute(t.contacts.select().where(t.contacts.c.campaign_id == campaign_id))
        ]
        tx.insert_calls(
            [
                {
                    "public_id": f"cll_lookup{n}{i:08d}",
                    "campaign_id": campaign_id,
                    "contact_id": contact,
                    # The last call of each campaign went out through another provider.
                    "provider": "http" if i < 2 else "twilio",
                    "provider_call_id": f"ext-{n}-{i}",
                    "type": "outbound",
                    "status": "queued",
                    "created_at": NOW,
                    "follow_up": False,
                    "cycle": 1,
                    "tags": [],
                    "extracted": {},
                }
                for i, contact in enumerate(contacts)
            ]
        )
    return campaign_id


def _body(*calls: tuple[int, int]) -> bytes:
    events: list[dict[str, Any]] = [
        {
            "event_id": f"ext-{n}-{i}.1",
            "call_id": f"cll_lookup{n}{i:08d}",
            "external_id": f"ext-{n}-{i}",
            "type": "ringing",
            "occurred_at": "2026-11-30T12:00:01Z",
        }
        for n, i in calls
    ]
    return json.dumps({"events": events}).encode()


def _post(store: Store, body: bytes, *secrets: str) -> tuple[int, str]:
    headers = {SIGNATURE_HEADER.lower(): sign(secret, body) for secret in secrets[:1]}
    try:
        result = receive(store, "http", body, headers, URL, NOW)
    except WebhookError as error:
        return error.status, error.message
    return 200, f"{result.accepted}/{result.duplicates}"


@pytest.fixture
def store(database_url: str) -> Any:
    opened = Store.open(database_url)
    _campaign(opened, 0)
    _campaign(opened, 1)
    yield opened
    opened.close()


def test_known_calls_are_stored_once(store: Store) -> None:
    body = _body((0, 0), (0, 1), (0, 0))
    assert _post(store, body, SECRETS[0]) == (200, "2/1")
    assert _post(store, body, SECRETS[0]) == (200, "0/3")


def test_every_campaign_named_must_have_signed(store: Store) -> None:
    body = _body((0, 0), (1, 1))
    assert _post(store, body, SECRETS[0])[0] == 401
    assert _post(store, body, SECRETS[1])[0] == 401
    assert _post(store, _body((1, 0), (1, 1)), SECRETS[1]) == (200, "2/0")


@pytest.mark.parametrize(
    ("calls", "unknown"),
    [([(0, 0), (0, 7)], "cll_lookup000000007"), ([(0, 2), (0, 1)], "cll_lookup000000002")],
    ids=["no such call", "another provider's call"],
)
def test_unknown_calls_are_named(store: Store, calls: list[tuple[int, int]], unknown: str) -> None:
    assert _post(store, _body(*calls), SECRETS[0]) == (422, f"unknown call_id {unknown!r}")


def test_message_ids_must_be_numbers(store: Store) -> None:
    body = json.dumps(
        {
            "events": [
                {
                    "event_id": "m.1",
                    "message_id": "wamid.x",
                    "external_id": "m",
                    "type": "sent",
                    "occurred_at": "2026-11-30T12:00:01Z",
                }
            ]
        }
    ).encode()
    assert _post(store, body, SECRETS[0]) == (422, "unknown message_id 'wamid.x'")
    assert _post(store, body.replace(b"wamid.x", b"424242"), SECRETS[0]) == (422, "unknown message_id '424242'")
