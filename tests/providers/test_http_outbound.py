"""HttpOutbound against real loopback servers: the fake agent, and tiny scripted servers for the awkward answers."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from herald.domain.campaign import CampaignConfig, parse_campaign
from herald.providers import registry
from herald.providers.base import CallRequest, MessageRequest, StartError, StartResult
from herald.providers.http import HttpInbound, HttpOptions, HttpOutbound
from herald.testing.fake_agent import FakeAgent

SECRET = base64.b64encode(b"webhook-secret-for-tests-0123456").decode()
TOKEN = "tok-s3cr3t-value"
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
CONFIG: CampaignConfig = parse_campaign({"name": "HTTP test", "channel": "phone_call"})
SCHEMAS = Path(__file__).parents[2] / "docs/providers/http"


def schema(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


def calls(count: int, prefix: str = "cll_t", campaign_id: int = 1) -> list[CallRequest]:
    return [
        CallRequest(
            public_id=f"{prefix}{index:04d}",
            campaign_id=campaign_id,
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


def messages(count: int) -> list[MessageRequest]:
    return [
        MessageRequest(
            message_id=1000 + index,
            campaign_id=2,
            contact_id=index,
            to=f"+5255{index:08d}",
            template="reminder_v1",
            config=CONFIG,
            variables={"name": f"Person {index}"},
        )
        for index in range(count)
    ]


def options(base_url: str, **changes: Any) -> HttpOptions:
    values: dict[str, Any] = {"base_url": base_url, "auth_token": TOKEN, "webhook_secret": SECRET, **changes}
    return HttpOptions(**values)


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    # Events go to a port nobody listens on: these tests look at starts only, and stop() drops what is left.
    with FakeAgent("http://127.0.0.1:9/webhooks/http", SECRET, token=TOKEN, max_delay=60, min_delay=60) as running:
        yield running


@pytest.fixture
def outbound(agent: FakeAgent) -> Iterator[HttpOutbound]:
    with HttpOutbound(options(agent.url)) as adapter:
        yield adapter


# --- a scripted server -------------------------------------------------------------------------------------------

Reply = tuple[int, dict[str, str], bytes]


class Scripted:
    """A loopback server answering every POST with `respond(handler, body)`."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, bytes], Reply]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, content = respond(self, raw)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def answer(status: int, payload: Any = None, text: str | None = None) -> Callable[..., Reply]:
    content = text.encode() if text is not None else json.dumps(payload).encode()
    kind = "text/plain" if text is not None else "application/json"
    return lambda handler, raw: (status, {"Content-Type": kind}, content)


# --- tests ---------------------------------------------------------------------------------------------------------


def test_start_calls_sends_the_contract(agent: FakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_PUBLIC_URL", "https://herald.example.com/")
    with HttpOutbound(options(agent.url + "/")) as adapter:
        results = adapter.start_calls(calls(3), NOW)
    assert all(result.ok for result in results)
    assert len({result.external_id for result in results}) == 3
    by_id = {request["call_id"]: request for request in agent.requests}
    assert by_id["cll_t0001"] == {
        "call_id": "cll_t0001",
        "campaign_id": 1,
        "to": "+525500000001",
        "name": "Person 1",
        "context": "owes 100",
        "first_message": "Hola",
        "variables": {"amount": "1"},
        "callback_url": "https://herald.example.com/webhooks/http",
    }
    assert by_id["cll_t0000"]["first_message"] is None
    validator = schema("start-call-request")
    for request in agent.requests:
        validator.validate(request)


def test_repeated_start_is_the_same_call(agent: FakeAgent, outbound: HttpOutbound) -> None:
    first = outbound.start_calls(calls(5), NOW)
    again = outbound.start_calls(calls(5), NOW)
    assert again == first
    # Eight tries of one call at once (a worker retrying while the first answer is still on its way).
    same = outbound.start_calls(calls(1) * 8, NOW)
    assert {result.external_id for result in same} == {first[0].external_id}
    stats = agent.stats()
    assert stats["placements"] == 5
    assert stats["repeated_keys"] == 5 + 8


def test_results_come_back_in_request_order(outbound: HttpOutbound) -> None:
    batch = calls(100)
    results = outbound.start_calls(batch, NOW)
    # One at a time afterwards, the idempotency key gives each call's id again: it must sit at the same index.
    assert [outbound.start_calls([request], NOW)[0] for request in batch] == results


def test_a_batch_is_sent_concurrently() -> None:
    """Each handler waits for 8 requests to be in flight together; sent one at a time, the barrier would break."""
    barrier = threading.Barrier(8, timeout=10)

    def respond(handler: BaseHTTPRequestHandler, raw: bytes) -> Reply:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return 503, {}, b"alone"
        return 200, {}, json.dumps({"external_id": "x-" + json.loads(raw)["call_id"]}).encode()

    with Scripted(respond) as server, HttpOutbound(options(server.url)) as adapter:
        results = adapter.start_calls(calls(16), NOW)
    assert [result.external_id for result in results] == [f"x-cll_t{index:04d}" for index in range(16)]


def test_rate_limits_and_server_errors_are_retryable(agent: FakeAgent, outbound: HttpOutbound) -> None:
    agent.control({"error_rate_429": 1.0})
    limited = outbound.start_calls(calls(3), NOW)
    assert all(result.error is StartError.RETRYABLE and result.error_code == "http_429" for result in limited)
    assert limited[0].error_msg == "too many requests, slow down"
    agent.control({"error_rate_429": 0.0, "error_rate_500": 1.0})
    failing = outbound.send_messages(messages(2), NOW)
    assert all(result.error is StartError.RETRYABLE and result.error_code == "http_500" for result in failing)
    agent.control({"error_rate_500": 0.0})
    assert all(result.ok for result in outbound.start_calls(calls(3), NOW))
    stats = agent.stats()
    assert (stats["injected_429"], stats["injected_500"], stats["placements"]) == (3, 2, 3)


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_other_retryable_statuses(status: int) -> None:
    with Scripted(answer(status, text="<html>busy</html>")) as server, HttpOutbound(options(server.url)) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result == StartResult.retryable(f"http_{status}", "<html>busy</html>")


def test_a_refusal_carries_the_backends_code_and_message(outbound: HttpOutbound) -> None:
    [bad] = outbound.start_calls([dataclasses.replace(calls(1)[0], to="5512345678")], NOW)
    assert bad == StartResult.rejected("invalid_number", "5512345678 is not an E.164 number")
    assert bad.error is StartError.REJECTED and not bad.ok


def test_wrong_token_is_a_refusal(agent: FakeAgent) -> None:
    with HttpOutbound(options(agent.url, auth_token="wrong")) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result == StartResult.rejected("unauthorized", "missing or wrong bearer token")
    assert agent.stats()["placements"] == 0


def test_a_refusal_without_error_body_uses_the_status_and_text() -> None:
    long_text = "nope " * 300
    with Scripted(answer(404, text=long_text)) as server, HttpOutbound(options(server.url)) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.error is StartError.REJECTED and result.error_code == "http_404"
    assert len(result.error_msg) == 500 and result.error_msg.startswith("nope nope")


def test_the_token_never_reaches_an_error_message() -> None:
    def echo(handler: BaseHTTPRequestHandler, raw: bytes) -> Reply:
        message = f"bad request with headers {dict(handler.headers.items())}"
        return 400, {}, json.dumps({"error": {"code": "bad", "message": message}}).encode()

    with Scripted(echo) as server, HttpOutbound(options(server.url)) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.error is StartError.REJECTED and "Bearer ***" in result.error_msg
    assert TOKEN not in result.error_msg


@pytest.mark.parametrize("payload", [{}, {"external_id": ""}, {"external_id": 12}, ["external_id"], None], ids=str)
def test_a_2xx_without_an_external_id_is_a_bad_response(payload: Any) -> None:
    with Scripted(answer(201, payload)) as server, HttpOutbound(options(server.url)) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.error is StartError.REJECTED and result.error_code == "bad_response"


def test_a_slow_backend_is_a_retryable_timeout() -> None:
    release = threading.Event()

    def stall(handler: BaseHTTPRequestHandler, raw: bytes) -> Reply:
        release.wait(10)
        return 200, {}, b'{"external_id": "late"}'

    with Scripted(stall) as server, HttpOutbound(options(server.url, timeout_seconds=0.2)) as adapter:
        try:
            [result] = adapter.start_calls(calls(1), NOW)
        finally:
            release.set()
    assert result.error is StartError.RETRYABLE and result.error_code == "timeout"


def test_connection_refused_is_retryable() -> None:
    # A bound socket that does not listen: its port refuses connections and stays ours until the test ends.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with HttpOutbound(options(url)) as adapter:
            results = adapter.start_calls(calls(2), NOW)
    assert [result.error_code for result in results] == ["connect_error", "connect_error"]
    assert all(result.error is StartError.RETRYABLE for result in results)
    assert "127.0.0.1" in results[0].error_msg


def test_token_from_the_environment(agent: FakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpOutbound(options(agent.url, auth_token="env:HERALD_TEST_AGENT_TOKEN")) as adapter:
        monkeypatch.delenv("HERALD_TEST_AGENT_TOKEN", raising=False)
        [missing] = adapter.start_calls(calls(1), NOW)
        assert missing.error is StartError.RETRYABLE and missing.error_code == "config_error"
        assert "HERALD_TEST_AGENT_TOKEN" in missing.error_msg
        monkeypatch.setenv("HERALD_TEST_AGENT_TOKEN", TOKEN)
        [result] = adapter.start_calls(calls(1), NOW)
    assert result.ok and TOKEN not in missing.error_msg


def test_send_messages(agent: FakeAgent, outbound: HttpOutbound) -> None:
    results = outbound.send_messages(messages(4), NOW)
    assert all(result.ok for result in results)
    assert outbound.send_messages(messages(4), NOW) == results
    request = next(item for item in agent.requests if item.get("message_id") == "1002")
    assert request == {
        "message_id": "1002",
        "campaign_id": 2,
        "to": "+525500000002",
        "template": "reminder_v1",
        "variables": {"name": "Person 2"},
        "callback_url": outbound.callback_url,
    }
    validator = schema("send-message-request")
    for item in agent.requests:
        validator.validate(item)
    stats = agent.stats()
    assert (stats["messages"], stats["repeated_keys"]) == (4, 4)


def test_empty_batches(outbound: HttpOutbound) -> None:
    assert outbound.start_calls([], NOW) == []
    assert outbound.send_messages([], NOW) == []


def test_the_fakes_answers_fit_the_response_schema(agent: FakeAgent) -> None:
    validator = schema("start-call-response")
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "k1"}
    body = {"call_id": "cll_1", "campaign_id": 1, "to": "+525500000001", "callback_url": "http://127.0.0.1:9/"}
    with httpx.Client() as client:
        validator.validate(client.post(agent.url + "/calls", json=body, headers=headers).json())
        message = {"message_id": "7", "campaign_id": 1, "to": "+525500000001", "template": "t", "callback_url": "x"}
        validator.validate(client.post(agent.url + "/messages", json=message, headers=headers).json())


# --- options and registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"base_url": "ftp://agent.example.com"}, "http:// or https://"),
        ({"base_url": "agent.example.com"}, "http:// or https://"),
        ({"base_url": "https://agent.example.com/?key=1"}, "query"),
        ({"webhook_secret": "not base64!"}, "base64"),
        ({"auth_token": ""}, "auth_token"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"retries": 3}, "retries"),
    ],
)
def test_options_are_checked(changes: dict[str, Any], problem: str) -> None:
    values = {"base_url": "https://agent.example.com", "auth_token": "t", "webhook_secret": SECRET, **changes}
    with pytest.raises(registry.ProviderOptionsError, match=problem):
        registry.validate_options("http", values)


def test_registry_builds_both_halves() -> None:
    spec = registry.spec("http")
    validated = registry.validate_options(
        "http", {"base_url": "https://agent.example.com/v1/", "auth_token": "env:T", "webhook_secret": "env:S"}
    )
    assert isinstance(validated, HttpOptions) and validated.base_url == "https://agent.example.com/v1"
    assert validated.timeout_seconds == 10
    adapter = spec.make_outbound(validated)
    try:
        assert isinstance(adapter, HttpOutbound) and adapter.name == "http" and adapter.idempotent
    finally:
        assert isinstance(adapter, HttpOutbound)
        adapter.close()
    inbound = spec.make_inbound()
    assert isinstance(inbound, HttpInbound) and inbound.name == "http"


def test_options_never_show_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_TEST_SECRET", "the-real-value")
    from_env = registry.validate_options(
        "http", {"base_url": "https://a.example", "auth_token": "env:HERALD_TEST_SECRET", "webhook_secret": SECRET}
    )
    assert "the-real-value" not in repr(from_env)
    literal = registry.validate_options(
        "http", {"base_url": "https://a.example", "auth_token": TOKEN, "webhook_secret": SECRET}
    )
    assert TOKEN not in repr(literal) and SECRET not in repr(literal) and TOKEN not in str(literal)
    with pytest.raises(registry.ProviderOptionsError) as caught:
        registry.validate_options("http", {"base_url": "x", "auth_token": TOKEN, "webhook_secret": "bad secret!"})
    assert "bad secret!" not in str(caught.value) and TOKEN not in str(caught.value)


def test_a_token_that_is_not_ascii_is_a_config_error(agent: FakeAgent) -> None:
    with HttpOutbound(options(agent.url, auth_token="tökén-with-accents")) as adapter:
        [result] = adapter.start_calls(calls(1), NOW)
    assert result == StartResult.retryable("config_error", "auth_token is not ASCII text")


def test_a_kept_connection_the_backend_closed_is_replaced() -> None:
    # The backend answers as if keeping the connection, then closes it: the next start opens a new one.
    ports: list[int] = []

    def answer_and_hang_up(handler: BaseHTTPRequestHandler, raw: bytes) -> Reply:
        ports.append(handler.client_address[1])
        handler.close_connection = True
        return 200, {"Content-Type": "application/json"}, json.dumps({"external_id": f"c{len(ports)}"}).encode()

    with Scripted(answer_and_hang_up) as server, HttpOutbound(options(server.url)) as adapter:
        results = [adapter.start_calls(calls(1, prefix=f"cll_k{index}"), NOW)[0] for index in range(3)]
    assert [result.external_id for result in results] == ["c1", "c2", "c3"]
    assert len(set(ports)) == 3


def test_a_proxy_from_the_environment_goes_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    # http.client ignores HTTP_PROXY; httpx honours it, so with a proxy set the adapter keeps httpx.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    with HttpOutbound(options("http://agent.example")) as proxied:
        assert proxied._keep_alive is None
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.delenv("http_proxy", raising=False)
    with HttpOutbound(options("http://agent.example")) as direct:
        assert direct._keep_alive is not None
