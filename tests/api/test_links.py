"""Tracked links end to end over HTTP (SPEC §7.5): a live worker sends messages whose tracked URLs point at
`{HERALD_PUBLIC_URL}/l/{token}`; each GET of one records a click and answers 302 to the stored target; a worker
applies the clicks, and they reach the sendout export's `link_clicks`. Unknown or malformed tokens are 404, and no
request can make the endpoint redirect anywhere that was not stored. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from herald.api.app import create_app
from herald.domain import links as tracking
from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.worker import Worker
from herald.exports import formats
from herald.ids import IdFactory
from herald.providers.base import MessageRequest, StartResult
from herald.store import inbox
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START

PUBLIC = "https://herald.example.org"
OFFER = "https://shop.example.com/oferta?utm=wa&x=1"
LINKS = [
    {"id": "offer", "name": "Ver oferta", "url": OFFER},
    {"id": "pay", "name": "Pagar", "variable": "payment_url"},
    # A WhatsApp URL button approved as `{HERALD_PUBLIC_URL}/l/{{1}}`: the message gives only the token.
    {"id": "button", "name": "Botón", "url": "https://shop.example.com/button", "carries": "token"},
]
CONTACTS = [
    ("+525500000001", {"payment_url": "https://pay.example.com/c/1", "note": "Paga: {link:pay} · {link:offer}"}),
    ("+525500000002", {"payment_url": "not a url", "note": "{link:pay}"}),
    ("+525500000003", {}),
]


class RecordingProvider:
    """A WhatsApp provider that takes every message and keeps the requests, as a real one would receive them."""

    name = "simulator"
    idempotent = True
    throughput = None

    def __init__(self) -> None:
        self.requests: list[MessageRequest] = []

    def start_calls(self, requests: Sequence[Any], now: datetime) -> list[StartResult]:
        raise AssertionError("no calls here")

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        self.requests.extend(requests)
        return [StartResult(external_id=f"wamid.test{request.message_id}") for request in requests]


@dataclass
class Setup:
    store: Store
    client: TestClient
    worker: Worker
    provider: RecordingProvider
    campaign_id: int

    def by_number(self) -> dict[str, MessageRequest]:
        return {request.to: request for request in self.provider.requests}

    def link_clicks(self) -> dict[str, list[dict[str, str]]]:
        """The sendout export's `link_clicks` per contact."""
        with self.store.read() as tx:
            campaign = tx.campaign(self.campaign_id)
            header = formats.header(campaign, "sendout")
            rows = [dict(zip(header, row, strict=True)) for row in formats.rows(tx, campaign, "sendout")]
        return {row["customer_external_id"]: json.loads(row["link_clicks"] or "[]") for row in rows}

    def pending_events(self) -> int:
        with self.store.read() as tx:
            count, _ = inbox.pending(tx, limit=0)
        return count


@pytest.fixture
def setup(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("HERALD_PUBLIC_URL", PUBLIC + "/")
    store = Store.open(database_url)
    config = {"name": "Links", "channel": "whatsapp", "template": "promo", "agent": AGENT, "links": LINKS}
    campaign_id = create_campaign(store, parse_campaign(config), START, IdFactory(1))
    rows = [NewContact(contact=n, name=f"P{i}", context="", input_variables=v) for i, (n, v) in enumerate(CONTACTS)]
    add_contacts(store, campaign_id, rows, START)
    act(store, campaign_id, "activate", START)
    provider = RecordingProvider()
    worker = Worker(store, ids=IdFactory(), outbound_factory=lambda _name, _options: provider)  # type: ignore[arg-type,return-value]
    worker.register()
    try:
        with TestClient(create_app(store, rate_limit=None), raise_server_exceptions=False) as client:
            worker.round()
            assert len(provider.requests) == len(CONTACTS)
            yield Setup(store, client, worker, provider, campaign_id)
    finally:
        worker.close()
        store.close()


def _path(url: str) -> str:
    assert url.startswith(PUBLIC + tracking.PATH), url
    return urlsplit(url).path


def test_messages_carry_tracked_urls_and_the_stored_variables_stay_as_imported(setup: Setup) -> None:
    sent = setup.by_number()
    first, second, third = (dict(sent[number].variables) for number, _ in CONTACTS)
    # The fixed link goes to every message, under its id; the per-contact one only where the contact has a URL.
    for variables in (first, second, third):
        assert tracking.is_token(_path(variables["offer"]).rsplit("/", 1)[1])
    assert _path(first["payment_url"]) != _path(first["offer"])
    assert first["note"] == f"Paga: {first['payment_url']} · {first['offer']}"
    assert second["payment_url"] == "not a url" and second["note"] == "{link:pay}"
    assert "payment_url" not in third and third["name"] == "P2"
    tokens = [_path(first["offer"]), _path(first["payment_url"]), _path(second["offer"]), _path(third["offer"])]
    tokens += [tracking.PATH + v["button"] for v in (first, second, third)]
    assert len(set(tokens)) == len(tokens)
    button = setup.client.get(tracking.PATH + first["button"], follow_redirects=False)
    assert (button.status_code, button.headers["location"]) == (302, "https://shop.example.com/button")
    with setup.store.read() as tx:
        stored = [row[0] for row in tx.connection.execute(select(t.messages.c.input_variables))]
    assert {"name": "P0", **CONTACTS[0][1]} in stored  # the export shows what was imported, not the tracked URLs


def test_each_click_is_recorded_once_and_reaches_the_sendout_export(setup: Setup) -> None:
    sent = setup.by_number()
    first = sent[CONTACTS[0][0]].variables
    clicks = [first["offer"], first["payment_url"], first["offer"]]
    for url in clicks:
        response = setup.client.get(_path(url), follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == (OFFER if url == first["offer"] else CONTACTS[0][1]["payment_url"])
        assert response.headers["cache-control"] == "no-store"
    # HEAD (a link preview) redirects too, without counting.
    assert setup.client.head(_path(first["offer"]), follow_redirects=False).status_code == 302
    assert setup.pending_events() == 3
    setup.worker.round()
    setup.worker.round()
    assert setup.pending_events() == 0
    exported = setup.link_clicks()
    assert [(c["id"], c["name"]) for c in exported[CONTACTS[0][0]]] == [
        ("offer", "Ver oferta"),
        ("pay", "Pagar"),
        ("offer", "Ver oferta"),
    ]
    assert all(len(c["ts"]) == len("2026-01-05 15:00:00.000000") for c in exported[CONTACTS[0][0]])
    assert exported[CONTACTS[1][0]] == [] and exported[CONTACTS[2][0]] == []
    # One more click on another message: one more entry, on that message only.
    other = sent[CONTACTS[2][0]].variables["offer"]
    assert setup.client.get(_path(other), follow_redirects=False).status_code == 302
    setup.worker.round()
    exported = setup.link_clicks()
    assert len(exported[CONTACTS[0][0]]) == 3 and [c["id"] for c in exported[CONTACTS[2][0]]] == ["offer"]


@pytest.mark.parametrize(
    "path",
    [
        "/l/" + "A" * tracking.TOKEN_LENGTH,  # well formed, never issued
        "/l/" + secrets.token_urlsafe(tracking.TOKEN_BYTES),
        "/l/short",
        "/l/" + quote("https://evil.example.com/", safe=""),
        "/l/" + "A" * (tracking.TOKEN_LENGTH + 1),
        "/l/",
        "/l",  # no trailing-slash redirect to /l/
        "/l//evil.example.com",
        "/l/0/",  # no trailing-slash redirect either
        "/l/" + "A" * tracking.TOKEN_LENGTH + "/https://evil.example.com",
    ],
)
def test_unknown_or_malformed_tokens_are_404_and_record_nothing(setup: Setup, path: str) -> None:
    response = setup.client.get(path, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert setup.client.head(path, follow_redirects=False).status_code == 404
    assert setup.pending_events() == 0


def test_a_token_is_not_one_of_another_message(setup: Setup) -> None:
    """Tokens are the whole key: a near miss (one character changed) is unknown."""
    token = _path(setup.by_number()[CONTACTS[0][0]].variables["offer"]).rsplit("/", 1)[1]
    changed = ("B" if token[0] != "B" else "C") + token[1:]
    assert setup.client.get("/l/" + changed, follow_redirects=False).status_code == 404


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(".")
@given(st.text(max_size=80) | st.from_regex(r"[A-Za-z0-9_-]{32}", fullmatch=True))
def test_no_request_redirects_anywhere_that_was_not_stored(setup: Setup, text: str) -> None:
    with setup.store.read() as tx:
        stored = {row[0] for row in tx.connection.execute(select(t.tracked_links.c.url))}
        before = tx.connection.execute(select(func.count()).select_from(t.events)).scalar_one()
    response = setup.client.get("/l/" + quote(text, safe=""), follow_redirects=False)
    if response.status_code in (301, 302, 303, 307, 308):
        assert response.headers["location"] in stored
    else:
        assert response.status_code == 404
        with setup.store.read() as tx:
            assert tx.connection.execute(select(func.count()).select_from(t.events)).scalar_one() == before


def test_a_click_before_the_provider_id_is_known_redirects_without_counting(setup: Setup) -> None:
    """The worker that sent the message died before recording the provider's answer: the click cannot name the
    message for the rules, so the browser is redirected and nothing half-made enters the inbox."""
    request = setup.by_number()[CONTACTS[0][0]]
    with setup.store.tx() as tx:
        tx.connection.execute(
            update(t.messages).where(t.messages.c.id == request.message_id).values(provider_message_id=None)
        )
    response = setup.client.get(_path(request.variables["offer"]), follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, OFFER)
    assert setup.pending_events() == 0
