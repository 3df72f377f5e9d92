"""WhatsApp Cloud API webhooks: statuses, button replies and texts parsed (both shapes), resolved with options."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.providers.base import ProviderEvent, WebhookError
from herald.providers.whatsapp_cloud import WhatsAppCloudInbound

INBOUND = WhatsAppCloudInbound()
OPTIONS: dict[str, Any] = {"phone_number_id": "123", "access_token": "t" * 20, "app_secret": "s" * 20}


def envelope(value: dict[str, Any], phone_number_id: str = "123") -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1555", "phone_number_id": phone_number_id},
        **value,
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "9", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(body).encode()


def status(
    kind: str, wamid: str = "wamid.A", tracker: str | None = "42", ts: int = 1767625200, **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": kind, "timestamp": str(ts), "recipient_id": "5215512345678", **extra}
    if tracker is not None:
        item["biz_opaque_callback_data"] = tracker
    return item


def parse(body: bytes) -> list[ProviderEvent]:
    return INBOUND.parse(body, {}, "")


def test_a_delivered_status_names_heralds_message_and_its_time() -> None:
    [event] = parse(envelope({"statuses": [status("delivered")]}))
    assert (event.kind, event.external_id, event.attempt_id, event.subject) == ("delivered", "wamid.A", "42", "message")
    assert event.occurred_at == datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def test_a_failed_status_carries_the_error_code_and_title() -> None:
    failed = status("failed", errors=[{"code": 131026, "title": "Message undeliverable", "message": "x"}])
    [event] = parse(envelope({"statuses": [failed]}))
    assert event.kind == "failed"
    assert event.data == {"error_code": "131026", "error_msg": "Message undeliverable"}


def test_the_current_shape_with_contacts_user_id() -> None:
    value = {
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5215512345678", "user_id": "MX.1234"}],
        "statuses": [status("read", recipient_user_id="MX.1234")],
    }
    [event] = parse(envelope(value))
    assert (event.kind, event.attempt_id) == ("read", "42")


def test_a_status_without_heralds_id_or_of_another_kind() -> None:
    events = parse(
        envelope({"statuses": [status("sent", tracker=None), status("deleted"), status("sent", tracker="x")]})
    )
    assert [(e.kind, e.attempt_id) for e in events] == [("sent", ""), ("sent", "")]


def button_reply(text: str, payload: str | None = None, answers: str | None = "wamid.A", *, current: bool) -> bytes:
    contact: dict[str, Any] = {"profile": {"name": "Ana"}, "wa_id": "5215512345678"}
    if current:
        contact["user_id"] = "MX.1234"
    message: dict[str, Any] = {
        "from": "5215512345678",
        "id": "wamid.IN1",
        "timestamp": "1767625260",
        "type": "button",
        "button": {"payload": payload if payload is not None else text, "text": text},
    }
    if answers:
        message["context"] = {"from": "1555", "id": answers}
    return envelope({"contacts": [contact], "messages": [message]})


@pytest.mark.parametrize("current", [True, False], ids=["current shape", "older shape"])
def test_a_quick_reply_names_the_message_it_answers(current: bool) -> None:
    [event] = parse(button_reply("Sí", current=current))
    assert (event.kind, event.external_id, event.ref, event.attempt_id) == ("button", "wamid.IN1", "wamid.A", "")
    assert event.data == {"from": "5215512345678", "id": "Sí", "name": "Sí"}


@pytest.mark.parametrize(
    ("text", "payload", "kind", "accepted"),
    [
        ("Sí", None, "reply", True),
        ("SI", None, "reply", True),
        ("No", None, "reply", False),
        ("Detener promociones", None, "opt_out", None),
        ("Stop promotions", None, "opt_out", None),
        ("Quiero saber más", "MORE_INFO", "button", None),
        ("Claro", "ACCEPT", "reply", True),
    ],
)
def test_a_button_resolves_by_payload_or_title(
    text: str, payload: str | None, kind: str, accepted: bool | None
) -> None:
    [event] = parse(button_reply(text, payload, current=True))
    resolved = INBOUND.resolve(event, OPTIONS)
    assert resolved is not None and resolved.kind == kind
    assert resolved.data["id"] == (payload or text) and resolved.data["name"] == text
    if accepted is not None:
        assert resolved.data["accepted"] is accepted and resolved.data["converted"] is accepted


def text_message(body: str, answers: str | None = None) -> bytes:
    message: dict[str, Any] = {
        "from": "5215512345678",
        "id": "wamid.IN2",
        "timestamp": "1767625260",
        "type": "text",
        "text": {"body": body},
    }
    if answers:
        message["context"] = {"from": "1555", "id": answers}
    return envelope({"contacts": [{"profile": {"name": "Ana"}, "wa_id": "5215512345678"}], "messages": [message]})


@pytest.mark.parametrize("word", ["STOP", "stop", " Baja ", "ALTO!", "cancelar", "Unsubscribe", "bája"])
def test_an_opt_out_keyword_in_any_case_and_accent(word: str) -> None:
    [event] = parse(text_message(word))
    assert (event.kind, event.ref) == ("text", "")
    resolved = INBOUND.resolve(event, OPTIONS)
    assert resolved is not None and resolved.kind == "opt_out"
    assert resolved.data == {"from": "5215512345678"}


def test_other_texts_mean_nothing_and_keywords_are_configurable() -> None:
    [thanks] = parse(text_message("Gracias, STOP is a word here", answers="wamid.A"))
    assert INBOUND.resolve(thanks, OPTIONS) is None
    [custom] = parse(text_message("basta ya"))
    assert INBOUND.resolve(custom, OPTIONS) is None
    resolved = INBOUND.resolve(custom, {**OPTIONS, "opt_out_keywords": ["Basta ya"]})
    assert resolved is not None and resolved.kind == "opt_out"


def test_an_interactive_button_reply() -> None:
    message = {
        "from": "5215512345678",
        "id": "wamid.IN3",
        "timestamp": "1767625260",
        "type": "interactive",
        "context": {"from": "1555", "id": "wamid.A"},
        "interactive": {"type": "button_reply", "button_reply": {"id": "accept", "title": "Acepto"}},
    }
    [event] = parse(envelope({"contacts": [{"wa_id": "5215512345678", "user_id": "MX.1"}], "messages": [message]}))
    resolved = INBOUND.resolve(event, OPTIONS)
    assert resolved is not None and (resolved.kind, resolved.ref, resolved.data["accepted"]) == (
        "reply",
        "wamid.A",
        True,
    )


def test_with_usernames_the_sender_number_comes_from_contacts() -> None:
    message = {
        "from_user_id": "MX.77",
        "id": "wamid.IN4",
        "timestamp": "1767625260",
        "type": "text",
        "text": {"body": "STOP"},
    }
    contacts = [{"wa_id": "5215500000000", "user_id": "MX.66"}, {"wa_id": "5215512345678", "user_id": "MX.77"}]
    [event] = parse(envelope({"contacts": contacts, "messages": [message]}))
    assert event.data["from"] == "5215512345678"


def test_route_names_every_phone_number_of_the_body() -> None:
    body = json.loads(envelope({"statuses": [status("sent")]}, "111"))
    other = json.loads(envelope({"statuses": [status("sent")]}, "222"))
    body["entry"].extend(other["entry"])
    assert INBOUND.route(json.dumps(body).encode()) == [{"phone_number_id": "111"}, {"phone_number_id": "222"}]


def test_other_fields_and_message_types_are_ignored() -> None:
    image = {
        "from": "5215512345678",
        "id": "wamid.IN5",
        "timestamp": "1767625260",
        "type": "image",
        "image": {"id": "1"},
    }
    assert parse(envelope({"messages": [image]})) == []
    account = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "9", "changes": [{"field": "account_update", "value": {}}]}],
    }
    assert parse(json.dumps(account).encode()) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": {}}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {}}]}]}',
        envelope({"statuses": [{"id": "wamid.A", "status": "sent", "timestamp": "yesterday"}]}),
        envelope({"statuses": [{"status": "sent", "timestamp": "1"}]}),
        envelope({"messages": [{"id": "x", "type": "button", "timestamp": "1", "button": "Sí"}]}),
        envelope({"statuses": "sent"}),
        envelope({"statuses": [status("sent", wamid="wamid." + "A" * 200)]}),
    ],
)
def test_malformed_bodies_are_422(body: bytes) -> None:
    with pytest.raises(WebhookError) as raised:
        parse(body)
    assert raised.value.status == 422


# --- properties ----------------------------------------------------------------------------------------------------

wamids = st.text("ABCDEFabcdef0123456789=", min_size=1, max_size=30).map(lambda s: f"wamid.{s}")
trackers = st.one_of(st.none(), st.integers(1, 10**9).map(str), st.text(max_size=10))
stamps = st.integers(0, 2**32)


@st.composite
def status_items(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["sent", "delivered", "read", "failed", "deleted", "warning"]))
    extra: dict[str, Any] = {}
    if kind == "failed" and draw(st.booleans()):
        extra["errors"] = [{"code": draw(st.integers(0, 200000)), "title": draw(st.text(max_size=40))}]
    return status(kind, draw(wamids), draw(trackers), draw(stamps), **extra)


@given(st.lists(status_items(), max_size=8), st.booleans())
def test_every_known_status_becomes_one_event(items: list[dict[str, Any]], current: bool) -> None:
    value: dict[str, Any] = {"statuses": items}
    if current:
        value["contacts"] = [{"wa_id": "1", "user_id": "US.1"}]
    events = parse(envelope(value))
    known = [item for item in items if item["status"] in ("sent", "delivered", "read", "failed")]
    assert [(e.kind, e.external_id) for e in events] == [(i["status"], i["id"]) for i in known]
    for event, item in zip(events, known, strict=True):
        tracker = item.get("biz_opaque_callback_data")
        assert event.attempt_id == (
            tracker if tracker and tracker.isascii() and tracker.isdigit() and len(tracker) <= 18 else ""
        )
        assert event.occurred_at == datetime.fromtimestamp(int(item["timestamp"]), UTC)
        if event.kind == "failed":
            assert set(event.data) == {"error_code", "error_msg"}
    # The same body twice gives the same events (the inbox's key then makes the second a no-op).
    assert parse(envelope(value)) == events


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@given(json_values, json_values)
def test_any_json_is_events_or_a_422(statuses: Any, messages: Any) -> None:
    body = envelope({"statuses": statuses, "messages": messages})
    try:
        events = parse(body)
    except WebhookError as error:
        assert error.status == 422
        return
    for event in events:
        resolved = INBOUND.resolve(event, OPTIONS)
        assert resolved is None or resolved.kind in {
            "sent",
            "delivered",
            "read",
            "failed",
            "reply",
            "opt_out",
            "button",
        }
