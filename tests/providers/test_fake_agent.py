"""The fake agent backend: what it posts follows the contract, and its /stats tell the truth about what it did."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from herald.domain.campaign import CampaignConfig, parse_campaign
from herald.providers.base import CallRequest, MessageRequest, ProviderEvent, StartError
from herald.providers.http import HttpOptions, HttpOutbound
from herald.testing.fake_agent import FakeAgent
from herald.testing.sink import EventSink

SECRET = base64.b64encode(b"fake-agent-test-secret-0123456789").decode()
TOKEN = "fake-agent-token-0001"
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
CONFIG: CampaignConfig = parse_campaign({"name": "Fake agent test", "channel": "phone_call"})
EVENTS_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).parents[2] / "docs/providers/http/events.schema.json").read_text())
)
TERMINAL = {"ended", "busy", "no-answer", "failed"}


def calls(
    count: int, campaign_id: int = 1, numbers: list[str] | None = None, prefix: str = "cll_f"
) -> list[CallRequest]:
    return [
        CallRequest(
            public_id=f"{prefix}{campaign_id}_{index:04d}",
            campaign_id=campaign_id,
            contact_id=index,
            to=numbers[index] if numbers else f"+5255{campaign_id:02d}{index:06d}",
            name="",
            context="",
            first_message=None,
            follow_up=False,
            config=CONFIG,
        )
        for index in range(count)
    ]


def messages(count: int) -> list[MessageRequest]:
    return [MessageRequest(500 + index, 3, index, f"+5255{index:08d}", "tpl", CONFIG) for index in range(count)]


def adapter(agent: FakeAgent) -> HttpOutbound:
    return HttpOutbound(HttpOptions(base_url=agent.url, auth_token=TOKEN, webhook_secret=SECRET))


def ends(sink: EventSink) -> dict[str, ProviderEvent]:
    """The first terminal event of each call the sink received, by Herald's call id."""
    found: dict[str, ProviderEvent] = {}
    for event in sink.received:
        if event.subject == "call" and event.kind in TERMINAL:
            found.setdefault(event.attempt_id, event)
    return found


@pytest.fixture
def sink() -> Iterator[EventSink]:
    with EventSink(SECRET) as running:
        yield running


def test_a_campaigns_events_follow_the_contract_and_match_the_stats(sink: EventSink) -> None:
    with (
        FakeAgent(sink.url, SECRET, token=TOKEN, seed=5, max_delay=0.02, duplicate_rate=0.3, reorder_rate=0.3) as agent,
        adapter(agent) as outbound,
    ):
        assert all(result.ok for result in outbound.start_calls(calls(40), NOW))
        assert all(result.ok for result in outbound.send_messages(messages(20), NOW))
        assert agent.drain(30)
        stats = agent.stats()
    assert set(sink.answers) == {200}
    for raw in sink.bodies:
        EVENTS_SCHEMA.validate(json.loads(raw))
    assert stats["events_posted"] == len(sink.received) > len(sink.events)  # duplicates were posted
    assert (stats["placements"], stats["messages"], stats["in_flight"], stats["pending_events"]) == (40, 20, 0, 0)
    assert stats["max_in_flight"] >= 1 and stats["max_in_flight_by_campaign"]["1"] == stats["max_in_flight"]
    # Every call's first terminal event is the outcome the agent says it sent.
    terminal = ends(sink)
    assert sorted(terminal) == sorted(stats["outcomes"])
    for call_id, outcome in stats["outcomes"].items():
        event = terminal[call_id]
        assert outcome == {"status": event.kind, "answered_by": event.data.get("answered_by", "")}
        if event.kind == "ended":
            assert event.data["started_at"] is not None and event.data["recording"] is (
                outcome["answered_by"] != "machine"
            )
    assert {outcome["status"] for outcome in stats["outcomes"].values()} >= {"ended", "no-answer"}
    # Some call's events arrived in another order than they happened.
    arrival: dict[str, list[datetime]] = {}
    for event in sink.received:
        if event.subject == "call":
            arrival.setdefault(event.attempt_id, []).append(event.occurred_at)
    assert any(times != sorted(times) for times in arrival.values())
    # Messages: receipts and replies as the agent decided.
    kinds: dict[str, set[str]] = {}
    for event in sink.events.values():
        if event.subject == "message":
            kinds.setdefault(event.attempt_id, set()).add(event.kind)
    for message_id, outcome in stats["message_outcomes"].items():
        expected = {
            "sent": {"sent"},
            "delivered": {"sent", "delivered"},
            "read": {"sent", "delivered", "read"},
            "accepted": {"sent", "delivered", "read", "reply"},
            "rejected": {"sent", "delivered", "read", "reply"},
            "failed": {"sent", "failed"},
        }[outcome["status"]]
        assert kinds[message_id] == expected


def test_in_flight_is_counted_per_campaign_and_number() -> None:
    # Events an hour away: nothing ends while the test looks.
    with FakeAgent(None, SECRET, min_delay=3600, max_delay=3600) as agent, adapter(agent) as outbound:
        outbound.start_calls(calls(5, campaign_id=1), NOW)
        outbound.start_calls(calls(3, campaign_id=2, numbers=["+525500000001", "+525500000002", "+525500000003"]), NOW)
        outbound.start_calls(calls(1, campaign_id=3, numbers=["+525500000001"]), NOW)
        stats = agent.stats()
    assert (stats["placements"], stats["in_flight"], stats["max_in_flight"]) == (9, 9, 9)
    assert stats["max_in_flight_by_campaign"] == {"1": 5, "2": 3, "3": 1}
    assert stats["overlapping_numbers"] == ["+525500000001"]


def test_in_flight_drops_when_the_end_goes_out(sink: EventSink) -> None:
    with FakeAgent(sink.url, SECRET, seed=1, max_delay=0.01) as agent, adapter(agent) as outbound:
        outbound.start_calls(calls(10), NOW)
        assert agent.drain(30)
        first = agent.stats()
        outbound.start_calls(calls(10, prefix="cll_g"), NOW)
        assert agent.drain(30)
        second = agent.stats()
    assert first["in_flight"] == second["in_flight"] == 0
    assert second["placements"] == 20 and second["max_in_flight"] <= 10


def test_events_are_posted_again_until_herald_takes_them() -> None:
    with (
        EventSink(SECRET, fail_first=3) as sink,
        FakeAgent(sink.url, SECRET, max_delay=0.01) as agent,
        adapter(agent) as outbound,
    ):
        outbound.start_calls(calls(5), NOW)
        assert agent.drain(30)
        stats = agent.stats()
    assert sink.answers[503] == 3 and stats["post_failures"] == 3
    assert "HTTP 503" in stats["last_post_error"]
    assert len(ends(sink)) == 5


def test_outcomes_depend_on_the_seed_and_call_id_only(sink: EventSink) -> None:
    outcomes = []
    for batch in (calls(30), list(reversed(calls(30)))):
        with FakeAgent(sink.url, SECRET, seed=9, max_delay=0.0) as agent, adapter(agent) as outbound:
            outbound.start_calls(batch, NOW)
            assert agent.drain(30)
            outcomes.append(agent.stats()["outcomes"])
    assert outcomes[0] == outcomes[1]


def test_control_and_bad_requests(sink: EventSink) -> None:
    with FakeAgent(sink.url, SECRET, token=TOKEN) as agent, httpx.Client(base_url=agent.url) as client:
        assert client.post("/control", json={"error_rate_500": 0.5}).json()["error_rate_500"] == 0.5
        for bad in ({"nope": 1}, {"max_delay": -1}, {"max_delay": "1"}, [1]):
            answer = client.post("/control", json=bad)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        body = {"call_id": "c1", "campaign_id": 1, "to": "+525500000001", "callback_url": sink.url}
        missing_key = client.post("/calls", json=body, headers=headers)
        assert missing_key.status_code == 400 and missing_key.json()["error"]["code"] == "missing_idempotency_key"
        no_token = client.post("/calls", json=body, headers={"Idempotency-Key": "c1"})
        assert no_token.status_code == 401
        not_json = client.post("/calls", content=b"{", headers={**headers, "Idempotency-Key": "c1"})
        assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
        assert client.get("/nothing").status_code == 404
        assert agent.stats()["placements"] == 0


def test_runs_as_a_process(sink: EventSink) -> None:
    command = [
        sys.executable,
        "-m",
        "herald.testing.fake_agent",
        "--port",
        "0",
        "--secret",
        SECRET,
        "--token",
        TOKEN,
        "--callback-url",
        sink.url,
        "--seed",
        "2",
        "--max-delay",
        "0.01",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = json.loads(process.stdout.readline())["port"]
        url = f"http://127.0.0.1:{port}"
        options = HttpOptions(base_url=url, auth_token=TOKEN, webhook_secret=SECRET)
        with HttpOutbound(options) as outbound, httpx.Client(base_url=url) as client:
            assert all(result.ok for result in outbound.start_calls(calls(5), NOW))
            assert sink.wait_for(lambda received: len(ends(received)) == 5, timeout=30)
            stats: dict[str, Any] = client.get("/stats").json()
            assert stats["placements"] == 5 and len(stats["outcomes"]) == 5
            client.post("/control", json={"error_rate_429": 1})
            [limited] = outbound.start_calls(calls(1, prefix="cll_h"), NOW)
            assert limited.error is StartError.RETRYABLE and limited.error_code == "http_429"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
