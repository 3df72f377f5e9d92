"""The fake Vapi checked by code nobody here wrote: Vapi's official Python SDK (`vapi-server-sdk`, a dev-only oracle).

Its client must create, read and list calls against the fake as if it were Vapi, and every server message the fake
posts must validate against the SDK's models. The SDK's models take 20-50 s to import on a busy machine: they are
imported once per test run (a session fixture), and only by the tests that need them.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from herald.domain.campaign import parse_campaign
from herald.providers.base import CallRequest
from herald.providers.vapi import CALL_ID_KEY, VapiInbound, VapiOptions, VapiOutbound
from herald.testing.fake_vapi import EXPECTED, FakeVapi, MessageSink

KEY = "vapi-private-key-0123456789"
SECRET = "srv-secret-0123456789"
CONFIG = parse_campaign({"name": "Vapi oracle", "channel": "phone_call"})


@pytest.fixture(scope="session")
def vapi() -> ModuleType:
    """The SDK with its models loaded (slow: once per run)."""
    module = pytest.importorskip("vapi", reason="vapi-server-sdk (tests/oracles.txt) is not installed")
    import vapi.types  # noqa: F401  (the slow part)

    return module


@pytest.fixture
def sink() -> Iterator[MessageSink]:
    with MessageSink() as running:
        yield running


def _sdk_view(value: Any) -> Any:
    """A copy for the SDK's models: `backoffPlan.type` is the string "fixed" or "exponential" in Vapi's API reference
    (its enum), but the OpenAPI document calls it an object and the generated model a dict. Checked here instead."""
    if isinstance(value, dict):
        copy = {key: _sdk_view(item) for key, item in value.items()}
        plan = copy.get("backoffPlan")
        if isinstance(plan, dict) and "type" in plan:
            assert plan["type"] in ("fixed", "exponential")
            copy["backoffPlan"] = {key: item for key, item in plan.items() if key != "type"} | {"type": {}}
        return copy
    if isinstance(value, list):
        return [_sdk_view(item) for item in value]
    return value


def _literals(annotation: Any) -> set[str]:
    """The string values a Fern `Literal[...] | Any` alias names (its `Any` accepts anything, so check them here)."""
    values: set[str] = set()
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            values.update(typing.get_args(arg))
    return values


def test_the_sdk_creates_reads_and_lists_calls_on_the_fake(vapi: ModuleType) -> None:
    from vapi.types import Call

    with FakeVapi(token=KEY, callback_url="http://127.0.0.1:9/", min_delay=60, max_delay=60) as fake:
        client = vapi.Vapi(token=KEY, base_url=fake.url)
        options = {"max_retries": 0}
        created = client.calls.create(
            assistant_id="asst-1",
            phone_number_id="pn-1",
            customer={"number": "+525500000001", "name": "Ana"},
            assistant_overrides={
                "variableValues": {"name": "Ana", CALL_ID_KEY: "cll_oracle"},
                "metadata": {CALL_ID_KEY: "cll_oracle"},
                "server": {"url": "http://127.0.0.1:9/webhooks/vapi", "headers": {"X-Vapi-Secret": SECRET}},
            },
            request_options=options,
        )
        assert isinstance(created, Call) and created.id and created.status == "queued"
        assert created.customer is not None and created.customer.number == "+525500000001"
        sent = fake.requests[0]
        assert sent["assistantId"] == "asst-1" and sent["assistantOverrides"]["metadata"] == {CALL_ID_KEY: "cll_oracle"}
        fetched = client.calls.get(created.id, request_options=options)
        assert fetched.id == created.id and fetched.assistant_id == "asst-1"
        listed = client.calls.list(phone_number_id="pn-1", request_options=options)
        assert [call.id for call in listed] == [created.id]
        # The fake's Call objects are Calls by the SDK's validating parser too, not only its lenient one.
        Call.model_validate(fake.call(created.id))
        with pytest.raises(vapi.core.api_error.ApiError) as refused:
            vapi.Vapi(token="wrong", base_url=fake.url).calls.create(
                assistant_id="a", phone_number_id="p", customer={"number": "+525500000002"}, request_options=options
            )
        assert refused.value.status_code == 401


def test_herald_creates_calls_the_sdk_accepts(vapi: ModuleType) -> None:
    """What Herald sends is a CreateCallDto, and what the fake answers is a Call, by the SDK's models."""
    from vapi.types import Call, CreateCustomerDto
    from vapi.types.assistant_overrides import AssistantOverrides

    with FakeVapi(token=KEY, callback_url="http://127.0.0.1:9/", min_delay=60, max_delay=60) as fake:
        with VapiOutbound(_options(fake.url)) as adapter:
            [result] = adapter.start_calls(_calls(1), datetime.now(UTC))
        assert result.ok
        sent = fake.requests[0]
        CreateCustomerDto.model_validate(sent["customer"])
        overrides = AssistantOverrides.model_validate(_sdk_view(sent["assistantOverrides"]))
        assert overrides.server is not None and overrides.server.url == sent["assistantOverrides"]["server"]["url"]
        assert set(sent["assistantOverrides"]["serverMessages"]) <= _literals(
            typing.get_args(AssistantOverrides.model_fields["server_messages"].annotation)[0].__args__[0]
        )
        Call.model_validate(_sdk_view(fake.call(str(result.external_id))))


def test_every_server_message_of_the_fake_is_vapis_and_herald_reads_it(vapi: ModuleType, sink: MessageSink) -> None:
    from vapi.types import ServerMessageEndOfCallReport, ServerMessageStatusUpdate
    from vapi.types.server_message_end_of_call_report_ended_reason import ServerMessageEndOfCallReportEndedReason
    from vapi.types.server_message_status_update_status import ServerMessageStatusUpdateStatus

    reasons, statuses = _literals(ServerMessageEndOfCallReportEndedReason), _literals(ServerMessageStatusUpdateStatus)
    inbound = VapiInbound()
    fake = FakeVapi(token=KEY, seed=5, duplicate_rate=0.3, reorder_rate=0.3, noise_rate=0.3, max_delay=0.01)
    with fake, VapiOutbound(_options(fake.url)) as adapter, pytest.MonkeyPatch.context() as patch:
        patch.setenv("HERALD_PUBLIC_URL", sink.url.removesuffix("/webhooks/vapi"))
        adapter.server_url = sink.url
        results = adapter.start_calls(_calls(40), datetime.now(UTC))
        assert all(result.ok for result in results)
        assert fake.drain(60)
    kinds: set[str] = set()
    ended: dict[str, tuple[str, str]] = {}
    for headers, raw in sink.received:
        message = json.loads(raw)["message"]
        kinds.add(message["type"])
        assert inbound.verify(raw, headers, sink.url, {"server_secret": SECRET})
        events = inbound.parse(raw, headers, sink.url)
        if message["type"] == "status-update":
            parsed = ServerMessageStatusUpdate.model_validate(_sdk_view(message))
            assert parsed.status in statuses and (parsed.ended_reason is None or parsed.ended_reason in reasons)
        elif message["type"] == "end-of-call-report":
            report = ServerMessageEndOfCallReport.model_validate(_sdk_view(message))
            assert report.ended_reason in reasons and report.call is not None
            (event,) = events
            ended[event.attempt_id] = (event.kind, event.data.get("answered_by", ""))
        else:
            assert events == []  # noise Herald ignores
    assert kinds == {"status-update", "end-of-call-report", "hang"}
    # Every call's report says what the fake decided, as Herald reads it.
    outcomes = fake.stats()["outcomes"]
    assert ended == {call_id: (o["status"], o["answered_by"]) for call_id, o in outcomes.items()}
    assert {value for value in ended.values()} <= set(EXPECTED.values())


def _options(url: str) -> VapiOptions:
    return VapiOptions(
        api_key=KEY, assistant_id="asst-1", phone_number_id="pn-1", server_secret=SECRET, api_base_url=url
    )


def _calls(count: int) -> list[CallRequest]:
    return [
        CallRequest(f"cll_o{index:04d}", 1, index, f"+5255{index:08d}", f"P{index}", "ctx", "Hola", False, CONFIG)
        for index in range(count)
    ]
