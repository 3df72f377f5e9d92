"""VapiOutbound against the fake Vapi on a loopback port, and against scripted answers through httpx's transport seam."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from herald.domain.campaign import CampaignConfig, parse_campaign
from herald.providers import registry
from herald.providers.base import CallRequest, MessageRequest, StartError, StartResult
from herald.providers.vapi import CALL_ID_KEY, VapiInbound, VapiOptions, VapiOutbound
from herald.testing.fake_vapi import FakeVapi

KEY = "vapi-private-key-0123456789"
SERVER_SECRET = "srv-secret-0123456789"
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
CONFIG: CampaignConfig = parse_campaign({"name": "Vapi test", "channel": "phone_call"})


def calls(count: int, prefix: str = "cll_v") -> list[CallRequest]:
    return [
        CallRequest(
            public_id=f"{prefix}{index:04d}",
            campaign_id=1,
            contact_id=index,
            to=f"+5255{index:08d}",
            name=f"Person {index}",
            context="owes 100",
            first_message="Hola" if index % 2 else None,
            follow_up=False,
            config=CONFIG,
            variables={"amount": str(index)},
        )
        for index in range(count)
    ]


def options(base_url: str, **changes: Any) -> VapiOptions:
    values: dict[str, Any] = {
        "api_key": KEY,
        "assistant_id": "asst-1",
        "phone_number_id": "pn-1",
        "server_secret": SERVER_SECRET,
        "api_base_url": base_url,
        **changes,
    }
    return VapiOptions(**values)


@pytest.fixture
def fake() -> Iterator[FakeVapi]:
    # Server messages go to a port nobody listens on, late: these tests look at starts only.
    with FakeVapi(token=KEY, callback_url="http://127.0.0.1:9/webhooks/vapi", min_delay=60, max_delay=60) as running:
        yield running


@pytest.fixture
def outbound(fake: FakeVapi) -> Iterator[VapiOutbound]:
    with VapiOutbound(options(fake.url)) as adapter:
        yield adapter


Handler = Callable[[httpx.Request], httpx.Response]


def scripted(handler: Handler, **changes: Any) -> VapiOutbound:
    """An adapter whose requests are answered by `handler` (httpx's transport seam; no socket)."""
    adapter = VapiOutbound(options("https://api.vapi.test", **changes))
    adapter._client.close()
    adapter._client = httpx.Client(transport=httpx.MockTransport(handler))
    return adapter


def test_start_calls_sends_vapis_create_call(fake: FakeVapi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_PUBLIC_URL", "https://herald.example.com/")
    with VapiOutbound(options(fake.url + "/")) as adapter:
        results = adapter.start_calls(calls(3), NOW)
    assert all(result.ok for result in results)
    assert len({result.external_id for result in results}) == 3
    by_id = {request["name"]: request for request in fake.requests}
    assert by_id["cll_v0001"] == {
        "name": "cll_v0001",
        "assistantId": "asst-1",
        "phoneNumberId": "pn-1",
        "customer": {"number": "+525500000001", "name": "Person 1"},
        "assistantOverrides": {
            "firstMessage": "Hola",
            "variableValues": {"amount": "1", "name": "Person 1", "context": "owes 100", CALL_ID_KEY: "cll_v0001"},
            "metadata": {CALL_ID_KEY: "cll_v0001", "campaignId": 1, "contactId": 1},
            "server": {
                "url": "https://herald.example.com/webhooks/vapi",
                "headers": {"X-Vapi-Secret": SERVER_SECRET},
                "backoffPlan": {"type": "exponential", "maxRetries": 10, "baseDelaySeconds": 1},
            },
            "serverMessages": ["status-update", "end-of-call-report"],
        },
    }
    assert "firstMessage" not in by_id["cll_v0000"]["assistantOverrides"]
    # The id each result carries is the id of the Call Vapi created for that request.
    for request, result in zip(calls(3), results, strict=True):
        created = fake.call(str(result.external_id))
        assert created is not None and created["name"] == request.public_id


def test_a_server_credential_replaces_the_secret_header(fake: FakeVapi) -> None:
    with VapiOutbound(options(fake.url, server_credential_id="cred-9", server_secret="env:UNSET_HERE")) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.ok
    server = fake.requests[0]["assistantOverrides"]["server"]
    assert server["credentialId"] == "cred-9" and "headers" not in server


def test_long_names_are_cut_to_vapis_limit(fake: FakeVapi, outbound: VapiOutbound) -> None:
    request = dataclasses.replace(calls(1)[0], name="N" * 100)
    assert outbound.start_calls([request], NOW)[0].ok
    sent = fake.requests[0]
    assert sent["customer"]["name"] == "N" * 40
    assert sent["assistantOverrides"]["variableValues"]["name"] == "N" * 100


def test_results_come_back_in_request_order(fake: FakeVapi, outbound: VapiOutbound) -> None:
    results = outbound.start_calls(calls(40), NOW)
    names = [(fake.call(str(result.external_id)) or {}).get("name") for result in results]
    assert names == [request.public_id for request in calls(40)]


def test_rate_limits_and_server_errors_are_retryable(fake: FakeVapi, outbound: VapiOutbound) -> None:
    fake.control({"error_rate_429": 1.0})
    limited = outbound.start_calls(calls(3), NOW)
    assert all(result.error is StartError.RETRYABLE and result.error_code == "http_429" for result in limited)
    assert limited[0].error_msg == "Too many requests, please try again later."
    fake.control({"error_rate_429": 0.0, "error_rate_500": 1.0})
    failing = outbound.start_calls(calls(2), NOW)
    assert all(result.error is StartError.RETRYABLE and result.error_code == "http_500" for result in failing)
    fake.control({"error_rate_500": 0.0})
    assert all(result.ok for result in outbound.start_calls(calls(3), NOW))
    stats = fake.stats()
    assert (stats["injected_429"], stats["injected_500"], stats["placements"]) == (3, 2, 3)


def test_a_refusal_carries_vapis_messages(outbound: VapiOutbound) -> None:
    [bad] = outbound.start_calls([dataclasses.replace(calls(1)[0], to="5512345678")], NOW)
    assert bad == StartResult.rejected("http_400", "customer.number must be a valid phone number in the E.164 format.")


def test_a_wrong_key_is_a_refusal(fake: FakeVapi) -> None:
    with VapiOutbound(options(fake.url, api_key="wrong-key-0123456789")) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.error is StartError.REJECTED and result.error_code == "http_401"
    assert result.error_msg.startswith("Invalid Key") and fake.stats()["placements"] == 0


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_other_retryable_statuses(status: int) -> None:
    with scripted(lambda request: httpx.Response(status, text="<html>busy</html>")) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result == StartResult.retryable(f"http_{status}", "<html>busy</html>")


def test_the_key_never_reaches_an_error_message() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        server = json.loads(request.content)["assistantOverrides"]["server"]["headers"]
        echoed = f"bad request {request.headers['authorization']} {server}"
        return httpx.Response(400, json={"message": [echoed], "statusCode": 400})

    with scripted(echo) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.error is StartError.REJECTED and "Bearer ***" in result.error_msg
    assert "'X-Vapi-Secret': '***'" in result.error_msg
    assert KEY not in result.error_msg and SERVER_SECRET not in result.error_msg


@pytest.mark.parametrize("payload", [{}, {"id": ""}, {"id": 12}, ["id"], None], ids=str)
def test_a_2xx_without_a_call_id_is_a_bad_response(payload: Any) -> None:
    with scripted(lambda request: httpx.Response(201, json=payload)) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.error is StartError.REJECTED and result.error_code == "bad_response"


def test_a_lost_answer_finds_the_call_vapi_created(fake: FakeVapi) -> None:
    """The answer comes too late: the call exists, and the lookup by Herald's id finds it; nothing is placed twice."""
    fake.control({"answer_delay": 2.0})
    with VapiOutbound(options(fake.url, timeout_seconds=0.3)) as adapter:
        [result] = adapter.start_calls(calls(1), datetime.now(UTC))
    assert result.ok
    stats = fake.stats()
    assert (stats["placements"], stats["lookups"]) == (1, 1)
    assert (fake.call(str(result.external_id)) or {})["name"] == "cll_v0000"


def test_a_timeout_without_a_call_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("slow", request=request)
        assert (
            request.url.params["phoneNumberId"] == "pn-1"
            and request.url.params["createdAtGe"] == "2026-01-05T14:58:00Z"
        )
        other = {"id": "call-other", "assistantOverrides": {"metadata": {CALL_ID_KEY: "cll_someone_else"}}}
        return httpx.Response(200, json=[other, "junk"])

    with scripted(handler) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.error is StartError.RETRYABLE and result.error_code == "timeout"


def test_a_timeout_whose_lookup_fails_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with scripted(handler) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.error is StartError.RETRYABLE and "adopt" in result.error_msg


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with VapiOutbound(options(url)) as adapter:
            results = adapter.start_calls(calls(2), NOW)
    assert [result.error_code for result in results] == ["connect_error", "connect_error"]
    assert all(result.error is StartError.RETRYABLE for result in results)


def test_credentials_from_the_environment(fake: FakeVapi, monkeypatch: pytest.MonkeyPatch) -> None:
    changes = {"api_key": "env:HERALD_TEST_VAPI_KEY", "server_secret": "env:HERALD_TEST_VAPI_SECRET"}
    with VapiOutbound(options(fake.url, **changes)) as adapter:
        monkeypatch.delenv("HERALD_TEST_VAPI_KEY", raising=False)
        monkeypatch.setenv("HERALD_TEST_VAPI_SECRET", SERVER_SECRET)
        [missing] = adapter.start_calls(calls(1), NOW)
        assert missing == StartResult.retryable("config_error", "environment variable HERALD_TEST_VAPI_KEY is not set")
        monkeypatch.setenv("HERALD_TEST_VAPI_KEY", KEY)
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.ok
    assert fake.requests[0]["assistantOverrides"]["server"]["headers"] == {"X-Vapi-Secret": SERVER_SECRET}


def test_a_key_that_is_not_ascii_is_a_config_error(fake: FakeVapi) -> None:
    with VapiOutbound(options(fake.url, api_key="clé-privée")) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result == StartResult.retryable("config_error", "api_key is not ASCII text")


def test_messages_are_refused_and_empty_batches_are_empty(outbound: VapiOutbound) -> None:
    request = MessageRequest(1, 1, 1, "+525500000001", "t", CONFIG)
    [refused] = outbound.send_messages([request], NOW)
    assert refused.error is StartError.REJECTED and refused.error_code == "unsupported"
    assert outbound.start_calls([], NOW) == [] and outbound.send_messages([], NOW) == []


# --- options and registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"api_base_url": "ftp://api.vapi.ai"}, "http:// or https://"),
        ({"api_base_url": "https://api.vapi.ai/?x=1"}, "query"),
        ({"api_key": ""}, "api_key"),
        ({"assistant_id": ""}, "assistant_id"),
        ({"phone_number_id": None}, "phone_number_id"),
        ({"server_secret": ""}, "server_secret"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"from_number": "+1"}, "from_number"),
    ],
)
def test_options_are_checked(changes: dict[str, Any], problem: str) -> None:
    values = {"api_key": KEY, "assistant_id": "a", "phone_number_id": "p", "server_secret": "s", **changes}
    with pytest.raises(registry.ProviderOptionsError, match=problem) as caught:
        registry.validate_options("vapi", values)
    assert KEY not in str(caught.value)


def test_registry_builds_both_halves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERALD_PUBLIC_URL", raising=False)
    spec = registry.spec("vapi")
    validated = registry.validate_options(
        "vapi", {"api_key": "env:K", "assistant_id": "a", "phone_number_id": "p", "server_secret": "env:S"}
    )
    assert isinstance(validated, VapiOptions) and validated.api_base_url == "https://api.vapi.ai"
    adapter = spec.make_outbound(validated)
    try:
        assert isinstance(adapter, VapiOutbound) and adapter.name == "vapi" and not adapter.idempotent
        assert adapter.server_url == "http://127.0.0.1:8000/webhooks/vapi" and adapter.throughput is None
    finally:
        assert isinstance(adapter, VapiOutbound)
        adapter.close()
    inbound = spec.make_inbound()
    assert isinstance(inbound, VapiInbound) and inbound.name == "vapi" and not spec.idempotent


def test_options_never_show_credentials() -> None:
    literal = registry.validate_options(
        "vapi", {"api_key": KEY, "assistant_id": "a", "phone_number_id": "p", "server_secret": SERVER_SECRET}
    )
    assert KEY not in repr(literal) and SERVER_SECRET not in repr(literal) and KEY not in str(literal)
