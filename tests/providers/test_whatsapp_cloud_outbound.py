"""Sending templates through the Cloud API, against the fake Graph endpoint on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from herald.domain.campaign import parse_campaign
from herald.providers import registry
from herald.providers.base import MessageRequest, StartError, Throughput
from herald.providers.whatsapp_cloud import WhatsAppCloudOptions, WhatsAppCloudOutbound, classify
from herald.testing.fake_whatsapp import PHONE_NUMBER_ID, FakeWhatsApp

from ..live.processes import free_port

TOKEN = "EAAG-test-token-0123456789abcdef"
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
CONFIG = parse_campaign({"name": "WA", "channel": "whatsapp", "template": "promo"})


@pytest.fixture
def fake() -> Iterator[FakeWhatsApp]:
    # Webhooks go to a closed port, long after the test: only the sends matter here.
    dead = f"http://127.0.0.1:{free_port()}/webhooks/whatsapp_cloud"
    with FakeWhatsApp(
        dead, "app-secret", token=TOKEN, min_delay=3600, max_delay=3600, unknown_templates=["gone"]
    ) as started:
        yield started


def options(fake: FakeWhatsApp, **extra: Any) -> WhatsAppCloudOptions:
    base = {
        "phone_number_id": PHONE_NUMBER_ID,
        "access_token": TOKEN,
        "app_secret": "app-secret",
        "api_base_url": fake.url,
    }
    model = registry.validate_options("whatsapp_cloud", {**base, **extra})
    assert isinstance(model, WhatsAppCloudOptions)
    return model


def request(index: int, template: str = "promo", **variables: str) -> MessageRequest:
    return MessageRequest(
        message_id=100 + index,
        campaign_id=1,
        contact_id=index,
        to=f"+5255{index:08d}",
        template=template,
        config=CONFIG,
        variables={"name": f"Person {index}", **variables},
        context=f"debt {index}",
    )


def test_a_template_goes_out_with_its_variables_and_heralds_id(fake: FakeWhatsApp) -> None:
    settings = options(
        fake,
        body_parameters=["name", "context", "amount"],
        header_image_url="https://cdn.example.com/promo.png",
        language="es_MX",
        api_version="v23.0",
    )
    with WhatsAppCloudOutbound(settings) as outbound:
        results = outbound.send_messages([request(i, amount=f"{i}00") for i in range(1, 4)], NOW)
    assert [r.ok for r in results] == [True] * 3
    assert len({r.external_id for r in results}) == 3 and all(r.external_id.startswith("wamid.") for r in results)  # type: ignore[union-attr]
    sent = sorted(fake.requests, key=lambda body: body["biz_opaque_callback_data"])
    assert sent[0] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+525500000001",
        "type": "template",
        "template": {
            "name": "promo",
            "language": {"code": "es_MX"},
            "components": [
                {
                    "type": "header",
                    "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/promo.png"}}],
                },
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Person 1"},
                        {"type": "text", "text": "debt 1"},
                        {"type": "text", "text": "100"},
                    ],
                },
            ],
        },
        "biz_opaque_callback_data": "101",
    }
    stats = fake.stats()
    assert stats["messages"] == 3 and stats["unauthorized"] == 0
    assert {stats["outcomes"][str(100 + i)]["wamid"] for i in range(1, 4)} == {r.external_id for r in results}


def test_named_parameters(fake: FakeWhatsApp) -> None:
    with WhatsAppCloudOutbound(options(fake, parameter_format="named")) as outbound:
        assert outbound.send_messages([request(1)], NOW)[0].ok
    assert fake.requests[0]["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Person 1", "parameter_name": "name"}]}
    ]


def test_the_token_comes_from_the_environment(fake: FakeWhatsApp, monkeypatch: pytest.MonkeyPatch) -> None:
    with WhatsAppCloudOutbound(options(fake, access_token="env:WA_TEST_TOKEN")) as outbound:
        missing = outbound.send_messages([request(1)], NOW)[0]
        assert (missing.error, missing.error_code) == (StartError.RETRYABLE, "config_error")
        assert "WA_TEST_TOKEN" in missing.error_msg
        monkeypatch.setenv("WA_TEST_TOKEN", TOKEN)
        assert outbound.send_messages([request(1)], NOW)[0].ok


def test_a_wrong_token_waits_for_the_configuration_and_is_never_quoted(fake: FakeWhatsApp) -> None:
    with WhatsAppCloudOutbound(options(fake, access_token="EAAG-wrong-token-0000000000")) as outbound:
        result = outbound.send_messages([request(1)], NOW)[0]
    assert (result.error, result.error_code) == (StartError.RETRYABLE, "190")
    assert "wrong-token" not in result.error_msg and TOKEN not in result.error_msg


def test_rate_limits_are_retried_and_unknown_templates_fail(fake: FakeWhatsApp) -> None:
    with WhatsAppCloudOutbound(options(fake)) as outbound:
        gone = outbound.send_messages([request(1, template="gone")], NOW)[0]
        fake.settings["error_rate_429"] = 1.0
        limited = outbound.send_messages([request(2)], NOW)[0]
    assert (gone.error, gone.error_code) == (StartError.REJECTED, "132001")
    assert "Template name does not exist" in gone.error_msg
    assert (limited.error, limited.error_code) == (StartError.RETRYABLE, "130429")


def test_an_empty_body_parameter_is_refused_before_sending(fake: FakeWhatsApp) -> None:
    with WhatsAppCloudOutbound(options(fake, body_parameters=["name", "amount"])) as outbound:
        result = outbound.send_messages([request(1)], NOW)[0]
    assert (result.error, result.error_code) == (StartError.REJECTED, "missing_variable")
    assert "amount" in result.error_msg and fake.requests == []


def test_no_server_is_retryable() -> None:
    settings = WhatsAppCloudOptions(
        phone_number_id="1", access_token=TOKEN, app_secret="s", api_base_url=f"http://127.0.0.1:{free_port()}"
    )
    with WhatsAppCloudOutbound(settings) as outbound:
        result = outbound.send_messages([request(1)], NOW)[0]
    assert (result.error, result.error_code) == (StartError.RETRYABLE, "connect_error")


def graph(status: int, code: int | None = None, message: str = "oops", **extra: Any) -> httpx.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", **extra}
    if code is not None:
        error["code"] = code
    return httpx.Response(status, json={"error": error})


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        (graph(400, 130429), StartError.RETRYABLE, "130429"),
        (graph(400, 131056), StartError.RETRYABLE, "131056"),
        (graph(500, 131000), StartError.RETRYABLE, "131000"),
        (graph(503), StartError.RETRYABLE, "http_503"),
        (httpx.Response(429, text="slow down"), StartError.RETRYABLE, "http_429"),
        (graph(401, 190), StartError.RETRYABLE, "190"),
        (graph(400, 131026), StartError.REJECTED, "131026"),
        (graph(404, 132001), StartError.REJECTED, "132001"),
        (graph(400, 131047, error_data={"details": "24 hours"}), StartError.REJECTED, "131047"),
        (graph(400, 100), StartError.REJECTED, "100"),
        (httpx.Response(200, json={"messages": []}), StartError.REJECTED, "bad_response"),
    ],
)
def test_graph_errors_are_classified_by_code(response: httpx.Response, error: StartError, code: str) -> None:
    result = classify(response, TOKEN)
    assert (result.error, result.error_code) == (error, code)


def test_a_token_echoed_back_is_masked() -> None:
    result = classify(graph(400, 100, f"bad token {TOKEN}"), TOKEN)
    assert TOKEN not in result.error_msg and "***" in result.error_msg


def test_throughput_is_declared_per_phone_number() -> None:
    settings = WhatsAppCloudOptions(phone_number_id="42", access_token=TOKEN, app_secret="s", messages_per_second=20)
    with WhatsAppCloudOutbound(settings) as outbound:
        assert outbound.throughput == Throughput("whatsapp_cloud:42", 20, 20)
        assert outbound.idempotent is False
    assert "EAAG" not in repr(settings)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"phone_number_id": "+1555"}, "phone_number_id"),
        ({"api_version": "25"}, "api_version"),
        ({"api_base_url": "ftp://graph"}, "api_base_url"),
        ({"opt_out_keywords": ["STOP", " ! "]}, "opt_out_keywords"),
        ({"messages_per_second": 0}, "messages_per_second"),
        ({"parameter_format": "numbered"}, "parameter_format"),
        ({"app_secret": ""}, "app_secret"),
        ({"acess_token": "x"}, "acess_token"),
    ],
)
def test_bad_options_are_refused_naming_the_field(change: dict[str, Any], problem: str) -> None:
    good = {"phone_number_id": "1", "access_token": "env:T", "app_secret": "env:S"}
    assert registry.validate_options("whatsapp_cloud", good)
    with pytest.raises(registry.ProviderOptionsError, match=problem):
        registry.validate_options("whatsapp_cloud", {**good, **change})
