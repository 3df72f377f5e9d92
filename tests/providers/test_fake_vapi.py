"""The fake Vapi itself: its API answers, and its server messages, read by Herald's parser, tell each call's story."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CALL_STATUS_RANK, CallStatus
from herald.providers.base import CallRequest, ProviderEvent
from herald.providers.vapi import VapiInbound, VapiOptions, VapiOutbound
from herald.testing.fake_vapi import FakeVapi, MessageSink

KEY = "fake-vapi-key-0123456789"
SECRET = "srv-secret-0123456789"
CONFIG = parse_campaign({"name": "Fake Vapi", "channel": "phone_call"})


def requests(count: int) -> list[CallRequest]:
    return [
        CallRequest(f"cll_f{i:04d}", 7, i, f"+5255{i:08d}", f"P{i}", "ctx", None, False, CONFIG) for i in range(count)
    ]


def options(url: str, **changes: str) -> VapiOptions:
    values = {"api_key": KEY, "assistant_id": "a", "phone_number_id": "p", "server_secret": SECRET, **changes}
    return VapiOptions(api_base_url=url, **values)


def test_the_api_answers_like_vapi() -> None:
    with FakeVapi(token=KEY) as fake, httpx.Client(base_url=fake.url, timeout=10) as client:
        auth = {"Authorization": f"Bearer {KEY}"}
        refused = client.post("/call", json={}, headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401 and refused.json()["statusCode"] == 401
        bad = client.post("/call", json={"assistantId": "a", "customer": {"number": "55"}}, headers=auth)
        assert bad.status_code == 400 and isinstance(bad.json()["message"], list) and len(bad.json()["message"]) == 3
        assert client.post("/call", content=b"{", headers=auth).status_code == 400
        assert client.get("/call/nope", headers=auth).status_code == 404
        assert client.get("/call/nope").status_code == 401
        assert client.post("/nothing", json={}, headers=auth).status_code == 404
        assert client.post("/control", json={"reorder_rate": -1}).status_code == 400
        assert client.post("/control", json={"reorder_rate": 0.5}).json()["reorder_rate"] == 0.5
        stats = client.get("/stats").json()
        assert stats["rejected"] == 7 and stats["placements"] == 0


def _final(events: list[ProviderEvent]) -> dict[str, tuple[str, str]]:
    """What Herald's engine keeps of a stream: each event once (its key), a call's status never moving backwards."""
    seen: set[tuple[str, str, str]] = set()
    calls: dict[str, tuple[str, str]] = {}
    for event in sorted(events, key=lambda item: item.occurred_at):
        if event.key in seen:
            continue
        seen.add(event.key)
        status, answered_by = calls.get(event.attempt_id, ("created", ""))
        if CALL_STATUS_RANK[CallStatus(event.kind)] > CALL_STATUS_RANK[CallStatus(status)]:
            calls[event.attempt_id] = (event.kind, str(event.data.get("answered_by", answered_by)))
    return calls


@pytest.mark.parametrize("credential", [None, "bearer", "hmac"])
def test_messages_tell_each_calls_story_in_any_order(credential: str | None) -> None:
    inbound = VapiInbound()
    credentials = {"cred-1": (credential, SECRET)} if credential else {}
    changes = {"server_credential_id": "cred-1"} if credential else {}
    fake = FakeVapi(token=KEY, seed=11, duplicate_rate=0.5, reorder_rate=0.5, max_delay=0.02, credentials=credentials)
    with MessageSink() as sink, fake, VapiOutbound(options(fake.url, **changes)) as adapter:
        adapter.server_url = sink.url
        results = adapter.start_calls(requests(60), datetime.now(UTC))
        assert all(result.ok for result in results)
        assert fake.drain(60)
        stats = fake.stats()
    events: list[ProviderEvent] = []
    for headers, raw in sink.received:
        assert inbound.verify(raw, headers, sink.url, {"server_secret": SECRET})
        assert not inbound.verify(raw, headers, sink.url, {"server_secret": SECRET + "x"})
        if credential == "bearer":
            assert headers["authorization"] == f"Bearer {SECRET}"
        elif credential == "hmac":
            assert "x-vapi-signature" in headers and "x-vapi-secret" not in headers
        events.extend(inbound.parse(raw, headers, sink.url))
    expected = {call_id: (o["status"], o["answered_by"]) for call_id, o in stats["outcomes"].items()}
    assert _final(events) == expected
    assert (
        stats["messages_posted"]
        == len(sink.received)
        > len({json.loads(raw)["message"]["type"] for _, raw in sink.received})
    )
    assert stats["in_flight"] == 0 and stats["pending_messages"] == 0
    # Every outcome of the default mix happened in 60 calls; the ids Vapi gave are the events' external ids.
    assert {status for status, _ in expected.values()} == {"ended", "busy", "no-answer", "failed"}
    assert {event.external_id for event in events} == {result.external_id for result in results}
